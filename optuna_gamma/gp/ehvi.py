"""Expected hypervolume improvement of independent Student-t (or Gaussian) predictives.

Objectives are in the GP's units (larger is better), one GP per objective. Let the part of the
objective space that the current front does not dominate (above the reference point) be the
disjoint union of boxes :math:`[l_b, u_b)` (:func:`~optuna_gamma.samplers._pareto.
non_dominated_boxes`, sign-flipped; :math:`u` may be :math:`+\\infty`). A new point with values
:math:`Y` improves the hypervolume by

.. math::

    \\mathrm{HVI}(Y) = \\sum_b \\prod_j \\big(\\min(Y_j, u_{bj}) - l_{bj}\\big)^+ ,

and since :math:`(\\min(Y, u) - l)^+ = (Y - l)^+ - (Y - u)^+`, with independent objectives
(one GP each, each with its own Gamma-distributed precision, so the marginals are independent
Student-t's)

.. math::

    \\mathrm{EHVI} = \\sum_b \\prod_j \\big(\\mathrm{EI}_j(l_{bj}) - \\mathrm{EI}_j(u_{bj})\\big),
    \\qquad \\mathrm{EI}_j(c) = E[(Y_j - c)^+] = s_j\\, h_{\\nu_j}((\\mu_j - c)/s_j),

the Student-t EI of :mod:`~optuna_gamma.gp.acquisition` at the box bounds
(:math:`\\mathrm{EI}(+\\infty) = 0`). This is exact for any number of objectives, not a Monte
Carlo estimate (the closed form of Emmerich et al. 2006 / Yang et al. 2019 for Gaussians, which
holds for any marginals because the expectation of a product of independent factors is the
product of their expectations). The value is returned as its logarithm: each factor is
:math:`\\log\\mathrm{EI}(l) + \\log(1 - e^{\\log\\mathrm{EI}(u) - \\log\\mathrm{EI}(l)})`,
or, where the two nearly cancel (a box thin against the predictive scale), the mid-point rule
:math:`\\log(u - l) + \\log P(Y > (l+u)/2)`; the boxes are summed with log-sum-exp. So the
value stays finite (and its gradient informative) where the EHVI underflows.
"""

from __future__ import annotations

from collections.abc import Sequence
import math
from typing import cast
from typing import TYPE_CHECKING

import numpy as np

from optuna_gamma.gp.acquisition import _log1mexp
from optuna_gamma.gp.acquisition import _log_ei_and_grads
from optuna_gamma.gp.acquisition import _log_pi_and_grads
from optuna_gamma.gp.acquisition import _LogAcquisition
from optuna_gamma.gp.acquisition import Feasibility


if TYPE_CHECKING:
    from optuna_gamma.gp.model import GaussianProcess


__all__ = [
    "ExpectedHypervolumeImprovement",
    "log_expected_hypervolume_improvement",
    "log_interval_gain",
]

# Below this relative gap 1 - EI(u)/EI(l), the mid-point rule replaces the difference.
_CANCELLATION = 1e-4


