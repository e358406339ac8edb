"""Optuna samplers of optuna-gamma."""

from __future__ import annotations

from optuna_gamma.samplers._gamma_bo import GammaBOSampler
from optuna_gamma.samplers._history import History


__all__ = ["GammaBOSampler", "History"]
