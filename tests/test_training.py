"""The built-in SGD epoch and the tuner's state snapshots: seeded epochs, exact resumption,
snapshots of model and optimizer, stored states, input checks."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any
from typing import TYPE_CHECKING

import pytest


if TYPE_CHECKING:
    import torch
else:
    torch = pytest.importorskip("torch")
import optuna  # noqa: E402
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from optuna_gamma.tuner import PerEpochResult  # noqa: E402
from optuna_gamma.tuner.builtin.data import load_dataset  # noqa: E402
from optuna_gamma.tuner.builtin.data import Split  # noqa: E402
from optuna_gamma.tuner.builtin.models import build_model  # noqa: E402
from optuna_gamma.tuner.builtin.training import default_device  # noqa: E402
from optuna_gamma.tuner.builtin.training import make_optimizer  # noqa: E402
from optuna_gamma.tuner.builtin.training import train_one_epoch  # noqa: E402
from optuna_gamma.tuner.persistence.states import StateStore  # noqa: E402
from optuna_gamma.tuner.persistence.states import StateUnavailableError  # noqa: E402
from optuna_gamma.tuner.trainer import apply_hyperparameters  # noqa: E402
from optuna_gamma.tuner.trainer import capture  # noqa: E402
from optuna_gamma.tuner.trainer import EpochContext  # noqa: E402
from optuna_gamma.tuner.trainer import LAYOUT  # noqa: E402
from optuna_gamma.tuner.trainer import restore  # noqa: E402
from optuna_gamma.tuner.trainer import TrainingState  # noqa: E402


CPU = torch.device("cpu")


def capture_state(model: nn.Module, opt: torch.optim.Optimizer) -> dict:
    return capture(TrainingState(model=model, optimizer=opt))


def restore_state(model: nn.Module, opt: torch.optim.Optimizer, snapshot: dict) -> None:
    restore(TrainingState(model=model, optimizer=opt), snapshot)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", None, seed=0)


@pytest.fixture(scope="module")
def mnist500(data_root: Path, tmp_path_factory: pytest.TempPathFactory):
    return load_dataset(
        "mnist", data_root, subset=500, seed=0, cache_dir=tmp_path_factory.mktemp("cache")
    )


def _accuracy(model: nn.Module, split: Split) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(split.x).argmax(1) == split.y).float().mean())


def _assert_state_equal(a: dict, b: dict) -> None:
    assert type(a) is type(b) or (isinstance(a, dict) and isinstance(b, dict))
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_state_equal(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_state_equal(x, y)
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b)
    else:
        assert a == b


class _Recorder(nn.Module):
    """Wraps a model and records the labels-free inputs it sees (to check batch order)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.batches: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(x[:, 0].detach().clone())
        return self.inner(x)


def _indexed_split(n: int = 103) -> Split:
    """x[:, 0] holds the sample index, so recorded batches reveal the order."""
    x = torch.zeros(n, 4)
    x[:, 0] = torch.arange(n, dtype=torch.float32)
    return Split(x=x, y=torch.arange(n) % 3)


def test_one_epoch_on_digits_is_accurate_and_deterministic(digits) -> None:
    results = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)  # must not matter
        model = build_model("mlp", digits.input_shape, digits.n_classes, seed=0)
        opt = make_optimizer(model, lr=0.1, momentum=0.9, weight_decay=1e-3)
        loss = train_one_epoch(model, opt, digits.train, batch_size=50, seed=5, device=CPU)
        results.append((loss, model.state_dict(), _accuracy(model, digits.valid)))
    (loss_a, state_a, acc_a), (loss_b, state_b, acc_b) = results
    assert math.isfinite(loss_a) and 0 < loss_a < math.log(10)
    assert acc_a > 0.8
    assert loss_a == loss_b and acc_a == acc_b
    _assert_state_equal(state_a, state_b)


def test_same_seed_same_batches_independent_of_global_rng() -> None:
    split = _indexed_split(103)
    orders = []
    for seed, global_seed in [(4, 0), (4, 99), (5, 0)]:
        torch.manual_seed(global_seed)
        rec = _Recorder(nn.Linear(4, 3))
        train_one_epoch(
            rec, make_optimizer(rec, lr=0.01), split, batch_size=10, seed=seed, device=CPU
        )
        assert [len(b) for b in rec.batches] == [10] * 10 + [3]
        order = torch.cat(rec.batches).long()
        assert sorted(order.tolist()) == list(range(103))  # every sample once per epoch
        orders.append(order)
    assert torch.equal(orders[0], orders[1])
    assert not torch.equal(orders[0], orders[2])
    assert not torch.equal(orders[0], torch.arange(103))


def test_global_rng_state_is_untouched() -> None:
    split = _indexed_split(40)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 3))
    torch.manual_seed(0)
    before = torch.get_rng_state()
    train_one_epoch(model, make_optimizer(model, lr=0.1), split, batch_size=8, seed=1, device=CPU)
    assert torch.equal(torch.get_rng_state(), before)


def test_dropout_masks_come_from_the_seed(digits) -> None:
    def run(seed: int, global_seed: int) -> dict:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))
        opt = make_optimizer(model, lr=0.05)
        torch.manual_seed(global_seed)
        train_one_epoch(
            model, opt, digits.train, batch_size=len(digits.train), seed=seed, device=CPU
        )
        return model.state_dict()

    # One full batch: the order does not matter, only the dropout masks do.
    _assert_state_equal(run(3, 10), run(3, 20))
    a, b = run(3, 10), run(4, 10)
    assert not torch.equal(a["0.weight"], b["0.weight"])


