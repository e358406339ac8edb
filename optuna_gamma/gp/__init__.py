"""Gamma-conjugate (Student-t) Gaussian-process surrogate and acquisition functions.

numpy/scipy only. See :mod:`optuna_gamma.gp.model` for the model and
:mod:`optuna_gamma.gp.acquisition` for EI/PI.
"""

from __future__ import annotations

from optuna_gamma.gp.acquisition import (
    Acquisition,
    expected_improvement,
    log_expected_improvement,
    log_probability_of_improvement,
    probability_of_improvement,
)
from optuna_gamma.gp.kernels import KernelName, kernel_matrix, squared_distance
from optuna_gamma.gp.model import (
    DEFAULT_PRIOR_RATE,
    DEFAULT_PRIOR_SHAPE,
    MIN_NOISE,
    GaussianProcess,
    GPHyperparams,
    Predictive,
    fit_gp,
    limit_blas_threads,
    log_marginal_likelihood,
    log_marginal_likelihood_and_grad,
)

__all__ = [
    "Acquisition",
    "DEFAULT_PRIOR_RATE",
    "DEFAULT_PRIOR_SHAPE",
    "GPHyperparams",
    "GaussianProcess",
    "KernelName",
    "MIN_NOISE",
    "Predictive",
    "expected_improvement",
    "fit_gp",
    "kernel_matrix",
    "limit_blas_threads",
    "log_expected_improvement",
    "log_marginal_likelihood",
    "log_marginal_likelihood_and_grad",
    "log_probability_of_improvement",
    "probability_of_improvement",
    "squared_distance",
]
