# generated from optuna_gamma/__init__.py by tools/sync_optunahub.py; do not edit
"""optuna-gamma: Gamma-conjugate (Student-t) GP Bayesian optimization for Optuna."""

from __future__ import annotations

from .samplers import GammaBOSampler
from .samplers import History


__version__ = "0.1.0"

__all__ = ["GammaBOSampler", "History", "__version__"]