def test_mean_loss_is_weighted_over_batches(digits) -> None:
    """With a negligible step the model stays put, so the epoch's loss is the loss at the start,
    whatever the batching (the last batch here has 49 samples, weighted accordingly)."""
    model = build_model("mlp", digits.input_shape, digits.n_classes, seed=1)
    with torch.no_grad():
        start = float(F.cross_entropy(model(digits.train.x), digits.train.y))
    for bs in (len(digits.train), 100):
        m = build_model("mlp", digits.input_shape, digits.n_classes, seed=1)
        loss = train_one_epoch(
            m, make_optimizer(m, lr=1e-12), digits.train, batch_size=bs, seed=0, device=CPU
        )
        assert loss == pytest.approx(start, rel=1e-6)


def test_restore_then_train_equals_uninterrupted_training(mnist500) -> None:
    """Train e1, capture, train e2  vs  restore into a fresh model + optimizer, train e2."""
    d = mnist500

    def fresh(seed: int, lr: float):
        m = build_model("thesis-cnn", d.input_shape, d.n_classes, seed=seed)
        return m, make_optimizer(m, lr=lr, momentum=0.9, weight_decay=1e-3)

    model, opt = fresh(0, 0.05)
    train_one_epoch(model, opt, d.train, batch_size=50, seed=1, device=CPU)
    state = capture_state(model, opt)
    assert state["optimizer"]["state"], "momentum buffers must be part of the snapshot"
    snapshot = capture_state(model, opt)
    loss_a = train_one_epoch(model, opt, d.train, batch_size=50, seed=2, device=CPU)
    uninterrupted = capture_state(model, opt)
    _assert_state_equal(state["model"], snapshot["model"])  # training on does not alter a capture
    _assert_state_equal(state["optimizer"], snapshot["optimizer"])

    for _ in range(2):  # restoring twice from the same state: no aliasing into the state
        model_b, opt_b = fresh(123, 0.7)  # different weights and lr before the restore
        restore_state(model_b, opt_b, state)
        assert opt_b.param_groups[0]["lr"] == 0.05
        loss_b = train_one_epoch(model_b, opt_b, d.train, batch_size=50, seed=2, device=CPU)
        assert loss_b == loss_a
        resumed = capture_state(model_b, opt_b)
        _assert_state_equal(resumed["model"], uninterrupted["model"])
        _assert_state_equal(resumed["optimizer"], uninterrupted["optimizer"])
    _assert_state_equal(state["optimizer"], snapshot["optimizer"])


def test_forked_trials_differ_by_their_hyperparameters(digits) -> None:
    model = build_model("mlp", digits.input_shape, digits.n_classes, seed=0)
    opt = make_optimizer(model, lr=0.1, momentum=0.5)
    train_one_epoch(model, opt, digits.train, seed=0, device=CPU)
    state = capture_state(model, opt)
    losses: dict[float, list[float]] = {}
    for lr in (0.01, 0.3, 0.01):
        m = build_model("mlp", digits.input_shape, digits.n_classes)
        o = make_optimizer(m, lr=1.0)
        restore_state(m, o, state)
        apply_hyperparameters(
            TrainingState(model=m, optimizer=o), {"lr": lr, "weight_decay": 1e-3, "batch_size": 7}
        )
        assert all(
            g["lr"] == lr and g["weight_decay"] == 1e-3 and g["momentum"] == 0.5
            for g in o.param_groups
        )
        losses.setdefault(lr, []).append(train_one_epoch(m, o, digits.train, seed=1, device=CPU))
    assert losses[0.01][0] == losses[0.01][1]
    assert losses[0.01][0] != losses[0.3][0]


def test_restore_rejects_a_state_of_another_model(digits) -> None:
    a = build_model("mlp", (64,), 10)
    state = capture_state(a, make_optimizer(a, lr=0.1))
    b = build_model("mlp", (32,), 10)
    with pytest.raises(ValueError, match="does not fit the trainer's model"):
        restore_state(b, make_optimizer(b, lr=0.1), state)
    with pytest.raises(ValueError, match="components"):
        restore_state(a, make_optimizer(a, lr=0.1), {"model": {}})


def test_stored_state_round_trip_and_refusals(digits, tmp_path: Path) -> None:
    from optuna.artifacts import FileSystemArtifactStore

    model = build_model("mlp", digits.input_shape, digits.n_classes, seed=0)
    opt = make_optimizer(model, lr=0.1, momentum=0.9)
    train_one_epoch(model, opt, digits.train, seed=0, device=CPU)
    state = capture_state(model, opt)
    (tmp_path / "a").mkdir()
    store = StateStore(FileSystemArtifactStore(tmp_path / "a"))
    study = optuna.create_study()
    trial = study.ask()
    ident = store.save(state, trial, "s.pt")
    assert [p.name for p in (tmp_path / "a").iterdir()] == [ident]
    assert optuna.artifacts.get_all_artifact_meta(trial)[0].filename == "s.pt"  # dashboard sees it
    loaded = store.load(ident)
    _assert_state_equal(loaded["model"], state["model"])
    _assert_state_equal(loaded["optimizer"], state["optimizer"])

    m2 = build_model("mlp", digits.input_shape, digits.n_classes, seed=9)
    o2 = make_optimizer(m2, lr=0.5)
    restore_state(m2, o2, loaded)
    assert train_one_epoch(m2, o2, digits.train, seed=3, device=CPU) == train_one_epoch(
        model, opt, digits.train, seed=3, device=CPU
    )

    with pytest.raises(StateUnavailableError, match="missing"):
        store.load("00000000-0000-0000-0000-000000000000")
    torch.save(
        {"weights": torch.zeros(2)}, tmp_path / "a" / "11111111-1111-1111-1111-111111111111"
    )
    with pytest.raises(StateUnavailableError, match="not an optuna-gamma state"):
        store.load("11111111-1111-1111-1111-111111111111")
    data = (tmp_path / "a" / ident).read_bytes()
    (tmp_path / "a" / ident).write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(StateUnavailableError, match="unreadable"):
        store.load(ident)
    store.remove(ident)
    store.remove(ident)  # removing twice is fine
    assert not (tmp_path / "a" / ident).exists()


