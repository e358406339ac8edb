"""``apply_hyperparameters``: optimizer keys, tuple elements, refusals, and the LR scheduler's
base rate (a tuned ``lr`` must not be undone by the scheduler's next step)."""

from __future__ import annotations

from collections.abc import Callable
import math
from pathlib import Path
from typing import Any
from typing import TYPE_CHECKING

from hypothesis import given
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
import pytest


if TYPE_CHECKING:
    import torch
else:
    torch = pytest.importorskip("torch")

from optuna_gamma.tuner.trainer import apply_hyperparameters  # noqa: E402
from optuna_gamma.tuner.trainer import capture  # noqa: E402
from optuna_gamma.tuner.trainer import group_values  # noqa: E402
from optuna_gamma.tuner.trainer import restore  # noqa: E402
from optuna_gamma.tuner.trainer import TrainingState  # noqa: E402


S = torch.optim.lr_scheduler
Make = Callable[[torch.optim.Optimizer], object]


def _state(lr: float, make: Make | None = None, groups: int = 1) -> TrainingState:
    torch.manual_seed(0)
    layers = [torch.nn.Linear(2, 2) for _ in range(groups)]
    model = torch.nn.Sequential(*layers)
    optimizer = torch.optim.SGD([{"params": m.parameters()} for m in layers], lr=lr, momentum=0.9)
    return TrainingState(
        model=model, optimizer=optimizer, scheduler=None if make is None else make(optimizer)
    )


def _rates(state: TrainingState, steps: int) -> list[float]:
    """Every group's rate now and after each of ``steps`` optimizer + scheduler steps."""
    out = [g["lr"] for g in state.optimizer.param_groups]
    for _ in range(steps):
        state.optimizer.step()
        state.scheduler.step()
        out += [g["lr"] for g in state.optimizer.param_groups]
    return out


def _advance(state: TrainingState, steps: int) -> None:
    for _ in range(steps):
        state.optimizer.step()
        state.scheduler.step()


# Schedulers whose rate at every step is the base rate times a factor of the step alone: tuning
# ``lr`` at any point must give the schedule built with that base rate, from that point on.
SCALING: dict[str, Make] = {
    "cosine": lambda o: S.CosineAnnealingLR(o, T_max=8),
    "step": lambda o: S.StepLR(o, step_size=2, gamma=0.5),
    "lambda": lambda o: S.LambdaLR(o, lambda e: 0.8**e),
    "polynomial": lambda o: S.PolynomialLR(o, total_iters=8, power=2.0),
    "sequential": lambda o: S.SequentialLR(
        o, [S.StepLR(o, step_size=100), S.CosineAnnealingLR(o, T_max=6)], milestones=[3]
    ),
    "onecycle": lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=12),
    "cyclic": lambda o: S.CyclicLR(o, base_lr=0.1, max_lr=0.4, step_size_up=3),
}


@pytest.mark.parametrize(
    ("name", "after"), [(n, 0) for n in sorted(SCALING)] + [(n, 2) for n in sorted(SCALING)]
)
def test_a_tuned_lr_becomes_the_schedules_base_rate(name: str, after: int) -> None:
    make = SCALING[name]
    tuned = _state(0.1, make)
    _advance(tuned, after)
    applied = apply_hyperparameters(tuned, {"lr": 0.01})
    assert applied == ["lr"]
    # the same schedule built with base rate 0.01 (for OneCycleLR its peak, for CyclicLR its
    # lower bound with the same ratio to the upper one)
    built = _state(0.01, _rebuilt(name))
    _advance(built, after)
    # the same curve from that point on, chainable schedulers (cosine, step, polynomial, which
    # multiply the current rate) as closed-form ones: the current rate scaled with the base
    assert _rates(tuned, 10) == pytest.approx(_rates(built, 10), rel=1e-9)


def _rebuilt(name: str) -> Make:
    if name == "onecycle":
        return lambda o: S.OneCycleLR(o, max_lr=0.01, total_steps=12)
    if name == "cyclic":
        return lambda o: S.CyclicLR(o, base_lr=0.01, max_lr=0.04, step_size_up=3)
    return SCALING[name]


def test_warm_up_then_cosine_keeps_the_tuned_rate_after_the_milestone() -> None:
    # the common warm-up + cosine: before, the cosine restarted from the rate the optimizer was
    # built with (0.1) at the milestone, whatever the tuner had set
    def make(o: torch.optim.Optimizer) -> object:
        warm = S.LinearLR(o, start_factor=0.5, total_iters=2)
        return S.SequentialLR(o, [warm, S.CosineAnnealingLR(o, T_max=4)], milestones=[2])

    state = _state(0.1, make)
    _advance(state, 1)
    apply_hyperparameters(state, {"lr": 0.01})
    rates = _rates(state, 5)
    # half-way through the warm-up (0.75 of the base), then the cosine of base rate 0.01 from
    # the milestone on: 0.01 (1 + cos(pi t / 4)) / 2
    assert rates[0] == pytest.approx(0.0075)
    cosine = [0.01 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)]
    assert rates[1:] == pytest.approx(cosine)


@pytest.mark.parametrize("start_factor", [0.1, 0.5])
def test_a_warm_up_never_overshoots_the_tuned_rate(start_factor: float) -> None:
    # LinearLR multiplies the current rate at each step: set to the tuned rate half-way through
    # the warm-up, it used to climb to the tuned rate / (the warm-up's factor there), 2.5x for
    # a warm-up from 0.1 over 30 steps retuned every 10 (before the current rate scaled)
    state = _state(0.1, lambda o: S.LinearLR(o, start_factor=start_factor, total_iters=30))
    untuned = _state(0.1, lambda o: S.LinearLR(o, start_factor=start_factor, total_iters=30))
    got, want = [], []
    for _ in range(5):  # five "epochs" of 10 steps, the tuner setting lr at each one's start
        apply_hyperparameters(state, {"lr": 0.1})  # the trainer's own rate
        got += _rates(state, 10)[:-1]
        want += _rates(untuned, 10)[:-1]
    assert got == pytest.approx(want, rel=1e-12)
    assert max(got) == pytest.approx(0.1)


