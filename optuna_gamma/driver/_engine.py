"""Pieces shared by the per-epoch and whole-training drivers (not public API)."""

from __future__ import annotations

from collections.abc import Callable
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import Union

from optuna_gamma.driver.checkpoint import RunPaths
from optuna_gamma.driver.checkpoint import crash_point
from optuna_gamma.driver.checkpoint import derive_seed
from optuna_gamma.driver.samplers import SamplerFactory
from optuna_gamma.driver.samplers import SamplerSpec
from optuna_gamma.driver.samplers import SlotNumberedSampler
from optuna_gamma.driver.samplers import make_sampler_factory
from optuna_gamma.driver.samplers import parse_sampler
from optuna_gamma.driver.space import SearchSpace
from optuna_gamma.driver.space import grid_points


if TYPE_CHECKING:
    import optuna
    import torch

    from optuna_gamma.data import DatasetSplits
    from optuna_gamma.training import TrainState


def check_common(epochs: Any, seed: Any, run: Any, kappa: Any) -> None:
    """Validate the arguments both drivers share (ValueError naming the value)."""
    from optuna_gamma.objectives import resolve_kappa

    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not isinstance(run, str) or not run or "/" in run:
        raise ValueError(f"run must be a non-empty name without '/', got {run!r}")
    resolve_kappa(kappa)