def test_divergence_stops_early_with_a_non_finite_loss(digits) -> None:
    rec = _Recorder(build_model("mlp", digits.input_shape, digits.n_classes, seed=0))
    opt = make_optimizer(rec, lr=1e12)
    loss = train_one_epoch(rec, opt, digits.train, batch_size=10, seed=0, device=CPU)
    assert not math.isfinite(loss)
    assert len(rec.batches) < math.ceil(len(digits.train) / 10)


def test_input_validation(digits) -> None:
    model = build_model("mlp", (64,), 10)
    for bad in (0, -0.1, math.nan, math.inf, "0.1", True):
        with pytest.raises(ValueError, match="lr"):
            make_optimizer(model, lr=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="momentum"):
        make_optimizer(model, lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        make_optimizer(model, lr=0.1, weight_decay=-1e-3)
    opt = make_optimizer(model, lr=0.1)
    for bad_size in (0, 2.5, True, None):
        with pytest.raises(ValueError, match="batch_size"):
            train_one_epoch(model, opt, digits.train, batch_size=bad_size, device=CPU)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed"):
        train_one_epoch(model, opt, digits.train, seed=-1, device=CPU)
    with pytest.raises(ValueError, match="empty"):
        train_one_epoch(
            model, opt, Split(torch.zeros(0, 64), torch.zeros(0, dtype=torch.long)), device=CPU
        )


def test_default_device() -> None:
    assert default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_epoch_and_state_move_between_devices(digits) -> None:
    model = build_model("mlp", digits.input_shape, digits.n_classes, seed=0)
    opt = make_optimizer(model, lr=0.1, momentum=0.9)
    loss = train_one_epoch(model, opt, digits.train, seed=0)  # default device: cuda
    assert math.isfinite(loss) and next(model.parameters()).is_cuda
    state = capture_state(model, opt)
    assert all(not t.is_cuda for t in state["model"].values())
    cpu_model = build_model("mlp", digits.input_shape, digits.n_classes)
    cpu_opt = make_optimizer(cpu_model, lr=0.1)
    restore_state(cpu_model, cpu_opt, state)
    train_one_epoch(cpu_model, cpu_opt, digits.train, seed=1, device=CPU)
    assert _accuracy(cpu_model, digits.valid) > 0.8


def test_restore_leaves_no_gradient_behind() -> None:
    model = nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    state = TrainingState(model=model, optimizer=optimizer)
    snapshot = capture(state)
    F.mse_loss(model(torch.ones(4, 3)), torch.zeros(4, 2)).backward()  # a step never taken
    assert all(p.grad is not None for p in model.parameters())
    restore(state, snapshot)
    assert all(p.grad is None for p in model.parameters())


class _Accumulating:
    """Steps every 3 batches of 4, so every epoch ends with one batch's gradient not yet used
    (``zero_grad`` after the step, as many loops are written); ``interrupt_at`` raises a
    KeyboardInterrupt in the middle of that epoch's first trial, as Ctrl-C would."""

    def __init__(self, interrupt_at: int | None = None) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(64, 5, generator=g)
        self.y = (self.x[:, 0] > 0).long()
        self.interrupt_at = interrupt_at

    def build(self, seed: int, device: object) -> TrainingState:
        torch.manual_seed(seed)
        model = nn.Linear(5, 2)
        return TrainingState(model=model, optimizer=torch.optim.Adam(model.parameters()))

    def train_epoch(self, state: TrainingState, hparams: object, ctx: EpochContext) -> float:
        for i in range(4):
            if i == 2 and ctx.epoch == self.interrupt_at:
                self.interrupt_at = None
                raise KeyboardInterrupt
            batch = slice(16 * i, 16 * (i + 1))
            F.cross_entropy(state.model(self.x[batch]), self.y[batch]).backward()
            if i % 3 == 2:
                state.optimizer.step()
                state.optimizer.zero_grad()
        return 0.0

    def evaluate(self, state: TrainingState, split: str) -> dict[str, float]:
        with torch.no_grad():
            out = state.model(self.x)
        return {
            "accuracy": float((out.argmax(1) == self.y).float().mean()),
            "loss": float(F.cross_entropy(out, self.y)),
        }


def test_an_interrupted_epoch_resumes_as_if_never_interrupted(tmp_path: Path) -> None:
    from optuna.distributions import FloatDistribution

    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    space = {"lr": FloatDistribution(1e-3, 1e-1, log=True)}

    def run(trainer: _Accumulating, name: str) -> PerEpochResult:
        config = TunerConfig(run="acc", run_dir=str(tmp_path / name), budget=8, progress=False)
        return tune_per_epoch(trainer, space, config)

    straight = run(_Accumulating(), "straight")
    interrupted = _Accumulating(interrupt_at=3)
    with pytest.raises(KeyboardInterrupt):
        run(interrupted, "resumed")
    # the same call again, in the same process (the trial trained before it left a gradient):
    # the trial cut short is trained again from its start state, as the first run trained it
    resumed = run(interrupted, "resumed")
    assert [e.value for e in resumed.schedule] == [e.value for e in straight.schedule]
    assert resumed.test == straight.test


def test_a_model_with_lazy_parameters_is_refused_at_build(tmp_path: Path) -> None:
    from optuna.distributions import FloatDistribution

    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    class Lazy(_Accumulating):
        def build(self, seed: int, device: object) -> TrainingState:
            model = nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.LazyLinear(2))
            return TrainingState(model=model, optimizer=torch.optim.SGD(model.parameters()))

    # before: a traceback from deep inside the state snapshot
    config = TunerConfig(run="lazy", run_dir=str(tmp_path / "lazy"), budget=4, progress=False)
    space = {"lr": FloatDistribution(1e-3, 1e-1, log=True)}
    with pytest.raises(ValueError, match=r"uninitialized \(lazy\) parameters \(0.weight, 0.bias"):
        tune_per_epoch(Lazy(), space, config)


