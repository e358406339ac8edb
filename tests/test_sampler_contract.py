"""Optuna's own sampler contract (``optuna.testing.pytest_samplers``), for each predictive mode
and with the ``history`` option active: the multi-objective contract for the modes without a
history, the single-objective-only one (raise on several objectives) with it.

``n_startup_trials=0`` so that the contract's relative-sampling tests, which complete a single
trial and then call ``sample_relative`` directly, exercise the GP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.testing.pytest_samplers import BasicSamplerTestCase
from optuna.testing.pytest_samplers import MultiObjectiveSamplerTestCase
from optuna.testing.pytest_samplers import RelativeSamplerTestCase
from optuna.testing.pytest_samplers import SingleOnlySamplerTestCase
from optuna.trial import TrialState
import pytest

from optuna_gamma import GammaBOSampler
from optuna_gamma import History
from optuna_gamma.gp.settings import Predictive


def _own_trials_at_age_one(study: Study) -> History:
    """The study's own COMPLETE trials again, as a history at age 1 (valid in any space)."""
    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.values is not None and len(t.values) == 1
    ]
    values = [t.values[0] for t in trials]
    return History([t.params for t in trials], values, [1.0] * len(trials))


def _factory(mode: str) -> Callable[[], BaseSampler]:
    predictive, _, history = mode.partition("+")

    def factory() -> BaseSampler:
        return GammaBOSampler(
            predictive=cast(Predictive, predictive),
            n_startup_trials=0,
            seed=0,
            warn_independent_sampling=False,
            history=_own_trials_at_age_one if history else None,
        )

    return factory


class _Modes:
    @pytest.fixture(params=["student_t", "gaussian", "plugin", "student_t+history"])
    def sampler(self, request: pytest.FixtureRequest) -> Callable[[], BaseSampler]:
        return _factory(request.param)


class TestBasic(_Modes, BasicSamplerTestCase):
    pass


class TestRelative(_Modes, RelativeSamplerTestCase):
    pass


class TestMultiObjective(MultiObjectiveSamplerTestCase):
    @pytest.fixture(params=["student_t", "gaussian", "plugin"])
    def sampler(self, request: pytest.FixtureRequest) -> Callable[[], BaseSampler]:
        return _factory(request.param)


class TestSingleOnly(SingleOnlySamplerTestCase):
    """``history`` is single-valued: several objectives raise with it."""

    @pytest.fixture(params=["student_t+history"])
    def sampler(self, request: pytest.FixtureRequest) -> Callable[[], BaseSampler]:
        return _factory(request.param)
