"""Noise and repeats (issue 17): the incumbent on the posterior mean; an evaluated point is not
proposed again by default, and with ``repeats="if_noisy"`` only once the fitted noise is evidence
of noise."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import FloatDistribution
import pytest

from optuna_gamma import GammaBOSampler
from optuna_gamma.gp import fit_gp
from optuna_gamma.gp import GaussianProcess
from optuna_gamma.gp import GPHyperparams
from optuna_gamma.gp import GPSettings
from optuna_gamma.samplers._gamma_bo import FLOAT_RESOLUTION
from optuna_gamma.samplers._noise import AGREEMENT_TOLERANCE
from optuna_gamma.samplers._noise import incumbent_of
from optuna_gamma.samplers._noise import NOISE_EVIDENCE
from optuna_gamma.samplers._noise import noise_evident
from optuna_gamma.samplers._noise import replicates_agree
from optuna_gamma.samplers._noise import resolve_incumbent
from optuna_gamma.samplers._observations import Observations
from optuna_gamma.samplers._search_space import SearchSpace


_HARTMANN3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_HARTMANN3_P = 1e-4 * np.array(
    [[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]]
)
_HARTMANN3_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def _hartmann3(trial: optuna.Trial) -> float:
    x = np.array([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(3)])
    inner = (_HARTMANN3_A * (x - _HARTMANN3_P) ** 2).sum(axis=1)
    return -float(_HARTMANN3_ALPHA @ np.exp(-inner))


def _min_distance(study: optuna.Study) -> float:
    """Smallest distance between two trials' parameters (all in [0, 1])."""
    X = np.array([[t.params[k] for k in sorted(t.params)] for t in study.trials])
    d = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=-1))
    return float(d[np.triu_indices(len(X), 1)].min())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_flat_objective_gets_distinct_proposals(seed: int) -> None:
    """A constant objective (not declared deterministic) is fitted with no noise, so no point is
    measured twice: 20 trials, 20 points further apart than the repeat guard's resolution (before
    issue 17: 7 distinct points in 10 trials)."""
    sampler = GammaBOSampler(seed=seed)
    study = optuna.create_study(sampler=sampler)
    study.optimize(
        lambda t: 0.0 * sum(t.suggest_float(f"x{i}", 0.0, 1.0) for i in range(3)), n_trials=20
    )
    assert _min_distance(study) > FLOAT_RESOLUTION
    (cached,) = sampler._fit_cache.values()
    assert not noise_evident(cached.gp)


def test_converged_study_does_not_remeasure_its_incumbent() -> None:
    """Hartmann-3, deterministic but not declared so: once converged, the sampler used to propose
    its incumbent again and again (85 exact repeats in 160 trials, seed 0); without evidence of
    noise it refines around it instead."""
    study = optuna.create_study(sampler=GammaBOSampler(seed=0))
    study.optimize(_hartmann3, n_trials=60)
    assert _min_distance(study) > FLOAT_RESOLUTION
    assert study.best_value < -3.86  # the optimum is -3.86278


def _noisy_gp(noise_sd: float, deterministic: bool = False) -> tuple[GaussianProcess, np.ndarray]:
    """A GP fitted on 12 points of a smooth 1-D function, each measured 3 times."""
    rng = np.random.default_rng(0)
    X = np.repeat(np.linspace(0.05, 0.95, 12), 3)[:, None]
    y = np.sin(6.0 * X[:, 0]) + noise_sd * rng.standard_normal(len(X))
    y = (y - y.mean()) / y.std()
    settings = GPSettings(deterministic_objective=deterministic)
    return fit_gp(X, y, settings), X


def test_noise_evidence_comes_from_the_fit() -> None:
    """Repeated measurements that differ are evidence of noise; equal ones (or a deterministic
    objective) are not."""
    noisy, _ = _noisy_gp(0.5)
    assert noisy.params.noise >= NOISE_EVIDENCE and noise_evident(noisy)
    exact, _ = _noisy_gp(0.0)
    assert exact.params.noise < NOISE_EVIDENCE and not noise_evident(exact)
    declared, _ = _noisy_gp(0.5, deterministic=True)
    assert not noise_evident(declared)
    assert not noise_evident(None)


