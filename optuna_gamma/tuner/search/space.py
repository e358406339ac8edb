"""Search spaces of the tuner: any Optuna distributions, plus fixed hyperparameters.

A search space is a mapping from hyperparameter name to an Optuna distribution
(:class:`~optuna.distributions.FloatDistribution`, :class:`~optuna.distributions.IntDistribution`,
:class:`~optuna.distributions.CategoricalDistribution`) or to a plain value (a fixed
hyperparameter, passed to every trial but not tuned)::

    {"lr": FloatDistribution(1e-4, 1e-1, log=True),
     "weight_decay": FloatDistribution(1e-5, 1e-1, log=True),
     "batch_size": CategoricalDistribution([32, 64, 128]),
     "momentum": 0.9}

:class:`SearchSpace` builds the thesis's SGD space (learning rate, optionally batch size,
weight decay and momentum) in that form. :class:`ParamSpace` is the validated form the engine
works with: it suggests a trial's values, compares two points at each parameter's resolution
(the "no wasted trials" rule of docs/design.md §4), finds values at a range bound and builds grids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import itertools
import json
import math
import numbers
from typing import Any
from typing import TYPE_CHECKING
from typing import Union

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import distribution_to_json
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution

from optuna_gamma.tuner.trainer import plain
from optuna_gamma.tuner.trainer import range_like


if TYPE_CHECKING:
    import optuna


__all__ = ["ParamSpace", "SearchSpace", "SpaceLike", "grid_points"]

#: A fixed value, a ``(low, high)`` range (tuple of two numbers) or a list of choices.
ParamSpec = Union[float, int, tuple, list]

_DEFAULT_BATCH_SIZE = 50  # thesis table 2
_DEFAULT_WEIGHT_DECAY = 1e-3  # thesis table 2
_DEFAULT_MOMENTUM = 0.0  # the thesis uses plain SGD


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


@dataclass(frozen=True)
class SearchSpace:
    """The thesis's SGD search space: learning rate, optional batch size, weight decay, momentum.

    Args:
        lr_low: Lower end of the learning-rate range, > 0.
        lr_high: Upper end, > ``lr_low``.
        lr_log: Log scale (default) or linear (``False``).
        batch_size: Fixed int, list of ints (categorical) or ``(low, high)`` int range (log).
        weight_decay: Fixed float, list (categorical) or ``(low, high)`` range (log scale when
            ``low > 0``).
        momentum: Fixed float in [0, 1), list (categorical) or ``(low, high)`` range in [0, 1).

    Raises:
        ValueError: A range with ``low >= high``, ``lr_low <= 0``, a non-bool ``lr_log``, or a
            value out of its domain; the message names the value.
    """

    lr_low: float = 1e-3
    lr_high: float = 0.5
    lr_log: bool = True
    batch_size: ParamSpec = _DEFAULT_BATCH_SIZE
    weight_decay: ParamSpec = _DEFAULT_WEIGHT_DECAY
    momentum: ParamSpec = _DEFAULT_MOMENTUM

    def __post_init__(self) -> None:
        if not _is_real(self.lr_low) or not _is_real(self.lr_high):
            raise ValueError(
                f"learning-rate range must be finite numbers, got ({self.lr_low!r}, "
                f"{self.lr_high!r})"
            )
        if not isinstance(self.lr_log, bool):
            raise ValueError(f"lr_log must be True or False, got {self.lr_log!r}")
        if self.lr_low <= 0:
            raise ValueError(
                f"lr_low must be > 0 (a learning rate of 0 does not train), got {self.lr_low!r}"
            )
        if self.lr_low >= self.lr_high:
            raise ValueError(
                f"learning-rate range needs lr_low < lr_high, got lr_low={self.lr_low!r} "
                f"lr_high={self.lr_high!r}"
            )
        _check_spec("batch_size", self.batch_size, integer=True, low=1, high=None)
        _check_spec("weight_decay", self.weight_decay, integer=False, low=0.0, high=None)
        _check_spec("momentum", self.momentum, integer=False, low=0.0, high=1.0)

    def distributions(self) -> dict[str, Any]:
        """The space as ``name -> distribution or fixed value`` (see the module docstring)."""
        out: dict[str, Any] = {
            "lr": FloatDistribution(float(self.lr_low), float(self.lr_high), log=self.lr_log)
        }
        for name in ("batch_size", "weight_decay", "momentum"):
            spec = getattr(self, name)
            if isinstance(spec, list):
                out[name] = CategoricalDistribution(list(spec))
            elif isinstance(spec, tuple) and name == "batch_size":
                out[name] = IntDistribution(int(spec[0]), int(spec[1]), log=True)
            elif isinstance(spec, tuple):
                out[name] = FloatDistribution(
                    float(spec[0]), float(spec[1]), log=name == "weight_decay" and spec[0] > 0
                )
            else:
                out[name] = spec
        return out


def _check_spec(name: str, spec: Any, *, integer: bool, low: float, high: float | None) -> None:
    def check_value(v: Any) -> None:
        ok = (
            (isinstance(v, numbers.Integral) and not isinstance(v, bool))
            if integer
            else _is_real(v)
        )
        if not ok or v < low or (high is not None and v >= high):
            dom = f"an int >= {low}" if integer else f"a finite number in [{low}, {high or 'inf'})"
            raise ValueError(f"{name} must be {dom}, got {v!r}")

    if isinstance(spec, tuple):
        if len(spec) != 2:
            raise ValueError(f"{name} range must be (low, high), got {spec!r}")
        check_value(spec[0])
        check_value(spec[1])
        if spec[0] >= spec[1]:
            raise ValueError(f"{name} range needs low < high, got {spec!r}")
    elif isinstance(spec, list):
        if not spec:
            raise ValueError(f"{name} choices must not be empty")
        for v in spec:
            check_value(v)
    else:
        check_value(spec)


SpaceLike = Union[SearchSpace, Mapping[str, Any]]
"""What the tuner accepts as a search space."""


def _fixed_ok(v: Any) -> bool:
    if v is None or isinstance(v, (bool, str)) or _is_real(v):
        return True
    if isinstance(v, (list, tuple)):
        return all(_fixed_ok(x) for x in v)
    return False


@dataclass(frozen=True)
class ParamSpace:
    """A validated search space: tuned distributions and fixed values.

    Attributes:
        distributions: Tuned hyperparameters, name -> Optuna distribution, in the given order.
        fixed: Fixed hyperparameters (JSON values), name -> value.
    """

    distributions: dict[str, BaseDistribution]
    fixed: dict[str, Any]

    @classmethod
    def of(cls, space: SpaceLike) -> ParamSpace:
        """Validate ``space`` (a :class:`SearchSpace` or a mapping).

        Raises:
            ValueError: Not a mapping, a non-string or empty name, a value that is neither an
                Optuna distribution nor a JSON scalar/list, or nothing tuned.
        """
        if isinstance(space, ParamSpace):
            return space
        if isinstance(space, SearchSpace):
            space = space.distributions()
        if not isinstance(space, Mapping):
            raise ValueError(
                f"search space must be a SearchSpace or a mapping name -> distribution, got "
                f"{space!r}"
            )
        dists: dict[str, BaseDistribution] = {}
        fixed: dict[str, Any] = {}
        for name, value in space.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"search-space names must be non-empty strings, got {name!r}")
            if isinstance(value, (FloatDistribution, IntDistribution, CategoricalDistribution)):
                dists[name] = value
            elif isinstance(value, BaseDistribution):
                raise ValueError(
                    f"search space entry {name!r}: use FloatDistribution, IntDistribution or "
                    f"CategoricalDistribution, got {type(value).__name__}"
                )
            elif _fixed_ok(value := plain(value)):
                fixed[name] = value
            else:
                raise ValueError(
                    f"search space entry {name!r} must be an optuna distribution or a fixed "
                    f"number/string/list, got {value!r}"
                )
        if not dists:
            pair = next(((k, v) for k, v in fixed.items() if range_like(v)), None)
            hint = (
                ""
                if pair is None
                else f": {pair[0]!r} = {pair[1]!r} is one fixed value here; a range to tune is "
                f"FloatDistribution({pair[1][0]!r}, {pair[1][1]!r}) (log=True for a learning "
                "rate)"
            )
            raise ValueError(
                f"search space tunes nothing (no distribution among {sorted(space)}){hint}"
            )
        return cls(dists, fixed)

    # ------------------------------------------------------------------ trials
    def suggest(self, trial: optuna.trial.Trial) -> dict[str, Any]:
        """Ask ``trial`` for every tuned value; return them with the fixed ones."""
        out = dict(self.fixed)
        for name, d in self.distributions.items():
            if isinstance(d, FloatDistribution):
                out[name] = trial.suggest_float(name, d.low, d.high, log=d.log, step=d.step)
            elif isinstance(d, CategoricalDistribution):
                out[name] = trial.suggest_categorical(name, d.choices)
            else:
                i = _int(d)
                out[name] = trial.suggest_int(name, i.low, i.high, log=i.log, step=i.step)
        return out

    def tuned(self) -> tuple[str, ...]:
        return tuple(self.distributions)

    def same(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
        """Whether two trials' parameters are the same point at each parameter's resolution.

        Categorical and integer values must be equal, stepped floats must fall on the same step,
        and other floats must be equal (the training that a float differing in its last bit
        would run is not the same, so it is not reused).
        """
        for name, d in self.distributions.items():
            if name not in a or name not in b:
                return False
            x, y = a[name], b[name]
            if isinstance(d, FloatDistribution) and d.step is not None:
                if round((x - d.low) / d.step) != round((y - d.low) / d.step):
                    return False
            elif x != y:
                return False
        return True

    def at_bound(self, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        """``(name, "low"|"high")`` for every numeric value within 0.1% of its range's end
        (measured on the log scale for ``log=True``). A low end of 0 on a linear scale is not
        one: it is "off" (no dropout, weight decay or momentum), which no range goes past; nor
        is an integer range's low end of 1 or less: the floor of a count (gradient
        accumulation steps, layers, a batch of 1), which no range goes past either."""
        hits = []
        for name, dist in self.distributions.items():
            if isinstance(dist, CategoricalDistribution) or name not in params:
                continue
            d = _numeric(dist)
            if d.low >= d.high:
                continue
            f = math.log if d.log else float
            lo, hi, x = f(d.low), f(d.high), f(params[name])
            tol = 1e-3 * (hi - lo)
            if x <= lo + tol:
                floor = d.low <= 1 if isinstance(d, IntDistribution) else not d.log and d.low == 0
                if not floor:
                    hits.append((name, "low"))
            elif x >= hi - tol:
                hits.append((name, "high"))
        return hits

    def with_fixed(self, name: str, value: Any) -> ParamSpace:
        """A copy in which ``name`` is fixed at ``value`` (not tuned)."""
        dists = {k: v for k, v in self.distributions.items() if k != name}
        return ParamSpace(dists, {**self.fixed, name: value})

    def grid(self, n: int, *, linear: bool = False) -> list[dict[str, Any]]:
        """Every combination of: ``n`` values per float range (its own scale, or linear), every
        choice of a categorical, every integer of a range of at most ``n`` values (else ``n``
        spread ones)."""
        axes: dict[str, list[Any]] = {}
        for name, d in self.distributions.items():
            if isinstance(d, CategoricalDistribution):
                axes[name] = list(d.choices)
            elif isinstance(d, FloatDistribution):
                pts = grid_points(d.low, d.high, n, log=d.log and not linear)
                if d.step is not None:
                    pts = sorted({d.low + round((p - d.low) / d.step) * d.step for p in pts})
                    pts = [min(p, d.high) for p in pts]
                axes[name] = pts
            else:
                i = _int(d)
                values = range(i.low, i.high + 1, i.step)
                if len(values) <= n:
                    axes[name] = list(values)
                else:
                    pts = grid_points(i.low, i.high, n, log=i.log and not linear)
                    axes[name] = sorted(
                        {i.low + round((p - i.low) / i.step) * i.step for p in pts}
                    )
        keys = list(axes)
        return [dict(zip(keys, combo)) for combo in itertools.product(*(axes[k] for k in keys))]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (Optuna's ``distribution_to_json`` for tuned entries)."""
        return {
            "tuned": {
                k: json.loads(distribution_to_json(d)) for k, d in self.distributions.items()
            },
            "fixed": dict(self.fixed),
        }


