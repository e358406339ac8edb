"""GammaBOSampler at any objective scale, on very wide spaces, and its repeat guard."""

from __future__ import annotations

import math
import tracemalloc
from typing import Any
import warnings

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import TrialState
import pytest

from optuna_gamma import GammaBOSampler
from optuna_gamma.gp.settings import Predictive
from optuna_gamma.samplers._gamma_bo import FLOAT_RESOLUTION
from optuna_gamma.samplers._observations import standardize
from optuna_gamma.samplers._search_space import SearchSpace


# -- robust standardization ------------------------------------------------------------------


@pytest.mark.parametrize(
    "offset, scale",
    [
        (0.0, 1.0),
        (5.0, 1e-13),
        (0.0, 1e-300),
        (1e300, 1e299),
        (1.4e308, 1e307),
        (-1.7e308, 1e296),
        (0.0, 2.0**-1074 * 1e6),
    ],
)
def test_standardize_at_any_finite_scale(offset: float, scale: float) -> None:
    h = np.random.default_rng(0).random(40)
    values = offset + scale * h
    assert np.all(np.isfinite(values)) and np.ptp(values) > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow, no underflow-to-nan, nothing clipped
        y, transform = standardize(values)
    assert np.all(np.isfinite(y))
    assert abs(y.mean()) < 1e-12 and y.std() == pytest.approx(1.0, rel=1e-12)
    # standardization is affine and increasing in the values (up to their float resolution)
    ref = (h - h.mean()) / h.std()
    tol = 8 * np.spacing(max(abs(offset), 1e-300)) / (scale * h.std()) + 1e-9
    np.testing.assert_allclose(y, ref, atol=tol)
    np.testing.assert_allclose(transform.apply(values), y, rtol=1e-12, atol=1e-12)


def test_standardize_constant_and_infinite_values() -> None:
    y, _ = standardize(np.full(5, 1.7e308))
    assert np.all(y == 0.0)
    with pytest.warns(RuntimeWarning, match="Non-finite objective values") as first:
        y, _ = standardize(np.array([1.0, np.inf, 3.0, -np.inf]))
    np.testing.assert_allclose(y, standardize(np.array([1.0, 3.0, 3.0, 1.0]))[0])
    # One text whatever the values, so Python's filter says it once a study, not every trial.
    with pytest.warns(RuntimeWarning) as second:
        standardize(np.array([5.0, np.inf, -2.0]))
    assert str(first[0].message) == str(second[0].message)


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -1.0, 2.0)
    y = trial.suggest_float("y", 0.0, 1.0)
    return (x - 0.3) ** 2 + (y - 0.7) ** 2 + 0.1 * math.sin(5.0 * x)


