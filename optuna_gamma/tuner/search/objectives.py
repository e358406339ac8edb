"""kappa, and the objective a trial returns to its study (thesis eqs. 11-12; docs/design.md §3).

The thesis ("Research on Hyperparameter Optimization for Improving AutoML Performance", Pukyong
National University, section 3.2) returns to Bayesian optimization not the validation accuracy
alone but a combination ``kappa`` of the validation accuracy ``Ma`` and the validation loss
``Ml``. The equations are garbled in the source text; this module implements the reading fixed by
the project's design reference (docs/design.md §3):

.. math::

    \\kappa_1 = \\max(0,\\; M_a - \\lambda \\ln M_l)                       \\quad \\text{(eq. 11)}

    \\kappa_2 = \\max(0,\\; M_a^2 - \\ln(M_l) / \\lambda)                   \\quad \\text{(eq. 12)}

with ``Ma`` a fraction in [0, 1], ``Ml`` the mean cross-entropy clipped below at ``1e-12`` and
``lambda`` in (0, 1]. Both are maximized.

**What the study sees.** The clip at 0 makes kappa constant while the validation loss is high
(on the MNIST-500 quick start every trial of the first two epochs had kappa_1 = 0, so every
sampler saw a flat objective). An :class:`Objective` therefore returns the *unclipped* expression
(``clip=False``), which orders trials as kappa does wherever kappa > 0 and still separates them
where kappa = 0; the thesis's clipped kappa is recorded beside it (``kappa_clipped``) for the
tables that reproduce the thesis. The study's metric name is ``"kappa"``.

This module is pure Python (``math`` only): importing it never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
import math
import numbers
from typing import Any
from typing import Literal
from typing import Union

from optuna_gamma.tuner.frontend import option


__all__ = [
    "DEFAULT_LAMBDA",
    "DIVERGENCE_FACTOR",
    "LOSS_FLOOR",
    "OBJECTIVE_NAMES",
    "Objective",
    "kappa_1",
    "kappa_2",
    "objective_metric",
    "resolve_objective",
]

LOSS_FLOOR: float = 1e-12
"""The validation loss is clipped below at this value before its logarithm is taken."""

DEFAULT_LAMBDA: float = 0.5
"""Default trade-off ``lambda`` of eqs. 11-12.

The thesis gives no number: it says only that lambda is "an adjusted value between 0 and 1"
(section 3.2, below eq. 11). We take the midpoint 0.5. It keeps the two variants distinct in the
way the thesis describes eq. 12 ("Ma squared, Ml divided by lambda", giving the loss more
discriminating power, fig. 10): with lambda = 0.5 the weight on ``ln Ml`` is 0.5 in kappa_1 and
1 / 0.5 = 2 in kappa_2, four times larger, whereas lambda = 1 would give both the same loss weight.
"""

OBJECTIVE_NAMES = ("kappa1", "kappa2", "accuracy", "loss")
"""The built-in objectives of :func:`resolve_objective`."""

#: Parts of a metric's name that say smaller is better (``val_loss``, ``error``, ``mse``).
_SMALLER_IS_BETTER = ("loss", "err", "mse", "mae", "nll", "perplexity", "time")


def _metric_objectives(metrics: Mapping[str, Any]) -> list[str]:
    """``max:NAME`` / ``min:NAME`` for up to two of the numeric validation metrics (the
    direction guessed from the name), to suggest for metrics that are not kappa's."""
    named = []
    for name, value in metrics.items():
        if name == "train_loss" or isinstance(value, bool) or not isinstance(value, numbers.Real):
            continue
        smaller = any(part in name.lower() for part in _SMALLER_IS_BETTER)
        named.append(f"{'min' if smaller else 'max'}:{name}")
    return named[:2]


DIVERGENCE_FACTOR: float = 10.0
"""A trial whose validation loss exceeds this many times its epoch's start loss has diverged.

Within one epoch a healthy update does not multiply the validation loss by ten; the trials that
do have blown up (and most of them reach ``inf`` or ``nan`` a few steps later). The factor also
bounds the objective of every healthy trial (:attr:`Objective.worst`)."""


