"""Per-epoch tuning against what a user would do instead, at equal compute.

A tuner benchmark (results in ``benchmarks/tuner/results/peers/``) that reuses the thesis
benchmarks' plumbing (:mod:`benchmarks.thesis.common`) and their trainer.

Question: which method reaches the best *test* accuracy per unit of compute? Compute is counted
in training epochs (one epoch of one model over the training split). The per-epoch tuner with
``T = 12`` trials per epoch for ``E`` epochs costs ``B = 12 E`` epochs; every peer gets the same
budget ``B`` unless its row says otherwise. All methods train the same model on the same data
split with the same SGD settings (thesis CNN, mini-batch 50, weight decay 0.001), search ``lr``
in [0.001, 0.5] on a log scale (the tuner's default range), and select by the same validation
objective, the project's unclipped kappa_1 (docs/design.md §3); none sees the test set.

Arms:

``pe-gamma``, ``pe-gaussian``, ``pe-gp``, ``pe-grid12``, ``pe-gamma-kappa2``
    the tuner's per-epoch mode (thesis fig. 8) with ``GammaBOSampler`` (Student-t; Gaussian),
    Optuna's ``GPSampler``, a 12-point log grid per epoch, and Gamma with kappa_2: ``B`` epochs.
``pe-gamma-t4``
    per-epoch gamma with 4 trials per epoch (2 start-up + 2 BO) for ``3 E`` epochs: the same
    budget ``B`` spent on more epochs and fewer trials (not in the thesis).
``fixed-0.01``, ``fixed-0.1``
    one training at a constant learning rate (Keras's SGD default, and ten times it), tested
    after ``E`` epochs (compute ``E``) and after ``B`` epochs (the whole budget on one model).
``grid12-best``
    the best of a 12-point log grid of constant learning rates, each trained ``E`` epochs
    (the tuner's whole mode): ``B``.
``grid11-cosine``
    the best learning rate of an 11-point log grid (``11 E``), then one ``E``-epoch training with
    cosine annealing from it (``torch.optim.lr_scheduler.CosineAnnealingLR``, stepped per epoch):
    ``B``.
``tpe-whole``, ``gp-whole``
    Optuna's TPE and GP samplers over constant learning rates, 2 start-up + 10 trials of ``E``
    epochs each (whole mode): ``B``.
``pbt``, ``pb2``
    Ray Tune's ``PopulationBasedTraining`` and ``PB2``: a population of 12 trained for ``E``
    epochs with exploit/explore after every epoch (``perturbation_interval=1``, ``synch=True``,
    quantile 0.25), on a local Ray instance with 1 CPU (one trial at a time, 1 CPU per trial):
    ``B``. PBT perturbs ``lr`` (x0.8 / x1.2, or a log-uniform resample with probability 0.25);
    PB2 models ``log10(lr)`` in [-3, log10(0.5)] (its bounds are linear, so the log scale is
    given to it as the parameter). The result is the member with the best final validation
    objective. Needs the ``peers`` extra (``pip install -e '.[peers]'``: ``ray[tune]``, ``GPy``).

Tasks (``--dataset``, :data:`TASKS`): ``mnist`` (the thesis's MNIST-500: 400 train / 100
validation), ``fashion-mnist`` (held out from the thesis: a 1,000-image subset, 800 / 200),
``cifar10`` (5,000 images, the Keras CIFAR-10 CNN), and ``own-fashion``: a user's own trainer of
another kind (``examples/own_training.py``: a BatchNorm MLP, AdamW, a DataLoader with batches
of 64) on the Fashion-MNIST subset, with ``lr`` in [1e-4, 0.03] and ``weight_decay`` in
[1e-5, 0.1] tuned on log scales by every method (PBT perturbs both, PB2 models both logs), and
``untuned`` (AdamW as its ``build`` makes it: lr 1e-3, weight decay 0.01) in place of the
``fixed-*`` arms; the lr-only arms (``pe-gamma`` ... ``gp-whole``) are the thesis's and refuse
it. Test on the official 10,000 test images. Defaults: ``E = 10`` (``B = 120``), seeds 0-4;
``--full`` (for a GPU): the full training sets, ``E = 20``, seeds 0-4.

    python -m benchmarks.tuner.peers --dataset mnist
    python -m benchmarks.tuner.peers --dataset fashion-mnist
    python -m benchmarks.tuner.peers --dataset cifar10 --arms pe-pop pe-pop-w12 pb2 pbt fixed-0.01
    python -m benchmarks.tuner.peers --dataset own-fashion --arms pe-pop pe-pop-w12 pb2 pbt \
        untuned
    python -m benchmarks.tuner.peers --summary-only --dataset mnist
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import json
import math
import os
from pathlib import Path
import random
import time
from typing import Any

from benchmarks.thesis import common as tc


NAME = "peers"
#: Where the cells, tables and pages go (``--out``).
RESULTS_DIR = Path(__file__).resolve().parent / "results" / "peers"
LR_LOW, LR_HIGH = 1e-3, 0.5
TRIALS = 12
PER_EPOCH = ("pe-gamma", "pe-gaussian", "pe-gp", "pe-grid12", "pe-gamma-kappa2")
#: Per-epoch gamma with 4 trials per epoch for 3 E epochs: the same budget spent on depth.
DEEP = ("pe-gamma-t4",)
PEERS = (
    "fixed-0.01",
    "fixed-0.1",
    "grid12-best",
    "grid11-cosine",
    "tpe-whole",
    "gp-whole",
    "pbt",
    "pb2",
)
#: PBT and PB2 with a population of W (W at a time) for ``B / W`` epochs: the peers of the
#: policy's ``pe-pop-wW`` arms at the same wall time.
RAY_WIDTHS = tuple(f"{kind}-w{w}" for w in (2, 3, 4, 8) for kind in ("pbt", "pb2"))
#: The tuner's policies (docs/design.md §7) at the same budget B: the default population policy
#: serial (``pe-pop``) and with 12 trials at a time (``pe-pop-w12``: the wall time of 12 workers
#: for B / 12 epochs), and the ablation of what makes it pay (docs/when-it-pays.md).
POLICIES: dict[str, dict[str, Any]] = {
    "pe-pop": {"width": 1},
    "pe-pop-w12": {"width": 12},
    # 2 at a time (two GPUs): the serial races two trials at a time, an explorer racing the
    # adopted setting throughout (two_as_serial), or one carried state and one explorer anywhere
    # per epoch, adopted on its value (the population of 2: the default before it)
    "pe-pop-w2": {"width": 2},
    "pe-pop-w2-population": {"width": 2, "two_as_serial": False},
    # 3, 4 and 8 at a time (a node of 4 or 8 GPUs); three at a time as a population of two
    # carried states and one explorer anywhere (the default before three_as_serial)
    "pe-pop-w3": {"width": 3},
    "pe-pop-w3-population": {"width": 3, "three_as_serial": False},
    "pe-pop-w4": {"width": 4},
    "pe-pop-w8": {"width": 8},
    # 12 at a time without the late perturbation (the default before it; the 12-at-a-time
    # ablation's variants below are of it)
    "pe-pop-w12-no-late": {"width": 12, "late_population": False},
    # serial, no explorer race in the budget's last fifth (the default until they raced there;
    # the serial ablation's variants below are of it, or of the default before it)
    "pe-pop-no-late": {"width": 1, "explore_after": None},
    # serial explorers anywhere in the space (the default until they stayed near their parent;
    # the serial ablation's variants below are of it)
    "pe-pop-anywhere": {"width": 1, "explore_radius": None, "explore_after": None},
    "pe-pop-explore-all": {
        "width": 1,
        "explore_until": 1.0,
        "explore_radius": None,
        "explore_after": None,
    },
    "pe-pop-explore-none": {
        "width": 1,
        "explore_until": 0.0,
        "explore_radius": None,
        "explore_after": None,
    },
    "pe-pop-always": {
        "width": 1,
        "challenge": "always",
        "explore_radius": None,
        "explore_after": None,
    },
    "pe-pop-w12-carry1": {"width": 12, "carry": 1, "late_population": False},
    "pe-pop-rung1": {"width": 1, "rung": 1, "explore_radius": None, "explore_after": None},
    "pe-pop-w12-nohist": {"width": 12, "history": False, "late_population": False},
    "pe-thesis-t2": {"thesis": 2},
    # pe-pop-no-late on a validation split twice as large (40 % of the images, taken from the
    # training split: the trainer option of _TRAINER_OPTIONS)
    "pe-pop-valid40": {"width": 1, "explore_after": None},
    # adoption on the posterior mean of a GP over (setting, age) instead of the raw value
    "pe-pop-posterior": {"width": 1, "adopt_on": "posterior", "explore_after": None},
    "pe-pop-w12-posterior": {
        "width": 12,
        "adopt_on": "posterior",
        "late_population": False,
    },
}
#: Trainer options of policy arms that change the trainer rather than the policy (the thesis's
#: trainer only: ``ThesisTrainer(valid_fraction=...)``; the default is 0.2).
_TRAINER_OPTIONS: dict[str, dict[str, Any]] = {"pe-pop-valid40": {"valid_fraction": 0.4}}
#: The untuned training of a task whose trainer is not the thesis's (its own optimizer
#: settings, e.g. AdamW's lr and weight decay as ``build`` sets them): compute E and B, as the
#: ``fixed-*`` arms.
UNTUNED = "untuned"
ARMS = PER_EPOCH + DEEP + PEERS + RAY_WIDTHS + tuple(POLICIES) + (UNTUNED,)


@dataclass(frozen=True)
class Task:
    """A benchmark task: a trainer on a dataset, what is tuned and what "untuned" means.

    Attributes:
        label: The name in tables and pictures.
        dataset: The data set (:func:`optuna_gamma.tuner.builtin.data.load_dataset`).
        subset: Training images by default (``None``: all).
        model: The built-in model (:class:`~optuna_gamma.tuner.ThesisTrainer`), or ``None`` for
            a user's own trainer, ``make_trainer`` of ``example`` in ``examples/``.
        bounds: Each tuned hyperparameter's range, searched on a log scale by every method.
        untuned: What the trainer trains with when nobody tunes it.
        fixed: The other hyperparameters every trial and member trains with.
        needs_root: The data set needs a data root (no Debian package provides it).
        example: The file in ``examples/`` of an own trainer: ``own_training.py`` (SmallNet,
            AdamW, a DataLoader) or ``own_sequence.py`` (a GRU over the rows, AdamW, a cosine
            schedule over the epochs its ``build`` is given).
    """

    label: str
    dataset: str
    subset: int | None
    model: str | None
    bounds: Mapping[str, tuple[float, float]]
    untuned: Mapping[str, float]
    fixed: Mapping[str, Any]
    needs_root: bool = True
    example: str = "own_training.py"

    @property
    def own(self) -> bool:
        """The trainer is a user's own (``examples/``), not the thesis's."""
        return self.model is None

    @property
    def untuned_arm(self) -> str:
        """The arm that trains without tuning (``fixed-0.01``: the thesis's Keras SGD default)."""
        return UNTUNED if self.own else "fixed-0.01"


_THESIS_LR = {"lr": (LR_LOW, LR_HIGH)}
#: The tasks of docs/when-it-pays.md (``digits`` and ``own-digits``: the smoke tests' small
#: tasks).
TASKS: dict[str, Task] = {
    "mnist": Task("MNIST", "mnist", 500, "thesis-cnn", _THESIS_LR, {"lr": 0.01}, {}),
    "fashion-mnist": Task(
        "Fashion-MNIST", "fashion-mnist", 1000, "thesis-cnn", _THESIS_LR, {"lr": 0.01}, {}, False
    ),
    "cifar10": Task("CIFAR-10", "cifar10", 5000, "keras-cifar-cnn", _THESIS_LR, {"lr": 0.01}, {}),
    "own-fashion": Task(
        "own trainer (Fashion-MNIST, AdamW)",
        "fashion-mnist",
        1000,
        None,
        {"lr": (1e-4, 3e-2), "weight_decay": (1e-5, 1e-1)},
        {"lr": 1e-3, "weight_decay": 1e-2},
        {"batch_size": 64},
        False,
    ),
    "digits": Task("digits", "digits", None, "mlp", _THESIS_LR, {"lr": 0.01}, {}, False),
    "own-digits": Task(
        "own trainer (digits, AdamW)",
        "digits",
        None,
        None,
        {"lr": (1e-4, 3e-2), "weight_decay": (1e-5, 1e-1)},
        {"lr": 1e-3, "weight_decay": 1e-2},
        {"batch_size": 64},
        False,
    ),
    "own-sequence": Task(
        "own GRU (digits rows, AdamW, cosine)",
        "digits",
        None,
        None,
        {"lr": (1e-4, 3e-2), "weight_decay": (1e-5, 1e-1)},
        {"lr": 3e-3, "weight_decay": 1e-2},
        {"batch_size": 64},
        False,
        "own_sequence.py",
    ),
    "own-sequence-fashion": Task(
        "own GRU (Fashion-MNIST rows, AdamW, cosine)",
        "fashion-mnist",
        1000,
        None,
        {"lr": (1e-4, 3e-2), "weight_decay": (1e-5, 1e-1)},
        {"lr": 3e-3, "weight_decay": 1e-2},
        {"batch_size": 64},
        False,
        "own_sequence.py",
    ),
}
DATASETS = {name: task.subset for name, task in TASKS.items()}


def space(task: str = "mnist") -> Any:
    """The search space of ``task``: the thesis's lr range, or the tuned ranges (log scale)."""
    from optuna.distributions import FloatDistribution

    from optuna_gamma.tuner import SearchSpace

    t = TASKS[task]
    if not t.own:
        return SearchSpace(lr_low=LR_LOW, lr_high=LR_HIGH, lr_log=True)
    return {k: FloatDistribution(lo, hi, log=True) for k, (lo, hi) in t.bounds.items()}


class _WithFixed:
    """A trainer whose every epoch also gets ``fixed`` hyperparameters (e.g. the batch size of
    a task that does not tune it)."""

    def __init__(self, base: Any, fixed: Mapping[str, Any]) -> None:
        self.base, self.fixed = base, dict(fixed)

    def build(self, seed: int, device: Any, epochs: int | None = None) -> Any:
        from optuna_gamma.tuner.trainer import build_state

        return build_state(self.base, seed, device, epochs)

    def train_epoch(self, state: Any, hparams: Mapping[str, Any], ctx: Any) -> Any:
        return self.base.train_epoch(state, {**self.fixed, **hparams}, ctx)

    def evaluate(self, state: Any, split: str) -> Any:
        return self.base.evaluate(state, split)


def make_trainer(
    dataset: str, root: str | None, subset: int | None, seed: int, **options: Any
) -> Any:
    """The trainer of task ``dataset`` (a name of :data:`TASKS`), with ``options`` for
    :class:`~optuna_gamma.tuner.ThesisTrainer` (e.g. ``valid_fraction``)."""
    t = TASKS[dataset]
    if t.own and options:
        raise ValueError(f"task {dataset!r} has its own trainer, which takes no {sorted(options)}")
    if t.own:  # loaded as a user's file is (optuna-gamma tune --trainer FILE:FACTORY)
        from optuna_gamma.tuner import load_trainer
        from optuna_gamma.tuner import TrainerRef

        ref = TrainerRef(
            f"{tc.REPO / 'examples' / t.example}:make_trainer",
            {"dataset": t.dataset, "data_root": root, "subset": subset},
        )
        return _WithFixed(load_trainer(ref), t.fixed)
    from optuna_gamma.tuner import ThesisTrainer

    # The thesis CNN on the image datasets (digits, used by the smoke tests, gets its MLP).
    return ThesisTrainer(
        t.dataset,
        root,
        model=None if t.dataset == "digits" else t.model,
        subset=subset,
        data_seed=seed,
        **options,
    )


def point_sampler(point: Mapping[str, float]) -> Any:
    """A sampler factory that trains exactly ``point`` (one value per tuned parameter)."""
    return tc.grid_sampler({k: [float(v)] for k, v in point.items()}, label=UNTUNED)


class CosineTrainer:
    """A trainer (the tuner's protocol) that adds per-epoch cosine annealing to another one.

    ``build`` attaches ``CosineAnnealingLR(optimizer, T_max=epochs)``; ``train_epoch`` trains
    one epoch with the wrapped trainer and then steps the scheduler, so epoch ``e`` (1-based)
    trains at ``lr0 * (1 + cos(pi (e - 1) / epochs)) / 2``. The tuner sets ``lr0`` on the
    optimizer and on the scheduler's ``base_lrs``
    (:func:`optuna_gamma.tuner.apply_hyperparameters`).
    Meant for whole mode (:func:`optuna_gamma.tuner.tune_whole`): one trial trains all epochs.
    """

    def __init__(self, base: Any, epochs: int) -> None:
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs!r}")
        self.base = base
        self.epochs = int(epochs)
        self.deterministic = bool(getattr(base, "deterministic", True))

    def search_space(self) -> Any:
        return self.base.search_space()

    def describe(self) -> dict[str, Any]:
        describe = getattr(self.base, "describe", None)
        return {
            **(dict(describe()) if callable(describe) else {}),
            "scheduler": f"cosine(T_max={self.epochs})",
        }

    def build(self, seed: int, device: Any) -> Any:
        import torch

        state = self.base.build(seed, device)
        state.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            state.optimizer, T_max=self.epochs
        )
        return state

    def train_epoch(self, state: Any, hparams: Mapping[str, Any], ctx: Any) -> Any:
        out = self.base.train_epoch(state, hparams, ctx)
        state.scheduler.step()
        return out

    def evaluate(self, state: Any, split: str) -> Any:
        return self.base.evaluate(state, split)