def finite_or_none(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def kappa_name(kappa: Any) -> str:
    if isinstance(kappa, str):
        return kappa
    return getattr(kappa, "__name__", type(kappa).__name__)


def resolve_data(
    data: Union[str, DatasetSplits], *, data_root: Any, subset: int | None, seed: int, download: bool
) -> DatasetSplits:
    if isinstance(data, str):
        from optuna_gamma.data import load_dataset

        return load_dataset(data, data_root, subset=subset, seed=seed, download=download)
    for attr in ("train", "valid", "test", "n_classes", "input_shape"):
        if not hasattr(data, attr):
            raise ValueError(f"data must be a dataset name or a DatasetSplits, got {type(data).__name__}")
    return data


def resolve_model(model: Any, data: DatasetSplits, seed: int) -> torch.nn.Module:
    if isinstance(model, str):
        from optuna_gamma.models import build_model

        return build_model(model, tuple(data.input_shape), int(data.n_classes), seed=derive_seed(seed, "model"))
    import torch

    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a model name or a torch.nn.Module, got {type(model).__name__}")
    return model


def prepare_model(
    model: Any, splits: DatasetSplits, space: SearchSpace, seed: int, paths: RunPaths
) -> tuple[torch.nn.Module, torch.optim.SGD, TrainState]:
    """Build (or take) the model and its SGD optimizer; return them with the run's initial state.

    The initial state is saved to ``states/initial.pt`` on the first call and read back on every
    later one, so a resumed run starts from the very same weights even for a user-built model.
    """
    from optuna_gamma.training import capture_state
    from optuna_gamma.training import load_state
    from optuna_gamma.training import make_optimizer
    from optuna_gamma.training import save_state

    net = resolve_model(model, splits, seed)
    fixed = space.fixed()
    optimizer = make_optimizer(
        net, lr=space.lr_low if space.fixed_lr is None else space.fixed_lr,
        momentum=float(fixed.get("momentum", 0.0)), weight_decay=float(fixed.get("weight_decay", 0.0)),
    )
    if paths.initial_state.is_file():
        initial = load_state(paths.initial_state)
    else:
        initial = capture_state(net, optimizer)
        save_state(initial, paths.initial_state)
    return net, optimizer, initial


def resolve_storage(storage: Any, paths: RunPaths) -> tuple[Any, str]:
    """(storage object, URL for display)."""
    import optuna

    url = paths.default_storage if storage is None else storage
    if isinstance(url, str):
        if url.startswith("sqlite:///"):
            Path(url[len("sqlite:///"):]).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        # One engine for the whole run (a URL string would make Optuna open one per study object).
        return optuna.storages.RDBStorage(url), url
    if not isinstance(url, optuna.storages.BaseStorage):
        raise ValueError(f"storage must be a URL or an optuna.storages.BaseStorage, got {type(url).__name__}")
    return url, type(url).__name__


class SamplerPlan:
    """How trials of one study get their parameters: a seeded factory, plus enqueued points."""

    def __init__(
        self,
        sampler: Union[str, SamplerFactory],
        space: SearchSpace,
        trials: int | None,
        n_startup_trials: int,
    ) -> None:
        self.spec: SamplerSpec | None = None
        self.grid: list[dict[str, Any]] = []
        if isinstance(sampler, str):
            self.spec = parse_sampler(sampler)
            self.name = self.spec.name
        elif callable(sampler):
            self.name = getattr(sampler, "__name__", type(sampler).__name__)
        else:
            raise ValueError(f"sampler must be a name or a callable seed -> sampler, got {sampler!r}")
        grid_dict: dict[str, list] | None = None
        if self.spec is not None and self.spec.is_fixed:
            if len(space.tuned()) > 1:
                raise ValueError(f"sampler {self.name!r} tunes nothing, but the space tunes {space.tuned()[1:]}")
            space = space.with_fixed_lr(self.spec.fixed_lr)
            if trials is None:
                trials = 1
        if self.spec is not None and self.spec.is_grid:
            grid_dict = {"lr": grid_points(space.lr_low, space.lr_high, self.spec.grid_size, log=self.spec.grid_log)}
            for name in space.tuned()[1:]:
                choices = getattr(space, name)
                if not isinstance(choices, list):
                    raise ValueError(f"sampler {self.name!r} needs {name} as a list of choices, got the range {choices!r}")
                grid_dict[name] = list(choices)
            import itertools

            keys = list(grid_dict)
            self.grid = [dict(zip(keys, combo)) for combo in itertools.product(*(grid_dict[k] for k in keys))]
            if trials is None:
                trials = len(self.grid)
            if trials > len(self.grid):
                raise ValueError(f"trials per study ({trials}) exceed the {len(self.grid)} points of {self.name!r}")
        self.space = space
        self.trials = 12 if trials is None else int(trials)
        if self.trials < 1:
            raise ValueError(f"trials must be >= 1, got {trials!r}")
        if self.spec is not None:
            self.factory = make_sampler_factory(self.spec, n_startup_trials=n_startup_trials, grid=grid_dict)
        else:
            self.factory = sampler  # type: ignore[assignment]

    def make(self, seed: int, slot: int) -> optuna.samplers.BaseSampler:
        """The sampler for the trial in ``slot`` (see :class:`SlotNumberedSampler`). Grid trials
        are all enqueued, so the grid sampler is used as is."""
        base = self.factory(seed)
        if self.grid:
            return base
        return SlotNumberedSampler(base, slot)

    def grid_queue(self, seed: int) -> list[dict[str, Any]]:
        """The grid points a study runs, in a seeded order (a seeded subset if fewer trials)."""
        import numpy as np

        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self.grid))[: self.trials]
        return [self.grid[int(i)] for i in order]


def open_study(storage: Any, name: str, sampler: optuna.samplers.BaseSampler | None = None) -> optuna.Study:
    import optuna

    return optuna.create_study(
        study_name=name, storage=storage, direction="maximize", load_if_exists=True,
        sampler=sampler or optuna.samplers.RandomSampler(seed=0),
    )


def check_config(study: optuna.Study, config: dict[str, Any]) -> None:
    """Record ``config`` in a new study; refuse to continue a study made with another one."""
    old = study.user_attrs.get("config")
    if old is None:
        study.set_user_attr("config", config)
        return
    for key, value in config.items():
        if key in old and old[key] != value:
            raise ValueError(
                f"study {study.study_name!r} was created with {key}={old[key]!r}, this call has {value!r};"
                " use another run name or run directory"
            )


