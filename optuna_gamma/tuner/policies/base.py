"""What a policy decides, apart from the machinery that runs it (docs/design.md §7).

A policy plans the run (how many epochs, how many trials each epoch) and, for each epoch, the
trials' *slots*: from which carried state a trial starts and whether its hyperparameters are
fixed (a committed setting continued) or proposed by the sampler. After the epoch it selects the
states carried forward, best first; the first is the adopted one (the schedule's entry). The
engine (:mod:`~optuna_gamma.tuner.execution`: its :mod:`~optuna_gamma.tuner.execution.planning`
queues the slots, its :mod:`~optuna_gamma.tuner.execution.adoption` carries the selection)
asks, trains, stores, reuses, retries and resumes; it never decides. Ray Tune keeps its
schedulers (``PopulationBasedTraining``, ``PB2``) apart from its runner in the same way.

Compute is counted in *training epochs*: one epoch of one model. A trial of the per-epoch tuner
trains one epoch, so a run's planned compute is the sum of its trials per epoch.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import ClassVar


__all__ = ["Member", "Policy", "RunContext", "RunPlan", "Slot"]


@dataclass(frozen=True)
class Slot:
    """One trial of an epoch as the policy plans it.

    Attributes:
        parent: Rank of its start state among the states carried from the previous epoch
            (``0`` = the adopted state; the first epoch starts every trial from the initial state).
        params: Fixed hyperparameters (a setting committed to: the parent's own, continued), or
            ``None`` for the sampler to propose.
        kind: ``"sample"`` (the sampler proposes, from the adopted state), ``"continue"`` (the
            parent's setting for one more epoch), ``"explore"`` (the sampler proposes a new
            setting for the parent's state), ``"default"`` (the trainer's own setting: what
            its optimizer was built with, the untuned training's) or ``"design"`` (a point of
            a space-filling design over the search space, which the engine draws: a first
            population spread over the space rather than clustered by a model fitted on a
            handful of one-epoch results).
    """

    parent: int = 0
    params: Mapping[str, Any] | None = None
    kind: str = "sample"

    @property
    def plain(self) -> bool:
        """Whether the slot is what an unplanned trial does anyway (no queue entry needed)."""
        return self.parent == 0 and self.params is None and self.kind == "sample"

    def user_attrs(self, index: int) -> dict[str, Any]:
        """What the queued trial carries (read back by the engine, shown by the dashboard)."""
        return {"slot": index, "parent": self.parent, "kind": self.kind}


@dataclass(frozen=True)
class Member:
    """A state carried to the next epoch (a record of the study user attribute
    ``population``).

    Attributes:
        trial: Number of the trial that trained it.
        value: Its objective value.
        params: Its tuned hyperparameters.
        parent: Rank of the state it started from.
    """

    trial: int
    value: float
    params: Mapping[str, Any]
    parent: int = 0


@dataclass(frozen=True)
class RunContext:
    """What a policy may read of the run when it selects (the engine builds it).

    Attributes:
        maximize: Whether larger objective values are better.
        population: The states carried out of an earlier epoch (1-based), best first.
    """

    maximize: bool
    population: Callable[[int], Sequence[Member]]


@dataclass(frozen=True)
class RunPlan:
    """The run's shape: trials of each epoch (``len(trials)`` epochs; ``sum(trials)`` training
    epochs of compute at most), the most states carried from one epoch to the next, and (where
    it changes) the states carried out of each epoch."""

    trials: tuple[int, ...]
    population: int = 1
    carry: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.trials or any(t < 1 for t in self.trials):
            raise ValueError(f"a run needs >= 1 epoch of >= 1 trial, got {self.trials!r}")
        if self.population < 1:
            raise ValueError(f"population must be >= 1, got {self.population!r}")

    @property
    def epochs(self) -> int:
        return len(self.trials)

    @property
    def compute(self) -> int:
        """Planned compute in training epochs."""
        return sum(self.trials)


class Policy(abc.ABC):
    """How a per-epoch run spends its compute (module docstring). Subclasses are small, frozen
    and deterministic: the same inputs give the same plan in every process, which is what lets
    workers on many machines and a resumed run agree without talking to each other."""

    name: ClassVar[str]
    #: Why :meth:`select` puts first a state that is not the epoch's best (``adopted.why``).
    kept_reason: ClassVar[str] = "kept by the policy"
    #: Whether the sampler sees the earlier epochs' trials (``GammaBOSampler(history=...)``).
    history: bool = False
    #: What ranks an epoch's trials: ``"value"`` or ``"posterior"`` (the start value plus the
    #: posterior mean of the improvement under a GP over setting and age:
    #: :mod:`~optuna_gamma.tuner.execution.posterior`).
    adopt_on: str = "value"

    @property
    def radius(self) -> float | None:
        """How far an explorer's setting may move from its parent's, in the unit cube of the
        search space (``None``: anywhere; :mod:`~optuna_gamma.tuner.search.neighbourhood`)."""
        return None

    def radius_at(self, epoch: int) -> float | None:
        """:attr:`radius` for the explorers of ``epoch`` (1-based)."""
        return self.radius

    @property
    def default_final_model(self) -> str:
        """The final model ``TunerConfig(final_model="auto")`` (the default) gives this policy's
        runs: one of ``"last"``, ``"best"``, ``"average"``
        (:mod:`~optuna_gamma.tuner.execution.finished`). The last state, unless a policy was
        measured better with another."""
        return "last"

    @property
    @abc.abstractmethod
    def plan(self) -> RunPlan:
        """Epochs and trials per epoch."""

    @abc.abstractmethod
    def slots(
        self,
        epoch: int,
        population: Sequence[Member],
        default: Mapping[str, Any] | None = None,
    ) -> list[Slot]:
        """The trials of ``epoch`` (1-based), given the states carried into it, best first
        (empty for epoch 1, which starts from the initial state), and the trainer's own values
        of the tuned hyperparameters (``default``: those its optimizer was built with that lie
        in the search space; may be empty)."""

    def select(
        self, epoch: int, ranked: Sequence[Member], context: RunContext | None = None
    ) -> list[Member]:
        """The states carried out of ``epoch``, best first, from its healthy trials ranked best
        first (distinct states; reused trials left out). The first is adopted. ``context``
        gives what the run carried before (``None``: the ranking alone decides)."""
        return list(ranked[: self.plan.population])

    def describe(self) -> dict[str, Any]:
        """The policy's name and settings as the storage records them (compared on resume;
        the plan's length is not part of it, so a finished run can be extended)."""
        return {"name": self.name, **self._settings()}

    def _settings(self) -> dict[str, Any]:
        return {}
