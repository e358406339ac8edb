"""Sampler registry of the tuner: one name per baseline of the thesis, all run the same way.

Names (:func:`parse_sampler`, :class:`SamplerPlan`):

============  ==========================================================================
``gamma``     :class:`~optuna_gamma.GammaBOSampler` with ``predictive="student_t"`` (the thesis's
              "Gamma search", docs/design.md §2); the three GammaBO modes with
              ``mean="constant"``, the GP mean the tuner's benchmarks were measured with
``gaussian``  ``GammaBOSampler(predictive="gaussian")``: plain GP-EI ("Gaussian search")
``plugin``    ``GammaBOSampler(predictive="plugin")``: Gamma posterior mean variance in a
              Gaussian EI
``gp``        :class:`optuna.samplers.GPSampler`
``tpe``       :class:`optuna.samplers.TPESampler`
``random``    :class:`optuna.samplers.RandomSampler`
``grid:N``    every combination of ``N`` values per float range (on its own scale;
              ``grid:N:linear`` linear), every categorical choice and up to ``N`` integers per
              int range, in a seeded order. The thesis's grid over ``(0, 0.5]`` with
              ``N = 100..500`` points is ``grid:N:linear`` (or a linear ``lr``) with ``lr`` in
              ``[0.5 / N, 0.5]``.
``fixed``     no tuning: one trial per epoch at ``lr = 0.01`` (Keras's SGD default);
              ``fixed:LR`` at ``LR``
============  ==========================================================================

All model-based samplers get ``n_startup_trials`` (default 2, the thesis's 2 start-up points
before 10 BO iterations), so the comparison is at equal start-up budgets, and
``deterministic_objective=True`` when the training is deterministic (docs/design.md §4).

Reproducibility: the tuner does not keep one sampler object for a whole study. A *factory*
``seed -> sampler`` is called before every trial (:class:`ReseededSampler`) with a seed derived
from (run seed, epoch, number of completed trials), and the sampler sees the study's trials. A
suggestion is then a function of the stored history and the seed only, never of in-process
sampler state (RNG draws made for earlier trials, warm-started kernel fits, trial numbers), which
is what makes a resumed run propose exactly what an uninterrupted one would. Samplers whose
randomness is keyed by the trial number (``GammaBOSampler``) see the trial under its *slot*, the
number of completed trials before it: after a crash the failed trial keeps its number, so later
trials are numbered one higher than in an uninterrupted run, but their slots are not.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import copy
from dataclasses import dataclass
import inspect
import math
from typing import Any
from typing import Union

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.study import Study
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_gamma.gp.settings import Predictive
from optuna_gamma.samplers import GammaBOSampler
from optuna_gamma.tuner.search.space import ParamSpace


__all__ = [
    "DEFAULT_FIXED_LR",
    "DEFAULT_TRIALS",
    "SAMPLER_CHOICES",
    "ReseededSampler",
    "SamplerFactory",
    "SamplerPlan",
    "SamplerSpec",
    "parse_sampler",
]

#: A callable ``seed -> optuna.samplers.BaseSampler``.
SamplerFactory = Callable[[int], optuna.samplers.BaseSampler]

#: The names accepted by :func:`parse_sampler` (``N`` and ``LR`` stand for numbers).
SAMPLER_CHOICES = (
    "gamma",
    "gaussian",
    "plugin",
    "gp",
    "tpe",
    "random",
    "grid:N",
    "grid:N:linear",
    "fixed",
    "fixed:LR",
)

DEFAULT_FIXED_LR = 0.01
DEFAULT_TRIALS = 12  # the thesis: 2 start-up + 10 BO iterations

_GAMMA_MODES: dict[str, Predictive] = {
    "gamma": "student_t",
    "gaussian": "gaussian",
    "plugin": "plugin",
}


def _choices_text() -> str:
    return ", ".join(SAMPLER_CHOICES)


@dataclass(frozen=True)
class SamplerSpec:
    """A parsed sampler name.

    Attributes:
        name: The canonical name (as stored in the studies' configuration).
        kind: ``gamma``, ``gaussian``, ``plugin``, ``gp``, ``tpe``, ``random``, ``grid`` or
            ``fixed``.
        grid_size: ``N`` of ``grid:N``.
        grid_linear: ``grid:N:linear``.
        fixed_lr: The learning rate of ``fixed``.
    """

    name: str
    kind: str
    grid_size: int | None = None
    grid_linear: bool = False
    fixed_lr: float | None = None


def parse_sampler(name: str) -> SamplerSpec:
    """Parse a sampler name.

    Raises:
        ValueError: Unknown name or malformed ``grid:N`` / ``fixed:LR``; the message lists the
            choices.
    """
    if not isinstance(name, str):
        raise ValueError(f"sampler must be a name, got {name!r}; choices: {_choices_text()}")
    key = name.strip().lower()
    if key in _GAMMA_MODES or key in ("gp", "tpe", "random"):
        return SamplerSpec(name=key, kind=key)
    if key == "fixed":
        return SamplerSpec(
            name=f"fixed:{DEFAULT_FIXED_LR:g}", kind="fixed", fixed_lr=DEFAULT_FIXED_LR
        )
    if key.startswith("fixed:"):
        try:
            lr = float(key[len("fixed:") :])
        except ValueError:
            lr = math.nan
        if not math.isfinite(lr) or lr <= 0:
            raise ValueError(
                f"sampler {name!r}: fixed:LR needs a learning rate > 0; choices: {_choices_text()}"
            )
        return SamplerSpec(name=f"fixed:{lr:g}", kind="fixed", fixed_lr=lr)
    if key.startswith("grid:"):
        parts = key.split(":")
        scale = parts[2] if len(parts) == 3 else "log"
        try:
            n = int(parts[1])
        except (ValueError, IndexError):
            n = 0
        if len(parts) > 3 or n < 1 or scale not in ("log", "linear"):
            raise ValueError(
                f"sampler {name!r}: expected grid:N or grid:N:linear with N >= 1; choices: "
                f"{_choices_text()}"
            )
        canonical = f"grid:{n}" if scale == "log" else f"grid:{n}:linear"
        return SamplerSpec(name=canonical, kind="grid", grid_size=n, grid_linear=scale == "linear")
    raise ValueError(f"unknown sampler {name!r}; choices: {_choices_text()}")


def _registry_factory(
    spec: SamplerSpec,
    *,
    n_startup_trials: int,
    deterministic: bool,
    grid: dict[str, list] | None,
    history: Callable[[Study], Any] | None = None,
    target: Callable[[FrozenTrial], float] | None = None,
) -> SamplerFactory:
    kind = spec.kind
    if kind in _GAMMA_MODES:
        mode = _GAMMA_MODES[kind]
        # The tuner keeps the GLS constant mean and repeats when noisy: its benchmarks
        # (docs/when-it-pays.md, the thesis's tables) were measured with them; the sampler's
        # defaults ("worst" mean, no repeats) were measured on the sampler's own benchmarks
        # (benchmarks/sampler/results/issue17_worst_mean/, issue17_no_repeats/), not on the
        # tuner's.
        return lambda seed: GammaBOSampler(
            predictive=mode,
            mean="constant",
            repeats="if_noisy",
            n_startup_trials=n_startup_trials,
            seed=seed,
            deterministic_objective=deterministic,
            warn_independent_sampling=False,
            history=history,
            target=target,
        )
    if kind == "gp":
        # older Optuna (4.0) has no warn_independent_sampling on GPSampler
        quiet: dict[str, Any] = (
            {"warn_independent_sampling": False}
            if "warn_independent_sampling"
            in inspect.signature(optuna.samplers.GPSampler).parameters
            else {}
        )
        return lambda seed: optuna.samplers.GPSampler(
            seed=seed,
            n_startup_trials=n_startup_trials,
            deterministic_objective=deterministic,
            **quiet,
        )
    if kind == "tpe":
        return lambda seed: optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=n_startup_trials
        )
    if kind == "grid":
        assert grid is not None
        return lambda seed: optuna.samplers.GridSampler(grid, seed=seed)
    return lambda seed: optuna.samplers.RandomSampler(seed=seed)


class SamplerPlan:
    """How the trials of one study get their parameters: a seeded factory, plus queued points.

    Args:
        sampler: A registry name or a callable ``seed -> sampler``.
        space: The validated search space.
        trials_per_epoch: Trials per study (``TunerConfig.trials_per_epoch``); ``None``: 12, the
            grid size for ``grid:N``, 1 for ``fixed``.
        n_startup_trials: Start-up trials of the model-based samplers.
        deterministic: Tell model-based samplers that the objective is noise-free.

    Raises:
        ValueError: An unknown sampler, a grid over a space it cannot grid, more trials than
            grid points, ``fixed`` with more than ``lr`` tuned, or a factory that does not return
            an ``optuna.samplers.BaseSampler``.
    """

    def __init__(
        self,
        sampler: Union[str, SamplerFactory],
        space: ParamSpace,
        trials_per_epoch: int | None,
        n_startup_trials: int,
        deterministic: bool,
    ) -> None:
        trials = trials_per_epoch
        self.grid: list[dict[str, Any]] = []
        self._build: tuple[SamplerSpec, int, bool, Any] | None = None
        #: The sampler only works with the thesis's plan (a grid or a fixed learning rate).
        self.thesis_only = False
        if isinstance(sampler, str):
            spec = parse_sampler(sampler)
            self.name = spec.name
            if spec.kind == "fixed":
                if "lr" not in space.distributions:
                    raise ValueError(
                        f"sampler {spec.name!r} fixes 'lr', but the space does not tune it"
                    )
                if len(space.distributions) > 1:
                    others = [k for k in space.distributions if k != "lr"]
                    raise ValueError(
                        f"sampler {spec.name!r} tunes nothing, but the space tunes {others}"
                    )
                space = space.with_fixed("lr", spec.fixed_lr)
                trials = 1 if trials is None else trials
                self.thesis_only = True
                spec = SamplerSpec(name=spec.name, kind="random")
            grid_axes = None
            if spec.kind == "grid":
                assert spec.grid_size is not None
                self.grid = space.grid(spec.grid_size, linear=spec.grid_linear)
                grid_axes = {
                    k: sorted({p[k] for p in self.grid}, key=repr) for k in space.distributions
                }
                trials = len(self.grid) if trials is None else trials
                self.thesis_only = True
                if trials > len(self.grid):
                    raise ValueError(
                        f"trials per study ({trials}) exceed the {len(self.grid)} points of "
                        f"{self.name!r}"
                    )
            self._build = (spec, n_startup_trials, deterministic, grid_axes)
            self.factory = _registry_factory(
                spec,
                n_startup_trials=n_startup_trials,
                deterministic=deterministic,
                grid=grid_axes,
            )
        elif callable(sampler):
            self.name = getattr(sampler, "__name__", type(sampler).__name__)
            self.factory = sampler
        else:
            raise ValueError(
                f"sampler must be a name or a callable seed -> sampler, got {sampler!r}"
            )
        probe = self.factory(0)
        if not isinstance(probe, optuna.samplers.BaseSampler):
            raise ValueError(
                f"sampler factory {self.name!r} returned {type(probe).__name__}, not an "
                "optuna.samplers.BaseSampler"
            )
        self.space = space
        self.trials_per_epoch: int = DEFAULT_TRIALS if trials is None else trials

    @property
    def learns_across_studies(self) -> bool:
        """Whether the sampler takes a history of earlier studies (``GammaBOSampler``)."""
        return self._build is not None and self._build[0].kind in _GAMMA_MODES

    def factory_with_history(
        self, history: Callable[[Study], Any], target: Callable[[FrozenTrial], float]
    ) -> SamplerFactory:
        """The factory, for a sampler that also sees ``history`` (observations of earlier
        studies) and models ``target`` (e.g. the improvement over a trial's start) for the
        study's own trials; the plain factory for samplers without the option."""
        if not self.learns_across_studies:
            return self.factory
        assert self._build is not None
        spec, n_startup, deterministic, grid = self._build
        return _registry_factory(
            spec,
            n_startup_trials=n_startup,
            deterministic=deterministic,
            grid=grid,
            history=history,
            target=target,
        )

    def queue(self, seed: int) -> list[dict[str, Any]]:
        """The grid points a study runs, in a seeded order (a seeded subset if fewer trials)."""
        order = np.random.default_rng(seed).permutation(len(self.grid))[: self.trials_per_epoch]
        return [self.grid[int(i)] for i in order]


class ReseededSampler(optuna.samplers.BaseSampler):
    """A sampler built afresh for every trial by ``factory(seed_for(slot))``.

    In :meth:`before_trial` the slot of the new trial is taken as the number of COMPLETE trials
    of the study (``slot_of(study, trial)``; by default counted in the storage; parallel workers
    use the trial number, which no two trials share), the base sampler is built with
    ``seed_for(slot)``, and from then on the trial is shown to it under the number ``slot`` (a
    shallow copy of the :class:`~optuna.trial.FrozenTrial`; the study and storage are
    untouched). In an uninterrupted serial run ``slot`` equals the trial number; after a crash it
    still equals the uninterrupted number. Not for ``n_jobs > 1`` (one trial at a time).
    """

    def __init__(
        self,
        factory: SamplerFactory,
        seed_for: Callable[[int], int],
        slot_of: Callable[[Study, FrozenTrial], int] | None = None,
    ) -> None:
        self._factory = factory
        self._seed_for = seed_for
        self._slot_of = slot_of or (
            lambda study, _trial: len(
                study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            )
        )
        self._slot = 0
        self._base: optuna.samplers.BaseSampler = factory(seed_for(0))

    def _view(self, trial: FrozenTrial) -> FrozenTrial:
        view = copy.copy(trial)
        view.number = self._slot
        return view

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._slot = self._slot_of(study, trial)
        self._base = self._factory(self._seed_for(self._slot))
        self._base.before_trial(study, self._view(trial))

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._base.infer_relative_search_space(study, self._view(trial))

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._base.sample_relative(study, self._view(trial), search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._base.sample_independent(
            study, self._view(trial), param_name, param_distribution
        )

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._base.after_trial(study, self._view(trial), state, values)

    def reseed_rng(self) -> None:
        self._base.reseed_rng()
