"""The search space of the learning-rate study: learning rate plus optional SGD settings.

The thesis tunes the learning rate (and names mini-batch size and the regularization coefficient
as further candidates). :class:`SearchSpace` declares, for each trial of a study:

* ``lr``: always tuned, a float in ``[lr_low, lr_high]``, log scale by default
  (``lr_log=False`` for a linear scale). ``lr_low > 0`` is required on the log scale.
* ``batch_size``, ``weight_decay``, ``momentum``: each either a fixed value (not tuned), a
  sequence of choices (categorical: ``suggest_categorical``), or a ``(low, high)`` range
  (``weight_decay`` on a log scale when ``low > 0``, ``momentum`` linear, ``batch_size`` an
  integer on a log scale).

:meth:`SearchSpace.suggest` asks an :class:`optuna.trial.Trial` for every tuned value and returns
the complete dict of SGD settings the trial trains with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import math
import numbers
from typing import TYPE_CHECKING
from typing import Any
from typing import Union


if TYPE_CHECKING:
    import optuna


__all__ = ["ParamSpec", "SearchSpace", "grid_points"]

#: A fixed value, a ``(low, high)`` range (tuple of two numbers) or a list of choices.
ParamSpec = Union[float, int, tuple, list]

_DEFAULT_BATCH_SIZE = 50  # thesis table 2
_DEFAULT_WEIGHT_DECAY = 1e-3  # thesis table 2
_DEFAULT_MOMENTUM = 0.0  # the thesis uses plain SGD


def _is_real(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


@dataclass(frozen=True)
class SearchSpace:
    """Learning rate (required) and optional batch size, weight decay and momentum.

    Args:
        lr_low: Lower end of the learning-rate range (> 0 on the log scale).
        lr_high: Upper end, > ``lr_low``.
        lr_log: Log scale (default) or linear.
        batch_size: Fixed int, list of ints (categorical) or ``(low, high)`` int range.
        weight_decay: Fixed float, list (categorical) or ``(low, high)`` range (log scale when
            ``low > 0``).
        momentum: Fixed float in [0, 1), list (categorical) or ``(low, high)`` range in [0, 1).

    Raises:
        ValueError: A range with ``low >= high``, ``lr_low <= 0`` on the log scale, or a value
            out of its domain; the message names the value.
    """

    lr_low: float = 1e-3
    lr_high: float = 0.5
    lr_log: bool = True
    batch_size: ParamSpec = _DEFAULT_BATCH_SIZE
    weight_decay: ParamSpec = _DEFAULT_WEIGHT_DECAY
    momentum: ParamSpec = _DEFAULT_MOMENTUM
    fixed_lr: float | None = None

    def __post_init__(self) -> None:
        if not _is_real(self.lr_low) or not _is_real(self.lr_high):
            raise ValueError(f"learning-rate range must be finite numbers, got ({self.lr_low!r}, {self.lr_high!r})")
        if self.lr_low >= self.lr_high:
            raise ValueError(f"learning-rate range needs low < high, got low={self.lr_low!r} high={self.lr_high!r}")
        if self.lr_log and self.lr_low <= 0:
            raise ValueError(f"learning-rate low must be > 0 on a log scale, got {self.lr_low!r}")
        if not self.lr_log and self.lr_low < 0:
            raise ValueError(f"learning-rate low must be >= 0, got {self.lr_low!r}")
        if self.fixed_lr is not None and (not _is_real(self.fixed_lr) or self.fixed_lr <= 0):
            raise ValueError(f"fixed learning rate must be a finite number > 0, got {self.fixed_lr!r}")
        self._check("batch_size", self.batch_size, integer=True, low=1, high=None)
        self._check("weight_decay", self.weight_decay, integer=False, low=0.0, high=None)
        self._check("momentum", self.momentum, integer=False, low=0.0, high=1.0)

    @staticmethod
    def _check(name: str, spec: Any, *, integer: bool, low: float, high: float | None) -> None:
        def check_value(v: Any) -> None:
            ok = (isinstance(v, numbers.Integral) and not isinstance(v, bool)) if integer else _is_real(v)
            if not ok or v < low or (high is not None and v >= high):
                dom = f"an int >= {low}" if integer else f"a finite number in [{low}, {high if high is not None else 'inf'})"
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

    # ------------------------------------------------------------------ queries
    def tuned(self) -> tuple[str, ...]:
        """Names of the tuned parameters (``"lr"`` first)."""
        extra = tuple(n for n in ("batch_size", "weight_decay", "momentum") if isinstance(getattr(self, n), (tuple, list)))
        return ("lr",) + extra

    def fixed(self) -> dict[str, Any]:
        """The settings that are not tuned."""
        return {
            n: getattr(self, n)
            for n in ("batch_size", "weight_decay", "momentum")
            if not isinstance(getattr(self, n), (tuple, list))
        }

    def with_fixed_lr(self, lr: float) -> SearchSpace:
        """A copy whose learning-rate range is the single value ``lr`` (no tuning)."""
        return dataclasses.replace(self, fixed_lr=float(lr) if _is_real(lr) else lr)

    def suggest(self, trial: optuna.trial.Trial) -> dict[str, Any]:
        """Suggest every tuned value from ``trial``; return all SGD settings.

        Returns:
            ``{"lr", "batch_size", "weight_decay", "momentum"}`` (tuned ones from the trial).
        """
        if self.fixed_lr is not None:  # a single-value distribution: every sampler returns it
            lr = trial.suggest_float("lr", self.fixed_lr, self.fixed_lr, log=self.lr_log)
        else:
            lr = trial.suggest_float("lr", self.lr_low, self.lr_high, log=self.lr_log)
        out: dict[str, Any] = {"lr": lr}
        bs = self.batch_size
        if isinstance(bs, tuple):
            out["batch_size"] = trial.suggest_int("batch_size", int(bs[0]), int(bs[1]), log=True)
        elif isinstance(bs, list):
            out["batch_size"] = int(trial.suggest_categorical("batch_size", [int(v) for v in bs]))
        else:
            out["batch_size"] = int(bs)
        wd = self.weight_decay
        if isinstance(wd, tuple):
            out["weight_decay"] = trial.suggest_float("weight_decay", float(wd[0]), float(wd[1]), log=wd[0] > 0)
        elif isinstance(wd, list):
            out["weight_decay"] = float(trial.suggest_categorical("weight_decay", [float(v) for v in wd]))
        else:
            out["weight_decay"] = float(wd)
        mo = self.momentum
        if isinstance(mo, tuple):
            out["momentum"] = trial.suggest_float("momentum", float(mo[0]), float(mo[1]))
        elif isinstance(mo, list):
            out["momentum"] = float(trial.suggest_categorical("momentum", [float(v) for v in mo]))
        else:
            out["momentum"] = float(mo)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (tuples become lists tagged as ranges)."""

        def enc(v: Any) -> Any:
            if isinstance(v, tuple):
                return {"range": list(v)}
            if isinstance(v, list):
                return {"choices": list(v)}
            return v

        return {
            "lr": {"range": [self.lr_low, self.lr_high], "log": self.lr_log, "fixed": self.fixed_lr},
            "batch_size": enc(self.batch_size),
            "weight_decay": enc(self.weight_decay),
            "momentum": enc(self.momentum),
        }


def grid_points(low: float, high: float, n: int, *, log: bool = True) -> list[float]:
    """``n`` learning rates over ``[low, high]``: log-spaced (``numpy.geomspace``) or linear.

    Both ends are included. The thesis's grid over ``(0, 0.5]`` with ``n`` points is the linear
    grid with ``low = 0.5 / n``: ``{0.5 k / n : k = 1..n}``.
    """
    import numpy as np

    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"grid size must be an int >= 1, got {n!r}")
    if n == 1:
        return [float(high)]
    pts = np.geomspace(low, high, int(n)) if log else np.linspace(low, high, int(n))
    pts = np.clip(pts, low, high)
    return [float(p) for p in pts]

