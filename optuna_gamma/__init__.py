"""optuna-gamma: Gamma-conjugate (Student-t) GP Bayesian optimization for Optuna."""

from __future__ import annotations

from optuna_gamma.samplers import GammaBOSampler
from optuna_gamma.samplers import History


__version__ = "0.1.0"

__all__ = ["GammaBOSampler", "History", "__version__"]