def _check_accuracy(accuracy: Any) -> float:
    if isinstance(accuracy, bool) or not isinstance(accuracy, numbers.Real):
        raise ValueError(f"accuracy must be a real number in [0, 1], got {accuracy!r}.")
    acc = float(accuracy)
    if not (0.0 <= acc <= 1.0):  # also rejects nan
        raise ValueError(
            f"accuracy must be a fraction in [0, 1] (not a percentage), got {accuracy!r}."
        )
    return acc


def _check_lambda(lam: Any) -> float:
    if isinstance(lam, bool) or not isinstance(lam, numbers.Real):
        raise ValueError(f"lam must be a real number in (0, 1], got {lam!r}.")
    value = float(lam)
    if not (0.0 < value <= 1.0):  # also rejects nan
        raise ValueError(f"lam must lie in (0, 1], got {lam!r}.")
    return value


def _log_loss(loss: Any) -> float:
    if isinstance(loss, bool) or not isinstance(loss, numbers.Real):
        raise ValueError(f"loss must be a real number, got {loss!r}.")
    value = float(loss)
    if math.isnan(value) or value < 0.0:
        raise ValueError(f"loss must be a non-negative number, got {loss!r}.")
    if math.isinf(value):
        raise ValueError(f"loss must be finite, got {loss!r} (the training diverged).")
    return math.log(max(value, LOSS_FLOOR))


def kappa_1(
    accuracy: float, loss: float, lam: float = DEFAULT_LAMBDA, *, clip: bool = True
) -> float:
    """Thesis eq. 11: ``kappa_1 = max(0, Ma - lam * ln(max(Ml, 1e-12)))``.

    Args:
        accuracy: Validation accuracy ``Ma`` as a fraction in [0, 1].
        loss: Mean validation cross-entropy ``Ml`` (finite, >= 0); clipped below at ``1e-12``.
        lam: Trade-off ``lambda`` in (0, 1].
        clip: Apply the thesis's ``max(0, .)``; ``False`` gives the unclipped expression the
            study sees (docs/design.md §3).

    Raises:
        ValueError: If ``accuracy`` is outside [0, 1], ``loss`` is negative, nan or infinite, or
            ``lam`` is outside (0, 1].
    """
    value = _check_accuracy(accuracy) - _check_lambda(lam) * _log_loss(loss)
    return max(0.0, value) if clip else value


def kappa_2(
    accuracy: float, loss: float, lam: float = DEFAULT_LAMBDA, *, clip: bool = True
) -> float:
    """Thesis eq. 12 (the improved kappa): ``kappa_2 = max(0, Ma**2 - ln(max(Ml, 1e-12)) / lam)``.

    Args and errors as :func:`kappa_1`.
    """
    acc = _check_accuracy(accuracy)
    value = acc * acc - _log_loss(loss) / _check_lambda(lam)
    return max(0.0, value) if clip else value


MetricsFn = Callable[[Mapping[str, Any]], float]


