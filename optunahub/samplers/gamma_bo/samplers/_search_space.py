# generated from optuna_gamma/samplers/_search_space.py by tools/sync_optunahub.py; do not edit
"""Optuna distributions to and from the unit cube, for search spaces of any width.

Every parameter of the relative search space becomes one column of an ``(n, d)`` array:

* ``FloatDistribution`` without step: ``u = (x - low) / (high - low)`` (on ``log x`` when
  ``log=True``), a continuous column.
* ``IntDistribution`` and ``FloatDistribution`` with ``step``: a *grid* column of ``N`` values
  ``low + k * step``, ``k = 0 .. N-1``. The range is padded by half a step on both sides, so value
  ``k`` owns the cell ``[k / N, (k + 1) / N)`` and is encoded at its centre ``(k + 1/2) / N``
  (for ``IntDistribution(log=True)`` the same on ``log x`` with the bounds ``low - 1/2`` and
  ``high + 1/2``), so a uniform ``u`` decodes to a uniform grid value and neighbouring values
  stay correlated in the kernel. Nothing here enumerates a grid: rounding, neighbours and
  decoding are arithmetic on the index ``k`` (Python integers, exact at the ``int64``
  extremes), and :meth:`SearchSpace.grid_values` lists a column's values only when asked
  (the optimizer asks only for columns of at most 32 values).
* ``CategoricalDistribution``: the category index as a float (``0, 1, ..., C - 1``), flagged in
  ``is_categorical`` so the kernel uses the Hamming distance on it.

Decoding rounds to the grid and clips to the bounds, and every decoded value passes the
distribution's own check (``distribution._contains`` of its internal representation, which
``optuna.trial.Trial`` applies to relative parameters). That check is in floating point: for
``FloatDistribution(-1e6, -999999.98, step=1e-4)`` only 4 of the 201 grid values pass it (the
others are not representable closely enough), and for ``IntDistribution(0, 2**63 - 1)`` the
value ``2**63 - 1`` fails it (its float is ``2**63``); the nearest value that passes is returned.
"""

from __future__ import annotations

from collections.abc import Mapping
import decimal
import math
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution


__all__ = ["SearchSpace"]

# How far (in grid values) decode looks for the nearest value the distribution accepts.
_MAX_VALIDITY_SEARCH = 4096


