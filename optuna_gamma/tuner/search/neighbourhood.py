"""Explorers near their parent: a sampler wrapper that keeps a trial's proposal within a radius
of the setting its start state was trained with.

Why (measured in ``benchmarks/tuner/peers.py``, CIFAR-10, docs/when-it-pays.md): an explorer
starts from a carried state and races the setting that state was trained with. A much smaller
learning rate gives an immediate jump in validation (a decay's step) and wins a few-epoch race
even while the model is far from converged; one such jump to the range's low end at epoch 7 of
120 left the model 96 epochs at a tenth of the untuned rate (the short-horizon bias; Wu, Ren,
Liao & Grosse, ICLR 2018). PBT moves an exploiting member's setting by a factor (0.8 or 1.2,
Jaderberg et al., 2017) for the same reason, and trust-region BO (TuRBO; Eriksson et al.,
NeurIPS 2019) keeps its proposals in a box around its incumbent. Here the sampler still
proposes from everything it knows (the earlier epochs' trials); the proposal is then projected
onto the box

    ``|u_j - c_j| <= radius``

in the unit cube of the search space (each numerical parameter's range on its own scale, log
for ``log=True``), where ``c`` is the parent's setting. A radius of 0.1 lets the learning rate of
the built-in range ``[1e-3, 0.5]`` change by at most a factor ``500 ** 0.1 = 1.86`` per race.
Categorical parameters are not restricted.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import math
import threading
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.study import Study
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from optuna_gamma.samplers._search_space import SearchSpace


__all__ = ["NearParentSampler", "project"]


def _check_radius(radius: Any) -> None:
    if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not radius >= 0:
        raise ValueError(f"radius must be a number >= 0, got {radius!r}")


def project(
    params: Mapping[str, Any],
    distributions: Mapping[str, BaseDistribution],
    centre: Mapping[str, Any],
    radius: float,
) -> dict[str, Any]:
    """``params`` with each numerical parameter moved into ``[c - radius, c + radius]`` around
    the ``centre``'s value ``c`` in the unit cube of its distribution (unchanged where it lies
    inside, where the centre has no valid value, and for categorical parameters).

    Raises:
        ValueError: ``radius`` is not a number >= 0.
    """
    _check_radius(radius)
    out = dict(params)
    for name, value in params.items():
        dist = distributions.get(name)
        if not isinstance(dist, (FloatDistribution, IntDistribution)) or name not in centre:
            continue
        c_value = centre[name]
        if isinstance(c_value, bool) or not isinstance(c_value, (int, float)):
            continue
        if not math.isfinite(float(c_value)) or not dist.low <= c_value <= dist.high:
            continue
        space = SearchSpace({name: dist})
        u = float(space.encode({name: value})[0])
        c = float(space.encode({name: c_value})[0])
        if abs(u - c) <= radius:
            continue
        moved = space.decode(space.round(np.array([min(max(u, c - radius), c + radius)])))[name]
        out[name] = moved
    return out


class NearParentSampler(optuna.samplers.BaseSampler):
    """A sampler whose proposals for some trials stay within ``radius`` of a centre (module
    docstring).

    Args:
        base: The sampler that proposes.
        radius: The box's half-width in the unit cube of each numerical parameter.
        centre_of: The centre of a trial's box (its parent's setting), or ``None`` for a trial
            the base sampler proposes freely (e.g. the epoch's design points and queued
            settings, which the base sampler does not propose anyway).

    A proposal the box moved is remembered until :meth:`moved_proposal` reads it (the engine
    records it as the trial's user attribute ``proposed``: what the sampler chose before the
    box, for the parameters the box moved).
    """

    def __init__(
        self,
        base: optuna.samplers.BaseSampler,
        radius: float,
        centre_of: Callable[[FrozenTrial], Mapping[str, Any] | None],
    ) -> None:
        _check_radius(radius)
        self._base = base
        self._radius = float(radius)
        self._centre_of = centre_of
        self._moved: dict[tuple[str, int], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def moved_proposal(self, study: Study, number: int) -> dict[str, Any] | None:
        """The base sampler's values of trial ``number``'s parameters that the box moved
        (``None`` if it moved none); read once."""
        with self._lock:
            return self._moved.pop((study.study_name, number), None)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._base.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._base.infer_relative_search_space(study, trial)

    def _project(
        self,
        study: Study,
        trial: FrozenTrial,
        params: dict[str, Any],
        space: Mapping[str, BaseDistribution],
    ) -> dict[str, Any]:
        centre = self._centre_of(trial)
        if not centre or not params:
            return params
        out = project(params, space, centre, self._radius)
        moved = {k: v for k, v in params.items() if out[k] != v}
        if moved:
            with self._lock:
                self._moved.setdefault((study.study_name, trial.number), {}).update(moved)
        return out

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        params = self._base.sample_relative(study, trial, search_space)
        return self._project(study, trial, params, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        value = self._base.sample_independent(study, trial, param_name, param_distribution)
        moved = self._project(study, trial, {param_name: value}, {param_name: param_distribution})
        return moved[param_name]

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._base.reseed_rng()
