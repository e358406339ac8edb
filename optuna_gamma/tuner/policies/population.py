"""The default policy: committed settings that race, and explorers the sampler proposes from the
best states (docs/design.md §7).

Why (measured in ``benchmarks/peers.py``): the thesis's policy spends 12 trials on every epoch and
adopts the single best one-epoch result, so a budget of ``B`` training epochs leaves the final
model ``B / 12`` epochs of training, and greedy one-epoch selection on a small validation split is
noisy and prefers small steps (short-horizon bias; Wu, Ren, Liao & Grosse, ICLR 2018). This policy

- gives most of the budget to the final model's own training: with ``width`` trials at a time it
  runs ``B / width`` epochs (the wall time of ``width`` parallel trainings of that length);
  serial (``width = 1``), the final model trains about ``0.75 B`` epochs at ``B = 120``
  (``B / 12`` for the thesis);
- *commits*: a carried state continues with its own setting (the ``continue`` slot), so one
  noisy epoch does not make the schedule jump;
- serial, chooses a setting by a *race* rather than one epoch: the ``first`` settings of epoch 1
  (the trainer's own and the sampler's) each continue their own setting, and the better half is
  kept every ``rung`` epochs until one is left (successive halving; Jamieson & Talwalkar,
  AISTATS 2016); a small budget gets a smaller race (``race_share``), so that the race does
  not take the training's place. While less than ``explore_until`` of the budget is spent, an
  explorer then starts from the adopted state and races it the same way, over ``rung`` epochs,
  not one; and
  again once ``explore_after`` of it is spent: near the budget's end the race's horizon is
  what is left of the training, so its preference for a smaller step is no longer a bias
  but the final decay a schedule gives;
- two or three at a time (``width=2``, ``width=3``), runs those races ``width`` trials at a
  time, with ``width - 1`` explorers racing the adopted setting throughout (``two_as_serial``,
  ``three_as_serial``);
- with ``width >= 4`` trials at a time, carries ``width - width // 4`` states and starts
  ``width // 4`` explorers (at least 1) from the best ones: Ray Tune's PBT and PB2 replace the
  bottom quarter of their population by clones of the top quarter the same way; and once
  ``explore_after`` of the budget is spent, only the best ``width // 4`` states continue and
  every carried state gets an explorer near its setting (``late_population``: PBT's
  perturbation, and the final decay of a one-epoch verdict near the end);
- starts from the trainer's own setting and a space-filling design: epoch 1 trains the
  untuned setting beside a Latin hypercube over the search space (PBT and PB2 start from
  random samples the same way), so the first population is spread over the space and the
  untuned training is a candidate the others have to beat;
- lets the sampler propose the explorers' settings knowing the earlier epochs (the engine passes
  them to ``GammaBOSampler`` as its ``history``: PB2's time-varying model, Parker-Holder et al.,
  NeurIPS 2020).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optuna_gamma.tuner.policies.base import Member
from optuna_gamma.tuner.policies.base import Policy
from optuna_gamma.tuner.policies.base import RunContext
from optuna_gamma.tuner.policies.base import RunPlan
from optuna_gamma.tuner.policies.base import Slot


__all__ = ["PopulationPolicy"]


#: Serial runs with a budget: the first race costs at most this share of the budget. The race of
#: 4 settings over 3-epoch rungs (18 epochs) fits it from B = 60 on, so the plans of those
#: budgets, B = 120 where the policy was measured among them, stay as they were; below, that race
#: took most of the budget (B = 24: 18 of 24 epochs, the final model 10, and MNIST-500 68.3 %
#: against 86.6 % untuned; benchmarks/tuner/results/small_budget/).
RACE_SHARE = 0.3


def race_cost(first: int, rung: int) -> int:
    """Training epochs of a successive-halving race of ``first`` settings with ``rung`` epochs
    between halvings, until one is left (the survivor's own epochs included)."""
    cost, lines = 0, first
    while lines > 1:
        cost += lines * rung
        lines //= 2
    return cost


def _check(name: str, value: Any, low: int, *, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


@dataclass(frozen=True)
class PopulationPolicy(Policy):
    """Committed settings that race, plus sampled explorers (module docstring).

    Args:
        width: Trials that run at the same time (the workers; 1 when serial). Epochs after the
            first have ``width`` trials.
        budget: Compute in training epochs, spent exactly (the last epoch is trimmed to fit);
            the number of epochs follows from it. Give ``budget`` or ``epochs``.
        epochs: Epochs to run (the compute then follows from the plan).
        first: Trials of epoch 1 (from the initial state; nothing to continue yet); default
            ``width``, and 4 when serial (fewer for a small budget: ``race_share``; ``width`` at
            most two or three at a time).
        rung: Serial runs: epochs between two halvings of a race (shorter for a small budget:
            ``race_share``).
        explore_until: Serial runs: an explorer races the adopted setting while less than this
            fraction of the budget (of the epochs, when ``epochs`` is given) is spent; 0 never
            explores after the first race, 1 explores to the end (``width=2`` and ``width=3``
            always do: ``two_as_serial``, ``three_as_serial``).
        explore_after: Serial runs: explorers race the adopted setting again once this fraction
            of the budget is spent (``None``: not at all). The default 0.8 gives a model still
            learning at a high rate its decay at the end (CIFAR-10: +0.9, +3.1 and +1.7 points
            on 3 seeds) at the cost of 12 of its 102 epochs where it has converged (MNIST-500:
            -0.6 points; docs/when-it-pays.md).
        carry: States carried from one epoch to the next with ``width >= 2`` (default ``width -
            max(1, width // 4)``, at least 1).
        history: Let the sampler see the earlier epochs' trials (``GammaBOSampler``'s
            ``history``, on the improvement over each trial's start state).
        challenge: Serial runs: when an explorer's race ends. ``"plateau"`` (default): the
            adopted setting keeps its place if its state improved during the race (its value
            now is better than when the race started), and only a setting that has stopped
            improving can be replaced, as Keras's ``ReduceLROnPlateau`` changes the rate only
            on a plateau. ``"always"``: the better of the two at the race's last epoch is kept.
            A 3-epoch race prefers a smaller step (the short-horizon bias), which pays where
            the model overfits the objective and costs where it is still learning.
        explore_radius: Serial runs: how far an explorer's setting may move from its parent's:
            the sampler's proposal is projected onto the box of this half-width around the
            parent's setting in the unit cube of the search space (each numerical range on its
            own scale; :mod:`~optuna_gamma.tuner.search.neighbourhood`), as PBT perturbs a
            setting by a factor instead of jumping anywhere. The default 0.1 lets a learning
            rate in ``[1e-3, 0.5]`` change by a factor 1.86 at most per race. ``None``:
            anywhere. With ``width >= 4`` explorers go anywhere: the carried population hedges
            a greedy jump (as PB2 explores its whole bounds), and restricting them cost 3
            points on MNIST-500 (docs/when-it-pays.md).
        adopt_on: What ranks an epoch's trials. ``"value"`` (default): their validation values.
            ``"posterior"``: their start value plus the posterior mean of their improvement
            under a GP over (setting, age) fitted to this and the earlier epochs' trials, so a
            lucky improvement its neighbours do not support is shrunk
            (:mod:`~optuna_gamma.tuner.execution.posterior`; the noisy-EI incumbent). Measured,
            it lost 0.4-3.3 points with 12 at a time and changed little serially.
        race_share: Serial runs with a budget and no ``first`` given: the first race may cost
            at most this share of the budget (:data:`RACE_SHARE`, 0.3). 4 settings over 3-epoch
            rungs (the default ``rung``) cost 18 epochs, which fits from ``B = 60`` on; below,
            the race has 3, then 2 settings, then shorter rungs, also for the explorers' races
            (``B = 24``: 2 settings over 3 epochs; ``B = 12``: 2 settings over 1 epoch).
            ``None``: always 4 settings over ``rung`` (runs recorded before the setting
            existed).
        explore_short: Serial runs whose rungs ``race_share`` shortened (``B = 7-19`` by
            default): whether an explorer races the adopted setting over those short rungs
            while less than ``explore_until`` of the budget is spent. Off by default: such a
            budget cannot afford a race of full rungs, a race of 1-2 epochs is the greedy
            short-horizon choice this policy avoids, and early in training the adopted setting
            is still improving, so the plateau challenge keeps it anyway (at ``B = 12`` it changed
            the setting in 1 of 55 runs on 4 tasks, and each race cost the final model an epoch:
            benchmarks/tuner/results/small_budget/). The first race and the explorers
            near the end (``explore_after``) are kept. Runs recorded before the setting existed
            read ``True``.
        late_population: With ``width >= 4`` (and ``width`` 2 or 3 without ``two_as_serial``,
            ``three_as_serial``):
            once ``explore_after`` of the budget is spent,
            only the best ``width // 4`` carried states continue their settings, and every
            carried state gets an explorer near its setting (``explore_radius``), as PBT
            perturbs each member's setting by a factor. Near the end the one-epoch verdict's
            preference for a smaller step is the final decay rather than a bias (as for the
            serial late explorers), and a local step from a good state is a safer bet than a
            jump anywhere with one or two epochs left. On CIFAR-10 with 12 at a time it is
            +1.9 points (4/0/1) over the population without it, and puts the default ahead of
            PB2 there (docs/when-it-pays.md). Runs recorded before the setting existed read
            ``False``.
        two_as_serial: With ``width=2``: run the serial policy's races two trials at a time
            (epoch 1's race of the trainer's own setting and the sampler's, then an explorer
            near the adopted setting racing it over ``rung`` epochs under ``challenge``, from
            start to end: every epoch has two trials, so ``explore_until`` and
            ``explore_after`` do not apply). A population of one carried state and one
            explorer per epoch cannot hedge a greedy one-epoch verdict: it walked the learning
            rate down (MNIST-500, ``B = 120``: 86.2 % against 92.8 % for an untuned training of
            the same wall time, 60 epochs), and the races reach 93.0 %
            (docs/when-it-pays.md). Runs recorded before the setting existed read ``False``.
        three_as_serial: With ``width=3``: the same, three trials at a time: epoch 1 races the
            trainer's own setting and two of the sampler's over ``rung`` epochs, then two
            explorers near the adopted setting race it (the best of the three is kept after
            ``rung`` epochs, the adopted one only under ``challenge``). A population of two
            carried states and one explorer anywhere walked the learning rate down as with two
            (MNIST-500, ``B = 120``: 86.5 % against 91.6 % for an untuned training of the same
            wall time, 40 epochs); the races reach 90.0 %, and Fashion-MNIST +2.3 points over
            the population (docs/when-it-pays.md). Runs recorded before the setting existed
            read ``False``.
    """

    width: int = 1
    budget: int | None = None
    epochs: int | None = None
    first: int | None = None
    rung: int = 3
    explore_until: float = 0.25
    carry: int | None = None
    history: bool = True
    challenge: str = "plateau"
    explore_radius: float | None = 0.1
    explore_after: float | None = 0.8
    adopt_on: str = "value"
    race_share: float | None = RACE_SHARE
    explore_short: bool = False
    late_population: bool = True
    two_as_serial: bool = True
    three_as_serial: bool = True
    name = "population"
    kept_reason = "the adopted setting improved during its race (challenge 'plateau')"

    def __post_init__(self) -> None:
        _check("width", self.width, 1)
        _check("budget", self.budget, 1, none_ok=True)
        _check("epochs", self.epochs, 1, none_ok=True)
        _check("first", self.first, 1, none_ok=True)
        _check("rung", self.rung, 1)
        _check("carry", self.carry, 1, none_ok=True)
        if self.adopt_on not in ("value", "posterior"):
            raise ValueError(f"adopt_on must be 'value' or 'posterior', got {self.adopt_on!r}")
        if self.challenge not in ("always", "plateau"):
            raise ValueError(f"challenge must be 'always' or 'plateau', got {self.challenge!r}")
        r = self.explore_radius
        if r is not None and (
            isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < r <= 1
        ):
            raise ValueError(f"explore_radius must be in (0, 1] or None, got {r!r}")
        flags = ("history", "explore_short", "late_population", "two_as_serial", "three_as_serial")
        for flag in flags:
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be True or False, got {getattr(self, flag)!r}")
        share = self.race_share
        if share is not None and (
            isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1
        ):
            raise ValueError(f"race_share must be in (0, 1] or None, got {share!r}")
        for name in ("explore_until", "explore_after"):
            value = getattr(self, name)
            if name == "explore_after" and value is None:
                continue
            real = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not real or not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if (self.budget is None) == (self.epochs is None):
            raise ValueError(
                f"give the population policy a budget or a number of epochs, not "
                f"{'both' if self.budget is not None else 'neither'} (budget={self.budget!r}, "
                f"epochs={self.epochs!r})"
            )

    @property
    def _serial(self) -> bool:
        """Whether the serial races run: ``width=1``, ``width=2`` with ``two_as_serial``, or
        ``width=3`` with ``three_as_serial``."""
        return (
            self.width == 1
            or (self.width == 2 and self.two_as_serial)
            or (self.width == 3 and self.three_as_serial)
        )

    @property
    def _lines(self) -> int:
        """Settings in an explorer's race when the serial races run: the adopted one and one
        explorer serially; ``width`` two or three at a time (every epoch has ``width`` trials)."""
        return 2 if self.width == 1 else self.width

    @property
    def _first(self) -> int:
        return self._race[0]

    @property
    def _rung(self) -> int:
        return self._race[1]

    @property
    def _full_race(self) -> tuple[int, int]:
        """``(first, rung)`` without ``race_share``."""
        if self.first is not None:
            return self.first, self.rung
        return (4 if self.width == 1 else self.width), self.rung

    @property
    def _race(self) -> tuple[int, int]:
        """``(first, rung)`` in effect: as given, or for a serial run with a budget the largest
        first race whose cost (every line's epochs until one is left) is at most
        ``race_share`` of the budget, trying 4, 3, then 2 settings (two or three at a time:
        ``width``) at ``rung`` epochs, then 2 (``width``) settings at shorter rungs; no race (1)
        when not even those fit for 1 epoch."""
        if self.first is not None or not self._serial:
            return self._full_race
        if self.budget is None or self.race_share is None:
            return self._full_race
        limit = self.race_share * self.budget
        lines = self._lines
        candidates = [(n, self.rung) for n in ((4, 3, 2) if self.width == 1 else (lines,))]
        candidates += [(lines, r) for r in range(self.rung - 1, 0, -1)]
        for n, r in candidates:
            if race_cost(n, r) <= limit:
                return n, r
        return 1, self.rung

    @property
    def _explores_early(self) -> bool:
        """Whether explorers race before ``explore_until`` (not over rungs ``race_share``
        shortened, unless ``explore_short``)."""
        return self.explore_short or self._rung >= self.rung

    @property
    def population(self) -> int:
        """The most states carried from one epoch to the next."""
        if self._serial:
            explores = self.width >= 2 or self.explore_until > 0 or self.late is not None
            return max(self._first, self._lines if explores else 1)
        if self.carry is not None:
            return self.carry
        return max(1, self.width - max(1, self.width // 4))

    def _next(self, epoch: int, alive: int, since: int, progress: float) -> tuple[int, int, int]:
        """``(trials, carried out, epochs since the race's last halving)`` of ``epoch``, given
        the states carried into it and the fraction of the run spent before it."""
        if epoch == 1:
            lines, since = self._first, 0
        elif not self._serial:
            return self.width, self.population, 0
        elif alive == 1 and (
            self.width >= 2  # two or three at a time: explorers race throughout
            or (progress < self.explore_until and self._explores_early)
            or (self.late is not None and progress >= self.late)
        ):
            lines, since = self._lines, 0  # explorers race the adopted setting
        else:
            lines = alive
        if not self._serial:
            return lines, min(lines, self.population), 0
        since += 1
        if lines > 1 and since >= self._rung:
            return lines, max(1, lines // 2), 0
        return lines, lines, since

    @property
    def plan(self) -> RunPlan:
        trials: list[int] = []
        carry: list[int] = []
        alive = since = spent = 0
        while True:
            e = len(trials) + 1
            if self.epochs is not None:
                if e > self.epochs:
                    break
                progress = (e - 1) / self.epochs
            else:
                assert self.budget is not None
                if spent >= self.budget:
                    break
                progress = spent / self.budget
            t, alive, since = self._next(e, alive, since, progress)
            if self.budget is not None:
                t = min(t, self.budget - spent)
                alive = min(alive, t)
            trials.append(t)
            carry.append(alive)
            spent += t
        return RunPlan(tuple(trials), population=self.population, carry=tuple(carry))

    @property
    def late(self) -> float | None:
        """When explorers race again (``explore_after``, serial runs; with ``width >= 2`` and
        ``late_population``, when the explorers start near the best states; ``None``: never)."""
        if self._serial or self.late_population:
            return self.explore_after
        return None

    @property
    def radius(self) -> float | None:
        """How far an explorer may move from its parent (``explore_radius``, serial runs
        only; ``None``: anywhere)."""
        return self.explore_radius if self._serial else None

    @property
    def default_final_model(self) -> str:
        """``"average"`` where the serial races run (``width`` 1, or 2 and 3 with
        ``two_as_serial``, ``three_as_serial``), ``"last"`` otherwise.

        Serially the final model trains one lineage for most of the budget (90 of 120 epochs),
        under settings committed for several epochs: the weights it passes through near the
        end bounce around one basin, and their average generalizes better than the last
        (stochastic weight averaging, Izmailov et al., UAI 2018), the more so where the model
        overfits. On the per-epoch benchmark (``B = 120``, 5 seeds, docs/when-it-pays.md) the
        greedy average beat the last state on every task, serially and two at a time. With a
        population (four or more trials at a time) the final lineage trains ``B / width``
        epochs and changes its setting every epoch near the end; there the average tied the
        last state or lost a little (the overfitting MLP: -0.1 to -0.25 points).
        """
        return "average" if self._serial else "last"

    def radius_at(self, epoch: int) -> float | None:
        """:attr:`radius`, and with ``width >= 2`` ``explore_radius`` for the late
        perturbation's explorers (``late_population``)."""
        if not self._serial and self._late_epoch(epoch):
            return self.explore_radius
        return self.radius

    def _late_epoch(self, epoch: int) -> bool:
        """Whether ``epoch`` (1-based) starts once ``late`` of the run is spent."""
        if self.late is None or epoch < 2:
            return False
        if self.epochs is not None:
            return (epoch - 1) / self.epochs >= self.late
        assert self.budget is not None
        return sum(self.plan.trials[: epoch - 1]) / self.budget >= self.late

    def carried(self, epoch: int) -> int:
        """States carried out of ``epoch`` (1-based)."""
        return self.plan.carry[epoch - 1]

    def slots(
        self,
        epoch: int,
        population: Sequence[Member],
        default: Mapping[str, Any] | None = None,
    ) -> list[Slot]:
        n = self.plan.trials[epoch - 1]
        if epoch == 1 or not population:
            first = [Slot(params=dict(default), kind="default")] if default else []
            return (first + [Slot(kind="design") for _ in range(n)])[:n]
        members = list(population[: self.carried(epoch - 1)])[:n]
        kept = members
        if not self._serial and self._late_epoch(epoch):
            # the end of the run: only the best few states continue; every carried state gets
            # an explorer near its setting (PBT's perturbation), so that the one-epoch verdict,
            # which prefers a smaller step, gives the final decay
            kept = members[: max(1, self.width // 4)]
        keep = [Slot(parent=i, params=dict(m.params), kind="continue") for i, m in enumerate(kept)]
        explorers = n - len(keep)
        parents = min(len(members), max(1, explorers))  # the best: one explorer each
        explore = [Slot(parent=j % parents, kind="explore") for j in range(explorers)]
        return keep + explore

    def select(
        self, epoch: int, ranked: Sequence[Member], context: RunContext | None = None
    ) -> list[Member]:
        kept = list(ranked[: self.carried(epoch)])
        if self.challenge == "always" or context is None or not kept:
            return kept
        defended = self._defended(epoch, ranked, context)
        if defended is None:
            return kept
        rest = [m for m in kept if m.trial != defended.trial]
        return [defended, *rest][: len(kept)]

    def _race_start(self, epoch: int) -> int | None:
        """The first epoch of the explorer's race that is decided at ``epoch`` (its states
        are halved there), or ``None`` (no race ends, or it is the first race, of epoch 1's
        settings, where there is no adopted setting to defend)."""
        if not self._serial:
            return None
        plan = self.plan
        if plan.carry[epoch - 1] >= plan.trials[epoch - 1]:
            return None
        start = epoch
        while start > 1 and plan.carry[start - 2] > 1:
            start -= 1
        return start if start > 1 else None

    def _defended(
        self, epoch: int, ranked: Sequence[Member], context: RunContext
    ) -> Member | None:
        """With ``challenge="plateau"``: the adopted setting's state at the end of a race it
        should keep (it improved during the race), else ``None``."""
        start = self._race_start(epoch)
        if start is None:
            return None
        before = list(context.population(start - 1))
        if not before:
            return None
        incumbent = before[0]
        same = [m for m in ranked if dict(m.params) == dict(incumbent.params)]
        if len(same) != 1:  # its lineage diverged, or the explorer proposed the same setting
            return None
        now = same[0]
        improved = now.value > incumbent.value if context.maximize else now.value < incumbent.value
        return now if improved else None

    def _settings(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "population": self.population,
            "first": self.first,
            "rung": self.rung,
            "explore_until": self.explore_until,
            "carry": self.carry,
            "history": self.history,
            # absent from the records of runs stored before the setting existed, which behave
            # as "always" (policy_from_record reads them so)
            **({"challenge": self.challenge} if self.challenge != "always" else {}),
            # absent likewise where explorers go anywhere (policy_from_record reads None)
            **({"explore_radius": self.explore_radius} if self._near_parent else {}),
            # absent likewise where no explorer races late (policy_from_record reads None)
            **({"explore_after": self.late} if self.late is not None else {}),
            # absent likewise where the values rank the trials
            **({"adopt_on": self.adopt_on} if self.adopt_on != "value" else {}),
            # present only where it sizes the first race (a serial budget under 60 by default), so
            # that the records, run names and resumes of every other run are as before it existed
            **({"race_share": self.race_share} if self._race != self._full_race else {}),
            # present only where the rungs are shortened (B = 7-19 by default), likewise
            **({"explore_short": self.explore_short} if self._rung < self.rung else {}),
            # present only where it is on, likewise
            **({"late_population": True} if self.late_population and not self._serial else {}),
            # present only where it is on, likewise (width 2)
            **({"two_as_serial": True} if self.width == 2 and self.two_as_serial else {}),
            # present only where it is on, likewise (width 3)
            **({"three_as_serial": True} if self.width == 3 and self.three_as_serial else {}),
        }

    @property
    def _near_parent(self) -> bool:
        """Whether some explorer stays near its parent (``explore_radius`` in effect)."""
        if self.explore_radius is None:
            return False
        return self._serial or self.late is not None