def _proposals(a: float, b: float, seed: int = 3, n: int = 15) -> np.ndarray:
    study = optuna.create_study(sampler=GammaBOSampler(seed=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "overflow encountered in square" fails the test
        study.optimize(lambda t: b + a * _objective(t), n_trials=n)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    return np.array([[t.params["x"], t.params["y"]] for t in study.trials])


def test_suggestions_do_not_depend_on_the_scale_of_the_objective() -> None:
    """Objectives whose spread is below 1e-12 or whose values lie near 1e300 or 1.7e308 are
    optimized like the unscaled objective: exactly the same proposals for a power-of-two scale,
    and the same to rounding otherwise (the standardized values agree to the float resolution of
    the objective's values). Values near
    1.7e308 never overflow and the GP is never bypassed."""
    ref = _proposals(1.0, 0.0)
    np.testing.assert_array_equal(_proposals(2.0**-900, 0.0), ref)
    for a, b in [
        (1e-14, 0.0),
        (3e-13, 1e-12),
        (1e299, 1e300),
        (1e307, 1.4e308),
        (2.0**1000, -(2.0**1022)),
    ]:
        np.testing.assert_allclose(_proposals(a, b), ref, atol=1e-4)


# -- very wide spaces ----------------------------------------------------------------------------


def test_suggest_int_up_to_2_to_the_31_needs_little_memory() -> None:
    """suggest_int('x', 0, 2**31): the grid is never enumerated (it took 23.8 GB before)."""
    sampler = GammaBOSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: abs(t.suggest_int("x", 0, 2**31) - 123456789) / 2**31, n_trials=3)
    tracemalloc.start()
    study.optimize(lambda t: abs(t.suggest_int("x", 0, 2**31) - 123456789) / 2**31, n_trials=3)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200 * 2**20
    assert all(0 <= t.params["x"] <= 2**31 and type(t.params["x"]) is int for t in study.trials)


@pytest.mark.parametrize("predictive", ["student_t", "gaussian", "plugin"])
def test_extreme_spaces_give_valid_relative_values(predictive: Predictive) -> None:
    space: dict[str, Any] = {
        "i62": IntDistribution(-(2**62), 2**62),
        "i63": IntDistribution(0, 2**63 - 1),
        "ilog": IntDistribution(1, 10**12, log=True),
        "fs": FloatDistribution(-1e6, -999999.98, step=1e-4),
        "f9": FloatDistribution(0.0, 1.0, step=1e-9),
        "wide": FloatDistribution(-1.7e308, 1.7e308),
        "c": CategoricalDistribution([None, 1.5, "a"]),
    }
    relative_misses: list[tuple[int, str]] = []

    class Recording(GammaBOSampler):
        def sample_independent(self, study: Any, trial: Any, name: str, dist: Any) -> Any:
            if trial.number >= 2:
                relative_misses.append((trial.number, name))
            return super().sample_independent(study, trial, name, dist)

    def objective(trial: optuna.Trial) -> float:
        values = [trial._suggest(name, dist) for name, dist in space.items()]
        return float(sum(math.log1p(abs(float(v))) for v in values if isinstance(v, (int, float))))

    study = optuna.create_study(sampler=Recording(predictive=predictive, seed=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        study.optimize(objective, n_trials=8)
    assert not relative_misses
    for t in study.trials:
        for name, dist in space.items():
            assert dist._contains(dist.to_internal_repr(t.params[name])), (name, t.params[name])


# -- the repeat guard ---------------------------------------------------------------------------


def _int_grid(trial: optuna.Trial) -> float:
    x = trial.suggest_int("x", 0, 6)
    y = trial.suggest_categorical("y", ["a", "b", "c"])
    return (x - 4) ** 2 + (y != "b")


def _keys(study: optuna.Study) -> list[tuple[Any, ...]]:
    return [tuple(sorted(t.params.items())) for t in study.trials]


@pytest.mark.parametrize("deterministic", [True, False])
def test_deterministic_objective_never_repeats_a_point_until_the_space_is_exhausted(
    deterministic: bool,
) -> None:
    """21 points in the space: the first 21 trials are all distinct (the optimum is found, then
    the rest of the grid is visited), and the 22nd has no choice but a repeat. Without the flag
    the same holds, because the fitted noise of this deterministic objective never becomes
    evidence of noise (``optuna_gamma.samplers._noise``); the sampler repeated the optimum
    before issue 17."""
    sampler = GammaBOSampler(seed=0, deterministic_objective=deterministic)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_int_grid, n_trials=22)
    keys = _keys(study)
    assert len(set(keys[:21])) == 21
    assert keys[21] in keys[:21]
    assert study.best_value == 0.0


def test_repeat_guard_uses_the_float_resolution() -> None:
    """A continuous parameter counts as repeated within FLOAT_RESOLUTION of its range; the
    optimum of a smooth deterministic function is approached but never re-proposed."""
    space = SearchSpace({"x": FloatDistribution(-1.0, 2.0), "i": IntDistribution(0, 3)})
    ref = space.round(np.array([[0.5, 0.0]]))
    eps = FLOAT_RESOLUTION
    X = space.round(np.array([[0.5 + 0.9 * eps, 0.0], [0.5 + 1.1 * eps, 0.0], [0.5, 0.4]]))
    assert space.matches(X, ref, eps).tolist() == [True, False, False]
    study = optuna.create_study(sampler=GammaBOSampler(seed=1, deterministic_objective=True))
    study.optimize(lambda t: (t.suggest_float("x", -1, 2) - 0.123) ** 2, n_trials=30)
    xs = np.sort(np.array([(t.params["x"] + 1.0) / 3.0 for t in study.trials]))
    assert np.min(np.diff(xs)) > eps
    assert study.best_value < 1e-8


def test_pending_points_are_never_proposed_again() -> None:
    """Trials asked before any is told hold distinct points (RUNNING trials with parameters are
    pending), on a grid small enough that the acquisition alone would collide."""
    study = optuna.create_study(sampler=GammaBOSampler(seed=0))
    study.optimize(_int_grid, n_trials=8)
    asked = [
        study.ask({"x": IntDistribution(0, 6), "y": CategoricalDistribution(["a", "b", "c"])})
        for _ in range(10)
    ]
    keys = [tuple(sorted(t.params.items())) for t in asked]
    assert len(set(keys)) == 10


# -- output warping -------------------------------------------------------------------------------


def test_yeo_johnson_warp_matches_scipy_and_keeps_the_order() -> None:
    from scipy import stats

    from optuna_gamma.samplers._observations import _yeo_johnson_llf
    from optuna_gamma.samplers._observations import warp
    from optuna_gamma.samplers._observations import yeo_johnson

    rng = np.random.default_rng(0)
    for y in (
        rng.standard_normal(30),
        np.exp(rng.standard_normal(40)),
        -np.exp(2 * rng.standard_normal(25)),
        rng.standard_t(2, 50),
    ):
        y = (y - y.mean()) / y.std()
        lam_ref = stats.yeojohnson_normmax(y)
        for lam in (-2.0, 0.0, 0.7, 2.0, lam_ref):
            np.testing.assert_allclose(
                yeo_johnson(y, lam), stats.yeojohnson(y, lmbda=lam), rtol=1e-12, atol=1e-12
            )
            assert _yeo_johnson_llf(y, np.array(lam)) == pytest.approx(
                stats.yeojohnson_llf(lam, y)
            )
        z = warp(y)
        ref = stats.yeojohnson(y, lmbda=lam_ref)
        np.testing.assert_allclose(z, (ref - ref.mean()) / ref.std(), atol=5e-3)
        assert np.array_equal(np.argsort(z, kind="stable"), np.argsort(y, kind="stable"))
        assert abs(z.mean()) < 1e-12 and z.std() == pytest.approx(1.0)
    assert np.array_equal(warp(np.array([1.0, -1.0])), np.array([1.0, -1.0]))  # too few
    assert np.array_equal(warp(np.zeros(8)), np.zeros(8))  # constant


def test_warp_chooses_its_scale_by_likelihood_so_a_heavy_tail_does_not_flatten_the_best() -> None:
    """``warp(y, choose_scale=True)``: on a heavy tail of bad values (Goldstein-Price's values
    of a run: 7.6 to 956,600) the good values are told apart, where the warp of the
    standardized values puts the best ten within 2 % of the range; the scale chosen is the
    likelihood's (scipy's Yeo-Johnson likelihood with the ``-n log s`` of the scale); data
    without a tail get nearly the warp of before; fewer than 20 values are not touched."""
    import optuna
    from optuna.distributions import BaseDistribution
    from optuna.distributions import FloatDistribution
    from scipy import stats

    from optuna_gamma.samplers._observations import MIN_SCALE_OBSERVATIONS
    from optuna_gamma.samplers._observations import Observations
    from optuna_gamma.samplers._observations import standardize
    from optuna_gamma.samplers._observations import warp
    from optuna_gamma.samplers._search_space import SearchSpace

    f = np.array(
        [16970.79, 268.78, 24376.0, 2686.79, 316600.0, 59307.29, 4191.02, 48163.1, 7.62]
        + [6065.84, 75.47, 110.18, 956600.0, 1571.11, 2198.45, 76728.0, 892.8, 302.67]
        + [48.26, 40.6, 78536.33, 3222.87, 605.22, 710.33, 803.9, 1097.36, 1160.67]
        + [34580.9, 128.01, 869.14]
    )
    y, _ = standardize(-f)  # minimized: larger is better
    order = np.argsort(f)
    old, new = warp(y), warp(y, choose_scale=True)
    for z in (old, new):
        assert np.array_equal(np.argsort(-z, kind="stable"), order)
        assert abs(z.mean()) < 1e-12 and z.std() == pytest.approx(1.0)
    assert (old[order[0]] - old[order[9]]) / np.ptp(old) < 0.02
    assert (new[order[0]] - new[order[9]]) / np.ptp(new) > 0.05

    def fit(loc: float, scale: float) -> float:
        x = (y - loc) / scale
        return float(stats.yeojohnson_llf(stats.yeojohnson_normmax(x), x)) - len(y) * np.log(scale)

    q1, median, q3 = np.percentile(y, [25, 50, 75])
    robust = (q3 - q1) / 1.349
    assert robust < y.std() / 10  # the tail sets the standard deviation
    scales = [y.std() / 2**k for k in range(1, 13) if y.std() / 2**k > robust] + [robust]
    candidates = [(y.mean(), y.std())] + [(median, s) for s in scales]
    fits = [fit(*c) for c in candidates]
    loc, scale = candidates[int(np.argmax(fits))]
    assert max(fits) > fits[0] + 10.0
    x = (y - loc) / scale
    ref = stats.yeojohnson(x, lmbda=stats.yeojohnson_normmax(x))
    np.testing.assert_allclose(new, (ref - ref.mean()) / ref.std(), atol=5e-3)

    rng = np.random.default_rng(3)
    for _ in range(5):  # no tail: the candidates fit about alike, and the warp is nearly as before
        g, _ = standardize(rng.standard_normal(40))
        np.testing.assert_allclose(warp(g, choose_scale=True), warp(g), atol=0.02)
    # what the GP of a study sees: the values of its trials, warped at the chosen scale
    dists: dict[str, BaseDistribution] = {"x": FloatDistribution(0.0, 1.0)}
    trials = [
        optuna.trial.create_trial(params={"x": i / len(f)}, distributions=dists, value=v)
        for i, v in enumerate(f)
    ]
    obs = Observations.from_trials(
        SearchSpace(dists), trials, optuna.study.StudyDirection.MINIMIZE
    )
    np.testing.assert_array_equal(obs.y, new)
    few = y[: MIN_SCALE_OBSERVATIONS - 1]
    assert np.array_equal(warp(few, choose_scale=True), warp(few))
    assert np.array_equal(warp(np.zeros(30), choose_scale=True), np.zeros(30))
    # more than half the values equal (an interquartile range of 0): the standardized warp
    tied, _ = standardize(np.r_[np.zeros(20), rng.standard_normal(10)])
    np.testing.assert_allclose(warp(tied, choose_scale=True), warp(tied), atol=1e-12)
