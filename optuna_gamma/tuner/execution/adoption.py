"""After an epoch's trials: adopt the policy's selection, keep its states, remove the rest.

The thesis's policy adopts ``study.best_trial`` (the one optuna-dashboard shows as Best Trial),
or the best healthy trial where that one diverged (possible only for an objective without a
bound, whose diverged trials are valued from the trials before them).
Other policies rank the healthy trials that trained a state of their own (by value, or by the
posterior mean of a GP over setting and age: :mod:`~optuna_gamma.tuner.execution.posterior`)
and carry what the policy selects; the first is adopted. Each carried state is loaded
(recomputed from its start if unreadable) before the records are written: ``population``
(every carried state, best first), then ``adopted``, whose presence marks the study done.
Adoption is a function of the complete trials, so whichever process does it, and however often,
it writes the same records; the other trials' states are then deleted unless kept on request.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import TrialState

from optuna_gamma.tuner._logging import get_logger
from optuna_gamma.tuner.errors import AllTrialsDivergedError
from optuna_gamma.tuner.execution.posterior import posterior_values
from optuna_gamma.tuner.execution.sampling import HISTORY_EPOCHS
from optuna_gamma.tuner.execution.start_states import members_of_study
from optuna_gamma.tuner.execution.start_states import population_of_study
from optuna_gamma.tuner.execution.start_states import StartStates
from optuna_gamma.tuner.frontend import widen_hint
from optuna_gamma.tuner.persistence.runfiles import crash_point
from optuna_gamma.tuner.persistence.states import check_artifact_id
from optuna_gamma.tuner.persistence.states import StateStore
from optuna_gamma.tuner.persistence.states import StateUnavailableError
from optuna_gamma.tuner.policies import Member
from optuna_gamma.tuner.policies import Policy
from optuna_gamma.tuner.policies import RunContext
from optuna_gamma.tuner.results import epoch_ranges
from optuna_gamma.tuner.search.objectives import Objective
from optuna_gamma.tuner.search.space import ParamSpace


__all__ = ["Adoption", "NON_METRICS"]

_logger = get_logger(__name__)

#: User attributes of a trial that are not its metrics.
NON_METRICS = frozenset(
    {
        "state",
        "state_sha256",
        "reused_from",
        "retry_of",
        "time",
        "diverged",
        "kappa_clipped",
        "worker",
        "slot",
        "parent",
        "kind",
        "start_value",
        "proposed",
    }
)


#: Metrics whose non-finite value is the training's divergence itself.
_LOSSES = ("loss", "train_loss", "accuracy")


def _all_diverged(study: optuna.Study) -> AllTrialsDivergedError:
    """The error for a study none of whose trials can be adopted, with the first diverged
    trial's recorded reason (``diverged_why``): a metric that is NaN although the training is
    sound (one the trainer logs beside the loss) is named there, where the advice to narrow
    the search space would mislead."""
    diverged = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if isinstance(t.user_attrs.get("diverged_why"), str)
    ]
    said, named = "", None
    if diverged:
        said = f" (trial {diverged[0].number}: {diverged[0].user_attrs['diverged_why']})"
        named = diverged[0].user_attrs.get("diverged_metric")
    other = isinstance(named, str) and named not in _LOSSES
    return AllTrialsDivergedError(
        f"every trial of study {study.study_name!r} diverged{said}; "
        + (
            f"if {named!r} can be non-finite while the training is sound, leave it out of "
            "the metrics returned; else narrow"
            if other
            else "narrow"
        )
        + " the search space (e.g. lower the upper end of the learning rate)"
    )


def _healthy(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The study's complete trials that trained a state of their own and did not diverge."""
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not t.user_attrs.get("diverged")
        and "reused_from" not in t.user_attrs
        and "state" in t.user_attrs
        and t.value is not None
    ]


def _best_healthy(study: optuna.Study, sign: float) -> optuna.trial.FrozenTrial:
    """The best of :func:`_healthy` (the first of equal ones).

    Raises:
        AllTrialsDivergedError: Every trial diverged.
    """
    healthy = _healthy(study)
    if not healthy:
        raise _all_diverged(study)
    return min(healthy, key=lambda t: (-sign * float(t.value), t.number))  # type: ignore[arg-type]


class _AdoptedElsewhere(Exception):
    """Another process adopted the study while this one was loading the carried states."""