def _grid_size(dist: FloatDistribution | IntDistribution) -> int:
    """Number of grid values of a stepped distribution (exact, as Optuna adjusts ``high``)."""
    if isinstance(dist, IntDistribution):
        return (int(dist.high) - int(dist.low)) // int(dist.step) + 1
    assert dist.step is not None
    d_range = decimal.Decimal(str(dist.high)) - decimal.Decimal(str(dist.low))
    return int(d_range // decimal.Decimal(str(dist.step))) + 1


def _contains(dist: BaseDistribution, value: Any) -> bool:
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (ValueError, TypeError, OverflowError):
        return False


class _Column:
    """Encoding of one numerical parameter."""

    def __init__(self, dist: FloatDistribution | IntDistribution) -> None:
        self.dist = dist
        self.is_int = isinstance(dist, IntDistribution)
        self.log = bool(dist.log)
        self.size: int | None = None  # grid size (exact); None for a continuous column
        if self.is_int or dist.step is not None:
            self.size = _grid_size(dist)
            # the size as a float (a grid of more than 2**1000 values is continuous anyway)
            self._n = float(min(self.size, 2**1000))
        if self.is_int and self.log:
            # Integer log scale: pad by 1/2 in the linear scale, then take logs.
            self.lower = math.log(float(dist.low) - 0.5)
            self.upper = math.log(float(dist.high) + 0.5)
        elif self.log:
            self.lower, self.upper = math.log(dist.low), math.log(dist.high)
        else:
            self.lower, self.upper = float(dist.low), float(dist.high)

    # -- grid index <-> unit cube -----------------------------------------------------------

    def index_of_unit(self, u: np.ndarray) -> np.ndarray:
        """Grid index (float array, integral values in ``[0, size - 1]``) of the cell of ``u``."""
        assert self.size is not None
        u = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
        if self.log:
            # cell of value v = low + k: [log(v - 1/2), log(v + 1/2)) on the padded log range
            value = np.exp(self.lower + u * (self.upper - self.lower))
            k = np.floor(value + 0.5) - float(self.dist.low)
        else:
            k = np.floor(u * self._n)
        return np.clip(k, 0.0, self._n - 1.0)

    def unit_of_index(self, k: np.ndarray) -> np.ndarray:
        """Encoded position (the cell's centre) of grid index ``k`` (float array)."""
        assert self.size is not None
        k = np.asarray(k, dtype=float)
        if self.log:
            value = float(self.dist.low) + k
            if not self.upper > self.lower:
                return np.full(np.shape(k), 0.5)
            return (np.log(value) - self.lower) / (self.upper - self.lower)
        return (k + 0.5) / self._n

    # -- values <-> unit cube ------------------------------------------------------------------

    def encode(self, value: float | int) -> float:
        dist = self.dist
        if self.size is not None:
            if self.is_int:
                if self.log:
                    k = float(min(max(int(value), int(dist.low)), int(dist.high)) - int(dist.low))
                else:
                    assert dist.step is not None
                    step = int(dist.step)
                    k = float(
                        (min(max(int(value), int(dist.low)), int(dist.high)) - int(dist.low))
                        // step
                    )
            elif self.size <= 2**52:
                assert dist.step is not None
                k = round((min(max(float(value), dist.low), dist.high) - dist.low) / dist.step)
                k = min(max(k, 0), self.size - 1)
            else:  # (v - low) / step may overflow: locate the cell by the fraction of the range
                frac = self._fraction(float(value))
                k = min(math.floor(frac * self._n), self._n - 1.0)
            return float(self.unit_of_index(np.asarray(k)))
        x = float(value)
        if self.log:
            x = math.log(min(max(x, dist.low), dist.high))
        return self._fraction(x, transformed=True)

    def _fraction(self, x: float, transformed: bool = False) -> float:
        """``(x - lower) / (upper - lower)`` in ``[0, 1]``, without overflow (0.5 for a range
        that is empty in floating point, e.g. ``log(low) == log(high)``)."""
        lo, hi = (self.lower, self.upper) if transformed else (self.dist.low, self.dist.high)
        # halves keep (hi - lo) finite for ranges wider than the largest float
        den = 0.5 * hi - 0.5 * lo
        if not den > 0.0:
            return 0.5
        u = (0.5 * x - 0.5 * lo) / den
        return min(max(u, 0.0), 1.0)

    def decode(self, u: float) -> float | int:
        dist = self.dist
        u = min(max(float(u), 0.0), 1.0)
        if self.size is not None:
            k = min(max(int(self.index_of_unit(np.asarray(u))), 0), self.size - 1)
            return self._valid_grid_value(k)
        if u == 0.0 or u == 1.0:  # the bounds exactly (exp(log(low)) may differ from low)
            return float(dist.low if u == 0.0 else dist.high)
        t = self.lower * (1.0 - u) + self.upper * u  # no overflow for any finite bounds
        value = math.exp(t) if self.log else t
        value = min(max(value, dist.low), dist.high)
        if not _contains(dist, value):  # e.g. exp(log(high)) rounding above high
            value = float(dist.low if u < 0.5 else dist.high)
        return float(value)

    def _grid_value(self, k: int) -> float | int:
        dist = self.dist
        assert dist.step is not None
        if self.is_int:
            return int(dist.low) + k * int(dist.step)
        # low + k * step may round past high (e.g. -10.2 + 204 * 0.1 = 10.200000000000003)
        return float(min(max(dist.low + k * dist.step, dist.low), dist.high))

    def _decimal_grid_value(self, k: int) -> float:
        """``low + k * step`` in decimal arithmetic, then rounded once (another candidate)."""
        dist = self.dist
        exact = decimal.Decimal(str(dist.low)) + k * decimal.Decimal(str(dist.step))
        return float(min(max(float(exact), dist.low), dist.high))

    def _valid_grid_value(self, k: int) -> float | int:
        """The value of index ``k`` or, if the distribution rejects it, of the nearest index it
        accepts (``low`` itself is always accepted)."""
        assert self.size is not None
        for offset in range(_MAX_VALIDITY_SEARCH):
            for j in (k,) if offset == 0 else (k - offset, k + offset):
                if 0 <= j < self.size:
                    value = self._grid_value(j)
                    if _contains(self.dist, value):
                        return value
                    if not self.is_int:
                        value = self._decimal_grid_value(j)
                        if _contains(self.dist, value):
                            return value
                    if self.is_int and j > 0:
                        # float(value) rounded above high (int64 extremes): largest accepted int
                        top = self._largest_accepted_int(j)
                        if top is not None:
                            return top
        return self._grid_value(0)

    def _largest_accepted_int(self, k: int) -> int | None:
        dist = self.dist
        value = self._grid_value(k)
        assert isinstance(value, int)
        if float(value) <= dist.high:
            return None
        # The largest float not above high, as an int on the step grid.
        top = int(np.nextafter(float(dist.high), -math.inf))
        assert dist.step is not None
        step = int(dist.step)
        top = int(dist.low) + (top - int(dist.low)) // step * step
        while top >= int(dist.low) and not _contains(dist, top):
            top = int(np.nextafter(float(top), -math.inf))
            top = int(dist.low) + (top - int(dist.low)) // step * step
        return top if top >= int(dist.low) else None


class SearchSpace:
    """A relative search space encoded to the unit cube.

    Args:
        distributions: Parameter name to distribution (the relative search space, single-value
            distributions already removed). The column order is the mapping's order.

    Attributes:
        names: Parameter names, one per column.
        distributions: The distributions, one per column.
        is_categorical: ``(d,)`` bool, True on categorical columns.
        sizes: Per column, the number of values (choices of a categorical column, grid values
            of a grid column; may be huge), or ``None`` for a continuous column.
    """

    def __init__(self, distributions: Mapping[str, BaseDistribution]) -> None:
        self.names: tuple[str, ...] = tuple(distributions)
        self.distributions: tuple[BaseDistribution, ...] = tuple(distributions.values())
        d = len(self.names)
        self.is_categorical = np.zeros(d, dtype=bool)
        self.sizes: list[int | None] = []
        self._columns: list[_Column | None] = []
        for j, dist in enumerate(self.distributions):
            if isinstance(dist, CategoricalDistribution):
                self.is_categorical[j] = True
                self.sizes.append(len(dist.choices))
                self._columns.append(None)
            elif isinstance(dist, (FloatDistribution, IntDistribution)):
                column = _Column(dist)
                self.sizes.append(column.size)
                self._columns.append(column)
            else:
                raise ValueError(
                    f"Unsupported distribution {dist!r} for parameter {self.names[j]!r}."
                )

    @property
    def dim(self) -> int:
        """Number of columns."""
        return len(self.names)

    def is_grid(self, j: int) -> bool:
        """Whether column ``j`` is an integer or stepped-float grid."""
        return not self.is_categorical[j] and self.sizes[j] is not None

    def grid_values(self, j: int) -> np.ndarray:
        """Encoded values of a categorical or grid column (for small columns: it enumerates)."""
        size = self.sizes[j]
        if size is None:
            raise ValueError(f"column {j} ({self.names[j]!r}) is continuous.")
        if self.is_categorical[j]:
            return np.arange(size, dtype=float)
        column = self._columns[j]
        assert column is not None
        return column.unit_of_index(np.arange(size, dtype=float))

    def neighbours(self, j: int, u: np.ndarray, radius: int) -> np.ndarray:
        """Encoded grid values around the encoded positions ``u (m,)`` of grid column ``j``:
        ``(m, 2 * radius + 1)``, the cells ``k - radius .. k + radius`` of each ``u``'s cell ``k``
        (clipped to the grid, so repeated at its ends)."""
        column = self._columns[j]
        assert column is not None and column.size is not None
        k = column.index_of_unit(u)
        ks = np.clip(k[:, None] + np.arange(-radius, radius + 1)[None, :], 0, column._n - 1.0)
        return column.unit_of_index(ks)

    def matches(self, X: np.ndarray, ref: np.ndarray, float_resolution: float) -> np.ndarray:
        """Which rows of ``X (m, d)`` equal some row of ``ref (r, d)`` at the parameters'
        resolution: the same category, the same grid value, and continuous coordinates within
        ``float_resolution`` (in encoded units, i.e. a fraction of the parameter's range, on the
        log scale for ``log=True``). Both arrays must be rounded (:meth:`round`)."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        ref = np.atleast_2d(np.asarray(ref, dtype=float))
        out = np.zeros(X.shape[0], dtype=bool)
        if ref.shape[0] == 0 or X.shape[0] == 0:
            return out
        tol = np.array([float_resolution if size is None else 0.0 for size in self.sizes])
        block = max(1, (1 << 22) // max(ref.size, 1))
        for start in range(0, X.shape[0], block):
            diff = np.abs(X[start : start + block, None, :] - ref[None, :, :])
            out[start : start + block] = np.any(np.all(diff <= tol, axis=2), axis=1)
        return out

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """Map one parameter dict (external representation) to a ``(d,)`` encoded vector.

        Raises:
            KeyError: A parameter of the space is missing from ``params``.
            ValueError: A categorical value is not one of the choices.
        """
        x = np.empty(self.dim)
        for j, (name, dist) in enumerate(zip(self.names, self.distributions)):
            value = params[name]
            column = self._columns[j]
            if column is None:
                x[j] = float(dist.to_internal_repr(value))
            else:
                x[j] = column.encode(value)
        return x

    def round(self, X: np.ndarray) -> np.ndarray:
        """Snap encoded points onto the representable set (grid cell centres, category indices).

        Continuous columns are clipped to ``[0, 1]``; the result decodes without change.
        """
        X = np.array(X, dtype=float)
        for j, column in enumerate(self._columns):
            if column is None:
                top = self.sizes[j] - 1  # type: ignore[operator]
                X[..., j] = np.clip(np.round(X[..., j]), 0, top)
            elif column.size is None:
                X[..., j] = np.clip(X[..., j], 0.0, 1.0)
            else:
                X[..., j] = column.unit_of_index(column.index_of_unit(X[..., j]))
        return X

    def from_unit_cube(self, U: np.ndarray) -> np.ndarray:
        """Map points uniform in ``[0, 1)^d`` to encoded points, uniform over each column's values.

        Categorical column: ``floor(u * C)``; grid column: the centre of the cell containing
        ``u`` (equal cells by construction); continuous: ``u``.
        """
        X = np.array(U, dtype=float)
        for j in np.flatnonzero(self.is_categorical):
            size = self.sizes[j]
            assert size is not None
            X[..., j] = np.minimum(np.floor(X[..., j] * size), size - 1)
        return self.round(X)

    def decode(self, x: np.ndarray) -> dict[str, Any]:
        """Map one encoded ``(d,)`` vector to a parameter dict valid for every distribution.

        Values are Python ``float``/``int`` (categorical: the choice itself), and each passes
        its distribution's ``_contains`` check.
        """
        x = np.asarray(x, dtype=float)
        params: dict[str, Any] = {}
        for j, (name, dist) in enumerate(zip(self.names, self.distributions)):
            column = self._columns[j]
            if column is None:
                assert isinstance(dist, CategoricalDistribution)
                index = int(np.clip(np.round(x[j]), 0, len(dist.choices) - 1))
                params[name] = dist.to_external_repr(index)
            else:
                params[name] = column.decode(float(x[j]))
        return params
