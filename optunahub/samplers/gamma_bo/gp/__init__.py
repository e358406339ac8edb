# generated from optuna_gamma/gp/__init__.py by tools/sync_optunahub.py; do not edit
"""Gamma-conjugate (Student-t) Gaussian-process surrogate and its acquisition functions.

numpy/scipy only. The modules, one job each (as Optuna's ``optuna/_gp``):

* :mod:`~optuna_gamma.gp.settings`: :class:`GPSettings` (the model's frozen, validated settings)
  and :class:`GPHyperparams` (the fitted kernel hyperparameters);
* :mod:`~optuna_gamma.gp.kernels`: ARD Matern-5/2 and squared-exponential kernels;
* :mod:`~optuna_gamma.gp.priors`: log-priors of the hyperparameters;
* :mod:`~optuna_gamma.gp.model`: the conditioned GP and its Student-t / Gaussian predictive;
* :mod:`~optuna_gamma.gp.fit`: log evidence, its gradient, the MAP fit;
* :mod:`~optuna_gamma.gp.acquisition`: Student-t / Gaussian EI and PI, probability of
  feasibility, the log acquisition with gradients;
* :mod:`~optuna_gamma.gp.threads`: single-threaded BLAS around GP work.

The names below are the public API; the modules' other functions are for tests and experts.
They are imported on first use (PEP 562), so that ``import optuna_gamma`` does not pay for
``scipy.optimize``/``scipy.special`` before the first suggestion.
"""

from __future__ import annotations

import importlib
from typing import Any
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    from .acquisition import Acquisition
    from .acquisition import Feasibility
    from .fit import fit_gp
    from .fit import log_marginal_likelihood
    from .model import GaussianProcess
    from .settings import GPHyperparams
    from .settings import GPSettings

_HOME = {
    "Acquisition": "acquisition",
    "Feasibility": "acquisition",
    "GPHyperparams": "settings",
    "GPSettings": "settings",
    "GaussianProcess": "model",
    "fit_gp": "fit",
    "log_marginal_likelihood": "fit",
}

__all__ = [
    "Acquisition",
    "Feasibility",
    "GPHyperparams",
    "GPSettings",
    "GaussianProcess",
    "fit_gp",
    "log_marginal_likelihood",
]
assert __all__ == sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name in _HOME:
        value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))
