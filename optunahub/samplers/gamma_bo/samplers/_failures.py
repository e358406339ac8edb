# generated from optuna_gamma/samplers/_failures.py by tools/sync_optunahub.py; do not edit
"""Failed and pruned trials as an unknown constraint: where the objective gives no value.

A trial that fails (its objective raised an error the study caught, or returned NaN, which
Optuna records as ``FAIL``) has no value, so the objective's GP cannot learn from it, and
without more the sampler proposes the same region again: on ``x in [-2, 2]`` with NaN for
``x > 0.5`` it proposed the failing edge ``x = 2`` in 28 of 30 trials (Optuna's ``GPSampler``
with two start-up trials in 27). That is the usual way an ML objective fails: a learning rate
too large makes the loss NaN. A ``PRUNED`` trial has no value either (a pruner stopped it as
unpromising, or the objective raised ``optuna.TrialPruned`` for a setting it cannot run); left
out, the same data gave the same proposal again: with Optuna's ``MedianPruner`` on a learning
curve the sampler proposed one pruned point in 37 of 40 trials. Both enter the model below.

The sampler models failure as a constraint whose value is known only at the evaluated points
(Gelbart, Snoek & Adams 2014, "Bayesian optimization with unknown constraints"): label ``-1``
at every COMPLETE trial and ``+1`` at every failed one, fit a GP to the labels (least-squares
classification), and multiply the acquisition by its probability of a label below 0, exactly as
a ``constraints_func`` constraint (:class:`~optuna_gamma.gp.acquisition.Feasibility`). A region
of failures then has a small probability of success and is left, while a failure among
successes (a transient error) only dents the surface near it. A failed point itself is never
proposed again. A trial that failed before it suggested every parameter (an error raised
between two ``suggest`` calls) failed whatever the others would have been, so it enters at
three points across their range. A failure whose exact parameters run again (a retry after
a worker died, which Optuna records as ``FAIL`` too) is left out. Without failed trials
nothing changes (bit for bit).

Two things make the model hold once a failing region is well known (measured in
``benchmarks/sampler/results/failures/``):

* **Labels are not measurements.** Fitted like an objective, the model of the labels found no
  noise and the shortest lengthscale allowed (a sharp step between the last success and the
  first failure), so between two failed points it fell back to its prior, and the acquisition,
  with no value observed there, went back into the region: after the optimum was found, every
  later trial of ``x > 0.5 fails`` went to the gaps between failures. The failure model now
  fits a noise ratio of at least :data:`FAILURE_MIN_NOISE`, as the least-squares classifier
  it is (Rasmussen & Williams 2006, sec. 6.5), and is smooth between its labels.
* **A systematic failure is bad, not unknown.** A failed point whose leave-one-out prediction
  by the failure model (:meth:`~optuna_gamma.gp.model.GaussianProcess.leave_one_out`: from
  every other point, its own label left out) fails with probability above
  :data:`SYSTEMATIC_LEVEL` lies in a region of failures; it enters the objective's GP at the
  worst observed value (as SMAC imputes a crashed run's cost; Hutter, Hoos & Leyton-Brown
  2011), so the acquisition has no reason to go there. A failure among successes (a transient
  error) is predicted to succeed by its neighbours and is not imputed: it says nothing about
  the objective. While no failure is systematic (failures at random, or a single one so far),
  the failure model is left out of the acquisition too: it would only push the search away
  from wherever a transient error happened to strike (on Branin with 15 % of trials failing at
  random, keeping it made the final regret worse on 20 of 30 seeds).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import replace
from typing import Any
from typing import NamedTuple
from typing import TYPE_CHECKING

import numpy as np
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from ..gp.settings import GPSettings
from ._observations import standardize
from ._search_space import SearchSpace


if TYPE_CHECKING:
    from ..gp.model import GaussianProcess


__all__ = [
    "FAILED_STATES",
    "FAILURE_MIN_NOISE",
    "FAILURE_TARGET",
    "FailureModel",
    "SYSTEMATIC_LEVEL",
    "failed_points",
    "failure_settings",
    "failure_targets",
    "systematic_failures",
    "unrepeated_failures",
    "with_systematic_failures",
]

#: The name of the failure model among the sampler's GPs (its hyperparameters are cached by it).
FAILURE_TARGET = "failure"

#: The failure model's smallest noise-to-signal ratio (:class:`~optuna_gamma.gp.settings.
#: GPSettings`'s ``min_noise``). With the imputation of systematic failures, on the failure
#: benchmark (40 trials, 30 seeds): failed trials (median) 17.5 -> 8 (Branin with a failing
#: region), 16 -> 5.5 (learning-rate divergence), 29.5 -> 6 (an error before the last
#: suggest), 6 -> 6 (failures at random); ``benchmarks/sampler/results/failures/``.
FAILURE_MIN_NOISE = 0.1

#: A failed point whose leave-one-out probability of failure exceeds this is systematic.
SYSTEMATIC_LEVEL = 0.8


#: Where a trial that failed before it suggested some parameters of the space is placed along
#: them (in the unit cube, the same value for each): it failed whatever their values, so it
#: stands at three points across their range rather than at one.
UNSUGGESTED_AT = (1.0 / 6.0, 0.5, 5.0 / 6.0)


#: The trials that ended without a value: they enter the failure model.
FAILED_STATES = (TrialState.FAIL, TrialState.PRUNED)


def unrepeated_failures(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The FAIL and PRUNED trials among ``trials`` whose parameters no COMPLETE or RUNNING
    trial holds.

    A failure whose exact parameters run again is a retry: Optuna's ``RetryFailedTrialCallback``
    after a worker's heartbeat stopped, or the per-epoch tuner after a crash, re-enqueue the
    failed trial's parameters. That failure is the process's, not the point's, so it does not
    enter the failure model while its retry runs or after it completed. Likewise a trial pruned
    because a completed one holds its parameters (the idiom that skips duplicates).
    """
    failed = [t for t in trials if t.state in FAILED_STATES]
    if not failed:  # the usual case: no key of every trial's parameters to build
        return []
    held = {_key(t.params) for t in trials if t.state in (TrialState.COMPLETE, TrialState.RUNNING)}
    return [t for t in failed if _key(t.params) not in held]