def test_chained_scheduler_children_take_the_tuned_base_rate() -> None:
    def make(o: torch.optim.Optimizer) -> object:
        return S.ChainedScheduler([S.ConstantLR(o, factor=0.5, total_iters=2), S.StepLR(o, 5)])

    state = _state(0.1, make)
    apply_hyperparameters(state, {"lr": 0.01})
    children = state.scheduler._schedulers
    assert [c.base_lrs for c in children] == [[0.01], [0.01]]
    assert state.optimizer.param_groups[0]["initial_lr"] == 0.01


def test_onecycle_keeps_its_shape_and_never_jumps_to_the_peak() -> None:
    state = _state(0.1, lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=20, div_factor=10))
    _advance(state, 15)  # annealing: the rate is far below the peak
    now = state.optimizer.param_groups[0]["lr"]
    apply_hyperparameters(state, {"lr": 0.05})
    group = state.optimizer.param_groups[0]
    assert group["lr"] == pytest.approx(now / 2)  # the curve scaled by 0.05 / 0.1, not 0.05
    assert group["max_lr"] == 0.05
    assert group["initial_lr"] == pytest.approx(0.005)
    assert group["min_lr"] == pytest.approx(0.005 / 1e4)


def test_every_group_and_a_restored_state_follow_the_tuned_schedule() -> None:
    make = SCALING["cyclic"]
    state = _state(0.1, make, groups=2)
    _advance(state, 2)
    apply_hyperparameters(state, {"lr": 0.02, "momentum": 0.5})
    assert [g["momentum"] for g in state.optimizer.param_groups] == [0.5, 0.5]
    snapshot = capture(state)
    copy = _state(0.1, make, groups=2)
    restore(copy, snapshot)
    assert _rates(copy, 6) == _rates(state, 6)


def test_a_scheduler_built_inside_each_epoch_starts_from_the_tuned_rate() -> None:
    # a cosine over each epoch, built in train_epoch (not in the state): it leaves an
    # initial_lr in the groups, which the next epoch's scheduler keeps (setdefault)
    state = _state(0.1)
    for lr in (0.1, 0.05, 0.2):
        apply_hyperparameters(state, {"lr": lr})
        scheduler = S.CosineAnnealingLR(state.optimizer, T_max=4)
        rates = []
        for _ in range(4):
            rates.append(state.optimizer.param_groups[0]["lr"])
            state.optimizer.step()
            scheduler.step()
        cosine = [lr * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(4)]
        assert rates == pytest.approx(cosine)


def test_a_plateau_schedulers_reductions_are_kept() -> None:
    state = _state(0.1, lambda o: S.ReduceLROnPlateau(o, patience=0, factor=0.5))
    apply_hyperparameters(state, {"lr": 0.01})
    state.scheduler.step(1.0)
    state.scheduler.step(2.0)  # no improvement: halve
    assert state.optimizer.param_groups[0]["lr"] == pytest.approx(0.005)
    # the next epoch's tuned rate keeps the halving, as it keeps a step decay's
    snapshot = capture(state)
    restore(state, snapshot)
    apply_hyperparameters(state, {"lr": 0.04})
    assert state.optimizer.param_groups[0]["lr"] == pytest.approx(0.02)
    state.scheduler.step(3.0)  # no improvement again
    assert state.optimizer.param_groups[0]["lr"] == pytest.approx(0.01)


def test_tuple_elements_and_refusals() -> None:
    model = torch.nn.Linear(2, 1)
    state = TrainingState(model=model, optimizer=torch.optim.AdamW(model.parameters()))
    assert apply_hyperparameters(state, {"betas[0]": 0.8, "batch_size": 32}) == ["betas[0]"]
    assert state.optimizer.param_groups[0]["betas"] == (0.8, 0.999)
    with pytest.raises(ValueError, match="has no element 2"):
        apply_hyperparameters(state, {"betas[2]": 0.5})
    with pytest.raises(ValueError, match="'weight_decay' = 'high'.*needs a number"):
        apply_hyperparameters(state, {"weight_decay": "high"})
    # a number for the whole tuple: before, torch's own "cannot unpack non-iterable float"
    with pytest.raises(
        ValueError, match=r"a tuple; tune one element \(betas\[0\] or betas\[1\]\)"
    ):
        apply_hyperparameters(state, {"betas": 0.5})
    with pytest.raises(ValueError, match="'betas\\[0\\]' = 'x'.*needs a number"):
        apply_hyperparameters(state, {"betas[0]": "x"})
    assert state.optimizer.param_groups[0]["betas"] == (0.8, 0.999)  # nothing half-set
    # groups with their own elements keep their ratio, as with any other key
    body, head = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    groups: list[dict[str, Any]] = [
        {"params": body.parameters(), "betas": (0.8, 0.99)},
        {"params": head.parameters()},
    ]
    optimizer = torch.optim.Adam(groups)
    state = TrainingState(model=torch.nn.Sequential(body, head), optimizer=optimizer)
    apply_hyperparameters(state, {"betas[0]": 0.95})
    betas = [g["betas"] for g in optimizer.param_groups]
    assert betas == [pytest.approx((0.95 * 0.8 / 0.9, 0.99)), (0.95, 0.999)]


