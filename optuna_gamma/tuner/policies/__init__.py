"""Policies: how a per-epoch run spends its compute (docs/design.md §7).

``population`` (:class:`PopulationPolicy`, the default) and ``thesis`` (:class:`ThesisPolicy`,
the thesis's fig. 8, pinned by its benchmarks). :func:`make_policy` builds one from a
:class:`~optuna_gamma.tuner.config.TunerConfig`.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
from typing import Any
from typing import TYPE_CHECKING

from optuna_gamma.tuner.policies.base import Member
from optuna_gamma.tuner.policies.base import Policy
from optuna_gamma.tuner.policies.base import RunContext
from optuna_gamma.tuner.policies.base import RunPlan
from optuna_gamma.tuner.policies.base import Slot
from optuna_gamma.tuner.policies.population import PopulationPolicy
from optuna_gamma.tuner.policies.thesis import ThesisPolicy


if TYPE_CHECKING:
    from optuna_gamma.tuner.config import TunerConfig


__all__ = [
    "POLICY_CHOICES",
    "Member",
    "Policy",
    "PopulationPolicy",
    "RunContext",
    "RunPlan",
    "Slot",
    "ThesisPolicy",
    "make_policy",
    "policy_from_record",
]

#: Policy names of ``TunerConfig(policy=...)`` and ``--policy``.
POLICY_CHOICES = ("population", "thesis")


def make_policy(config: TunerConfig, *, thesis_trials: int, fixed_plan: bool) -> Policy:
    """The policy of a per-epoch run.

    Args:
        config: The settings (``policy``, ``budget``, ``epochs``, ``trials_per_epoch``,
            ``workers``, ``warm_start``).
        thesis_trials: Trials per epoch of the thesis's policy (``trials_per_epoch``, else
            12, the thesis's 2 start-up + 10 BO trials, a grid's size, 1 for ``fixed:LR``).
        fixed_plan: The sampler only works with the thesis's plan (``grid:N``, ``fixed:LR``):
            the default policy is then ``thesis``.

    Raises:
        ValueError: An unknown policy, a budget too small for one epoch, ``warm_start`` (a
            setting of the thesis's policy) with another policy, or a grid or fixed sampler with
            the population policy.
    """
    if isinstance(config.policy, Policy):
        _check_policy_object(config, config.policy)
        return config.policy
    name = config.policy
    if name is None:
        name = "thesis" if fixed_plan else "population"
    if name == "thesis":
        t = thesis_trials
        if config.budget is not None:
            if config.budget < t:
                raise ValueError(
                    f"budget={config.budget} is less than one epoch of the thesis's policy "
                    f"({t} trials per epoch)"
                )
            return ThesisPolicy(trials=t, epochs=config.budget // t)
        return ThesisPolicy(trials=t, epochs=config.epochs or 1)
    if name == "population":
        if config.warm_start:
            raise ValueError(
                "warm_start belongs to policy='thesis'; the population policy continues the "
                "adopted setting anyway"
            )
        if fixed_plan:
            raise ValueError(
                f"sampler {config.sampler!r} enumerates fixed points per epoch: use "
                "policy='thesis' with it"
            )
        width = config.trials_per_epoch or max(1, config.workers)
        if config.budget is not None:
            return PopulationPolicy(width=width, budget=config.budget)
        return PopulationPolicy(width=width, epochs=config.epochs or 1)
    raise ValueError(f"policy must be one of {list(POLICY_CHOICES)}, got {name!r}")


def _check_policy_object(config: TunerConfig, policy: Policy) -> None:
    """Refuse plan settings of the config that a :class:`Policy` object would override: its
    own budget, epochs and width decide (before, ``policy=PopulationPolicy(budget=60)`` with
    ``budget=120`` ran 60 training epochs, silently).

    Raises:
        ValueError: ``budget``, ``epochs`` or ``trials_per_epoch`` other than the policy's, or
            ``warm_start`` (the thesis's setting) with another policy; naming both values.
    """
    width = getattr(policy, "width", getattr(policy, "trials", None))
    mine = {
        "budget": getattr(policy, "budget", None),
        "epochs": policy.plan.epochs,
        "trials_per_epoch": width,
    }
    for name, value in mine.items():
        given = getattr(config, name)
        if given is not None and given != value:
            own = f"its own {name} is {value}" if value is not None else f"it has no {name}"
            raise ValueError(
                f"{name}={given} is not the plan of the policy object given ({own}), which "
                f"decides: set it in the policy, or leave {name} unset"
            )
    if config.warm_start and policy.name != "thesis":
        raise ValueError(
            f"warm_start belongs to the thesis's policy, not to the {policy.name!r} policy "
            "object given"
        )


def policy_from_record(
    record: Mapping[str, Any], *, budget: int | None, epochs: int | None
) -> Policy:
    """The policy a run's stored record (:meth:`Policy.describe`) names, rebuilt through its
    validating constructor (a record read from a storage is untrusted), with the run's budget
    or, without one, its number of epochs.

    Raises:
        ValueError: An unknown policy name or setting, or a bad value.
    """
    if not isinstance(record, Mapping) or record.get("name") != "population":
        raise ValueError(f"the run's policy record {record!r} names no known policy")
    settings = {k: v for k, v in record.items() if k not in ("name", "population")}
    known = {
        "width",
        "first",
        "rung",
        "explore_until",
        "carry",
        "history",
        "challenge",
        "explore_radius",
        "adopt_on",
        "explore_after",
        "race_share",
        "explore_short",
        "late_population",
        "two_as_serial",
        "three_as_serial",
    }
    if not set(settings) <= known:
        raise ValueError(
            f"the run's policy record has unknown settings {sorted(set(settings) - known)}"
        )
    # records made before the settings existed
    settings.setdefault("challenge", "always")
    settings.setdefault("explore_radius", None)
    settings.setdefault("explore_after", None)
    width = settings.get("width")
    if width == 2:
        settings.setdefault("two_as_serial", False)
    if width == 3:
        settings.setdefault("three_as_serial", False)
    if budget is not None:
        policy = PopulationPolicy(budget=budget, **settings)
    else:
        policy = PopulationPolicy(epochs=epochs, **settings)
    if "late_population" not in settings and not policy._serial:
        # recorded where it is on (a population, never the serial races): a population's record
        # without it is from before the setting existed
        policy = dataclasses.replace(policy, late_population=False)
    if "race_share" not in settings and policy._race != policy._full_race:
        # recorded where it sizes the race, so a record without it that would have it now is
        # from before the setting existed: that run raced in full
        policy = dataclasses.replace(policy, race_share=None)
    if "explore_short" not in settings and policy._rung < policy.rung:
        # recorded where the rungs are shortened: a record without it is from before the
        # setting existed, when explorers raced over the short rungs as well
        policy = dataclasses.replace(policy, explore_short=True)
    return policy
