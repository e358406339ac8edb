"""The journal file's lock, taken over at once from a process that died holding it.

Optuna's :class:`~optuna.storages.journal.JournalFileSymlinkLock` is a symbolic link
``journal.log.lock`` created while a process appends to the journal. A process killed while
holding it (``kill -9`` during a write) leaves the link behind, and every later writer waits the
lock's grace period (30 s) before breaking it. :class:`OwnedSymlinkLock` keeps the same link (so
optuna-dashboard and plain Optuna processes still exclude each other with it) and records its
holder beside it, ``journal.log.lock.owner``: host, process id, and the link's inode and change
time (which bind the record to this very link, not to an older or newer one). A waiter that finds
the holder's host to be its own and the holder's process gone breaks the lock at once; an
unknown or live holder is waited for as Optuna does (its grace period).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import socket
import time
from typing import Any
import uuid

from optuna.storages.journal import JournalFileSymlinkLock


__all__ = ["OwnedSymlinkLock"]

_OWNER_SUFFIX = ".owner"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


_LOCK_TAKES_GRACE_PERIOD = (
    "grace_period" in inspect.signature(JournalFileSymlinkLock.__init__).parameters
)


class OwnedSymlinkLock(JournalFileSymlinkLock):
    """Optuna's symlink lock with an owner record (see the module docstring).

    Args:
        filepath: The journal file.
        grace_period: Seconds after which a lock of an unknown or unverifiable holder is broken
            (Optuna's rule; ``None``: never).
    """

    def __init__(self, filepath: str, grace_period: int | None = 30) -> None:
        if _LOCK_TAKES_GRACE_PERIOD:
            super().__init__(filepath, grace_period)
        else:  # Optuna < 4.3: its lock has no grace period (acquire below is ours anyway)
            super().__init__(filepath)
            self.grace_period = grace_period
        self._owner_file = self._lock_file + _OWNER_SUFFIX

    def acquire(self) -> bool:
        """Take the lock, waiting for a live holder and taking it over from a dead one."""
        delay = 0.001
        seen: tuple[int, int] | None = None
        since = time.monotonic()
        while True:
            try:
                os.symlink(self._lock_target_file, self._lock_file)
            except FileExistsError:
                held = self._link_identity()
                if held is None:
                    continue  # released meanwhile
                if held != seen:
                    seen, since = held, time.monotonic()
                stale = (
                    self.grace_period is not None and time.monotonic() - since > self.grace_period
                )
                if stale or self._holder_is_dead(held):
                    self._break(held)
                    continue
                time.sleep(delay)
                delay = min(2 * delay, 0.1)
                continue
            self._record_owner()
            return True

    def release(self) -> None:
        """Release the lock (the owner record first)."""
        with contextlib.suppress(OSError):
            os.unlink(self._owner_file)
        super().release()

    # ------------------------------------------------------------------ helpers
    def _link_identity(self) -> tuple[int, int] | None:
        try:
            st = os.lstat(self._lock_file)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_ctime_ns

    def _record_owner(self) -> None:
        held = self._link_identity()
        if held is None:
            return
        record = {"host": socket.gethostname(), "pid": os.getpid(), "link": list(held)}
        tmp = f"{self._owner_file}.{uuid.uuid4().hex}.tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(record, f)
            os.replace(tmp, self._owner_file)
        except OSError:  # no record: waiters fall back to the grace period
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def _owner(self) -> dict[str, Any] | None:
        try:
            with open(self._owner_file) as f:
                record = json.load(f)
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def _holder_is_dead(self, held: tuple[int, int]) -> bool:
        """Whether the link ``held`` was made by a process of this host that no longer runs."""
        owner = self._owner()
        if owner is None or owner.get("link") != list(held):
            return False  # an unknown holder, or a record of another link
        pid = owner.get("pid")
        if owner.get("host") != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
            return False
        return not _alive(pid)

    def _break(self, held: tuple[int, int]) -> None:
        """Remove the dead holder's link (only that one: checked again after moving it)."""
        aside = f"{self._lock_file}.{uuid.uuid4().hex}.broken"
        try:
            os.rename(self._lock_file, aside)
        except FileNotFoundError:
            return
        try:
            moved = os.lstat(aside).st_ino
        except FileNotFoundError:
            return
        if moved != held[0]:  # a new holder's link was moved: put it back
            with contextlib.suppress(OSError):
                os.rename(aside, self._lock_file)
            return
        with contextlib.suppress(OSError):
            os.unlink(aside)
        with contextlib.suppress(OSError):
            os.unlink(self._owner_file)