def test_a_no_decay_group_keeps_no_decay_and_per_layer_rates_keep_their_ratios() -> None:
    # the usual AdamW set-up: biases and norms in a group without weight decay, and a head
    # trained 10x faster than the body
    body, head = torch.nn.Linear(4, 4), torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(
        [
            {"params": [body.weight], "lr": 1e-4},
            {"params": [body.bias], "lr": 1e-4, "weight_decay": 0.0},
            {"params": head.parameters(), "lr": 1e-3},
        ],
        weight_decay=0.01,
    )
    scheduler = S.CosineAnnealingLR(optimizer, T_max=10)
    state = TrainingState(model=torch.nn.Sequential(body, head), optimizer=optimizer)
    state.scheduler = scheduler
    apply_hyperparameters(state, {"lr": 0.02, "weight_decay": 0.05})
    groups = optimizer.param_groups
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0, 0.05]
    assert [g["lr"] for g in groups] == pytest.approx([0.002, 0.002, 0.02])
    assert scheduler.base_lrs == pytest.approx([0.002, 0.002, 0.02])
    assert [g["initial_lr"] for g in groups] == pytest.approx([0.002, 0.002, 0.02])
    # the next epoch's trial starts from this state: the ratios hold, and one value moves all
    apply_hyperparameters(state, {"lr": 0.01})
    assert [g["lr"] for g in groups] == pytest.approx([0.001, 0.001, 0.01])


def test_a_frozen_group_stays_frozen() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    groups: list[dict[str, Any]] = [
        {"params": model[0].parameters(), "lr": 0.0},
        {"params": model[1].parameters()},
    ]
    optimizer = torch.optim.SGD(groups, lr=0.1)
    apply_hyperparameters(TrainingState(model=model, optimizer=optimizer), {"lr": 0.03})
    assert [g["lr"] for g in optimizer.param_groups] == [0.0, 0.03]


@given(
    st.lists(st.floats(0.0, 10.0), min_size=1, max_size=5),
    st.floats(1e-6, 1.0),
)
def test_group_values_keep_ratios_and_give_the_largest_the_value(
    current: list[float], value: float
) -> None:
    values = group_values(current, value)
    top = max(current)
    if top == 0 or len(set(current)) == 1:
        assert values == [value] * len(current)
        return
    assert max(values) == value
    for c, v in zip(current, values):
        assert v == pytest.approx(value * (c / top), rel=1e-12, abs=0)


def test_group_values_keep_ratios_of_subnormal_values() -> None:
    # found by the property test above: value * c / top underflowed to 0 for c = 5e-324
    assert group_values([0.0, 5e-324], 0.5) == [0.0, 0.5]
    assert group_values([5e-324, 1e-323], 0.5) == [0.25, 0.5]
    assert group_values([1e-320, 2.0], 0.5) == [pytest.approx(2.5e-321, rel=1e-12), 0.5]