def test_every_trial_starts_in_the_modules_modes_as_built(tmp_path: Path) -> None:
    from optuna.distributions import FloatDistribution

    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    class Forgets(_Accumulating):
        """Never calls ``model.train()``; ``evaluate`` leaves the model in eval mode."""

        def __init__(self) -> None:
            super().__init__()
            self.modes: list[bool] = []

        def build(self, seed: int, device: object) -> TrainingState:
            model = nn.Sequential(nn.Linear(5, 8), nn.Dropout(0.5), nn.Linear(8, 2))
            return TrainingState(model=model, optimizer=torch.optim.Adam(model.parameters()))

        def train_epoch(self, state: TrainingState, hparams: object, ctx: EpochContext) -> float:
            self.modes.append(all(m.training for m in state.model.modules()))
            return super().train_epoch(state, hparams, ctx)

        def evaluate(self, state: TrainingState, split: str) -> dict[str, float]:
            state.model.eval()
            return super().evaluate(state, split)

    trainer = Forgets()
    config = TunerConfig(run="modes", run_dir=str(tmp_path / "modes"), budget=8, progress=False)
    tune_per_epoch(trainer, {"lr": FloatDistribution(1e-3, 1e-1, log=True)}, config)
    # as in a fresh process (a worker, a resumed run): dropout on in every trial, not only in
    # the first one (before, every later trial trained in the mode evaluate() had left)
    assert len(trainer.modes) == 8 and all(trainer.modes)


class _Unfreezing(_Accumulating):
    """Fine-tuning as it is often written: ``build`` freezes the backbone and gives the optimizer
    the head alone; the epoch ``unfreeze_at`` unfreezes the backbone and adds it to the optimizer
    as a second parameter group (a smaller rate), once. ``starts`` records, per call, the epoch,
    whether the backbone was frozen and how many groups the optimizer had when it began."""

    def __init__(self, unfreeze_at: int = 2) -> None:
        super().__init__()
        self.unfreeze_at = unfreeze_at
        self.starts: list[tuple[int, bool, int]] = []

    def build(self, seed: int, device: object) -> TrainingState:
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))
        model[0].requires_grad_(False)
        optimizer = torch.optim.SGD(model[2].parameters(), lr=0.1, momentum=0.9)
        return TrainingState(model=model, optimizer=optimizer)

    def train_epoch(self, state: TrainingState, hparams: object, ctx: EpochContext) -> float:
        backbone = state.model.get_submodule("0")
        self.starts.append(
            (ctx.epoch, not backbone.weight.requires_grad, len(state.optimizer.param_groups))
        )
        if ctx.epoch == self.unfreeze_at:
            backbone.requires_grad_(True)
            state.optimizer.add_param_group({"params": list(backbone.parameters()), "lr": 0.01})
        return super().train_epoch(state, hparams, ctx)


def _unfreezing_context(epoch: int) -> EpochContext:
    return EpochContext(
        epoch=epoch, seed=epoch, device=CPU, trial_number=0, generator=torch.Generator()
    )


def test_a_restored_state_keeps_its_frozen_parameters_and_added_groups() -> None:
    trainer = _Unfreezing(unfreeze_at=2)
    straight = trainer.build(0, CPU)
    built = capture(straight)
    for epoch in (1, 2):
        trainer.train_epoch(straight, {}, _unfreezing_context(epoch))
    unfrozen = capture(straight)
    # a fresh process (a worker, a resumed run): the trainer builds its state, then restores;
    # before, the optimizer refused the state ("a different number of parameter groups")
    fresh = trainer.build(0, CPU)
    restore(fresh, unfrozen)
    assert (
        fresh.model.get_submodule("0").weight.requires_grad
        and len(fresh.optimizer.param_groups) == 2
    )
    assert [g["lr"] for g in fresh.optimizer.param_groups] == [0.1, 0.01]
    assert fresh.optimizer.param_groups[1]["params"][0] is fresh.model.get_submodule("0").weight
    # ... and trains on exactly as the uninterrupted training does (momentum buffers included;
    # the gradient an epoch of this trainer leaves behind is dropped, as every restore does)
    straight.optimizer.zero_grad(set_to_none=True)
    trainer.train_epoch(straight, {}, _unfreezing_context(3))
    trainer.train_epoch(fresh, {}, _unfreezing_context(3))
    for a, b in zip(straight.model.parameters(), fresh.model.parameters()):
        assert torch.equal(a, b)
    # a state from before the unfreezing, restored into the unfrozen one (the same process,
    # a trial after another): frozen again, one group, as built
    restore(straight, built)
    assert not straight.model.get_submodule("0").weight.requires_grad
    assert len(straight.optimizer.param_groups) == 1
    assert (
        straight.optimizer.param_groups[0]["params"][0] is straight.model.get_submodule("2").weight
    )
    # a state stored before layouts were recorded loads as it did
    legacy = {k: v for k, v in unfrozen.items() if k != LAYOUT}
    restore(straight, built)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        restore(straight, legacy)


