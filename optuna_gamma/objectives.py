"""kappa: the objective output that combines validation accuracy and loss (thesis eqs. 11-12).

The thesis ("Research on Hyperparameter Optimization for Improving AutoML Performance", Pukyong
National University, section 3.2) returns to Bayesian optimization not the validation accuracy
alone but a combination ``kappa`` of the validation accuracy ``Ma`` and the validation loss
``Ml``. The equations are garbled in the source text; this module implements the reading fixed by
the project's design reference (DESIGN.md section 3):

.. math::

    \\kappa_1 = \\max(0,\\; M_a - \\lambda \\ln M_l)                       \\quad \\text{(eq. 11)}

    \\kappa_2 = \\max(0,\\; M_a^2 - \\ln(M_l) / \\lambda)                   \\quad \\text{(eq. 12)}

with ``Ma`` a fraction in [0, 1], ``Ml`` the mean cross-entropy clipped below at ``1e-12`` and
``lambda`` in (0, 1]. Both are maximized. Any callable ``(accuracy, loss) -> float`` may be used
in place of the two named variants.

This module is pure Python (``math`` only): importing it never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import math
import numbers
from typing import Union


__all__ = [
    "DEFAULT_LAMBDA",
    "KAPPA_FUNCTIONS",
    "LOSS_FLOOR",
    "KappaFn",
    "KappaResult",
    "compute_kappa",
    "kappa_1",
    "kappa_2",
    "resolve_kappa",
]

KappaFn = Callable[[float, float], float]
"""A kappa-like objective output: ``fn(accuracy, loss) -> float`` (larger is better)."""

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


def _check_accuracy(accuracy: float) -> float:
    if isinstance(accuracy, bool) or not isinstance(accuracy, numbers.Real):
        raise ValueError(f"accuracy must be a real number in [0, 1], got {accuracy!r}.")
    acc = float(accuracy)
    if not (0.0 <= acc <= 1.0):  # also rejects nan
        raise ValueError(
            f"accuracy must be a fraction in [0, 1] (not a percentage), got {accuracy!r}."
        )
    return acc


def _check_lambda(lam: float) -> float:
    if isinstance(lam, bool) or not isinstance(lam, numbers.Real):
        raise ValueError(f"lam must be a real number in (0, 1], got {lam!r}.")
    value = float(lam)
    if not (0.0 < value <= 1.0):  # also rejects nan
        raise ValueError(f"lam must lie in (0, 1], got {lam!r}.")
    return value


def _log_loss(loss: float) -> float:
    if isinstance(loss, bool) or not isinstance(loss, numbers.Real):
        raise ValueError(f"loss must be a real number, got {loss!r}.")
    value = float(loss)
    if math.isnan(value) or value < 0.0:
        raise ValueError(f"loss must be a non-negative number, got {loss!r}.")
    if math.isinf(value):
        raise ValueError(
            f"loss must be finite, got {loss!r}; use compute_kappa() to map a diverged "
            "run to kappa 0 with the diverged flag."
        )
    return math.log(max(value, LOSS_FLOOR))


def kappa_1(accuracy: float, loss: float, lam: float = DEFAULT_LAMBDA) -> float:
    """Thesis eq. 11: ``kappa_1 = max(0, Ma - lam * ln(max(Ml, 1e-12)))``.

    Args:
        accuracy: Validation accuracy ``Ma`` as a fraction in [0, 1].
        loss: Mean validation cross-entropy ``Ml`` (finite, >= 0); clipped below at ``1e-12``.
        lam: Trade-off ``lambda`` in (0, 1].

    Returns:
        The non-negative value of kappa_1 (larger is better).

    Raises:
        ValueError: If ``accuracy`` is outside [0, 1], ``loss`` is negative, nan or infinite, or
            ``lam`` is outside (0, 1].
    """
    acc = _check_accuracy(accuracy)
    lam_ = _check_lambda(lam)
    return max(0.0, acc - lam_ * _log_loss(loss))


def kappa_2(accuracy: float, loss: float, lam: float = DEFAULT_LAMBDA) -> float:
    """Thesis eq. 12 (the improved kappa): ``kappa_2 = max(0, Ma**2 - ln(max(Ml, 1e-12)) / lam)``.

    Args:
        accuracy: Validation accuracy ``Ma`` as a fraction in [0, 1].
        loss: Mean validation cross-entropy ``Ml`` (finite, >= 0); clipped below at ``1e-12``.
        lam: Trade-off ``lambda`` in (0, 1].

    Returns:
        The non-negative value of kappa_2 (larger is better).

    Raises:
        ValueError: If ``accuracy`` is outside [0, 1], ``loss`` is negative, nan or infinite, or
            ``lam`` is outside (0, 1].
    """
    acc = _check_accuracy(accuracy)
    lam_ = _check_lambda(lam)
    return max(0.0, acc * acc - _log_loss(loss) / lam_)


KAPPA_FUNCTIONS: dict[str, KappaFn] = {"kappa1": kappa_1, "kappa2": kappa_2}
"""The named kappa variants accepted by :func:`resolve_kappa` and :func:`compute_kappa`."""


@dataclass(frozen=True)
class KappaResult:
    """The objective output of one evaluation.

    Attributes:
        value: The kappa value (0.0 when the run diverged).
        diverged: True when the validation loss was not finite (nan or inf), i.e. training
            diverged; the caller may record it (e.g. as a trial user attribute).
    """

    value: float
    diverged: bool


def resolve_kappa(fn: Union[str, KappaFn]) -> KappaFn:
    """Return the kappa function named by ``fn``, or ``fn`` itself when it is callable.

    Args:
        fn: ``"kappa1"`` (eq. 11), ``"kappa2"`` (eq. 12), or any callable
            ``(accuracy, loss) -> float``.

    Returns:
        A callable ``(accuracy, loss) -> float``.

    Raises:
        ValueError: If ``fn`` is a string that names no kappa variant, or neither a string nor
            a callable.
    """
    if isinstance(fn, str):
        try:
            return KAPPA_FUNCTIONS[fn]
        except KeyError:
            raise ValueError(
                f"unknown kappa {fn!r}; expected one of {sorted(KAPPA_FUNCTIONS)} or a callable "
                "(accuracy, loss) -> float."
            ) from None
    if callable(fn):
        return fn
    raise ValueError(
        f"kappa must be one of {sorted(KAPPA_FUNCTIONS)} or a callable (accuracy, loss) -> float, "
        f"got {fn!r}."
    )


def compute_kappa(fn: Union[str, KappaFn], accuracy: float, loss: float) -> KappaResult:
    """Evaluate a kappa variant, mapping a diverged run (non-finite loss) to 0.

    Args:
        fn: ``"kappa1"``, ``"kappa2"`` or a callable ``(accuracy, loss) -> float``.
        accuracy: Validation accuracy as a fraction in [0, 1].
        loss: Mean validation loss; nan or +-inf marks a diverged run.

    Returns:
        ``KappaResult(0.0, diverged=True)`` if ``loss`` is not finite (the callable is not
        called), else ``KappaResult(fn(accuracy, loss), diverged=False)``.

    Raises:
        ValueError: If ``fn`` is unknown, ``accuracy`` is outside [0, 1], or a callable returns
            something other than a finite real number.
    """
    kappa_fn = resolve_kappa(fn)
    _check_accuracy(accuracy)
    if isinstance(loss, bool) or not isinstance(loss, numbers.Real):
        raise ValueError(f"loss must be a real number, got {loss!r}.")
    if not math.isfinite(float(loss)):
        return KappaResult(0.0, True)
    value = kappa_fn(float(accuracy), float(loss))
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"kappa callable {kappa_fn!r} must return a real number, got {value!r}."
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"kappa callable {kappa_fn!r} returned a non-finite value {value!r}.")
    return KappaResult(value, False)