class _TwoGroupTrainer:
    """A user's AdamW set-up: the no-decay group (biases) first, then the weights at 0.05."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, ...]] = []
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(64, 3, generator=g)
        self.y = (self.x.sum(1) > 0).long()

    def build(self, seed: int, device: Any) -> TrainingState:
        torch.manual_seed(seed)
        model = torch.nn.Linear(3, 2)
        groups: list[dict[str, Any]] = [
            {"params": [model.bias], "weight_decay": 0.0},
            {"params": [model.weight]},
        ]
        optimizer = torch.optim.AdamW(groups, lr=1e-2, weight_decay=0.05)
        return TrainingState(model=model, optimizer=optimizer)

    def train_epoch(self, state: TrainingState, hparams: Any, ctx: Any) -> float:
        self.seen.append(tuple(g["weight_decay"] for g in state.optimizer.param_groups))
        loss = torch.nn.functional.cross_entropy(state.model(self.x), self.y)
        state.optimizer.zero_grad()
        loss.backward()
        state.optimizer.step()
        return loss.item()

    def evaluate(self, state: TrainingState, split: str) -> dict[str, float]:
        with torch.no_grad():
            out = state.model(self.x)
        accuracy = float((out.argmax(1) == self.y).float().mean())
        return {
            "accuracy": accuracy,
            "loss": float(torch.nn.functional.cross_entropy(out, self.y)),
        }


def test_a_run_keeps_the_no_decay_group_and_its_default_is_the_built_setting(
    tmp_path: Path,
) -> None:
    from optuna.distributions import FloatDistribution

    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    trainer = _TwoGroupTrainer()
    space = {
        "lr": FloatDistribution(1e-3, 1e-1, log=True),
        "weight_decay": FloatDistribution(1e-3, 0.1, log=True),
    }
    cfg = TunerConfig(
        run="groups", run_dir=str(tmp_path / "groups"), budget=8, sampler="random", progress=False
    )
    tune_per_epoch(trainer, space, cfg)
    assert len(trainer.seen) == 8
    # every trial trained the biases without decay, the weights at the tuned value
    assert all(nd == 0.0 and 1e-3 <= wd <= 0.1 for nd, wd in trainer.seen)
    assert len({wd for _, wd in trainer.seen}) > 1
    # the untuned candidate of epoch 1 is the optimizer as built: the weights' 0.05, not the
    # no-decay group's 0 (the first group), which lies outside the space anyway
    import optuna

    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "groups" / "journal.log"))
    )
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    default = [t for t in study.trials if t.user_attrs.get("kind") == "default"]
    assert [t.params for t in default] == [{"lr": 1e-2, "weight_decay": 0.05}]


# Schedulers that set the rate when they are built: the untuned candidate is the rate the
# optimizer was built with (the schedule's base), not the rate of the moment.
BUILT_AWAY: dict[str, Make] = {
    "onecycle": lambda o: S.OneCycleLR(o, max_lr=1e-2, total_steps=40),  # starts at peak / 25
    "linear-warm-up": lambda o: S.LinearLR(o, start_factor=0.1, total_iters=20),
    "warm-up-from-0": lambda o: S.LambdaLR(o, lambda step: min(1.0, step / 10)),  # rate 0
}


class _ScheduledTrainer(_TwoGroupTrainer):
    """AdamW at lr 1e-2 with a per-step scheduler, 4 steps per epoch; records every step's
    rate per (epoch, trial)."""

    def __init__(self, make: Make) -> None:
        super().__init__()
        self.make = make
        self.rates: dict[tuple[int, int], list[float]] = {}

    def build(self, seed: int, device: Any) -> TrainingState:
        state = super().build(seed, device)
        state.scheduler = self.make(state.optimizer)
        return state

    def train_epoch(self, state: TrainingState, hparams: Any, ctx: Any) -> float:
        rates = self.rates.setdefault((ctx.epoch, ctx.trial_number), [])
        for _ in range(4):
            rates.append(state.optimizer.param_groups[1]["lr"])
            loss = super().train_epoch(state, hparams, ctx)
            state.scheduler.step()
        return loss


@pytest.mark.parametrize("name", sorted(BUILT_AWAY))
def test_the_untuned_candidate_of_a_scheduled_optimizer_is_its_untuned_training(
    tmp_path: Path, name: str
) -> None:
    from optuna.distributions import FloatDistribution

    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    trainer = _ScheduledTrainer(BUILT_AWAY[name])
    space = {
        "lr": FloatDistribution(1e-3, 1e-1, log=True),
        "betas[0]": FloatDistribution(0.8, 0.99),
    }
    run_dir = tmp_path / "sched"
    cfg = TunerConfig(run="sched", run_dir=str(run_dir), budget=8, sampler="random")
    tune_per_epoch(trainer, space, cfg)
    import optuna

    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(run_dir / "journal.log"))
    )
    names = sorted(optuna.get_all_study_names(storage))
    study = optuna.load_study(study_name=names[0], storage=storage)
    (default,) = [t for t in study.trials if t.user_attrs.get("kind") == "default"]
    # the base rate (OneCycleLR's peak; not 4e-4, 1e-3 or 0) and the built beta1 (AdamW's
    # 0.9; OneCycleLR cycles it from 0.95)
    untuned = trainer.build(0, "cpu")
    beta1 = untuned.optimizer.param_groups[1]["betas"][0]
    assert beta1 == (0.95 if name == "onecycle" else 0.9)
    assert default.params == {"lr": 1e-2, "betas[0]": beta1}
    # and it trains on the untuned schedule, step for step
    want = []
    for _ in range(4):
        want.append(untuned.optimizer.param_groups[1]["lr"])
        untuned.optimizer.step()
        untuned.scheduler.step()
    assert trainer.rates[(1, default.number)] == want


def test_own_values_read_the_base_rate_and_tuple_elements() -> None:
    from optuna_gamma.tuner.trainer import own_value

    groups = [
        {"lr": 0.0, "initial_lr": 1e-3, "betas": (0.9, 0.99), "weight_decay": 0.0},
        {"lr": 0.0, "initial_lr": 1e-2, "betas": (0.8, 0.99), "weight_decay": 0.05},
    ]
    assert own_value(groups, "lr") == 1e-2  # the largest base, as group_values maps back
    assert own_value(groups, "betas[0]") == 0.9
    assert own_value(groups, "betas[1]") == 0.99
    assert own_value(groups, "betas[2]") is None
    assert own_value(groups, "weight_decay") == 0.05
    assert own_value(groups, "momentum") is None
    onecycle = [{"lr": 4e-4, "initial_lr": 4e-4, "max_lr": 1e-2, "min_lr": 4e-8}]
    assert own_value(onecycle, "lr") == 1e-2
    assert own_value([{"lr": 3e-3}], "lr") == 3e-3  # no scheduler: the rate itself


def test_per_group_rates_keep_their_base_ratio_during_a_warm_up_from_zero() -> None:
    torch.manual_seed(0)
    body, head = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(
        [{"params": body.parameters(), "lr": 1e-3}, {"params": head.parameters(), "lr": 1e-2}]
    )
    scheduler = S.LambdaLR(optimizer, lambda step: min(1.0, step / 4))
    state = TrainingState(
        model=torch.nn.Sequential(body, head), optimizer=optimizer, scheduler=scheduler
    )
    apply_hyperparameters(state, {"lr": 0.02})  # both groups at rate 0 now
    assert [g["initial_lr"] for g in optimizer.param_groups] == pytest.approx([2e-3, 2e-2])
    _advance(state, 4)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([2e-3, 2e-2])


class _Ignores(_TwoGroupTrainer):
    """Reads ``dropout`` only with ``read=True``; never reads ``learning_rate``."""

    def __init__(self, read: bool) -> None:
        super().__init__()
        self.read = read

    def train_epoch(self, state: TrainingState, hparams: Any, ctx: Any) -> float:
        if self.read:
            assert 0.0 <= hparams.get("dropout", 0.0) <= 0.5
        return super().train_epoch(state, hparams, ctx)


class _EvaluatesToAFloat(_Ignores):
    def evaluate(self, state: TrainingState, split: str) -> Any:
        return super().evaluate(state, split)["accuracy"]


def test_an_evaluate_that_returns_a_number_is_named_in_the_first_trial(tmp_path: Path) -> None:
    """``evaluate()`` returning the accuracy alone: one error naming ``evaluate()`` and the
    value, not a missing-metric error about a ``train_loss`` it never returned."""
    from optuna.distributions import FloatDistribution

    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    space = {"lr": FloatDistribution(1e-3, 1e-1, log=True)}
    cfg = TunerConfig(run="r", run_dir=str(tmp_path / "r"), budget=4, sampler="random")
    with pytest.raises(ValueError, match=r"^evaluate\(\) must return a mapping of metrics") as err:
        tune_per_epoch(_EvaluatesToAFloat(False), space, cfg)
    assert "got float " in str(err.value) and "train_loss" not in str(err.value)


@pytest.mark.parametrize("read", [False, True])
def test_a_tuned_name_that_changes_nothing_is_named_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, read: bool
) -> None:
    from optuna.distributions import FloatDistribution

    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    space = {
        "lr": FloatDistribution(1e-3, 1e-1, log=True),
        "learning_rate": FloatDistribution(1e-3, 1e-1, log=True),  # a typo for lr
        "dropout": FloatDistribution(0.0, 0.5),
    }
    cfg = TunerConfig(run="r", run_dir=str(tmp_path / "r"), budget=4, sampler="random")
    with caplog.at_level("WARNING"):
        tune_per_epoch(_Ignores(read), space, cfg)
    unused = [r.getMessage() for r in caplog.records if "changes nothing" in r.getMessage()]
    named = sorted(m.split("'")[1] for m in unused)
    assert named == (["learning_rate"] if read else ["dropout", "learning_rate"])
    assert "it is not a key of the optimizer's parameter groups (amsgrad, betas" in unused[0]


@pytest.mark.parametrize("name", ["onecycle", "linear-warm-up"])
def test_a_tuned_setting_the_schedule_overwrites_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    # OneCycleLR cycles Adam's beta1 (cycle_momentum=True): a tuned betas[0] holds only until
    # its first step; a warm-up of the rate alone leaves it
    from optuna.distributions import FloatDistribution

    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    space = {
        "lr": FloatDistribution(1e-3, 1e-1, log=True),
        "betas[0]": FloatDistribution(0.8, 0.99),
        "weight_decay": FloatDistribution(1e-3, 0.1, log=True),
    }
    cfg = TunerConfig(run="o", run_dir=str(tmp_path / "o"), budget=4, sampler="random")
    with caplog.at_level("WARNING"):
        tune_per_epoch(_ScheduledTrainer(BUILT_AWAY[name]), space, cfg)
    changed = [r.getMessage() for r in caplog.records if "was changed during" in r.getMessage()]
    if name == "onecycle":
        assert len(changed) == 1 and changed[0].startswith("hyperparameter 'betas[0]' was")
        assert "cycle_momentum=False" in changed[0]
    else:
        assert changed == []


def _sized(epochs: int) -> dict[str, tuple[Make, float | None]]:
    """Schedules of ``_ScheduledTrainer`` (4 steps per epoch) over ``epochs`` epochs, each with
    the span it is warned about (``None``: not sized by the run, or sized right)."""
    wrong = epochs + 4
    return {
        "onecycle-right": (lambda o: S.OneCycleLR(o, max_lr=1e-2, total_steps=4 * epochs), None),
        "onecycle-budget": (lambda o: S.OneCycleLR(o, max_lr=1e-2, total_steps=4 * 12), 12),
        "cosine-right": (lambda o: S.CosineAnnealingLR(o, T_max=4 * epochs - 3), None),
        "cosine-short": (lambda o: S.CosineAnnealingLR(o, T_max=8), 2),
        "warm-up-then-cosine-long": (
            lambda o: S.SequentialLR(
                o,
                [S.LinearLR(o, 0.1, total_iters=4), S.CosineAnnealingLR(o, T_max=4 * wrong)],
                milestones=[4],
            ),
            wrong + 1,
        ),
        "step-decay": (lambda o: S.StepLR(o, step_size=4), None),
        # a linear decay to 0 sized by the budget; a linear warm-up is not sized by the run
        "linear-decay-budget": (lambda o: S.LinearLR(o, 1.0, 0.01, total_iters=4 * 12), 12),
        "linear-warm-up": (lambda o: S.LinearLR(o, 0.1, 1.0, total_iters=8), None),
    }


@pytest.mark.parametrize("name", sorted(_sized(1)))
def test_a_schedule_sized_for_another_length_than_the_run_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    # A cosine sized by the budget (12) where the final model trains the plan's epochs, or by
    # the serial plan in a run with workers, stops short of its end (or runs past it): the
    # first trial names it, with the span in epochs at the steps its epoch took
    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig
    from optuna_gamma.tuner.policies import PopulationPolicy

    epochs = PopulationPolicy(budget=12).plan.epochs
    make, span = _sized(epochs)[name]
    space = {"lr": FloatDistribution(1e-3, 1e-1, log=True)}
    cfg = TunerConfig(run="h", run_dir=str(tmp_path / "h"), budget=12, sampler="random")
    with caplog.at_level("WARNING"):
        res = tune_per_epoch(_ScheduledTrainer(make), space, cfg)
    assert res.final_epochs == epochs
    said = [r.getMessage() for r in caplog.records if "runs its course" in r.getMessage()]
    if span is None:
        assert said == []
        return
    (message,) = said
    assert f"over {span:.4g} epochs" in message and "4 steps per epoch" in message
    assert f"the run's final model trains {epochs} (ctx.epochs)" in message
    assert ("stops short of" if span > epochs else "runs past") in message
    assert "def build(self, seed, device, epochs)" in message


class _SizedByTheRun(_ScheduledTrainer):
    """``build(seed, device, epochs)``: a OneCycleLR over the run's epochs, 4 steps each."""

    def __init__(self) -> None:
        super().__init__(lambda o: o)
        self.given: list[int] = []

    def build(self, seed: int, device: Any, epochs: int) -> TrainingState:  # type: ignore[override]
        self.given.append(epochs)
        state = _TwoGroupTrainer.build(self, seed, device)
        state.scheduler = S.OneCycleLR(state.optimizer, max_lr=1e-2, total_steps=4 * epochs)
        return state