def test_a_run_that_unfreezes_and_adds_a_group_mid_race_runs_every_trial_from_its_state(
    tmp_path: Path,
) -> None:
    from optuna.distributions import FloatDistribution

    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    space = {"lr": FloatDistribution(1e-3, 1e-1, log=True)}
    trainer = _Unfreezing(unfreeze_at=2)
    config = TunerConfig(run="ft", run_dir=str(tmp_path / "ft"), budget=24, progress=False)
    # the first race trains its settings over the unfreezing epoch, a rung at a time; before,
    # the second setting's restore into the optimizer the first had grown raised a ValueError
    result = tune_per_epoch(trainer, space, config)
    assert result.compute_epochs == 24
    assert len({s for s in trainer.starts if s[0] == 1}) == 1  # every trial: as built
    assert all(frozen and groups == 1 for epoch, frozen, groups in trainer.starts if epoch <= 2)
    assert all(not frozen and groups == 2 for epoch, frozen, groups in trainer.starts if epoch > 2)


class _Augmented(torch.utils.data.Dataset):
    """Four items, each a random "augmentation" drawn where the loader loads it."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.rand(1)


@pytest.mark.parametrize("persistent", [True, False])
def test_a_loader_whose_workers_outlive_an_epoch_is_named_and_not_deterministic(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, persistent: bool
) -> None:
    import logging

    from optuna.distributions import FloatDistribution
    from torch.utils.data import DataLoader

    from optuna_gamma.tuner import TunerConfig
    from optuna_gamma.tuner.execution.engine import Engine
    from optuna_gamma.tuner.trainer import seeded_rng

    trainer = _Accumulating()
    loader = DataLoader(_Augmented(), num_workers=1, persistent_workers=persistent)
    trainer.loaders = {"train": loader}  # type: ignore[attr-defined]
    # why it matters: two trials of an epoch, under the epoch's seed, draw the same
    # augmentations only where the loader's worker starts afresh
    draws = []
    for _ in range(2):
        with seeded_rng(7, CPU):
            draws.append(torch.cat(list(loader)).tolist())
    assert (draws[0] == draws[1]) is not persistent
    config = TunerConfig(run="pl", run_dir=str(tmp_path / "pl"), budget=4, progress=False)
    space = {"lr": FloatDistribution(1e-3, 1e-1, log=True)}
    with caplog.at_level(logging.WARNING, logger="optuna_gamma"):
        engine = Engine(trainer, space, config, "per-epoch")
    named = [r.getMessage() for r in caplog.records if "persistent_workers=True" in r.getMessage()]
    assert engine.deterministic is not persistent
    if persistent:
        (message,) = named
        assert "DataLoader loaders['train'] keeps its worker processes" in message
    else:
        assert named == []


class _LoadersInBuild(_Accumulating):
    """Makes its loaders in ``build``, nested two levels deep, as many trainers do."""

    def build(self, seed: int, device: object) -> TrainingState:
        from torch.utils.data import DataLoader

        loader = DataLoader(_Augmented(), num_workers=1, persistent_workers=True)
        self.loaders = {"train": {"mnist": loader}, "data": list(range(100))}
        return super().build(seed, device)


def test_a_persistent_loader_made_in_build_is_named_and_not_deterministic(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from optuna.distributions import FloatDistribution

    from optuna_gamma import GammaBOSampler
    from optuna_gamma.tuner import TunerConfig
    from optuna_gamma.tuner.execution.engine import Engine

    config = TunerConfig(run="lb", run_dir=str(tmp_path / "lb"), budget=4, progress=False)
    space = {"lr": FloatDistribution(1e-3, 1e-1, log=True)}
    with caplog.at_level(logging.WARNING, logger="optuna_gamma"):
        engine = Engine(_LoadersInBuild(), space, config, "per-epoch")
        assert engine.deterministic  # nothing to see before build
        with engine.opened():
            assert not engine.deterministic
            sampler = engine.plan.factory(0)
    assert isinstance(sampler, GammaBOSampler)
    assert not sampler.gp_settings.deterministic_objective  # the sampler is told so too
    named = [r.getMessage() for r in caplog.records if "persistent_workers=True" in r.getMessage()]
    assert len(named) == 1 and "DataLoader loaders['train']['mnist'] keeps" in named[0]


def test_an_optimizer_that_cannot_take_the_states_groups_is_a_clear_error() -> None:
    trainer = _Unfreezing(unfreeze_at=1)
    state = trainer.build(0, CPU)
    trainer.train_epoch(state, {}, _unfreezing_context(1))
    unfrozen = capture(state)
    fresh = trainer.build(0, CPU)

    def refuse(group: object) -> None:  # e.g. a wrapper optimizer without add_param_group
        raise TypeError("add_param_group is not supported")

    fresh.optimizer.add_param_group = refuse  # type: ignore[method-assign,assignment]
    with pytest.raises(ValueError, match="has 2 parameter groups, and the trainer's optimizer"):
        restore(fresh, unfrozen)


@pytest.mark.parametrize(
    ("layout", "error"),
    [
        ("frozen", "bad layout record"),
        ({"frozen": 5, "groups": None}, "bad layout record"),
        ({"frozen": [], "groups": [["model:0.weight", 3]]}, "bad layout record"),
        ({"frozen": [], "groups": "model:0.weight"}, "bad layout record"),
        ({"frozen": [], "groups": [["model:9.weight"]]}, "a parameter the trainer's model lacks"),
    ],
)
def test_a_forged_layout_is_refused_with_a_clear_error(layout: object, error: str) -> None:
    # a state comes from a storage: its layout is checked, never trusted
    trainer = _Unfreezing()
    state = trainer.build(0, CPU)
    snapshot = {**capture(state), LAYOUT: layout}
    with pytest.raises(ValueError, match=error):
        restore(trainer.build(0, CPU), snapshot)


class _Counting(_Accumulating):
    """Keeps plain data in ``extra``: a step counter and a per-epoch loss history, which a
    trial's start state must hold as the training that made it left them."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int, list[float]]] = []

    def build(self, seed: int, device: object) -> TrainingState:
        state = super().build(seed, device)
        state.extra.update(steps=0, history=[], note={"stage": "warm-up"})
        return state

    def train_epoch(self, state: TrainingState, hparams: object, ctx: EpochContext) -> float:
        self.seen.append((ctx.epoch, state.extra["steps"], list(state.extra["history"])))
        super().train_epoch(state, hparams, ctx)
        state.extra["steps"] += 1
        state.extra["history"].append(float(ctx.epoch))
        state.extra["note"]["stage"] = "main"
        return 0.0


