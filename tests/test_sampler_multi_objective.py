"""Several objectives: hypervolume and box decomposition, exact EHVI, the sampler end to end."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import numpy as np
import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest

from optuna_gamma import GammaBOSampler
from optuna_gamma.gp import fit_gp
from optuna_gamma.gp import GPSettings
from optuna_gamma.gp.ehvi import ExpectedHypervolumeImprovement
from optuna_gamma.gp.ehvi import log_expected_hypervolume_improvement
from optuna_gamma.samplers._multi_objective import ehvi_acquisition
from optuna_gamma.samplers._multi_objective import reference_point
from optuna_gamma.samplers._pareto import hypervolume
from optuna_gamma.samplers._pareto import non_dominated_boxes
from optuna_gamma.samplers._pareto import pareto_mask


def _brute_hypervolume(points: np.ndarray, ref: np.ndarray) -> float:
    """Inclusion-exclusion over the boxes [p, ref] (exact, for a few points)."""
    points = points[np.all(points < ref, axis=1)]
    total = 0.0
    for r in range(1, len(points) + 1):
        for subset in itertools.combinations(range(len(points)), r):
            corner = np.max(points[list(subset)], axis=0)
            total += (-1) ** (r + 1) * float(np.prod(ref - corner))
    return total


def _brute_pareto(points: np.ndarray) -> set[tuple[float, ...]]:
    return {tuple(p) for p in points if not any(np.all(q <= p) and np.any(q < p) for q in points)}


_points = st.integers(2, 4).flatmap(
    lambda m: st.lists(
        st.lists(st.integers(0, 6), min_size=m, max_size=m), min_size=0, max_size=6
    ).map(lambda rows: np.asarray(rows, dtype=float).reshape(-1, m) / 4.0)
)


@settings(max_examples=150, deadline=None)
@given(_points)
def test_hypervolume_and_boxes_match_brute_force(points: np.ndarray) -> None:
    m = points.shape[1]
    ref = np.full(m, 1.2)
    expected = _brute_hypervolume(points, ref)
    assert hypervolume(points, ref) == pytest.approx(expected, abs=1e-12)
    # the boxes are disjoint and, inside [low, ref], fill what the points do not dominate
    lower, upper = non_dominated_boxes(points, ref)
    low = np.full(m, -1.0)
    lo, hi = np.maximum(lower, low), np.minimum(upper, ref)
    volume = np.prod(np.clip(hi - lo, 0.0, None), axis=1)
    assert volume.sum() + expected == pytest.approx(float(np.prod(ref - low)), abs=1e-12)
    for i, j in itertools.combinations(range(len(lo)), 2):
        overlap = np.minimum(hi[i], hi[j]) - np.maximum(lo[i], lo[j])
        assert np.any(overlap <= 0.0)
    # no box point is dominated: each box's lower corner clipped to low is not dominated
    for corner in lo:
        assert not np.any(np.all(points <= corner, axis=1))


@settings(max_examples=100, deadline=None)
@given(_points)
def test_pareto_mask_matches_brute_force(points: np.ndarray) -> None:
    kept = points[pareto_mask(points)]
    assert {tuple(p) for p in kept} == _brute_pareto(points)
    assert len({tuple(p) for p in kept}) == len(kept)  # duplicates kept once


def test_hypervolume_of_a_large_two_objective_front() -> None:
    f1 = np.linspace(0.0, 1.0, 100_001)
    front = np.stack([f1, 1.0 - np.sqrt(f1)], axis=1)
    # 1.1^2 - integral of 1 - sqrt(f1) over [0, 1] (= 1/3), the rest of [0, 1.1]^2
    assert hypervolume(front, np.array([1.1, 1.1])) == pytest.approx(1.21 - 1.0 / 3.0, abs=1e-4)


def _boxes(front_max: np.ndarray, ref_max: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo_loss, up_loss = non_dominated_boxes(-front_max, -ref_max)
    return -up_loss, -lo_loss


def _hvi(front_max: np.ndarray, ref_max: np.ndarray, y: np.ndarray) -> np.ndarray:
    base = hypervolume(-front_max, -ref_max)
    return np.array([hypervolume(-np.vstack([front_max, p]), -ref_max) - base for p in y])


@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("dof", [4.0, math.inf])
def test_exact_ehvi_matches_monte_carlo(m: int, dof: float) -> None:
    rng = np.random.default_rng(m)
    front = rng.random((5, m))
    ref = np.zeros(m)
    lower, upper = _boxes(front, ref)
    loc = rng.random(m) * 0.8 + 0.2
    scale = rng.random(m) * 0.3 + 0.05
    dofs = [dof] * m
    exact = float(np.exp(log_expected_hypervolume_improvement(loc, scale, dofs, lower, upper))[0])
    n = 40_000
    draws = rng.standard_t(dof, (n, m)) if math.isfinite(dof) else rng.standard_normal((n, m))
    y = loc + scale * draws
    if m == 2:
        mc = _hvi(front, ref, y)
    else:  # per draw: HV of the front with the draw (vectorized through the boxes)
        gain = np.clip(np.minimum(y[:, None, :], upper) - lower, 0.0, None)
        mc = gain.prod(axis=2).sum(axis=1)
        check = _hvi(front, ref, y[:200])
        np.testing.assert_allclose(mc[:200], check, atol=1e-12)
    stderr = float(np.std(mc)) / math.sqrt(n)
    assert abs(exact - float(np.mean(mc))) < 4.0 * stderr + 1e-9


def test_ehvi_vanishes_where_dominated_with_certainty() -> None:
    front = np.array([[1.0, 1.0]])
    lower, upper = _boxes(front, np.zeros(2))
    tiny = np.full(2, 1e-6)
    inside = log_expected_hypervolume_improvement(
        np.array([0.5, 0.5]), tiny, [5.0, 5.0], lower, upper
    )
    assert inside[0] < math.log(1e-9)
    # a sure improvement is worth its hypervolume improvement: [0, 2]^2 minus [0, 1]^2
    outside = log_expected_hypervolume_improvement(
        np.array([2.0, 2.0]), tiny, [5.0, 5.0], lower, upper
    )
    assert math.exp(outside[0]) == pytest.approx(3.0, rel=1e-4)
    assert math.exp(inside[0]) < math.exp(outside[0])


def test_ehvi_acquisition_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    X = rng.random((12, 3))
    Y = np.stack([np.sin(3 * X[:, 0]) + X[:, 1], np.cos(2 * X[:, 2]) - X[:, 0]], axis=1)
    Y = (Y - Y.mean(axis=0)) / Y.std(axis=0)
    gps = [fit_gp(X, Y[:, j], GPSettings()) for j in range(2)]
    acq = ehvi_acquisition(gps, Y, reference_point(Y))
    assert isinstance(acq, ExpectedHypervolumeImprovement)
    Xq = rng.random((5, 3))
    value, grad = acq.value_and_grad(Xq)
    np.testing.assert_allclose(value, acq(Xq))
    eps = 1e-6
    for d in range(3):
        shifted = Xq.copy()
        shifted[:, d] += eps
        np.testing.assert_allclose((acq(shifted) - value) / eps, grad[:, d], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("predictives", [("student_t", "student_t"), ("student_t", "gaussian")])
def test_ehvi_acquisition_equals_the_closed_form_of_its_predictives(
    predictives: tuple[str, str],
) -> None:
    rng = np.random.default_rng(1)
    X = rng.random((10, 2))
    Y = np.stack([X[:, 0] - X[:, 1] ** 2, np.sin(4 * X[:, 1]) - X[:, 0]], axis=1)
    gps = [
        fit_gp(X, Y[:, j], GPSettings(predictive=predictives[j]))  # type: ignore[arg-type]
        for j in range(2)
    ]
    ref = reference_point(Y)
    acq = ehvi_acquisition(gps, Y, ref)
    lower, upper = _boxes(Y, ref)
    Xq = rng.random((7, 2))
    loc = np.stack([gp.predict(Xq)[0] for gp in gps], axis=1)
    scale = np.stack([gp.predict(Xq)[1] for gp in gps], axis=1)
    expected = log_expected_hypervolume_improvement(
        loc, scale, [gp.dof for gp in gps], lower, upper
    )
    np.testing.assert_allclose(acq(Xq), expected, rtol=1e-10)


def _zdt1(trial: optuna.Trial) -> tuple[float, float]:
    x = np.array([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(4)])
    f1 = float(x[0])
    g = 1.0 + 9.0 * float(np.mean(x[1:]))
    return f1, g * (1.0 - math.sqrt(f1 / g))


def test_zdt1_hypervolume_beats_random_sampling() -> None:
    ref = np.array([1.1, 11.0])
    wins = 0
    for seed in range(3):
        hv = []
        for sampler in (GammaBOSampler(seed=seed), optuna.samplers.RandomSampler(seed=seed)):
            study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
            study.optimize(_zdt1, n_trials=30)
            hv.append(hypervolume(np.array([t.values for t in study.trials]), ref))
        wins += hv[0] > hv[1]
    assert wins >= 2


def _mixed(trial: optuna.trial.BaseTrial) -> tuple[float, float]:
    x = trial.suggest_float("x", -2.0, 2.0)
    n = trial.suggest_int("n", 0, 4)
    c = trial.suggest_categorical("c", ["a", "b", "c"])
    shift = {"a": 0.0, "b": 0.5, "c": 1.0}[c]
    return (x - 1.0) ** 2 + 0.1 * n + shift, -((x + 1.0) ** 2) - 0.1 * (4 - n) - shift


def _pareto_ok(study: optuna.Study) -> None:
    best = study.best_trials
    assert best
    signs = np.array(
        [1.0 if d == optuna.study.StudyDirection.MINIMIZE else -1.0 for d in study.directions]
    )
    values = np.array([t.values for t in study.trials if t.state == TrialState.COMPLETE]) * signs
    for t in best:
        v = np.asarray(t.values) * signs
        assert not np.any(np.all(values <= v, axis=1) & np.any(values < v, axis=1))


def test_mixed_directions_categorical_and_integer_parameters() -> None:
    study = optuna.create_study(
        directions=["minimize", "maximize"], sampler=GammaBOSampler(seed=1)
    )
    study.optimize(_mixed, n_trials=15)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    params = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(params)) == len(params)  # no repeated point
    _pareto_ok(study)


def test_three_objectives() -> None:
    def objective(trial: optuna.Trial) -> tuple[float, float, float]:
        x = np.array([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(3)])
        return float(x[0]), float(x[1]), float(2.0 - x[0] - x[1] + x[2])

    study = optuna.create_study(directions=["minimize"] * 3, sampler=GammaBOSampler(seed=0))
    study.optimize(objective, n_trials=14)
    assert len(study.trials) == 14
    _pareto_ok(study)
    # the model learns that x2 only hurts: the proposals after the start-up keep it low
    late = [t.params["x2"] for t in study.trials[8:]]
    assert float(np.median(late)) < 0.5


def _constraint(trial: FrozenTrial) -> list[float]:
    return [trial.params["x"] - 0.5]  # feasible where x <= 0.5


def test_constraints_steer_towards_feasible_points() -> None:
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0.0, 1.0)
        y = trial.suggest_float("y", 0.0, 1.0)
        return -x + y, x - y

    sampler = GammaBOSampler(seed=0, constraints_func=_constraint)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=16)
    late = [t.params["x"] <= 0.5 for t in study.trials[6:]]
    assert sum(late) >= 0.7 * len(late)

    # set_constraint in the objective works too
    def constrained(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.set_constraint("x_small", x - 0.3)
        return x, 1.0 - x

    study = optuna.create_study(
        directions=["minimize", "minimize"], sampler=GammaBOSampler(seed=2)
    )
    study.optimize(constrained, n_trials=10)
    assert len(study.trials) == 10


def test_all_infeasible_so_far_still_suggests() -> None:
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.set_constraint("never", 1.0 - x * 0.1)  # infeasible everywhere
        return x, 1.0 - x

    study = optuna.create_study(
        directions=["minimize", "minimize"], sampler=GammaBOSampler(seed=0)
    )
    study.optimize(objective, n_trials=6)
    assert len(study.trials) == 6


def test_pending_trials_threads_and_enqueued() -> None:
    sampler = GammaBOSampler(seed=3)
    study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)
    study.enqueue_trial({"x": 0.0, "n": 2, "c": "a"})
    study.optimize(_mixed, n_trials=12, n_jobs=3)
    assert len(study.trials) == 12
    assert study.trials[0].params == {"x": 0.0, "n": 2, "c": "a"}
    # ask while others are pending: the proposals differ from the pending ones
    asked = [study.ask() for _ in range(3)]
    points = [
        (
            t.suggest_float("x", -2.0, 2.0),
            t.suggest_int("n", 0, 4),
            t.suggest_categorical("c", ["a", "b", "c"]),
        )
        for t in asked
    ]
    assert len(set(points)) == 3
    for t, p in zip(asked, points):
        study.tell(t, _mixed(optuna.trial.FixedTrial({"x": p[0], "n": p[1], "c": p[2]})))
    _pareto_ok(study)


def test_a_seed_reproduces_the_suggestions() -> None:
    runs = []
    for _ in range(2):
        study = optuna.create_study(
            directions=["minimize", "maximize"], sampler=GammaBOSampler(seed=7)
        )
        study.optimize(_mixed, n_trials=8)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]


def test_history_with_several_objectives_raises() -> None:
    from optuna_gamma import History

    def history(study: optuna.Study) -> History:
        return History([], [], [])

    study = optuna.create_study(
        directions=["minimize", "minimize"], sampler=GammaBOSampler(history=history)
    )
    with pytest.raises(ValueError, match="single-objective"):
        study.optimize(lambda t: (t.suggest_float("x", 0, 1), 0.0), n_trials=1)


def test_benchmark_problems_and_a_tiny_resumable_run(tmp_path: Path) -> None:
    from benchmarks.sampler import multi_objective as bench

    assert bench.get_problem("zdt1").true_hv == pytest.approx(1.21 - 1.0 / 3.0, abs=1e-4)
    assert bench.get_problem("dtlz2").true_hv == pytest.approx(1.331 - math.pi / 6.0)
    # held-out: ZDT6's front f2 = 1 - f1^2 from f1 = a (the minimum of its f1) to 1, normalized
    # to the unit square: hypervolume 1.1 * 1.1 - (area under the normalized front)
    a = 0.2807753191
    under = ((1.0 - a) - (1.0 - a**3) / 3.0) / ((1.0 - a) * (1.0 - a * a))
    assert bench.get_problem("zdt6").true_hv == pytest.approx(1.21 - under, abs=1e-4)
    for name in bench.HELD_OUT_PROBLEMS[1:]:  # the tables: a configuration gives its row
        problem = bench.get_problem(name)
        study = optuna.create_study(directions=["minimize", "minimize"])
        values = problem.objective(study.ask())
        assert all(math.isfinite(v) for v in values)
        assert np.all(problem.normalized(np.array(values)) >= -1e-12), name
        assert 0.0 < problem.true_hv <= 1.21
    assert not set(bench.HELD_OUT_PROBLEMS) & set(bench.PROBLEMS)
    args = ["--problems", "zdt1", "--samplers", "random", "--seeds", "1", "--trials", "25"]
    args += ["--out", str(tmp_path)]
    for _ in range(2):  # the second call finds the cell done
        bench.main(args)
    cells = bench.load_cells(tmp_path / "cells.jsonl")
    assert len(cells) == 1
    hv = bench.get_problem("zdt1").hv(np.array(cells[0]["values"]))
    assert cells[0]["regret"]["25"] == pytest.approx(cells[0]["true_hv"] - hv)
    assert "Median regret at trial 25" in (tmp_path / "summary.md").read_text()
