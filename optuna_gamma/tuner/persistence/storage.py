"""Opening the run's Optuna storage, with one-line errors and credentials kept out of output.

:func:`open_storage` takes what a user writes for a storage:

* an RDB URL (``sqlite:///runs.db``; ``postgresql://user:password@host/db`` for many machines):
  an :class:`optuna.storages.RDBStorage`;
* a file path (``runs/my-run/journal.log``, the default in a run directory): an Optuna journal
  file, ``JournalStorage(JournalFileBackend(path))``. On one machine it costs a few
  milliseconds less per trial than SQLite (no SQL layer: about 4 against 15 ms of CPU per trial
  in ``benchmarks/driver_overhead.py``), and optuna-dashboard opens it by its path;
* an :class:`optuna.storages.BaseStorage` object, used as is.

Every way that can fail becomes a :class:`~optuna_gamma.tuner.errors.TunerError` (a missing
database driver, an unreachable server, a malformed or locked database, an unwritable folder)
or a :class:`ValueError` (an unknown scheme, an SQLite file given as a bare path), before any
trial starts. Two processes creating the same fresh database at once race in Optuna's schema
set-up (an ``IntegrityError`` from alembic's version table, or ``table ... already exists``);
the loser retries.

:func:`mask_url` hides the password of a URL; it is what the tuner prints and saves.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
import re
import shlex
import sqlite3
import time
from typing import Any
import warnings

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from sqlalchemy import event
from sqlalchemy.engine import make_url
import sqlalchemy.exc

from optuna_gamma.tuner.errors import TunerError
from optuna_gamma.tuner.persistence.journal_lock import OwnedSymlinkLock


__all__ = [
    "dashboard_command",
    "get_storage",
    "mask_secrets",
    "mask_url",
    "open_storage",
    "sqlite_file",
    "storage_file",
]

_SCHEMES = ("sqlite", "postgresql", "mysql", "oracle", "mssql")


#: Names of URL query parameters (and of ``key=value`` pairs inside them, such as an ODBC
#: connection string's ``PWD=``) that hold a secret in SQLAlchemy, libpq, MySQL or ODBC URLs.
_SECRET_KEYS = (
    "password",
    "passwd",
    "pwd",
    "sslpassword",
    "sslkeypassword",
    "passfile_password",
    "secret",
    "token",
    "access_token",
    "auth_token",
    "api_key",
    "secret_key",
    "aws_secret_access_key",
)
_SECRET_PARAM = re.compile(
    r"(?i)(?:(?<![A-Za-z0-9_])|(?<=%3B)|(?<=%26))((?:" + "|".join(_SECRET_KEYS) + r")\s*(?:=|%3D))"
    r"((?:(?!%3B|%26)[^&;#\s'\"])*)"
)
_USERINFO = re.compile(r"(://[^/:@?#\s]*):[^/?#\s]*@")


def mask_secrets(text: str) -> str:
    """``text`` with every credential a storage URL may carry replaced by ``***``: the
    password of ``user:password@``, and the value of ``password=``, ``passwd=``, ``pwd=``,
    ``sslpassword=``, ... query parameters (also percent-encoded inside another parameter, such
    as ``odbc_connect``). Applied to URLs and to error messages that may quote them."""
    text = _USERINFO.sub(r"\1:***@", text)
    return _SECRET_PARAM.sub(lambda m: m.group(1) + ("***" if m.group(2) else ""), text)


def mask_url(url: str) -> str:
    """``url`` with every password and secret parameter replaced by ``***`` (see
    :func:`mask_secrets`; unchanged when it has none)."""
    try:
        parsed = make_url(url)
        if parsed.password is not None:
            url = parsed.render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL: the patterns below still apply
        pass
    return mask_secrets(url)


def dashboard_command(storage_text: str, artifacts: str | None = None) -> str:
    """The shell-quoted optuna-dashboard command for a (masked) storage URL."""
    cmd = ["optuna-dashboard", storage_text]
    if artifacts:
        cmd += ["--artifact-dir", artifacts]
    return " ".join(shlex.quote(c) for c in cmd)


def _first_line(err: BaseException) -> str:
    orig = getattr(err, "orig", None)
    text = str(orig if orig is not None else err).strip()
    return mask_secrets(text.splitlines()[0]) if text else type(err).__name__


def open_storage(
    spec: Any,
    default: str | None = None,
    heartbeat: tuple[int, int] | None = None,
    *,
    read_only: bool = False,
    existing: bool = False,
) -> tuple[Any, str]:
    """The storage for ``spec`` and a printable (password-free) description of it.

    Args:
        spec: ``None`` (``default``), an RDB URL, a journal file path (a string or a
            :class:`os.PathLike` such as :class:`pathlib.Path`), or an
            :class:`optuna.storages.BaseStorage`.
        default: What ``None`` stands for (the run directory's journal file).
        heartbeat: ``(interval, grace_period)`` seconds for an RDB storage opened for
            parallel workers: Optuna's heartbeat fails a trial whose worker stopped beating, and
            Optuna's ``RetryHeartbeatStaleTrialCallback`` (``RetryFailedTrialCallback`` before
            Optuna 4.9) retries it once with the same parameters. Journal files have no heartbeat
            (local workers are watched by their parent process instead).
        read_only: Only read (``report``): the file must exist, a journal's torn tail is
            left alone, an SQLite file is neither switched to WAL nor given Optuna's tables.
        existing: The SQLite or journal file must exist (a worker joins a run that is there):
            a wrong path is an error rather than a new, empty database or file.

    An existing file is opened as a journal only when its content is one (empty, or JSON
    lines of Optuna's journal records); anything else is refused, and never changed.

    Raises:
        ValueError: ``spec`` is neither, names an unknown scheme, or is an SQLite file without
            the ``sqlite:///`` scheme.
        TunerError: The storage cannot be opened (the message names the cause).
    """
    if isinstance(spec, optuna.storages.BaseStorage):
        return spec, type(spec).__name__
    text = default if spec is None else spec
    if isinstance(text, os.PathLike):  # a journal file given as a pathlib.Path
        text = os.fspath(text)
    if not isinstance(text, str) or not text:
        raise ValueError(
            f"storage must be a URL, a journal file path or an optuna storage, got {text!r}"
        )
    _check_not_a_broken_url(text)
    if "://" not in text:
        return _open_journal(
            text, read_only=read_only, create_parent=spec is None, existing=existing
        )
    shown = mask_url(text)
    scheme = text.split("://", 1)[0].split("+", 1)[0].lower()
    if scheme not in _SCHEMES:
        raise ValueError(
            f"unknown storage scheme {scheme!r} in {shown!r}; expected a journal file path or "
            f"one of "
            f"{', '.join(s + '://' for s in _SCHEMES)}"
        )
    path = sqlite_file(text) if scheme == "sqlite" else None
    if path is not None:
        if path.is_dir():
            raise ValueError(f"storage {shown!r} names a directory, not a database file")
        if (read_only or existing) and not path.is_file():
            why = "" if read_only else ": a worker joins a run in the head's storage"
            raise ValueError(f"no SQLite file at {shown!r}{why}")
        if read_only:
            if not _is_sqlite(path):
                raise TunerError(f"storage {shown!r} is not a usable database (not SQLite)")
            return _connect(text, shown, None, read_only=True), shown
        _make_parent(path, shown, create=spec is None)
        _use_wal(path)
        storage = _connect(text, shown, heartbeat)
        _sqlite_connections(storage)
        return storage, shown
    return _connect(text, shown, heartbeat, read_only=read_only), shown


def sqlite_file(url: str) -> Path | None:
    """The database file that an SQLite URL opens, or ``None`` for an in-memory database.

    Read as SQLAlchemy's ``pysqlite`` driver reads the URL (``make_url``), so that the file the
    tuner checks, creates the folder of and switches to WAL is the one Optuna then opens:
    ``sqlite:///runs.db?timeout=30`` and ``sqlite+pysqlite:///runs.db`` name ``runs.db``;
    ``sqlite://`` and ``sqlite:///:memory:`` (with any query) are in memory; with ``uri=true``
    the database is an SQLite URI, ``file:runs.db?mode=ro`` naming ``runs.db`` and
    ``file::memory:`` or ``mode=memory`` a database in memory.

    Raises:
        ValueError: ``url`` is not a URL SQLAlchemy can parse.
    """
    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError as err:
        raise ValueError(f"storage {mask_url(url)!r} is not a valid database URL") from err
    database = parsed.database or ""
    query = {k: (v if isinstance(v, str) else v[-1]) for k, v in parsed.query.items()}
    if query.get("uri", "").lower() in ("true", "1") and database.startswith("file:"):
        if query.get("mode") == "memory" or "mode=memory" in database:
            return None
        database = database[len("file:") :].split("?", 1)[0].split("#", 1)[0]
        if database.startswith("//"):  # file://[localhost]/path
            database = "/" + database[2:].split("/", 1)[1] if "/" in database[2:] else ""
    if database in ("", ":memory:"):
        return None
    return Path(database).expanduser()


def storage_file(spec: Any) -> Path | None:
    """The file that storage ``spec`` keeps the studies in (a journal file's path, an SQLite
    URL's database file), resolved; ``None`` for a database server, an in-memory database or a
    storage object."""
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str) or not spec:
        return None
    if "://" not in spec:
        return Path(spec).expanduser().resolve()
    if spec.split("://", 1)[0].split("+", 1)[0].lower() != "sqlite":
        return None
    path = sqlite_file(spec)
    return path.expanduser().resolve() if path is not None else None


def get_storage(spec: Any) -> Any:
    """The Optuna storage object for an RDB URL, a journal file path (such as a result's
    ``storage``) or a storage object, e.g.
    ``optuna.load_study(study_name=..., storage=get_storage(p))``.

    Raises:
        ValueError, TunerError: As :func:`open_storage`.
    """
    return open_storage(spec)[0]


def _check_not_a_broken_url(text: str) -> None:
    """Refuse ``sqlite:/runs.db`` and the like (a scheme without ``://``): taken as a file path
    they become a file named ``sqlite:/runs.db`` in a folder ``sqlite:``."""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]+):(?!//)(.*)$", text)
    if match is None or match.group(1).split("+", 1)[0].lower() not in _SCHEMES:
        return
    scheme, rest = match.group(1), match.group(2).lstrip("/")
    if scheme.split("+", 1)[0].lower() == "sqlite":
        raise ValueError(
            f"storage {text!r} is not a URL (it needs '://'): write sqlite:///{rest} for "
            f"{rest!r} in the current folder, or sqlite:////{rest} for the absolute path "
            f"'/{rest}'"
        )
    raise ValueError(f"storage {text!r} is not a URL (it needs '://'): write {scheme}://{rest}")


def _make_parent(path: Path, shown: str, *, create: bool = True) -> None:
    """Create the storage file's folder (the run directory's default storage) or, for a storage
    the user named (``create=False``), require it to exist: a typo must not create folders
    anywhere on the file system."""
    parent = path.expanduser().resolve().parent
    if not create:
        if not parent.is_dir():
            raise ValueError(
                f"storage {shown!r}: the folder {str(parent)!r} does not exist; create it first "
                "(or fix the path)"
            )
        return
    try:
        path.resolve().parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TunerError(f"cannot create the folder of storage {shown!r}: {err.strerror}") from err


def _open_journal(
    text: str, *, read_only: bool = False, create_parent: bool = True, existing: bool = False
) -> tuple[Any, str]:
    """An Optuna journal file (created if missing, unless ``read_only`` or ``existing``; its
    folder too when ``create_parent``)."""
    path = Path(text).expanduser().resolve()
    if path.is_dir():
        raise ValueError(f"storage {text!r} is a directory, not a journal file")
    if path.suffix in (".db", ".sqlite", ".sqlite3") or _is_sqlite(path):
        raise ValueError(
            f"storage {text!r} looks like an SQLite file: write it as sqlite:///{path}"
        )
    if (read_only or existing) and not path.is_file():
        raise ValueError(
            f"no journal file at {text!r}"
            + (": a worker joins a run in the head's storage" if existing else "")
        )
    if path.is_file():
        _check_journal_content(path, text)
    _make_parent(path, text, create=create_parent)
    try:
        lock = OwnedSymlinkLock(str(path))  # a dead holder's lock is taken over at once
        if not read_only:
            _repair_torn_tail(path, lock)
        return JournalStorage(JournalFileBackend(str(path), lock_obj=lock)), str(path)
    except OSError as err:
        raise TunerError(
            f"cannot open journal storage {str(path)!r}: {err.strerror or err}"
        ) from err
    except (ValueError, KeyError, TypeError, AssertionError, IndexError, AttributeError) as err:
        # Optuna replays the log when it opens it (an unknown op_code ends in an assert)
        why = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        raise TunerError(f"storage {str(path)!r} is not a usable Optuna journal ({why})") from err


def _check_journal_content(path: Path, text: str) -> None:
    """Refuse an existing file that is not an Optuna journal (before anything writes to it).

    A journal is empty or starts with a JSON object holding Optuna's ``op_code`` (its first
    line may be torn). A mistyped ``--storage notes.csv`` is refused, not truncated.

    Raises:
        ValueError: Naming the file and what it looks like.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError as err:
        raise ValueError(f"storage {text!r} cannot be read: {err.strerror}") from err
    if not head:
        return
    first = head.split(b"\n", 1)[0]
    if first.startswith(b"{") and b'"op_code"' in first:
        return
    if b"\x00" in head[:1024]:
        looks = "binary data"
    else:
        shown = first[:40].decode("utf-8", "replace")
        looks = f"text starting {shown!r}"
    raise ValueError(
        f"storage {str(path)!r} exists and is not an Optuna journal (it holds {looks}); "
        "give a new file name, an existing journal or an RDB URL"
    )


def _repair_torn_tail(path: Path, lock: Any) -> None:
    """Cut a journal back to its last complete line.

    A write cut short (a full disk, a process killed inside ``write``) leaves a last line
    without its newline. Optuna's reader skips such a line only while it is the last one: the
    next append would glue a new record to it and corrupt the log. The torn record was never
    acknowledged, so dropping it loses nothing. Done under the journal's own lock.
    """
    if not path.is_file() or path.stat().st_size == 0:
        return
    lock.acquire()
    try:
        with open(path, "rb+") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            keep = size - 1
            block = 1 << 16
            while keep > 0:  # find the last newline, reading backwards
                start = max(0, keep - block)
                f.seek(start)
                chunk = f.read(keep - start)
                i = chunk.rfind(b"\n")
                if i >= 0:
                    keep = start + i + 1
                    break
                keep = start
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
    finally:
        lock.release()


def _is_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def _use_wal(path: Path) -> None:
    """Switch an SQLite file to write-ahead logging (a persistent property of the file).

    A trial writes a dozen small transactions (user attributes, tell); in WAL mode each costs
    about half as much as in the default rollback-journal mode, and readers (optuna-dashboard,
    other workers) no longer block the writer. A file that is not a database is left alone
    (opening it fails with a clear error next).
    """
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=1)) as con:
            con.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error:
        pass


