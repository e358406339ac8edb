"""Constraints: Optuna's constrained-sampler tests (those of ``GPSampler``, single objective),
``Trial.set_constraint``, and constrained optimization that respects the feasible region."""

from __future__ import annotations

from collections.abc import Sequence
import math
import warnings

import numpy as np
import optuna
from optuna.trial import FrozenTrial
import pytest

from optuna_gamma import GammaBOSampler
from optuna_gamma.gp.settings import Predictive


def _value(t: FrozenTrial) -> float:
    """A finished trial's value (a test bug if it has none)."""
    assert t.value is not None, f"trial {t.number} ({t.state.name}) has no value"
    return t.value


# -- adapted from optuna/tests/samplers_tests/test_gp.py (GPSampler), single objective ----------


@pytest.mark.parametrize("constraint_value", [-1.0, 0.0, 1.0, -float("inf"), float("inf")])
@pytest.mark.parametrize("predictive", ["student_t", "gaussian", "plugin"])
def test_constraints_func(constraint_value: float, predictive: Predictive) -> None:
    n_trials = 5
    constraints_func_call_count = 0

    def constraints_func(trial: FrozenTrial) -> Sequence[float]:
        nonlocal constraints_func_call_count
        constraints_func_call_count += 1
        return (constraint_value + trial.number,)

    sampler = GammaBOSampler(
        n_startup_trials=2, constraints_func=constraints_func, predictive=predictive, seed=0
    )
    study = optuna.create_study(sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # infinite constraints are clipped
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=n_trials)

    assert len(study.trials) == n_trials
    assert constraints_func_call_count == n_trials
    for trial in study.trials:
        for x, y in zip(trial.constraints.values(), (constraint_value + trial.number,)):
            assert x == y


def test_constraints_func_nan() -> None:
    n_trials = 5

    def constraints_func(_: FrozenTrial) -> Sequence[float]:
        return (float("nan"),)

    sampler = GammaBOSampler(n_startup_trials=2, constraints_func=constraints_func)

    def objective(trial: optuna.Trial | FrozenTrial) -> float:
        return trial.suggest_float("x", 0, 1)

    study = optuna.create_study(sampler=sampler)
    with pytest.raises(ValueError):
        study.optimize(objective, n_trials=n_trials)

    trials = study.get_trials()
    assert len(trials) == 1  # The error stops optimization, but completed trials are recorded.
    assert all(0 <= x <= 1 for x in trials[0].params.values())  # The params are normal.
    assert trials[0].values == [objective(trials[0])]  # The values are normal.
    assert len(trials[0].constraints) == 0  # No constraints are set.


def test_constraints_func_must_be_callable() -> None:
    with pytest.raises(ValueError, match="constraints_func"):
        GammaBOSampler(constraints_func=[1.0])  # type: ignore[arg-type]


# -- behaviour ------------------------------------------------------------------------------------


def _objective_with_constraint(trial: optuna.Trial) -> float:
    """Minimize (x - 0.9)^2 + (y - 0.9)^2 subject to x + y <= 1: optimum at (0.5, 0.5), 0.32."""
    x = trial.suggest_float("x", 0.0, 1.0)
    y = trial.suggest_float("y", 0.0, 1.0)
    trial.set_constraint("sum", x + y - 1.0)
    return (x - 0.9) ** 2 + (y - 0.9) ** 2


@pytest.mark.parametrize("predictive", ["student_t", "gaussian"])
def test_set_constraint_steers_the_search_into_the_feasible_region(predictive: Predictive) -> None:
    """The unconstrained optimum (0.9, 0.9) is infeasible (violation 0.8): the sampler models the
    constraint and searches along the boundary near the constrained optimum (0.5, 0.5), where EI
    times the probability of feasibility is largest, so late proposals violate it by little."""
    gaps, violations = [], []
    for seed in range(4):
        study = optuna.create_study(sampler=GammaBOSampler(seed=seed, predictive=predictive))
        study.optimize(_objective_with_constraint, n_trials=25)
        violations += [max(t.constraints["sum"], 0.0) for t in study.trials[10:]]
        best = min(_value(t) for t in study.trials if t.constraints["sum"] <= 0)
        gaps.append(best - 0.32)
    assert min(gaps) >= -1e-12
    assert np.median(gaps) < 2e-3, gaps
    assert np.quantile(violations, 0.9) < 0.05, violations
    # Without the constraint the same sampler goes to the infeasible optimum.
    free = optuna.create_study(sampler=GammaBOSampler(seed=0, predictive=predictive))
    free.optimize(
        lambda t: (
            (t.suggest_float("x", 0, 1) - 0.9) ** 2 + (t.suggest_float("y", 0, 1) - 0.9) ** 2
        ),
        n_trials=25,
    )
    assert free.best_params["x"] + free.best_params["y"] > 1.5


def test_no_feasible_trial_yet_searches_for_feasibility() -> None:
    """All start-up points infeasible: the acquisition is the probability of feasibility alone,
    and a feasible point is found quickly."""

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.set_constraint("c", 0.05 - abs(x - 0.8))  # feasible only for |x - 0.8| >= 0.05
        return x

    study = optuna.create_study(sampler=GammaBOSampler(seed=0, n_startup_trials=2))
    study.enqueue_trial({"x": 0.8})
    study.enqueue_trial({"x": 0.79})
    study.optimize(objective, n_trials=8)
    assert any(t.constraints["c"] <= 0 for t in study.trials[2:5])
    assert min(_value(t) for t in study.trials if t.constraints["c"] <= 0) < 0.05


def test_probability_of_feasibility_uses_the_student_t_predictive() -> None:
    """With few observations the Student-t feasibility probability is less certain than the
    Gaussian one far from the data (heavier tails), as the acquisition's own terms show."""
    from optuna_gamma.gp import Acquisition
    from optuna_gamma.gp import Feasibility
    from optuna_gamma.gp import fit_gp
    from optuna_gamma.gp import GPSettings

    rng = np.random.default_rng(0)
    X = rng.random((6, 1)) * 0.4
    g = -((X[:, 0] - 0.2) ** 2)
    t_gp = fit_gp(X, (g - g.mean()) / g.std(), GPSettings(predictive="student_t"))
    n_gp = fit_gp(X, (g - g.mean()) / g.std(), GPSettings(predictive="plugin"))
    far = np.array([[0.95]])
    probs = []
    for gp in (t_gp, n_gp):
        acq = Acquisition(gp, best=None, constraints=[Feasibility(gp, threshold=2.5)])
        probs.append(math.exp(float(acq(far)[0])))
    assert 0.0 < probs[1] < probs[0] < 1.0
