"""A trial's metrics as numbers, and the value of a diverged trial (docs/design.md §3).

The trainer's ``train_epoch`` and ``evaluate`` return metrics; :func:`scalars` checks them into
``{name: float}``, :func:`finite` and :func:`exploded` tell a diverged trial (a non-finite
metric, or a validation loss :data:`~optuna_gamma.tuner.search.objectives.DIVERGENCE_FACTOR`
times the start's), :func:`jsonable` stores a metric in a user attribute, and
:func:`diverged_value` gives a diverged trial a finite, clearly bad objective value.
"""

from __future__ import annotations

from collections.abc import Mapping
import math
import numbers
from typing import Any
from typing import NamedTuple

import optuna

from optuna_gamma.tuner.search.objectives import DIVERGENCE_FACTOR
from optuna_gamma.tuner.search.objectives import Objective


__all__ = ["bound", "divergence", "diverged_value", "exploded", "finite", "jsonable", "scalars"]


def scalars(
    metrics: Any, *, what: str, keep_lists: bool = False, mapping_only: bool = False
) -> dict[str, Any]:
    """Metrics as ``{name: float}``; with ``keep_lists`` also lists of numbers (a confusion
    matrix, per-class values; a NumPy array or a tensor becomes one), kept as they are.

    ``train_epoch`` may return ``None`` (no metrics) or one number (the training loss,
    ``{"train_loss": ...}``); with ``mapping_only`` (``evaluate``, whose metrics the objective
    reads by name) both are refused.

    Raises:
        ValueError: Not a mapping (or ``None`` or a number where those are allowed), or a metric
            that is not a number (nor such a list), named with the start of its value.
    """
    if not mapping_only:
        if metrics is None:
            return {}
        if _scalar(metrics):
            return {"train_loss": _float(metrics)}
    if not isinstance(metrics, Mapping):
        text = repr(metrics)
        text = text if len(text) <= 80 else text[:77] + "..."
        raise ValueError(
            f"{what} must return a mapping of metrics, e.g. {{'accuracy': ..., 'loss': ...}}, "
            f"got {type(metrics).__name__} {text}"
        )
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        if isinstance(v, bool):
            out[str(k)] = v
        elif _flag(v):  # ``torch.isnan(loss).any()``, a NumPy bool: a flag, not the number 1.0
            out[str(k)] = bool(v.item())
        elif _scalar(v):
            out[str(k)] = _float(v)
        elif keep_lists and (numbers_list := _numbers_list(v)) is not None:
            out[str(k)] = numbers_list
        else:
            text = repr(v)
            text = text if len(text) <= 80 else text[:77] + "..."
            kind = "a number or a list of numbers" if keep_lists else "a number"
            raise ValueError(f"{what} returned the metric {k!r} = {text}, which is not {kind}")
    return out


def _numbers_list(v: Any) -> list[Any] | None:
    """``v`` as nested lists of plain numbers (what a JSON user attribute holds): from a list
    or tuple, a NumPy array or a tensor; ``None`` if it is none of these or holds anything
    else."""
    if hasattr(v, "tolist") and getattr(v, "ndim", 0) >= 1:  # an array, a tensor
        v = v.detach().cpu().tolist() if hasattr(v, "detach") else v.tolist()
    if not isinstance(v, (list, tuple)):
        return None
    out: list[Any] = []
    for item in v:
        if isinstance(item, bool):
            out.append(item)
        elif _scalar(item):
            number = item.item() if hasattr(item, "item") else item
            out.append(int(number) if isinstance(number, numbers.Integral) else float(number))
        else:
            inner = _numbers_list(item)
            if inner is None:
                return None
            out.append(inner)
    return out


def _flag(v: Any) -> bool:
    """A 0-d boolean tensor or NumPy bool (``{"diverged": torch.isnan(loss).any()}``)."""
    dtype = getattr(v, "dtype", None)
    return (
        getattr(v, "ndim", 1) == 0 and hasattr(v, "item") and str(dtype) in ("bool", "torch.bool")
    )


def _scalar(v: Any) -> bool:
    """A number: a real (not a bool), or a 0-d tensor or NumPy scalar (``loss`` as returned)."""
    if isinstance(v, bool):
        return False
    return isinstance(v, numbers.Real) or (hasattr(v, "item") and getattr(v, "ndim", 1) == 0)


def _float(v: Any) -> float:
    """``v`` as a float (a tensor through ``item()``: no autograd warning, no graph kept)."""
    return float(v.item()) if hasattr(v, "item") else float(v)


def exploded(valid: Mapping[str, Any], start: Mapping[str, Any]) -> bool:
    """Whether the validation ``loss`` exceeds :data:`DIVERGENCE_FACTOR` times the start's."""
    loss, ref = valid.get("loss"), (start.get("metrics") or {}).get("loss")
    if not isinstance(loss, float) or not isinstance(ref, (int, float)) or not ref > 0:
        return False
    return loss > DIVERGENCE_FACTOR * ref