#: How long an SQLite transaction waits for another process's write lock (milliseconds).
SQLITE_BUSY_TIMEOUT_MS = 60_000


def _sqlite_connections(storage: Any) -> None:
    """Set up the storage's SQLite connections for several processes at once.

    * Every transaction begins with ``BEGIN IMMEDIATE``, which takes the write lock before its
      first read. Optuna's ``RDBStorage`` reads a trial ``FOR UPDATE`` and then writes it (a
      WAITING trial popped as RUNNING); SQLite ignores ``FOR UPDATE``, and Python's driver
      begins a transaction only at the first write, so two workers could both read the same
      WAITING trial and both run it: one then fails with "Cannot tell a COMPLETE trial"
      (Optuna issue #4621; 16-20 of 200 queued trials popped twice by 4 processes). With the
      lock taken first, the second reads RUNNING and takes the next trial. This is
      SQLAlchemy's recipe for the pysqlite driver (driver transactions off, ``BEGIN`` emitted
      by an event).
    * A busy timeout of :data:`SQLITE_BUSY_TIMEOUT_MS`: transactions now wait for each other,
      reads included, for milliseconds each; a loaded machine must not turn that into
      "database is locked".
    * ``PRAGMA synchronous=NORMAL``: in WAL mode a commit then survives the death of the
      process (``kill -9``) without an ``fsync`` per transaction; only an operating-system
      crash may lose the last commits.
    """

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.isolation_level = None  # the driver emits no BEGIN of its own
            dbapi_connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine = getattr(storage, "engine", None)
    if engine is not None:
        event.listen(engine, "connect", on_connect)
        event.listen(engine, "begin", on_begin)
        engine.dispose()