@pytest.mark.parametrize("mode", ["per-epoch", "whole", "function"])
def test_a_build_that_takes_epochs_gets_the_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    # A schedule sized by the run is made in build: one that takes `epochs` is given the epochs
    # the final model trains (those of ctx.epochs), so the schedule ends with the training and
    # no warning names it; load_state builds it the same way
    from optuna_gamma.tuner import FunctionTrainer
    from optuna_gamma.tuner import load_state
    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import tune_whole
    from optuna_gamma.tuner import TunerConfig
    from optuna_gamma.tuner.policies import PopulationPolicy
    from optuna_gamma.tuner.trainer import build_takes_epochs

    sized = _SizedByTheRun()
    trainer: Any = sized
    if mode == "function":
        trainer = FunctionTrainer(
            build=lambda seed, device, epochs: sized.build(seed, device, epochs),
            train_epoch=sized.train_epoch,
            evaluate=sized.evaluate,
        )
    space = {"lr": FloatDistribution(1e-3, 1e-1, log=True)}
    with caplog.at_level("WARNING"):
        if mode == "whole":
            cfg = TunerConfig(run="w", run_dir=str(tmp_path / "w"), epochs=3, trials_per_epoch=2)
            res: Any = tune_whole(trainer, space, cfg, sampler="random")
            expected = 3
        else:
            cfg = TunerConfig(run="p", run_dir=str(tmp_path / "p"), budget=12, sampler="random")
            res = tune_per_epoch(trainer, space, cfg)
            expected = PopulationPolicy(budget=12).plan.epochs
    assert build_takes_epochs(trainer) and set(sized.given) == {expected}
    assert {epochs for (epochs, _), rates in sized.rates.items()} <= set(range(1, expected + 1))
    assert [r.getMessage() for r in caplog.records if "runs its course" in r.getMessage()] == []
    state = load_state(res, trainer)
    assert sized.given[-1] == expected and state.scheduler.total_steps == 4 * expected
    assert state.scheduler.last_epoch == 4 * expected  # the schedule's whole course was run
    assert not build_takes_epochs(_TwoGroupTrainer())