def test_plain_data_in_extra_is_captured_and_restored_by_value() -> None:
    trainer = _Counting()
    state = trainer.build(0, CPU)
    built = capture(state)
    for epoch in (1, 2):
        trainer.train_epoch(state, {}, _unfreezing_context(epoch))
    after = capture(state)
    assert (after["extra.steps"], after["extra.history"]) == (2, [1.0, 2.0])
    # restored in place of the mutated values, never aliased: training on does not reach the
    # snapshot, and a second restore gives the stored values again
    restore(state, built)
    assert state.extra == {"steps": 0, "history": [], "note": {"stage": "warm-up"}}
    state.extra["history"].append(9.0)
    restore(state, built)
    assert state.extra["history"] == [] and built["extra.history"] == []
    fresh = trainer.build(0, CPU)
    restore(fresh, after)
    assert fresh.extra == {"steps": 2, "history": [1.0, 2.0], "note": {"stage": "main"}}
    # tensors in plain data come back where the model lives (a snapshot holds CPU copies)
    device = default_device()
    state.model.to(device)
    state.extra["ema_loss"] = torch.tensor([0.5], device=device)
    with_tensor = capture(state)
    assert with_tensor["extra.ema_loss"].device.type == "cpu"
    restore(state, with_tensor)
    assert state.extra["ema_loss"].device == torch.tensor(0.0, device=device).device
    from optuna_gamma.tuner.trainer import _on

    moved = _on({"a": [torch.ones(2)], "b": (torch.zeros(1), 3)}, torch.device("meta"))
    assert moved["a"][0].is_meta and moved["b"][0].is_meta and moved["b"][1] == 3
    # a stored value that is not plain data (a forged state) is refused
    with pytest.raises(ValueError, match="bad value for extra.history"):
        restore(fresh, {**after, "extra.history": object()})


def test_a_run_keeps_plain_extras_per_trial_and_resumes_with_them(tmp_path: Path) -> None:
    from optuna.distributions import FloatDistribution

    from optuna_gamma.tuner import load_state
    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    space = {"lr": FloatDistribution(1e-3, 1e-1, log=True)}
    trainer = _Counting()
    config = TunerConfig(run="count", run_dir=str(tmp_path / "count"), budget=12, progress=False)
    result = tune_per_epoch(trainer, space, config)
    # before: AttributeError: 'int' object has no attribute 'state_dict'. Every trial starts with
    # the counter and history of its own start state, whichever trial ran before it
    assert trainer.seen and all(
        steps == epoch - 1 and history == [float(e) for e in range(1, epoch)]
        for epoch, steps, history in trainer.seen
    )
    final = load_state(result, _Counting())
    assert final.extra["steps"] == result.final_epochs
    assert final.extra["note"] == {"stage": "main"}


class _MakesASchedulerLate(_Accumulating):
    """Makes its LR scheduler in the first ``train_epoch`` (``if state.scheduler is None``)."""

    def train_epoch(self, state: TrainingState, hparams: object, ctx: EpochContext) -> float:
        if state.scheduler is None:
            state.scheduler = torch.optim.lr_scheduler.StepLR(state.optimizer, 1, gamma=0.9)
        super().train_epoch(state, hparams, ctx)
        state.scheduler.step()
        return 0.0