def test_repeat_guard_is_released_by_evidence_of_noise() -> None:
    """With ``repeats="if_noisy"`` an evaluated point is excluded unless the objective's GP has
    evidence of noise; by default it is excluded even then; a pending point is always
    excluded."""
    space = SearchSpace({"x": FloatDistribution(0.0, 1.0)})
    sampler = GammaBOSampler(seed=0, repeats="if_noisy")
    noisy, X = _noisy_gp(0.5)
    exact, _ = _noisy_gp(0.0)
    obs = Observations(
        X=X,
        y=noisy.y,
        constraint_names=(),
        constraints=np.zeros((len(X), 0)),
        feasible=np.ones(len(X), dtype=bool),
    )
    pending = np.array([[0.5]])
    query = np.array([X[0], [0.5], [0.123]])
    assert sampler._exclusion(space, obs, pending, exact)(query).tolist() == [True, True, False]
    assert sampler._exclusion(space, obs, pending, noisy)(query).tolist() == [False, True, False]
    default = GammaBOSampler(seed=0)
    assert default._exclusion(space, obs, pending, noisy)(query).tolist() == [True, True, False]


@pytest.mark.parametrize("repeats", ["always", "", None, True])
def test_repeats_option_is_checked(repeats: Any) -> None:
    with pytest.raises(ValueError, match="repeats must be one of"):
        GammaBOSampler(repeats=repeats)


def test_posterior_mean_incumbent_ignores_a_lucky_draw() -> None:
    """With noise, one lucky draw at a poor point is the best observed value but not the best
    posterior mean; without noise the two incumbents agree."""
    rng = np.random.default_rng(1)
    x = np.concatenate([np.repeat(np.linspace(0.0, 1.0, 11), 3), [0.1]])
    values = -((x - 0.7) ** 2) + 0.05 * rng.standard_normal(len(x))
    lucky = len(x) - 1
    values[lucky] = values.max() + 0.1
    study = optuna.create_study(direction="maximize")
    dist: dict[str, BaseDistribution] = {"x": FloatDistribution(0.0, 1.0)}
    for xi, v in zip(x, values):
        study.add_trial(optuna.create_trial(params={"x": float(xi)}, distributions=dist, value=v))
    space = SearchSpace(dist)
    obs = Observations.from_trials(space, study.trials, study.direction)
    gp = fit_gp(obs.X, obs.y)
    assert noise_evident(gp)
    index, best = incumbent_of(gp, obs, "observed")
    assert index == lucky and best == obs.y.max()
    index, best = incumbent_of(gp, obs, "posterior_mean")
    assert index is not None and best is not None
    assert abs(float(obs.X[index, 0]) - 0.7) <= 0.1 and best < obs.y[lucky]
    # without noise (distinct points, noise ratio 1e-10) the posterior mean is the observation
    rows = np.arange(0, len(x) - 1, 3)
    distinct = Observations(
        obs.X[rows], obs.y[rows], (), np.zeros((len(rows), 0)), obs.feasible[rows]
    )
    exact = GaussianProcess(distinct.X, distinct.y, GPHyperparams(np.array([30.0]), 1e-10))
    index, best = incumbent_of(exact, distinct, "posterior_mean")
    assert index == int(np.argmax(distinct.y))
    assert best == pytest.approx(float(distinct.y.max()), abs=1e-6)


