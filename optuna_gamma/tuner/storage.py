"""Opening the run's Optuna storage, with one-line errors and credentials kept out of output.

:func:`open_storage` turns a storage URL into an :class:`optuna.storages.RDBStorage` (SQLite for
one machine; PostgreSQL or MySQL for many) and every way that can fail into a
:class:`~optuna_gamma.tuner.errors.TunerError` (a missing database driver, an unreachable
server, a malformed or locked SQLite file) or a :class:`ValueError` (not a URL, an unknown
scheme), before any trial starts. Two processes creating the same fresh database at once race in
Optuna's schema set-up (an ``IntegrityError`` from alembic's version table); the loser retries.

:func:`mask_url` hides the password of a URL; it is what the tuner prints and saves.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
import re
import time
from typing import Any


__all__ = ["dashboard_command", "mask_url", "open_storage"]

_SCHEMES = ("sqlite", "postgresql", "mysql", "oracle", "mssql")


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (unchanged when it has none)."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if parsed.password is None:
            return url
        return parsed.render_as_string(hide_password=True)
    except Exception:  # not an SQLAlchemy URL: hide anything that looks like user:pass@
        return re.sub(r"(://[^/:@]*):[^/@]*@", r"\1:***@", url)


def dashboard_command(storage_text: str, artifacts: str | None = None) -> str:
    """The shell-quoted optuna-dashboard command for a (masked) storage URL."""
    import shlex

    cmd = ["optuna-dashboard", storage_text]
    if artifacts:
        cmd += ["--artifact-dir", artifacts]
    return " ".join(shlex.quote(c) for c in cmd)


def _first_line(err: BaseException) -> str:
    orig = getattr(err, "orig", None)
    text = str(orig if orig is not None else err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def open_storage(spec: Any, default_url: str) -> tuple[Any, str]:
    """The storage for ``spec`` and a printable (password-free) description of it.

    Args:
        spec: ``None`` (``default_url``), an RDB URL, or an :class:`optuna.storages.BaseStorage`.
        default_url: The run directory's SQLite URL.

    Raises:
        ValueError: ``spec`` is not a URL or storage, or names an unknown scheme.
        TunerError: The storage cannot be opened (the message names the cause).
    """
    import optuna

    from optuna_gamma.tuner.errors import TunerError

    if isinstance(spec, optuna.storages.BaseStorage):
        return spec, type(spec).__name__
    url = default_url if spec is None else spec
    if not isinstance(url, str):
        raise ValueError(f"storage must be a URL or an optuna.storages.BaseStorage, got {url!r}")
    shown = mask_url(url)
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else None
    if scheme is None:
        raise ValueError(f"storage {shown!r} is not a URL; expected e.g. sqlite:///PATH or postgresql://HOST/DB")
    if scheme not in _SCHEMES:
        raise ValueError(
            f"unknown storage scheme {scheme!r} in {shown!r}; expected one of "
            f"{', '.join(s + '://' for s in _SCHEMES)}"
        )
    if scheme == "sqlite" and url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url[len("sqlite:///"):]).expanduser()
        if path.is_dir():
            raise ValueError(f"storage {shown!r} names a directory, not a database file")
        try:
            path.resolve().parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise TunerError(f"cannot create the folder of storage {shown!r}: {err.strerror}") from err
        _use_wal(path)
        storage = _connect(url, shown)
        _synchronous_normal(storage)
        return storage, shown
    return _connect(url, shown), shown


def _use_wal(path: Path) -> None:
    """Switch an SQLite file to write-ahead logging (a persistent property of the file).

    A trial writes a dozen small transactions (user attributes, tell); in WAL mode each costs
    about half as much as in the default rollback-journal mode, and readers (optuna-dashboard,
    other workers) no longer block the writer. A file that is not a database is left alone
    (opening it fails with a clear error next).
    """
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(path, timeout=1)) as con:
            con.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error:
        pass


def _synchronous_normal(storage: Any) -> None:
    """``PRAGMA synchronous=NORMAL`` on the storage's connections: in WAL mode a commit then
    survives the death of the process (``kill -9``) without an ``fsync`` per transaction; only
    an operating-system crash may lose the last commits."""
    import sqlite3

    from sqlalchemy import event

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    engine = getattr(storage, "engine", None)
    if engine is not None:
        event.listen(engine, "connect", on_connect)
        engine.dispose()


def _connect(url: str, shown: str) -> Any:
    import optuna
    import sqlalchemy.exc

    from optuna_gamma.tuner.errors import TunerError

    for attempt in range(6):
        try:
            return optuna.storages.RDBStorage(url)
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
