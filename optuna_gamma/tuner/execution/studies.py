"""The run's studies in its storage: their names, creating or loading them, counting trials.

A per-epoch run keeps study ``"{run}/epoch-{e:03d}"`` for each epoch ``e``; a whole-training run
keeps the one study ``"{run}/whole"``. :meth:`RunStudies.open` creates a study or loads it and
checks that it records the same run (:func:`~optuna_gamma.tuner.persistence.identity.
check_same_run`); :meth:`RunStudies.count_complete` counts the run's complete trials (for the
progress bar and a call's ``new_trials``).

The run's first study also names its artifact store: whoever creates it writes a marker into
its store and records it (:data:`~optuna_gamma.tuner.persistence.states.STORE_MARKER`); a
process that opens it later checks that its own store holds that marker. A worker whose store
does not is refused (its states would be written where the run never reads them); a resumed
run whose store does not (an emptied or another folder) is warned that the states it needs are
recomputed, and marks its store. The marker also lets a driver resume with the run's store at
another path than the recorded one (a shared folder mounted elsewhere on the head's new node,
or moved): a store that holds it is the run's, whatever its path.
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
from optuna_gamma.tuner.persistence.states import StateStore
from optuna_gamma.tuner.persistence.states import STORE_MARKER
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
        store: The process's state store (``None``: its marker is neither written nor checked).
        paths_may_move: The run's own paths may differ from the recorded ones (a driver whose
            storage file is inside the run directory: a directory moved or copied elsewhere
            resumes there).
    """

    def __init__(
        self,
        storage: Any,
        run: str,
        mode: str,
        objective: Objective,
        plan: RunPlan,
        role: str,
        store: StateStore | None = None,
        paths_may_move: bool = False,
    ) -> None:
        self.storage = storage
        self.run = run
        self.mode = mode
        self.objective = objective
        self.plan = plan
        self.role = role
        self.store = store
        self.paths_may_move = paths_may_move
        self._store_checked = False
        self._store_reached: bool | None = None
        self._local_settings_said = False

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
            if name == self.name(1) and self.store is not None:  # before the config: a worker
                study.set_user_attr(STORE_MARKER, self.store.mark(self.run))  # finds both
                self._store_checked = True
            study.set_user_attr("config", self._with_run_paths(name, record))
            return study
        check_same_run(
            name,
            old,
            record,
            own_paths=self.role == "worker" or self.paths_may_move,
            store_reached=self._reaches_run_store(old.get("artifacts"), record.get("artifacts")),
        )
        check_same_plan(name, old, record)
        if name == self.name(1):
            self._check_store(study, old.get("artifacts"))
        if self.role != "worker" and not self._local_settings_said:
            self._local_settings_said = self._warn_local_settings(name, old, record)
        return study

    @staticmethod
    def _warn_local_settings(name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
        """Say in one line which of the settings that are not part of a run's identity but
        change its results (threads, device, whether the samplers take the training as
        deterministic) differ from those study ``name`` was run with (keys an older record lacks
        are not compared); whether it said so (once per call: the first such study)."""
        keys = [
            k
            for k in ("num_threads", "device", "deterministic")
            if k in old and k in new and old[k] != new[k]
        ]
        if keys:
            was = ", ".join(f"{k}={old[k]!r}" for k in keys)
            now = ", ".join(f"{k}={new[k]!r}" for k in keys)
            _logger.warning(
                f"study {name!r} was run with {was}, this call uses {now}: results may differ "
                "from an uninterrupted run"
            )
        return bool(keys)

    def _reaches_run_store(self, recorded: Any, given: Any) -> bool:
        """Whether a driver given another artifact store path than the recorded one reaches the
        run's store there: its store holds the marker the run's first study records (checked
        once per call, and said once)."""
        if self.store is None or self.role == "worker" or recorded is None or recorded == given:
            return False
        if self._store_reached is None:
            marker = self._first_attr(STORE_MARKER)
            self._store_reached = marker is not None and self.store.holds(marker, self.run)
            if self._store_reached:
                _logger.info(
                    f"run {self.run!r}: its artifact store, recorded as {recorded!r}, is reached "
                    f"at {self.store.where!r} (it holds the run's marker)"
                )
                self._store_checked = True
        return self._store_reached

    def _with_run_paths(self, name: str, record: dict[str, Any]) -> dict[str, Any]:
        """``record`` for a new study: a worker's records the run's own paths (its first
        study's ``run_dir`` and ``artifacts``, which a resumed driver compares), not those by
        which the worker's machine reaches them."""
        if self.role != "worker" or name == self.name(1):
            return record
        first = self._first_attr("config")
        if not isinstance(first, Mapping):
            return record
        return {**record, **{k: first[k] for k in ("run_dir", "artifacts") if k in first}}

    def _first_attr(self, key: str) -> Any:
        """User attribute ``key`` of the run's first study (``None`` if it has none, or there is
        no such study yet)."""
        if self.name(1) not in self.names():
            return None
        return self.load(1).user_attrs.get(key)

    def _check_store(self, study: optuna.Study, recorded: Any) -> None:
        """This process's store holds the marker the run's first study records (module
        docstring); a run recorded without one (an earlier version) is marked by its driver.

        Raises:
            ValueError: A worker's store does not hold the marker, or a malformed record.
        """
        if self.store is None or self._store_checked:
            return
        marker = study.user_attrs.get(STORE_MARKER)
        if marker is not None and self.store.holds(marker, self.run):
            self._store_checked = True
            return
        if self.role == "worker":
            if marker is None:  # a run from before markers: nothing to compare with
                return
            raise ValueError(
                f"this worker's artifact store {self.store.where!r} does not hold the "
                f"training states of run {self.run!r} (they are in {recorded!r}): give every "
                "worker the run's store, a folder shared with the run's machine (mounted at "
                "any path) or the same s3://bucket/prefix"
            )
        if marker is not None:
            _logger.warning(
                f"the artifact store {self.store.where!r} does not hold the training states "
                f"of run {self.run!r} (they were in {recorded!r}): a state the run needs is "
                "recomputed from its start (the initial state from the seed), with a warning"
            )
        study.set_user_attr(STORE_MARKER, self.store.mark(self.run))
        self._store_checked = True

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
