"""The run directory: its layout, the one atomic-write helper, the run lock and derived seeds.

Layout of a run directory (``run_dir``)::

    journal.log    default storage (an Optuna journal file; see :mod:`.storage`)
    artifacts/     default artifact store (:class:`optuna.artifacts.FileSystemArtifactStore`):
                   every training state of the run, named by artifact id
    result.json    the run's result
    .lock          held (``fcntl.flock``) while a driver works on the run

Training states never live under a path the tuner makes up: they are artifacts (see
:mod:`optuna_gamma.tuner.persistence.states`), referenced from the studies by artifact id only.

Seeds: :func:`derive_seed` maps the run seed and a tuple of keys (ints or strings) to a 32-bit
seed via :class:`numpy.random.SeedSequence` (strings through CRC-32, which is stable across
processes, unlike ``hash``).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import contextlib
import json
import math
import os
from pathlib import Path
import signal
import tempfile
from typing import Any
from typing import BinaryIO
import zlib

import numpy as np

from optuna_gamma.tuner.errors import TunerError


__all__ = [
    "RunLockedError",
    "RunPaths",
    "atomic_write",
    "atomic_write_json",
    "crash_point",
    "default_run_dir",
    "derive_seed",
    "run_lock",
]


def default_run_dir(run: str) -> Path:
    """The run directory of run ``run`` when none is given: ``runs/<run>`` (relative to the
    working directory)."""
    return Path("runs") / run


def derive_seed(seed: int, *keys: int | str) -> int:
    """A 32-bit seed from ``seed`` and ``keys``, the same in every process."""
    ints = [int(seed)] + [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    return int(np.random.SeedSequence(ints).generate_state(1, dtype=np.uint32)[0])


class RunPaths:
    """File names inside a run directory.

    Raises:
        ValueError: ``run_dir`` exists and is not a directory.
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.root = Path(run_dir).expanduser().resolve()
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"run directory {str(self.root)!r} exists and is not a directory")

    @property
    def default_storage(self) -> str:
        return str(self.root / "journal.log")

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def result(self) -> Path:
        return self.root / "result.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    def ensure_writable(self) -> None:
        """Create the run directory and prove it takes a file (before any work starts).

        Raises:
            OSError: The directory cannot be created or written (read-only file system, no
                permission, full disk); the message names the path.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            atomic_write(self.root / ".write-check", lambda f: f.write(b"ok\n"))
            (self.root / ".write-check").unlink()
        except OSError as err:
            raise OSError(
                err.errno, f"run directory {str(self.root)!r} is not writable: {err.strerror}"
            ) from err


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


def atomic_write(target: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> None:
    """Write ``target`` through ``write`` so that no reader ever sees it half-written.

    The bytes go to a temporary file in the same folder, which is flushed, ``fsync``-ed and
    renamed over ``target`` (:func:`os.replace`, atomic on POSIX); a failure removes the
    temporary file and leaves ``target`` as it was.
    """
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results and reports are meant to be read
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write ``obj`` as indented JSON (non-finite floats as ``null``) with :func:`atomic_write`."""
    text = json.dumps(_finite(obj), indent=2)
    atomic_write(path, lambda f: f.write(text.encode() + b"\n"))


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


class RunLockedError(TunerError):
    """Another live process is driving the same run directory."""


@contextlib.contextmanager
def run_lock(paths: RunPaths) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``run_dir/.lock`` (released by the OS if the process dies).

    While it is held, every RUNNING trial of the run's studies belongs to a dead process, so the
    serial driver may fail and retry it.

    Raises:
        RunLockedError: Another process holds the lock.
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
            raise RunLockedError(
                f"run directory {str(paths.root)!r} is in use by another process"
            ) from err
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


# -------------------------------------------------------------------------------- test hook
_CRASH_ENV = "OPTUNA_GAMMA_CRASH_AT"
_CRASH_WORKER_ENV = "OPTUNA_GAMMA_CRASH_WORKER"
WORKER_INDEX_ENV = "OPTUNA_GAMMA_WORKER_INDEX"
_crash_counts: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Testing hook: ``OPTUNA_GAMMA_CRASH_AT="<name>:<k>"`` makes the process SIGKILL itself the
    ``k``-th time it passes the point ``name`` (simulates ``kill -9`` at an exact instant).

    For parallel workers: ``OPTUNA_GAMMA_CRASH_WORKER=<i>`` limits it to the local worker process
    number ``i`` (``*``: every worker process, never their parent);
    ``OPTUNA_GAMMA_CRASH_ONCE=<path>`` to the first process that gets there (it claims the file);
    ``OPTUNA_GAMMA_CRASH_GROUP=1`` kills the whole process group (a parent and its workers).
    """
    spec = os.environ.get(_CRASH_ENV)
    if not spec:
        return
    want, _, k = spec.rpartition(":")
    if want != name:
        return
    only = os.environ.get(_CRASH_WORKER_ENV)
    index = os.environ.get(WORKER_INDEX_ENV)
    if only is not None and (index is None or (only != "*" and only != index)):
        return
    _crash_counts[name] = _crash_counts.get(name, 0) + 1
    if _crash_counts[name] != int(k):
        return
    token = os.environ.get("OPTUNA_GAMMA_CRASH_ONCE")
    if token:
        try:
            os.close(os.open(token, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    if os.environ.get("OPTUNA_GAMMA_CRASH_GROUP"):
        os.killpg(os.getpgid(0), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
