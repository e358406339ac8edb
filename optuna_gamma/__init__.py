"""optuna-gamma: Gamma-conjugate (Student-t) GP Bayesian optimization for Optuna."""

from __future__ import annotations

from optuna_gamma.samplers import GammaBOSampler


__version__ = "0.1.0"

__all__ = ["GammaBOSampler", "__version__"]
