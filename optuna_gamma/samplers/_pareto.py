"""Pareto fronts, hypervolume and the box decomposition of the non-dominated region.

Everything here is in the *minimization* convention (smaller is better in every objective) with a
reference point ``ref`` that bounds the region from above. Optuna has no public hypervolume
function (``optuna._hypervolume`` is private), so these are written out:

* :func:`pareto_mask`: the non-dominated rows (a sweep for two objectives, pairwise otherwise);
* :func:`non_dominated_boxes`: disjoint boxes whose union is the part of
  :math:`\\{z \\le \\mathrm{ref}\\}` that no point of the set weakly dominates. The grid of the
  points' coordinates in the first ``m - 1`` objectives cuts that space into cells; inside a
  cell the points that dominate it in those objectives are the same everywhere, so the cell's
  non-dominated part is one box, unbounded below in the last objective and bounded above by
  the smallest last coordinate of those points (or ``ref``). Runs of cells along the
  ``(m-1)``-th objective with the same bound are merged. Two objectives give the usual
  ``k + 1`` boxes of a ``k``-point front; ``m`` objectives at most :math:`(k+1)^{m-1}` (fine
  for three or four objectives and fronts of tens of points, the sampler's use);
* :func:`hypervolume`: the volume of the dominated part of :math:`\\{z \\le \\mathrm{ref}\\}`
  (the same grid; a sweep for two objectives, so a front of 10^5 points is fast).

Boxes have ``-inf`` lower bounds where they are unbounded below.
"""

from __future__ import annotations

import numpy as np


__all__ = ["hypervolume", "non_dominated_boxes", "pareto_mask"]


def pareto_mask(loss: np.ndarray) -> np.ndarray:
    """``(n,)`` True for the rows of ``loss`` ``(n, m)`` that no other row dominates (smaller is
    better; of equal rows, the first is kept)."""
    loss = np.asarray(loss, dtype=float)
    n = loss.shape[0]
    if n == 0:
        return np.zeros(0, dtype=bool)
    if loss.shape[1] == 2:
        order = np.lexsort((loss[:, 1], loss[:, 0]))
        best = np.minimum.accumulate(loss[order, 1])
        # a row is on the front iff its second value is below every earlier one's
        keep = np.empty(n, dtype=bool)
        keep[0] = True
        keep[1:] = loss[order[1:], 1] < best[:-1]
        mask = np.zeros(n, dtype=bool)
        mask[order[keep]] = True
        return mask
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        if not mask[i]:
            continue
        weakly = np.all(loss <= loss[i], axis=1)
        strictly = np.any(loss < loss[i], axis=1)
        if np.any(weakly & strictly):
            mask[i] = False
            continue
        # drop what row i dominates, and its later duplicates
        dominated = np.all(loss[i] <= loss, axis=1) & (np.any(loss[i] < loss, axis=1))
        duplicate = np.all(loss == loss[i], axis=1)
        duplicate[: i + 1] = False
        mask &= ~(dominated | duplicate)
    return mask


def _front_below(loss: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """The distinct non-dominated rows strictly below ``ref``."""
    loss = np.asarray(loss, dtype=float).reshape(-1, len(ref))
    loss = loss[np.all(loss < ref, axis=1)]
    return loss[pareto_mask(loss)]


def _cell_bounds(front: np.ndarray, ref: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Grid coordinates of the first ``m - 1`` objectives (``-inf``, the points' values,
    ``ref``) and, per cell, the upper bound of its non-dominated part in the last objective
    (shape: the grid's cell counts)."""
    m = front.shape[1]
    coords = [np.concatenate([[-np.inf], np.unique(front[:, j]), [ref[j]]]) for j in range(m - 1)]
    lowers = np.meshgrid(*[c[:-1] for c in coords], indexing="ij")
    corners = np.stack([g.ravel() for g in lowers], axis=1)  # (cells, m - 1)
    dominating = np.all(front[None, :, : m - 1] <= corners[:, None, :], axis=2)  # (cells, k)
    last = np.where(dominating, front[None, :, m - 1], np.inf).min(axis=1)
    upper = np.minimum(last, ref[m - 1]).reshape(lowers[0].shape)
    return coords, upper


def non_dominated_boxes(loss: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint boxes ``(lower, upper)``, each ``(B, m)``, covering the part of
    :math:`\\{z \\le \\mathrm{ref}\\}` that no row of ``loss`` weakly dominates (module
    docstring). Rows not strictly below ``ref`` are ignored."""
    ref = np.asarray(ref, dtype=float)
    m = len(ref)
    if m < 2:
        raise ValueError(f"non_dominated_boxes needs at least 2 objectives, got {m}.")
    front = _front_below(loss, ref)
    if len(front) == 0:
        return np.full((1, m), -np.inf), ref[None, :].copy()
    coords, upper = _cell_bounds(front, ref)
    last_axis = m - 2
    n_last = upper.shape[last_axis]
    rows = upper.reshape(-1, n_last)  # cells of the other grid axes x the (m-1)-th axis
    index = np.indices(upper.shape[:-1]).reshape(m - 2, rows.shape[0]).T  # (rows, m - 2)
    lowers, uppers = [], []
    for r in range(rows.shape[0]):
        u = rows[r]
        starts = np.flatnonzero(np.concatenate([[True], u[1:] != u[:-1]]))
        ends = np.concatenate([starts[1:], [n_last]])
        for s, e in zip(starts, ends):
            lo = [coords[j][index[r, j]] for j in range(m - 2)]
            hi = [coords[j][index[r, j] + 1] for j in range(m - 2)]
            lowers.append([*lo, coords[last_axis][s], -np.inf])
            uppers.append([*hi, coords[last_axis][e], u[s]])
    return np.asarray(lowers, dtype=float), np.asarray(uppers, dtype=float)


def hypervolume(loss: np.ndarray, ref: np.ndarray) -> float:
    """Volume of the part of :math:`\\{z \\le \\mathrm{ref}\\}` that the rows of ``loss``
    ``(n, m)`` weakly dominate (0 for none below ``ref``)."""
    ref = np.asarray(ref, dtype=float)
    m = len(ref)
    front = _front_below(loss, ref)
    if len(front) == 0:
        return 0.0
    if m == 1:
        return float(ref[0] - front[:, 0].min())
    if m == 2:
        order = np.argsort(front[:, 0])
        x, y = front[order, 0], front[order, 1]
        widths = np.diff(np.concatenate([x, [ref[0]]]))
        return float(np.sum(widths * (ref[1] - y)))
    coords, upper = _cell_bounds(front, ref)
    # cells whose lower corner has a -inf coordinate have no dominating point (upper = ref)
    finite = tuple(slice(1, None) for _ in range(m - 1))
    sides = [np.diff(c[1:]) for c in coords]
    volume: np.ndarray = sides[0]
    for w in sides[1:]:
        volume = np.multiply.outer(volume, w)
    return float(np.sum(volume * (ref[m - 1] - upper[finite])))
