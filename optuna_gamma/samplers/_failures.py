"""Failed trials as an unknown constraint: where the objective cannot be evaluated.

A trial that fails (its objective raised an error the study caught, or returned NaN, which
Optuna records as ``FAIL``) has no value, so the objective's GP cannot learn from it, and
without more the sampler proposes the same region again: on ``x in [-2, 2]`` with NaN for
``x > 0.5`` it proposed the failing edge ``x = 2`` in 28 of 30 trials (Optuna's ``GPSampler``
with two start-up trials in 27). That is the usual way an ML objective fails: a learning rate
too large makes the loss NaN.

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
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_gamma.samplers._observations import standardize
from optuna_gamma.samplers._search_space import SearchSpace


__all__ = ["FAILURE_TARGET", "failed_points", "failure_targets", "unrepeated_failures"]

#: The name of the failure model among the sampler's GPs (its hyperparameters are cached by it).
FAILURE_TARGET = "failure"


#: Where a trial that failed before it suggested some parameters of the space is placed along
#: them (in the unit cube, the same value for each): it failed whatever their values, so it
#: stands at three points across their range rather than at one.
UNSUGGESTED_AT = (1.0 / 6.0, 0.5, 5.0 / 6.0)


def unrepeated_failures(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The FAIL trials among ``trials`` whose parameters no COMPLETE or RUNNING trial holds.

    A failure whose exact parameters run again is a retry: Optuna's ``RetryFailedTrialCallback``
    after a worker's heartbeat stopped, or the per-epoch tuner after a crash, re-enqueue the
    failed trial's parameters. That failure is the process's, not the point's, so it does not
    enter the failure model while its retry runs or after it completed.
    """
    held = {_key(t.params) for t in trials if t.state in (TrialState.COMPLETE, TrialState.RUNNING)}
    return [t for t in trials if t.state == TrialState.FAIL and _key(t.params) not in held]


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