class _SwapsItsOptimizer(_Accumulating):
    def train_epoch(self, state: TrainingState, hparams: object, ctx: EpochContext) -> float:
        state.optimizer = torch.optim.SGD(state.model.parameters(), lr=0.01)
        return super().train_epoch(state, hparams, ctx)


class _DropsItsExtra(_Counting):
    def train_epoch(self, state: TrainingState, hparams: object, ctx: EpochContext) -> float:
        del state.extra["note"]
        return 0.0


class _KeepsAnUnstorableExtra(_Accumulating):
    def build(self, seed: int, device: object) -> TrainingState:
        state = super().build(seed, device)
        state.extra["log"] = open  # neither a state_dict nor plain data
        return state


@pytest.mark.parametrize(
    ("trainer", "error"),
    [
        (_MakesASchedulerLate, r"train_epoch\(\) added scheduler \(torch.optim.lr_scheduler"),
        (_SwapsItsOptimizer, r"replaced optimizer \(torch.optim.adam.Adam\) by torch.optim.sgd"),
        (_DropsItsExtra, r"train_epoch\(\) removed extra\['note'\]"),
        (_KeepsAnUnstorableExtra, r"build\(\) returned .*extra\['log'\] is a builtin_function"),
    ],
)
def test_a_component_build_did_not_make_is_refused_at_the_first_trial(
    tmp_path: Path, trainer: type, error: str
) -> None:
    from optuna.distributions import FloatDistribution

    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    # before: the second trial's restore failed ("the trainer builds ['model', 'optimizer',
    # 'scheduler']"), or a worker or resumed run restored into a state without the component
    space = {"lr": FloatDistribution(1e-3, 1e-1, log=True)}
    config = TunerConfig(run="late", run_dir=str(tmp_path / "late"), budget=12, progress=False)
    with pytest.raises(ValueError, match=error) as info:
        tune_per_epoch(trainer(), space, config)
    if trainer is not _KeepsAnUnstorableExtra:
        assert "make it there" in str(info.value)


class _NoTestSplit(_Accumulating):
    """Has no test split: ``evaluate(state, "test")`` raises as a dict lookup would, until
    fixed to return ``{}`` (``mse`` only: a regression's own metric)."""

    def __init__(self) -> None:
        super().__init__()
        self.fixed: dict[str, float] | None = None
        self.trained = 0

    def train_epoch(self, state: TrainingState, hparams: object, ctx: EpochContext) -> float:
        self.trained += 1
        return super().train_epoch(state, hparams, ctx)

    def evaluate(self, state: TrainingState, split: str) -> dict[str, float]:
        if split == "test":
            if self.fixed is None:
                raise KeyError("test")
            return self.fixed
        return super().evaluate(state, split)


