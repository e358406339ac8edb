"""The engine behind :func:`~optuna_gamma.tuner.tune_per_epoch` and
:func:`~optuna_gamma.tuner.tune_whole` (docs/design.md §3-§4).

One :class:`Engine` holds a run: the user's trainer, the validated search space, the settings,
the storage and the artifact store. A *study* of the run is a set of trials that all start from
the same training state and train the same epochs: in per-epoch mode the study
``"{run}/epoch-{e:03d}"`` trains epoch ``e`` from the state adopted in epoch ``e - 1`` (the
thesis's fig. 8); in whole mode the study ``"{run}/whole"`` trains epochs ``1..E`` from the
initial state. Every study runs through :meth:`optuna.study.Study.optimize`, so Optuna's tell,
FAIL-on-exception and callbacks apply, and a trial:

1. restores the study's start state, takes its hyperparameters (:class:`~.space.ParamSpace`),
   and, if the same point at each parameter's resolution was already trained in this study,
   completes with that trial's result and ``reused_from`` = its number (no wasted trials);
2. otherwise sets the optimizer hyperparameters, trains the epochs (each under the epoch's seed,
   the same for all trials), evaluates on the validation split, uploads the trained state to the
   artifact store and returns the objective: the unclipped kappa by default, with the clipped
   one recorded as ``kappa_clipped``;
3. a diverged trial (a non-finite metric) is COMPLETE with a finite value one spread below the
   worst value so far (:meth:`Engine._diverged_value`), so the sampler learns the region is bad
   without the healthy trials' differences being squashed.

After ``T`` complete trials the study's best trial (``study.best_trial``, the one
optuna-dashboard shows) is adopted: its state is loaded and checked (and recomputed from the
start state if it is unreadable), recorded in the study's user attribute ``adopted``, and the
other trials' states are deleted unless kept on request.

Resume: the serial engine holds the run lock, so every RUNNING trial it finds belongs to a dead
process: it is told FAIL and re-enqueued once with the same parameters. Samplers are rebuilt
for each trial from a seed derived from (run seed, study, completed trials)
(:class:`~.samplers.ReseededSampler`), so a resumed run proposes what an uninterrupted one
would, and on a CPU the schedule and the final weights are bit-identical.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
import contextlib
import dataclasses
import math
import numbers
import os
from pathlib import Path
import socket
import time
from typing import Any
from typing import TYPE_CHECKING
import warnings

import optuna
from optuna.trial import TrialState
import sqlalchemy.exc

from optuna_gamma.samplers import History
from optuna_gamma.samplers._search_space import SearchSpace
from optuna_gamma.tuner._logging import get_logger
from optuna_gamma.tuner.config import TunerConfig
from optuna_gamma.tuner.errors import AllTrialsDivergedError
from optuna_gamma.tuner.errors import TunerError
from optuna_gamma.tuner.execution.live import live_progress
from optuna_gamma.tuner.execution.manifest import current_record
from optuna_gamma.tuner.execution.manifest import RunManifest
from optuna_gamma.tuner.frontend import widen_hint
from optuna_gamma.tuner.persistence.identity import check_same_run
from optuna_gamma.tuner.persistence.identity import identity_fields
from optuna_gamma.tuner.persistence.identity import prepare_run
from optuna_gamma.tuner.persistence.identity import resolve_run_name
from optuna_gamma.tuner.persistence.runfiles import crash_point
from optuna_gamma.tuner.persistence.runfiles import derive_seed
from optuna_gamma.tuner.persistence.runfiles import run_lock
from optuna_gamma.tuner.persistence.runfiles import RunPaths
from optuna_gamma.tuner.persistence.states import check_artifact_id
from optuna_gamma.tuner.persistence.states import open_artifact_store
from optuna_gamma.tuner.persistence.states import StateStore
from optuna_gamma.tuner.persistence.states import StateUnavailableError
from optuna_gamma.tuner.persistence.storage import open_storage
from optuna_gamma.tuner.policies import make_policy
from optuna_gamma.tuner.policies import Member
from optuna_gamma.tuner.policies import Policy
from optuna_gamma.tuner.policies import Slot
from optuna_gamma.tuner.policies import ThesisPolicy
from optuna_gamma.tuner.search.objectives import DIVERGENCE_FACTOR
from optuna_gamma.tuner.search.objectives import resolve_objective
from optuna_gamma.tuner.search.samplers import ReseededSampler
from optuna_gamma.tuner.search.samplers import SamplerPlan
from optuna_gamma.tuner.search.space import in_distribution
from optuna_gamma.tuner.search.space import ParamSpace
from optuna_gamma.tuner.search.space import SpaceLike
from optuna_gamma.tuner.trainer import apply_hyperparameters
from optuna_gamma.tuner.trainer import capture
from optuna_gamma.tuner.trainer import check_trainer
from optuna_gamma.tuner.trainer import EpochContext
from optuna_gamma.tuner.trainer import restore
from optuna_gamma.tuner.trainer import seeded_rng


if TYPE_CHECKING:
    import torch

    from optuna_gamma.tuner.trainer import Trainer


__all__ = ["Engine", "resolve_device", "storage_errors", "worker_id"]

_logger = get_logger(__name__)


def trainer_spec(trainer: Any, ref: Any = None) -> dict[str, Any] | None:
    """What the run records about its trainer (workers only compare it with their own):
    ``{"import": "module:factory", "args": {...}}`` for a trainer reference (``--trainer``),
    ``{"builtin": {...}}`` for :class:`ThesisTrainer` (its data root is each machine's own),
    ``None`` for other objects (Python-only runs)."""
    if ref is not None:
        return dict(ref.to_record())
    rebuild = getattr(trainer, "spec", None)
    kwargs = rebuild() if callable(rebuild) else None
    return {"builtin": dict(kwargs)} if kwargs else None


#: Epochs of trials the sampler sees as its history (older ones hardly correlate).
HISTORY_EPOCHS = 4


def improvement(trial: optuna.trial.FrozenTrial) -> float:
    """What the sampler models for a trial under a history: its value minus the value of the
    state it started from (its value when that is unknown)."""
    start = trial.user_attrs.get("start_value")
    assert trial.value is not None
    return trial.value - start if isinstance(start, (int, float)) else trial.value


def worker_id() -> str:
    """``host:pid`` of this process (recorded on the trials a worker trains)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def resolve_device(spec: Any) -> torch.device:
    """The torch device for ``spec`` (``None``: CUDA if available, else CPU), checked to exist.

    Raises:
        ValueError: An unknown device string, or a device this machine does not have.
    """
    import torch

    if spec is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {spec!r}: {str(err).splitlines()[0]}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {spec!r} requested, but no CUDA GPU is available here")
        if device.index is not None and device.index >= count:
            raise ValueError(f"device {spec!r} requested, but only {count} CUDA device(s) exist")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {spec!r} requested, but MPS is not available here")
    elif device.type != "cpu":
        raise ValueError(f"device {spec!r} is not supported (use cpu, cuda, cuda:K or mps)")
    return device


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    import torch

    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _scalars(metrics: Any, *, what: str, keep_lists: bool = False) -> dict[str, Any]:
    """Metrics as ``{name: float}`` (a ``confusion_matrix`` list kept when ``keep_lists``)."""
    if metrics is None:
        return {}
    if isinstance(metrics, numbers.Real) and not isinstance(metrics, bool):
        return {"train_loss": float(metrics)}
    if not isinstance(metrics, Mapping):
        raise ValueError(f"{what} must return a mapping of metrics, got {type(metrics).__name__}")
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        if isinstance(v, bool):
            out[str(k)] = v
        elif isinstance(v, numbers.Real) or (hasattr(v, "item") and getattr(v, "ndim", 1) == 0):
            out[str(k)] = float(v)
        elif keep_lists and isinstance(v, (list, tuple)):
            out[str(k)] = v
        else:
            raise ValueError(f"{what} returned the metric {k!r} = {v!r}, which is not a number")
    return out


def _exploded(valid: Mapping[str, Any], start: Mapping[str, Any]) -> bool:
    """Whether the validation ``loss`` exceeds :data:`DIVERGENCE_FACTOR` times the start's."""
    loss, ref = valid.get("loss"), (start.get("metrics") or {}).get("loss")
    if not isinstance(loss, float) or not isinstance(ref, (int, float)) or not ref > 0:
        return False
    return loss > DIVERGENCE_FACTOR * ref


def _jsonable(v: Any) -> Any:
    """A metric as stored in a user attribute (non-finite floats as ``None``)."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _finite(metrics: Mapping[str, Any]) -> bool:
    return all(math.isfinite(v) for v in metrics.values() if isinstance(v, float))


class Engine:
    """One run of the tuner (see the module docstring).

    Args:
        trainer: The user's :class:`~optuna_gamma.tuner.trainer.Trainer`.
        space: The search space; ``None`` takes ``trainer.search_space()``.
        config: The settings.
        mode: ``"per-epoch"`` or ``"whole"``.
        role: ``"serial"`` (this process trains every trial, holding the run lock),
            ``"coordinator"`` (holds the lock, prepares the run and finalizes it while workers
            train; :mod:`~optuna_gamma.tuner.execution.workers`) or ``"worker"`` (trains trials
            next to other workers, without the lock).

    Raises:
        ValueError: Any bad argument, found before any work starts.
    """

    def __init__(
        self,
        trainer: Trainer,
        space: SpaceLike | None,
        config: TunerConfig,
        mode: str,
        role: str = "serial",
    ) -> None:
        if role not in ("serial", "coordinator", "worker"):
            raise ValueError(f"role must be 'serial', 'coordinator' or 'worker', got {role!r}")
        if not isinstance(config, TunerConfig):
            raise ValueError(f"config must be a TunerConfig, got {type(config).__name__}")
        check_trainer(trainer)
        if space is None:
            get_space = getattr(trainer, "search_space", None)
            space = get_space() if callable(get_space) else None
            if space is None:
                raise ValueError(
                    "no search space: pass space=... or give the trainer a search_space()"
                )
        self.trainer = trainer
        self.config = config
        self.mode = mode
        self.role = role
        self.space = ParamSpace.of(space)
        self.objective = resolve_objective(config.objective)
        self.device = resolve_device(config.device)
        if config.deterministic is None:
            self.deterministic = self.device.type == "cpu" and bool(
                getattr(trainer, "deterministic", True)
            )
        else:
            self.deterministic = config.deterministic
        self.plan = SamplerPlan(
            config.sampler,
            self.space,
            config.trials_per_epoch,
            config.n_startup_trials,
            self.deterministic,
        )
        self.space = self.plan.space  # ``fixed`` samplers fix ``lr``
        self.policy: Policy = (
            make_policy(
                config, thesis_trials=self.plan.trials_per_epoch, fixed_plan=self.plan.thesis_only
            )
            if mode == "per-epoch"
            else ThesisPolicy(trials=self.plan.trials_per_epoch, epochs=1)
        )
        self.run_plan = self.policy.plan
        self.config = config = resolve_run_name(config, self)
        self.paths = RunPaths(
            config.run_dir if config.run_dir is not None else Path("runs") / str(config.run)
        )
        self.storage: Any = None
        self.storage_text = ""
        self.artifacts_text = ""
        self.store: StateStore | None = None
        self._state: Any = None
        self._initial: dict[str, Any] | None = None
        self._snapshots: dict[tuple[int, int], dict[str, Any]] = {}
        self._warned_bounds: set[tuple[str, str]] = set()
        self._bar: Any = None
        self.new_trials = 0

    # ------------------------------------------------------------------ set-up
    @contextlib.contextmanager
    def opened(self) -> Iterator[Engine]:
        """Open storage and artifact store and build the trainer's state; the serial driver and
        the coordinator also lock the run directory (a worker never does)."""
        cfg = self.config
        with contextlib.ExitStack() as stack:
            if self.role != "worker":
                self.paths.ensure_writable()
                stack.enter_context(run_lock(self.paths))
            stack.enter_context(_torch_threads(cfg.num_threads))
            heartbeat = None
            if self.role in ("worker", "coordinator"):
                heartbeat = (
                    cfg.heartbeat_interval,
                    cfg.grace_period or 3 * cfg.heartbeat_interval,
                )
            self.storage, self.storage_text = open_storage(
                cfg.storage, self.paths.default_storage, heartbeat
            )
            store, self.artifacts_text = open_artifact_store(cfg.artifacts, self.paths.artifacts)
            self.store = StateStore(store, self.artifacts_text)
            with seeded_rng(derive_seed(cfg.seed, "build"), self.device):
                self._state = self.trainer.build(cfg.seed, self.device)
            self._check_state()
            self._initial = capture(self._state)
            prepare_run(self)
            yield self

    def _check_state(self) -> None:
        import torch

        state = self._state
        if not isinstance(getattr(state, "model", None), torch.nn.Module) or not isinstance(
            getattr(state, "optimizer", None), torch.optim.Optimizer
        ):
            raise ValueError(
                "trainer.build() must return a TrainingState with a torch.nn.Module model and a "
                f"torch.optim.Optimizer optimizer, got {state!r}"
            )
        first = next(state.model.parameters(), None)
        if (
            first is not None
            and first.device != self.device
            and not (first.device.type == self.device.type and self.device.index is None)
        ):
            state.model.to(self.device)

    def manifest(self) -> RunManifest:
        """What the studies of this run record about it
        (:mod:`~optuna_gamma.tuner.execution.manifest`; its identity keys are checked on resume),
        with the run's length: ``epochs_total`` (the number of studies) and, in whole mode,
        ``epochs_per_trial``."""
        describe = getattr(self.trainer, "describe", None)
        return RunManifest.from_config(
            self.config,
            mode=self.mode,
            sampler=self.plan.name,
            trials_per_epoch=getattr(self.policy, "width", self.plan.trials_per_epoch),
            objective=self.objective.name,
            space=self.space.to_dict(),
            epochs_total=1 if self.mode == "whole" else self.n_epochs,
            epochs_per_trial=self.epochs_per_trial if self.mode == "whole" else None,
            run_dir=str(self.paths.root),
            artifacts=self.artifacts_text,
            policy=self.policy.describe(),
            plan=tuple(self.run_plan.trials),
            trainer=dict(describe()) if callable(describe) else type(self.trainer).__name__,
            trainer_spec=trainer_spec(self.trainer, self.config.trainer_ref),
            device=str(self.device),
            **identity_fields(self.trainer, self._initial, self.config),
        )

    def run_record(self) -> dict[str, Any]:
        """:meth:`manifest` as the studies store it (a JSON-safe dict)."""
        return self.manifest().to_record()

    @property
    def n_epochs(self) -> int:
        """Studies of the run: the policy's epochs (1 in whole mode)."""
        return self.run_plan.epochs

    @property
    def epochs_per_trial(self) -> int:
        """Epochs one trial trains: 1 per epoch, ``epochs`` in whole mode."""
        return (self.config.epochs or 1) if self.mode == "whole" else 1

    def trials_of(self, epoch: int) -> int:
        """Complete trials study ``epoch`` needs before adoption."""
        return self.run_plan.trials[epoch - 1]

    def open_study(self, name: str, record: dict[str, Any]) -> optuna.Study:
        """Create or load study ``name``; record the config, or refuse a different one."""
        study = optuna.create_study(
            study_name=name,
            storage=self.storage,
            direction=self.objective.direction,
            load_if_exists=True,
            sampler=optuna.samplers.RandomSampler(seed=0),
        )
        old = study.user_attrs.get("config")
        if isinstance(old, Mapping):
            old = current_record(old)
        if old is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names([self.objective.metric_name])
            study.set_user_attr("config", record)
            return study
        check_same_run(name, old, record, worker=self.role == "worker")
        for key in ("num_threads", "device"):
            if old.get(key) != record.get(key) and self.role != "worker":
                _logger.warning(
                    f"study {name!r} was run with {key}={old.get(key)!r}, this call uses "
                    f"{record.get(key)!r}: results may differ from an uninterrupted run"
                )
        return study

    # ------------------------------------------------------------------ training
    def train(
        self, snapshot: dict[str, Any], hparams: Mapping[str, Any], epochs: list[int], number: int
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], float, float]:
        """Restore ``snapshot``, train ``epochs`` with ``hparams``, evaluate on validation data.

        Returns:
            (trained snapshot, validation metrics, training metrics, train seconds, eval seconds)
        """
        import torch

        state = self._state
        restore(state, snapshot)
        apply = getattr(self.trainer, "apply_hyperparameters", None)
        (apply if callable(apply) else apply_hyperparameters)(state, hparams)
        train_metrics: dict[str, Any] = {}
        t0 = time.perf_counter()
        for epoch in epochs:
            seed = derive_seed(self.config.seed, "batches", epoch)
            ctx = EpochContext(
                epoch=epoch,
                seed=seed,
                device=self.device,
                trial_number=number,
                generator=torch.Generator().manual_seed(derive_seed(seed, "generator")),
            )
            with seeded_rng(seed, self.device):
                out = self.trainer.train_epoch(state, hparams, ctx)
            train_metrics = _scalars(out, what="train_epoch()")
            if not _finite(train_metrics) or train_metrics.get("diverged") is True:
                break
        t_train = time.perf_counter() - t0
        t1 = time.perf_counter()
        with seeded_rng(derive_seed(self.config.seed, "evaluate"), self.device):
            valid = _scalars(self.trainer.evaluate(state, "valid"), what="evaluate()")
        t_eval = time.perf_counter() - t1
        return capture(state), valid, train_metrics, t_train, t_eval

    def evaluate(self, snapshot: dict[str, Any], split: str) -> dict[str, Any]:
        """Metrics of ``snapshot`` on ``split``."""
        restore(self._state, snapshot)
        with seeded_rng(derive_seed(self.config.seed, "evaluate"), self.device):
            out = self.trainer.evaluate(self._state, split)
        return _scalars(out, what="evaluate()", keep_lists=True)

    # ------------------------------------------------------------------ one study
    def start_record(self, study: optuna.Study, epoch: int) -> dict[str, Any]:
        """The study's start: ``{"state", "metrics", "value"}`` (recorded once, in ``start``).

        Epoch 1 (and whole mode) start from the initial state, which is uploaded and evaluated
        once; a later epoch starts from the previous epoch's adopted state.
        """
        rec = study.user_attrs.get("start")
        if rec is not None:
            return rec
        if epoch > 1:
            prev = self.load_study(epoch - 1).user_attrs["adopted"]
            rec = {"from_epoch": epoch - 1, "metrics": prev["metrics"], "value": prev["value"]}
        else:
            assert self.store is not None and self._initial is not None
            metrics = self.evaluate(self._initial, "valid")
            state_id = self.store.save(self._initial, study, "initial.pt")
            rec = {"state": state_id, "metrics": metrics, "value": self.objective(metrics)}
            rec["state_sha256"] = self.store.digest(state_id)
        study.set_user_attr("start", rec)
        return rec

    def study_name(self, epoch: int) -> str:
        return (
            f"{self.config.run}/whole"
            if self.mode == "whole"
            else f"{self.config.run}/epoch-{epoch:03d}"
        )

    def load_study(self, epoch: int) -> optuna.Study:
        return optuna.load_study(study_name=self.study_name(epoch), storage=self.storage)

    def start_snapshot(self, epoch: int, parent: int = 0) -> dict[str, Any]:
        """The start state of a trial of study ``epoch`` whose slot names ``parent`` (the rank
        of its state in the previous epoch's population; recovered if its artifact is
        unreadable)."""
        if epoch > 1 and self.mode == "per-epoch":
            return self.member_snapshot(epoch - 1, parent)
        if (0, epoch) in self._snapshots:
            return self._snapshots[(0, epoch)]
        assert self.store is not None and self._initial is not None
        study = self.load_study(epoch)
        rec = study.user_attrs["start"]
        where = f"the start of study {study.study_name!r}"
        try:
            state_id = check_artifact_id(rec.get("state"), where=where)
            snap = self.store.load(state_id, rec.get("state_sha256"))
            self._snapshots[(0, epoch)] = snap
            return snap
        except StateUnavailableError as err:
            _logger.warning(f"{err} ({where}); rebuilding the initial state from the seed")
            broken, rec = (
                rec["state"],
                {**rec, "state": self.store.save(self._initial, study, "initial.pt")},
            )
            rec["state_sha256"] = self.store.digest(rec["state"])
            study.set_user_attr("start", rec)
            self.store.remove(broken)
            return self._initial

    def population_of(self, epoch: int) -> list[dict[str, Any]]:
        """The records of the states study ``epoch`` carried forward, best first (the adopted
        one alone for runs recorded before populations existed)."""
        return self.population_of_study(self.load_study(epoch))

    @staticmethod
    def population_of_study(study: optuna.Study) -> list[dict[str, Any]]:
        """:meth:`population_of` for an open study."""
        attrs = study.user_attrs
        members = attrs.get("population")
        if not isinstance(members, list) or not members:
            return [dict(attrs["adopted"])]
        return [dict(m) for m in members]

    def parent_record(self, epoch: int, parent: int) -> dict[str, Any]:
        """What a trial of study ``epoch`` starting from rank ``parent`` starts from:
        ``{"metrics", "value"}`` of that state (the study's start record for rank 0).

        Raises:
            ValueError: ``parent`` is not a rank of the previous epoch's population (a queued
                trial read from the storage is untrusted).
        """
        if parent == 0 or epoch == 1 or self.mode != "per-epoch":
            if parent != 0:
                raise ValueError(f"study {self.study_name(epoch)!r}: no parent {parent!r}")
            return dict(self.load_study(epoch).user_attrs["start"])
        members = self.population_of(epoch - 1)
        if not isinstance(parent, int) or not 0 <= parent < len(members):
            raise ValueError(
                f"study {self.study_name(epoch)!r}: a trial names parent {parent!r}, but the "
                f"previous epoch carried {len(members)} state(s)"
            )
        return {"metrics": members[parent]["metrics"], "value": members[parent]["value"]}

    def member_snapshot(self, epoch: int, rank: int = 0) -> dict[str, Any]:
        """State ``rank`` of study ``epoch``'s population (0: the adopted state); recomputed
        from its start if unreadable."""
        if (epoch, rank) in self._snapshots:
            return self._snapshots[(epoch, rank)]
        assert self.store is not None
        study = self.load_study(epoch)
        members = self.population_of(epoch)
        record = dict(members[rank])
        what = "adopted" if rank == 0 else f"carried (rank {rank})"
        where = f"the {what} trial {record['trial']} of study {study.study_name!r}"
        try:
            state_id = check_artifact_id(record.get("state"), where=where)
            snap = self.store.load(state_id, record.get("state_sha256"))
        except StateUnavailableError as err:
            snap = self._recompute(study, record, epoch, f"{err} ({where})")
            broken, record["state"] = (
                record["state"],
                self.store.save(snap, study, f"adopted-recomputed-{record['trial']:04d}.pt"),
            )
            record["state_sha256"] = self.store.digest(record["state"])
            members[rank] = record
            if "population" in study.user_attrs:
                study.set_user_attr("population", members)
            if rank == 0:
                study.set_user_attr("adopted", {**study.user_attrs["adopted"], **record})
            self.store.remove(broken)
        # only the latest epoch's states are needed again
        self._snapshots = {k: v for k, v in self._snapshots.items() if k[0] == epoch}
        self._snapshots[(epoch, rank)] = snap
        return snap

    def adopted_snapshot(self, epoch: int) -> dict[str, Any]:
        """The adopted state of study ``epoch``; recomputed from its start if unreadable."""
        return self.member_snapshot(epoch, 0)

    def _recompute(
        self, study: optuna.Study, record: Mapping[str, Any], epoch: int, why: str
    ) -> dict[str, Any]:
        _logger.warning(f"{why}; recomputing it from the study's start state")
        parent = int(record.get("parent", 0))
        snap, valid, _, _, _ = self.train(
            self.start_snapshot(epoch, parent),
            record["hparams"],
            self.epochs_of(epoch),
            record["trial"],
        )
        recorded = record.get("metrics", {})  # validation and training metrics: compare the first
        if any(k in valid and valid[k] != v for k, v in recorded.items() if isinstance(v, float)):
            _logger.warning(
                f"the recomputed state of trial {record['trial']} of {study.study_name!r} has "
                f"other "
                f"validation metrics than recorded ({valid} vs {recorded}): training is not "
                "deterministic here"
            )
        return snap

    def epochs_of(self, epoch: int) -> list[int]:
        """The epochs a trial of study ``epoch`` trains."""
        return list(range(1, self.epochs_per_trial + 1)) if self.mode == "whole" else [epoch]

    def prepare_study(self, epoch: int, study: optuna.Study) -> dict[str, Any]:
        """Record the study's start, fail dead trials (serial driver and coordinator only: they
        hold the run lock), and enqueue the policy's planned slots, grid points or the warm start
        once. Returns the start record."""
        start = self.start_record(study, epoch)
        if self.role != "worker":
            self.fail_stale(study)
        slots = self.planned_slots(epoch)
        if slots is not None:
            # Workers find every slot queued. The serial driver queues one slot at a time
            # (:meth:`run_study`), so that a retry after a crash runs in its slot's place and
            # a resumed run proposes what an uninterrupted one would.
            if self.role != "serial":
                self._enqueue_slots(study, slots)
        elif self.plan.grid:
            self._enqueue_once(
                study, self.plan.queue(derive_seed(self.config.seed, "grid", epoch))
            )
        elif self.config.warm_start and epoch > 1:
            prev = self.load_study(epoch - 1).user_attrs["adopted"]
            self._enqueue_once(study, [dict(prev["params"])])
        if not study.user_attrs.get("prepared"):
            study.set_user_attr("prepared", True)
        return start

    def default_point(self) -> dict[str, Any]:
        """The trainer's own values of the tuned hyperparameters: those of the built optimizer's
        first parameter group that lie in the search space (what an untuned training uses)."""
        assert self._initial is not None
        groups = self._initial["optimizer"].get("param_groups") or [{}]
        return {
            name: groups[0][name]
            for name, dist in self.space.distributions.items()
            if name in groups[0] and in_distribution(dist, groups[0][name])
        }

    def _members(self, epoch: int) -> list[Member]:
        return [
            Member(
                trial=int(m["trial"]),
                value=float(m["value"]),
                params=dict(m["params"]),
                parent=int(m.get("parent", 0)),
            )
            for m in self.population_of(epoch)
        ]

    def planned_slots(self, epoch: int) -> list[Slot] | None:
        """The policy's slots of study ``epoch``; ``None`` when each is a plain sampler trial
        from the adopted state (nothing to queue: the thesis's policy)."""
        slots = self.policy.slots(
            epoch, self._members(epoch - 1) if epoch > 1 else [], self.default_point()
        )
        if all(slot.plain for slot in slots):
            return None
        designed = [i for i, slot in enumerate(slots) if slot.kind == "design"]
        for i, params in zip(designed, self._design(epoch, len(designed))):
            slots[i] = dataclasses.replace(slots[i], params=params)
        return slots

    def _design(self, epoch: int, n: int) -> list[dict[str, Any]]:
        """``n`` points of a Latin hypercube over the search space, seeded by (run seed,
        epoch): the same in every process."""
        if n == 0:
            return []
        from scipy.stats import qmc

        space = SearchSpace(self.space.distributions)
        seed = derive_seed(self.config.seed, "design", epoch)
        U = qmc.LatinHypercube(d=space.dim, seed=seed).random(n)
        return [space.decode(x) for x in space.from_unit_cube(U)]

    @staticmethod
    def _enqueue_next_slot(study: optuna.Study, slots: list[Slot]) -> None:
        """Queue the first slot that no live trial holds, unless a trial is queued already."""
        live = study.get_trials(
            deepcopy=False,
            states=(TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING),
        )
        if any(t.state == TrialState.WAITING for t in live):
            return
        held = {t.user_attrs.get("slot") for t in live}
        for i, slot in enumerate(slots):
            if i not in held:
                study.enqueue_trial(dict(slot.params or {}), user_attrs=slot.user_attrs(i))
                return

    @staticmethod
    def _enqueue_slots(study: optuna.Study, slots: list[Slot]) -> None:
        """Queue the policy's slots of a study once, also across a crash in the middle (a slot
        already queued is known by its ``slot`` user attribute)."""
        if study.user_attrs.get("queued"):
            return
        there = {t.user_attrs.get("slot") for t in study.get_trials(deepcopy=False)}
        for i, slot in enumerate(slots):
            if i not in there:
                study.enqueue_trial(dict(slot.params or {}), user_attrs=slot.user_attrs(i))
        study.set_user_attr("queued", True)

    def sampler_for(
        self, epoch: int, slot_of: Callable[[optuna.Study, optuna.trial.FrozenTrial], int]
    ) -> ReseededSampler:
        """The per-trial sampler of study ``epoch``, seeded from (run seed, epoch, slot).

        Under a policy that asks for it, from epoch 2 on, ``GammaBOSampler`` also sees
        the earlier epochs' trials (:meth:`history`) and models every trial's improvement over
        the state it started from (docs/design.md §7: knowledge across epochs)."""
        factory = self.plan.factory
        if self.policy.history and epoch > 1:
            factory = self.plan.factory_with_history(self.history(epoch), improvement)
        return ReseededSampler(
            factory,
            lambda slot: derive_seed(self.config.seed, "sampler", epoch, slot),
            slot_of=slot_of,
        )

    def history(self, epoch: int) -> Callable[[optuna.Study], Any]:
        """The observations of the :data:`HISTORY_EPOCHS` epochs before ``epoch`` for the
        sampler (``GammaBOSampler(history=...)``): each healthy trial that trained its own
        state, its improvement over its start state, and its age ``epoch - e``. The earlier
        epochs are adopted, so they are read once."""
        params: list[dict[str, Any]] = []
        values: list[float] = []
        ages: list[float] = []
        distributions: dict[str, Any] | None = None
        for e in range(max(1, epoch - HISTORY_EPOCHS), epoch):
            for t in self.load_study(e).get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                ua = t.user_attrs
                start = ua.get("start_value")
                if (
                    t.value is None
                    or not isinstance(start, (int, float))
                    or ua.get("diverged")
                    or "reused_from" in ua
                ):
                    continue
                params.append(dict(t.params))
                values.append(float(t.value) - float(start))
                ages.append(float(epoch - e))
                distributions = distributions or dict(t.distributions)
        # the space lets the sampler model the study's first trial already
        observed = History(params=params, values=values, ages=ages, distributions=distributions)
        return lambda _study: observed

    def optimize(
        self,
        study: optuna.Study,
        objective: Callable[[optuna.Trial], float],
        n_trials: int,
        after: Callable[[optuna.Study, optuna.trial.FrozenTrial], None],
    ) -> None:
        """``study.optimize`` with the failure Optuna masks when telling fails re-raised."""
        masked: Exception | None = None
        try:
            study.optimize(objective, n_trials=n_trials, callbacks=[after])
        except AssertionError as err:
            # Optuna's trial runner ends in ``assert False`` when telling the result fails
            # (e.g. a full disk); the failure it masks is the one to report.
            if not isinstance(err.__context__, Exception):
                raise
            masked = err.__context__
        if masked is not None:
            raise masked

    def run_study(self, epoch: int, study: optuna.Study) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run study ``epoch`` to ``T`` complete trials in this process and adopt its best trial.

        Returns:
            (the ``adopted`` record, the adopted snapshot)
        """
        self.prepare_study(epoch, study)
        # This process holds the run lock, so the study's COMPLETE trials change only through
        # it: keep them here instead of asking the storage before every trial.
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        sampler = self.sampler_for(epoch, slot_of=lambda _study, _trial: len(done))
        study = optuna.load_study(
            study_name=study.study_name, storage=self.storage, sampler=sampler
        )

        def objective(trial: optuna.Trial) -> float:
            return self.trial(study, trial, done, epoch)

        def after(study_: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
            crash_point("after_tell")
            if frozen.state == TrialState.COMPLETE:
                done.append(frozen)
            self.new_trials += 1
            if self._bar is not None:
                self._bar.update(1)

        slots = self.planned_slots(epoch)
        while len(done) < self.trials_of(epoch):
            if slots is None:
                self.optimize(study, objective, self.trials_of(epoch) - len(done), after)
            else:
                self._enqueue_next_slot(study, slots)
                self.optimize(study, objective, 1, after)
        return self.adopt(study, epoch)

    def trial(
        self,
        study: optuna.Study,
        trial: optuna.Trial,
        done: list[optuna.trial.FrozenTrial] | None,
        epoch: int,
    ) -> float:
        """One trial: reuse an earlier result for a repeated point, else train, evaluate, store.

        The trial starts from the state its slot names (user attribute ``parent``, a rank of
        the previous epoch's population; 0 when the policy queued nothing) and records that
        state's value as ``start_value``. ``done`` is the study's COMPLETE trials (kept by the
        serial driver); ``None`` reads them from the storage (workers), where a point that
        another worker is training right now is awaited and then reused, so no point is trained
        twice from the same state.
        """
        assert self.store is not None
        crash_point("after_ask")
        if self.role == "worker":
            trial.set_user_attr("worker", worker_id())
        hparams = self.space.suggest(trial)
        parent = trial.user_attrs.get("parent", 0)
        start = self.parent_record(epoch, parent)
        if done is None:
            done = self._await_twins(study, trial)
        params = trial.params  # a copy on every access
        for prior in done:
            if (
                prior.state == TrialState.COMPLETE
                and "reused_from" not in prior.user_attrs
                and prior.user_attrs.get("parent", 0) == parent
                and self.space.same(prior.params, params)
            ):
                for key, value in prior.user_attrs.items():
                    if key not in self._OWN_ATTRS:
                        trial.set_user_attr(key, value)
                trial.set_user_attr("reused_from", prior.number)
                assert prior.value is not None
                return prior.value
        snap, valid, train_metrics, t_train, t_eval = self.train(
            self.start_snapshot(epoch, parent), hparams, self.epochs_of(epoch), trial.number
        )
        value = self.objective(valid) if _finite(valid) else math.nan
        diverged = (
            not math.isfinite(value)
            or not _finite(train_metrics)
            or train_metrics.get("diverged") is True
            or _exploded(valid, start)
        )
        attrs: dict[str, Any] = {k: _jsonable(v) for k, v in {**valid, **train_metrics}.items()}
        attrs["time"] = {"train": t_train, "eval": t_eval}
        attrs["start_value"] = _jsonable(start.get("value"))
        if diverged:
            attrs["diverged"] = True
            if self.objective.worst is not None or not math.isfinite(value):
                value = self._diverged_value(done, start)
        else:
            if self.objective.clipped is not None:
                attrs["kappa_clipped"] = float(self.objective.clipped(valid))
            attrs["state"] = self.store.save(
                snap,
                trial,
                f"{study.study_name.replace('/', '-')}-trial-{trial.number:04d}.pt",
                attach=self.config.keep_trial_states,
            )
            attrs["state_sha256"] = self.store.digest(attrs["state"])
            crash_point("after_save")
        for key, v in attrs.items():
            trial.set_user_attr(key, v)
        return value

    def _await_twins(
        self, study: optuna.Study, trial: optuna.Trial
    ) -> list[optuna.trial.FrozenTrial]:
        """The study's COMPLETE trials, once no other RUNNING trial holds this trial's point
        (waiting with back-off for such a twin to finish: its result is then reused)."""
        delay = 0.05
        params = trial.params
        while True:
            trials = study.get_trials(
                deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)
            )
            twins = [
                t
                for t in trials
                if t.state == TrialState.RUNNING
                and t.number != trial.number
                and t.number < trial.number
                and t.user_attrs.get("parent", 0) == trial.user_attrs.get("parent", 0)
                and self.space.same(t.params, params)
            ]
            if not twins:
                return [t for t in trials if t.state == TrialState.COMPLETE]
            time.sleep(delay)
            delay = min(2 * delay, 2.0)

    def _diverged_value(
        self, done: list[optuna.trial.FrozenTrial], start: Mapping[str, Any]
    ) -> float:
        """A finite, clearly bad value for a diverged trial.

        With a bound (:attr:`~optuna_gamma.tuner.search.objectives.Objective.worst`, every built-in
        objective has one): just beyond the worst value a healthy trial can have, given the
        epoch's start metrics, ``worst - sign * 1e-3 * max(1, |worst|)``. For kappa_1 with a
        start loss of 2.3 that is ``0 - 0.5 ln(23) = -1.57``: below every healthy trial whatever
        order the trials finish in (so a diverged trial is never adopted while a healthy one
        exists), and not so far below that it squashes the healthy trials' differences in the
        sampler's standardized view, as a constant such as -1e9 would.

        Without a bound (a callable objective that returned no finite value): one spread of the
        healthy values (and the start's) below the worst value so far; this depends on the
        trials completed before it.
        """
        sign = self.objective.sign
        start_metrics = start.get("metrics") or {}
        if self.objective.worst is not None and _finite(start_metrics):
            try:
                bound = float(self.objective.worst(start_metrics))
            except (KeyError, ValueError, TypeError):
                bound = math.nan
            if math.isfinite(bound):
                return bound - sign * 1e-3 * max(1.0, abs(bound))
        healthy = [
            float(t.value)
            for t in done
            if not t.user_attrs.get("diverged") and t.value is not None
        ]
        ref = start.get("value")
        if isinstance(ref, (int, float)) and math.isfinite(ref):
            healthy.append(float(ref))
        everything = healthy + [float(t.value) for t in done if t.value is not None]
        if not healthy:
            base = everything or [0.0]
            worst = min(v * sign for v in base) * sign
            return worst - sign * 1.0
        spread = max(healthy) - min(healthy)
        spread = max(spread, 1e-3 * max(1.0, max(abs(h) for h in healthy)))
        worst = min(v * sign for v in everything) * sign
        return worst - sign * spread

    def fail_stale(self, study: optuna.Study) -> None:
        """Fail every RUNNING trial (its process is dead: this process holds the run lock) and
        retry each once with the same parameters (:meth:`fail_and_retry`)."""
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            self.fail_and_retry(study, t)

    def fail_and_retry(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """Tell a dead process's RUNNING ``trial`` FAIL and enqueue a retry with its parameters,
        once: the retry carries ``user_attrs["retry_of"]``, so a second crash between the
        enqueue and the fail does not enqueue it twice. A trial that died before all its
        parameters were suggested is retried with whatever was fixed for it (an enqueued point),
        else the sampler proposes again."""
        retried = {t.user_attrs.get("retry_of") for t in study.get_trials(deepcopy=False)}
        fixed = dict(trial.system_attrs.get("fixed_params") or {})
        params = {**fixed, **trial.params}
        # the retry keeps the policy's slot (its start state and kind)
        attrs: dict[str, Any] = {
            k: trial.user_attrs[k] for k in ("slot", "parent", "kind") if k in trial.user_attrs
        }
        attrs["retry_of"] = trial.number
        if trial.number not in retried:
            if set(self.space.tuned()) <= set(params):
                study.enqueue_trial({k: params[k] for k in self.space.tuned()}, user_attrs=attrs)
            elif fixed or len(attrs) > 1:
                study.enqueue_trial(fixed, user_attrs=attrs)
        study.tell(trial.number, state=TrialState.FAIL)

    def storage_has_heartbeat(self) -> bool:
        """Whether the storage fails trials whose worker stopped beating (RDB in worker role)."""
        get = getattr(self.storage, "get_heartbeat_interval", None)
        return callable(get) and get() is not None

    @staticmethod
    def _enqueue_once(study: optuna.Study, points: list[dict[str, Any]]) -> None:
        """Enqueue ``points`` once per study, also across a crash in the middle: the points
        already there are read once and skipped (Optuna's ``skip_if_exists`` would read every
        trial again for each point, quadratic in a 500-point grid)."""
        if study.user_attrs.get("queued"):
            return

        def key(params: Mapping[str, Any]) -> tuple:
            return tuple(sorted((k, repr(v)) for k, v in params.items()))

        there = set()
        for t in study.get_trials(deepcopy=False):
            there.add(key({**(t.system_attrs.get("fixed_params") or {}), **t.params}))
        for p in points:
            if key(p) not in there:
                study.enqueue_trial(p)
        study.set_user_attr("queued", True)

    # ------------------------------------------------------------------ adoption
    def adopt(self, study: optuna.Study, epoch: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Adopt the policy's selection; idempotent.

        The thesis's policy adopts ``study.best_trial`` (the one optuna-dashboard shows as
        Best Trial). Other policies rank the healthy trials that trained a state of their own
        (best value first, then trial number) and carry what the policy selects; the first is
        adopted. Each carried state is loaded (recomputed from its start if unreadable) before
        the records are written: ``population`` (every carried state, best first) and then
        ``adopted`` (the first, with why it was chosen), whose presence marks the study done.
        """
        if "adopted" in study.user_attrs:  # adopted already (by another worker): the same record
            return dict(study.user_attrs["adopted"]), self.adopted_snapshot(epoch)
        chosen = self._chosen(study, epoch)
        records: list[dict[str, Any]] = []
        snaps: dict[tuple[int, int], dict[str, Any]] = {}
        try:
            for rank, trial in enumerate(chosen):
                record, snaps[(epoch, rank)] = self._carried(study, trial, epoch)
                records.append(record)
        except _AdoptedElsewhere:  # another worker adopted meanwhile (and removed the rest)
            return dict(study.user_attrs["adopted"]), self.adopted_snapshot(epoch)
        crash_point("after_adopt_verify")
        if "adopted" in study.user_attrs:  # adopted by another worker meanwhile: it stands
            return dict(study.user_attrs["adopted"]), self.adopted_snapshot(epoch)
        study.set_user_attr("population", records)
        n = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        why = f"best of {n} trials" + (
            f" (kind {records[0]['kind']!r}), {len(records)} state(s) carried"
            if self.policy.name != "thesis"
            else ""
        )
        study.set_user_attr("adopted", {**records[0], "why": why})
        crash_point("after_adopt")
        self.clean_up(study)
        self._snapshots = snaps
        return dict(study.user_attrs["adopted"]), snaps[(epoch, 0)]

    def _chosen(self, study: optuna.Study, epoch: int) -> list[optuna.trial.FrozenTrial]:
        """The trials whose states are carried forward, best first (the policy decides)."""
        if self.policy.name == "thesis":
            best = study.best_trial
            if best.user_attrs.get("diverged"):
                raise AllTrialsDivergedError(
                    f"every trial of study {study.study_name!r} diverged; narrow the search "
                    f"space (e.g. lower the upper end of the learning rate)"
                )
            return [best]
        sign = self.objective.sign
        healthy = sorted(
            (
                t
                for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if not t.user_attrs.get("diverged")
                and "reused_from" not in t.user_attrs
                and "state" in t.user_attrs
                and t.value is not None
            ),
            key=lambda t: (-sign * float(t.value), t.number),  # type: ignore[arg-type]
        )
        if not healthy:
            raise AllTrialsDivergedError(
                f"every trial of study {study.study_name!r} diverged; narrow the search space "
                f"(e.g. lower the upper end of the learning rate)"
            )
        by_number = {t.number: t for t in healthy}
        ranked = [
            Member(
                trial=t.number,
                value=float(t.value),  # type: ignore[arg-type]
                params=dict(t.params),
                parent=int(t.user_attrs.get("parent", 0)),
            )
            for t in healthy
        ]
        return [by_number[m.trial] for m in self.policy.select(epoch, ranked)]

    def _carried(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial, epoch: int
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The record of a carried trial and its state (recomputed if unreadable)."""
        assert self.store is not None
        record: dict[str, Any] = {
            "trial": trial.number,
            "value": float(trial.value),  # type: ignore[arg-type]
            "params": dict(trial.params),
            "hparams": {**self.space.fixed, **trial.params},
            "metrics": {k: trial.user_attrs[k] for k in self._metric_keys(trial)},
            "parent": int(trial.user_attrs.get("parent", 0)),
            "kind": str(trial.user_attrs.get("kind", "sample")),
        }
        where = f"trial {trial.number} of study {study.study_name!r}"
        state_id = check_artifact_id(trial.user_attrs.get("state"), where=where)
        digest = trial.user_attrs.get("state_sha256")
        try:
            snap = self.store.load(state_id, digest)
            kept = self.store.keep(snap, trial, study, self.storage)
            if kept != state_id:  # a copy attached to the study (the trial's own is removed)
                state_id, digest = kept, self.store.digest(kept)
        except StateUnavailableError as err:
            # Workers that reach the epoch's barrier together may adopt at the same time
            # (adoption is a function of the complete trials, so they choose the same states).
            # The first to finish removes the states it did not carry, original files
            # included; a state missing for that reason is not recomputed: its adoption stands.
            if "adopted" in study.user_attrs:
                raise _AdoptedElsewhere from err
            snap = self._recompute(study, record, epoch, f"{err} ({where})")
            state_id = self.store.save(snap, study, f"adopted-recomputed-{trial.number:04d}.pt")
            digest = self.store.digest(state_id)
        record["state"], record["state_sha256"] = state_id, digest
        return record, snap

    _NON_METRICS = frozenset(
        {
            "state",
            "state_sha256",
            "reused_from",
            "retry_of",
            "time",
            "diverged",
            "kappa_clipped",
            "worker",
            "slot",
            "parent",
            "kind",
            "start_value",
        }
    )
    #: User attributes of a trial's own (not copied from the trial whose result it reuses).
    _OWN_ATTRS = frozenset({"worker", "slot", "parent", "kind", "retry_of"})

    def _metric_keys(self, trial: optuna.trial.FrozenTrial) -> list[str]:
        return [k for k in trial.user_attrs if k not in self._NON_METRICS]

    def clean_up(self, study: optuna.Study) -> None:
        """Delete the states of every trial but the adopted one (unless kept); idempotent."""
        assert self.store is not None
        if self.config.keep_trial_states or study.user_attrs.get("cleaned"):
            return
        keep = {m["state"] for m in self.population_of_study(study)}
        self.store.remove_unadopted(study, self.storage, keep)
        study.set_user_attr("cleaned", True)

    def warn_at_bounds(self, epoch: int, params: Mapping[str, Any]) -> None:
        """Warn once per (parameter, end) when the adopted value sits at a range bound."""
        for name, side in self.space.at_bound(params):
            if (name, side) in self._warned_bounds:
                continue
            self._warned_bounds.add((name, side))
            _logger.warning(
                f"the best {name} of epoch {epoch} ({params[name]:.4g}) sits at the {side} end "
                f"of its search range: {widen_hint(name, side)}"
            )

    # ------------------------------------------------------------------ progress
    @contextlib.contextmanager
    def progress(self, total: int, done: int) -> Iterator[None]:
        """A tqdm bar over the run's trials (total and start count right on resume) and the
        running epoch's trials (:mod:`optuna_gamma.tuner.execution.live`)."""
        with live_progress(self, total, done):
            yield

    def set_progress(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_description(text)

    def advance_progress(self, n: int) -> None:
        """Count ``n`` more complete trials on the progress bar (if one is shown)."""
        if self._bar is not None and n > 0:
            self._bar.update(n)

    def count_new_trials(self, before: int) -> int:
        """Set and return :attr:`new_trials`: the run's complete trials now less ``before``
        (those of earlier calls), including trials completed by workers."""
        self.new_trials = self.count_complete() - before
        return self.new_trials

    def count_complete(self) -> int:
        """Complete trials of this run's studies that exist so far."""
        names = {
            s.study_name
            for s in optuna.get_all_study_summaries(self.storage, include_best_trial=False)
        }
        total = 0
        for e in range(1, self.n_epochs + 1):
            if self.study_name(e) in names:
                total += min(
                    self.trials_of(e),
                    len(
                        self.load_study(e).get_trials(
                            deepcopy=False, states=(TrialState.COMPLETE,)
                        )
                    ),
                )
        return total


class _AdoptedElsewhere(Exception):
    """Another process adopted the study while this one was loading the carried states."""


@contextlib.contextmanager
def storage_errors() -> Iterator[None]:
    """Turn storage failures in the middle of a run into a one-line :class:`TunerError`."""
    try:
        yield
    except (optuna.exceptions.StorageInternalError, sqlalchemy.exc.SQLAlchemyError) as err:
        cause: BaseException | None = err
        while (
            cause is not None and getattr(cause, "orig", None) is None
        ):  # find the database's error
            cause = cause.__cause__ or cause.__context__
        text = str(getattr(cause, "orig", None) or err).strip().splitlines()
        raise TunerError(f"storage error: {text[0] if text else type(err).__name__}") from err
