"""Optuna distributions to and from the unit cube.

Every parameter of the relative search space becomes one column of an ``(n, d)`` array:

* ``FloatDistribution`` without step: ``u = (x - low) / (high - low)`` (on ``log x`` when
  ``log=True``), a continuous dimension.
* ``FloatDistribution`` with ``step`` and ``IntDistribution``: a *grid* dimension. The range is
  padded by half a step on both sides, ``u = (x - (low - step/2)) / (high - low + step)``
  (for ``IntDistribution(log=True)`` the same on ``log x`` with ``low - 1/2`` and ``high + 1/2``),
  so every grid value owns an interval of equal width (equal in log space for log integers) and
  a uniform ``u`` decodes to a uniform grid value. The kernel sees the grid value's encoded
  position, so neighbouring grid values stay correlated.
* ``CategoricalDistribution``: the category index as a float (``0, 1, ..., C - 1``), flagged in
  ``is_categorical`` so the kernel uses the Hamming distance on it.

Decoding rounds to the grid and clips to the bounds, so every decoded value is valid for its
distribution.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import math
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution


__all__ = ["SearchSpace"]


class SearchSpace:
    """A relative search space encoded to the unit cube.

    Args:
        distributions: Parameter name to distribution (the relative search space, single-value
            distributions already removed). The column order is the mapping's order.

    Attributes:
        names: Parameter names, one per column.
        is_categorical: ``(d,)`` bool, True on categorical columns.
        grids: Per column, the encoded values the column may take (category indices for
            categorical columns, grid-value positions for grid columns), or ``None`` for
            continuous columns.
    """

    def __init__(self, distributions: Mapping[str, BaseDistribution]) -> None:
        self.names: tuple[str, ...] = tuple(distributions)
        self.distributions: tuple[BaseDistribution, ...] = tuple(distributions.values())
        d = len(self.names)
        self.is_categorical = np.zeros(d, dtype=bool)
        self.grids: list[np.ndarray | None] = []
        # Per column: (lower, upper) of the padded range in the (possibly log) transformed scale,
        # the grid step (0 for continuous) and whether the transform is log.
        self._lower = np.zeros(d)
        self._upper = np.ones(d)
        self._step = np.zeros(d)
        self._log = np.zeros(d, dtype=bool)
        for j, dist in enumerate(self.distributions):
            if isinstance(dist, CategoricalDistribution):
                self.is_categorical[j] = True
                self.grids.append(np.arange(len(dist.choices), dtype=float))
            elif isinstance(dist, (FloatDistribution, IntDistribution)):
                self._init_numerical(j, dist)
            else:
                raise ValueError(
                    f"Unsupported distribution {dist!r} for parameter {self.names[j]!r}."
                )

    def _init_numerical(self, j: int, dist: FloatDistribution | IntDistribution) -> None:
        low, high = float(dist.low), float(dist.high)
        step = None if dist.step is None else float(dist.step)
        if isinstance(dist, IntDistribution) and dist.log:
            # Integer log scale: pad by 1/2 in the linear scale, then take logs.
            self._log[j] = True
            self._lower[j], self._upper[j] = math.log(low - 0.5), math.log(high + 0.5)
            self._step[j] = 1.0
            values = np.arange(int(dist.low), int(dist.high) + 1, dtype=float)
            self.grids.append(self._to_unit(j, values))
        elif step is not None:
            n_grid = int(round((high - low) / step)) + 1
            self._lower[j], self._upper[j] = low - 0.5 * step, low + (n_grid - 0.5) * step
            self._step[j] = step
            self.grids.append((np.arange(n_grid) + 0.5) / n_grid)
        else:
            if dist.log:
                self._log[j] = True
                low, high = math.log(low), math.log(high)
            self._lower[j], self._upper[j] = low, high
            self.grids.append(None)

    @property
    def dim(self) -> int:
        """Number of columns."""
        return len(self.names)

    def _to_unit(self, j: int, values: np.ndarray) -> np.ndarray:
        t = np.log(values) if self._log[j] else values
        return np.clip((t - self._lower[j]) / (self._upper[j] - self._lower[j]), 0.0, 1.0)

    def _grid_index(self, j: int, u: np.ndarray) -> np.ndarray:
        """Index of the grid value whose (padded, equal-width) interval contains ``u``."""
        dist = self.distributions[j]
        assert isinstance(dist, (FloatDistribution, IntDistribution))
        t = self._lower[j] + np.clip(u, 0.0, 1.0) * (self._upper[j] - self._lower[j])
        value = np.exp(t) if self._log[j] else t
        n_grid = len(self.grids[j])  # type: ignore[arg-type]
        k = np.round((value - float(dist.low)) / self._step[j])
        return np.clip(k, 0, n_grid - 1).astype(int)

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """Map one parameter dict (external representation) to a ``(d,)`` encoded vector.

        Raises:
            KeyError: A parameter of the space is missing from ``params``.
            ValueError: A categorical value is not one of the choices.
        """
        x = np.empty(self.dim)
        for j, (name, dist) in enumerate(zip(self.names, self.distributions)):
            value = params[name]
            if self.is_categorical[j]:
                x[j] = float(dist.to_internal_repr(value))
            else:
                x[j] = self._to_unit(j, np.asarray(float(value)))
        return x

    def encode_many(self, params_list: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Encode several parameter dicts into an ``(n, d)`` array."""
        if len(params_list) == 0:
            return np.empty((0, self.dim))
        return np.stack([self.encode(p) for p in params_list])

    def round(self, X: np.ndarray) -> np.ndarray:
        """Snap encoded points onto the representable set (grid positions, category indices).

        Continuous columns are clipped to ``[0, 1]``; the result decodes without change.
        """
        X = np.array(X, dtype=float)
        numerical = ~self.is_categorical
        X[..., numerical] = np.clip(X[..., numerical], 0.0, 1.0)
        for j, grid in enumerate(self.grids):
            if grid is None:
                continue
            if self.is_categorical[j]:
                X[..., j] = np.clip(np.round(X[..., j]), 0, len(grid) - 1)
            else:
                X[..., j] = grid[self._grid_index(j, X[..., j])]
        return X

    def from_unit_cube(self, U: np.ndarray) -> np.ndarray:
        """Map points uniform in ``[0, 1)^d`` to encoded points, uniform over each column's values.

        Categorical column: ``floor(u * C)``; grid column: the position of the grid value whose
        interval contains ``u`` (equal intervals by construction); continuous: ``u``.
        """
        X = np.array(U, dtype=float)
        for j, grid in enumerate(self.grids):
            if grid is None:
                continue
            if self.is_categorical[j]:
                X[..., j] = np.minimum(np.floor(X[..., j] * len(grid)), len(grid) - 1)
        return self.round(X)

    def decode(self, x: np.ndarray) -> dict[str, Any]:
        """Map one encoded ``(d,)`` vector to a parameter dict valid for every distribution.

        Values are Python ``float``/``int`` (categorical: the choice itself).
        """
        x = np.asarray(x, dtype=float)
        params: dict[str, Any] = {}
        for j, (name, dist) in enumerate(zip(self.names, self.distributions)):
            u = float(np.clip(x[j], 0.0, 1.0))
            if isinstance(dist, CategoricalDistribution):
                index = int(np.clip(round(x[j]), 0, len(dist.choices) - 1))
                params[name] = dist.to_external_repr(index)
                continue
            t = self._lower[j] + u * (self._upper[j] - self._lower[j])
            value = math.exp(t) if self._log[j] else t
            assert isinstance(dist, (FloatDistribution, IntDistribution))
            if self._step[j] > 0:
                k = int(self._grid_index(j, np.asarray(u)))
                value = dist.low + k * self._step[j]
            value = min(max(value, dist.low), dist.high)
            if isinstance(dist, IntDistribution):
                params[name] = int(round(value))
            else:
                params[name] = float(value)
        return params
