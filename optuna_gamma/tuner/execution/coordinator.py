"""The parent of a run's workers: it prepares the run, starts local workers and watches them.

:func:`coordinate` is what ``tune_per_epoch(workers=N)`` and ``optuna-gamma tune --workers N``
(or ``--coordinate``, the head of a cluster) run: it retries the dead trials of an earlier run,
prepares the first open epoch, starts ``N`` worker processes (spawned; each runs the loop of
:mod:`~optuna_gamma.tuner.execution.workers`), and watches them and the storage until the run is
done. A local worker that dies has its RUNNING trials failed and retried with the same
parameters (:func:`fail_trials_of`); on an RDB storage, trials of remote workers that stopped
beating are failed by :class:`StaleTrialWatch` (Optuna's heartbeat), so a run whose remote
workers all died does not wait for ever.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import socket
import sys
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
from optuna_gamma.tuner.execution.runtime import worker_devices
from optuna_gamma.tuner.execution.runtime import worker_id
from optuna_gamma.tuner.execution.workers import Backoff
from optuna_gamma.tuner.execution.workers import first_open_epoch
from optuna_gamma.tuner.execution.workers import n_studies
from optuna_gamma.tuner.execution.workers import prepared_study
from optuna_gamma.tuner.execution.workers import study_names
from optuna_gamma.tuner.execution.workers import worker_loop
from optuna_gamma.tuner.persistence.runfiles import WORKER_INDEX_ENV
from optuna_gamma.tuner.trainer_ref import load_trainer
from optuna_gamma.tuner.trainer_ref import TrainerRef


if TYPE_CHECKING:
    from optuna_gamma.tuner.config import TunerConfig


__all__ = ["StaleTrialWatch", "coordinate", "fail_trials_of", "refuse_while_spawned"]

_logger = get_logger(__name__)

#: The exit status of a worker that found the tuner called while it loaded the main script.
UNGUARDED_EXIT = 3

#: What is wrong then (the worker prints it; the parent raises it).
UNGUARDED = (
    "a worker process ran the tuner call of your script while it loaded the script to find "
    "your trainer (spawned processes run the main script's top level again): put the call "
    'under `if __name__ == "__main__":`'
)


def refuse_while_spawned() -> None:
    """Stop a spawned process that reached a tuner call while it loads the main script.

    A spawned worker runs the parent's main script again, as the module ``__mp_main__``, to
    find what the pickled trainer refers to. A script without the ``if __name__ ==
    "__main__":`` guard then calls the tuner again from inside the worker: a second run in the
    same directory (with ``overwrite=True`` it deleted the run the parent had just finished),
    and a worker that never starts. This is called first by every tuner call: in that phase
    (``multiprocessing``'s own test, ``_inheriting``) it prints :data:`UNGUARDED` and exits
    with :data:`UNGUARDED_EXIT`, before anything is read or written; the parent then raises
    the same message (:func:`coordinate`).
    """
    if not getattr(multiprocessing.current_process(), "_inheriting", False):
        return
    print(f"optuna-gamma: {UNGUARDED}", file=sys.stderr)
    raise SystemExit(UNGUARDED_EXIT)


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
            worker_loop(trainer, space, config, mode, local=True)
    except BaseException as err:  # report it to the parent in one line, then fail the process
        errors.put(f"worker {worker_id()}: {type(err).__name__}: {' '.join(str(err).split())}")
        raise SystemExit(1) from None


def _check_spawnable(payload: bytes, workers: int) -> None:
    """Refuse, before any worker starts, what a spawned worker could not load.

    A spawned process runs the parent's main script again to find what the pickled trainer
    refers to. Where there is no script (a notebook, ``python -c``, a script piped to
    ``python -``), whatever is defined in ``__main__`` cannot be found there, and a main
    "file" that does not exist (``<stdin>``) stops every worker before it starts; both
    used to surface as workers that all stopped, with the advice to run again.
    """

    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None):
        return  # python -m module: the workers import it by name
    path = getattr(main, "__file__", None)
    if path is not None and os.path.isfile(path):
        return
    hint = (
        f"with workers={workers} the workers are spawned processes that import the trainer, "
        "but this session has no main script file they could load"
    )
    fix = (
        "define the trainer in a module or a .py file and import it from there (or give "
        "trainer_ref / `optuna-gamma tune --trainer file.py:factory`), or use workers=0"
    )
    if path is not None:
        raise ValueError(f"{hint} ({path!r} is not a file): {fix}")
    names = sorted(_main_names(payload))
    if names:
        raise ValueError(f"{hint}, and it refers to {', '.join(names)} of __main__: {fix}")


def _main_names(payload: bytes) -> set[str]:
    """The names a pickle looks up in ``__main__``: a ``GLOBAL`` ``"__main__ name"``
    (protocols 0-3), or a ``STACK_GLOBAL`` after the strings ``"__main__"`` and the name
    (protocol 4 on)."""
    import pickletools

    strings: list[str] = []
    out = set()
    for op, arg, _ in pickletools.genops(payload):
        if op.name == "GLOBAL" and str(arg).startswith("__main__ "):
            out.add(str(arg).split(" ", 1)[1])
        elif isinstance(arg, str):
            strings.append(arg)
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2 and strings[-2] == "__main__":
            out.add(strings[-1])
    return out


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
    names = study_names(engine)
    for epoch in range(1, n_studies(engine) + 1):  # dead trials of an earlier run: retried
        if engine.studies.name(epoch) in names:
            # checked as the serial driver checks every epoch (another width or budget is
            # refused): before, a finished run called with another workers=N was not checked
            # and its result rewritten with the new plan, over the old trials
            study = engine.studies.open(engine.studies.name(epoch), {**record, "epoch": epoch})
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
            payload = pickle.dumps((trainer_ref, space, worker_config))
        except Exception as err:
            raise ValueError(
                f"with workers={cfg.workers} the trainer, the search space and the config must "
                f"be picklable "
                f"(the workers are separate processes): {err}"
            ) from err
        _check_spawnable(payload, cfg.workers)
    # more processes than the widest epoch has trials would only wait (and hold memory)
    widest = max(engine.run_plan.trials)
    devices = worker_devices(cfg.device, min(cfg.workers, widest))
    procs = [
        ctx.Process(
            target=_local_worker,
            args=(trainer_ref, space, _replace(worker_config, device=d), engine.mode, errors, i),
            name=f"optuna-gamma-worker-{i}",
        )
        for i, d in enumerate(devices)
    ]
    for p in procs:
        p.start()
    if procs:
        fewer = (
            f" (of the {cfg.workers} asked for: no epoch of the plan has more than {widest} "
            f"trial{'s' if widest > 1 else ''})"
            if len(procs) < cfg.workers
            else ""
        )
        spread = len(set(map(str, devices))) > 1  # one GPU each: say which
        _logger.info(
            f"started {len(procs)} worker{'s' if len(procs) > 1 else ''}{fewer}: "
            + ", ".join(
                worker_id_of(p.pid) + (f" on {d}" if spread else "")
                for p, d in zip(procs, devices)
            )
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
                if p.exitcode == UNGUARDED_EXIT:
                    raise ValueError(UNGUARDED)
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
        if epoch is None or self.engine.studies.name(epoch) not in study_names(self.engine):
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
    names = study_names(engine)
    for epoch in range(1, n_studies(engine) + 1):
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
