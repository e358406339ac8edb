"""Sampler registry of the driver: one name per baseline of the thesis, all run the same way.

Names (``parse_sampler`` / ``make_sampler_factory``):

============  ==========================================================================
``gamma``     :class:`~optuna_gamma.GammaBOSampler` with ``predictive="student_t"`` (the thesis's
              "Gamma search", DESIGN.md §2)
``gaussian``  ``GammaBOSampler(predictive="gaussian")``: plain GP-EI ("Gaussian search")
``plugin``    ``GammaBOSampler(predictive="plugin")``: Gamma posterior mean variance in a Gaussian EI
``gp``        :class:`optuna.samplers.GPSampler`
``tpe``       :class:`optuna.samplers.TPESampler`
``random``    :class:`optuna.samplers.RandomSampler`
``grid:N``    ``N`` learning rates log-spaced over ``[lr_low, lr_high]``; ``grid:N:linear`` for a
              linear grid (the thesis: ``(0, 0.5]`` with ``N = 100..500`` is ``grid:N:linear``
              with ``lr_low = 0.5 / N``, ``lr_high = 0.5``). Trials are the grid points, in a
              seeded order, run through :class:`optuna.samplers.GridSampler`.
``fixed``     no tuning: one trial per epoch at ``lr = 0.01`` (Keras's SGD default);
              ``fixed:LR`` at ``LR``
============  ==========================================================================

All model-based samplers get ``n_startup_trials`` (default 2, the thesis's 2 start-up points
before 10 BO iterations), so the comparison is at equal start-up budgets.

Reproducibility: the driver does not keep one sampler object for a whole study. A *factory*
``seed -> sampler`` is called before every trial with a seed derived from (run seed, epoch,
number of completed trials), and the sampler sees the study's completed trials. A suggestion is
then a function of the completed history and the seed only, never of in-process sampler state
(RNG draws made for earlier trials, warm-started kernel fits, trial numbers), which is what
makes a resumed run propose exactly what an uninterrupted one would. One more piece is needed for
samplers whose randomness is keyed by the trial number (``GammaBOSampler`` draws from
``SeedSequence(seed, spawn_key=(trial.number,))``): after a crash the failed trial keeps its
number, so later trials are numbered one higher than in an uninterrupted run.
:class:`SlotNumberedSampler` therefore shows the sampler each trial under its *slot*, the number
of completed trials before it, which is exactly its number in an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import copy
from dataclasses import dataclass
import math
from typing import Any
from typing import Union

import optuna
from optuna.distributions import BaseDistribution
from optuna.study import Study
from optuna.trial import FrozenTrial
from optuna.trial import TrialState


__all__ = [
    "DEFAULT_FIXED_LR",
    "SAMPLER_CHOICES",
    "SamplerFactory",
    "SamplerSpec",
    "SlotNumberedSampler",
    "make_sampler_factory",
    "parse_sampler",
]

#: A callable ``seed -> optuna.samplers.BaseSampler``.
SamplerFactory = Callable[[int], "optuna.samplers.BaseSampler"]

#: The names accepted by :func:`parse_sampler` (``N`` and ``LR`` stand for numbers).
SAMPLER_CHOICES = ("gamma", "gaussian", "plugin", "gp", "tpe", "random", "grid:N", "grid:N:linear", "fixed", "fixed:LR")

DEFAULT_FIXED_LR = 0.01

_GAMMA_MODES = {"gamma": "student_t", "gaussian": "gaussian", "plugin": "plugin"}


def _choices_text() -> str:
    return ", ".join(SAMPLER_CHOICES)


@dataclass(frozen=True)
class SamplerSpec:
    """A parsed sampler name.

    Attributes:
        name: The canonical name (as stored in the studies' user attributes).
        kind: ``gamma``, ``gaussian``, ``plugin``, ``gp``, ``tpe``, ``random``, ``grid`` or ``fixed``.
        grid_size: ``N`` of ``grid:N``.
        grid_log: Log-spaced (True) or linear grid.
        fixed_lr: The learning rate of ``fixed``.
    """

    name: str
    kind: str
    grid_size: int | None = None
    grid_log: bool = True
    fixed_lr: float | None = None

    @property
    def is_grid(self) -> bool:
        return self.kind == "grid"

    @property
    def is_fixed(self) -> bool:
        return self.kind == "fixed"


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
        return SamplerSpec(name=f"fixed:{DEFAULT_FIXED_LR:g}", kind="fixed", fixed_lr=DEFAULT_FIXED_LR)
    if key.startswith("fixed:"):
        try:
            lr = float(key[len("fixed:"):])
        except ValueError:
            lr = math.nan
        if not math.isfinite(lr) or lr <= 0:
            raise ValueError(f"sampler {name!r}: fixed:LR needs a learning rate > 0; choices: {_choices_text()}")
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
                f"sampler {name!r}: expected grid:N or grid:N:linear with N >= 1; choices: {_choices_text()}"
            )
        canonical = f"grid:{n}" if scale == "log" else f"grid:{n}:linear"
        return SamplerSpec(name=canonical, kind="grid", grid_size=n, grid_log=scale == "log")
    raise ValueError(f"unknown sampler {name!r}; choices: {_choices_text()}")


def make_sampler_factory(
    spec: Union[str, SamplerSpec],
    *,
    n_startup_trials: int = 2,
    grid: dict[str, list] | None = None,
) -> SamplerFactory:
    """A factory ``seed -> sampler`` for a registry name.

    Args:
        spec: A name (see :func:`parse_sampler`) or a parsed spec.
        n_startup_trials: Random start-up trials of the model-based samplers.
        grid: The grid of ``grid:N`` (parameter name -> values), built by the driver from the
            search space.

    Raises:
        ValueError: Unknown name, or ``grid:N`` without a grid.
    """
    s = parse_sampler(spec) if isinstance(spec, str) else spec
    kind = s.kind
    if kind in _GAMMA_MODES:
        from optuna_gamma.samplers import GammaBOSampler

        mode = _GAMMA_MODES[kind]
        return lambda seed: GammaBOSampler(
            predictive=mode, n_startup_trials=n_startup_trials, seed=seed, warn_independent_sampling=False
        )
    if kind == "gp":
        return lambda seed: optuna.samplers.GPSampler(
            seed=seed, n_startup_trials=n_startup_trials, warn_independent_sampling=False
        )
    if kind == "tpe":
        return lambda seed: optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials)
    if kind in ("random", "fixed"):
        return lambda seed: optuna.samplers.RandomSampler(seed=seed)
    if kind == "grid":
        if not grid:
            raise ValueError(f"sampler {s.name!r} needs a grid")
        g = {k: list(v) for k, v in grid.items()}
        return lambda seed: optuna.samplers.GridSampler(g, seed=seed)
    raise ValueError(f"unknown sampler {s.name!r}; choices: {_choices_text()}")


class SlotNumberedSampler(optuna.samplers.BaseSampler):
    """Delegate to ``base``, presenting the current trial under the number ``slot``.

    In an uninterrupted driver run, trial ``k`` of a study is asked after ``k`` completed trials,
    so ``slot = number of completed trials`` equals its number; after a crash (a FAIL trial keeps
    its number) the slot is still the uninterrupted number. Only the number seen by ``base`` is
    changed (a shallow copy of the :class:`~optuna.trial.FrozenTrial`); the study and storage
    are untouched. The driver builds one per trial.
    """

    def __init__(self, base: optuna.samplers.BaseSampler, slot: int) -> None:
        self._base = base
        self._slot = int(slot)

    @property
    def base(self) -> optuna.samplers.BaseSampler:
        return self._base

    def _view(self, trial: FrozenTrial) -> FrozenTrial:
        view = copy.copy(trial)
        view.number = self._slot
        return view

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._base.infer_relative_search_space(study, self._view(trial))

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._base.sample_relative(study, self._view(trial), search_space)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._base.sample_independent(study, self._view(trial), param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._base.before_trial(study, self._view(trial))

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._base.after_trial(study, self._view(trial), state, values)

    def reseed_rng(self) -> None:
        self._base.reseed_rng()