def _connect(
    url: str, shown: str, heartbeat: tuple[int, int] | None = None, *, read_only: bool = False
) -> Any:
    kwargs: dict[str, Any] = {"skip_table_creation": True} if read_only else {}
    if heartbeat is not None:
        retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)  # Optuna >= 4.9
        kwargs = dict(heartbeat_interval=heartbeat[0], grace_period=heartbeat[1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if retry is not None:
                kwargs["heartbeat_stale_trial_callback"] = retry(max_retry=1)
            else:
                kwargs["failed_trial_callback"] = optuna.storages.RetryFailedTrialCallback(
                    max_retry=1
                )
    for attempt in range(6):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, **kwargs)
        except ImportError as err:
            cause = err.__cause__ or err
            raise TunerError(
                f"storage {shown!r}: the database driver is not installed ({_first_line(cause)}); "
                "for PostgreSQL install optuna-gamma[postgres]"
            ) from err
        except sqlalchemy.exc.NoSuchModuleError as err:
            raise ValueError(f"unknown storage scheme in {shown!r}: {_first_line(err)}") from err
        except sqlalchemy.exc.IntegrityError:
            # Another process created the schema at the same moment; it exists now.
            time.sleep(0.05 * (attempt + 1))
        except sqlalchemy.exc.OperationalError as err:
            if "already exists" in _first_line(err):  # the same race, seen from CREATE TABLE
                time.sleep(0.05 * (attempt + 1))
                continue
            raise TunerError(f"cannot open storage {shown!r}: {_first_line(err)}") from err
        except sqlalchemy.exc.DatabaseError as err:
            raise TunerError(
                f"storage {shown!r} is not a usable database ({_first_line(err)})"
            ) from err
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as err:
            raise TunerError(f"cannot open storage {shown!r}: {_first_line(err)}") from err
        except RuntimeError as err:  # e.g. Optuna's schema-version check
            raise TunerError(f"cannot use storage {shown!r}: {_first_line(err)}") from err
    raise TunerError(f"cannot open storage {shown!r}: schema creation kept failing")
