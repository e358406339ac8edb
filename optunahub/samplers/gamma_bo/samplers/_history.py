# generated from optuna_gamma/samplers/_history.py by tools/sync_optunahub.py; do not edit
"""Observations from earlier, related studies ("knowledge across epochs") for the GP.

A study may be one of a sequence (the per-epoch tuner runs one study per training epoch) whose
objective drifts slowly. :class:`History` carries the observations of the earlier studies, each
with its *age* (e.g. epochs ago; the study's own trials have age 0). The GP then models the
objective over ``(x, a)`` with a product kernel whose correlation decays with the distance in age,

.. math::

    k((x, a), (x', a')) = k_x(x, x')\\, k_a(|a - a'|),

the time-varying GP-bandit of PB2 (Parker-Holder, Nguyen & Roberts, "Provably efficient online
hyperparameter optimization with population-based bandits", NeurIPS 2020) after the
time-varying GP-UCB of Bogunovic, Scarlett & Cevher ("Time-varying Gaussian process bandit
optimization", AISTATS 2016). Here :math:`k_a` is the same ARD kernel (Matern-5/2 or squared
exponential) on one extra continuous input column, the age divided by :data:`AGE_SCALE`, with
its own fitted lengthscale: the data decide how fast old observations stop counting.

The acquisition is maximized over the real parameters with the age column fixed at 0
(:class:`AgeZeroAcquisition`), and its incumbent is the best posterior mean at age 0 over the
observed points (noisy-EI style: a raw value observed at another age is not comparable).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import copy
from dataclasses import dataclass
import math
import numbers
from typing import Any
from typing import TYPE_CHECKING

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

from ..gp.settings import AcquisitionKind
from ._observations import standardize
from ._observations import warp
from ._parallel import fantasy_draws
from ._search_space import SearchSpace


if TYPE_CHECKING:
    from ..gp import GaussianProcess


__all__ = [
    "AGE_SCALE",
    "AgeZeroAcquisition",
    "AgedObservations",
    "History",
    "aged_acquisition",
    "aged_observations",
    "check_history",
    "incumbent",
    "inside",
    "with_age_zero",
    "with_target",
]

#: Ages are divided by this before they enter the GP as an input column: an observation 10
#: epochs old is as far, in the kernel's units, as the width of a parameter's range (before the
#: fitted lengthscale of the age column scales it). A fixed scale (not the largest age seen)
#: keeps the meaning of the fitted lengthscale the same from one study to the next.
AGE_SCALE = 10.0


def _is_real(value: object) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Real)


def _as_tuple(name: str, value: object) -> tuple[Any, ...]:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise ValueError(f"History.{name} must be a sequence, got {value!r}.")
    return tuple(value)


@dataclass(frozen=True)
class History:
    """Observations from earlier, related studies, each with its age (>= 0, e.g. epochs ago).

    Give it to :class:`~optuna_gamma.GammaBOSampler` through its ``history`` option (a callable
    ``Study -> History``). The sequences are copied into tuples, so a ``History`` is immutable
    and picklable.

    Attributes:
        params: Parameter dicts (names as in the study). Observations whose parameters are not
            all in the relative search space of the study (a name missing, a value outside a
            distribution's range or choices) are skipped by the sampler.
        values: Objective values, in the study's direction (the same quantity the sampler's
            ``target`` gives for the study's own trials). Not NaN; infinite values are clipped
            to the range of the finite ones, as for the study's own trials.
        ages: Ages, finite and ``>= 0``; the study's own trials have age 0.
        distributions: Optional search space of the parameters (name to Optuna distribution,
            e.g. ``FrozenTrial.distributions`` of an earlier trial). While no trial of the study
            has completed, Optuna's intersection search space is empty, so without it the
            study's first trial is sampled at random like any start-up trial; with it, the GP
            proposes the first trial over this space already (the distributions must be those
            the objective suggests from, as Optuna checks their compatibility).

    Raises:
        ValueError: The sequences differ in length, a params entry is not a mapping with string
            keys, a value is not a real number or is NaN, an age is not a finite real number
            ``>= 0``, or ``distributions`` is not a mapping of names to Optuna distributions
            (the message names the entry).
    """

    params: Sequence[Mapping[str, Any]]
    values: Sequence[float]
    ages: Sequence[float]
    distributions: Mapping[str, BaseDistribution] | None = None

    def __post_init__(self) -> None:
        params = _as_tuple("params", self.params)
        values = _as_tuple("values", self.values)
        ages = _as_tuple("ages", self.ages)
        if not len(params) == len(values) == len(ages):
            raise ValueError(
                f"History.params, values and ages must have equal lengths, got {len(params)}, "
                f"{len(values)} and {len(ages)}."
            )
        for i, p in enumerate(params):
            if not isinstance(p, Mapping) or not all(isinstance(k, str) for k in p):
                raise ValueError(
                    f"History.params[{i}] must be a mapping of parameter names, got {p!r}."
                )
        for i, v in enumerate(values):
            if not _is_real(v) or math.isnan(float(v)):
                raise ValueError(
                    f"History.values[{i}] must be a real number (not NaN), got {v!r}."
                )
        for i, a in enumerate(ages):
            if not _is_real(a) or not math.isfinite(float(a)) or float(a) < 0.0:
                raise ValueError(f"History.ages[{i}] must be a finite number >= 0, got {a!r}.")
        if self.distributions is not None:
            if not isinstance(self.distributions, Mapping) or not all(
                isinstance(k, str) and isinstance(d, BaseDistribution)
                for k, d in self.distributions.items()
            ):
                raise ValueError(
                    f"History.distributions must be None or a mapping of parameter names to "
                    f"optuna distributions, got {self.distributions!r}."
                )
            object.__setattr__(self, "distributions", dict(self.distributions))
        object.__setattr__(self, "params", tuple(dict(p) for p in params))
        object.__setattr__(self, "values", tuple(float(v) for v in values))
        object.__setattr__(self, "ages", tuple(float(a) for a in ages))

    def __len__(self) -> int:
        return len(self.values)


def check_history(history: object) -> History:
    """``history`` if it is a :class:`History`, else a ``ValueError`` naming it (what the
    sampler's ``history`` callable returned)."""
    if not isinstance(history, History):
        raise ValueError(
            f"The sampler's history callable must return an optuna_gamma.History, got {history!r}."
        )
    return history


def with_target(
    trials: Sequence[FrozenTrial], target: Callable[[FrozenTrial], float] | None
) -> list[FrozenTrial]:
    """The trials with ``value`` replaced by ``target(trial)`` (shallow copies; the storage's
    trials are untouched); the trials themselves when ``target`` is ``None``.

    Raises:
        ValueError: ``target`` returned something that is not a real number, or NaN.
    """
    if target is None:
        return list(trials)
    out = []
    for t in trials:
        value = target(t)
        if not _is_real(value) or math.isnan(float(value)):
            raise ValueError(
                f"The sampler's target must return a real number (not NaN), got {value!r} for "
                f"Trial#{t.number}."
            )
        c = copy.copy(t)
        c.value = float(value)
        out.append(c)
    return out


def inside(dist: BaseDistribution, value: Any) -> bool:
    """Whether ``value`` lies in ``dist`` (range or choices; not checked against steps, which
    the encoding rounds to), with Optuna's public attributes only."""
    if isinstance(dist, CategoricalDistribution):
        try:
            dist.to_internal_repr(value)  # ValueError when not one of the choices
        except (ValueError, TypeError):
            return False
        return True
    if isinstance(dist, (FloatDistribution, IntDistribution)):
        if not _is_real(value) or not math.isfinite(float(value)):
            return False
        if isinstance(dist, IntDistribution) and float(value) != int(value):
            return False
        return dist.low <= value <= dist.high
    return False


@dataclass(frozen=True)
class AgedObservations:
    """What the GP sees with a history: inputs with the age column, jointly standardized values.

    Attributes:
        X: ``(n, d + 1)``: the encoded parameters, then the age divided by :data:`AGE_SCALE`.
            History rows come first (in the history's order) and the study's own trials (age 0)
            last, so that while the history stays the same the rows of one suggestion are a
            prefix of the next's (the cached Cholesky factor is extended, not recomputed).
        y: ``(n,)``: the history's values and the own trials' values, sign-flipped so that
            larger is better, standardized together (and Yeo-Johnson warped with
            ``warp_output``).
        n_history: Number of history rows used (inside the search space).
        is_categorical: ``(d + 1,)``: the space's categorical mask, then False for the age.
    """

    X: np.ndarray
    y: np.ndarray
    n_history: int
    is_categorical: np.ndarray

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    def at_age_zero(self) -> np.ndarray:
        """The observed points moved to age 0, ``(n, d + 1)``."""
        X = self.X.copy()
        X[:, -1] = 0.0
        return X


def aged_observations(
    space: SearchSpace,
    trials: Sequence[FrozenTrial],
    history: History,
    direction: StudyDirection,
    *,
    warp_output: bool = True,
) -> AgedObservations | None:
    """The GP's data from ``history`` and the study's own COMPLETE ``trials`` (whose ``value``
    is the target), or ``None`` when no history observation lies in ``space`` (then the sampler
    works exactly as without a history)."""
    rows: list[np.ndarray] = []
    values: list[float] = []
    ages: list[float] = []
    for params, value, age in zip(history.params, history.values, history.ages):
        if not all(
            name in params and inside(dist, params[name])
            for name, dist in zip(space.names, space.distributions)
        ):
            continue
        try:
            rows.append(space.round(space.encode(params)))
        except (KeyError, ValueError, TypeError, OverflowError):
            continue
        values.append(value)
        ages.append(age / AGE_SCALE)
    n_history = len(rows)
    if n_history == 0:
        return None
    for t in trials:
        if t.value is None:
            continue
        try:
            rows.append(space.encode(t.params))
        except (KeyError, ValueError, TypeError):
            continue  # a trial outside this search space
        values.append(float(t.value))
        ages.append(0.0)
    X = np.column_stack([np.asarray(rows, dtype=float), np.asarray(ages, dtype=float)])
    sign = -1.0 if direction == StudyDirection.MINIMIZE else 1.0
    y, _ = standardize(sign * np.asarray(values, dtype=float))
    if warp_output:
        y = warp(y)
    mask = np.append(np.asarray(space.is_categorical, dtype=bool), False)
    return AgedObservations(X, y, n_history, mask)


def with_age_zero(X: np.ndarray) -> np.ndarray:
    """``X (m, d)`` with an age column of zeros appended: ``(m, d + 1)``."""
    X = np.atleast_2d(np.asarray(X, dtype=float))
    return np.column_stack([X, np.zeros(X.shape[0])])


class AgeZeroAcquisition:
    """An acquisition of the aged GP seen over the real parameters only, at age 0.

    ``objective`` (of ``(m, d + 1)`` points) gets the age column appended as zeros and the
    gradient's age column dropped; ``constraints`` (of ``(m, d)`` points: the feasibility terms
    of the constraint GPs, which are fitted on the study's own trials) is added as it is. So
    :func:`~optuna_gamma.samplers._optimize.optimize_acquisition` and the
    :class:`~optuna_gamma.samplers._search_space.SearchSpace` work unchanged.

    Args:
        objective: The log acquisition of the aged GP (``__call__`` and ``value_and_grad``).
        constraints: The log probability of feasibility, or ``None``.
    """

    def __init__(self, objective: Any, constraints: Any = None) -> None:
        self.objective = objective
        self.constraints = constraints
        ls = getattr(objective, "lengthscales", None)
        #: The objective GP's lengthscales of the real parameters (preconditioning).
        self.lengthscales = None if ls is None else np.asarray(ls, dtype=float)[:-1]

    def __call__(self, X: np.ndarray) -> np.ndarray:
        value = np.asarray(self.objective(with_age_zero(X)), dtype=float)
        if self.constraints is not None:
            value = value + self.constraints(X)
        return value

    def value_and_grad(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        value, grad = self.objective.value_and_grad(with_age_zero(X))
        value, grad = np.asarray(value, dtype=float), np.asarray(grad, dtype=float)[:, :-1]
        if self.constraints is not None:
            cv, cg = self.constraints.value_and_grad(X)
            value, grad = value + cv, grad + cg
        return value, grad


def incumbent(gp: GaussianProcess, aged: AgedObservations) -> tuple[float, np.ndarray]:
    """The best posterior mean at age 0 over the observed points, and the observed points' real
    parameters ``(n, d)`` ordered from the best posterior mean at age 0 to the worst."""
    X0 = aged.at_age_zero()
    loc, _ = gp.predict(X0)
    order = np.argsort(-loc, kind="stable")
    return float(loc[order[0]]), X0[order, :-1]


def aged_acquisition(
    gp: GaussianProcess,
    aged: AgedObservations,
    constraint_models: Sequence[tuple[GaussianProcess, float]],
    pending: np.ndarray,
    rng: np.random.Generator,
    *,
    kind: AcquisitionKind,
    xi: float,
    fantasies: int,
) -> tuple[AgeZeroAcquisition, np.ndarray]:
    """The log acquisition of the aged GP over the real parameters at age 0, and the observed
    points ordered by their posterior mean at age 0 (warm start and local centres).

    The incumbent is :func:`incumbent`'s; pending points (own study only, ``(p, d)``) enter at
    age 0, as fantasies when ``fantasies > 0`` and ``kind == "ei"`` (as the sampler's
    ``parallel="fantasy"``), else as constant liars at the worst value observed.
    """
    # Lazy by design: the acquisition module loads scipy.special (not at `import optuna_gamma`).
    from ..gp.acquisition import Acquisition
    from ..gp.acquisition import FantasyAcquisition
    from ..gp.acquisition import Feasibility
    from ..gp.model import Fantasies

    best, ranked = incumbent(gp, aged)
    objective: Any
    if len(pending) > 0 and fantasies > 0 and kind == "ei":
        P = with_age_zero(pending)
        draws = fantasy_draws(gp, P, rng, fantasies)
        objective = FantasyAcquisition(Fantasies(gp, P, draws), best=best, draws=draws, xi=xi)
    else:
        if len(pending) > 0:
            gp = gp.with_observations(
                with_age_zero(pending), np.full(len(pending), float(aged.y.min()))
            )
        objective = Acquisition(gp, kind=kind, best=best, xi=xi)
    constraints = None
    if constraint_models:
        feasibility = [Feasibility(c, t) for c, t in constraint_models]
        constraints = Acquisition(constraint_models[0][0], best=None, constraints=feasibility)
    return AgeZeroAcquisition(objective, constraints), ranked