def log_interval_gain(
    loc: np.ndarray, scale: np.ndarray, lower: np.ndarray, upper: np.ndarray, dof: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:math:`\\log E[(\\min(Y, u) - l)^+]` for :math:`Y = \\mu + s T_\\nu` and its partial
    derivatives w.r.t. ``loc`` and ``scale``.

    Args:
        loc, scale: ``(M,)`` predictive location and scale.
        lower, upper: ``(G,)`` interval bounds, ``lower`` finite, ``upper > lower`` (may be
            ``inf``).
        dof: Degrees of freedom (``> 1``; ``inf`` for the Gaussian).

    Returns:
        Three ``(M, G)`` arrays: the log gain, d/d loc and d/d scale of the log gain.
    """
    loc = np.asarray(loc, dtype=float)[:, None]
    scale = np.asarray(scale, dtype=float)[:, None]
    lower = np.asarray(lower, dtype=float)
    upper = np.asarray(upper, dtype=float)
    finite = np.isfinite(upper)
    # one evaluation per distinct bound (boxes share them: an upper bound is often another
    # box's lower bound); the incumbents broadcast, one per column
    bounds, index = np.unique(np.concatenate([lower, upper[finite]]), return_inverse=True)
    index = np.asarray(index).ravel()
    v, v_mu, v_s = _log_ei_and_grads(loc, scale, cast(float, bounds[None, :]), 0.0, dof)
    il = index[: len(lower)]
    a, a_mu, a_s = v[:, il], v_mu[:, il], v_s[:, il]
    shape = a.shape
    b = np.full(shape, -np.inf)
    b_mu = np.zeros(shape)
    b_s = np.zeros(shape)
    if finite.any():
        iu = index[len(lower) :]
        b[:, finite], b_mu[:, finite], b_s[:, finite] = v[:, iu], v_mu[:, iu], v_s[:, iu]
    delta = np.minimum(b - a, 0.0)
    r = np.exp(delta)
    with np.errstate(divide="ignore", invalid="ignore"):
        one_minus_r = -np.expm1(delta)
        value = a + _log1mexp(delta)
        d_mu = (a_mu - r * b_mu) / one_minus_r
        d_s = (a_s - r * b_s) / one_minus_r
    thin = one_minus_r < _CANCELLATION
    if np.any(thin):
        cols = np.flatnonzero(thin.any(axis=0))
        width = upper[cols] - lower[cols]
        mid = lower[cols] + 0.5 * width
        p, p_mu, p_s = _log_pi_and_grads(loc, scale, cast(float, mid[None, :]), 0.0, dof)
        sub = thin[:, cols]
        value[:, cols] = np.where(sub, np.log(width)[None, :] + p, value[:, cols])
        d_mu[:, cols] = np.where(sub, p_mu, d_mu[:, cols])
        d_s[:, cols] = np.where(sub, p_s, d_s[:, cols])
    return value, d_mu, d_s


class ExpectedHypervolumeImprovement(_LogAcquisition):
    """Log EHVI (module docstring) times the probability of feasibility of each constraint.

    Args:
        gps: One fitted GP per objective (larger is better), each with ``dof > 1``.
        lower, upper: ``(B, m)`` the non-dominated boxes in the GPs' units (``upper`` may be
            ``inf``); ``None`` when no observation is feasible yet (then only the feasibility
            terms count).
        constraints: Feasibility models of the constraints.
    """

    def __init__(
        self,
        gps: Sequence[GaussianProcess],
        lower: np.ndarray | None,
        upper: np.ndarray | None,
        *,
        constraints: Sequence[Feasibility] = (),
    ) -> None:
        self.gps = tuple(gps)
        self.constraints = tuple(constraints)
        self.best = None
        if lower is not None and upper is not None:
            lower = np.asarray(lower, dtype=float)
            upper = np.asarray(upper, dtype=float)
            if lower.ndim != 2 or lower.shape != upper.shape or lower.shape[1] != len(gps):
                raise ValueError(
                    f"lower and upper must have shape (B, {len(gps)}), got {lower.shape} and "
                    f"{upper.shape}."
                )
            if not (np.all(np.isfinite(lower)) and np.all(upper > lower)):
                raise ValueError("boxes must have finite lower bounds below their upper bounds.")
            self.best = (lower, upper)
            # per objective: the distinct (lower, upper) pairs and each box's pair
            self._pairs = []
            for j in range(len(gps)):
                pairs, inverse = np.unique(
                    np.stack([lower[:, j], upper[:, j]], axis=1), axis=0, return_inverse=True
                )
                self._pairs.append((pairs, np.asarray(inverse).ravel()))
            for gp in self.gps:
                if math.isnan(gp.dof) or gp.dof <= 1.0:
                    raise ValueError(f"EHVI needs dof > 1, got {gp.dof!r}.")
        elif not self.constraints:
            raise ValueError("The boxes may be None only when there are constraints.")
        # The optimizer's preconditioning: the objectives' mean lengthscales (as Optuna's
        # GPSampler does for its log EHVI).
        self.lengthscales = np.mean(
            [1.0 / np.sqrt(np.asarray(gp.params.inv_sq_lengthscales, dtype=float)) for gp in gps],
            axis=0,
        )

    def _objective_terms(
        self, X: np.ndarray, with_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        total: np.ndarray | None = None
        parts = []
        for gp, (pairs, inverse) in zip(self.gps, self._pairs):
            dloc: np.ndarray | None = None
            dscale: np.ndarray | None = None
            if with_grad:
                loc, scale, dloc, dscale = gp.predict_and_grad(X)
            else:
                loc, scale = gp.predict(X)
            value, d_mu, d_s = log_interval_gain(loc, scale, pairs[:, 0], pairs[:, 1], gp.dof)
            term = value[:, inverse]  # (M, B)
            total = term if total is None else total + term
            parts.append((d_mu[:, inverse], d_s[:, inverse], dloc, dscale))
        assert total is not None
        top = np.max(total, axis=1, keepdims=True)
        w = np.exp(total - top)
        s = w.sum(axis=1)
        log_ehvi = top[:, 0] + np.log(s)
        if not with_grad:
            return log_ehvi, None
        w /= s[:, None]
        grad = np.zeros(X.shape)
        for d_mu, d_s, dloc, dscale in parts:
            assert dloc is not None and dscale is not None
            grad += (w * d_mu).sum(axis=1)[:, None] * dloc
            grad += (w * d_s).sum(axis=1)[:, None] * dscale
        return log_ehvi, grad


def log_expected_hypervolume_improvement(
    loc: np.ndarray,
    scale: np.ndarray,
    dof: Sequence[float],
    lower: np.ndarray,
    upper: np.ndarray,
) -> np.ndarray:
    """Log EHVI of independent predictives (module docstring), without a GP.

    Args:
        loc, scale: ``(M, m)`` locations and scales of the ``m`` objectives (larger is better).
        dof: The ``m`` degrees of freedom (``> 1``; ``inf`` for Gaussians).
        lower, upper: ``(B, m)`` non-dominated boxes (``upper`` may be ``inf``).

    Returns:
        ``(M,)`` log EHVI.
    """
    loc = np.atleast_2d(np.asarray(loc, dtype=float))
    scale = np.atleast_2d(np.asarray(scale, dtype=float))
    total = np.zeros((loc.shape[0], len(lower)))
    for j in range(loc.shape[1]):
        total += log_interval_gain(loc[:, j], scale[:, j], lower[:, j], upper[:, j], dof[j])[0]
    top = np.max(total, axis=1, keepdims=True)
    return top[:, 0] + np.log(np.exp(total - top).sum(axis=1))