def test_a_failed_test_evaluation_says_the_training_is_kept_and_a_rerun_only_tests(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from optuna.distributions import FloatDistribution

    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    space = {"lr": FloatDistribution(1e-3, 1e-1, log=True)}
    config = TunerConfig(run="nt", run_dir=str(tmp_path / "nt"), budget=8, progress=False)
    trainer = _NoTestSplit()
    with pytest.raises(KeyError) as info:
        tune_per_epoch(trainer, space, config)
    # before: a bare KeyError after the whole run, and no word on what was kept
    (note,) = getattr(info.value, "__notes__", [])
    assert "evaluate(state, 'test'), failed (KeyError)" in note
    assert "training is complete and stored" in note and "returns {} for it" in note
    assert trainer.trained == 8 and not (tmp_path / "nt" / "result.json").exists()
    trainer.fixed = {}
    with caplog.at_level(logging.INFO, logger="optuna_gamma"):
        result = tune_per_epoch(trainer, space, config)
    assert trainer.trained == 8 and result.new_trials == 0 and result.test == {}
    assert (tmp_path / "nt" / "result.json").exists()
    (done,) = [r.getMessage() for r in caplog.records if "done:" in r.getMessage()]
    assert "; test" not in done
    # a trainer whose test metrics are its own: the closing line names them
    trainer.fixed = {"mse": 0.25}
    caplog.clear()
    config = TunerConfig(run="nt", run_dir=str(tmp_path / "mse"), budget=8, progress=False)
    with caplog.at_level(logging.INFO, logger="optuna_gamma"):
        result = tune_per_epoch(trainer, space, config)
    (done,) = [r.getMessage() for r in caplog.records if "done:" in r.getMessage()]
    assert result.test == {"mse": 0.25} and done.endswith("; test mse 0.25")
    # an objective that is one of the test metrics is named first (before: the accuracy alone,
    # so a run that minimized the loss closed on a number it had not optimized)
    trainer.fixed = {"accuracy": 0.9, "loss": 0.25}
    caplog.clear()
    config = TunerConfig(
        run="ls", run_dir=str(tmp_path / "ls"), budget=8, progress=False, objective="min:loss"
    )
    with caplog.at_level(logging.INFO, logger="optuna_gamma"):
        result = tune_per_epoch(trainer, space, config)
    (done,) = [r.getMessage() for r in caplog.records if "done:" in r.getMessage()]
    assert done.endswith("; test loss 0.25, accuracy 0.9000")
    assert "\ntest: loss 0.25  accuracy 0.9000\n" in str(result)  # the summary the CLI prints


class _ModelOfInit(_Accumulating):
    """Makes its model once, in ``__init__``; ``build`` hands out that object (``reset``: with
    its initial weights loaded again, which makes it a fresh start)."""

    def __init__(self, reset: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.model = nn.Linear(5, 2)
        self.start = {k: v.clone() for k, v in self.model.state_dict().items()}
        self.reset = reset

    def build(self, seed: int, device: object) -> TrainingState:
        if self.reset:
            self.model.load_state_dict(self.start)
        return TrainingState(model=self.model, optimizer=torch.optim.Adam(self.model.parameters()))


@pytest.mark.parametrize("reset", [False, True])
def test_a_model_an_earlier_run_left_is_named_when_built_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, reset: bool
) -> None:
    from optuna.distributions import FloatDistribution

    from optuna_gamma.tuner import load_state
    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    trainer = _ModelOfInit(reset)
    space = {"lr": FloatDistribution(1e-3, 1e-1, log=True)}

    def run(seed: int) -> PerEpochResult:
        name = f"s{seed}"
        config = TunerConfig(run=name, run_dir=str(tmp_path / name), budget=4, seed=seed)
        return tune_per_epoch(trainer, space, config)

    said = "returned the model an earlier run in this process trained"
    with caplog.at_level(logging.WARNING, logger="optuna_gamma"):
        first = run(0)
        assert not any(said in r.getMessage() for r in caplog.records)  # a first build: fresh
        load_state(first, trainer)  # loads the final model into it: nothing to say
        assert not any(said in r.getMessage() for r in caplog.records)
        second = run(1)
    named = [r.getMessage() for r in caplog.records if said in r.getMessage()]
    if reset:  # build loads the initial weights: a fresh start, not named
        assert named == []
    else:  # the second run's epoch 1 starts from the first's trained model: named, with the fix
        assert (
            len(named) == 1
            and "seed 1" in named[0]
            and "make the model and optimizer in" in (named[0])
        )
    assert second.new_trials == first.new_trials == 4


class _ConfusedEvaluation(_Accumulating):
    """Adds a NumPy confusion matrix to its validation and test metrics, as scikit-learn's
    ``confusion_matrix`` returns it."""

    def evaluate(self, state: TrainingState, split: str) -> dict[str, Any]:
        from sklearn.metrics import confusion_matrix

        with torch.no_grad():
            predicted = state.model(self.x).argmax(1)
        return {
            **super().evaluate(state, split),
            "confusion": confusion_matrix(self.y.numpy(), predicted.numpy(), labels=[0, 1]),
        }


def test_a_numpy_confusion_matrix_in_the_validation_metrics_is_kept_as_a_list(
    tmp_path: Path,
) -> None:
    from optuna.distributions import FloatDistribution

    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    # before: accepted by the check before the run, then every trial failed on it
    config = TunerConfig(run="cm", run_dir=str(tmp_path / "cm"), budget=4, progress=False)
    result = tune_per_epoch(
        _ConfusedEvaluation(), {"lr": FloatDistribution(1e-3, 1e-1, log=True)}, config
    )
    for entry in result.schedule:
        matrix = entry.metrics["confusion"]
        assert len(matrix) == 2 and sum(map(sum, matrix)) == 64
    assert sum(map(sum, result.test["confusion"])) == 64


class _FlagsItsDivergence(_Accumulating):
    """Says a rate above 0.05 diverged with a 0-d boolean tensor, as ``torch.isnan(...)`` or
    a comparison of tensors gives it."""

    def train_epoch(self, state: TrainingState, hparams: Any, ctx: EpochContext) -> Any:
        super().train_epoch(state, hparams, ctx)
        return {"train_loss": 0.0, "diverged": torch.tensor(hparams["lr"]) > 0.05}


def test_a_divergence_flag_given_as_a_tensor_is_taken(tmp_path: Path) -> None:
    from optuna.distributions import FloatDistribution

    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    config = TunerConfig(
        run="f", run_dir=str(tmp_path / "f"), sampler="grid:4", policy="thesis", epochs=1,
        trials_per_epoch=4, progress=False,
    )  # fmt: skip
    result = tune_per_epoch(
        _FlagsItsDivergence(), {"lr": FloatDistribution(1e-3, 1e-1, log=True)}, config
    )
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "f" / "journal.log"))
    )
    (name,) = optuna.get_all_study_names(storage)
    trials = optuna.load_study(study_name=name, storage=storage).trials
    flagged = {t.params["lr"] > 0.05 for t in trials if t.user_attrs.get("diverged")}
    assert flagged == {True} and len(trials) == 4
    assert sum(bool(t.user_attrs.get("diverged")) for t in trials) == 1  # 0.1 of the 4 points
    assert result.schedule[0].params["lr"] <= 0.05


def test_a_validation_list_too_large_for_every_trial_is_left_out_and_said_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from optuna.distributions import FloatDistribution

    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig
    from optuna_gamma.tuner.execution import training

    monkeypatch.setattr(training, "MAX_VALID_LIST", 3)  # the 2 x 2 matrix holds 4 numbers
    config = TunerConfig(run="big", run_dir=str(tmp_path / "big"), budget=4, progress=False)
    with caplog.at_level(logging.WARNING, logger="optuna_gamma"):
        result = tune_per_epoch(
            _ConfusedEvaluation(), {"lr": FloatDistribution(1e-3, 1e-1, log=True)}, config
        )
    said = [
        r.getMessage() for r in caplog.records if "'confusion' with 4 numbers" in r.getMessage()
    ]
    assert len(said) == 1 and "return it for the 'test' split" in said[0]
    assert all("confusion" not in entry.metrics for entry in result.schedule)
    assert sum(map(sum, result.test["confusion"])) == 64  # the test split's is kept
