"""One trial of a study: reuse an earlier result for a repeated point, else train and score it.

A trial restores the state its slot names (:mod:`~optuna_gamma.tuner.execution.start_states`),
takes its hyperparameters, and, if the same point at each parameter's resolution was already
trained from the same state in this study, completes with that trial's result and
``reused_from`` = its number (no wasted trials; a worker first awaits a twin that another worker
is training right now). Otherwise it trains, evaluates, uploads the trained state and returns
the objective; a diverged trial (a non-finite metric, or an exploded loss) is COMPLETE with a
finite, clearly bad value (:func:`~optuna_gamma.tuner.execution.scoring.diverged_value`).
:func:`optimize` runs trials through :meth:`optuna.study.Study.optimize`.
"""

from __future__ import annotations

from collections.abc import Callable
import math
import time
from typing import Any

import optuna
from optuna.trial import TrialState

from optuna_gamma.tuner.execution.failures import note_failed_trial
from optuna_gamma.tuner.execution.runtime import worker_id
from optuna_gamma.tuner.execution.scoring import bound
from optuna_gamma.tuner.execution.scoring import diverged_value
from optuna_gamma.tuner.execution.scoring import divergence
from optuna_gamma.tuner.execution.scoring import finite
from optuna_gamma.tuner.execution.scoring import jsonable
from optuna_gamma.tuner.execution.start_states import StartStates
from optuna_gamma.tuner.execution.training import Training
from optuna_gamma.tuner.persistence.runfiles import crash_point
from optuna_gamma.tuner.persistence.states import StateStore
from optuna_gamma.tuner.search.neighbourhood import NearParentSampler
from optuna_gamma.tuner.search.objectives import Objective
from optuna_gamma.tuner.search.space import ParamSpace


__all__ = ["OWN_ATTRS", "TrialRunner", "optimize"]

#: User attributes of a trial's own (not copied from the trial whose result it reuses).
OWN_ATTRS = frozenset({"worker", "slot", "parent", "kind", "retry_of", "proposed"})


class TrialRunner:
    """Runs the trials of a run's studies (module docstring).

    Args:
        training: The run's training.
        starts: The trials' start states.
        store: The run's state store.
        space: The search space.
        objective: The objective.
        epochs_of: The epochs a trial of study ``epoch`` trains.
        worker: Whether this process is a worker (it labels its trials and awaits twins).
        keep_states: Whether each trial's state is attached to its trial for good
            (``keep_trial_states``).
    """

    def __init__(
        self,
        training: Training,
        starts: StartStates,
        store: StateStore,
        space: ParamSpace,
        objective: Objective,
        epochs_of: Callable[[int], list[int]],
        *,
        worker: bool,
        keep_states: bool,
    ) -> None:
        self.training = training
        self.starts = starts
        self.store = store
        self.space = space
        self.objective = objective
        self.epochs_of = epochs_of
        self.worker = worker
        self.keep_states = keep_states

    def run(
        self,
        study: optuna.Study,
        trial: optuna.Trial,
        done: list[optuna.trial.FrozenTrial] | None,
        epoch: int,
    ) -> float:
        """One trial: reuse an earlier result for a repeated point, else train, evaluate, store.

        The trial starts from the state its slot names (user attribute ``parent``, a rank of
        the previous epoch's population; 0 when the policy queued nothing) and records that
        state's value as ``start_value``. ``done`` is the study's COMPLETE trials (kept by the
        serial driver); ``None`` reads them from the storage (workers), where a point that
        another worker is training right now is awaited and then reused, so no point is trained
        twice from the same state.
        """
        crash_point("after_ask")
        if self.worker:
            trial.set_user_attr("worker", worker_id())
        hparams = self.space.suggest(trial)
        if isinstance(study.sampler, NearParentSampler):  # an explorer kept near its parent
            proposed = study.sampler.moved_proposal(study, trial.number)
            if proposed:
                trial.set_user_attr("proposed", {k: jsonable(v) for k, v in proposed.items()})
        parent = trial.user_attrs.get("parent", 0)
        start = self.starts.parent_record(epoch, parent)
        if done is None:
            done = self._await_twins(study, trial)
        params = trial.params  # a copy on every access
        for prior in done:
            if (
                prior.state == TrialState.COMPLETE
                and "reused_from" not in prior.user_attrs
                and prior.user_attrs.get("parent", 0) == parent
                and self.space.same(prior.params, params)
            ):
                for key, value in prior.user_attrs.items():
                    if key not in OWN_ATTRS:
                        trial.set_user_attr(key, value)
                trial.set_user_attr("reused_from", prior.number)
                assert prior.value is not None
                return prior.value
        snap, valid, train_metrics, t_train, t_eval = self.training.train(
            self.starts.start_snapshot(epoch, parent),
            hparams,
            self.epochs_of(epoch),
            trial.number,
        )
        value = self.objective(valid) if finite(valid) else math.nan
        why = divergence(valid, train_metrics, value, start, self.objective)
        attrs: dict[str, Any] = {k: jsonable(v) for k, v in {**valid, **train_metrics}.items()}
        attrs["time"] = {"train": t_train, "eval": t_eval}
        attrs["start_value"] = jsonable(start.get("value"))
        if why is not None:
            attrs["diverged"] = True
            attrs["diverged_why"] = why.why
            if why.metric is not None:
                attrs["diverged_metric"] = why.metric
            if math.isfinite(bound(self.objective, start)) or not math.isfinite(value):
                value = diverged_value(self.objective, done, start)
        else:
            if self.objective.clipped is not None:
                attrs["kappa_clipped"] = float(self.objective.clipped(valid))
            attrs["state"] = self.store.save(
                snap,
                trial,
                f"{study.study_name.replace('/', '-')}-trial-{trial.number:04d}.pt",
                attach=self.keep_states,
            )
            attrs["state_sha256"] = self.store.digest(attrs["state"])
            crash_point("after_save")
        for key, v in attrs.items():
            trial.set_user_attr(key, v)
        return value

    def _await_twins(
        self, study: optuna.Study, trial: optuna.Trial
    ) -> list[optuna.trial.FrozenTrial]:
        """The study's COMPLETE trials, once no other RUNNING trial holds this trial's point
        (waiting with back-off for such a twin to finish: its result is then reused)."""
        delay = 0.05
        params = trial.params
        while True:
            trials = study.get_trials(
                deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)
            )
            twins = [
                t
                for t in trials
                if t.state == TrialState.RUNNING
                and t.number != trial.number
                and t.number < trial.number
                and t.user_attrs.get("parent", 0) == trial.user_attrs.get("parent", 0)
                and self.space.same(t.params, params)
            ]
            if not twins:
                return [t for t in trials if t.state == TrialState.COMPLETE]
            time.sleep(delay)
            delay = min(2 * delay, 2.0)


def optimize(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    after: Callable[[optuna.Study, optuna.trial.FrozenTrial], None],
) -> None:
    """``study.optimize`` with the failure Optuna masks when telling fails re-raised, and the
    trial whose objective raised noted on the error (for the line that names it)."""

    def run(trial: optuna.Trial) -> float:
        try:
            return objective(trial)
        except Exception as err:
            note_failed_trial(err, trial.number, trial.params)
            raise

    masked: Exception | None = None
    try:
        study.optimize(run, n_trials=n_trials, callbacks=[after])
    except AssertionError as err:
        # Optuna's trial runner ends in ``assert False`` when telling the result fails
        # (e.g. a full disk); the failure it masks is the one to report.
        if not isinstance(err.__context__, Exception):
            raise
        masked = err.__context__
    if masked is not None:
        raise masked
