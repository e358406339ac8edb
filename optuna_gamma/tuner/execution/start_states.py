"""Where a trial starts: a study's start record and the states the previous epoch carried.

Epoch 1 (and whole mode) starts from the initial state, uploaded and evaluated once and
recorded in the study's user attribute ``start``; a later epoch's trial starts from the state
its slot names (``parent``: a rank in the previous epoch's ``population``, 0 = the adopted
state). :class:`StartStates` reads these records, downloads each state once per process (a
small cache of the latest epoch's states), and recovers a state whose artifact is unreadable:
the initial state is rebuilt from the seed, a trained state is recomputed from its own start
(:meth:`StartStates.recompute`), and the records are rewritten to the new copy.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

import optuna

from optuna_gamma.tuner._logging import get_logger
from optuna_gamma.tuner.execution.studies import RunStudies
from optuna_gamma.tuner.execution.training import Training
from optuna_gamma.tuner.persistence.states import check_artifact_id
from optuna_gamma.tuner.persistence.states import StateStore
from optuna_gamma.tuner.persistence.states import StateUnavailableError
from optuna_gamma.tuner.policies import Member
from optuna_gamma.tuner.policies.lineage import carried_records
from optuna_gamma.tuner.search.objectives import Objective


__all__ = ["StartStates", "members_of_study", "population_of_study"]

_logger = get_logger(__name__)

#: A state in the cache: ``(0, epoch)`` for study ``epoch``'s start from the initial state,
#: ``(epoch, rank)`` for a state study ``epoch`` carried.
Key = tuple[int, int]


def population_of_study(study: optuna.Study) -> list[dict[str, Any]]:
    """The records of the states ``study`` carried forward, best first (the adopted one alone
    for runs recorded before populations existed; :func:`carried_records`)."""
    return carried_records(study.user_attrs)


def members_of_study(study: optuna.Study) -> list[Member]:
    """The states ``study`` carried forward, best first, as the policies see them."""
    return [
        Member(
            trial=int(m["trial"]),
            value=float(m["value"]),
            params=dict(m["params"]),
            parent=int(m.get("parent", 0)),
        )
        for m in population_of_study(study)
    ]


class StartStates:
    """The start states of a run's trials, with their records (module docstring).

    Args:
        studies: The run's studies.
        store: The run's state store.
        training: The run's training (the initial state; recomputing a lost state).
        objective: The objective (the initial state's value).
        epochs_of: The epochs a trial of study ``epoch`` trains.
    """

    def __init__(
        self,
        studies: RunStudies,
        store: StateStore,
        training: Training,
        objective: Objective,
        epochs_of: Callable[[int], list[int]],
    ) -> None:
        self.studies = studies
        self.store = store
        self.training = training
        self.objective = objective
        self.epochs_of = epochs_of
        self.per_epoch = studies.mode == "per-epoch"
        self._snapshots: dict[Key, dict[str, Any]] = {}

    def start_record(self, study: optuna.Study, epoch: int) -> dict[str, Any]:
        """The study's start: ``{"state", "metrics", "value"}`` (recorded once, in ``start``).

        Epoch 1 (and whole mode) start from the initial state, which is uploaded and evaluated
        once; a later epoch starts from the previous epoch's adopted state.
        """
        rec = study.user_attrs.get("start")
        if rec is not None:
            return rec
        if epoch > 1:
            prev = self.studies.load(epoch - 1).user_attrs["adopted"]
            rec = {"from_epoch": epoch - 1, "metrics": prev["metrics"], "value": prev["value"]}
        else:
            initial = self.training.initial
            metrics = self.training.evaluate(initial, "valid")
            state_id = self.store.save(initial, study, "initial.pt")
            rec = {"state": state_id, "metrics": metrics, "value": self.objective(metrics)}
            rec["state_sha256"] = self.store.digest(state_id)
        study.set_user_attr("start", rec)
        return rec

    def start_snapshot(self, epoch: int, parent: int = 0) -> dict[str, Any]:
        """The start state of a trial of study ``epoch`` whose slot names ``parent`` (the rank
        of its state in the previous epoch's population; recovered if its artifact is
        unreadable)."""
        if epoch > 1 and self.per_epoch:
            return self.member_snapshot(epoch - 1, parent)
        if (0, epoch) in self._snapshots:
            return self._snapshots[(0, epoch)]
        initial = self.training.initial
        study = self.studies.load(epoch)
        rec = study.user_attrs["start"]
        where = f"the start of study {study.study_name!r}"
        try:
            state_id = check_artifact_id(rec.get("state"), where=where)
            snap = self.store.load(state_id, rec.get("state_sha256"))
            self._snapshots[(0, epoch)] = snap
            return snap
        except StateUnavailableError as err:
            _logger.warning(f"{err} ({where}); rebuilding the initial state from the seed")
            broken, rec = (
                rec["state"],
                {**rec, "state": self.store.save(initial, study, "initial.pt")},
            )
            rec["state_sha256"] = self.store.digest(rec["state"])
            study.set_user_attr("start", rec)
            self.store.remove(broken)
            return initial

    def population_of(self, epoch: int) -> list[dict[str, Any]]:
        """The records of the states study ``epoch`` carried forward, best first
        (:func:`population_of_study`)."""
        return population_of_study(self.studies.load(epoch))

    def parent_record(self, epoch: int, parent: int) -> dict[str, Any]:
        """What a trial of study ``epoch`` starting from rank ``parent`` starts from:
        ``{"metrics", "value"}`` of that state (the study's start record for rank 0).

        Raises:
            ValueError: ``parent`` is not a rank of the previous epoch's population (a queued
                trial read from the storage is untrusted).
        """
        if parent == 0 or epoch == 1 or not self.per_epoch:
            if parent != 0:
                raise ValueError(f"study {self.studies.name(epoch)!r}: no parent {parent!r}")
            return dict(self.studies.load(epoch).user_attrs["start"])
        members = self.population_of(epoch - 1)
        if not isinstance(parent, int) or not 0 <= parent < len(members):
            raise ValueError(
                f"study {self.studies.name(epoch)!r}: a trial names parent {parent!r}, but the "
                f"previous epoch carried {len(members)} state(s)"
            )
        return {"metrics": members[parent]["metrics"], "value": members[parent]["value"]}

    def member_snapshot(self, epoch: int, rank: int = 0) -> dict[str, Any]:
        """State ``rank`` of study ``epoch``'s population (0: the adopted state); recomputed
        from its start if unreadable."""
        if (epoch, rank) in self._snapshots:
            return self._snapshots[(epoch, rank)]
        study = self.studies.load(epoch)
        members = self.population_of(epoch)
        record = dict(members[rank])
        what = "adopted" if rank == 0 else f"carried (rank {rank})"
        where = f"the {what} trial {record['trial']} of study {study.study_name!r}"
        try:
            state_id = check_artifact_id(record.get("state"), where=where)
            snap = self.store.load(state_id, record.get("state_sha256"))
        except StateUnavailableError as err:
            snap = self.recompute(study, record, epoch, f"{err} ({where})")
            broken, record["state"] = (
                record["state"],
                self.store.save(snap, study, f"adopted-recomputed-{record['trial']:04d}.pt"),
            )
            record["state_sha256"] = self.store.digest(record["state"])
            members[rank] = record
            if "population" in study.user_attrs:
                study.set_user_attr("population", members)
            if rank == 0:
                study.set_user_attr("adopted", {**study.user_attrs["adopted"], **record})
            self.store.remove(broken)
        # only the latest epoch's states are needed again
        self._snapshots = {k: v for k, v in self._snapshots.items() if k[0] == epoch}
        self._snapshots[(epoch, rank)] = snap
        return snap

    def adopted_snapshot(self, epoch: int) -> dict[str, Any]:
        """The adopted state of study ``epoch``; recomputed from its start if unreadable."""
        return self.member_snapshot(epoch, 0)

    def remember(self, snapshots: dict[Key, dict[str, Any]]) -> None:
        """Keep ``snapshots`` (an epoch's carried states, just adopted) as the only cached
        states."""
        self._snapshots = snapshots

    def recompute(
        self, study: optuna.Study, record: Mapping[str, Any], epoch: int, why: str
    ) -> dict[str, Any]:
        """Train a carried state again from its start (its artifact is unreadable)."""
        _logger.warning(f"{why}; recomputing it from the study's start state")
        parent = int(record.get("parent", 0))
        snap, valid, _, _, _ = self.training.train(
            self.start_snapshot(epoch, parent),
            record["hparams"],
            self.epochs_of(epoch),
            record["trial"],
        )
        recorded = record.get("metrics", {})  # validation and training metrics: compare the first
        if any(k in valid and valid[k] != v for k, v in recorded.items() if isinstance(v, float)):
            _logger.warning(
                f"the recomputed state of trial {record['trial']} of {study.study_name!r} has "
                f"other "
                f"validation metrics than recorded ({valid} vs {recorded}): training is not "
                "deterministic here"
            )
        return snap