def test_incumbent_option() -> None:
    """``incumbent="auto"`` is the posterior mean unless the objective is declared deterministic,
    whose behaviour stays that of the best observed value; a bad value is a ValueError naming
    it."""
    assert resolve_incumbent("auto", False) == "posterior_mean"
    assert resolve_incumbent("auto", True) == "observed"
    assert resolve_incumbent("observed", False) == "observed"
    with pytest.raises(ValueError, match="incumbent.*'median'"):
        GammaBOSampler(incumbent="median")  # type: ignore[arg-type]
    runs = []
    options: list[dict[str, Any]] = [{}, {"incumbent": "observed"}]
    for kwargs in options:
        sampler = GammaBOSampler(seed=3, deterministic_objective=True, **kwargs)
        study = optuna.create_study(sampler=sampler)
        study.optimize(_hartmann3, n_trials=12)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]


def _brute_force_agree(X: np.ndarray, values: np.ndarray) -> bool:
    """The definition, pair by pair: some exact repeat exists and none differs."""
    values = values.reshape(len(X), -1) if len(X) else values
    pairs = [(i, j) for i in range(len(X)) for j in range(i) if np.array_equal(X[i], X[j])]
    return bool(pairs) and all(
        np.all(np.abs(values[i] - values[j]) <= AGREEMENT_TOLERANCE) for i, j in pairs
    )


def test_replicates_agree_closed_cases() -> None:
    X = np.array([[0.1, 0.2], [0.3, 0.4], [0.1, 0.2], [0.5, 0.5]])
    assert not replicates_agree(X[:2], np.array([1.0, 2.0]))  # no repeat: no evidence
    assert not replicates_agree(X[:1], np.array([1.0]))
    assert replicates_agree(X, np.array([1.0, 2.0, 1.0, 3.0]))
    assert replicates_agree(X, np.array([1.0, 2.0, 1.0 + AGREEMENT_TOLERANCE / 2, 3.0]))
    assert not replicates_agree(X, np.array([1.0, 2.0, 1.0 + 1e-6, 3.0]))
    # one agreeing and one differing repeat: noise was seen, so no agreement
    X2 = np.vstack([X, [[0.5, 0.5]]])
    assert not replicates_agree(X2, np.array([1.0, 2.0, 1.0, 3.0, 3.5]))
    # several objectives: every one must agree
    Y = np.array([[1.0, 5.0], [2.0, 6.0], [1.0, 5.0], [3.0, 7.0]])
    assert replicates_agree(X, Y)
    Y[2, 1] = 5.5
    assert not replicates_agree(X, Y)
    # points a continuous coordinate apart (however small) are different points
    X3 = X.copy()
    X3[2, 0] = np.nextafter(0.1, 1.0)
    assert not replicates_agree(X3, np.array([1.0, 2.0, 1.0, 3.0]))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 4), min_size=0, max_size=12),
    st.lists(st.sampled_from([0.0, 1.0, 1.0 + 1e-12, 2.0]), min_size=12, max_size=12),
    st.integers(1, 2),
)
def test_replicates_agree_matches_the_pairwise_definition(
    points: list[int], draws: list[float], m: int
) -> None:
    """On random small sets with many exact repeats, the vectorized check equals the pairwise
    definition, for one and two objectives."""
    grid = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.25, 0.75]])
    X = grid[points].reshape(-1, 2)
    values = np.resize(np.array(draws, dtype=float), (len(points), m))
    assert replicates_agree(X, values) == _brute_force_agree(X, values)


def test_repeats_that_agreed_overrule_a_noisy_fit() -> None:
    """The fit says noise (ripples it cannot follow), but every repeat returned the same value:
    no evidence of noise, so evaluated points are excluded again; a differing repeat restores
    the evidence."""
    rng = np.random.default_rng(3)
    X = rng.random((30, 1))
    y = np.sin(60.0 * X[:, 0])  # ripples far shorter than any fitted lengthscale
    X = np.vstack([X, X[:1]])
    y = np.append(y, y[0])  # one exact repeat, same value
    y = (y - y.mean()) / y.std()
    gp = fit_gp(X, y)
    assert gp.params.noise >= NOISE_EVIDENCE
    assert noise_evident(gp)  # the fit alone
    assert not noise_evident(gp, X, y)
    space = SearchSpace({"x": FloatDistribution(0.0, 1.0)})
    sampler = GammaBOSampler(seed=0, repeats="if_noisy")
    assert sampler._exclusion(space, _unconstrained(X, y), np.zeros((0, 1)), gp)(X[:3]).all()
    differing = y.copy()
    differing[-1] += 0.3
    assert noise_evident(gp, X, differing)
    obs = _unconstrained(X, differing)
    assert not sampler._exclusion(space, obs, np.zeros((0, 1)), gp)(X[:3]).any()


