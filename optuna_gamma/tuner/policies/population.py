"""The default policy: a small population of states, each continuing its committed setting, and
explorers the sampler proposes from the best states (docs/design.md §7).

Why (measured in ``benchmarks/peers.py``): the thesis's policy spends 12 trials on every epoch and
adopts the single best one-epoch result, so a budget of ``B`` training epochs leaves the final
model ``B / 12`` epochs of training, and greedy one-epoch selection on a small validation split is
noisy and prefers small steps (short-horizon bias; Wu, Ren, Liao & Grosse, ICLR 2018). This policy

- gives most of the budget to the final model's own training: with ``width`` trials at a time it
  runs ``B / width`` epochs (the same wall time as ``width`` parallel trainings of that length);
  serial (``width = 1``) it trains one continuing trial per epoch, plus one explorer every
  ``explore_every`` epochs while less than ``explore_until`` of the budget is spent (the
  settings matter most, and one-epoch comparisons are most telling, while the model learns
  fast), so the final model trains about ``0.9 B`` epochs (``B / 12`` for the thesis);
- *commits*: a carried state continues with its own setting (the ``continue`` slot) and is
  replaced only by an explorer that beats it on the same epoch, so one noisy epoch does not make
  the schedule jump (Ray Tune's PBT keeps 75 % of its population the same way);
- starts from the trainer's own setting: epoch 1 trains it beside the sampler's first
  proposals, so the untuned training is a candidate that an explorer has to beat;
- with ``width`` trials at a time, carries ``width - width // 4`` states, and ``width // 4``
  explorers (at least 1) start from the best ones: Ray Tune's PBT and PB2 replace the bottom
  quarter of their population by clones of the top quarter the same way;
- lets the sampler propose the explorers' settings knowing the earlier epochs (the engine passes
  them to ``GammaBOSampler`` as its ``history``: PB2's time-varying model, Parker-Holder et al.,
  NeurIPS 2020).

Epoch 1 starts every trial from the initial state with ``first`` settings (the trainer's own
and the sampler's; default ``width``, 4 when serial): nothing is committed yet. Serial, these
race by successive halving (each continues its own setting; the better half is kept every
``rung`` epochs) until one is left, so the setting is chosen over several epochs rather than on
the noise of one.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optuna_gamma.tuner.policies.base import Member
from optuna_gamma.tuner.policies.base import Policy
from optuna_gamma.tuner.policies.base import RunPlan
from optuna_gamma.tuner.policies.base import Slot


__all__ = ["PopulationPolicy"]


def _check(name: str, value: Any, low: int, *, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


@dataclass(frozen=True)
class PopulationPolicy(Policy):
    """A population of committed settings plus sampled explorers (module docstring).

    Args:
        width: Trials that run at the same time (the workers; 1 when serial). Epochs after the
            first have ``width`` trials (serial: 1 or 2).
        budget: Compute in training epochs, spent exactly (the last epoch is trimmed to fit);
            the number of epochs follows from it. Give ``budget`` or ``epochs``.
        epochs: Epochs to run (the compute then follows from the plan).
        first: Trials of epoch 1 (from the initial state; nothing to continue yet); default
            ``width``, and 4 when serial (a few settings to choose from before committing).
        rung: Serial runs: the ``first`` settings race by successive halving, each continuing
            its own setting, the better half kept every ``rung`` epochs until one is left, so
            no setting is chosen on one epoch's noise (Jamieson & Talwalkar, AISTATS 2016).
        explore_every: Serial runs: one explorer every this many epochs after the first.
        explore_until: Serial runs: explorers only while less than this fraction of the
            budget (of the epochs, when ``epochs`` is given) is spent; 1 explores to the end.
        carry: States carried from one epoch to the next (default ``width - max(1, width //
            4)``, at least 1).
    """

    width: int = 1
    budget: int | None = None
    epochs: int | None = None
    first: int | None = None
    explore_every: int = 2
    explore_until: float = 0.25
    carry: int | None = None
    rung: int = 3
    name = "population"

    def __post_init__(self) -> None:
        _check("width", self.width, 1)
        _check("budget", self.budget, 1, none_ok=True)
        _check("epochs", self.epochs, 1, none_ok=True)
        _check("first", self.first, 1, none_ok=True)
        _check("explore_every", self.explore_every, 1)
        _check("carry", self.carry, 1, none_ok=True)
        _check("rung", self.rung, 1)
        if not isinstance(self.explore_until, (int, float)) or not 0 <= self.explore_until <= 1:
            raise ValueError(f"explore_until must be in [0, 1], got {self.explore_until!r}")
        if (self.budget is None) == (self.epochs is None):
            raise ValueError(
                f"give the population policy a budget or a number of epochs, not "
                f"{'both' if self.budget is not None else 'neither'} (budget={self.budget!r}, "
                f"epochs={self.epochs!r})"
            )

    @property
    def population(self) -> int:
        """The most states carried from one epoch to the next."""
        if self.carry is not None:
            return self.carry
        if self.width == 1:
            return self._first
        return max(1, self.width - max(1, self.width // 4))

    @property
    def _first(self) -> int:
        if self.first is not None:
            return self.first
        return self.width if self.width > 1 else 4

    def carried(self, epoch: int) -> int:
        """States carried out of ``epoch``: serial, the race's survivors (halved every
        ``rung`` epochs); with ``width`` at a time, :attr:`population`."""
        if self.width >= 2 or self.carry is not None:
            return self.population
        return max(1, self._first // 2 ** (epoch // self.rung))

    def _wanted(self, epoch: int, progress: float) -> int:
        """Trials of ``epoch``, given the fraction of the run already spent."""
        if epoch == 1:
            return self._first
        if self.width >= 2:
            return max(self.width, self.population)
        racing = self.carried(epoch - 1)
        if racing > 1:
            return racing
        explore = progress < self.explore_until and (epoch - 2) % self.explore_every == 0
        return 1 + int(explore)

    @property
    def plan(self) -> RunPlan:
        trials: list[int] = []
        if self.epochs is not None:
            for e in range(1, self.epochs + 1):
                trials.append(self._wanted(e, (e - 1) / self.epochs))
        else:
            assert self.budget is not None
            left = self.budget
            while left > 0:
                t = min(self._wanted(len(trials) + 1, 1 - left / self.budget), left)
                trials.append(t)
                left -= t
        return RunPlan(tuple(trials), population=self.population)

    def slots(
        self,
        epoch: int,
        population: Sequence[Member],
        default: Mapping[str, Any] | None = None,
    ) -> list[Slot]:
        n = self.plan.trials[epoch - 1]
        if epoch == 1 or not population:
            first = [Slot(params=dict(default), kind="default")] if default else []
            return (first + [Slot() for _ in range(n)])[:n]
        members = list(population[: self.carried(epoch - 1)])[:n]
        keep = [
            Slot(parent=i, params=dict(m.params), kind="continue") for i, m in enumerate(members)
        ]
        explorers = n - len(keep)
        parents = min(len(members), max(1, explorers))  # the best: one explorer each
        explore = [Slot(parent=j % parents, kind="explore") for j in range(explorers)]
        return keep + explore

    def select(self, epoch: int, ranked: Sequence[Member]) -> list[Member]:
        return list(ranked[: self.carried(epoch)])

    def _settings(self) -> dict[str, Any]:
        return {
            "rung": self.rung,
            "width": self.width,
            "population": self.population,
            "first": self.first,
            "explore_every": self.explore_every,
            "explore_until": self.explore_until,
        }
