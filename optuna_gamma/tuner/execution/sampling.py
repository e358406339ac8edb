"""The sampler of a study's trials, and what it sees of the earlier epochs.

Each trial's sampler is rebuilt from a seed derived from (run seed, study, slot)
(:class:`~optuna_gamma.tuner.search.samplers.ReseededSampler`), so a resumed run proposes what
an uninterrupted one would. Under a policy that asks for it, from epoch 2 on,
``GammaBOSampler`` also sees the trials of the :data:`HISTORY_EPOCHS` epochs before (docs/
design.md §7: knowledge across epochs) and models each trial's :func:`improvement` over the
state it started from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import TrialState

from optuna_gamma.samplers import History
from optuna_gamma.tuner.execution.start_states import members_of_study
from optuna_gamma.tuner.execution.studies import RunStudies
from optuna_gamma.tuner.persistence.runfiles import derive_seed
from optuna_gamma.tuner.policies import Member
from optuna_gamma.tuner.policies import Policy
from optuna_gamma.tuner.search.neighbourhood import NearParentSampler
from optuna_gamma.tuner.search.samplers import ReseededSampler
from optuna_gamma.tuner.search.samplers import SamplerPlan


__all__ = ["HISTORY_EPOCHS", "Sampling", "improvement"]

#: Epochs of trials the sampler sees as its history (older ones hardly correlate).
HISTORY_EPOCHS = 4


def improvement(trial: optuna.trial.FrozenTrial) -> float:
    """What the sampler models for a trial under a history: its value minus the value of the
    state it started from (its value when that is unknown)."""
    start = trial.user_attrs.get("start_value")
    assert trial.value is not None
    return trial.value - start if isinstance(start, (int, float)) else trial.value


class Sampling:
    """The per-trial samplers of a run's studies.

    Args:
        plan: The sampler plan (its factories).
        policy: The run's policy (whether the sampler sees earlier epochs).
        studies: The run's studies.
        seed: The run's seed.
    """

    def __init__(self, plan: SamplerPlan, policy: Policy, studies: RunStudies, seed: int) -> None:
        self.plan = plan
        self.policy = policy
        self.studies = studies
        self.seed = seed

    def sampler_for(
        self, epoch: int, slot_of: Callable[[optuna.Study, optuna.trial.FrozenTrial], int]
    ) -> optuna.samplers.BaseSampler:
        """The per-trial sampler of study ``epoch``, seeded from (run seed, epoch, slot).

        Under a policy that asks for it, from epoch 2 on, ``GammaBOSampler`` also sees
        the earlier epochs' trials (:meth:`history`) and models every trial's improvement over
        the state it started from (docs/design.md §7: knowledge across epochs)."""
        factory = self.plan.factory
        if self.policy.history and epoch > 1:
            factory = self.plan.factory_with_history(self.history(epoch), improvement)
        sampler: optuna.samplers.BaseSampler = ReseededSampler(
            factory,
            lambda slot: derive_seed(self.seed, "sampler", epoch, slot),
            slot_of=slot_of,
        )
        radius = self.policy.radius_at(epoch)
        if radius is not None and epoch > 1:
            sampler = NearParentSampler(sampler, radius, self.parent_setting(epoch))
        return sampler

    def parent_setting(
        self, epoch: int
    ) -> Callable[[optuna.trial.FrozenTrial], dict[str, Any] | None]:
        """The setting an explorer of study ``epoch`` starts near: the one its parent (a rank in
        the previous epoch's population, its ``parent`` attribute) was trained with; ``None``
        for the other trials. The previous epoch is adopted, so it is read once."""
        members: list[Member] = []

        def centre(trial: optuna.trial.FrozenTrial) -> dict[str, Any] | None:
            if trial.user_attrs.get("kind") != "explore":
                return None
            parent = trial.user_attrs.get("parent", 0)
            if not members:
                members.extend(members_of_study(self.studies.load(epoch - 1)))
            if isinstance(parent, bool) or not isinstance(parent, int):
                return None
            return dict(members[parent].params) if 0 <= parent < len(members) else None

        return centre

    def history(self, epoch: int) -> Callable[[optuna.Study], Any]:
        """The observations of the :data:`HISTORY_EPOCHS` epochs before ``epoch`` for the
        sampler (``GammaBOSampler(history=...)``): each healthy trial that trained its own
        state, its improvement over its start state, and its age ``epoch - e``. The earlier
        epochs are adopted, so they are read once."""
        params: list[dict[str, Any]] = []
        values: list[float] = []
        ages: list[float] = []
        distributions: dict[str, Any] | None = None
        for e in range(max(1, epoch - HISTORY_EPOCHS), epoch):
            for t in self.studies.load(e).get_trials(
                deepcopy=False, states=(TrialState.COMPLETE,)
            ):
                ua = t.user_attrs
                start = ua.get("start_value")
                if (
                    t.value is None
                    or not isinstance(start, (int, float))
                    or ua.get("diverged")
                    or "reused_from" in ua
                ):
                    continue
                params.append(dict(t.params))
                values.append(float(t.value) - float(start))
                ages.append(float(epoch - e))
                distributions = distributions or dict(t.distributions)
        # the space lets the sampler model the study's first trial already
        observed = History(params=params, values=values, ages=ages, distributions=distributions)
        return lambda _study: observed