def _int(d: BaseDistribution) -> IntDistribution:
    assert isinstance(d, IntDistribution)
    return d


def _numeric(d: BaseDistribution) -> FloatDistribution | IntDistribution:
    assert isinstance(d, (FloatDistribution, IntDistribution))
    return d


def in_distribution(dist: BaseDistribution, value: Any) -> bool:
    """Whether ``value`` is a value ``dist`` can take (in range and on its step; one of its
    choices)."""
    if isinstance(dist, CategoricalDistribution):
        return any(type(value) is type(c) and value == c for c in dist.choices)
    if not _is_real(value) or not math.isfinite(float(value)):
        return False
    d = _numeric(dist)
    v = float(value)
    if not d.low <= v <= d.high:
        return False
    if d.step is None:  # a float range without a step (an int range always has one)
        return True
    k = (v - d.low) / d.step
    return abs(k - round(k)) <= 1e-8 * max(1.0, abs(k))


def grid_points(low: float, high: float, n: int, *, log: bool = True) -> list[float]:
    """``n`` values over ``[low, high]``: log-spaced (``numpy.geomspace``) or linear.

    Both ends are included. The thesis's grid over ``(0, 0.5]`` with ``n`` points is the linear
    grid with ``low = 0.5 / n``: ``{0.5 k / n : k = 1..n}``.

    Raises:
        ValueError: ``n`` is not an int >= 1.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"grid size must be an int >= 1, got {n!r}")
    if n == 1:
        return [float(high)]
    pts = np.geomspace(low, high, int(n)) if log else np.linspace(low, high, int(n))
    return [float(p) for p in np.clip(pts, low, high)]
