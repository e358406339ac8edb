"""What ``optuna-gamma worker`` takes from its own command line and what from the run's storage.

The trust model (docs/cluster.md): whoever can write to a run's storage must not be able to run
code on its workers or make them write elsewhere. So a standalone worker takes

* **from its own command line only**: the trainer code (``--trainer``, a
  :class:`~optuna_gamma.tuner.trainer_ref.TrainerRef`), the artifact store it reads and writes
  (``--artifacts``), its data folder, device and threads;
* **from the storage**: the run's settings as data (sampler and objective by registry name, the
  search space as Optuna distributions, trial counts, seeds, the built-in trainer's dataset and
  model names), every one validated like user input.

What the storage records about the trainer is only compared with the worker's own value, and
the worker's own artifact store must hold the marker the run's first study names (a file the
run wrote there, :meth:`~optuna_gamma.tuner.persistence.states.StateStore.mark`): the same
store reached by another path, a shared folder mounted elsewhere, is accepted; another store,
a local folder at the same path on a machine that does not share it, is not. A difference is a
:class:`ValueError` (the CLI prints one line and exits 2) before anything is imported or
written. A journal file has no heartbeat, so a worker that died there would hold its trial for
ever: standalone workers need an RDB storage. A worker started before its head has recorded the
run can wait for it (:func:`wait_for_run`, ``--wait``).
"""

from __future__ import annotations

from collections.abc import Mapping
import json
from pathlib import Path
import time
from typing import Any

import optuna
from optuna.distributions import json_to_distribution

from optuna_gamma.tuner._logging import get_logger
from optuna_gamma.tuner.builtin import ThesisTrainer
from optuna_gamma.tuner.execution.manifest import RunManifest
from optuna_gamma.tuner.persistence.states import reach_artifact_store
from optuna_gamma.tuner.persistence.states import StateStore
from optuna_gamma.tuner.persistence.states import STORE_MARKER
from optuna_gamma.tuner.persistence.storage import mask_url
from optuna_gamma.tuner.persistence.storage import open_storage
from optuna_gamma.tuner.persistence.storage import storage_file
from optuna_gamma.tuner.trainer_ref import load_trainer
from optuna_gamma.tuner.trainer_ref import TrainerRef


__all__ = [
    "RunNotFoundError",
    "WorkerArgs",
    "read_manifest",
    "require_heartbeat_storage",
    "wait_for_run",
    "worker_setup",
]

_logger = get_logger(__name__)

#: Keyword arguments of the built-in trainer a storage may set (values are checked by it).
_BUILTIN_KEYS = frozenset(
    {
        "model",
        "subset",
        "valid_fraction",
        "data_seed",
        "test_subset",
        "download",
        "batch_size",
        "weight_decay",
        "momentum",
    }
)


class RunNotFoundError(ValueError):
    """The storage holds no run of that name (yet: :func:`wait_for_run` waits for it)."""


class WorkerArgs(dict):
    """What :func:`worker_setup` returns: ``trainer``, ``space``, ``config``, ``mode``."""


def require_heartbeat_storage(storage: Any, shown: str) -> None:
    """Refuse a storage without heartbeats (a journal file) for a standalone worker.

    Raises:
        ValueError: ``storage`` is not an RDB storage.
    """
    if not isinstance(storage, optuna.storages.RDBStorage):
        raise ValueError(
            f"storage {shown!r} is a journal file, which has no heartbeat: a worker that dies "
            "there would hold its trial for ever. Use --workers N on the run's machine, or an "
            "RDB storage (postgresql://..., sqlite:///...) for standalone workers"
        )


def read_manifest(storage: Any, run: str, shown: str) -> tuple[RunManifest, Any]:
    """The run's settings as its first study recorded them (untrusted data, checked by
    :meth:`RunManifest.from_record`), and its artifact store's marker record (``None`` for a
    run recorded before markers).

    Raises:
        ValueError: No such run, or a missing or malformed record.
    """
    names = {
        s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
    }
    for name in (f"{run}/epoch-001", f"{run}/whole"):
        if name in names:
            attrs = optuna.load_study(study_name=name, storage=storage).user_attrs
            config = attrs.get("config")
            if isinstance(config, Mapping):
                try:
                    return RunManifest.from_record(config), attrs.get(STORE_MARKER)
                except (TypeError, ValueError) as err:
                    raise ValueError(
                        f"run {run!r} has a malformed record in its storage ({err})"
                    ) from None
    runs = sorted({n.rsplit("/", 1)[0] for n in names if "/" in n})
    raise RunNotFoundError(f"no run {run!r} in storage {shown!r}; runs there: {runs}")


def wait_for_run(spec: str, run: str, seconds: float) -> tuple[Any, str]:
    """Open storage ``spec`` for a worker and return it (and its printable name) once run
    ``run`` is recorded there, waiting up to ``seconds`` for the run (and an SQLite file) to
    appear: a worker started together with its head, as a batch scheduler starts a job's tasks,
    may be up before the head has recorded the run.

    Raises:
        ValueError: Not there after ``seconds`` (the message says how long it waited), or an
            unusable storage or record (at once).
    """
    deadline = time.monotonic() + seconds
    delay, said = 0.25, False
    opened: tuple[Any, str] | None = None
    while True:
        try:
            opened = opened or _open_storage(spec)  # once: then only the run is looked for
            read_manifest(opened[0], run, opened[1])
            return opened
        except RunNotFoundError as err:
            left = deadline - time.monotonic()
            if left <= 0:
                waited = f" (after waiting {seconds:g} s)" if seconds > 0 else ""
                raise RunNotFoundError(f"{err}{waited}") from None
            if not said:
                _logger.info(f"waiting up to {seconds:g} s for run {run!r} to appear")
                said = True
            time.sleep(min(delay, left))
            delay = min(2 * delay, 5.0)