def _key(params: Mapping[str, Any]) -> frozenset[tuple[str, Any]]:
    return frozenset((name, repr(value)) for name, value in params.items())


def failed_points(space: SearchSpace, trials: Sequence[FrozenTrial]) -> np.ndarray:
    """Encoded points ``(k, d)`` of the failed trials: a trial with every parameter of
    ``space`` at its point; one that failed before it suggested some of them (but after at
    least one) at :data:`UNSUGGESTED_AT` along those; one with none of them, or with a value
    outside the space, not at all (retried failures are left out before:
    :func:`unrepeated_failures`)."""
    rows = []
    names = space.names
    for t in trials:
        known = {name: t.params[name] for name in names if name in t.params}
        if not known:
            continue
        missing = [name for name in names if name not in known]
        fills = (
            [{}]
            if not missing
            else [
                space.decode(space.from_unit_cube(np.full((1, space.dim), u))[0])
                for u in UNSUGGESTED_AT
            ]
        )
        for fill in fills:
            try:
                rows.append(space.encode({**{n: fill[n] for n in missing}, **known}))
            except (KeyError, ValueError, TypeError):
                break  # a value outside this search space
    return np.asarray(rows, dtype=float).reshape(-1, space.dim)


def failure_targets(
    succeeded: np.ndarray, failed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """The failure model's training data: every evaluated point, ``g`` the standardized
    negated label (larger is more likely to succeed: ``+1`` succeeded, ``-1`` failed before
    standardizing), and the threshold ``g(0)`` between the two."""
    X = np.vstack([succeeded, failed])
    g, transform = standardize(np.concatenate([np.ones(len(succeeded)), -np.ones(len(failed))]))
    return X, g, float(transform.apply(0.0))


class FailureModel(NamedTuple):
    """The failure model of a suggestion.

    Attributes:
        gp: The GP of the labels (:func:`failure_targets`).
        threshold: The threshold between the labels, in the GP's units.
        systematic: ``(k,)`` bool over the failed points (:func:`systematic_failures`).
    """

    gp: GaussianProcess
    threshold: float
    systematic: np.ndarray

    @property
    def informative(self) -> bool:
        """Whether it enters the acquisition: some failure is systematic."""
        return bool(self.systematic.any())


def failure_settings(settings: GPSettings) -> GPSettings:
    """The failure model's settings: the objective's, with the noise fitted and at least
    :data:`FAILURE_MIN_NOISE` (also for a deterministic objective: the labels are fitted by
    least squares, not measured)."""
    return replace(settings, deterministic_objective=False, min_noise=FAILURE_MIN_NOISE)


def systematic_failures(gp: GaussianProcess, threshold: float, n_succeeded: int) -> np.ndarray:
    """Which failed points of the failure model ``gp`` are systematic.

    Args:
        gp: The failure model, fitted on :func:`failure_targets`' data (the ``n_succeeded``
            completed points first, then the failed ones).
        threshold: Its threshold between the two labels.
        n_succeeded: The number of completed points.

    Returns:
        ``(k,)`` bool over the failed points: the probability that the point fails, predicted
        from every other point with its own label left out, is above :data:`SYSTEMATIC_LEVEL`.
    """
    from ..gp.acquisition import probability_of_improvement

    loc, scale = gp.leave_one_out()
    success = probability_of_improvement(
        loc[n_succeeded:], scale[n_succeeded:], threshold, dof=float(gp.dof)
    )
    return np.asarray(success < 1.0 - SYSTEMATIC_LEVEL, dtype=bool)


def with_systematic_failures(
    X: np.ndarray, y: np.ndarray, failed: np.ndarray, systematic: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The objective's data ``(X, y)`` (``y`` larger is better) with the systematic failed
    points appended at the worst observed value (unchanged without an observation)."""
    rows = failed[systematic]
    if len(rows) == 0 or len(y) == 0:
        return X, y
    return np.vstack([X, rows]), np.concatenate([y, np.full(len(rows), float(np.min(y)))])
