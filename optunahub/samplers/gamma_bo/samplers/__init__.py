# generated from optuna_gamma/samplers/__init__.py by tools/sync_optunahub.py; do not edit
"""Optuna samplers of optuna-gamma."""

from __future__ import annotations

from ._gamma_bo import GammaBOSampler
from ._history import History


__all__ = ["GammaBOSampler", "History"]
