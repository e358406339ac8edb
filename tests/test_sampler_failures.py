"""Failed trials as an unknown constraint (``optuna_gamma.samplers._failures``): a region where
the objective fails (NaN, or an error the study catches) is left, a failed point is not proposed
again, and without failed trials nothing changes."""

from __future__ import annotations

import math
import warnings

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
import pytest

from optuna_gamma import GammaBOSampler
from optuna_gamma.gp import fit_gp
from optuna_gamma.gp import GPSettings
from optuna_gamma.samplers._failures import failed_points
from optuna_gamma.samplers._failures import FAILURE_MIN_NOISE
from optuna_gamma.samplers._failures import failure_settings
from optuna_gamma.samplers._failures import failure_targets
from optuna_gamma.samplers._failures import systematic_failures
from optuna_gamma.samplers._failures import unrepeated_failures
from optuna_gamma.samplers._failures import UNSUGGESTED_AT
from optuna_gamma.samplers._failures import with_systematic_failures
from optuna_gamma.samplers._search_space import SearchSpace


def _failed(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if t.state == TrialState.FAIL]


def _nan_above_half(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -2.0, 2.0)
    return math.nan if x > 0.5 else x * x  # a loss that diverges above a threshold


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_region_that_fails_is_left_and_no_failed_point_is_proposed_again(seed: int) -> None:
    study = optuna.create_study(sampler=GammaBOSampler(seed=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(_nan_above_half, n_trials=30)
    failed = [t.params["x"] for t in _failed(study)]
    # At first 26-28 of the 30 trials failed, at 2 to 5 distinct points (the edge x = 2 again
    # and again), and the best value was 0.03-0.17; with the failure model 5-7; with its noise
    # floor and the systematic failures imputed 3-5, each at its own point, at most one of
    # them in the last 15 trials (the region, once known, is left). Since the output warp
    # chooses its scale from 20 observations on, seed 1 tries the region once more (trial 25,
    # x = 1.6): 5 failures, 2 of them in the last 15 (benchmarks/sampler/results/
    # issue17_warp_scale/: on the failure benchmark's 30 seeds the median failed trials are
    # 8, 6 and 7 of 40 against 8, 5.5 and 6 before).
    assert len(failed) <= 7
    assert len(set(failed)) == len(failed)
    assert sum(t.state == TrialState.FAIL for t in study.trials[15:]) <= 2
    assert study.best_value < 1e-4


def test_a_failure_before_every_parameter_is_suggested_counts_across_the_others() -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if x > 0.5:
            raise KeyError("a setting this code cannot run")
        return (x - 0.4) ** 2 + trial.suggest_float("y", 0.0, 1.0)

    best, n_failed = [], []
    for seed in range(5):
        study = optuna.create_study(sampler=GammaBOSampler(seed=seed))
        study.optimize(objective, n_trials=25, catch=(KeyError,))
        assert all(set(t.params) == {"x"} for t in _failed(study))
        best.append(study.best_value)
        n_failed.append(len(_failed(study)))
    # At first 23 of 25 failed (the failures without y were invisible); with the failure model
    # fitted like an objective 12-21 (it fell back to its prior between failures, and the
    # acquisition went there); with its noise floor and the systematic failures imputed, 2-7;
    # with the worst-observed mean 2-10, median 5 (benchmarks/sampler/failures.py, 30 seeds x
    # 40 trials of this problem: median 8 failed, 7 before, fewer on half the seeds).
    assert float(np.median(n_failed)) <= 6 and max(n_failed) <= 10
    assert float(np.median(best)) < 1e-4 and max(best) < 0.05


def test_several_objectives_leave_a_failing_region_too() -> None:
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x, y = trial.suggest_float("x", 0.0, 1.0), trial.suggest_float("y", 0.0, 1.0)
        return (math.nan, math.nan) if x > 0.6 else (x, 1.0 - math.sqrt(x) + y)

    study = optuna.create_study(sampler=GammaBOSampler(seed=0), directions=["minimize"] * 2)
    study.optimize(objective, n_trials=30)
    assert len(_failed(study)) <= 10  # before: 28 of 30
    assert len(study.best_trials) >= 5


def _learning_curve(trial: optuna.Trial) -> float:
    """A loss that falls with the steps, reported to the study's pruner at each."""
    lr = trial.suggest_float("lr", 1e-5, 1.0, log=True)
    wd = trial.suggest_float("wd", 1e-6, 1e-1, log=True)
    final = (math.log10(lr) + 2.5) ** 2 + 0.3 * (math.log10(wd) + 4.0) ** 2
    for step in range(10):
        trial.report(final + 3.0 / (step + 1), step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return final


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_pruner_does_not_make_the_sampler_propose_one_point_again_and_again(seed: int) -> None:
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    study = optuna.create_study(sampler=GammaBOSampler(seed=seed), pruner=pruner)
    study.optimize(_learning_curve, n_trials=30)
    pruned = [tuple(t.params.values()) for t in study.trials if t.state == TrialState.PRUNED]
    # While pruned trials were left out of the model, the same data gave the same proposal:
    # 19-27 of the 30 trials were pruned (on seeds 1, 2 and 4 of 0-4 all at one point), best
    # value 1e-5 to 2.3; as failures, 11-18, each at its own point, best 0.0.
    assert len(set(pruned)) == len(pruned) and len(pruned) <= 20
    assert study.best_value < 1e-3


def test_a_setting_the_objective_prunes_is_left_like_a_failing_one() -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        y = trial.suggest_int("y", 1, 10)
        if y >= 8:
            raise optuna.TrialPruned()  # a setting this code skips
        return (x - 0.3) ** 2 - y / 10

    for seed in range(3):
        study = optuna.create_study(sampler=GammaBOSampler(seed=seed))
        study.optimize(objective, n_trials=30)
        pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
        # before: 28 of 30 pruned (all of the last 15), best -0.25 to -0.48; now 3-4 (at most
        # 2 of the last 15), best -0.7, the optimum (x = 0.3, y = 7)
        assert len(pruned) <= 6 and sum(t.number >= 15 for t in pruned) <= 2
        assert study.best_value < -0.699


def test_several_objectives_leave_a_pruned_region_too() -> None:
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x, y = trial.suggest_float("x", 0.0, 1.0), trial.suggest_float("y", 0.0, 1.0)
        if x > 0.6:
            raise optuna.TrialPruned()
        return x, 1.0 - math.sqrt(x) + y

    study = optuna.create_study(sampler=GammaBOSampler(seed=0), directions=["minimize"] * 2)
    study.optimize(objective, n_trials=30)
    assert sum(t.state == TrialState.PRUNED for t in study.trials) <= 10
    assert len(study.best_trials) >= 5


def test_a_trial_pruned_as_the_duplicate_of_a_completed_one_is_left_out() -> None:
    """The idiom that skips a setting already run (prune a trial whose parameters a COMPLETE
    trial holds) says nothing about the point: the proposal is bit for bit that of the study
    with a trial outside the space in its place."""
    dist: dict[str, BaseDistribution] = {"x": FloatDistribution(0.0, 1.0)}
    other: dict[str, BaseDistribution] = {"u": FloatDistribution(0.0, 1.0)}

    def proposal(extra: optuna.trial.FrozenTrial) -> float:
        study = optuna.create_study(sampler=GammaBOSampler(seed=0))
        for x in (0.1, 0.5, 0.9):
            study.add_trial(
                optuna.trial.create_trial(
                    params={"x": x}, distributions=dist, value=(x - 0.3) ** 2
                )
            )
        study.add_trial(extra)
        return study.ask().suggest_float("x", 0.0, 1.0)

    state = TrialState.PRUNED
    duplicate = optuna.trial.create_trial(state=state, params={"x": 0.5}, distributions=dist)
    outside = optuna.trial.create_trial(state=state, params={"u": 0.5}, distributions=other)
    x = proposal(outside)
    assert proposal(duplicate) == x
    # pruned at the very point proposed: that point is not proposed again
    assert (
        proposal(optuna.trial.create_trial(state=state, params={"x": x}, distributions=dist)) != x
    )


def test_transient_failures_do_not_keep_the_search_from_the_optimum() -> None:
    def branin(trial: optuna.Trial) -> float:
        x, y = trial.suggest_float("x", -5, 10), trial.suggest_float("y", 0, 15)
        if np.random.default_rng([7, trial.number]).random() < 0.15:
            return math.nan  # fails whatever the point
        b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
        return (y - b * x**2 + c * x - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10

    study = optuna.create_study(sampler=GammaBOSampler(seed=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(branin, n_trials=40)
    assert _failed(study) and study.best_value - 0.397887 < 0.01


def test_a_failure_outside_the_relative_space_changes_nothing() -> None:
    def run(state: TrialState) -> list[float]:
        study = optuna.create_study(sampler=GammaBOSampler(seed=3))
        # trial 0 failed having suggested no parameter of the space (a pruned one: ignored)
        study.add_trial(
            optuna.trial.create_trial(
                state=state,
                params={"other": 1.0},
                distributions={"other": FloatDistribution(0.0, 2.0)},
            )
        )
        study.optimize(lambda t: (t.suggest_float("x", 0.0, 1.0) - 0.3) ** 2, n_trials=12)
        return [t.params["x"] for t in study.trials if t.state == TrialState.COMPLETE]

    assert run(TrialState.FAIL) == run(TrialState.PRUNED)


def test_failed_points_and_the_failure_targets() -> None:
    space = SearchSpace(
        {"x": FloatDistribution(0.0, 10.0), "c": CategoricalDistribution(["a", "b"])}
    )
    dists = {"x": FloatDistribution(0.0, 10.0), "c": CategoricalDistribution(["a", "b"])}

    def trial(params: dict[str, object]) -> optuna.trial.FrozenTrial:
        return optuna.trial.create_trial(
            state=TrialState.FAIL, params=params, distributions={k: dists[k] for k in params}
        )

    full = failed_points(space, [trial({"x": 5.0, "c": "b"})])
    np.testing.assert_allclose(full, [[0.5, 1.0]])
    # failed before suggesting x: at three points across x's range, c as suggested
    partial = failed_points(space, [trial({"c": "a"})])
    np.testing.assert_allclose(partial[:, 0], UNSUGGESTED_AT)
    np.testing.assert_allclose(partial[:, 1], 0.0)
    assert failed_points(space, []).shape == (0, 2)
    other = optuna.trial.create_trial(
        state=TrialState.FAIL,
        params={"c": "z"},
        distributions={"c": CategoricalDistribution(["z"])},
    )
    assert failed_points(space, [other]).shape == (0, 2)  # a value outside the space
    X, g, threshold = failure_targets(np.zeros((3, 2)), np.ones((1, 2)))
    assert X.shape == (4, 2)
    # larger g: more likely to succeed; the threshold lies between the two labels
    assert np.all(g[:3] > threshold) and g[3] < threshold
    assert math.isclose(float(np.mean(g)), 0.0, abs_tol=1e-12)


def test_a_failure_that_a_retry_at_the_same_point_did_not_repeat_is_left_out() -> None:
    space = SearchSpace({"x": FloatDistribution(0.0, 10.0)})
    dist: dict[str, BaseDistribution] = {"x": FloatDistribution(0.0, 10.0)}
    failed = [
        optuna.trial.create_trial(state=TrialState.FAIL, params={"x": x}, distributions=dist)
        for x in (2.0, 7.0)
    ]
    # x = 2 completed later (a worker died, RetryFailedTrialCallback ran it again): transient
    retry = optuna.trial.create_trial(params={"x": 2.0}, distributions=dist, value=1.0)
    kept = failed_points(space, unrepeated_failures([*failed, retry]))
    np.testing.assert_allclose(kept, [[0.7]])
    study = optuna.create_study(sampler=GammaBOSampler(seed=0, deterministic_objective=True))
    study.add_trials(failed)
    study.add_trial(optuna.trial.create_trial(params={"x": 2.0}, distributions=dist, value=1.0))
    study.optimize(lambda t: (t.suggest_float("x", 0.0, 10.0) - 3.0) ** 2, n_trials=12)
    assert study.best_value < 1e-3


def test_a_failure_whose_retry_is_running_is_not_a_failure_of_its_point() -> None:
    dist: dict[str, BaseDistribution] = {"x": FloatDistribution(0.0, 10.0)}

    def trial(state: TrialState, x: float, number: int) -> optuna.trial.FrozenTrial:
        t = optuna.trial.create_trial(
            state=state,
            params={"x": x},
            distributions=dist,
            value=1.0 if state == TrialState.COMPLETE else None,
        )
        t.number = number
        return t

    failed = [trial(TrialState.FAIL, x, i) for i, x in enumerate((2.0, 7.0, 9.0))]
    # 2.0 retried and running (a dead worker's trial re-enqueued), 7.0 completed by a retry
    others = [trial(TrialState.RUNNING, 2.0, 3), trial(TrialState.COMPLETE, 7.0, 4)]
    kept = unrepeated_failures(failed + others)
    assert [t.params["x"] for t in kept] == [9.0]


def _failure_model(succeeded: np.ndarray, failed: np.ndarray) -> np.ndarray:
    X, g, threshold = failure_targets(succeeded, failed)
    gp = fit_gp(X, g, failure_settings(GPSettings(deterministic_objective=True)))
    assert gp.params.noise >= FAILURE_MIN_NOISE  # labels are fitted, also for a deterministic
    return systematic_failures(gp, threshold, len(succeeded))


def test_a_region_of_failures_is_systematic_and_a_failure_among_successes_is_not() -> None:
    rng = np.random.default_rng(0)
    X = rng.random((30, 2))
    fails = X[:, 0] > 0.6  # a region: its failures have failing neighbours
    systematic = _failure_model(X[~fails], X[fails])
    inside = X[fails][:, 0] > 0.7  # (the two at x = 0.61-0.62 border successes: unsure)
    assert fails.sum() == 15 and systematic[inside].all() and systematic.mean() >= 0.8
    # one failure amid successes (a transient error): its neighbours predict success
    lone = np.array([[0.3, 0.5]])
    assert not _failure_model(X[~fails], lone).any()
    # the region and the lone failure together: only the region's are systematic
    both = _failure_model(X[~fails], np.vstack([X[fails], lone]))
    assert both[:-1][inside].all() and not both[-1]


def test_systematic_failures_enter_the_objective_at_the_worst_value() -> None:
    X, y = np.zeros((3, 2)), np.array([0.5, -1.0, 2.0])
    failed = np.array([[0.9, 0.9], [0.1, 0.1]])
    X2, y2 = with_systematic_failures(X, y, failed, np.array([True, False]))
    np.testing.assert_allclose(X2, [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.9, 0.9]])
    np.testing.assert_allclose(y2, [0.5, -1.0, 2.0, -1.0])
    X3, y3 = with_systematic_failures(X, y, failed, np.array([False, False]))
    assert X3 is X and y3 is y
    empty = with_systematic_failures(np.zeros((0, 2)), np.zeros(0), failed, np.ones(2, bool))
    assert empty[0].shape == (0, 2)


def test_failures_that_none_predicts_steer_nothing() -> None:
    """While no failure is systematic (a transient error amid successes), the failure model is
    left out of the acquisition: the next proposal is that of the same study with a trial that
    holds none of the space's parameters in its place (which the sampler ignores), bit for bit.
    A region of failures does steer it, and a region of pruned trials alike."""
    dist: dict[str, BaseDistribution] = {
        "x": FloatDistribution(0.0, 1.0),
        "y": FloatDistribution(0.0, 1.0),
    }
    rng = np.random.default_rng(3)
    done = [
        optuna.trial.create_trial(
            params={"x": float(x), "y": float(y)},
            distributions=dist,
            value=float((x - 0.3) ** 2 + (y - 0.6) ** 2),
        )
        for x, y in rng.random((10, 2))
    ]

    def proposal(
        state: TrialState, points: list[tuple[float, float]], names: str = "xy"
    ) -> tuple[float, float]:
        study = optuna.create_study(sampler=GammaBOSampler(seed=0))
        study.add_trials(done)
        for point in points:
            params = dict(zip(names, point))
            other: dict[str, BaseDistribution] = {n: FloatDistribution(0.0, 1.0) for n in names}
            study.add_trial(
                optuna.trial.create_trial(state=state, params=params, distributions=other)
            )
        trial = study.ask()
        return trial.suggest_float("x", 0.0, 1.0), trial.suggest_float("y", 0.0, 1.0)

    lone = [(0.9, 0.1)]
    ignored = proposal(TrialState.FAIL, lone, names="uv")  # no parameter of the space
    assert proposal(TrialState.FAIL, lone) == ignored
    assert proposal(TrialState.PRUNED, lone) == ignored
    region = [(0.25 + 0.02 * i, 0.55 + 0.02 * j) for i in range(3) for j in range(3)]
    x, y = proposal(TrialState.FAIL, region)
    assert (x, y) != proposal(TrialState.FAIL, region, names="uv")
    assert not (0.22 < x < 0.32 and 0.52 < y < 0.62)  # around the optimum, but not in the box
    assert proposal(TrialState.PRUNED, region) == (x, y)
