"""Parallel workers: an epoch's trials trained at the same time, on one machine or many.

The engine is Optuna's own (docs/design.md §6): the studies live in the run's storage (PostgreSQL
for many machines; SQLite or a journal file on one), the training states in an Optuna artifact
store (a shared directory, or S3), and any number of worker processes join a run by storage,
artifact store and run name. Each worker repeatedly

1. takes the first epoch that is not adopted yet (its study is created and prepared by exactly
   one process: ``create_study`` admits one creator; the others wait for its ``prepared`` mark);
2. while fewer than ``T`` of its trials are complete or running, asks a trial (the sampler sees
   the RUNNING trials, and a point another worker is training is awaited and reused, not
   trained twice), trains it from the epoch's start state (downloaded once per worker and
   epoch), uploads the result and tells the value;
3. otherwise waits for the epoch barrier with back-off; once ``T`` trials are complete and none
   is running, adopts the best one. Adoption is a function of the complete trials, so whichever
   worker does it, and however often, it writes the same record.

A dead worker loses at most its running trial. On an RDB storage, Optuna's heartbeat
(``heartbeat_interval``, ``grace_period``) fails it and :class:`optuna.storages.
RetryHeartbeatStaleTrialCallback` enqueues it once more with the same parameters. Local workers
started by :func:`~optuna_gamma.tuner.execution.coordinator.coordinate` are watched by their
parent instead (a journal file has no heartbeat): when one dies, its RUNNING trials are failed
and retried. Killing every worker and starting again
resumes the run. Guaranteed: every epoch adopted exactly once from ``T`` complete trials (a
trial asked beyond the first ``T`` live ones is pruned before it trains: :func:`surplus_trial`), no
trial or state lost, no point trained twice within an epoch. Not guaranteed: bit-identical
results across worker counts (the samplers see different pending sets); the serial driver keeps
its bit-identical resume.
"""

from __future__ import annotations

import time
from typing import Any
from typing import TYPE_CHECKING
import warnings

import optuna
from optuna.trial import TrialState

from optuna_gamma.tuner._logging import get_logger
from optuna_gamma.tuner.execution.engine import Engine
from optuna_gamma.tuner.execution.retries import storage_has_heartbeat
from optuna_gamma.tuner.execution.runtime import storage_errors
from optuna_gamma.tuner.execution.runtime import worker_id
from optuna_gamma.tuner.execution.trials import optimize


if TYPE_CHECKING:
    from optuna_gamma.tuner.config import TunerConfig
    from optuna_gamma.tuner.search.space import SpaceLike
    from optuna_gamma.tuner.trainer import Trainer


__all__ = ["WorkerSummary", "first_open_epoch", "prepared_study", "run_worker"]

_logger = get_logger(__name__)

#: Longest pause of a worker waiting at the epoch barrier (it starts at 50 ms and doubles, up to
#: a tenth of the worker's recent trial time, so that a short trial is not followed by a long nap).
MAX_BACKOFF = 2.0


class Backoff:
    """Exponential back-off for waiting on other workers (never busy polling)."""

    def __init__(self, first: float = 0.05, longest: float = MAX_BACKOFF) -> None:
        self.first, self.longest, self.delay = first, longest, first

    def wait(self) -> None:
        time.sleep(self.delay)
        self.delay = min(2 * self.delay, self.longest)

    def reset(self) -> None:
        self.delay = self.first


class WorkerSummary(dict):
    """What :func:`run_worker` returns: ``worker``, ``trials`` (completed by it), ``reason``."""


def _counts(study: optuna.Study) -> tuple[int, int, int]:
    trials = study.get_trials(deepcopy=False)
    return (
        sum(t.state == TrialState.COMPLETE for t in trials),
        sum(t.state == TrialState.RUNNING for t in trials),
        sum(t.state == TrialState.WAITING for t in trials),
    )


def study_names(engine: Engine) -> set[str]:
    return engine.studies.names()


def n_studies(engine: Engine) -> int:
    return engine.n_epochs


def first_open_epoch(engine: Engine) -> int | None:
    """The first epoch of the run whose study is not adopted yet (``None``: the run is done)."""
    names = study_names(engine)
    for epoch in range(1, n_studies(engine) + 1):
        name = engine.studies.name(epoch)
        if name not in names or "adopted" not in engine.studies.load(epoch).user_attrs:
            return epoch
    return None


def prepared_study(engine: Engine, epoch: int, record: dict[str, Any]) -> optuna.Study:
    """Study ``epoch``, created and prepared by exactly one process (the others wait for it)."""
    name = engine.studies.name(epoch)
    try:
        study = optuna.create_study(
            study_name=name,
            storage=engine.storage,
            direction=engine.objective.direction,
            load_if_exists=False,
        )
    except optuna.exceptions.DuplicatedStudyError:
        backoff = Backoff()
        while True:
            study = engine.studies.open(name, {**record, "epoch": epoch})
            if study.user_attrs.get("prepared"):
                return study
            if engine.role == "coordinator":  # it holds the run lock: preparing is safe
                engine.prepare_study(epoch, study)
                return study
            backoff.wait()
    study = engine.studies.open(name, {**record, "epoch": epoch})
    engine.prepare_study(epoch, study)
    return study


