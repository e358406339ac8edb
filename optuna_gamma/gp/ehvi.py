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


def _bound_table(
    lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct bounds (lower ones and finite upper ones) and, per interval, the index of
    its lower and upper bound among them (``-1`` for an infinite upper bound)."""
    finite = np.isfinite(upper)
    bounds, index = np.unique(np.concatenate([lower, upper[finite]]), return_inverse=True)
    index = np.asarray(index).ravel()
    il = index[: len(lower)]
    iu = np.full(len(upper), -1)
    iu[finite] = index[len(lower) :]
    return bounds, il, iu


def _interval_gain(
    v: tuple[np.ndarray, np.ndarray, np.ndarray],
    il: np.ndarray,
    iu: np.ndarray,
    loc: np.ndarray,
    scale: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    dof: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log gains ``(M, G)`` and their derivatives from the log EI ``v`` (value, d/d loc,
    d/d scale) at the bounds; ``loc``/``scale`` broadcast to ``(M, G)`` (for the mid-point
    rule)."""
    value_b, mu_b, s_b = v
    a, a_mu, a_s = value_b[:, il], mu_b[:, il], s_b[:, il]
    finite = iu >= 0
    b = np.full(a.shape, -np.inf)
    b_mu = np.zeros(a.shape)
    b_s = np.zeros(a.shape)
    if finite.any():
        j = iu[finite]
        b[:, finite], b_mu[:, finite], b_s[:, finite] = value_b[:, j], mu_b[:, j], s_b[:, j]
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
        shape = (a.shape[0], len(il))
        loc_c = np.broadcast_to(loc, shape)[:, cols]
        scale_c = np.broadcast_to(scale, shape)[:, cols]
        p, p_mu, p_s = _log_pi_and_grads(loc_c, scale_c, cast(float, mid[None, :]), 0.0, dof)
        sub = thin[:, cols]
        value[:, cols] = np.where(sub, np.log(width)[None, :] + p, value[:, cols])
        d_mu[:, cols] = np.where(sub, p_mu, d_mu[:, cols])
        d_s[:, cols] = np.where(sub, p_s, d_s[:, cols])
    return value, d_mu, d_s


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
    # one evaluation per distinct bound (boxes share them: an upper bound is often another
    # box's lower bound); the incumbents broadcast, one per column
    bounds, il, iu = _bound_table(lower, upper)
    v = _log_ei_and_grads(loc, scale, cast(float, bounds[None, :]), 0.0, dof)
    return _interval_gain(v, il, iu, loc, scale, lower, upper, dof)


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
            # all objectives' distinct (lower, upper) pairs side by side (each box's pair per
            # objective indexes them), and the distinct bounds of each objective side by side
            pair_rows, bound_rows, self._box_pairs = [], [], []
            n_pairs = n_bounds = 0
            il_all, iu_all = [], []
            for j in range(len(gps)):
                pairs, inverse = np.unique(
                    np.stack([lower[:, j], upper[:, j]], axis=1), axis=0, return_inverse=True
                )
                bounds, il, iu = _bound_table(pairs[:, 0], pairs[:, 1])
                self._box_pairs.append(n_pairs + np.asarray(inverse).ravel())
                pair_rows.append(np.column_stack([pairs, np.full(len(pairs), j)]))
                bound_rows.append(np.column_stack([bounds, np.full(len(bounds), j)]))
                il_all.append(n_bounds + il)
                iu_all.append(np.where(iu >= 0, n_bounds + iu, -1))
                n_pairs += len(pairs)
                n_bounds += len(bounds)
            pair_table = np.vstack(pair_rows)
            bound_table = np.vstack(bound_rows)
            self._pair_lower, self._pair_upper = pair_table[:, 0], pair_table[:, 1]
            self._pair_objective = pair_table[:, 2].astype(int)
            self._bounds = bound_table[:, 0]
            self._bound_objective = bound_table[:, 1].astype(int)
            self._il = np.concatenate(il_all)
            self._iu = np.concatenate(iu_all)
            # objectives with equal degrees of freedom (the usual case: all) share one call
            dofs = [float(gp.dof) for gp in self.gps]
            groups = (
                [np.arange(len(gps))]
                if all(d == dofs[0] for d in dofs)
                else [np.array([j]) for j in range(len(gps))]
            )
            self._groups = []
            for group in groups:
                b_cols = np.flatnonzero(np.isin(self._bound_objective, group))
                p_cols = np.flatnonzero(np.isin(self._pair_objective, group))
                position = np.full(len(self._bounds), -1)
                position[b_cols] = np.arange(len(b_cols))
                iu = self._iu[p_cols]
                self._groups.append(
                    (
                        dofs[int(group[0])],
                        b_cols,
                        p_cols,
                        self._bound_objective[b_cols],
                        self._pair_objective[p_cols],
                        position[self._il[p_cols]],
                        np.where(iu >= 0, position[np.maximum(iu, 0)], -1),
                    )
                )
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
        m = len(self.gps)
        locs, scales, dlocs, dscales = [], [], [], []
        for gp in self.gps:
            if with_grad:
                loc, scale, dloc, dscale = gp.predict_and_grad(X)
                dlocs.append(dloc)
                dscales.append(dscale)
            else:
                loc, scale = gp.predict(X)
            locs.append(loc)
            scales.append(scale)
        L, S = np.stack(locs, axis=1), np.stack(scales, axis=1)  # (M, m)
        value = np.empty((X.shape[0], len(self._pair_lower)))
        d_mu = np.empty_like(value)
        d_s = np.empty_like(value)
        for dof, b_cols, p_cols, ob, op, il, iu in self._groups:
            v = _log_ei_and_grads(L[:, ob], S[:, ob], cast(float, self._bounds[b_cols]), 0.0, dof)
            gains = _interval_gain(
                v,
                il,
                iu,
                L[:, op],
                S[:, op],
                self._pair_lower[p_cols],
                self._pair_upper[p_cols],
                dof,
            )
            value[:, p_cols], d_mu[:, p_cols], d_s[:, p_cols] = gains
        total = value[:, self._box_pairs[0]]
        for j in range(1, m):
            total = total + value[:, self._box_pairs[j]]
        top = np.max(total, axis=1, keepdims=True)
        w = np.exp(total - top)
        sw = w.sum(axis=1)
        log_ehvi = top[:, 0] + np.log(sw)
        if not with_grad:
            return log_ehvi, None
        w /= sw[:, None]
        grad = np.zeros(X.shape)
        for j in range(m):
            cols = self._box_pairs[j]
            grad += (w * d_mu[:, cols]).sum(axis=1)[:, None] * dlocs[j]
            grad += (w * d_s[:, cols]).sum(axis=1)[:, None] * dscales[j]
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
