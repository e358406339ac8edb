# generated from optuna_gamma/samplers/_multi_objective.py by tools/sync_optunahub.py; do not edit
"""The multi-objective path of :class:`~optuna_gamma.GammaBOSampler`.

For a study with several directions:

* **Model.** Each objective gets its own GP (the sampler's settings: Student-t predictive, the
  same priors, fit and refit schedule), fitted on that objective's values sign-flipped to
  "larger is better", standardized and (with ``warp_output``) Yeo-Johnson warped, one objective
  at a time (:class:`MultiObservations`). The objectives are modelled as independent.
* **Acquisition.** The log expected hypervolume improvement
  (:class:`~optuna_gamma.gp.ehvi.ExpectedHypervolumeImprovement`), exact for any number of
  objectives under the independent Student-t marginals: a sum over the boxes of the
  non-dominated region (:func:`~optuna_gamma.samplers._pareto.non_dominated_boxes`) of products
  of Student-t EI differences. The front is that of the feasible observations (their posterior
  means with ``incumbent="posterior_mean"``, as the single-objective incumbent), in the GPs'
  units; the reference point is the worst feasible observed value of each objective minus a
  margin of 10 % of its observed range (Optuna's ``GPSampler`` takes 10 % of the worst value
  of its standardized objectives). No hypervolume is improved below the reference point, so
  regions worse than every observation in some objective get only the gain of the others.
* **Constraints.** As in the single-objective case: one GP per constraint and the log
  probability of feasibility added; with no feasible observation yet, the acquisition is that
  probability alone.
* **Pending trials** (``n_jobs`` threads, RUNNING trials of other workers): a *Kriging
  believer*: each objective's GP is conditioned on its own posterior mean at the pending points
  (with the hyperparameters of the fit), and those means join the front, so the hypervolume a
  pending point is expected to bring is not counted again and the predictive shrinks around
  it. This holds for both values of ``parallel`` (the fantasy average of the single-objective
  EI is not done here). The repeat guard, the greedy batch of workers still choosing and the
  conflict check before returning are the single-objective ones.
* **Not supported:** ``history`` and ``target`` (single-valued by design) raise ``ValueError``.
  ``acquisition`` (EI/PI) and ``xi`` concern the single-objective path only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import TYPE_CHECKING

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from ._failures import FAILED_STATES
from ._failures import unrepeated_failures
from ._failures import with_systematic_failures
from ._observations import constraint_matrix
from ._observations import constraints_of
from ._observations import Observations
from ._observations import standardize
from ._observations import warp
from ._optimize import optimize_acquisition
from ._parallel import conflicts
from ._pareto import non_dominated_boxes
from ._pareto import pareto_mask
from ._search_space import SearchSpace


if TYPE_CHECKING:
    from optuna.study import Study

    from ..gp import GaussianProcess
    from ..gp.ehvi import ExpectedHypervolumeImprovement
    from ._gamma_bo import GammaBOSampler


__all__ = ["MultiObservations", "reference_point", "sample_relative_multi"]

#: The trials a suggestion reads: the modelled, the pending and the failed (or pruned) ones.
_STATES = (TrialState.COMPLETE, TrialState.RUNNING, *FAILED_STATES)

#: Margin of the reference point below the worst feasible value, as a fraction of the range.
REFERENCE_MARGIN = 0.1


@dataclass(frozen=True)
class MultiObservations:
    """The completed trials of the relative search space, one column per objective.

    Attributes:
        X: Encoded parameters ``(n, d)``.
        Y: ``(n, m)`` values, each column sign-flipped so that larger is better, standardized
            and (with ``warp_output``) warped on its own.
        constraint_names, constraints, feasible: As in
            :class:`~optuna_gamma.samplers._observations.Observations`.
    """

    X: np.ndarray
    Y: np.ndarray
    constraint_names: tuple[str, ...]
    constraints: np.ndarray
    feasible: np.ndarray
    failed: np.ndarray

    @classmethod
    def from_trials(
        cls,
        space: SearchSpace,
        trials: Sequence[FrozenTrial],
        directions: Sequence[StudyDirection],
        *,
        warp_output: bool = True,
        failed: Sequence[FrozenTrial] = (),
    ) -> MultiObservations:
        from ._failures import failed_points

        rows, values, cons = [], [], []
        for t in trials:
            if t.values is None or len(t.values) != len(directions):
                continue
            try:
                rows.append(space.encode(t.params))
            except (KeyError, ValueError, TypeError):
                continue  # a trial outside this search space
            values.append(t.values)
            cons.append(constraints_of(t))
        m = len(directions)
        X = np.asarray(rows, dtype=float).reshape(-1, space.dim)
        V = np.asarray(values, dtype=float).reshape(-1, m)
        sign = np.array([-1.0 if d == StudyDirection.MINIMIZE else 1.0 for d in directions])
        columns = []
        for j in range(m):
            y, _ = standardize(sign[j] * V[:, j])
            columns.append(warp(y) if warp_output else y)
        Y = np.stack(columns, axis=1) if columns else np.zeros((0, m))
        names, C, feasible = constraint_matrix(cons)
        return cls(X, Y, names, C, feasible, failed_points(space, failed))

    @property
    def n(self) -> int:
        return int(self.Y.shape[0])

    @property
    def constrained(self) -> bool:
        """Whether the acquisition has constraints: a constraint's values, or failed trials."""
        return bool(self.constraint_names) or len(self.failed) > 0

    def first(self) -> Observations:
        """The single-objective view (first objective) that the repeat guard and the
        constraint models read (they use ``X``, the constraints and the failed points only)."""
        return Observations(
            self.X,
            self.Y[:, 0],
            self.constraint_names,
            self.constraints,
            self.feasible,
            self.failed,
        )