@dataclass(frozen=True)
class Objective:
    """The value a trial returns to its study, computed from the validation metrics.

    Attributes:
        name: Identifies the objective in the studies' configuration (``"kappa1"``,
            ``"kappa2:0.2"``, a callable's name).
        fn: ``metrics -> float``; the metrics are what the trainer's ``evaluate`` returned.
        direction: ``"maximize"`` or ``"minimize"``.
        metric_name: The study's metric name (``study.set_metric_names``), shown by
            optuna-dashboard; ``"kappa"`` for both kappas.
        requires: Metric names ``fn`` reads (checked with a clear error).
        clipped: For kappa: the thesis's clipped value, recorded as ``kappa_clipped``.
        worst: ``start_metrics -> float``: a value no healthy trial can be worse than, given the
            metrics of its epoch's start state (a healthy trial has accuracy >= 0 and a loss, or
            a minimized metric of ``"min:NAME"`` whose start value is positive, at most
            :data:`DIVERGENCE_FACTOR` times the start's; a trial beyond it has diverged, and
            ``nan`` means no bound from this start). Diverged trials are told a value just
            beyond it (see :func:`~optuna_gamma.tuner.execution.scoring.diverged_value`).
    """

    name: str
    fn: MetricsFn
    direction: Literal["maximize", "minimize"] = "maximize"
    metric_name: str = "objective"
    requires: tuple[str, ...] = ()
    clipped: MetricsFn | None = None
    worst: MetricsFn | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("maximize", "minimize"):
            raise ValueError(f"direction must be 'maximize' or 'minimize', got {self.direction!r}")
        if not callable(self.fn):
            raise ValueError(f"objective fn must be callable, got {self.fn!r}")

    @property
    def sign(self) -> float:
        """+1 when larger is better, -1 otherwise."""
        return 1.0 if self.direction == "maximize" else -1.0

    def __call__(self, metrics: Mapping[str, Any]) -> float:
        """The objective value of ``metrics``.

        Raises:
            ValueError: A required metric is missing, or ``fn`` returns no real number. A
                non-finite result is returned as is (the caller treats it as diverged).
        """
        missing = [k for k in self.requires if k not in metrics]
        if missing:
            fits = [option("objective", k) for k in ("loss", "accuracy") if k in metrics]
            if not fits:  # a metric as it is: max:val_accuracy, min:val_loss
                fits = [option("objective", named) for named in _metric_objectives(metrics)]
            raise ValueError(
                f"objective {self.name!r} needs the metrics {missing}, but evaluate() returned "
                f"{sorted(metrics)}: pass "
                + (f"{' or '.join(fits)}, or " if fits else "")
                + "an objective computed from your metrics"
            )
        try:
            value = self.fn(metrics)
        except KeyError as err:
            raise ValueError(
                f"objective {self.name!r} reads the metric {err.args[0]!r}, but evaluate() "
                f"returned "
                f"{sorted(metrics)}"
            ) from None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"objective {self.name!r} must return a real number, got {value!r}")
        return float(value)

    @classmethod
    def kappa1(cls, lam: float = DEFAULT_LAMBDA) -> Objective:
        """Unclipped eq. 11, ``Ma - lam ln Ml`` (maximize; ``kappa_clipped`` recorded)."""
        return cls._kappa("kappa1", kappa_1, lam)

    @classmethod
    def kappa2(cls, lam: float = DEFAULT_LAMBDA) -> Objective:
        """Unclipped eq. 12, ``Ma^2 - ln(Ml) / lam`` (maximize; ``kappa_clipped`` recorded)."""
        return cls._kappa("kappa2", kappa_2, lam)

    @classmethod
    def _kappa(cls, name: str, fn: Callable[..., float], lam: float) -> Objective:
        lam = _check_lambda(lam)
        return cls(
            name=name if lam == DEFAULT_LAMBDA else f"{name}:{lam:g}",
            fn=lambda m: _safe(fn, m, lam, clip=False),
            metric_name="kappa",
            requires=("accuracy", "loss"),
            clipped=lambda m: fn(m["accuracy"], m["loss"], lam),
            worst=lambda start: fn(0.0, DIVERGENCE_FACTOR * start["loss"], lam, clip=False),
        )

    @classmethod
    def accuracy(cls) -> Objective:
        """Validation accuracy alone (maximize): the thesis's "no kappa" arm."""
        return cls(
            name="accuracy",
            fn=lambda m: float(m["accuracy"]),
            metric_name="accuracy",
            requires=("accuracy",),
            worst=lambda start: 0.0,
        )

    @classmethod
    def metric(cls, name: str, direction: str) -> Objective:
        """One metric of ``evaluate()`` as it is, ``"min"``-imized or ``"max"``-imized: the
        objective ``"min:mse"`` / ``"max:f1"`` (``--objective min:mse``), for a trainer whose
        metrics are not kappa's accuracy and loss (a regression, a detector's mAP).

        Raises:
            ValueError: An empty name, or a direction other than ``"min"`` and ``"max"``.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"objective '{direction}:NAME' needs a metric name, got {name!r}")
        if direction not in ("min", "max"):
            raise ValueError(f"objective direction must be 'min' or 'max', got {direction!r}")
        name = name.strip()
        return cls(
            name=f"{direction}:{name}",
            fn=lambda m: float(m[name]),
            direction="minimize" if direction == "min" else "maximize",
            metric_name=name,
            requires=(name,),
            worst=(lambda start: _metric_bound(start, name)) if direction == "min" else None,
        )

    @classmethod
    def loss(cls) -> Objective:
        """Validation loss alone (minimize)."""
        return cls(
            name="loss",
            fn=lambda m: float(m["loss"]),
            direction="minimize",
            metric_name="loss",
            requires=("loss",),
            worst=lambda start: _metric_bound(start, "loss"),
        )


def _metric_bound(start: Mapping[str, Any], name: str) -> float:
    """The worst value of a minimized metric (an MSE, an error rate, a perplexity) a healthy
    trial can have: :data:`DIVERGENCE_FACTOR` times the start's, as for the loss; ``nan`` (no
    bound) where the start's value is not positive (a log-likelihood, which has no such
    scale)."""
    ref = start[name]
    if isinstance(ref, bool) or not isinstance(ref, numbers.Real) or not float(ref) > 0.0:
        return math.nan
    return DIVERGENCE_FACTOR * float(ref)


def objective_metric(objective: Any) -> str | None:
    """The trainer's metric an objective is as it is (``accuracy``, ``loss``, the ``mse`` of
    ``min:mse``, the ``f1`` of ``max:f1``), else ``None`` (kappa, a callable's name, a record
    without one). The run's closing line and the report show that test metric first."""
    if not isinstance(objective, str):
        return None
    if objective in ("accuracy", "loss"):
        return objective
    direction, _, name = objective.partition(":")
    return name if direction in ("min", "max") and name else None


