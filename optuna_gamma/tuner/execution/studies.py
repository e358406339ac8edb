"""The run's studies in its storage: their names, creating or loading them, counting trials.

A per-epoch run keeps study ``"{run}/epoch-{e:03d}"`` for each epoch ``e``; a whole-training run
keeps the one study ``"{run}/whole"``. :meth:`RunStudies.open` creates a study or loads it and
checks that it records the same run (:func:`~optuna_gamma.tuner.persistence.identity.
check_same_run`); :meth:`RunStudies.count_complete` counts the run's complete trials (for the
progress bar and a call's ``new_trials``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
import warnings

import optuna
from optuna.trial import TrialState

from optuna_gamma.tuner._logging import get_logger
from optuna_gamma.tuner.execution.manifest import current_record
from optuna_gamma.tuner.persistence.identity import check_same_plan
from optuna_gamma.tuner.persistence.identity import check_same_run
from optuna_gamma.tuner.policies import RunPlan
from optuna_gamma.tuner.search.objectives import Objective


__all__ = ["RunStudies"]

_logger = get_logger(__name__)


class RunStudies:
    """The studies of run ``run`` in ``storage``.

    Args:
        storage: The run's Optuna storage.
        run: The run's name.
        mode: ``"per-epoch"`` or ``"whole"``.
        objective: The objective (its direction and metric name are the studies').
        plan: The run's plan (its epochs and trials per epoch).
        role: The process's role (a worker does not warn about another process's settings).
    """

    def __init__(
        self, storage: Any, run: str, mode: str, objective: Objective, plan: RunPlan, role: str
    ) -> None:
        self.storage = storage
        self.run = run
        self.mode = mode
        self.objective = objective
        self.plan = plan
        self.role = role

    def name(self, epoch: int) -> str:
        """The name of study ``epoch`` (``"{run}/whole"`` in whole mode)."""
        return f"{self.run}/whole" if self.mode == "whole" else f"{self.run}/epoch-{epoch:03d}"

    def load(self, epoch: int) -> optuna.Study:
        """Study ``epoch`` (it must exist)."""
        return optuna.load_study(study_name=self.name(epoch), storage=self.storage)

    def names(self) -> set[str]:
        """The names of every study in the storage."""
        return {
            s.study_name
            for s in optuna.get_all_study_summaries(self.storage, include_best_trial=False)
        }

    def open(self, name: str, record: dict[str, Any]) -> optuna.Study:
        """Create or load study ``name``; record the config, or refuse a different one."""
        study = optuna.create_study(
            study_name=name,
            storage=self.storage,
            direction=self.objective.direction,
            load_if_exists=True,
            sampler=optuna.samplers.RandomSampler(seed=0),
        )
        old = study.user_attrs.get("config")
        if isinstance(old, Mapping):
            old = current_record(old)
        if old is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names([self.objective.metric_name])
            study.set_user_attr("config", record)
            return study
        check_same_run(name, old, record, worker=self.role == "worker")
        check_same_plan(name, old, record)
        for key in ("num_threads", "device"):
            if old.get(key) != record.get(key) and self.role != "worker":
                _logger.warning(
                    f"study {name!r} was run with {key}={old.get(key)!r}, this call uses "
                    f"{record.get(key)!r}: results may differ from an uninterrupted run"
                )
        return study

    def count_complete(self) -> int:
        """Complete trials of this run's studies that exist so far (at most each epoch's
        planned number)."""
        names = self.names()
        total = 0
        for e in range(1, self.plan.epochs + 1):
            if self.name(e) in names:
                total += min(
                    self.plan.trials[e - 1],
                    len(self.load(e).get_trials(deepcopy=False, states=(TrialState.COMPLETE,))),
                )
        return total
