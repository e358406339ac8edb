"""The tuner's logger: ``optuna_gamma``, configured the way Optuna configures ``optuna``.

The library root logger ``optuna_gamma`` gets one stderr handler with Optuna's format at level
INFO (and does not propagate), so the one line per adopted epoch shows in scripts and
``nohup`` logs without any set-up; :func:`set_verbosity` and :func:`disable_default_handler`
change that, as their namesakes in :mod:`optuna.logging` do.
"""

from __future__ import annotations

import logging
import re
import threading

from optuna.logging import create_default_formatter

from optuna_gamma.tuner.errors import TunerError


__all__ = ["disable_default_handler", "get_logger", "set_verbosity"]

_LIBRARY = "optuna_gamma"
_lock = threading.Lock()
_default_handler: logging.Handler | None = None


def _configure() -> None:
    global _default_handler

    with _lock:
        if _default_handler is not None:
            return

        _default_handler = logging.StreamHandler()
        _default_handler.setFormatter(create_default_formatter())
        root = logging.getLogger(_LIBRARY)
        root.addHandler(_default_handler)
        root.setLevel(logging.INFO)
        root.propagate = False


def get_logger(name: str) -> logging.Logger:
    """A logger under ``optuna_gamma`` (the library root logger is configured on first use)."""
    _configure()
    return logging.getLogger(name)


def set_verbosity(level: int) -> None:
    """Set the level of the ``optuna_gamma`` logger (e.g. ``logging.WARNING``)."""
    _configure()
    logging.getLogger(_LIBRARY).setLevel(level)


_FOLLOW_UP = re.compile(r"^Trial \d+ failed with value None\.$")


def reported_by_the_command_line(err: BaseException | None) -> bool:
    """Whether the command line reports ``err`` itself, in one line, when a trial raises it (a
    full disk, a bad value, a storage failure), rather than as a trainer's failure."""
    return isinstance(err, (OSError, ValueError, TunerError))


class _ReportedTrialFailure(logging.Filter):
    """Drops Optuna's "Trial N failed ..." warning and its traceback for an error that the
    command line reports itself (:func:`reported_by_the_command_line`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        err = record.exc_info[1] if record.exc_info else None
        if reported_by_the_command_line(err):
            return False
        # its follow-up line: the tuner does not catch trial errors, so the error ends the run
        # and the command line reports it
        return not (err is None and _FOLLOW_UP.match(record.getMessage()))


def quiet_reported_trial_failures() -> None:
    """Install :class:`_ReportedTrialFailure` on the logger of Optuna's optimize loop (the
    command line calls this; library users keep Optuna's full warning)."""
    logger = logging.getLogger("optuna.study._optimize")
    if not any(isinstance(f, _ReportedTrialFailure) for f in logger.filters):
        logger.addFilter(_ReportedTrialFailure())


def disable_default_handler() -> None:
    """Remove the default stderr handler and let records propagate to your own configuration
    (``logging.basicConfig``, a file handler on the root logger), as
    ``optuna.logging.disable_default_handler`` plus ``enable_propagation`` do for Optuna's.
    :func:`set_verbosity` still sets which records leave the ``optuna_gamma`` logger."""
    _configure()
    root = logging.getLogger(_LIBRARY)
    assert _default_handler is not None
    root.removeHandler(_default_handler)
    root.propagate = True
