"""An epoch's study as the policy plans it: its slots, design points, grid and warm start queued.

The policy (:mod:`~optuna_gamma.tuner.policies`) decides each epoch's slots from the states the
previous epoch carried and the trainer's own setting; :class:`StudyPlanner` turns them into
queued trials (:meth:`optuna.study.Study.enqueue_trial` with the slot's user attributes), draws
the ``design`` slots' points from a Latin hypercube seeded by (run seed, epoch), and queues a
grid sampler's points or the warm start. Queueing is idempotent, also across a crash in the
middle, and gives the same queue in every process.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
from typing import Any

import optuna
from optuna.trial import TrialState

from optuna_gamma.samplers._search_space import SearchSpace
from optuna_gamma.tuner.execution.start_states import members_of_study
from optuna_gamma.tuner.execution.studies import RunStudies
from optuna_gamma.tuner.persistence.runfiles import derive_seed
from optuna_gamma.tuner.policies import Member
from optuna_gamma.tuner.policies import Policy
from optuna_gamma.tuner.policies import Slot
from optuna_gamma.tuner.search.samplers import SamplerPlan
from optuna_gamma.tuner.search.space import in_distribution
from optuna_gamma.tuner.search.space import ParamSpace
from optuna_gamma.tuner.trainer import own_value


__all__ = ["StudyPlanner", "enqueue_next_slot", "enqueue_once", "enqueue_slots"]


class StudyPlanner:
    """Plans and queues the trials of a run's studies (module docstring).

    Args:
        policy: The run's policy.
        plan: The sampler plan (its grid).
        space: The search space.
        studies: The run's studies.
        initial: The initial state's snapshot (the trainer's own setting).
        seed: The run's seed.
        warm_start: Whether epoch ``e > 1`` first tries epoch ``e - 1``'s adopted parameters.
        own: The trainer's own values of hyperparameters (``default_hyperparameters()``:
            what the optimizer does not hold, or overrides).
    """

    def __init__(
        self,
        policy: Policy,
        plan: SamplerPlan,
        space: ParamSpace,
        studies: RunStudies,
        initial: Mapping[str, Any],
        seed: int,
        warm_start: bool,
        own: Mapping[str, Any] | None = None,
    ) -> None:
        self.policy = policy
        self.plan = plan
        self.space = space
        self.studies = studies
        self.initial = initial
        self.seed = seed
        self.warm_start = warm_start
        self.own = dict(own or {})

    def queue(self, study: optuna.Study, epoch: int, *, all_slots: bool) -> None:
        """Enqueue the policy's planned slots (``all_slots``: every one at once, for workers;
        else the serial driver queues one at a time, :func:`enqueue_next_slot`), grid points
        or the warm start, once."""
        slots = self.planned_slots(epoch)
        if slots is not None:
            # Workers find every slot queued. The serial driver queues one slot at a time
            # (:meth:`~optuna_gamma.tuner.execution.engine.Engine.run_study`), so that a retry
            # after a crash runs in its slot's place and a resumed run proposes what an
            # uninterrupted one would.
            if all_slots:
                enqueue_slots(study, slots)
        elif self.plan.grid:
            enqueue_once(study, self.plan.queue(derive_seed(self.seed, "grid", epoch)))
        elif self.warm_start and epoch > 1:
            prev = self.studies.load(epoch - 1).user_attrs["adopted"]
            enqueue_once(study, [dict(prev["params"])])

    def default_point(self) -> dict[str, Any]:
        """The trainer's own values of the tuned hyperparameters: those of the built optimizer
        that lie in the search space (what an untuned training uses): for ``lr`` its LR
        scheduler's base rate, for ``key[i]`` an element of a tuple. Where the parameter
        groups differ, the value that leaves them as built (:func:`own_value`). The trainer's
        ``default_hyperparameters()`` give the others (a batch size) and override these."""
        return {
            name: value
            for name, value in self.own_values().items()
            if value is not None and in_distribution(self.space.distributions[name], value)
        }

    def own_values(self) -> dict[str, Any]:
        """The trainer's own value of each tuned hyperparameter, in the search space or not
        (``None``: it has none): what :meth:`default_point` keeps those in the space of."""
        groups = self.initial["optimizer"].get("param_groups") or [{}]
        scheduled = "scheduler" in self.initial
        return {
            name: self.own[name]
            if name in self.own
            else own_value(groups, name, scheduled=scheduled)
            for name in self.space.distributions
        }

    def _members(self, epoch: int) -> list[Member]:
        return members_of_study(self.studies.load(epoch))

    def planned_slots(self, epoch: int) -> list[Slot] | None:
        """The policy's slots of study ``epoch``; ``None`` when each is a plain sampler trial
        from the adopted state (nothing to queue: the thesis's policy)."""
        slots = self.policy.slots(
            epoch, self._members(epoch - 1) if epoch > 1 else [], self.default_point()
        )
        if all(slot.plain for slot in slots):
            return None
        designed = [i for i, slot in enumerate(slots) if slot.kind == "design"]
        for i, params in zip(designed, self._design(epoch, len(designed))):
            slots[i] = dataclasses.replace(slots[i], params=params)
        return slots

    def _design(self, epoch: int, n: int) -> list[dict[str, Any]]:
        """``n`` points of a Latin hypercube over the search space, seeded by (run seed,
        epoch): the same in every process."""
        if n == 0:
            return []
        from scipy.stats import qmc

        space = SearchSpace(self.space.distributions)
        seed = derive_seed(self.seed, "design", epoch)
        U = qmc.LatinHypercube(d=space.dim, seed=seed).random(n)
        return [space.decode(x) for x in space.from_unit_cube(U)]


def enqueue_once(study: optuna.Study, points: list[dict[str, Any]]) -> None:
    """Enqueue ``points`` once per study, also across a crash in the middle: the points
    already there are read once and skipped (Optuna's ``skip_if_exists`` would read every
    trial again for each point, quadratic in a 500-point grid)."""
    if study.user_attrs.get("queued"):
        return

    def key(params: Mapping[str, Any]) -> tuple:
        return tuple(sorted((k, repr(v)) for k, v in params.items()))

    there = set()
    for t in study.get_trials(deepcopy=False):
        there.add(key({**(t.system_attrs.get("fixed_params") or {}), **t.params}))
    for p in points:
        if key(p) not in there:
            study.enqueue_trial(p)
    study.set_user_attr("queued", True)


def enqueue_next_slot(study: optuna.Study, slots: list[Slot]) -> None:
    """Queue the first slot that no live trial holds, unless a trial is queued already."""
    live = study.get_trials(
        deepcopy=False,
        states=(TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING),
    )
    if any(t.state == TrialState.WAITING for t in live):
        return
    held = {t.user_attrs.get("slot") for t in live}
    for i, slot in enumerate(slots):
        if i not in held:
            study.enqueue_trial(dict(slot.params or {}), user_attrs=slot.user_attrs(i))
            return


def enqueue_slots(study: optuna.Study, slots: list[Slot]) -> None:
    """Queue the policy's slots of a study once, also across a crash in the middle (a slot
    already queued is known by its ``slot`` user attribute)."""
    if study.user_attrs.get("queued"):
        return
    there = {t.user_attrs.get("slot") for t in study.get_trials(deepcopy=False)}
    for i, slot in enumerate(slots):
        if i not in there:
            study.enqueue_trial(dict(slot.params or {}), user_attrs=slot.user_attrs(i))
    study.set_user_attr("queued", True)