def reference_point(Y: np.ndarray) -> np.ndarray:
    """The reference point in the GPs' units (larger is better): the worst value of each
    column minus ``REFERENCE_MARGIN`` of its range (of 1 for a constant column)."""
    worst = Y.min(axis=0)
    spread = np.ptp(Y, axis=0)
    return worst - REFERENCE_MARGIN * np.where(spread > 0.0, spread, 1.0)


def ehvi_acquisition(
    gps: Sequence[GaussianProcess],
    front: np.ndarray,
    ref: np.ndarray,
    constraint_models: Sequence[tuple[GaussianProcess, float]] = (),
    pending: np.ndarray | None = None,
) -> ExpectedHypervolumeImprovement:
    """The log EHVI of ``gps`` over the front ``front`` ``(k, m)`` (GP units, larger is better;
    ``k = 0``: no feasible observation) and reference point ``ref``, with the pending points as
    Kriging believers (module docstring)."""
    from ..gp import Feasibility
    from ..gp.ehvi import ExpectedHypervolumeImprovement

    gps = list(gps)
    if pending is not None and len(pending) > 0:
        believed = []
        for i, gp in enumerate(gps):
            loc, _ = gp.predict(pending)
            believed.append(loc)
            gps[i] = gp.with_observations(pending, loc)
        if len(front) > 0:
            front = np.vstack([front, np.stack(believed, axis=1)])
    constraints = [Feasibility(c, t) for c, t in constraint_models]
    if len(front) == 0:
        return ExpectedHypervolumeImprovement(gps, None, None, constraints=constraints)
    lower_loss, upper_loss = non_dominated_boxes(-front, -ref)
    return ExpectedHypervolumeImprovement(gps, -upper_loss, -lower_loss, constraints=constraints)


def sample_relative_multi(
    sampler: GammaBOSampler,
    study: Study,
    trial: FrozenTrial,
    search_space: dict[str, BaseDistribution],
) -> dict[str, Any]:
    """``GammaBOSampler.sample_relative`` for a study with several objectives."""
    from ..gp.threads import limit_blas_threads

    search_space = {n: d for n, d in search_space.items() if not d.single()}
    if not search_space:
        return {}
    with sampler._lock, limit_blas_threads():
        trials = study.get_trials(deepcopy=False, states=_STATES)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        running = [t for t in trials if t.state == TrialState.RUNNING and t.number != trial.number]
        space = SearchSpace(search_space)
        obs = MultiObservations.from_trials(
            space,
            complete,
            study.directions,
            warp_output=sampler._warp_output,
            failed=unrepeated_failures(trials),
        )
        pending = sampler._pending_points(study, space, trial, running)
        if len(complete) < max(sampler._n_startup_trials, 1) or obs.n == 0:
            params = _startup_params(sampler, study, trial, space, obs, pending)
        else:
            x = _suggest(sampler, study, trial, space, obs, pending, running, complete)
            params = space.decode(x)
        if params:
            sampler._pending[(study.study_name, trial.number)] = params
    return params