def _safe(fn: Callable[..., float], m: Mapping[str, Any], lam: float, *, clip: bool) -> float:
    """``fn(accuracy, loss)``, or nan for a non-finite loss (a diverged run)."""
    loss = m["loss"]
    if isinstance(loss, numbers.Real) and not isinstance(loss, bool) and not math.isfinite(loss):
        return math.nan
    return fn(m["accuracy"], loss, lam, clip=clip)


def resolve_objective(
    spec: Union[str, Objective, MetricsFn], *, lam: float | None = None
) -> Objective:
    """The :class:`Objective` named or given by ``spec``.

    Args:
        spec: ``"kappa1"``, ``"kappa2"`` (optionally ``"kappa2:0.2"`` for lambda), ``"accuracy"``,
            ``"loss"``, an :class:`Objective`, or a callable ``metrics -> float`` (maximized;
            wrap it in an :class:`Objective` to minimize or name it).
        lam: lambda for the kappas (overrides a ``:lam`` suffix); default :data:`DEFAULT_LAMBDA`.

    Raises:
        ValueError: An unknown name, a bad lambda, or neither a name nor a callable.
    """
    if isinstance(spec, Objective):
        return spec
    if isinstance(spec, str) and spec.strip()[:4].lower() in ("min:", "max:"):
        return Objective.metric(spec.strip()[4:], spec.strip()[:3].lower())
    if isinstance(spec, str):
        name, _, suffix = spec.strip().lower().partition(":")
        if suffix:
            try:
                lam_value: Any = float(suffix)
            except ValueError:
                raise ValueError(f"objective {spec!r}: ':{suffix}' is not a lambda") from None
        else:
            lam_value = DEFAULT_LAMBDA
        if lam is not None:
            lam_value = lam
        if name == "kappa1":
            return Objective.kappa1(lam_value)
        if name == "kappa2":
            return Objective.kappa2(lam_value)
        if name in ("accuracy", "loss") and not suffix:
            return Objective.accuracy() if name == "accuracy" else Objective.loss()
        raise ValueError(
            f"unknown objective {spec!r}; expected one of {list(OBJECTIVE_NAMES)}, 'min:NAME' or "
            "'max:NAME' (a metric evaluate() returns), or a callable metrics -> float"
        )
    if callable(spec):
        name = getattr(spec, "__name__", type(spec).__name__)
        return Objective(name=name, fn=spec, metric_name=name)
    raise ValueError(
        f"objective must be one of {list(OBJECTIVE_NAMES)}, an Objective or a callable "
        f"metrics -> float, got {spec!r}"
    )
