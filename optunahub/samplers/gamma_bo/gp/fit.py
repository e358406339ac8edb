# generated from optuna_gamma/gp/fit.py by tools/sync_optunahub.py; do not edit
"""Log evidence of the GP, its gradient, and the MAP fit of the kernel hyperparameters.

With the notation of :mod:`optuna_gamma.gp.model` (:math:`n' = n - 1` and the
:math:`-\\tfrac12\\log c` term for the constant mean; :math:`n' = n` and no such term for the zero
mean), the log evidence is

.. math::

    \\log p(y) = \\log\\Gamma(a_n) - \\log\\Gamma(a_0) + a_0 \\log b_0 - a_n \\log b_n
               - \\tfrac{n'}2 \\log 2\\pi - \\tfrac12 \\log|K| - \\tfrac12 \\log c

for ``"student_t"``/``"plugin"`` (docs/design.md §2; a multivariate Student-t with :math:`2a_0`
degrees of freedom, integrated over the flat prior of the mean), and
:math:`-Q/(2A) - \\tfrac{n'}2\\log(2\\pi A) - \\tfrac12\\log|K| - \\tfrac12\\log c` for
``"gaussian"``. The flat prior of the mean is improper, so the evidence is defined up to a
constant that does not depend on the hyperparameters (a restricted likelihood, as in REML).

Gradients use the trace formula (Rasmussen & Williams 2006, eq. 5.9): for every hyperparameter

.. math::

    \\frac{\\partial \\log p(y)}{\\partial \\theta_j}
        = \\tfrac12 \\mathrm{tr}\\big( W \\,\\partial K / \\partial \\theta_j \\big), \\qquad
    W = \\gamma\\, \\alpha\\alpha^\\top - K^{-1} + \\beta\\beta^\\top / c,

with :math:`\\gamma = a_n / b_n` (Student-t; from :math:`\\partial b_n = -\\tfrac12
\\alpha^\\top \\partial K \\alpha`, the mean being at its stationary point) or :math:`1/A`
(Gaussian), and :math:`\\partial \\log c = -\\beta^\\top \\partial K \\beta / c`. One ``(n, n)``
matrix serves every lengthscale, the noise and the amplitude.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace
import math

import numpy as np
import scipy.optimize
from scipy.special import gammaln

from . import _linalg
from .kernels import categorical_mask
from .kernels import kernel_and_derivative
from .model import check_data
from .model import Conditioning
from .model import GaussianProcess
from .model import OutputScale
from .priors import log_prior_and_grad
from .settings import GPHyperparams
from .settings import GPSettings
from .settings import MAX_NOISE
from .threads import limit_blas_threads


# Box bounds for L-BFGS-B on the hyperparameters (not on their logs).
_INV_SQ_LENGTHSCALE_BOUNDS = (1e-4, 1e4)
# With the dimension-scaled prior, lengthscales stay above 0.025 (BoTorch's constraint that goes
# with that prior, ``get_covar_module_with_dim_scaled_prior``): shorter ones are not identifiable
# from the data, and the prior (whose -log(lambda) term rewards them) would let the fit chase
# noise-like wiggles by interpolation.
_MIN_DIM_SCALED_LENGTHSCALE = 0.025
_AMPLITUDE_BOUNDS = (1e-2, 1e2)
_LOG_2PI = math.log(2.0 * math.pi)
# Data sets up to this size are fitted from the default start as well as from the warm start.
_MAX_N_TWO_STARTS = 16


@dataclass(frozen=True)
class TrainingData:
    """Validated training data: inputs ``X (n, d)``, outputs ``y (n,)``, categorical mask, and
    the per-dimension squared differences ``sqdiff (d, n * n)`` (:math:`(x_{id} - x_{jd})^2`, or
    :math:`1[x_{id} \\neq x_{jd}]` on categorical dimensions), computed once per fit: every
    evidence evaluation then gets :math:`r^2 = \\sum_d \\ell_d D_d` and the lengthscale trace
    terms :math:`\\ell_d \\sum_{ij} M_{ij} D_{d,ij}` from one matrix product each."""

    X: np.ndarray
    y: np.ndarray
    is_categorical: np.ndarray
    sqdiff: np.ndarray

    @classmethod
    def of(
        cls, X: np.ndarray, y: np.ndarray, is_categorical: np.ndarray | None = None
    ) -> TrainingData:
        X, y = check_data(X, y)
        cat = categorical_mask(is_categorical, X.shape[1])
        diff = X.T[:, :, None] - X.T[:, None, :]  # (d, n, n)
        sqdiff = np.where(cat[:, None, None], (diff != 0.0).astype(float), diff * diff)
        return cls(X, y, cat, sqdiff.reshape(X.shape[1], -1))


def _evidence(
    data: TrainingData, params: GPHyperparams, settings: GPSettings, *, need_grad: bool
) -> tuple[float, np.ndarray | None]:
    """Log evidence and (if ``need_grad``) its gradient w.r.t. the raw hyperparameter vector."""
    n = data.X.shape[0]
    ell = np.asarray(params.inv_sq_lengthscales, dtype=float)
    sqd = (ell @ data.sqdiff).reshape(n, n)
    K, dk = kernel_and_derivative(sqd, settings.kernel)
    K[np.diag_indices(n)] += params.noise
    cond = Conditioning.of(K, data.y, settings)
    scale = OutputScale.of(cond, params, settings)
    mean_term = 0.0 if cond.beta is None else -0.5 * math.log(cond.beta_sum)
    if settings.predictive == "gaussian":
        amp = float(params.amplitude)
        lml = -0.5 * cond.quad / amp - 0.5 * cond.n_eff * (_LOG_2PI + math.log(amp))
        gamma = 1.0 / amp
    else:
        a0, b0 = settings.prior_shape, settings.prior_rate
        lml = (
            gammaln(scale.a_n)
            - gammaln(a0)
            + a0 * math.log(b0)
            - scale.a_n * math.log(scale.b_n)
            - 0.5 * cond.n_eff * _LOG_2PI
        )
        gamma = scale.a_n / scale.b_n
    lml += mean_term - 0.5 * cond.logdet
    if not need_grad:
        return float(lml), None
    W = gamma * np.outer(cond.alpha, cond.alpha) - _linalg.cho_inverse(cond.L)
    if cond.beta is not None:
        W += np.outer(cond.beta, cond.beta) / cond.beta_sum
    grads = [
        0.5 * ell * (data.sqdiff @ (W * dk).ravel()),
        [0.5 * params.noise * float(np.trace(W))],
    ]
    if settings.fits_amplitude:
        grads.append([0.5 * cond.quad / params.amplitude - 0.5 * cond.n_eff])
    return float(lml), np.concatenate(grads)


def log_marginal_likelihood_and_grad(
    X: np.ndarray,
    y: np.ndarray,
    params: GPHyperparams,
    settings: GPSettings | None = None,
    *,
    is_categorical: np.ndarray | None = None,
    _need_grad: bool = True,
) -> tuple[float, np.ndarray]:
    """Log evidence :math:`\\log p(y)` (module docstring) and its gradient w.r.t. the raw
    vector ``params.to_vector(settings)`` = ``[log ell (d), log noise, (log amplitude,
    gaussian)]``.

    If ``K`` is numerically singular a tiny diagonal jitter is added (at most what the Cholesky
    factorization needs).
    """
    settings = GPSettings() if settings is None else settings
    data = TrainingData.of(X, y, is_categorical)
    params.check(data.X.shape[1])
    with limit_blas_threads():
        lml, grad = _evidence(data, params, settings, need_grad=_need_grad)
    return lml, np.empty(0) if grad is None else grad


def log_marginal_likelihood(
    X: np.ndarray,
    y: np.ndarray,
    params: GPHyperparams,
    settings: GPSettings | None = None,
    *,
    is_categorical: np.ndarray | None = None,
) -> float:
    """Log evidence :math:`\\log p(y)` (module docstring)."""
    return log_marginal_likelihood_and_grad(
        X, y, params, settings, is_categorical=is_categorical, _need_grad=False
    )[0]


def _bounds(d: int, settings: GPSettings) -> tuple[np.ndarray, np.ndarray]:
    ell = _INV_SQ_LENGTHSCALE_BOUNDS
    if settings.lengthscale_prior == "dim_scaled":
        ell = (ell[0], _MIN_DIM_SCALED_LENGTHSCALE**-2)
    pairs = [ell] * d + [(settings.min_noise, MAX_NOISE)]
    if settings.fits_amplitude:
        pairs.append(_AMPLITUDE_BOUNDS)
    lo, hi = np.log(np.array(pairs)).T
    return lo, hi


def fit_gp(
    X: np.ndarray,
    y: np.ndarray,
    settings: GPSettings | None = None,
    *,
    is_categorical: np.ndarray | None = None,
    init: GPHyperparams | None = None,
    max_iter: int = 200,
) -> GaussianProcess:
    """Fit the hyperparameters by maximum a posteriori and return the conditioned GP.

    Maximizes ``log_marginal_likelihood + log_prior`` (:mod:`optuna_gamma.gp.priors`) over the
    log hyperparameters with L-BFGS-B (analytic gradients) inside the box bounds
    ``inv_sq_lengthscales in [1e-4, 1e4]``, ``noise in [settings.min_noise, 10]`` (default
    ``[1e-10, 10]``), ``amplitude in [1e-2, 1e2]``.
    The optimization starts from ``init`` (warm start, clipped into the bounds) or from
    :meth:`GPHyperparams.default`; data sets of up to 16 points are also fitted from the default
    and the better optimum is kept. ``settings.deterministic_objective`` fixes the noise at
    ``settings.min_noise``.

    Numerical trouble never raises: Cholesky failures are retried with jitter, a failed or
    non-finite optimization falls back to the best starting point.

    Args:
        X: Inputs ``(n, d)`` in the unit cube, ``n >= 1``.
        y: Standardized outputs ``(n,)``, larger is better.
        settings: The model's settings (default: :class:`GPSettings`'s defaults).
        is_categorical: Boolean mask ``(d,)`` or ``None``.
        init: Warm start, e.g. the previous fit's ``params``.
        max_iter: Iteration limit of each L-BFGS-B run.

    Returns:
        The fitted :class:`~optuna_gamma.gp.model.GaussianProcess`.
    """
    settings = GPSettings() if settings is None else settings
    data = TrainingData.of(X, y, is_categorical)
    with limit_blas_threads():
        params = _fit(data, settings, init, max_iter)
        return GaussianProcess(
            data.X, data.y, params, settings, is_categorical=data.is_categorical
        )


def _fit(
    data: TrainingData, settings: GPSettings, init: GPHyperparams | None, max_iter: int
) -> GPHyperparams:
    n, d = data.X.shape
    lo, hi = _bounds(d, settings)
    free = np.ones(lo.shape[0], dtype=bool)
    if settings.deterministic_objective:
        free[d] = False  # the noise stays at settings.min_noise

    # L-BFGS-B evaluates its start point again, and its result is re-evaluated below: a
    # memo keyed by the exact vector saves those two evidence computations per start.
    memo: dict[bytes, tuple[float, np.ndarray]] = {}

    def objective(raw: np.ndarray) -> tuple[float, np.ndarray]:
        key = raw.tobytes()
        if key not in memo:
            memo[key] = _objective(raw)
        value, grad = memo[key]
        return value, grad.copy()

    def _objective(raw: np.ndarray) -> tuple[float, np.ndarray]:
        params = GPHyperparams.from_vector(raw, d, settings)
        try:
            with np.errstate(all="ignore"):
                lml, g = _evidence(data, params, settings, need_grad=True)
                lp, gp = log_prior_and_grad(params, settings)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            return math.inf, np.zeros_like(raw)
        value = -(lml + lp)
        grad = -(g + gp)
        if not (math.isfinite(value) and np.all(np.isfinite(grad))):
            return math.inf, np.zeros_like(raw)
        return value, grad

    default = GPHyperparams.default(d, settings)
    starts = []
    if init is not None:
        try:
            init.check(d)
            starts.append(np.clip(init.to_vector(settings), lo, hi))
        except (ValueError, TypeError, AttributeError):
            pass
    if not starts or n <= _MAX_N_TWO_STARTS:
        starts.append(default.to_vector(settings))

    best_raw: np.ndarray | None = None
    best_val = math.inf
    for x0 in starts:
        if settings.deterministic_objective:
            x0[d] = lo[d]
        f0, _ = objective(x0)
        if f0 < best_val:
            best_raw, best_val = x0, f0

        def fun(z: np.ndarray, template: np.ndarray = x0) -> tuple[float, np.ndarray]:
            raw = template.copy()
            raw[free] = z
            value, grad = objective(raw)
            if not math.isfinite(value):
                # A large finite value makes the line search backtrack instead of aborting.
                return 1e30, np.zeros(int(free.sum()))
            return value, grad[free]

        try:
            res = scipy.optimize.minimize(
                fun,
                x0[free],
                jac=True,
                method="L-BFGS-B",
                bounds=list(zip(lo[free], hi[free])),
                options={"maxiter": max_iter, "gtol": 1e-3},
            )
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            continue
        raw = x0.copy()
        raw[free] = np.clip(res.x, lo[free], hi[free])
        val, _ = objective(raw)
        if val < best_val:
            best_raw, best_val = raw, val

    params = default if best_raw is None else GPHyperparams.from_vector(best_raw, d, settings)
    if settings.deterministic_objective:
        params = replace(params, noise=settings.min_noise)
    return params