def jsonable(v: Any) -> Any:
    """A metric as stored in a user attribute (non-finite floats as ``None``)."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


def finite(metrics: Mapping[str, Any]) -> bool:
    """Whether every float metric is finite."""
    return all(math.isfinite(v) for v in metrics.values() if isinstance(v, float))


class Divergence(NamedTuple):
    """Why a trial counts as diverged: ``why`` in words, and the non-finite ``metric``'s name
    where a metric was the cause (recorded as ``diverged_why`` and ``diverged_metric``)."""

    why: str
    metric: str | None = None


def divergence(
    valid: Mapping[str, Any],
    train_metrics: Mapping[str, Any],
    value: float,
    start: Mapping[str, Any],
    objective: Objective | None = None,
) -> Divergence | None:
    """Why a trial counts as diverged (``None``: it does not), in words naming the metric: a
    non-finite metric of ``train_epoch()`` or ``evaluate()``, its ``diverged`` flag, a
    non-finite objective value, a validation loss that :func:`exploded`, or an objective value
    beyond the ``objective``'s bound from the start (:func:`bound`; e.g. the MSE of
    ``"min:mse"`` at more than :data:`DIVERGENCE_FACTOR` times the start's), so that the value a
    diverged trial is told (:func:`diverged_value`) is worse than every healthy trial's.
    Recorded with the trial and quoted when every trial of a study diverged, so that a metric
    that is NaN for another reason than the training (one the trainer logs) is found at
    once."""
    for what, metrics in (("train_epoch()", train_metrics), ("evaluate()", valid)):
        for k, v in metrics.items():
            if isinstance(v, float) and not math.isfinite(v):
                return Divergence(f"{what} returned {k} = {v}", k)
    if train_metrics.get("diverged") is True:
        return Divergence("train_epoch() returned diverged = True")
    if not math.isfinite(value):
        return Divergence(f"the objective is {value}")
    if exploded(valid, start):
        ref = (start.get("metrics") or {}).get("loss")
        return Divergence(
            f"the validation loss {valid['loss']:.4g} exceeds {DIVERGENCE_FACTOR:g} times the "
            f"start's {ref:.4g}"
        )
    if objective is None:
        return None
    limit = bound(objective, start)
    if math.isfinite(limit) and objective.sign * (value - limit) < 0:
        name = objective.metric_name
        scale = (
            f" ({DIVERGENCE_FACTOR:g} times the start's)"
            if objective.name == f"min:{name}"
            else ""
        )
        return Divergence(
            f"the validation {name} {value:.4g} is beyond {limit:.4g}, the worst a healthy "
            f"trial can have from its start{scale}"
        )
    return None


def bound(objective: Objective, start: Mapping[str, Any]) -> float:
    """The objective's worst healthy value given an epoch's ``start`` record
    (:attr:`~optuna_gamma.tuner.search.objectives.Objective.worst` of its metrics); ``nan``
    where it has none."""
    start_metrics = start.get("metrics") or {}
    if objective.worst is None or not finite(start_metrics):
        return math.nan
    try:
        return float(objective.worst(start_metrics))
    except (KeyError, ValueError, TypeError):
        return math.nan


def diverged_value(
    objective: Objective, done: list[optuna.trial.FrozenTrial], start: Mapping[str, Any]
) -> float:
    """A finite, clearly bad value for a diverged trial.

    With a bound (:attr:`~optuna_gamma.tuner.search.objectives.Objective.worst`, every built-in
    objective has one): just beyond the worst value a healthy trial can have, given the
    epoch's start metrics, ``worst - sign * 1e-3 * max(1, |worst|)``. For kappa_1 with a
    start loss of 2.3 that is ``0 - 0.5 ln(23) = -1.57``: below every healthy trial whatever
    order the trials finish in (so a diverged trial is never adopted while a healthy one
    exists), and not so far below that it squashes the healthy trials' differences in the
    sampler's standardized view, as a constant such as -1e9 would.

    Without a bound (a callable objective that returned no finite value): one spread of the
    healthy values (and the start's) below the worst value so far; this depends on the
    trials completed before it.
    """
    sign = objective.sign
    limit = bound(objective, start)
    if math.isfinite(limit):
        return limit - sign * 1e-3 * max(1.0, abs(limit))
    healthy = [
        float(t.value) for t in done if not t.user_attrs.get("diverged") and t.value is not None
    ]
    ref = start.get("value")
    if isinstance(ref, (int, float)) and math.isfinite(ref):
        healthy.append(float(ref))
    everything = healthy + [float(t.value) for t in done if t.value is not None]
    if not healthy:
        base = everything or [0.0]
        worst = min(v * sign for v in base) * sign
        return worst - sign * 1.0
    spread = max(healthy) - min(healthy)
    spread = max(spread, 1e-3 * max(1.0, max(abs(h) for h in healthy)))
    worst = min(v * sign for v in everything) * sign
    return worst - sign * spread
