"""Errors of the tuner that are not bad arguments (those are :class:`ValueError`)."""

from __future__ import annotations


__all__ = ["AllTrialsDivergedError", "TunerError"]


class TunerError(RuntimeError):
    """The environment stops the run: a storage that cannot be opened or written, a device that
    is not there, a run directory in use. The message is one line that names the cause; the
    results stored so far are kept, and the same call resumes once the cause is fixed."""


class AllTrialsDivergedError(TunerError):
    """Every trial of a study diverged, so there is no state to adopt."""
