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
started by :func:`coordinate` are watched by their parent instead (a journal file has no
heartbeat): when
one dies, its RUNNING trials are failed and retried. Killing every worker and starting again
resumes the run. Guaranteed: every epoch adopted exactly once from ``T`` complete trials (a
trial asked beyond the first ``T`` live ones is pruned before it trains: :func:`surplus_trial`), no
trial or state lost, no point trained twice within an epoch. Not guaranteed: bit-identical
results across worker counts (the samplers see different pending sets); the serial driver keeps
its bit-identical resume.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import pickle
import socket
import time
from typing import Any
from typing import TYPE_CHECKING
import warnings

import optuna
from optuna.trial import TrialState

from optuna_gamma.tuner._logging import get_logger
from optuna_gamma.tuner.errors import TunerError
from optuna_gamma.tuner.execution.engine import Engine
from optuna_gamma.tuner.execution.failures import reported_failures
from optuna_gamma.tuner.execution.retries import fail_and_retry
from optuna_gamma.tuner.execution.retries import fail_stale
from optuna_gamma.tuner.execution.retries import storage_has_heartbeat
from optuna_gamma.tuner.execution.runtime import storage_errors
from optuna_gamma.tuner.execution.runtime import worker_id
from optuna_gamma.tuner.execution.trials import optimize
from optuna_gamma.tuner.persistence.runfiles import WORKER_INDEX_ENV
from optuna_gamma.tuner.trainer_ref import load_trainer
from optuna_gamma.tuner.trainer_ref import TrainerRef


if TYPE_CHECKING:
    from optuna_gamma.tuner.config import TunerConfig
    from optuna_gamma.tuner.search.space import SpaceLike
    from optuna_gamma.tuner.trainer import Trainer


__all__ = ["WorkerSummary", "coordinate", "run_worker"]

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


def _study_names(engine: Engine) -> set[str]:
    return engine.studies.names()


def _n_studies(engine: Engine) -> int:
    return engine.n_epochs


def first_open_epoch(engine: Engine) -> int | None:
    """The first epoch of the run whose study is not adopted yet (``None``: the run is done)."""
    names = _study_names(engine)
    for epoch in range(1, _n_studies(engine) + 1):
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
    return _run_worker(trainer, space, config, mode, local=False)