def _open_storage(spec: str) -> tuple[Any, str]:
    """The storage of :func:`wait_for_run` (:class:`RunNotFoundError` while an SQLite file is
    not there yet)."""
    db = storage_file(spec) if spec.lower().startswith("sqlite") else None
    if db is not None and not db.is_file():  # the head has not created it (yet)
        raise RunNotFoundError(
            f"no SQLite file at {mask_url(spec)!r}: a worker joins a run in the head's storage"
        )
    storage, shown = open_storage(spec, existing=True)
    require_heartbeat_storage(storage, shown)  # refused at once, not after the wait
    return storage, shown


def worker_trainer(
    manifest: RunManifest, run: str, ref: TrainerRef | None, data_root: str | None
) -> Any:
    """The worker's trainer: its own ``--trainer`` (compared with the run's record first), or
    the built-in trainer rebuilt from recorded names. Never code named by the storage.

    Raises:
        ValueError: A mismatch, a run whose trainer needs ``--trainer``, or bad recorded values.
    """
    spec = manifest.trainer_spec
    if ref is not None:
        if spec is not None:
            why = ref.mismatch(spec)
            if why is not None:
                raise ValueError(
                    f"this worker's --trainer {ref.target!r} does not match run {run!r}: {why}"
                )
        return load_trainer(ref)
    if isinstance(spec, Mapping) and isinstance(spec.get("builtin"), Mapping):
        builtin = dict(spec["builtin"])
        dataset = builtin.pop("dataset", None)
        unknown = sorted(set(builtin) - _BUILTIN_KEYS)
        if not isinstance(dataset, str) or unknown:
            raise ValueError(
                f"run {run!r} records a malformed built-in trainer {spec['builtin']!r}"
            )
        builtin["download"] = False  # a worker uses its own --data-root as it is
        try:
            trainer = ThesisTrainer(dataset, data_root, **builtin)
        except TypeError as err:
            raise ValueError(f"run {run!r} records a malformed built-in trainer: {err}") from None
        trainer.data  # load now: a missing file is an argument error
        return trainer
    if isinstance(spec, Mapping) and "import" in spec:
        raise ValueError(
            f"run {run!r} was started with --trainer {spec['import']!r}: give this worker the "
            "same --trainer (a worker never imports code named by a storage)"
        )
    raise ValueError(
        f"run {run!r} was started from Python with the trainer {manifest.trainer!r}; "
        "start its workers with optuna_gamma.tuner.run_worker, or give --trainer"
    )


def worker_artifacts(
    manifest: RunManifest, run: str, given: str | None, marker: Any = None
) -> str:
    """The worker's own ``--artifacts``, checked against the run's record: it must hold the
    run's ``marker`` (module docstring); a run recorded without one must record this path.

    Raises:
        ValueError: Not given, or another store than the run's.
    """
    recorded = manifest.artifacts
    if given is None:
        raise ValueError(
            f"give --artifacts: run {run!r} keeps its states in {recorded!r} (a worker reads "
            "and writes only where its own command line says)"
        )
    # s3://bucket/prefix and s3://bucket/prefix/ are one store (the prefix is stripped of "/")
    mine = given.rstrip("/") if "://" in given else str(Path(given).expanduser().resolve())
    if marker is not None:
        store = reach_artifact_store(given)
        if store is not None and StateStore(store, mine).holds(marker, run):
            return given
        why = "no such folder on this machine" if store is None else "no marker of the run there"
        raise ValueError(
            f"this worker's --artifacts {mine!r} does not hold the training states of run {run!r} "
            f"({why}; the run keeps them in {recorded!r}): give the run's store, a folder "
            "shared with the run's machine (mounted at any path) or the same s3://bucket/prefix"
        )
    if isinstance(recorded, str) and ("://" in recorded or recorded.startswith("/")):
        theirs = recorded.rstrip("/") if "://" in recorded else recorded
    else:
        theirs = None  # nothing comparable recorded
    if theirs is not None and mine != theirs:
        raise ValueError(
            f"this worker's --artifacts {mine!r} does not match run {run!r}, which keeps its "
            f"states in {recorded!r}"
        )
    return given


def worker_setup(
    storage: Any,
    shown: str,
    *,
    run: str,
    storage_arg: str,
    trainer_ref: TrainerRef | None,
    artifacts: str | None,
    data_root: str | None,
    device: str | None,
    threads: int,
) -> WorkerArgs:
    """Everything ``optuna-gamma worker`` needs to join ``run`` (see the module docstring).

    Raises:
        ValueError: Any refused or malformed value, before anything is imported or written.
    """
    require_heartbeat_storage(storage, shown)
    manifest, marker = read_manifest(storage, run, shown)
    where = worker_artifacts(manifest, run, artifacts, marker)
    try:
        sp = manifest.space
        space = {
            **{k: json_to_distribution(json.dumps(d)) for k, d in dict(sp["tuned"]).items()},
            **dict(sp["fixed"]),
        }
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"run {run!r} has a malformed record in its storage ({err!r})") from None
    trainer = worker_trainer(manifest, run, trainer_ref, data_root)
    # The run directory is the head's: a worker never writes there, but the studies it creates
    # record it (a resumed head compares it), so it is carried over as a label only.
    try:
        config = manifest.to_config(
            storage=storage_arg,
            artifacts=where,
            device=device,
            num_threads=threads,
            progress=False,
            trainer_ref=trainer_ref,
            run_dir=manifest.run_dir or None,
        )
    except (TypeError, ValueError) as err:
        raise ValueError(f"run {run!r} has a malformed record in its storage ({err})") from None
    mode = manifest.mode
    return WorkerArgs(trainer=trainer, space=space, config=config, mode=mode)