def test_read_hyperparameters_records_reads() -> None:
    from optuna_gamma.tuner.execution.training import ReadHyperparameters

    h = ReadHyperparameters({"a": 1, "b": 2, "c": 3})
    assert h["a"] == 1 and h.get("z") is None and ("b" in h)
    assert h.read == {"a", "b", "z"} and not h.all_read
    assert isinstance(h, dict) and h == {"a": 1, "b": 2, "c": 3}
    assert dict(**h) == {"a": 1, "b": 2, "c": 3} and h.all_read


def test_metrics_may_be_tensors_and_numpy_scalars_but_not_anything() -> None:
    import numpy as np

    from optuna_gamma.tuner.execution.scoring import scalars

    w = torch.ones((), requires_grad=True)
    loss = w * 0.5  # what a loop returns: the last batch's loss, still in the graph
    assert scalars(loss, what="train_epoch()") == {"train_loss": 0.5}
    got = scalars({"accuracy": torch.tensor(0.75), "loss": np.float32(0.25)}, what="evaluate()")
    assert got == {"accuracy": 0.75, "loss": 0.25}
    assert all(type(v) is float for v in got.values())
    with pytest.raises(ValueError, match="must return a mapping of metrics, e.g. .*, got Tensor"):
        scalars(torch.ones(2), what="train_epoch()")
    # evaluate()'s metrics are read by name: a bare number (before: taken for "train_loss", so
    # the objective then said that evaluate() returned ['train_loss']) or None is refused
    assert scalars(None, what="train_epoch()") == {}
    for bare, shown in ((0.5, "got float 0.5"), (None, "got NoneType None")):
        with pytest.raises(ValueError, match=f"evaluate\\(\\) must return a mapping .*{shown}$"):
            scalars(bare, what="evaluate()", keep_lists=True, mapping_only=True)
    with pytest.raises(ValueError, match="the metric 'accuracy' = 'high', which is not a number"):
        scalars({"accuracy": "high"}, what="train_epoch()")
    # evaluate() may add lists of numbers: a confusion matrix as a NumPy array, per-class
    # values as a tensor, become plain lists (what a JSON user attribute holds)
    confusion = np.array([[3, 1], [0, 4]])
    got = scalars(
        {"accuracy": 0.5, "confusion": confusion, "per_class": torch.tensor([0.25, 0.5])},
        what="evaluate()",
        keep_lists=True,
    )
    assert got == {"accuracy": 0.5, "confusion": [[3, 1], [0, 4]], "per_class": [0.25, 0.5]}
    assert type(got["confusion"][0][0]) is int and type(got["per_class"][0]) is float
    assert scalars({"c": [np.int64(2), (np.float32(0.5),)]}, what="e", keep_lists=True) == {
        "c": [2, [0.5]]
    }
    # anything else is named, with the start of its value only (not a whole array)
    big = np.full((100, 100), "cat")
    with pytest.raises(ValueError) as err:
        scalars({"names": big}, what="evaluate()", keep_lists=True)
    assert "'names' = array([['cat', 'cat'" in str(err.value) and "a list of numbers" in str(
        err.value
    )
    assert len(str(err.value)) < 200
    with pytest.raises(ValueError, match="not a number or a list of numbers"):
        scalars({"labels": ["cat", "dog"]}, what="evaluate()", keep_lists=True)
    with pytest.raises(ValueError, match="which is not a number$"):
        scalars({"lrs": [0.1, 0.2]}, what="train_epoch()")
    # a flag computed with torch or NumPy stays a flag (before: the number 1.0, so a trainer's
    # {"diverged": torch.isnan(loss).any()} was never taken as diverged)
    nan = torch.tensor(math.nan)
    flags = {"diverged": torch.isnan(nan).any(), "ok": np.bool_(False), "n": torch.tensor(2)}
    assert scalars(flags, what="train_epoch()") == {"diverged": True, "ok": False, "n": 2.0}
    assert scalars(flags, what="train_epoch()")["diverged"] is True