def run_worker(
    trainer: Trainer, space: SpaceLike | None, config: TunerConfig, mode: str = "per-epoch"
) -> WorkerSummary:
    """Join a run as a worker and train its trials until the run is done.

    Start as many as you like, on any machine that reaches the storage and the artifact store
    (``config.storage``, ``config.artifacts``, the same ``config.run``; one per GPU with
    ``config.device="cuda:K"``). ``optuna-gamma worker`` does the same from the command line.
    The storage must be an RDB storage: its heartbeat fails the trial of a worker that died
    (a journal file has none; its workers are the local ones of ``workers=N``).

    Returns:
        ``{"worker", "trials", "reason"}``.

    Raises:
        ValueError, TunerError: As :func:`~optuna_gamma.tuner.tune_per_epoch`.
    """
    return worker_loop(trainer, space, config, mode, local=False)


def worker_loop(
    trainer: Trainer, space: SpaceLike | None, config: TunerConfig, mode: str, *, local: bool
) -> WorkerSummary:
    engine = Engine(trainer, space, config, mode, role="worker")
    with engine.opened(), storage_errors():
        if not local and not storage_has_heartbeat(engine.storage):
            raise ValueError(
                f"storage {engine.storage_text!r} has no heartbeat (a journal file): a worker "
                "that dies there would hold its trial for ever; join with an RDB storage, or "
                "use workers=N on the run's machine"
            )
        return _work(engine)


def _work(engine: Engine) -> WorkerSummary:
    me = worker_id()
    record = engine.run_record()
    trained = 0
    last = n_studies(engine)
    epoch = first_open_epoch(engine) or last + 1  # an adopted epoch stays adopted
    current: tuple[int, optuna.Study] | None = None
    backoff = Backoff()
    trial_seconds: list[float] = []
    while epoch <= last:
        if current is None or current[0] != epoch:
            prepared = prepared_study(engine, epoch, record)
            if "adopted" in prepared.user_attrs:
                epoch += 1
                continue
            sampler = engine.sampling.sampler_for(
                epoch, slot_of=lambda _study, trial: trial.number
            )
            study = optuna.load_study(
                study_name=prepared.study_name, storage=engine.storage, sampler=sampler
            )
            current = (epoch, study)
        _, study = current
        n_complete, n_running, n_waiting = _counts(study)
        if n_complete >= engine.trials_of(epoch) and n_running == 0 and n_waiting == 0:
            engine.adoption.adopt(
                study, epoch
            )  # idempotent: whoever sees the barrier open may do it
            epoch += 1
            continue
        if n_waiting == 0 and n_complete + n_running >= engine.trials_of(epoch):
            if "adopted" in study.user_attrs:
                epoch += 1
                continue
            if storage_has_heartbeat(engine.storage):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(study)
            # The epoch barrier: other workers' trials still run. Wait a fraction of a trial.
            backoff.longest = min(
                MAX_BACKOFF, max(backoff.first, 0.1 * _median(trial_seconds, MAX_BACKOFF / 0.1))
            )
            backoff.wait()
            continue
        backoff.reset()
        done: list[int] = []
        this_epoch = epoch

        def objective(trial: optuna.Trial) -> float:
            surplus_trial(study, trial.number, engine.trials_of(this_epoch))  # T, not T + 1
            return engine.trials.run(study, trial, None, this_epoch)

        def after(_study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
            if frozen.state == TrialState.COMPLETE:
                done.append(frozen.number)

        t0 = time.perf_counter()
        optimize(study, objective, 1, after)
        trial_seconds = (trial_seconds + [time.perf_counter() - t0])[-8:]
        trained += len(done)
    reason = f"run {engine.config.run!r} is finished"
    return WorkerSummary(worker=me, trials=trained, reason=reason)


def surplus_trial(study: optuna.Study, number: int, n_trials: int) -> None:
    """Prune trial ``number`` before it trains when ``n_trials`` live trials precede it.

    Two workers may both see ``T - 1`` trials and ask one each. Trial numbers are given out in
    order, so each asked trial sees every trial asked before it: the first ``T`` live ones
    (COMPLETE, RUNNING or WAITING; a FAILED trial's retry takes its place) are the epoch's, a
    later one is told PRUNED without training, and the epoch keeps exactly ``T`` trials.

    Raises:
        optuna.TrialPruned: Trial ``number`` is beyond the first ``n_trials``.
    """
    live = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
    ahead = sum(t.number < number for t in study.get_trials(deepcopy=False, states=live))
    if ahead >= n_trials:
        raise optuna.TrialPruned(f"the epoch has its {n_trials} trials already")


def _median(values: list[float], default: float) -> float:
    return sorted(values)[len(values) // 2] if values else default