def fail_stale_trials(study: optuna.Study, tuned: tuple[str, ...]) -> int:
    """Fail every RUNNING trial (its process is dead: the caller holds the run lock) and enqueue a
    retry with the same parameters, once. Returns the number of trials failed.

    The retry carries ``user_attrs["retry_of"] = number`` so that a second crash between the
    enqueue and the fail does not enqueue it twice. A trial that died before all its parameters
    were suggested is retried with whatever was fixed for it (an enqueued point), else the
    sampler proposes again (deterministically: see :mod:`optuna_gamma.driver.samplers`).
    """
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    n = 0
    for t in trials:
        if t.state != TrialState.RUNNING:
            continue
        fixed = dict(t.system_attrs.get("fixed_params") or {})
        params = {**fixed, **t.params}
        if t.number not in retried:
            if set(tuned) <= set(params):
                study.enqueue_trial({k: params[k] for k in tuned}, user_attrs={"retry_of": t.number})
            elif fixed:
                study.enqueue_trial(fixed, user_attrs={"retry_of": t.number})
        study.tell(t.number, state=TrialState.FAIL)
        n += 1
    return n


def enqueue_once(study: optuna.Study, points: list[dict[str, Any]]) -> None:
    """Enqueue ``points`` once per study (idempotent across crashes)."""
    if study.user_attrs.get("queued"):
        return
    for p in points:
        study.enqueue_trial(p, skip_if_exists=True)
    study.set_user_attr("queued", True)


def complete_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def best_trial(trials: list[optuna.trial.FrozenTrial]) -> optuna.trial.FrozenTrial:
    """The Determinant: the trial with the largest value (kappa).

    Ties (common when kappa is clipped at 0 early in training) are broken by higher validation
    accuracy, then lower validation loss (diverged last), then the parameters (smallest first);
    never by trial number, so a resumed study (whose numbers shift after a failed trial) picks
    the same trial.
    """
    if not trials:
        raise ValueError("no completed trial to adopt")

    def key(t: optuna.trial.FrozenTrial) -> tuple:
        loss = t.user_attrs.get("loss")
        return (
            -float(t.value),
            -float(t.user_attrs.get("accuracy", 0.0)),
            math.inf if loss is None else float(loss),
            sorted((k, float(v)) for k, v in t.params.items()),
        )

    return min(trials, key=key)


def run_trial(
    *,
    storage: Any,
    study_name: str,
    plan: SamplerPlan,
    sampler_seed: int,
    slot: int,
    train: Callable[[dict[str, Any], int], tuple[TrainState, dict[str, Any]]],
    paths: RunPaths,
    epoch: int | None,
    kappa: Any,
) -> optuna.trial.FrozenTrial:
    """Ask one trial with a freshly seeded sampler, train, save the state, record, tell."""
    import optuna

    from optuna_gamma.objectives import compute_kappa
    from optuna_gamma.training import save_state

    study = optuna.load_study(study_name=study_name, storage=storage, sampler=plan.make(sampler_seed, slot))
    trial = study.ask()
    crash_point("after_ask")
    params = plan.space.suggest(trial)
    state, ev = train(params, trial.number)
    train_loss = ev["train_loss"]
    k = compute_kappa(kappa, float(ev["accuracy"]), float(ev["loss"]))
    diverged = bool(k.diverged or not math.isfinite(train_loss))
    value = 0.0 if diverged else float(k.value)
    path = paths.trial_state(epoch, trial.number)
    save_state(state, path)
    crash_point("after_save")
    attrs = {
        "accuracy": float(ev["accuracy"]),
        "loss": finite_or_none(ev["loss"]),
        "kappa": value,
        "diverged": diverged,
        "sensitivity": float(ev["sensitivity"]),
        "specificity": float(ev["specificity"]),
        "mcc": float(ev["mcc"]),
        "train_loss": finite_or_none(train_loss),
        "train_time": float(ev["train_time"]),
        "eval_time": float(ev["time"]),
        "state": paths.relative(path),
        "params": params,
    }
    if epoch is not None:
        attrs["epoch"] = epoch
    for key, v in attrs.items():
        trial.set_user_attr(key, v)
    frozen = study.tell(trial, value)
    crash_point("after_tell")
    return frozen


def remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