class _TimmCosine:
    """The contract of timm's schedulers (``timm.scheduler.Scheduler``, timm 1.0): base rates
    in ``base_values`` from the groups' ``initial_lr``, a linear warm-up from
    ``warmup_lr_init`` in ``warmup_steps``, every step's rate computed from them and multiplied
    by a group's ``lr_scale``; ``step(epoch)`` is told the epoch. (timm itself is not a
    dependency; the same check against timm 1.0.31's ``CosineLRScheduler`` and
    ``StepLRScheduler`` is in the notes of the change.)"""

    def __init__(self, optimizer: torch.optim.Optimizer, t_initial: int, warmup_t: int) -> None:
        self.optimizer, self.param_group_field = optimizer, "lr"
        self.t_initial, self.warmup_t, self.warmup_lr_init = t_initial, warmup_t, 1e-4
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_values = [g["initial_lr"] for g in optimizer.param_groups]
        self.warmup_steps = [(v - self.warmup_lr_init) / warmup_t for v in self.base_values]
        self._update([self.warmup_lr_init] * len(self.base_values))

    def _update(self, values: list[float]) -> None:
        for group, value in zip(self.optimizer.param_groups, values):
            group["lr"] = value * group.get("lr_scale", 1.0)

    def step(self, epoch: int) -> None:
        if epoch < self.warmup_t:
            self._update([self.warmup_lr_init + epoch * s for s in self.warmup_steps])
        else:
            t = epoch - self.warmup_t
            cos = 0.5 * (1 + math.cos(math.pi * t / self.t_initial))
            self._update([v * cos for v in self.base_values])


@pytest.mark.parametrize("after", [0, 2, 5])
def test_a_timm_scheduler_takes_the_tuned_base_rate(after: int) -> None:
    def state(lr: float) -> TrainingState:
        model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
        groups: list[dict[str, Any]] = [
            {"params": model[0].parameters(), "lr_scale": 0.5},  # timm's layer-wise decay
            {"params": model[1].parameters()},
        ]
        optimizer = torch.optim.SGD(groups, lr=lr)
        return TrainingState(
            model=model, optimizer=optimizer, scheduler=_TimmCosine(optimizer, 8, 3)
        )

    def rates(s: TrainingState, start: int) -> list[float]:
        out = []
        for epoch in range(start, start + 8):
            s.scheduler.step(epoch)
            out += [g["lr"] for g in s.optimizer.param_groups]
        return out

    tuned, built = state(0.1), state(0.01)
    for s in (tuned, built):
        for epoch in range(after):
            s.scheduler.step(epoch)
    apply_hyperparameters(tuned, {"lr": 0.01})
    assert rates(tuned, after) == pytest.approx(rates(built, after), rel=1e-12)


class _BatchSized(_TwoGroupTrainer):
    """Tunes a batch size the optimizer does not hold; an untuned training uses 16.
    ``seen`` records each trial's (epoch, trial number, batch size)."""

    def __init__(self, own: Any) -> None:
        super().__init__()
        self.own = own
        self.batches: list[tuple[int, int, int]] = []

    def default_hyperparameters(self) -> Any:
        return self.own

    def train_epoch(self, state: TrainingState, hparams: Any, ctx: Any) -> float:
        self.batches.append((ctx.epoch, ctx.trial_number, int(hparams["batch_size"])))
        return super().train_epoch(state, hparams, ctx)


def _default_trials(run_dir: Path) -> list[dict[str, Any]]:
    import optuna

    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(run_dir / "journal.log"))
    )
    first = sorted(optuna.get_all_study_names(storage))[0]
    study = optuna.load_study(study_name=first, storage=storage)
    return [t.params for t in study.trials if t.user_attrs.get("kind") == "default"]


def test_the_untuned_candidate_takes_the_trainers_own_batch_size(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from optuna.distributions import FloatDistribution
    from optuna.distributions import IntDistribution

    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    space = {"lr": FloatDistribution(1e-3, 1e-1, log=True), "batch_size": IntDistribution(4, 64)}

    def run(own: Any, name: str) -> _BatchSized:
        trainer = _BatchSized(own)
        cfg = TunerConfig(run=name, run_dir=str(tmp_path / name), budget=8, progress=False)
        tune_per_epoch(trainer, space, cfg)
        return trainer

    # the built optimizer's rate and the trainer's own batch size: an untuned training's epoch
    # (before: a batch size the sampler proposed, so no candidate trained as untuned)
    trainer = run({"batch_size": 16}, "own")
    assert _default_trials(tmp_path / "own") == [{"lr": 1e-2, "batch_size": 16}]
    assert (1, 0, 16) in trainer.batches
    # a value outside the space is said and left to the sampler
    with caplog.at_level(logging.WARNING, logger="optuna_gamma"):
        run({"batch_size": 100}, "outside")
    assert any("own batch_size=100" in r.getMessage() for r in caplog.records)
    assert not any("no value of its own" in r.getMessage() for r in caplog.records)
    # no value at all: said, naming it and the fix; lr comes from the optimizer
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="optuna_gamma"):
        run({}, "none")
    (said,) = [r.getMessage() for r in caplog.records if "no value of its own" in r.getMessage()]
    assert "for batch_size (" in said and "returning {'batch_size': ...}" in said
    assert "its untuned candidate trains with sampled ones" in said
    # nothing of its own at all: no untuned candidate is made, and that is said
    caplog.clear()
    only = {"batch_size": space["batch_size"]}
    cfg = TunerConfig(run="only", run_dir=str(tmp_path / "only"), budget=8, progress=False)
    with caplog.at_level(logging.WARNING, logger="optuna_gamma"):
        tune_per_epoch(_BatchSized({}), only, cfg)
    (said,) = [r.getMessage() for r in caplog.records if "no value of its own" in r.getMessage()]
    assert "so it has none" in said
    assert _default_trials(tmp_path / "only") == []
    # the finished run called again: epoch 1 is history, nothing to say about its race
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="optuna_gamma"):
        again = tune_per_epoch(_BatchSized({}), only, cfg)
    assert again.new_trials == 0
    assert not [r for r in caplog.records if "no value of its own" in r.getMessage()]
    # the optimizer's own rate outside the range: said as such (not "no value of its own")
    caplog.clear()
    narrow = {**space, "lr": FloatDistribution(1e-3, 5e-3, log=True)}
    cfg = TunerConfig(run="narrow", run_dir=str(tmp_path / "narrow"), budget=8, progress=False)
    with caplog.at_level(logging.WARNING, logger="optuna_gamma"):
        tune_per_epoch(_BatchSized({"batch_size": 16}), narrow, cfg)
    untuned = [r.getMessage() for r in caplog.records if "untuned" in r.getMessage()]
    assert len(untuned) == 1 and "the optimizer's own lr=0.01 (as build() made it)" in untuned[0]
    assert "widen the high end of 'lr' in the search space to include it" in untuned[0]
    (default,) = _default_trials(tmp_path / "none")
    assert default["lr"] == 1e-2 and 4 <= default["batch_size"] <= 64
    # the thesis's policy races no untuned candidate: nothing to say
    caplog.clear()
    cfg = TunerConfig(
        run="thesis",
        run_dir=str(tmp_path / "thesis"),
        policy="thesis",
        epochs=1,
        trials_per_epoch=2,
        progress=False,
    )
    with caplog.at_level(logging.WARNING, logger="optuna_gamma"):
        tune_per_epoch(_BatchSized({}), space, cfg)
    assert not any("no value of its own" in r.getMessage() for r in caplog.records)
    (default,) = _default_trials(tmp_path / "outside")
    assert default["lr"] == 1e-2 and 4 <= default["batch_size"] <= 64
    # a method that returns no mapping is refused before any work
    with pytest.raises(ValueError, match=r"default_hyperparameters\(\) must return a mapping"):
        run([16], "bad")
    assert not (tmp_path / "bad").exists()


