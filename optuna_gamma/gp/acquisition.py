"""Expected improvement and probability of improvement for Gaussian and Student-t predictives.

For a predictive with location :math:`\\mu`, scale :math:`s` and :math:`\\nu` degrees of freedom,
incumbent :math:`f^*` and trade-off :math:`\\xi \\geq 0`, let
:math:`z = (\\mu - f^* - \\xi) / s`. Then (``docs/design.md`` §2; Jones, Schonlau & Welch
1998, "Efficient global optimization of expensive black-box functions", for the Gaussian case;
thesis eqs. 7-10):

.. math::

    \\mathrm{EI} = s\\, h(z), \\qquad
    h_\\infty(z) = z\\,\\Phi(z) + \\varphi(z), \\qquad
    h_\\nu(z) = z\\,T_\\nu(z) + \\frac{\\nu + z^2}{\\nu - 1}\\, t_\\nu(z) \\ (\\nu > 1),

    \\mathrm{PI} = \\Phi(z) \\ \\text{resp.}\\ T_\\nu(z),

with :math:`T_\\nu, t_\\nu` the standard Student-t CDF and PDF. In both cases
:math:`h'(z) = T_\\nu(z)` (resp. :math:`\\Phi`), so :math:`\\partial\\mathrm{EI}/\\partial\\mu =
T_\\nu(z)` and :math:`\\partial\\mathrm{EI}/\\partial s = h(z) - z h'(z) = \\frac{\\nu+z^2}{\\nu-1}
t_\\nu(z)` (resp. :math:`\\varphi(z)`).

``xi`` is in the units of the standardized objective (the GP's ``y``): ``xi = 0.01`` asks for an
improvement of 1% of the observed standard deviation.

The log versions never return ``-inf`` or flat zeros far from the data, so that gradient-based
maximizers keep a signal (Ament et al. 2023, "Unexpected improvements to expected improvement for
Bayesian optimization", LogEI):

* Gaussian: :math:`\\log h_\\infty(z) = \\log\\varphi(z) + \\log(1 - |z|\\,\\Phi(z)/\\varphi(z))`
  for :math:`z \\le -1` with :math:`\\Phi(z)/\\varphi(z) = \\sqrt{\\pi/2}\\,
  \\mathrm{erfcx}(-z/\\sqrt2)`, and the asymptotic series
  :math:`1 - |z|\\Phi/\\varphi = z^{-2}(1 - 3z^{-2} + 15z^{-4} - \\dots)` below ``z = -200``.
* Student-t: :math:`h_\\nu = A(z)\\,(1 - r(z))` with
  :math:`A = \\frac{\\nu+z^2}{\\nu-1} t_\\nu(z)`,
  :math:`r = |z| T_\\nu(z) / A(z)`; for :math:`z < 0` the tail ratio is
  :math:`T_\\nu(z) / t_\\nu(z) = |z|\\, {}_2F_1(\\tfrac{\\nu+1}2, 1; \\tfrac\\nu2 + 1; x) / \\nu`
  with :math:`x = \\nu / (\\nu + z^2)` (from the hypergeometric form of the incomplete beta
  function, Abramowitz & Stegun 26.5.23/26.7.1), so :math:`\\log T_\\nu` and :math:`\\log h_\\nu`
  stay finite where :math:`T_\\nu` underflows; :math:`1 - r` only falls to about
  :math:`1/\\nu` in the tail, so the subtraction loses at most :math:`\\log_{10}\\nu` digits.
  Degrees of freedom :math:`\\nu \\ge 10^5` use the Gaussian formulas (difference
  :math:`O(1/\\nu)`).

All functions are vectorized over ``loc`` and ``scale`` and raise ``ValueError`` for a
non-positive ``scale``, a non-finite ``best`` or ``xi``, or too few degrees of freedom.
"""

from __future__ import annotations

from dataclasses import dataclass
import functools
import math
from typing import Any
from typing import TYPE_CHECKING

import numpy as np
from scipy import special

from optuna_gamma.gp.settings import AcquisitionKind
from optuna_gamma.gp.threads import limit_blas_threads


