"""optuna-gamma: Gamma-conjugate (Student-t) GP Bayesian optimization for Optuna."""

from __future__ import annotations

__version__ = "0.1.0"