# --------------------------------------------------------------------------------------------
# tuner-based arms
def policy_of(arm: str, budget: int) -> Any:
    """The policy object of a policy arm at ``budget`` training epochs."""
    from optuna_gamma.tuner.policies import PopulationPolicy
    from optuna_gamma.tuner.policies import ThesisPolicy

    settings = dict(POLICIES[arm])
    if "thesis" in settings:
        t = settings["thesis"]
        return ThesisPolicy(trials=t, epochs=budget // t)
    return PopulationPolicy(budget=budget, **settings)


#: The arms run by ``tc.run_per_epoch``: sampler, objective, trials per epoch, the epochs (in
#: units of E) after which the adopted model is tested, and whether also after B = 12 E.
_PER_EPOCH_RUNS: dict[str, tuple[str, str, int, int, bool]] = {
    "pe-gamma": ("gamma", "kappa1", TRIALS, 1, False),
    "pe-gaussian": ("gaussian", "kappa1", TRIALS, 1, False),
    "pe-gp": ("gp", "kappa1", TRIALS, 1, False),
    "pe-grid12": ("grid:12", "kappa1", TRIALS, 1, False),
    "pe-gamma-kappa2": ("gamma", "kappa2", TRIALS, 1, False),
    "pe-gamma-t4": ("gamma", "kappa1", 4, 3, False),
    "fixed-0.01": ("fixed:0.01", "kappa1", 1, 1, True),
    "fixed-0.1": ("fixed:0.1", "kappa1", 1, 1, True),
}
#: The whole-training searches: the sampler over constant learning rates.
_WHOLE_RUNS = {"grid12-best": "grid:12", "tpe-whole": "tpe", "gp-whole": "gp"}


def _grid_cosine(args: Any, trainer: Any, run_dir: Path, seed: int, epochs: int) -> dict[str, Any]:
    """``grid11-cosine``: the best of 11 constant rates, then cosine annealing from it (the
    thesis's tasks: one tuned parameter, ``lr``)."""
    grid = tc.run_whole(
        args,
        trainer,
        space(),
        run_dir / "grid",
        sampler="grid:11",
        objective="kappa1",
        seed=seed,
        trials=TRIALS - 1,
        epochs=epochs,
    )
    cos = tc.run_whole(
        args,
        CosineTrainer(trainer, epochs),
        space(),
        run_dir / "cosine",
        sampler=tc.fixed_points_sampler([grid["lr"]]),
        objective="kappa1",
        seed=seed,
        trials=1,
        epochs=epochs,
    )
    return {
        **cos,
        "grid_lr": grid["lr"],
        "grid_valid_accuracy": grid["valid_accuracy"],
        "grid_test": grid["test"],
        "compute_epochs": grid["compute_epochs"] + cos["compute_epochs"],
        "compute_time": grid["compute_time"] + cos["compute_time"],
        "wall_time": grid["wall_time"] + cos["wall_time"],
    }


def _tested(args: Any, epochs: list[int], limit: int) -> list[int]:
    """``epochs`` and, for an untuned training of ``limit`` epochs, the ``--also-test`` epochs
    up to ``limit`` (the wall time of ``B / W`` epochs for ``W`` at a time)."""
    extra = [e for e in getattr(args, "also_test", None) or [] if 0 < e <= limit]
    return sorted(set(epochs) | set(extra))


def run_tuner_arm(
    args: Any, arm: str, dataset: str, subset: int | None, seed: int, epochs: int, root: str | None
) -> dict[str, Any]:
    run_dir = args.runs_dir / NAME / f"{dataset}-s{seed}-{arm}"
    trainer = make_trainer(dataset, root, subset, seed, **_TRAINER_OPTIONS.get(arm, {}))
    budget = TRIALS * epochs
    task = TASKS[dataset]
    if task.own and arm not in POLICIES and arm != UNTUNED:
        raise ValueError(
            f"arm {arm!r} searches the thesis's learning rate only; task {dataset!r} tunes "
            f"{sorted(task.bounds)}: run the policies, {UNTUNED!r}, pbt and pb2"
        )
    if arm in POLICIES:
        rec = tc.run_policy(
            args,
            trainer,
            space(dataset),
            run_dir,
            policy=policy_of(arm, budget),
            objective="kappa1",
            seed=seed,
        )
    elif arm == UNTUNED:
        from optuna_gamma.tuner.trainer import build_takes_epochs

        rec = tc.run_per_epoch(
            args,
            trainer,
            space(dataset),
            run_dir,
            sampler=point_sampler(task.untuned),
            objective="kappa1",
            seed=seed,
            trials=1,
            test_after=_tested(args, [epochs, budget], budget),
            # a schedule sized by the run: a training of E epochs is one of its own
            fresh=build_takes_epochs(trainer),
        )
    elif arm in _PER_EPOCH_RUNS:
        sampler, obj, trials, tested_at, and_budget = _PER_EPOCH_RUNS[arm]
        rec = tc.run_per_epoch(
            args,
            trainer,
            space(dataset),
            run_dir,
            sampler=sampler,
            objective=obj,
            seed=seed,
            trials=trials,
            test_after=_tested(
                args,
                [tested_at * epochs, budget] if and_budget else [tested_at * epochs],
                budget if trials == 1 else 0,
            ),
        )
    elif arm in _WHOLE_RUNS:
        rec = tc.run_whole(
            args,
            trainer,
            space(dataset),
            run_dir,
            sampler=_WHOLE_RUNS[arm],
            objective="kappa1",
            seed=seed,
            trials=TRIALS,
            epochs=epochs,
        )
    elif arm == "grid11-cosine":
        rec = _grid_cosine(args, trainer, run_dir, seed, epochs)
    else:
        raise ValueError(arm)
    tc.remove_dir(run_dir)
    return rec


# --------------------------------------------------------------------------------------------
# Ray Tune arms (PBT, PB2)
def member_step(
    trainer: Any,
    state: Any,
    lr: float | Mapping[str, float],
    epoch: int,
    seed: int,
    device: Any,
    fixed: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one population member one epoch with hyperparameters ``lr`` (a learning rate, or
    every tuned value by name) and validate it (no Ray needed).

    The batch order and dropout masks of epoch ``epoch`` are the same for every member (the
    epoch's seed), as in the tuner's trials. ``fixed``: the other hyperparameters (default:
    the thesis's mini-batch of 50).
    """
    import torch

    from optuna_gamma.tuner import apply_hyperparameters
    from optuna_gamma.tuner import EpochContext
    from optuna_gamma.tuner.search.objectives import kappa_1

    params = {"lr": float(lr)} if isinstance(lr, (int, float)) else dict(lr)
    apply_hyperparameters(state, params)
    epoch_seed = (int(seed) * 100_003 + int(epoch)) % (2**31)
    ctx = EpochContext(
        epoch=epoch,
        seed=epoch_seed,
        device=device,
        trial_number=0,
        generator=torch.Generator().manual_seed(epoch_seed),
    )
    t0 = time.perf_counter()
    trainer.train_epoch(state, {**({"batch_size": 50} if fixed is None else fixed), **params}, ctx)
    t1 = time.perf_counter()
    m = trainer.evaluate(state, "valid")
    t2 = time.perf_counter()
    acc, loss = float(m["accuracy"]), float(m["loss"])
    ok = math.isfinite(loss) and loss < 1e6
    # A diverged member gets a clearly bad finite objective, so PBT replaces it.
    objective = kappa_1(acc, loss, clip=False) if ok else -100.0
    return {
        "objective": objective,
        "valid_accuracy": acc,
        "valid_loss": loss if ok else None,
        "lr": float(params["lr"]),
        "params": params,
        "epoch": epoch,
        "train_seconds": t1 - t0,
        "eval_seconds": t2 - t1,
    }


_WORKER_CACHE: dict[tuple[Any, ...], tuple[Any, Any, Any]] = {}


def _worker_trainer(static: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """(trainer, state, initial snapshot) of this worker process, built once per process.

    Ray reuses the worker process (``reuse_actors=True``) for the paused and resumed members of
    a synchronous PBT run; building the trainer (splitting and normalizing the data) and the
    model once per process instead of once per resume saves seconds per member-epoch.
    """
    import torch

    from optuna_gamma.tuner.trainer import build_state
    from optuna_gamma.tuner.trainer import capture

    # the epochs too: a state built for a member's epochs (a schedule sized by them) is theirs
    key = (
        static["dataset"],
        static["root"],
        static["subset"],
        static["seed"],
        static["device"],
        static["epochs"],
    )
    if key not in _WORKER_CACHE:
        trainer = make_trainer(static["dataset"], static["root"], static["subset"], static["seed"])
        state = build_state(
            trainer, static["seed"], torch.device(static["device"]), static["epochs"]
        )
        _WORKER_CACHE.clear()
        _WORKER_CACHE[key] = (trainer, state, capture(state))
    return _WORKER_CACHE[key]


def _log_member_epoch(
    log: str, trial: str, epoch: int, lr: float, start: float, metrics: Mapping[str, Any]
) -> None:  # (``metrics["params"]``: every tuned value)
    """Append one member-epoch to the log (Ray's per-trial history is rewritten when a member
    exploits another's checkpoint, so it cannot count the compute)."""
    with open(log, "a") as f:
        f.write(
            json.dumps(
                {
                    "trial": trial,
                    "epoch": epoch,
                    "lr": lr,
                    "params": metrics.get("params", {"lr": lr}),
                    "start": start,
                    "train_seconds": metrics["train_seconds"],
                    "eval_seconds": metrics["eval_seconds"],
                    "objective": metrics["objective"],
                    "pid": os.getpid(),
                }
            )
            + "\n"
        )


def _member_class() -> type:
    """The Ray Tune class trainable of a population member (built lazily: Ray is optional).

    The class API (``setup``/``step``/``save_checkpoint``/``load_checkpoint``/``reset_config``)
    is used rather than a function trainable: a synchronous PBT run on one CPU pauses and
    resumes every member every epoch, and a class trainable resumes in the same process from
    ``load_checkpoint`` (about 0.1 s) where a resumed function trainable took about 10 s here.
    """
    from ray import tune

    class PopulationMember(tune.Trainable):  # pragma: no cover - runs in Ray workers
        def setup(self, config: dict[str, Any]) -> None:
            import torch

            from optuna_gamma.tuner.trainer import restore

            torch.set_num_threads(1)
            self.static = config["static"]
            self.device = torch.device(self.static["device"])
            self.trainer, self.state, initial = _worker_trainer(self.static)
            restore(self.state, initial)
            self.epoch = 0
            self._set_lr(config)

        def _set_lr(self, config: Mapping[str, Any]) -> None:
            self.params = member_params(config, TASKS[self.static["dataset"]])
            self.lr = self.params["lr"]

        def reset_config(self, new_config: dict[str, Any]) -> bool:
            from optuna_gamma.tuner.trainer import restore

            self.static = new_config["static"]
            self.trainer, self.state, initial = _worker_trainer(self.static)
            restore(self.state, initial)
            self.epoch = 0
            self._set_lr(new_config)
            return True

        def step(self) -> dict[str, Any]:
            self.epoch += 1
            t_start = time.time()
            task = TASKS[self.static["dataset"]]
            metrics = member_step(
                self.trainer,
                self.state,
                self.params,
                self.epoch,
                self.static["seed"],
                self.device,
                fixed=dict(task.fixed) if task.own else None,
            )
            _log_member_epoch(
                self.static["log"], self.trial_id, self.epoch, self.lr, t_start, metrics
            )
            return metrics

        def save_checkpoint(self, checkpoint_dir: str) -> None:
            import torch

            from optuna_gamma.tuner.trainer import capture

            torch.save(
                {"state": capture(self.state), "epoch": self.epoch},
                Path(checkpoint_dir) / "state.pt",
            )

        # Ray annotates the argument as ``dict | None``, but documents (and does) passing the
        # checkpoint directory when save_checkpoint returned None, as ours does.
        def load_checkpoint(self, checkpoint_dir: str) -> None:  # type: ignore[override]
            import torch

            from optuna_gamma.tuner.trainer import restore

            saved = torch.load(Path(checkpoint_dir) / "state.pt", weights_only=True)
            restore(self.state, saved["state"])
            self.epoch = int(saved["epoch"])

    return PopulationMember


def _test_checkpoint(
    checkpoint: Any,
    dataset: str,
    root: str | None,
    subset: int | None,
    seed: int,
    device: str,
    epochs: int,
) -> dict[str, Any]:
    """Test metrics of the selected member's final checkpoint (evaluated once, in the driver)."""
    import torch

    from optuna_gamma.tuner.trainer import build_state
    from optuna_gamma.tuner.trainer import restore

    trainer = make_trainer(dataset, root, subset, seed)
    state = build_state(trainer, seed, torch.device(device), epochs)
    with checkpoint.as_directory() as d:
        saved = torch.load(Path(d) / "state.pt", weights_only=True)
    restore(state, saved["state"])
    return tc.test_metrics(trainer.evaluate(state, "test"))


def member_params(config: Mapping[str, Any], task: Task) -> dict[str, float]:
    """A member's hyperparameters from its Ray config (``name``, or ``log10_name`` for PB2)."""
    return {
        k: float(10 ** config[f"log10_{k}"] if f"log10_{k}" in config else config[k])
        for k in task.bounds
    }


def _clip_to_bounds(config: dict[str, Any]) -> dict[str, Any]:
    """Keep an explored config inside the task's ranges (PBT's x0.8/x1.2 and PB2's steps may
    leave them)."""
    static = config.get("static")
    task = TASKS[static["dataset"]] if isinstance(static, Mapping) else TASKS["mnist"]
    for k, (lo, hi) in task.bounds.items():
        if k in config:
            config[k] = min(max(float(config[k]), lo), hi)
        if f"log10_{k}" in config:
            config[f"log10_{k}"] = min(
                max(float(config[f"log10_{k}"]), math.log10(lo)), math.log10(hi)
            )
    return config


def run_ray_arm(
    args: Any, arm: str, dataset: str, subset: int | None, seed: int, epochs: int, root: str | None
) -> dict[str, Any]:
    """PBT or PB2 with a population of 12 for ``epochs`` epochs (see the module docstring);
    ``"pbt-wW"``, ``"pb2-wW"``: a population of ``W`` for ``12 epochs / W`` epochs (the same
    compute, ``W`` at a time)."""
    population = TRIALS
    if "-w" in arm:
        arm, width = arm.split("-w")
        population = int(width)
        epochs = TRIALS * epochs // population
    try:
        import ray
    except ImportError as err:
        raise SystemExit(
            f"error: the {arm} arm needs Ray Tune: pip install -e '.[peers]' ({err})"
        ) from None

    storage = (args.runs_dir / NAME / f"ray-{dataset}-s{seed}-{arm}").resolve()
    tc.remove_dir(storage)
    random.seed(seed)
    import numpy as np

    np.random.seed(seed)
    schedule = _ray_scheduler(arm, TASKS[dataset])  # made before ray.init, as it always was
    storage.mkdir(parents=True, exist_ok=True)
    log = storage / "member_epochs.jsonl"
    static = {
        "dataset": dataset,
        "root": root,
        "subset": subset,
        "seed": seed,
        "epochs": epochs,
        "device": args.device,
        "log": str(log),
    }
    env = {
        "OMP_NUM_THREADS": str(args.threads),
        "PYTHONPATH": str(tc.REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "OPTUNA_GAMMA_DATA_ROOT": root or "",
    }
    t0 = time.perf_counter()
    ray.init(
        num_cpus=1,
        num_gpus=1 if args.device.startswith("cuda") else 0,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": env},
    )
    try:
        grid = _ray_tuner(
            arm, args.device, storage, static, seed, epochs, schedule, population
        ).fit()
        logged = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        members = _members(grid, logged)
    finally:
        ray.shutdown()
    wall = time.perf_counter() - t0
    done = [m for m in members if m["epoch"] == epochs and m["final_objective"] is not None]
    if not done:
        raise RuntimeError(
            f"{arm}: no member finished {epochs} epochs: {[m['error'] for m in members]}"
        )
    best = max(done, key=lambda m: m["final_objective"])
    best["test"] = _test_checkpoint(
        best["checkpoint"], dataset, root, subset, seed, args.device, epochs
    )
    for m in members:
        m.pop("checkpoint", None)
    tc.remove_dir(storage)
    return _ray_record(arm, seed, epochs, best, members, logged, wall, population)


def _ray_tuner(
    arm: str,
    device: str,
    storage: Path,
    static: dict[str, Any],
    seed: int,
    epochs: int,
    schedule: tuple[Any, dict[str, Any]],
    population: int = TRIALS,
) -> Any:
    """The Ray Tune run of the population: ``population`` members for ``epochs`` epochs, every
    member checkpointed every epoch, under ``storage``; ``schedule``: the scheduler and the
    parameter space, from :func:`_ray_scheduler`."""
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    scheduler, params = schedule
    return tune.Tuner(
        tune.with_resources(
            _member_class(), {"cpu": 1, "gpu": 1 if device.startswith("cuda") else 0}
        ),
        param_space={**params, "static": static},
        tune_config=tune.TuneConfig(
            metric="objective",
            mode="max",
            scheduler=scheduler,
            num_samples=population,
            search_alg=BasicVariantGenerator(random_state=seed),
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=arm,
            storage_path=str(storage),
            stop={"training_iteration": epochs},
            verbose=0,
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=4, checkpoint_frequency=1, checkpoint_at_end=True
            ),
        ),
    )


def _ray_scheduler(arm: str, task: Task | None = None) -> tuple[Any, dict[str, Any]]:
    """PBT's or PB2's scheduler and the parameter space of its population: every tuned
    parameter of ``task`` (default: MNIST's ``lr``) on a log scale (PB2's bounds are linear,
    so it models ``log10`` of each)."""
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining
    from ray.tune.schedulers.pb2 import PB2

    bounds = (task or TASKS["mnist"]).bounds
    if arm == "pbt":
        space = {k: tune.loguniform(lo, hi) for k, (lo, hi) in bounds.items()}
        scheduler: Any = PopulationBasedTraining(
            time_attr="training_iteration",
            perturbation_interval=1,
            quantile_fraction=0.25,
            resample_probability=0.25,
            hyperparam_mutations=dict(space),
            synch=True,
            custom_explore_fn=_clip_to_bounds,
        )
        return scheduler, space
    logs: dict[str, Any] = {
        f"log10_{k}": [math.log10(lo), math.log10(hi)] for k, (lo, hi) in bounds.items()
    }
    scheduler = PB2(
        time_attr="training_iteration",
        perturbation_interval=1,
        quantile_fraction=0.25,
        hyperparam_bounds=logs,
        synch=True,
        custom_explore_fn=_clip_to_bounds,
    )
    return scheduler, {k: tune.uniform(lo, hi) for k, (lo, hi) in logs.items()}


def _members(grid: Any, logged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each population member's final metrics, compute and lr path, from Ray's result grid and
    the member-epoch log."""
    members = []
    for i in range(len(grid)):  # ResultGrid is indexable but declares no __iter__
        r = grid[i]
        m = r.metrics or {}
        mine = [x for x in logged if x["trial"] == m.get("trial_id")]
        # The member's lr path: its own lrs, epoch by epoch, from the last time it trained each
        # epoch (an exploit replaces the epochs before it by the donor's).
        path: dict[int, float] = {}
        params: dict[int, dict[str, float]] = {}
        for x in sorted(mine, key=lambda x: x["start"]):
            path[x["epoch"]] = x["lr"]
            params[x["epoch"]] = x.get("params", {"lr": x["lr"]})
        members.append(
            {
                "trial": m.get("trial_id"),
                "epochs_trained": len(mine),
                "seconds": sum(x["train_seconds"] + x["eval_seconds"] for x in mine),
                "lr_path": [path[e] for e in sorted(path)],
                "params": params[max(params)] if params else None,
                "final_objective": m.get("objective"),
                "valid_accuracy": m.get("valid_accuracy"),
                "valid_loss": m.get("valid_loss"),
                "epoch": m.get("epoch"),
                "error": str(r.error) if r.error else None,
                "checkpoint": r.checkpoint,
            }
        )
    return members


def _ray_record(
    arm: str,
    seed: int,
    epochs: int,
    best: dict[str, Any],
    members: list[dict[str, Any]],
    logged: list[dict[str, Any]],
    wall: float,
    population: int = TRIALS,
) -> dict[str, Any]:
    """The cell of a PBT or PB2 run: its selected member, and the compute of all members."""
    return {
        "mode": arm,
        "seed": seed,
        "epochs": epochs,
        "population": population,
        "lr": best["lr_path"][-1] if best["lr_path"] else None,
        "lr_path": best["lr_path"],
        "params": best["params"],
        "valid_accuracy": best["valid_accuracy"],
        "valid_loss": best["valid_loss"],
        "value": best["final_objective"],
        "test": {str(epochs): best["test"]},
        "compute_epochs": len(logged),
        "compute_time": sum(x["train_seconds"] + x["eval_seconds"] for x in logged),
        "wall_time": wall,
        "worker_processes": len({x["pid"] for x in logged}),
        "overhead_seconds": wall - sum(x["train_seconds"] + x["eval_seconds"] for x in logged),
        "members": [{k: v for k, v in m.items() if k != "test"} for m in members],
    }


# --------------------------------------------------------------------------------------------
def run_cell(
    args: Any, arm: str, dataset: str, subset: int | None, seed: int, epochs: int, root: str | None
) -> dict[str, Any]:
    if arm in ("pbt", "pb2") or arm in RAY_WIDTHS:
        rec = run_ray_arm(args, arm, dataset, subset, seed, epochs, root)
    else:
        rec = run_tuner_arm(args, arm, dataset, subset, seed, epochs, root)
    return {
        "arm": arm,
        "dataset": dataset,
        "subset": subset,
        "budget_epochs": TRIALS * epochs,
        **rec,
    }


def _points(c: dict[str, Any]) -> list[tuple[int, float | None, float | None]]:
    """(compute epochs, test accuracy, test MCC) points of a cell (two for the fixed arms).

    A run that stopped (every trial of an epoch diverged) has no test point: ``[]``.
    """
    if c.get("failed"):
        return []
    if c["arm"].startswith("fixed-") or c["arm"] == UNTUNED:
        return [
            (int(e), t.get("accuracy"), t.get("mcc"))
            for e, t in sorted(c["test"].items(), key=lambda kv: int(kv[0]))
        ]
    last = max(c["test"], key=int)
    return [
        (int(c["compute_epochs"]), c["test"][last].get("accuracy"), c["test"][last].get("mcc"))
    ]


# statistics
Cell = dict[str, Any]
#: The methods per-epoch gamma is paired with, in the order of the table.
_VERSUS = (
    "pbt",
    "pb2",
    "pe-gaussian",
    "pe-gp",
    "pe-grid12",
    "pe-gamma-kappa2",
    "pe-gamma-t4",
    "grid12-best",
    "grid11-cosine",
    "tpe-whole",
    "gp-whole",
    "fixed-0.1",
    "fixed-0.01",
)


def _arm_stats(cells: list[Cell]) -> tuple[list[dict[str, Any]], list[list[Cell]]]:
    """Per arm and test point (two for a fixed learning rate): medians and quartiles over the
    seeds that finished; and per arm the cells that stopped on divergence."""
    rows: list[dict[str, Any]] = []
    failures = []
    for arm in ARMS:
        failed = [c for c in cells if c["arm"] == arm and c.get("failed")]
        if failed:
            failures.append(failed)
        cs = [c for c in cells if c["arm"] == arm and not c.get("failed")]
        if not cs:
            continue
        pts = [_points(c) for c in cs]
        for i in range(len(pts[0])):
            ep = tc.median(p[i][0] for p in pts)
            compute_epochs = max(tc.median(c["compute_epochs"] for c in cs), 1)
            last = i == len(pts[0]) - 1
            rows.append(
                {
                    "arm": arm,
                    "seeds": len(cs),
                    "epochs": ep,
                    "accuracy": [p[i][1] for p in pts],
                    "mcc": tc.median(p[i][2] for p in pts),
                    "valid_accuracy": tc.median(_valid_acc(c) for c in cs) if last else None,
                    "seconds": tc.median(c["compute_time"] for c in cs) * (ep / compute_epochs),
                    "wall": tc.median(c["wall_time"] for c in cs),
                    "lr": tc.median(_final_lr(c) for c in cs),
                }
            )
    return rows, failures


def _pairs(cells: list[Cell], other: str) -> list[tuple[float, float]]:
    """(pe-gamma, ``other``) test accuracies paired by seed.

    The other method's best point within the same budget B (a fixed lr: after B epochs); a run
    that stopped on divergence scores 0; a test point without an accuracy cannot be compared:
    no pair (as the medians skip it).
    """
    pairs: list[tuple[float, float]] = []
    for c in cells:
        if c["arm"] != "pe-gamma":
            continue
        o = [x for x in cells if x["arm"] == other and x["seed"] == c["seed"]]
        if o:
            oe = [p for p in _points(o[0]) if p[0] <= c["budget_epochs"]] or [(0, 0.0, 0.0)]
            mine = _points(c) or [(0, 0.0, 0.0)]
            a, oa = mine[0][1], oe[-1][1]
            if a is not None and oa is not None:
                pairs.append((a, oa))
    return pairs


# rendering
_ARM_HEADER = [
    "method",
    "seeds",
    "compute (epochs)",
    "test acc % median [Q1, Q3]",
    "test MCC %",
    "valid acc % (selected)",
    "train+valid s",
    "wall s",
    "final lr (median)",
]
_PAIR_HEADER = [
    "vs",
    "pairs",
    "pe-gamma median %",
    "other median %",
    "median paired diff (points)",
    "gamma W/T/L",
    "gamma >= other (medians)",
]


def _render_intro(cells: list[Cell], label: str, seeds: list[int]) -> list[str]:
    # Every arm spends the budget B = 12 E; a cell's "epochs" is E only for the per-epoch and
    # whole-run arms (a fixed-lr arm trains for B, pe-gamma-t4 for 3 E), so E comes from B.
    b = cells[0]["budget_epochs"]
    e = b // TRIALS
    sub = cells[0]["subset"]
    return [
        f"# Per-epoch tuning vs the peers at equal compute: {label}"
        + (
            f" ({sub} images, {sub - math.ceil(0.2 * sub)} train"
            f" / {math.ceil(0.2 * sub)} validation)"
            if sub
            else ""
        ),
        "",
        f"E = {e} epoch{'s' if e != 1 else ''}, budget B = {TRIALS} E = {b} training epochs. "
        "Test accuracy and MCC (%) on "
        f"the official 10,000 test images, median [Q1, Q3] over seeds {seeds}; selection by "
        "validation kappa_1 (unclipped) for every method. 'compute' = training epochs actually "
        "spent (median); seconds = training + validation, 1 torch thread on a shared 2-core "
        "machine (Ray's own overhead is in 'wall' only).",
        "",
    ]


def _render_arms(rows: list[dict[str, Any]], failures: list[list[Cell]]) -> list[str]:
    table = [
        [
            r["arm"]
            + (
                f" ({int(r['epochs'])} epochs)"
                if r["arm"].startswith("fixed-") or r["arm"] == UNTUNED
                else ""
            ),
            r["seeds"],
            f"{r['epochs']:.0f}",
            tc.med_iqr(r["accuracy"]),
            tc.pct(r["mcc"]),
            "-" if r["valid_accuracy"] is None else tc.pct(r["valid_accuracy"], 1),
            f"{r['seconds']:.0f}",
            f"{r['wall']:.0f}",
            f"{r['lr']:.3g}",
        ]
        for r in rows
    ]
    lines = [tc.md_table(_ARM_HEADER, table)]
    if failures:
        stopped = [
            f"`{failed[0]['arm']}`: seed(s) {', '.join(str(c['seed']) for c in failed)} stopped "
            f"after {', '.join(str(c.get('epochs_adopted')) for c in failed)} adopted epochs "
            f"({failed[0]['failed'].split(';')[0]})"
            for failed in failures
        ]
        lines += [
            "",
            "Runs that stopped because every trial of an epoch diverged (left out of the medians "
            "above; in the pairs below they count as losses): " + "; ".join(stopped) + ".",
        ]
    return lines


def _render_pairs(pairs: dict[str, list[tuple[float, float]]]) -> list[str]:
    lines = ["", "## Per-epoch gamma against PBT and PB2 (paired by seed, test accuracy)", ""]
    rows = []
    for other, ps in pairs.items():
        if not ps:
            continue
        diffs = [a - o for a, o in ps]
        g, oth = tc.median(a for a, _ in ps), tc.median(o for _, o in ps)
        rows.append(
            [
                other,
                len(diffs),
                tc.pct(g, 2),
                tc.pct(oth, 2),
                f"{100 * tc.median(diffs):+.2f}",
                f"{sum(d > 0 for d in diffs)}/{sum(d == 0 for d in diffs)}"
                f"/{sum(d < 0 for d in diffs)}",
                "yes" if g >= oth else "no",
            ]
        )
    lines.append(tc.md_table(_PAIR_HEADER, rows))
    lines += [
        "",
        "Both medians over the seeds where both ran; a fixed learning rate is taken after B "
        "epochs.",
    ]
    return lines


def _figures(
    cells: list[Cell], label: str, seeds: list[int], averages: Sequence[Cell] = ()
) -> list[Any]:
    """Test accuracy against compute per arm (and, for the arms of ``averages``, of the average
    of the final lineage's last states of those runs); the first seed's learning-rate
    schedules."""
    import plotly.graph_objects as go

    fig = go.Figure()
    series: list[tuple[str, list[list[tuple[int, float | None, float | None]]], bool]] = []
    for arm in ARMS:
        cs = [c for c in cells if c["arm"] == arm and not c.get("failed")]
        if cs:
            series.append((arm, [_points(c) for c in cs], False))
    for arm in ARMS:
        # a cell's average of its final lineage's last states, as its final model
        pts = [
            p
            for c in averages
            if c["arm"] == arm and c.get("test_average")
            if (p := _points({**c, "test": c["test_average"]}))
        ]
        if pts:
            series.append((f"{arm}, final model: average", pts, True))
    for name, pts, averaged in series:
        xs = [tc.median(p[i][0] for p in pts) for i in range(len(pts[0]))]
        qs = [tc.quartiles(p[i][1] for p in pts) for i in range(len(pts[0]))]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[q[1] for q in qs],
                mode="lines+markers",
                name=name,
                marker={"symbol": "diamond"} if averaged else None,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [q[2] - q[1] for q in qs],
                    "arrayminus": [q[1] - q[0] for q in qs],
                },
            )
        )
    fig.update_layout(
        title=f"{label}: test accuracy against compute (median and IQR over seeds {seeds})",
        xaxis_title="training epochs",
        xaxis_type="log",
        yaxis_title="test accuracy",
    )
    figs = [fig]
    fig = go.Figure()
    for arm in ("pe-gamma", "pe-gaussian", "pe-gp", "pe-gamma-kappa2", "pe-grid12", "pe-gamma-t4"):
        for c in cells:
            if c["arm"] == arm and c["seed"] == seeds[0] and c.get("schedule"):
                fig.add_trace(
                    go.Scatter(
                        x=[s["epoch"] for s in c["schedule"]],
                        y=[s["lr"] for s in c["schedule"]],
                        mode="lines+markers",
                        name=arm,
                    )
                )
    for arm in ("pbt", "pb2"):
        for c in cells:
            if c["arm"] == arm and c["seed"] == seeds[0]:
                fig.add_trace(
                    go.Scatter(
                        x=list(range(1, len(c["lr_path"]) + 1)),
                        y=c["lr_path"],
                        mode="lines+markers",
                        name=f"{arm} (selected member)",
                        line={"dash": "dot"},
                    )
                )
    fig.update_layout(
        title=f"{label}, seed {seeds[0]}: learning-rate schedules",
        xaxis_title="epoch",
        yaxis_title="learning rate",
        yaxis_type="log",
    )
    figs.append(fig)
    return figs


def summarize(
    cells: list[Cell], out: Path, name: str, dataset: str, averages: Sequence[Cell] = ()
) -> str:
    """Write ``<name>_<dataset>.md`` and ``.html`` from the dataset's cells; return the text.

    ``averages``: cells whose ``test_average`` the picture adds as ``"<arm>, final model:
    average"`` (e.g. ``average.jsonl``'s reruns of the default; the table is unchanged)."""
    cells = [c for c in cells if c["dataset"] == dataset]
    averages = [c for c in averages if c["dataset"] == dataset]
    if not cells:
        return f"(no cells for {dataset})\n"
    seeds = sorted({c["seed"] for c in cells})
    label = TASKS[dataset].label
    lines = _render_intro(cells, label, seeds)
    lines += _render_arms(*_arm_stats(cells))
    lines += _render_pairs({other: _pairs(cells, other) for other in _VERSUS})
    lines += ["", tc.code_note(cells, lambda c: c["arm"])]
    text = "\n".join(lines) + "\n"
    tc.write_text(out, f"{name}_{dataset}", ".md", text)
    figs = _figures(cells, label, seeds, averages)
    tc.write_figures(
        out,
        f"{name}_{dataset}",
        figs,
        f"Per-epoch tuning vs peers: {label}",
        plotly_js=tc.RESULTS_DIR / "plotly.min.js",  # the thesis pages' copy
    )
    return text


def _valid_acc(c: dict[str, Any]) -> float | None:
    """Validation accuracy of the selected model (the last adopted one in per-epoch mode)."""
    if c.get("schedule"):
        return c["schedule"][-1]["valid_accuracy"]
    return c.get("valid_accuracy")


def _final_lr(c: dict[str, Any]) -> float | None:
    if c.get("schedule"):
        return c["schedule"][-1]["lr"]
    return c.get("lr")


def main(argv: list[str] | None = None) -> int:
    p = tc.common_parser(__doc__ or "", seeds="0-4", results=RESULTS_DIR)
    p.add_argument("--dataset", choices=tuple(DATASETS), default="mnist")
    p.add_argument("--epochs", type=int, default=None, help="E (default 10; --full 20)")
    p.add_argument(
        "--subset",
        type=int,
        default=None,
        help="training images (default: the task's, e.g. 500 MNIST, 1000 Fashion, 5000 "
        "CIFAR-10; --full: all)",
    )
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    p.add_argument(
        "--also-test",
        nargs="+",
        type=int,
        default=[],
        metavar="EPOCH",
        help="untuned arms: test the model after these epochs too (e.g. 30 for the wall time "
        "of 4 at a time at B = 120)",
    )
    p.add_argument(
        "--averages",
        nargs="+",
        default=[],
        metavar="TAG",
        help="also plot the average of the final lineage's last states (test_average) of the "
        "runs in these cells files of --out, e.g. average (the default's final model serially)",
    )
    args = p.parse_args(argv)
    name = args.tag or NAME
    tc.quiet()
    tc.set_threads(args.threads)
    epochs = args.epochs or (20 if args.full else 10)
    subset = args.subset if args.subset else (None if args.full else DATASETS[args.dataset])
    cells = tc.Cells(args.out / f"{name}.jsonl")
    if not args.summary_only:
        root = tc.data_root(args.data_root, required=TASKS[args.dataset].needs_root)
        # absolute: Ray runs the PBT/PB2 members in a working directory of its own
        root = str(Path(root).resolve()) if root else root
        seeds = tc.parse_seeds(args.seeds)
        tc.write_meta(
            args.out,
            f"{name}_{args.dataset}",
            {
                "dataset": args.dataset,
                "subset": subset,
                "epochs": epochs,
                "seeds": seeds,
                "arms": args.arms,
                "device": args.device,
            },
        )
        t0 = time.perf_counter()
        done = 0
        for seed in seeds:
            for arm in args.arms:
                k = f"{args.dataset}|subset={subset}|E={epochs}|seed={seed}|{arm}"
                done += tc.run_once(
                    cells,
                    k,
                    lambda: run_cell(args, arm, args.dataset, subset, seed, epochs, root),
                    t0,
                )
        tc.finish_meta(
            args.out,
            f"{name}_{args.dataset}",
            cells_run=done,
            wall_seconds=time.perf_counter() - t0,
        )
    averages = [c for tag in args.averages for c in tc.Cells(args.out / f"{tag}.jsonl").values()]
    print(summarize(cells.values(), args.out, name, args.dataset, averages))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
