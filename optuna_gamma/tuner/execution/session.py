"""What surrounds every tuner call (:func:`tuner_call`): one error path, a quiet Optuna.

:func:`~optuna_gamma.tuner.tune.tune_per_epoch` and
:func:`~optuna_gamma.tuner.tune.tune_whole` run inside :func:`tuner_call`:

- a failed trial or a Ctrl-C is reported once
  (:func:`~optuna_gamma.tuner.execution.failures.reported_failures`);
- Optuna's own INFO lines ("Trial 3 finished with value ...", "Using an existing study ...")
  are hidden while Optuna's verbosity is its default (INFO), as the CLI always did: the tuner
  logs one line per adopted epoch itself. A user who set another verbosity (e.g.
  ``optuna.logging.set_verbosity(optuna.logging.DEBUG)``) keeps it; the default comes back
  when the call returns.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib

import optuna

from optuna_gamma.tuner.execution.failures import reported_failures


__all__ = ["quiet_optuna", "tuner_call"]


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna at WARNING for the duration, if it is at its default INFO."""
    before = optuna.logging.get_verbosity()
    if before == optuna.logging.INFO:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        if before == optuna.logging.INFO:
            optuna.logging.set_verbosity(before)


@contextlib.contextmanager
def tuner_call() -> Iterator[None]:
    """Around one tuner call: one error path and a quiet Optuna."""
    with reported_failures(), quiet_optuna():
        yield