if TYPE_CHECKING:
    from collections.abc import Sequence

    from optuna_gamma.gp.model import GaussianProcess

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_SQRT_HALF_PI = math.sqrt(0.5 * math.pi)
_SQRT_HALF = math.sqrt(0.5)
_LOG2 = math.log(2.0)
# Student-t with at least this many degrees of freedom is treated as Gaussian (difference
# O(1/nu) in the body; scipy's hypergeometric tail form is unreliable beyond it).
_GAUSSIAN_DOF = 1e5
# Below this value of T_nu(z), the hypergeometric tail form is used for log T_nu(z).
_T_TAIL = 1e-250
_Z_MAX = 1e100


def _log1mexp(w: np.ndarray) -> np.ndarray:
    """:math:`\\log(1 - e^w)` for :math:`w < 0` (Maechler 2012)."""
    w = np.minimum(w, -1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(w > -_LOG2, np.log(-np.expm1(w)), np.log1p(-np.exp(w)))


def _gauss_logpdf(z: np.ndarray) -> np.ndarray:
    return -0.5 * z * z - _LOG_SQRT_2PI


def _gauss_parts(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian ``(log h, log Phi, Phi / h, phi / h)`` without overflow or cancellation.

    For :math:`z \\le -1`, with the Mills ratio :math:`R = \\Phi/\\varphi = \\sqrt{\\pi/2}\\,
    \\mathrm{erfcx}(-z/\\sqrt2)`, :math:`h = \\varphi\\, q` with :math:`q = 1 - |z| R`
    (Ament et al. 2023, eq. 9), evaluated by its asymptotic series
    :math:`z^{-2}(1 - 3z^{-2} + 15z^{-4} - 105z^{-6})` below ``-200`` where the subtraction would
    cancel.
    """
    log_T = special.log_ndtr(z)
    log_pdf = _gauss_logpdf(z)
    big = z > -1.0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        # z > -1: direct
        cdf = special.ndtr(z)
        pdf = np.exp(log_pdf)
        h = z * cdf + pdf
        # z <= -1: Mills ratio
        R = _SQRT_HALF_PI * special.erfcx(-z * _SQRT_HALF)
        inv_z2 = 1.0 / (z * z)
        series = inv_z2 * (1.0 - inv_z2 * (3.0 - inv_z2 * (15.0 - 105.0 * inv_z2)))
        q = np.where(z < -200.0, series, 1.0 + z * R)
        log_h = np.where(big, np.log(h), log_pdf + np.log(q))
        T_over_h = np.where(big, cdf / h, R / q)
        A_over_h = np.where(big, pdf / h, 1.0 / q)
    return log_h, log_T, T_over_h, A_over_h


def _gauss_log_pi_and_hazard(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log Phi(z), phi(z) / Phi(z))``; the hazard uses the Mills ratio for ``z < -1``."""
    log_T = special.log_ndtr(z)
    with np.errstate(over="ignore", divide="ignore"):
        hazard = np.where(
            z > -1.0,
            np.exp(_gauss_logpdf(z) - log_T),
            1.0 / (_SQRT_HALF_PI * special.erfcx(-z * _SQRT_HALF)),
        )
    return log_T, hazard


@functools.lru_cache(maxsize=64)
def _t_log_const(nu: float) -> float:
    return float(
        special.gammaln(0.5 * (nu + 1.0))
        - special.gammaln(0.5 * nu)
        - 0.5 * math.log(nu * math.pi)
    )


def _t_logpdf(z: np.ndarray, nu: float) -> np.ndarray:
    return _t_log_const(nu) - 0.5 * (nu + 1.0) * np.log1p(z * z / nu)


def _t_log_cdf_raw(z: np.ndarray, nu: float) -> tuple[np.ndarray, np.ndarray]:
    """``(T_nu(-|z|), log T_nu(z))`` from scipy; ``log1p(-T_nu(-z))`` for ``z > 0``.

    The first output equals ``T_nu(z)`` wherever ``z <= 0`` (where the tail form may be needed).
    """
    lower = special.stdtr(nu, -np.abs(z))
    with np.errstate(divide="ignore"):
        log_T = np.where(z > 0.0, np.log1p(-lower), np.log(lower))
    return lower, log_T


def _t_tail_F(z: np.ndarray, nu: float) -> np.ndarray:
    """:math:`{}_2F_1(\\tfrac{\\nu+1}2, 1; \\tfrac\\nu2+1; \\nu/(\\nu+z^2))`, so that
    :math:`T_\\nu(z) = t_\\nu(z)\\, |z| F / \\nu` for :math:`z < 0`."""
    x = nu / (nu + z * z)
    return special.hyp2f1(0.5 * (nu + 1.0), 1.0, 0.5 * nu + 1.0, x)


def _t_log_pi_and_hazard(z: np.ndarray, nu: float) -> tuple[np.ndarray, np.ndarray]:
    """``(log T_nu(z), t_nu(z) / T_nu(z))``, finite for every finite ``z``."""
    log_t = _t_logpdf(z, nu)
    cdf, log_T = _t_log_cdf_raw(z, nu)
    with np.errstate(over="ignore"):
        hazard = np.exp(log_t - log_T)
    tail = (cdf < _T_TAIL) & (z < 0.0)
    if tail.any():
        zt = z[tail]
        ratio = np.abs(zt) * _t_tail_F(zt, nu) / nu  # T / t
        log_T[tail] = log_t[tail] + np.log(ratio)
        hazard[tail] = 1.0 / ratio
    return log_T, hazard


def _t_parts(z: np.ndarray, nu: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Student-t ``(log h, log T, T / h, A / h)``, ``A = (nu + z^2)/(nu - 1) t_nu(z)``.

    With :math:`u = \\log(|z| T / A)`: :math:`\\log h = \\log A + \\log(1 + e^u)` for
    :math:`z \\ge 0` and :math:`\\log A + \\log(1 - e^u)` for :math:`z < 0`, where
    :math:`r = e^u \\in (0, 1 - 1/\\nu]`; in the far tail
    :math:`r = z^2 F (\\nu - 1) / (\\nu (\\nu + z^2))` (:func:`_t_tail_F`).
    """
    log_t = _t_logpdf(z, nu)
    log_A = np.log((nu + z * z) / (nu - 1.0)) + log_t
    cdf, log_T = _t_log_cdf_raw(z, nu)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        u = np.log(np.abs(z)) + log_T - log_A
        log_h = log_A + np.where(z >= 0.0, np.logaddexp(0.0, u), _log1mexp(u))
        T_over_h = np.exp(log_T - log_h)
        A_over_h = np.exp(log_A - log_h)
    tail = (cdf < _T_TAIL) & (z < 0.0)
    if tail.any():
        zt = z[tail]
        F = _t_tail_F(zt, nu)
        z2 = zt * zt
        r = z2 * F * (nu - 1.0) / (nu * (nu + z2))
        one_minus_r = 1.0 - r
        log_T[tail] = log_t[tail] + np.log(-zt * F / nu)
        log_h[tail] = log_A[tail] + np.log(one_minus_r)
        A_over_h[tail] = 1.0 / one_minus_r
        T_over_h[tail] = r / (-zt * one_minus_r)
    return log_h, log_T, T_over_h, A_over_h


def _prepare(
    loc: np.ndarray, scale: np.ndarray, best: float | np.ndarray, xi: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    loc = np.asarray(loc, dtype=float)
    scale = np.asarray(scale, dtype=float)
    if loc.shape != scale.shape:
        loc, scale = np.broadcast_arrays(loc, scale)
    if not (scale > 0.0).all():
        raise ValueError(f"scale must be positive, got min {np.min(scale)!r}.")
    # math.isfinite for the usual float: np.all(np.isfinite(...)) took 3 us of every call
    if not (math.isfinite(best) if isinstance(best, float) else np.isfinite(best).all()):
        raise ValueError(f"best must be finite, got {best!r}.")
    if not math.isfinite(xi):
        raise ValueError(f"xi must be finite, got {xi!r}.")
    # |z| beyond 1e100 carries no information and would overflow z**2.
    z = np.minimum(np.maximum((loc - best - xi) / scale, -_Z_MAX), _Z_MAX)
    return loc, scale, z


def _check_dof(dof: float, minimum: float, what: str) -> bool:
    """Return True if the Gaussian formulas apply."""
    if math.isnan(dof) or dof <= minimum:
        raise ValueError(f"{what} needs dof > {minimum:g}, got {dof!r}.")
    return dof >= _GAUSSIAN_DOF


def expected_improvement(
    loc: np.ndarray, scale: np.ndarray, best: float, *, xi: float = 0.0, dof: float = math.inf
) -> np.ndarray:
    """Expected improvement :math:`E[\\max(f - f^* - \\xi, 0)]` (module docstring).

    Args:
        loc: Predictive location :math:`\\mu`.
        scale: Predictive scale :math:`s > 0`.
        best: Incumbent :math:`f^*` (larger is better).
        xi: Trade-off :math:`\\xi`, in the units of ``loc`` (standardized objective).
        dof: Degrees of freedom :math:`\\nu > 1`; ``math.inf`` for the Gaussian.

    Returns:
        EI, broadcast shape of ``loc`` and ``scale``; may underflow to 0 (see the log version).
    """
    loc, scale, z = _prepare(loc, scale, best, xi)
    gaussian = _check_dof(dof, 1.0, "expected_improvement")
    diff = loc - best - xi
    if gaussian:
        ei = diff * special.ndtr(z) + scale * np.exp(_gauss_logpdf(z))
    else:
        ei = diff * special.stdtr(dof, z) + scale * (dof + z * z) / (dof - 1.0) * np.exp(
            _t_logpdf(z, dof)
        )
    return np.maximum(ei, 0.0)


def probability_of_improvement(
    loc: np.ndarray, scale: np.ndarray, best: float, *, xi: float = 0.0, dof: float = math.inf
) -> np.ndarray:
    """Probability of improvement :math:`P(f > f^* + \\xi)`, i.e. :math:`\\Phi(z)` or
    :math:`T_\\nu(z)`.

    Args: as :func:`expected_improvement` (``dof > 0``).
    """
    _, _, z = _prepare(loc, scale, best, xi)
    if _check_dof(dof, 0.0, "probability_of_improvement"):
        return special.ndtr(z)
    return special.stdtr(dof, z)


def _log_ei_and_grads(
    loc: np.ndarray, scale: np.ndarray, best: float, xi: float, dof: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log EI`` and its partial derivatives w.r.t. ``loc`` and ``scale``."""
    loc, scale, z = _prepare(loc, scale, best, xi)
    if _check_dof(dof, 1.0, "expected_improvement"):
        log_h, _, T_over_h, A_over_h = _gauss_parts(z)
    else:
        log_h, _, T_over_h, A_over_h = _t_parts(z, dof)
    # d EI / d loc = T(z), d EI / d scale = A(z); divide by EI = scale * h.
    return np.log(scale) + log_h, T_over_h / scale, A_over_h / scale


def _log_pi_and_grads(
    loc: np.ndarray, scale: np.ndarray, best: float, xi: float, dof: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log PI`` and its partial derivatives w.r.t. ``loc`` and ``scale``."""
    loc, scale, z = _prepare(loc, scale, best, xi)
    if _check_dof(dof, 0.0, "probability_of_improvement"):
        log_T, hazard = _gauss_log_pi_and_hazard(z)
    else:
        log_T, hazard = _t_log_pi_and_hazard(z, dof)
    # hazard = d log T / dz; dz/dloc = 1/scale, dz/dscale = -z/scale.
    return log_T, hazard / scale, -hazard * z / scale


def log_expected_improvement(
    loc: np.ndarray, scale: np.ndarray, best: float, *, xi: float = 0.0, dof: float = math.inf
) -> np.ndarray:
    """Numerically stable :math:`\\log \\mathrm{EI}`, finite for all finite inputs.

    Args: as :func:`expected_improvement`.
    """
    return _log_ei_and_grads(loc, scale, best, xi, dof)[0]


def log_probability_of_improvement(
    loc: np.ndarray, scale: np.ndarray, best: float, *, xi: float = 0.0, dof: float = math.inf
) -> np.ndarray:
    """Numerically stable :math:`\\log \\mathrm{PI}`, finite for all finite inputs.

    Args: as :func:`probability_of_improvement`.
    """
    return _log_pi_and_grads(loc, scale, best, xi, dof)[0]


@dataclass(frozen=True)
class Feasibility:
    """A constraint's model: a GP of ``g`` (larger is more feasible) and the feasibility
    threshold ``t`` in its units; the constraint holds where ``g(x) >= t``.

    Its term in the acquisition is :math:`\\log P(g(x) \\ge t) = \\log T_\\nu((\\mu_g - t)/s_g)`
    (resp. :math:`\\Phi`), the probability of feasibility under the GP's own predictive
    (Gardner et al. 2014, "Bayesian optimization with inequality constraints").
    """

    gp: GaussianProcess
    threshold: float


class _LogAcquisition:
    """The log acquisition of the objective plus the log probability of feasibility of each
    constraint (constraints and objective independent, as in Gardner et al. 2014 and Optuna's
    ``GPSampler``); subclasses give the objective's term."""

    best: Any
    constraints: tuple[Feasibility, ...]

    def _objective_terms(
        self, X: np.ndarray, with_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    @limit_blas_threads()
    def __call__(self, X: np.ndarray) -> np.ndarray:
        """Log acquisition at ``X`` ``(m, d)``; returns ``(m,)``."""
        X = np.asarray(X, dtype=float)
        if not self.constraints and self.best is not None:
            return self._objective_terms(X, with_grad=False)[0]
        total = np.zeros(X.shape[0])
        if self.best is not None:
            total += self._objective_terms(X, with_grad=False)[0]
        for c in self.constraints:
            loc, scale = c.gp.predict(X)
            total += _log_pi_and_grads(loc, scale, c.threshold, 0.0, float(c.gp.dof))[0]
        return total

    @limit_blas_threads()
    def value_and_grad(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log acquisition ``(m,)`` and its gradient w.r.t. ``X`` ``(m, d)`` (zero on
        categorical dimensions)."""
        X = np.asarray(X, dtype=float)
        if not self.constraints and self.best is not None:
            value, g = self._objective_terms(X, with_grad=True)
            assert g is not None
            return value, g
        total = np.zeros(X.shape[0])
        grad = np.zeros(X.shape)
        if self.best is not None:
            value, g = self._objective_terms(X, with_grad=True)
            assert g is not None
            total += value
            grad += g
        for c in self.constraints:
            loc, scale, dloc, dscale = c.gp.predict_and_grad(X)
            value, d_loc, d_scale = _log_pi_and_grads(
                loc, scale, c.threshold, 0.0, float(c.gp.dof)
            )
            total += value
            grad += d_loc[:, None] * dloc + d_scale[:, None] * dscale
        return total, grad


class Acquisition(_LogAcquisition):
    """Log acquisition function of a fitted GP, with gradients for the optimizer.

    Values are :math:`\\log\\mathrm{EI}(x)` or :math:`\\log\\mathrm{PI}(x)` of the GP's predictive
    (Student-t with ``gp.dof`` degrees of freedom, Gaussian when ``gp.dof`` is infinite), plus
    :math:`\\sum_i \\log P(\\text{constraint } i \\text{ holds at } x)` over the ``constraints``
    (constraints and objective modelled as independent, as in Gardner et al. 2014 and Optuna's
    ``GPSampler``); gradients w.r.t. ``X`` follow by the chain rule through
    :meth:`~optuna_gamma.gp.model.GaussianProcess.predict_and_grad` (zero on categorical dims).

    Args:
        gp: The fitted GP of the objective.
        kind: ``"ei"`` or ``"pi"``.
        best: Incumbent :math:`f^*` in the GP's standardized units; ``None`` when no
            observation is feasible yet (then only the feasibility terms count).
        xi: Trade-off :math:`\\xi \\ge 0` in standardized units.
        constraints: Feasibility models of the constraints.
    """

    def __init__(
        self,
        gp: GaussianProcess,
        *,
        kind: AcquisitionKind = "ei",
        best: float | None,
        xi: float = 0.0,
        constraints: Sequence[Feasibility] = (),
    ) -> None:
        if kind not in ("ei", "pi"):
            raise ValueError(f"kind must be 'ei' or 'pi', got {kind!r}.")
        xi = float(xi)
        if best is not None:
            best = float(best)
            if not math.isfinite(best):
                raise ValueError(f"best must be finite or None, got {best!r}.")
        if not math.isfinite(xi):
            raise ValueError(f"xi must be finite, got {xi!r}.")
        if best is None and not constraints:
            raise ValueError("best may be None only when there are constraints.")
        self.gp = gp
        self.kind = kind
        self.best = best
        self.xi = xi
        self.dof = float(gp.dof)
        self.constraints = tuple(constraints)
        #: The GP's lengthscales (for the optimizer's preconditioning).
        self.lengthscales = 1.0 / np.sqrt(np.asarray(gp.params.inv_sq_lengthscales, dtype=float))
        self._fn = _log_ei_and_grads if kind == "ei" else _log_pi_and_grads
        if best is not None:
            # Fail here, not inside the optimizer, when the dof do not allow EI / PI.
            _check_dof(self.dof, 1.0 if kind == "ei" else 0.0, f"{kind.upper()}")

    def _objective_terms(
        self, X: np.ndarray, with_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        if not with_grad:
            loc, scale = self.gp.predict(X)
            return self._fn(loc, scale, self.best, self.xi, self.dof)[0], None
        loc, scale, dloc, dscale = self.gp.predict_and_grad(X)
        value, d_loc, d_scale = self._fn(loc, scale, self.best, self.xi, self.dof)
        return value, d_loc[:, None] * dloc + d_scale[:, None] * dscale


class FantasyAcquisition(_LogAcquisition):
    """Log of the Expected Improvement averaged over fantasies of the pending points.

    With ``S`` joint draws :math:`f^{(s)}` of the objective at the pending points (from the GP's
    joint Student-t predictive) and the GP conditioned on each (:class:`~optuna_gamma.gp.model.
    Fantasies`), the value is

    .. math::

        \\log \\frac1S \\sum_s \\mathrm{EI}_s(x), \\qquad f^*_s = \\max(f^*, \\max_j f^{(s)}_j),

    i.e. the EI of :math:`x` taken jointly with the pending points (greedy q-EI, the expected
    improvement of the batch minus that of the pending points alone; Snoek et al. 2012,
    sec. 3.3; Optuna's ``qLogEI`` does the same with Gaussian draws), plus the feasibility terms
    of the constraints as in :class:`Acquisition`.

    Args:
        fantasies: The GP conditioned on each draw.
        best: The incumbent :math:`f^*` of the observations (``None``: no feasible one).
        draws: The draws ``(S, p)`` (their maxima raise the per-draw incumbent).
        xi: Trade-off :math:`\\xi`.
        constraints: Feasibility models of the constraints.
    """

    def __init__(
        self,
        fantasies: Any,
        *,
        best: float | None,
        draws: np.ndarray,
        xi: float = 0.0,
        constraints: Sequence[Feasibility] = (),
    ) -> None:
        self.fantasies = fantasies
        self.xi = float(xi)
        top = np.max(np.atleast_2d(draws), axis=1)
        self.best = None if best is None else np.maximum(float(best), top)
        self.dof = float(fantasies.dof)
        self.constraints = tuple(constraints)
        params = fantasies.base.params
        self.lengthscales = 1.0 / np.sqrt(np.asarray(params.inv_sq_lengthscales, dtype=float))
        if self.best is not None:
            _check_dof(self.dof, 1.0, "EI")
        elif not self.constraints:
            raise ValueError("best may be None only when there are constraints.")

    def _objective_terms(
        self, X: np.ndarray, with_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        S = self.fantasies.n_draws
        if with_grad:
            loc, scale, dloc, dscale = self.fantasies.predict_and_grad(X)
        else:
            loc, scale = self.fantasies.predict(X)
        log_ei, d_loc, d_scale = _log_ei_and_grads(loc, scale, self.best, self.xi, self.dof)
        top = np.max(log_ei, axis=1, keepdims=True)
        w = np.exp(log_ei - top)
        total = w.sum(axis=1)
        value = top[:, 0] + np.log(total) - math.log(S)
        if not with_grad:
            return value, None
        w /= total[:, None]  # softmax weights of the draws
        grad = np.einsum("ms,msd->md", w * d_loc, dloc)
        grad += np.einsum("ms,msd->md", w * d_scale, dscale)
        return value, grad