class Adoption:
    """Adopts the studies of a run (module docstring).

    Args:
        policy: The run's policy (what is carried).
        objective: The objective (its direction ranks the trials).
        space: The search space (the adopted hyperparameters; bounds).
        store: The run's state store.
        storage: The run's Optuna storage.
        starts: The run's start states (a state recomputed; the cache of carried states).
        keep_states: Whether every trial's state is kept (``keep_trial_states``).
    """

    def __init__(
        self,
        policy: Policy,
        objective: Objective,
        space: ParamSpace,
        store: StateStore,
        storage: Any,
        starts: StartStates,
        *,
        keep_states: bool,
    ) -> None:
        self.policy = policy
        self.objective = objective
        self.space = space
        self.store = store
        self.storage = storage
        self.starts = starts
        self.keep_states = keep_states
        self._warned_bounds: set[tuple[str, str]] = set()

    def adopt(self, study: optuna.Study, epoch: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Adopt the policy's selection; idempotent (module docstring).

        Returns:
            (the ``adopted`` record, the adopted snapshot)
        """
        if "adopted" in study.user_attrs:  # adopted already (by another worker): the same record
            return dict(study.user_attrs["adopted"]), self.starts.adopted_snapshot(epoch)
        chosen, first_is_best, posterior = self._chosen(study, epoch)
        records: list[dict[str, Any]] = []
        snaps: dict[tuple[int, int], dict[str, Any]] = {}
        try:
            for rank, trial in enumerate(chosen):
                record, snaps[(epoch, rank)] = self._carried(study, trial, epoch)
                if trial.number in posterior:  # what ranked it (adopt_on="posterior")
                    record["posterior_mean"] = posterior[trial.number]
                records.append(record)
        except _AdoptedElsewhere:  # another worker adopted meanwhile (and removed the rest)
            return dict(study.user_attrs["adopted"]), self.starts.adopted_snapshot(epoch)
        crash_point("after_adopt_verify")
        if "adopted" in study.user_attrs:  # adopted by another worker meanwhile: it stands
            return dict(study.user_attrs["adopted"]), self.starts.adopted_snapshot(epoch)
        study.set_user_attr("population", records)
        n = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        best = "best posterior mean" if posterior else "best"
        lead = f"{best} of {n} trials" if first_is_best else self.policy.kept_reason
        lead += "" if first_is_best else f", {n} trials"
        why = lead + (
            f" (kind {records[0]['kind']!r}), {len(records)} state(s) carried"
            if self.policy.name != "thesis"
            else ""
        )
        study.set_user_attr("adopted", {**records[0], "why": why})
        crash_point("after_adopt")
        self.clean_up(study)
        self.starts.remember(snaps)
        return dict(study.user_attrs["adopted"]), snaps[(epoch, 0)]

    def _chosen(
        self, study: optuna.Study, epoch: int
    ) -> tuple[list[optuna.trial.FrozenTrial], bool, dict[int, float]]:
        """The trials whose states are carried forward, the adopted one first (the policy
        decides), whether that one is the epoch's best ranked trial, and the posterior means
        that ranked them (``adopt_on="posterior"``; else empty)."""
        if self.policy.name == "thesis":
            # the best healthy trial: a diverged one is never adopted, even where its value
            # (without a bound on the objective) came out better than a healthy trial's
            best = study.best_trial
            if best.user_attrs.get("diverged"):
                best = _best_healthy(study, self.objective.sign)
            return [best], True, {}
        sign = self.objective.sign
        healthy = _healthy(study)
        score = {t.number: float(t.value) for t in healthy}  # type: ignore[arg-type]
        posterior: dict[int, float] = {}
        if self.policy.adopt_on == "posterior" and healthy:
            posterior = posterior_values(healthy, self._earlier(epoch), maximize=sign > 0)
            score = posterior
        healthy.sort(key=lambda t: (-sign * score[t.number], t.number))
        if not healthy:
            raise _all_diverged(study)
        by_number = {t.number: t for t in healthy}
        ranked = [
            Member(
                trial=t.number,
                value=float(t.value),  # type: ignore[arg-type]
                params=dict(t.params),
                parent=int(t.user_attrs.get("parent", 0)),
            )
            for t in healthy
        ]
        context = RunContext(
            maximize=sign > 0,
            population=lambda e: members_of_study(self.starts.studies.load(e)),
        )
        selected = self.policy.select(epoch, ranked, context)
        chosen = [by_number[m.trial] for m in selected]
        return chosen, selected[0].trial == ranked[0].trial, posterior

    def _earlier(self, epoch: int) -> list[tuple[optuna.trial.FrozenTrial, int]]:
        """The healthy trials of the epochs the sampler's history sees before ``epoch``
        (:data:`~optuna_gamma.tuner.execution.sampling.HISTORY_EPOCHS`), with their ages."""
        return [
            (t, epoch - e)
            for e in range(max(1, epoch - HISTORY_EPOCHS), epoch)
            for t in _healthy(self.starts.studies.load(e))
        ]

    def _carried(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial, epoch: int
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The record of a carried trial and its state (recomputed if unreadable)."""
        record: dict[str, Any] = {
            "trial": trial.number,
            "value": float(trial.value),  # type: ignore[arg-type]
            "params": dict(trial.params),
            "hparams": {**self.space.fixed, **trial.params},
            "metrics": {k: v for k, v in trial.user_attrs.items() if k not in NON_METRICS},
            "parent": int(trial.user_attrs.get("parent", 0)),
            "kind": str(trial.user_attrs.get("kind", "sample")),
        }
        proposed = trial.user_attrs.get("proposed")
        if isinstance(proposed, dict) and proposed:  # an explorer the parent's box moved
            record["proposed"] = dict(proposed)
        where = f"trial {trial.number} of study {study.study_name!r}"
        state_id = check_artifact_id(trial.user_attrs.get("state"), where=where)
        digest = trial.user_attrs.get("state_sha256")
        try:
            snap = self.store.load(state_id, digest)
            kept = self.store.keep(snap, trial, study, self.storage)
            if kept != state_id:  # a copy attached to the study (the trial's own is removed)
                state_id, digest = kept, self.store.digest(kept)
        except StateUnavailableError as err:
            # Workers that reach the epoch's barrier together may adopt at the same time
            # (adoption is a function of the complete trials, so they choose the same states).
            # The first to finish removes the states it did not carry, original files
            # included; a state missing for that reason is not recomputed: its adoption stands.
            if "adopted" in study.user_attrs:
                raise _AdoptedElsewhere from err
            snap = self.starts.recompute(study, record, epoch, f"{err} ({where})")
            state_id = self.store.save(snap, study, f"adopted-recomputed-{trial.number:04d}.pt")
            digest = self.store.digest(state_id)
        record["state"], record["state_sha256"] = state_id, digest
        return record, snap

    def clean_up(self, study: optuna.Study) -> None:
        """Delete the states of every trial but the carried ones (unless kept); idempotent."""
        if self.keep_states or study.user_attrs.get("cleaned"):
            return
        keep = {m["state"] for m in population_of_study(study)}
        self.store.remove_unadopted(study, self.storage, keep)
        study.set_user_attr("cleaned", True)

    def warn_lineage_at_bounds(self, chain: Sequence[Mapping[str, Any]]) -> None:
        """Warn once per (parameter, end) where the final model's lineage (``chain``: its
        records, epoch 1 first) trained at a range bound, naming the epochs. With a population
        this replaces :meth:`warn_at_bounds`: the best state of an epoch can belong to another
        lineage (a one-epoch explorer at the low end of the learning rate wins an epoch and is
        dropped later), so a warning per epoch would name settings the final model never used.
        """
        found: dict[tuple[str, str], list[tuple[int, Any]]] = {}
        for epoch, record in enumerate(chain, start=1):
            params = record.get("hparams") or record.get("params") or {}
            for name, side in self.space.at_bound(params):
                found.setdefault((name, side), []).append((epoch, params[name]))
        for (name, side), seen in found.items():
            if (name, side) in self._warned_bounds:
                continue
            self._warned_bounds.add((name, side))
            value = seen[-1][1]
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            _logger.warning(
                f"the final model trained with {name} at the {side} end of its search range "
                f"({shown}) in epoch{'s' if len(seen) > 1 else ''} "
                f"{epoch_ranges([e for e, _ in seen])}: {widen_hint(name, side)}"
            )

    def warn_at_bounds(self, epoch: int | None, params: Mapping[str, Any]) -> None:
        """Warn once per (parameter, end) when the adopted value sits at a range bound
        (``epoch``: that of a per-epoch run, ``None`` for whole trainings)."""
        where = f"of epoch {epoch}" if epoch is not None else "of the whole trainings"
        for name, side in self.space.at_bound(params):
            if (name, side) in self._warned_bounds:
                continue
            self._warned_bounds.add((name, side))
            _logger.warning(
                f"the best {name} {where} ({params[name]:.4g}) sits at the {side} end "
                f"of its search range: {widen_hint(name, side)}"
            )
