"""The thesis's policy (fig. 8; docs/design.md §4): ``T`` trials per epoch, all from the adopted
state with hyperparameters the sampler proposes, the single best adopted."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optuna_gamma.tuner.policies.base import Member
from optuna_gamma.tuner.policies.base import Policy
from optuna_gamma.tuner.policies.base import RunPlan
from optuna_gamma.tuner.policies.base import Slot


__all__ = ["ThesisPolicy"]


@dataclass(frozen=True)
class ThesisPolicy(Policy):
    """``trials`` trials in each of ``epochs`` epochs; population 1 (budget ``trials * epochs``).

    Kept unchanged for the thesis's reproduction: its benchmarks pin it, and its trials are not
    queued (the sampler proposes every one), so its runs equal those made before policies
    existed.
    """

    trials: int
    epochs: int
    name = "thesis"

    def __post_init__(self) -> None:
        self.plan  # noqa: B018 (validates)

    @property
    def plan(self) -> RunPlan:
        return RunPlan((self.trials,) * self.epochs, population=1)

    def slots(
        self,
        epoch: int,
        population: Sequence[Member],
        default: Mapping[str, Any] | None = None,
    ) -> list[Slot]:
        return [Slot() for _ in range(self.trials)]