def _run_worker(
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
    n_studies = _n_studies(engine)
    epoch = first_open_epoch(engine) or n_studies + 1  # an adopted epoch stays adopted
    current: tuple[int, optuna.Study] | None = None
    backoff = Backoff()
    trial_seconds: list[float] = []
    while epoch <= n_studies:
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


# --------------------------------------------------------------------------- local workers
def _local_worker(
    trainer: Any, space: Any, config: TunerConfig, mode: str, errors: Any, index: int
) -> None:
    """Entry point of a worker process started by :func:`coordinate` (spawned, not forked)."""
    os.environ[WORKER_INDEX_ENV] = str(index)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna_gamma").setLevel(logging.WARNING)
    try:
        if isinstance(trainer, TrainerRef):  # the CLI's --trainer: imported here, as there
            trainer = load_trainer(trainer)
        with reported_failures():  # Optuna's copy of a failed trial's traceback: dropped
            _run_worker(trainer, space, config, mode, local=True)
    except BaseException as err:  # report it to the parent in one line, then fail the process
        errors.put(f"worker {worker_id()}: {type(err).__name__}: {' '.join(str(err).split())}")
        raise SystemExit(1) from None


def coordinate(engine: Engine, trainer: Any, space: Any, on_progress: Any = None) -> None:
    """Prepare the run, start ``engine.config.workers`` local workers (possibly none: then only
    workers on other machines train) and watch until the run is done (the engine holds the run
    lock, so no other driver runs it at the same time).

    A worker that dies has its RUNNING trials failed and retried with the same parameters; the
    others go on. When every worker has stopped and the run is not done, :class:`TunerError`.

    Args:
        engine: The coordinator's opened engine.
        trainer: The trainer; the workers receive it pickled (they are spawned processes),
            or import it themselves when ``engine.config.trainer_ref`` names it.
        space: The search space (picklable).
        on_progress: Called about once a second with no arguments while waiting (progress bar,
            log lines).
    """
    cfg = engine.config
    trainer_ref = cfg.trainer_ref if cfg.trainer_ref is not None else trainer
    record = engine.run_record()
    for epoch in range(1, _n_studies(engine) + 1):  # dead trials of an earlier run: retried
        if engine.studies.name(epoch) in _study_names(engine):
            study = engine.studies.load(epoch)
            if storage_has_heartbeat(engine.storage):  # workers on other machines may be alive
                optuna.storages.fail_stale_trials(study)
            else:  # a journal file: only this machine's workers, and this process holds the lock
                fail_stale(study, engine.space)
    first = first_open_epoch(engine)
    if first is None:
        return
    if not cfg.workers and not storage_has_heartbeat(engine.storage):
        raise ValueError(
            f"coordinate without local workers needs an RDB storage: {engine.storage_text!r} "
            "is a journal file, which standalone workers cannot join (no heartbeat)"
        )
    prepared_study(engine, first, record)
    # the workers' own config runs the same plan: the policy's width is the coordinator's
    width = getattr(engine.policy, "width", None)
    worker_config = _replace(
        cfg,
        workers=0,
        coordinate=False,
        progress=False,
        run_dir=str(engine.paths.root),
        trials_per_epoch=width if width is not None else cfg.trials_per_epoch,
    )
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.Queue()
    if cfg.workers:
        try:
            pickle.dumps((trainer_ref, space, worker_config))
        except Exception as err:
            raise ValueError(
                f"with workers={cfg.workers} the trainer, the search space and the config must "
                f"be picklable "
                f"(the workers are separate processes): {err}"
            ) from err
    procs = [
        ctx.Process(
            target=_local_worker,
            args=(trainer_ref, space, worker_config, engine.mode, errors, i),
            name=f"optuna-gamma-worker-{i}",
        )
        for i in range(cfg.workers)
    ]
    for p in procs:
        p.start()
    if procs:
        _logger.info(
            f"started {len(procs)} workers: {', '.join(worker_id_of(p.pid) for p in procs)}"
        )
    else:
        _logger.info(
            f"waiting for workers to join run {cfg.run!r} (optuna-gamma worker --run {cfg.run} "
            f"...)"
        )
    watched = {p.pid: p for p in procs}
    stale = StaleTrialWatch(engine)
    messages: list[str] = []
    backoff = Backoff(first=1.0, longest=5.0)
    try:
        while watched or (not procs and first_open_epoch(engine) is not None):
            if watched:
                multiprocessing.connection.wait(
                    [p.sentinel for p in watched.values()], timeout=1.0
                )
            else:  # remote workers only: watch the storage
                backoff.wait()
            stale.poll()
            for pid, p in list(watched.items()):
                if p.exitcode is None:
                    continue
                del watched[pid]
                if p.exitcode != 0:
                    n = fail_trials_of(engine, worker_id_of(pid))
                    _logger.warning(
                        f"worker {worker_id_of(pid)} stopped (exit code {p.exitcode}); "
                        f"{n} of its running trials will be retried"
                    )
            while not errors.empty():
                messages.append(errors.get())
            if on_progress is not None:
                on_progress()
    finally:
        for p in watched.values():
            p.terminate()
            p.join()
    if first_open_epoch(engine) is not None:
        detail = f" ({messages[0]})" if messages else ""
        raise TunerError(
            f"every worker stopped before run {cfg.run!r} was done{detail}; run the same command "
            f"again to resume"
        )


class StaleTrialWatch:
    """The coordinator's own check for trials of dead workers on an RDB storage.

    Workers fail stale trials when they reach the epoch barrier; when every remote worker is
    gone, nobody else would. Every ``heartbeat_interval`` seconds (by the clock, not a sleep)
    the coordinator fails the open epoch's trials whose heartbeat is older than the grace period
    (Optuna's ``fail_stale_trials``; the storage's retry callback enqueues them again), so a
    killed worker's trial is failed and retried within about ``grace_period +
    heartbeat_interval`` seconds on every storage that standalone workers may join.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.every = float(engine.config.heartbeat_interval)
        self.last = time.monotonic()

    def poll(self) -> int:
        """Fail the stale trials if it is time; return how many were failed."""
        if (
            not storage_has_heartbeat(self.engine.storage)
            or time.monotonic() - self.last < self.every
        ):
            return 0
        self.last = time.monotonic()
        epoch = first_open_epoch(self.engine)
        if epoch is None or self.engine.studies.name(epoch) not in _study_names(self.engine):
            return 0

        study = self.engine.studies.load(epoch)
        before = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        n = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,))) - before
        if n:
            _logger.warning(f"{n} trial(s) of a worker that stopped beating will be retried")
        return n


def worker_id_of(pid: int | None) -> str:
    return f"{socket.gethostname()}:{pid}"


def fail_trials_of(engine: Engine, worker: str) -> int:
    """Fail the RUNNING trials of a dead local ``worker`` (also those it had not labelled yet)
    and retry each once with the same parameters. Returns how many were failed."""
    n = 0
    names = _study_names(engine)
    for epoch in range(1, _n_studies(engine) + 1):
        if engine.studies.name(epoch) not in names:
            continue
        study = engine.studies.load(epoch)
        running = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if t.user_attrs.get("worker") in (worker, None)
        ]
        unlabelled = [t for t in running if "worker" not in t.user_attrs]
        if unlabelled:  # asked by a worker that died before labelling it, or being labelled now
            time.sleep(0.5)
            still = {
                t.number
                for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                if "worker" not in t.user_attrs
            }
            running = [t for t in running if "worker" in t.user_attrs or t.number in still]
        for t in running:
            fail_and_retry(study, t, engine.space)
            n += 1
    return n


def _replace(config: TunerConfig, **changes: Any) -> TunerConfig:
    return dataclasses.replace(config, **changes)