def _startup_params(
    sampler: GammaBOSampler,
    study: Study,
    trial: FrozenTrial,
    space: SearchSpace,
    obs: MultiObservations,
    pending: np.ndarray,
) -> dict[str, Any]:
    """As the single-objective start-up: a random allowed point, or ``{}`` (the independent
    sampler)."""
    sampler._startup.add((study.study_name, trial.number))
    if sampler._independent_sampler is not None or (len(pending) == 0 and obs.n == 0):
        return {}
    exclude = sampler._exclusion(space, obs.first(), pending, None)
    rng = sampler._trial_rng(trial, 2)
    return space.decode(sampler._random_point(space, rng, exclude))


def _suggest(
    sampler: GammaBOSampler,
    study: Study,
    trial: FrozenTrial,
    space: SearchSpace,
    obs: MultiObservations,
    pending: np.ndarray,
    running: list[FrozenTrial],
    complete: list[FrozenTrial],
) -> np.ndarray:
    from ._gamma_bo import FLOAT_RESOLUTION

    rng = sampler._trial_rng(trial)
    single = obs.first()
    # The failure model first: its systematic failures enter each objective's data.
    failure = sampler._failure_model(study, space, single)
    gps: list[GaussianProcess] = []
    for j in range(obs.Y.shape[1]):
        X, y = obs.X, obs.Y[:, j]
        if failure is not None:
            X, y = with_systematic_failures(X, y, obs.failed, failure.systematic)
        gp = sampler._fit(study, space, X, y, target=f"objective:{j}")
        if gp is None:
            break
        gps.append(gp)
    usable = len(gps) == obs.Y.shape[1] and all(gp.dof > 1.0 for gp in gps)
    constraint_models = (
        sampler._constraint_models(study, space, single, failure)
        if obs.constrained and usable
        else []
    )
    taken = pending
    known = {t.number for t in complete}

    def propose() -> np.ndarray:
        models = gps if usable else None
        return _propose(sampler, space, models, obs, constraint_models, taken, rng)

    for _ in range(sampler._n_choosing(study, space, trial, running)):
        taken = np.vstack([taken, propose()[None]])
    x = propose()
    from ._gamma_bo import _MAX_CONFLICT_RETRIES

    for _ in range(_MAX_CONFLICT_RETRIES):
        if not conflicts(study, trial, space, x, known, FLOAT_RESOLUTION):
            break
        taken = np.vstack([taken, x[None]])
        x = propose()
    return x


def _front(
    sampler: GammaBOSampler, gps: Sequence[GaussianProcess], obs: MultiObservations
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(front, ref, pareto_rows)``: the front of the feasible observations in GP units (their
    posterior means with ``incumbent="posterior_mean"``), the reference point, and the indices of
    the Pareto-optimal feasible observations."""
    rows = np.flatnonzero(obs.feasible)
    m = obs.Y.shape[1]
    if len(rows) == 0:
        return np.zeros((0, m)), np.zeros(m), rows
    observed = obs.Y[rows]
    ref = reference_point(observed)
    if sampler._incumbent == "posterior_mean":
        values = np.stack([gp.predict(obs.X[rows])[0] for gp in gps], axis=1)
    else:
        values = observed
    best = rows[pareto_mask(-values)]
    return values, ref, best


def _propose(
    sampler: GammaBOSampler,
    space: SearchSpace,
    gps: list[GaussianProcess] | None,
    obs: MultiObservations,
    constraint_models: list[tuple[GaussianProcess, float]],
    pending: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    from ._gamma_bo import _N_LOCAL_CENTRES
    from ._gamma_bo import _NUMERICAL_ERRORS

    noisiest = None if gps is None else max(gps, key=lambda gp: float(gp.params.noise))
    exclude = sampler._exclusion(space, obs.first(), pending, noisiest, obs.Y)
    chosen: np.ndarray | None = None
    if gps is not None:
        try:
            front, ref, best = _front(sampler, gps, obs)
            acq = ehvi_acquisition(gps, front, ref, constraint_models, pending)
            if len(best) == 0:
                best = np.array([obs.first().incumbent_index()])
            centres = obs.X[rng.permutation(best)]
            n_warm = max(1, min(sampler._optimizer_settings.n_local_search // 2, len(centres)))
            x, _ = optimize_acquisition(
                acq,
                space,
                rng=rng,
                warm_starts=centres[:n_warm],
                local_centres=centres[:_N_LOCAL_CENTRES],
                exclude=exclude,
                settings=sampler._optimizer_settings,
            )
            if not exclude(x[None])[0]:
                return x
            chosen = x
        except _NUMERICAL_ERRORS as error:
            from ._gamma_bo import _logger

            _logger.warning(
                f"Multi-objective acquisition optimization failed ({error!r}); a uniformly "
                "random point is used instead."
            )
    return sampler._random_point(space, rng, exclude, fallback=chosen)