def test_trainer_defaults_of_a_function_trainer_and_bad_ones() -> None:
    from optuna_gamma.tuner import FunctionTrainer
    from optuna_gamma.tuner.trainer import trainer_defaults

    def nothing(*args: Any) -> Any:
        return None

    plain = FunctionTrainer(build=nothing, train_epoch=nothing, evaluate=nothing)
    assert trainer_defaults(plain) == {}
    given = FunctionTrainer(nothing, nothing, nothing, defaults={"batch_size": 8})
    assert trainer_defaults(given) == {"batch_size": 8}
    assert trainer_defaults(_TwoGroupTrainer()) == {}  # no such member

    class Attribute(_TwoGroupTrainer):
        default_hyperparameters = {"batch_size": 8}  # a dict, not a method

    with pytest.raises(ValueError, match="must be a method returning a mapping"):
        trainer_defaults(Attribute())


class _KeepsItsOwnState(_TwoGroupTrainer):
    """Counts steps in an attribute, keeps an EMA module outside the state and a handle on the
    model's weight (a part of the state, restored with it); ``name`` never changes."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0
        self.name = "mine"
        self.ema = torch.nn.Linear(3, 2)
        self.bad = torch.full((2,), math.nan)  # unchanged NaN: not a change

    def build(self, seed: int, device: Any) -> TrainingState:
        state = super().build(seed, device)
        self.weight = state.model.weight
        return state

    def train_epoch(self, state: TrainingState, hparams: Any, ctx: Any) -> float:
        self.steps += 1
        with torch.no_grad():
            for p, q in zip(self.ema.parameters(), state.model.parameters()):
                p.mul_(0.5).add_(0.5 * q)
        return super().train_epoch(state, hparams, ctx)


def test_trainer_attributes_that_training_changes_are_named_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from optuna.distributions import FloatDistribution

    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    space = {"lr": FloatDistribution(1e-3, 1e-1, log=True)}
    cfg = TunerConfig(run="a", run_dir=str(tmp_path / "a"), budget=4, sampler="random")
    with caplog.at_level("WARNING", logger="optuna_gamma"):
        tune_per_epoch(_KeepsItsOwnState(), space, cfg)
    named = [r.getMessage() for r in caplog.records if "train_epoch() " in r.getMessage()]
    assert len(named) == 2  # once each, at the first trial; not 'name', 'weight' or 'bad'
    assert "changed the trainer's attribute 'steps' (from 0 to 1)" in named[0]
    assert "trained the trainer's module attribute 'ema'" in named[1]
    assert "TrainingState.extra" in named[1]
    caplog.clear()
    with caplog.at_level("WARNING", logger="optuna_gamma"):  # a trainer that keeps none
        tune_per_epoch(_TwoGroupTrainer(), space, _with_run_dir(cfg, tmp_path / "b"))
    assert not [r for r in caplog.records if "train_epoch() " in r.getMessage()]


def _with_run_dir(cfg: Any, run_dir: Path) -> Any:
    from dataclasses import replace

    return replace(cfg, run=run_dir.name, run_dir=str(run_dir))


@pytest.mark.parametrize(
    ("space", "said"),
    [
        (
            {"eps[0]": FloatDistribution(1e-9, 1e-6, log=True)},
            "'eps' is 1e-08, which has no element",
        ),
        ({"betas": FloatDistribution(0.8, 0.99)}, "a tuple; tune one element"),
        ({"weight_decay": CategoricalDistribution([0.0, "high"])}, "needs a number"),
    ],
)
def test_a_space_the_optimizer_cannot_take_is_refused_before_any_study(
    tmp_path: Path, space: dict[str, Any], said: str
) -> None:
    import optuna

    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    storage = f"sqlite:///{tmp_path / 'runs.db'}"
    config = TunerConfig(run="r", run_dir=str(tmp_path / "r"), budget=4, storage=storage)
    trainer = _BatchSized({})  # AdamW
    with pytest.raises(ValueError, match=said):
        tune_per_epoch(trainer, {"lr": FloatDistribution(1e-3, 1e-1, log=True), **space}, config)
    assert optuna.get_all_study_names(storage) == []  # before: trial 0 failed on it
    assert trainer.batches == []  # nothing trained
