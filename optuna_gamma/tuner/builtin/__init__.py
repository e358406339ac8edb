"""The thesis's training as a built-in trainer: datasets (:mod:`.data`), models (:mod:`.models`),
the seeded SGD epoch (:mod:`.training`) and :class:`ThesisTrainer` (:mod:`.trainer`)."""

from __future__ import annotations

from optuna_gamma.tuner.builtin.trainer import DEFAULT_MODEL
from optuna_gamma.tuner.builtin.trainer import ThesisTrainer


__all__ = ["DEFAULT_MODEL", "ThesisTrainer"]
