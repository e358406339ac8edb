"""Optuna's own sampler contract (``optuna.testing.pytest_samplers``), for each predictive mode.

``n_startup_trials=0`` so that the contract's relative-sampling tests, which complete a single
trial and then call ``sample_relative`` directly, exercise the GP.
"""

from __future__ import annotations

from collections.abc import Callable

from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import BasicSamplerTestCase
from optuna.testing.pytest_samplers import RelativeSamplerTestCase
from optuna.testing.pytest_samplers import SingleOnlySamplerTestCase
import pytest

from optuna_gamma import GammaBOSampler


def _factory(predictive: str) -> Callable[[], BaseSampler]:
    def factory() -> BaseSampler:
        return GammaBOSampler(
            predictive=predictive,
            n_startup_trials=0,
            seed=0,
            warn_independent_sampling=False,
        )

    return factory


class _Modes:
    @pytest.fixture(params=["student_t", "gaussian", "plugin"])
    def sampler(self, request: pytest.FixtureRequest) -> Callable[[], BaseSampler]:
        return _factory(request.param)


class TestBasic(_Modes, BasicSamplerTestCase):
    pass


class TestRelative(_Modes, RelativeSamplerTestCase):
    pass


class TestSingleOnly(_Modes, SingleOnlySamplerTestCase):
    pass
