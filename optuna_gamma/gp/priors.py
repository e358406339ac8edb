"""Weak log-priors on the kernel hyperparameters (the "a posteriori" of the MAP fit).

Each prior is a log density (up to a constant) of the hyperparameter itself, added to the log
evidence while the fit moves on the logs of the hyperparameters, without the log-Jacobian of that
change of variables (as Optuna's ``GPSampler`` and BoTorch/GPyTorch do); gradients are with
respect to the raw vector of :meth:`GPHyperparams.to_vector
<optuna_gamma.gp.settings.GPHyperparams.to_vector>`.

Lengthscales (per input dimension, :math:`\\lambda_d = \\ell_d^{-1/2}` on the unit cube):

* ``"dim_scaled"`` (default): :math:`\\lambda \\sim \\mathrm{LogNormal}(\\sqrt2 + \\tfrac12
  \\log D, 3)` for ``D`` inputs (Hvarfner, Hellsten & Nardi 2024, "Vanilla Bayesian optimization
  performs great in high dimensions", ICML; BoTorch's default since 0.12, proposed for Optuna's
  ``GPSampler`` in optuna#6255). The penalty :math:`-\\log\\lambda - (\\log\\lambda - \\mu)^2/6`
  peaks at :math:`\\lambda = e^{\\mu - 3} \\approx 0.2 \\sqrt D` (0.2 in 1-D, 0.5 in 6-D, 0.65 in
  10-D) and is weak (a lengthscale of 1 in 1-D costs 0.4 nats), so the longer lengthscales that
  a larger dimension needs for a sample of fixed size are not penalized as dimension grows. As
  in BoTorch, the fit keeps lengthscales above 0.025 with this prior (its
  :math:`-\\log\\lambda` term alone would let the fit run to lengthscales far below the
  spacing of the data, chasing noise-like wiggles) and starts at its mode.
* ``"optuna"``: :math:`-(0.1/\\ell + 0.1\\,\\ell)`, Optuna's heuristic, peaked at
  :math:`\\lambda = 1` whatever the dimension and rising like :math:`\\cosh` in
  :math:`\\log\\ell` (``optuna/_gp/prior.py``).

Noise ratio :math:`\\eta^2`: :math:`\\mathrm{Gamma}(1.1, 30)`, i.e. :math:`0.1\\log\\eta^2 -
30\\eta^2`, preferring small noise (Optuna's). Amplitude (``"gaussian"`` mode only):
:math:`\\mathrm{Gamma}(2, 1)`, i.e. :math:`\\log A - A` (Optuna's kernel-scale prior).
"""

from __future__ import annotations

import math

import numpy as np

from optuna_gamma.gp.settings import dim_scaled_location
from optuna_gamma.gp.settings import DIM_SCALED_LOG_VARIANCE
from optuna_gamma.gp.settings import GPHyperparams
from optuna_gamma.gp.settings import GPSettings


def log_prior_and_grad(params: GPHyperparams, settings: GPSettings) -> tuple[float, np.ndarray]:
    """Log-prior of the hyperparameters and its gradient w.r.t. the raw (log) vector.

    Args:
        params: The hyperparameters.
        settings: Gives the lengthscale prior and whether the amplitude is fitted.

    Returns:
        ``(value, grad)``, ``grad`` shaped like ``params.to_vector(settings)``.
    """
    ell = np.asarray(params.inv_sq_lengthscales, dtype=float)
    if settings.lengthscale_prior == "dim_scaled":
        # t = log ell = -2 log lambda; penalty -log lambda - (log lambda - mu)^2 / (2 s^2)
        t = np.log(ell)
        u = 0.5 * t + dim_scaled_location(ell.shape[0])  # = mu - log lambda
        value = float(np.sum(0.5 * t - u * u / (2.0 * DIM_SCALED_LOG_VARIANCE)))
        g_ell = 0.5 - u / (2.0 * DIM_SCALED_LOG_VARIANCE)
    else:
        value = float(-(0.1 / ell + 0.1 * ell).sum())
        g_ell = 0.1 / ell - 0.1 * ell
    noise = float(params.noise)
    value += 0.1 * math.log(noise) - 30.0 * noise
    grads = [g_ell, [0.1 - 30.0 * noise]]
    if settings.fits_amplitude:
        amp = float(params.amplitude)
        value += math.log(amp) - amp
        grads.append([1.0 - amp])
    return value, np.concatenate(grads)


def log_prior(params: GPHyperparams, settings: GPSettings) -> float:
    """The value of :func:`log_prior_and_grad`."""
    return log_prior_and_grad(params, settings)[0]