def _unconstrained(X: np.ndarray, y: np.ndarray) -> Observations:
    return Observations(
        X=X,
        y=y,
        constraint_names=(),
        constraints=np.zeros((len(X), 0)),
        feasible=np.ones(len(X), dtype=bool),
    )


def _schwefel2(trial: optuna.Trial) -> float:
    x = np.array([trial.suggest_float(f"x{i}", -500.0, 500.0) for i in range(2)])
    return float(418.98288727243295 * 2 - np.sum(x * np.sin(np.sqrt(np.abs(x)))))


def _exact_repeats(study: optuna.Study) -> int:
    seen: set[tuple[float, ...]] = set()
    repeats = 0
    for t in study.trials:
        key = tuple(t.params[k] for k in sorted(t.params))
        repeats += key in seen
        seen.add(key)
    return repeats


def test_a_deterministic_rugged_objective_is_not_remeasured_again_and_again() -> None:
    """Schwefel's function, 2-D, not declared deterministic: its ripples fit as noise, so with
    ``repeats="if_noisy"`` a repeat was allowed, and it returned the same value 29 times in a row
    (seed 4, trials 21-50, the regret benchmark's schwefel2 cell). The first repeat that agrees
    ends the repeats; by default there is none."""
    study = optuna.create_study(sampler=GammaBOSampler(seed=4, repeats="if_noisy"))
    study.optimize(_schwefel2, n_trials=50)
    assert _exact_repeats(study) <= 1
    study = optuna.create_study(sampler=GammaBOSampler(seed=4))
    study.optimize(_schwefel2, n_trials=50)
    assert _exact_repeats(study) == 0


def _noisy_grid(noise_sd: float) -> Any:
    """A 5 x 5 integer grid, minimum at (2, 1), with Gaussian noise of ``noise_sd``."""
    noise = np.random.default_rng(0)

    def objective(trial: optuna.Trial) -> float:
        x, z = trial.suggest_int("x", 0, 4), trial.suggest_int("z", 0, 4)
        return float((x - 2) ** 2 + (z - 1) ** 2 + noise_sd * noise.standard_normal())

    return objective


def test_a_noisy_objective_remeasures_only_when_asked() -> None:
    """A 25-point grid with heavy noise, 25 trials: by default 25 distinct points; with
    ``repeats="if_noisy"``, where repeats return different values (real noise), re-measuring
    is allowed and happens before the grid is covered."""
    study = optuna.create_study(sampler=GammaBOSampler(seed=0))
    study.optimize(_noisy_grid(3.0), n_trials=25)
    assert _exact_repeats(study) == 0
    study = optuna.create_study(sampler=GammaBOSampler(seed=0, repeats="if_noisy"))
    study.optimize(_noisy_grid(3.0), n_trials=25)
    assert _exact_repeats(study) >= 5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_exhausted_space_remeasures_the_acquisitions_choice(seed: int) -> None:
    """Once every point of a small grid was measured, a repeat is unavoidable: it is the point
    the acquisition ranks first (the best one, on a grid whose optimum stands out of the noise),
    not a random one as before (about 1 in 25)."""
    study = optuna.create_study(sampler=GammaBOSampler(seed=seed))
    study.optimize(_noisy_grid(0.1), n_trials=35)
    assert _exact_repeats(study) == 10
    late = [(t.params["x"], t.params["z"]) for t in study.trials[25:]]
    assert late.count((2, 1)) >= 7, late
