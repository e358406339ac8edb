"""Unit-cube encoding of Optuna distributions, and the mixed-space acquisition optimizer."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
import pytest

from optuna_gamma.samplers._optimize import DEFAULT_OPTIMIZER_SETTINGS
from optuna_gamma.samplers._optimize import optimize_acquisition
from optuna_gamma.samplers._optimize import OptimizerSettings
from optuna_gamma.samplers._search_space import SearchSpace


GRID_DISTRIBUTIONS = [
    IntDistribution(-10, 10),
    IntDistribution(0, 10, step=2),
    IntDistribution(3, 9, step=2),
    IntDistribution(1, 100, log=True),
    FloatDistribution(-10, 10, step=0.5),
    FloatDistribution(-10.2, 10.2, step=0.1),
    FloatDistribution(0.0, 1.0, step=0.25),
]


def _grid_values(dist: IntDistribution | FloatDistribution) -> np.ndarray:
    assert dist.step is not None
    k = int(round((dist.high - dist.low) / dist.step))
    return dist.low + dist.step * np.arange(k + 1)


def _assert_valid(value: object, dist: IntDistribution | FloatDistribution) -> None:
    assert dist.low <= value <= dist.high  # type: ignore[operator]
    if isinstance(dist, IntDistribution):
        assert type(value) is int
    else:
        assert type(value) is float
    if dist.step is not None:
        k = (float(value) - dist.low) / dist.step
        assert abs(k - round(k)) < 1e-8


@pytest.mark.parametrize("dist", GRID_DISTRIBUTIONS)
def test_grid_values_round_trip_and_own_equal_intervals(
    dist: IntDistribution | FloatDistribution,
) -> None:
    space = SearchSpace({"x": dist})
    values = _grid_values(dist)
    n = len(values)
    assert space.sizes == [n] and space.is_grid(0)
    grid = space.grid_values(0)
    assert len(grid) == n
    for v, g in zip(values, grid):
        value = int(v) if isinstance(dist, IntDistribution) else float(v)
        u = space.encode({"x": value})[0]
        assert u == pytest.approx(g)
        assert space.decode(np.array([u]))["x"] == pytest.approx(value, abs=1e-9)
    if dist.log:
        # Integer log scale: each value v owns [log(v - 1/2), log(v + 1/2)] (normalized).
        lo, hi = math.log(dist.low - 0.5), math.log(dist.high + 0.5)
        edges = (np.log(np.append(values - 0.5, values[-1] + 0.5)) - lo) / (hi - lo)
    else:
        edges = np.linspace(0.0, 1.0, n + 1)
    eps = 1e-9
    for k in range(n):
        for u in (edges[k] + eps, 0.5 * (edges[k] + edges[k + 1]), edges[k + 1] - eps):
            decoded = space.decode(np.array([u]))["x"]
            _assert_valid(decoded, dist)
            assert decoded == pytest.approx(values[k], abs=1e-9)


@pytest.mark.parametrize("dist", GRID_DISTRIBUTIONS)
def test_uniform_unit_cube_gives_uniform_grid_values(
    dist: IntDistribution | FloatDistribution,
) -> None:
    space = SearchSpace({"x": dist})
    grid = space.grid_values(0)
    n = len(grid)
    U = (np.arange(200 * n) + 0.5) / (200 * n)  # a fine uniform grid on [0, 1)
    X = space.from_unit_cube(U[:, None])
    counts = np.array([np.sum(X[:, 0] == g) for g in grid])
    assert counts.sum() == len(U)
    if dist.log:
        # Cells of equal width in log space: counts proportional to log((v+1/2)/(v-1/2)).
        v = _grid_values(dist)
        expected = np.log((v + 0.5) / (v - 0.5))
        expected = expected / expected.sum() * len(U)
        np.testing.assert_allclose(counts, expected, atol=1.5)
    else:
        assert counts.min() == counts.max() == 200


@pytest.mark.parametrize(
    "dist",
    [
        FloatDistribution(-1.0, 2.0),
        FloatDistribution(1e-7, 1.0, log=True),
        FloatDistribution(0, 0.5),
    ],
)
def test_continuous_round_trip(dist: FloatDistribution) -> None:
    space = SearchSpace({"x": dist})
    rng = np.random.default_rng(0)
    for u in rng.random(50):
        value = space.decode(np.array([u]))["x"]
        _assert_valid(value, dist)
        assert space.encode({"x": value})[0] == pytest.approx(u, abs=1e-12)
    assert space.decode(np.array([0.0]))["x"] == dist.low
    assert space.decode(np.array([1.0]))["x"] == pytest.approx(dist.high)
    if dist.log:
        mid = space.decode(np.array([0.5]))["x"]
        assert mid == pytest.approx(math.sqrt(dist.low * dist.high))


def test_categorical_encoding_is_the_index() -> None:
    dist = CategoricalDistribution(["a", 1, None, 2.5])
    space = SearchSpace({"c": dist})
    assert space.is_categorical.tolist() == [True]
    for i, choice in enumerate(dist.choices):
        assert space.encode({"c": choice})[0] == i
        assert space.decode(np.array([float(i)]))["c"] == choice
    U = (np.arange(400) + 0.5) / 400
    X = space.from_unit_cube(U[:, None])
    assert np.bincount(X[:, 0].astype(int)).tolist() == [100, 100, 100, 100]
    with pytest.raises(ValueError):
        space.encode({"c": "not a choice"})


def test_decode_clips_and_round_is_idempotent() -> None:
    dists = {
        "f": FloatDistribution(-1, 1),
        "s": FloatDistribution(0, 1, step=0.1),
        "i": IntDistribution(1, 1000, log=True),
        "c": CategoricalDistribution([True, False]),
    }
    space = SearchSpace(dists)
    rng = np.random.default_rng(1)
    X = rng.uniform(-0.5, 1.5, size=(200, 4))
    X[:, 3] = rng.uniform(-1, 3, size=200)
    R = space.round(X)
    np.testing.assert_array_equal(space.round(R), R)
    for x, r in zip(X, R):
        p = space.decode(x)
        assert p == space.decode(r)
        for name, dist in dists.items():
            if isinstance(dist, CategoricalDistribution):
                assert p[name] in dist.choices
            else:
                assert isinstance(dist, (IntDistribution, FloatDistribution)), dist
                _assert_valid(p[name], dist)
    # Out-of-range values are encoded as the nearest end of the range (grids: its cell centre).
    assert space.encode({"f": 5.0, "s": -3.0, "i": 10**6, "c": False}).tolist() == pytest.approx(
        [1.0, 0.5 / 11, math.log(1000 / 0.5) / math.log(1000.5 / 0.5), 1.0]
    )


class _Quadratic:
    """A concave acquisition with a known maximizer; counts its evaluations."""

    def __init__(self, target: np.ndarray, weights: np.ndarray) -> None:
        self.target = target
        self.weights = weights
        self.n_points = 0

    def __call__(self, X: np.ndarray) -> np.ndarray:
        self.n_points += len(X)
        return -np.sum(self.weights * (X - self.target) ** 2, axis=1)

    def value_and_grad(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self(X), -2.0 * self.weights * (X - self.target)


def test_optimizer_finds_the_maximizer_over_a_mixed_space() -> None:
    dists = {
        "a": FloatDistribution(0, 1),
        "b": FloatDistribution(1e-3, 1, log=True),
        "c": IntDistribution(0, 10),  # 11 values: exhaustive
        "d": IntDistribution(0, 999),  # 1000 values: relaxed, then snapped
        "e": CategoricalDistribution(["x", "y", "z"]),
    }
    space = SearchSpace(dists)
    grid_c, grid_d = space.grid_values(2), space.grid_values(3)
    target = np.array([0.3, 0.77, grid_c[7] + 0.01, grid_d[600] + 1e-4, 2.0])
    acq = _Quadratic(target, np.ones(5))
    x, value = optimize_acquisition(acq, space, rng=np.random.default_rng(0))
    np.testing.assert_allclose(x[:2], target[:2], atol=1e-4)
    assert x[2] == grid_c[7] and x[3] == grid_d[600] and x[4] == 2.0
    assert value == pytest.approx(float(acq(x[None])[0]))
    params = space.decode(x)
    assert params["c"] == 7 and params["d"] == 600 and params["e"] == "z"


def test_short_joint_search_is_completed_by_the_polish_of_the_best_start() -> None:
    # An ill-conditioned concave quadratic: one joint L-BFGS-B iteration over all starts leaves
    # every start far from the maximizer; the per-start polish must converge the best one.
    space = SearchSpace({f"x{i}": FloatDistribution(0, 1) for i in range(6)})
    target = np.array([0.21, 0.43, 0.65, 0.37, 0.59, 0.71])
    acq = _Quadratic(target, np.logspace(0, 3, 6))
    settings = OptimizerSettings(n_preliminary_samples=16, lbfgs_maxiter=1)
    x_short, _ = optimize_acquisition(
        acq,
        space,
        rng=np.random.default_rng(3),
        settings=dataclasses.replace(settings, polish_maxiter=0),
    )
    x, value = optimize_acquisition(acq, space, rng=np.random.default_rng(3), settings=settings)
    assert np.max(np.abs(x_short - target)) > 1e-2
    np.testing.assert_allclose(x, target, atol=1e-4)
    assert value == pytest.approx(float(acq(x[None])[0]))


def test_optimizer_respects_bounds_and_is_deterministic_given_the_rng() -> None:
    space = SearchSpace({"a": FloatDistribution(0, 1), "b": FloatDistribution(0, 1)})
    acq = _Quadratic(np.array([1.7, -0.4]), np.array([1.0, 3.0]))
    x1, _ = optimize_acquisition(acq, space, rng=np.random.default_rng(5))
    x2, _ = optimize_acquisition(acq, space, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_allclose(x1, [1.0, 0.0], atol=1e-8)


def test_optimizer_keeps_a_warm_start_that_beats_every_candidate() -> None:
    # A needle at the warm start: Sobol points cannot see it, the warm start must survive.
    space = SearchSpace({"a": FloatDistribution(0, 1), "b": IntDistribution(0, 4)})
    needle = np.array([0.123456, space.grid_values(1)[3]])

    class Needle(_Quadratic):
        def __call__(self, X: np.ndarray) -> np.ndarray:
            base = super().__call__(X)
            return np.where(np.all(np.abs(X - needle) < 1e-9, axis=1), 10.0, base)

    acq = Needle(np.array([0.9, 0.0]), np.ones(2))
    x, value = optimize_acquisition(
        acq, space, rng=np.random.default_rng(0), warm_starts=needle[None]
    )
    assert value == 10.0
    np.testing.assert_allclose(x, needle)


def test_candidates_around_local_centres_find_a_narrow_peak() -> None:
    # A broad slope towards the corner (0, ..., 0) and a narrow, higher peak at `peak`: the Sobol
    # design alone never lands in the peak's basin; candidates around a nearby observation do.
    d = 6
    space = SearchSpace({f"x{i}": FloatDistribution(0, 1) for i in range(d)})
    peak = np.full(d, 0.6)

    class Peak:
        def __call__(self, X: np.ndarray) -> np.ndarray:
            return self.value_and_grad(X)[0]

        def value_and_grad(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            bump = 2.0 * np.exp(-np.sum((X - peak) ** 2, axis=1) / (2 * 0.03**2))
            value = -0.1 * X.sum(axis=1) + bump
            grad = -0.1 - bump[:, None] * (X - peak) / 0.03**2
            return value, grad

    x_plain, v_plain = optimize_acquisition(Peak(), space, rng=np.random.default_rng(0))
    np.testing.assert_allclose(x_plain, np.zeros(d), atol=1e-8)
    assert v_plain == pytest.approx(0.0)
    centre = peak + 0.01
    x_local, v_local = optimize_acquisition(
        Peak(), space, rng=np.random.default_rng(0), local_centres=centre[None]
    )
    np.testing.assert_allclose(x_local, peak, atol=1e-3)
    assert v_local > 1.5


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_local_search", 0),
        ("n_preliminary_samples", 0),
        ("n_local_samples", -1),
        ("max_rounds", 1.5),
        ("n_polish", True),
        ("tol", -1e-3),
        ("tol", float("nan")),
    ],
)
def test_optimizer_settings_reject_bad_values(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        OptimizerSettings(**{field: value})


def test_optimizer_settings_are_frozen_and_default() -> None:
    settings = OptimizerSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.tol = 0.0  # type: ignore[misc]
    assert settings == DEFAULT_OPTIMIZER_SETTINGS


def test_optimizer_rejects_an_empty_space() -> None:
    acq = _Quadratic(np.array([0.5]), np.ones(1))
    with pytest.raises(ValueError, match="no dimension"):
        optimize_acquisition(acq, SearchSpace({}), rng=np.random.default_rng(0))


# -- spaces of any width -------------------------------------------------------------------------


def _contains(dist: object, value: object) -> bool:
    return bool(dist._contains(dist.to_internal_repr(value)))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "dist",
    [
        IntDistribution(0, 2**31),
        IntDistribution(-(2**62), 2**62),
        IntDistribution(-(2**62), 2**62 - 2, step=3),
        IntDistribution(0, 2**63 - 1),
        IntDistribution(-(2**63), 2**63 - 1),
        IntDistribution(1, 10**12, log=True),
        IntDistribution(1, 2**62, log=True),
        FloatDistribution(0.0, 1.0, step=1e-9),
        FloatDistribution(-1e6, -999999.98, step=1e-4),
        FloatDistribution(-1e300, 1e300, step=1e290),
        FloatDistribution(-1.7e308, 1.7e308),
        FloatDistribution(1e-300, 1e300, log=True),
    ],
    ids=str,
)
def test_wide_columns_decode_exactly_to_valid_values(
    dist: IntDistribution | FloatDistribution,
) -> None:
    space = SearchSpace({"x": dist})
    us = np.concatenate([[0.0, 1.0, 0.5, 1e-17, 1 - 1e-16], np.random.default_rng(0).random(200)])
    with np.errstate(all="raise"):  # no overflow or invalid operation anywhere
        for u in us:
            value = space.decode(np.array([u]))["x"]
            assert type(value) is (int if isinstance(dist, IntDistribution) else float)
            assert _contains(dist, value), (u, value)
            x = space.encode({"x": value})
            assert 0.0 <= x[0] <= 1.0
            # decoding the encoding gives the value back: exactly for a grid whose values the
            # encoding can tell apart, else to the float resolution of the encoded coordinate
            again = space.decode(x)["x"]
            if space.sizes[0] is not None and space.sizes[0] < 2**40:
                assert again == value
            else:
                size = space.sizes[0] or 1
                assert again == pytest.approx(value, rel=1e-12, abs=size * 2.0**-50)
            if isinstance(dist, IntDistribution) and not dist.log:
                assert (value - dist.low) % dist.step == 0  # exact integer arithmetic
    lo, hi = space.decode(np.array([0.0]))["x"], space.decode(np.array([1.0]))["x"]
    assert lo == dist.low
    if isinstance(dist, IntDistribution) and float(dist.high) <= dist.high:
        assert hi == dist.high
    if dist.log and isinstance(dist, IntDistribution):
        mid = space.decode(np.array([0.5]))["x"]
        assert mid == pytest.approx(math.sqrt((dist.low - 0.5) * (dist.high + 0.5)), rel=1e-6)


def test_int64_extremes_are_exact() -> None:
    dist = IntDistribution(-(2**62), 2**62)
    space = SearchSpace({"x": dist})
    assert space.sizes == [2**63 + 1]
    for value in (-(2**62), 2**62, 0, 1, -1, 2**62 - 1, 123456789012345678):
        assert _contains(dist, value)
        decoded = space.decode(space.encode({"x": value}))["x"]
        # the float encoding resolves 2**63 values to about 2**10: the nearest grid value
        assert abs(decoded - value) <= 2**11 and type(decoded) is int
    # 2**63 - 1 is an int64, but its float is 2**63 > high: Optuna's check rejects it
    top = IntDistribution(0, 2**63 - 1)
    value = SearchSpace({"x": top}).decode(np.array([1.0]))["x"]
    assert value == 2**63 - 1024 and _contains(top, value) and not _contains(top, 2**63 - 1)


def test_stepped_floats_pass_optunas_own_check() -> None:
    dist = FloatDistribution(-1e6, -999999.98, step=1e-4)
    assert dist.step is not None
    accepted = [k for k in range(201) if _contains(dist, dist.low + k * dist.step)]
    assert accepted == [0, 98, 135, 196]  # only these grid values are representable closely enough
    space = SearchSpace({"x": dist})
    values = {space.decode(np.array([u]))["x"] for u in np.linspace(0, 1, 1001)}
    assert values == {dist.low + k * dist.step for k in accepted}
    fine = FloatDistribution(0.0, 1.0, step=1e-9)
    space = SearchSpace({"x": fine})
    for u in np.random.default_rng(1).random(100):
        value = space.decode(np.array([u]))["x"]
        assert _contains(fine, value) and abs(value - u) < 1e-6


def test_wide_grids_are_relaxed_not_enumerated(monkeypatch: pytest.MonkeyPatch) -> None:
    import tracemalloc

    dists = {
        "i": IntDistribution(0, 2**31),
        "s": FloatDistribution(0, 1, step=1e-9),
        "l": IntDistribution(1, 10**12, log=True),
        "c": IntDistribution(0, 5),
    }
    space = SearchSpace(dists)
    real = SearchSpace.grid_values

    def small_only(self: SearchSpace, j: int) -> np.ndarray:
        size = self.sizes[j]
        assert size is not None and size <= 32, "enumerated a wide grid"
        return real(self, j)

    monkeypatch.setattr(SearchSpace, "grid_values", small_only)
    target = space.round(np.array([[0.31, 0.77, 0.42, 0.0]]))[0]
    target[3] = space.grid_values(3)[4]
    acq = _Quadratic(target, np.ones(4))
    tracemalloc.start()
    x, _ = optimize_acquisition(acq, space, rng=np.random.default_rng(0))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 * 2**20
    np.testing.assert_allclose(x, target, atol=1e-6)
    params = space.decode(x)
    assert params["c"] == 4 and abs(params["i"] - 0.31 * 2**31) < 2**31 * 1e-6


@pytest.mark.parametrize("seed", range(40))
def test_best_allowed_equals_the_argmax_over_every_allowed_point(seed: int) -> None:
    # The final choice asks the repeat guard lazily, best values first; it must pick what the
    # plain rule (match the whole pool, argmax over the allowed ones) picks, ties and -inf
    # included, and the overall argmax when nothing is allowed.
    from optuna_gamma.samplers._optimize import _best_allowed

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    values = rng.choice(np.array([-np.inf, 0.0, 1.0, 2.0, 3.0]), size=n)
    values = np.where(rng.random(n) < 0.5, rng.standard_normal(n), values)
    pool = np.arange(n, dtype=float)[:, None]
    banned = rng.random(n) < rng.choice(np.array([0.0, 0.5, 0.99, 1.0]))
    calls = []

    def exclude(X: np.ndarray) -> np.ndarray:
        calls.append(len(X))
        return banned[X[:, 0].astype(int)]

    allowed = ~banned
    if allowed.any():
        expected = int(np.flatnonzero(allowed)[np.argmax(values[allowed])])
    else:
        expected = int(np.argmax(values))
    assert _best_allowed(pool, values, exclude) == expected
    assert sum(calls) <= n  # every point is matched at most once
    assert _best_allowed(pool, values, None) == int(np.argmax(values))


@pytest.mark.parametrize("seed", range(40))
def test_first_distinct_rows_equal_the_first_rows_of_the_whole_deduplication(seed: int) -> None:
    # The local searches start from the first k distinct candidates in rank order; deduplicating
    # a growing prefix must give exactly what deduplicating the whole pool gives, also when the
    # pool is mostly duplicates (a snapped grid) or has fewer than k distinct rows.
    from optuna_gamma.samplers._optimize import _first_distinct

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 900))
    k = int(rng.integers(1, 12))
    n_distinct = int(rng.choice(np.array([1, 3, k, 50, n])))
    X = rng.integers(0, n_distinct, size=(n, 1)) * np.ones((1, 2))
    values = rng.standard_normal(n)
    _, first = np.unique(X, axis=0, return_index=True)
    first = np.sort(first)[:k]
    rows, row_values = _first_distinct(X, values, k)
    np.testing.assert_array_equal(rows, X[first])
    np.testing.assert_array_equal(row_values, values[first])
