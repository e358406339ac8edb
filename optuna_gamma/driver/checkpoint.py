"""Durable run state: where checkpoints live, atomic writes, the run lock, derived seeds.

Layout of a run directory (``run_dir``)::

    optuna.db                         default SQLite storage (sqlite:///<run_dir>/optuna.db)
    states/initial.pt                 the state before epoch 1 (model + optimizer)
    states/epoch-003/trial-0007.pt    the state trial 7 of epoch 3 ended with
    states/epoch-003/adopted.pt       the adopted ("Determinant") state of epoch 3
    states/whole/trial-0004.pt        whole-training mode: trial 4's final state
    result.json                       the run's result
    .lock                             held (``fcntl.flock``) while a driver works on the run

Why files rather than Optuna's artifact store: a state is written with
:func:`optuna_gamma.training.save_state` (temporary file, ``fsync``, ``os.replace``), so a kill
at any instant leaves either the old file or the complete new one; its path is recorded in the
trial's user attributes *before* the trial is told COMPLETE, and the epoch's adoption is marked
in the study's user attributes only *after* ``adopted.pt`` is in place. The artifact store is an
experimental API (``upload_artifact`` warns) and names artifacts by random ids, which would make
this ordering argument harder to state; plain files also stay readable without Optuna.

Seeds: :func:`derive_seed` maps the run seed and a tuple of keys (ints or strings) to a 32-bit
seed via :class:`numpy.random.SeedSequence` (strings through CRC-32, which is stable across
processes, unlike ``hash``).
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import json
import os
from pathlib import Path
import shutil
import signal
import tempfile
from typing import Any
import zlib


__all__ = [
    "RunLockedError",
    "RunPaths",
    "atomic_copy",
    "atomic_write_json",
    "derive_seed",
    "run_lock",
]


def derive_seed(seed: int, *keys: int | str) -> int:
    """A 32-bit seed from ``seed`` and ``keys``, the same in every process."""
    ints = [int(seed)] + [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    import numpy as np

    return int(np.random.SeedSequence(ints).generate_state(1, dtype=np.uint32)[0])


class RunPaths:
    """File names inside a run directory."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.root = Path(run_dir).resolve()

    @property
    def default_storage(self) -> str:
        return f"sqlite:///{self.root / 'optuna.db'}"

    @property
    def result(self) -> Path:
        return self.root / "result.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def initial_state(self) -> Path:
        return self.root / "states" / "initial.pt"

    def epoch_dir(self, epoch: int) -> Path:
        return self.root / "states" / f"epoch-{epoch:03d}"

    def trial_state(self, epoch: int | None, trial_number: int) -> Path:
        folder = self.root / "states" / "whole" if epoch is None else self.epoch_dir(epoch)
        return folder / f"trial-{trial_number:04d}.pt"

    def adopted_state(self, epoch: int) -> Path:
        return self.epoch_dir(epoch) / "adopted.pt"

    def relative(self, path: Path) -> str:
        """``path`` relative to the run directory (stored in user attributes)."""
        return str(Path(path).resolve().relative_to(self.root))

    def resolve(self, rel: str) -> Path:
        return self.root / rel


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic(target: Path, write: Any) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_copy(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` so that ``dst`` is never seen half-written."""
    with open(src, "rb") as fin:
        _atomic(Path(dst), lambda f: shutil.copyfileobj(fin, f))


def atomic_write_json(obj: Any, path: Path) -> None:
    """Write ``obj`` as indented JSON (non-finite floats as ``null``) atomically."""
    text = json.dumps(_finite(obj), indent=2, sort_keys=False)
    _atomic(Path(path), lambda f: f.write(text.encode() + b"\n"))


def _finite(obj: Any) -> Any:
    import math

    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


class RunLockedError(RuntimeError):
    """Another live process is driving the same run directory."""


@contextlib.contextmanager
def run_lock(paths: RunPaths) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``run_dir/.lock`` (released by the OS if the process dies).

    While it is held, every RUNNING trial of the run's studies belongs to a dead process, so the
    driver may fail and retry it.
    """
    paths.root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock, single process assumed
        yield
        return
    with open(paths.lock, "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            raise RunLockedError(f"run directory {str(paths.root)!r} is in use by another process") from err
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


# -------------------------------------------------------------------------------- test hook
_CRASH_ENV = "OPTUNA_GAMMA_CRASH_AT"
_crash_counts: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Testing hook: ``OPTUNA_GAMMA_CRASH_AT="<name>:<k>"`` makes the process SIGKILL itself the
    ``k``-th time it passes the point ``name`` (simulates ``kill -9`` at an exact instant)."""
    spec = os.environ.get(_CRASH_ENV)
    if not spec:
        return
    want, _, k = spec.rpartition(":")
    if want != name:
        return
    _crash_counts[name] = _crash_counts.get(name, 0) + 1
    if _crash_counts[name] == int(k):
        os.kill(os.getpid(), signal.SIGKILL)
