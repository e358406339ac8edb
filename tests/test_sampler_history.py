"""GammaBOSampler's ``history`` and ``target`` options (observations of earlier studies)."""

from __future__ import annotations

import json
import math
import pickle
from typing import Any
from typing import Literal

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.study import Study
from optuna.trial import FrozenTrial
import pytest

from optuna_gamma import GammaBOSampler
from optuna_gamma import History
from optuna_gamma.samplers._history import AGE_SCALE
from optuna_gamma.samplers._history import aged_observations
from optuna_gamma.samplers._history import AgeZeroAcquisition
from optuna_gamma.samplers._search_space import SearchSpace


SPACE: dict[str, BaseDistribution] = {
    "x": FloatDistribution(0.0, 1.0),
    "y": FloatDistribution(0.0, 1.0),
}


def _optimum(age: float) -> np.ndarray:
    """The optimum of the drifting test function at ``age`` (it moves 0.05 in x per age)."""
    return np.array([0.3 + 0.05 * age, 0.6])


def _drifting(x: float, y: float, age: float) -> float:
    """A smooth bowl (to minimize) whose optimum drifts with the age."""
    ox, oy = _optimum(age)
    return (x - ox) ** 2 + (y - oy) ** 2


def _objective(trial: optuna.Trial) -> float:
    return _drifting(trial.suggest_float("x", 0, 1), trial.suggest_float("y", 0, 1), 0.0)


def _drifting_history(seed: int, ages: tuple[int, ...] = (1, 2, 3), n: int = 12) -> History:
    rng = np.random.default_rng(seed)
    params, values, ages_out = [], [], []
    for age in ages:
        for x, y in rng.random((n, 2)):
            params.append({"x": float(x), "y": float(y)})
            values.append(_drifting(float(x), float(y), float(age)))
            ages_out.append(float(age))
    return History(params, values, ages_out, distributions=SPACE)


class _Fixed:
    """A picklable history callable returning the same History, counting its calls."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.calls = 0

    def __call__(self, study: Study) -> History:
        self.calls += 1
        return self.history


def _value(trial: FrozenTrial) -> float:
    assert trial.value is not None
    return trial.value


def _params(study: optuna.Study) -> list[dict[str, Any]]:
    return [t.params for t in study.trials]


def _run(
    sampler: GammaBOSampler,
    n_trials: int,
    direction: Literal["minimize", "maximize"] = "minimize",
) -> optuna.Study:
    study = optuna.create_study(sampler=sampler, direction=direction)
    study.optimize(_objective, n_trials=n_trials)
    return study


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"params": [{}], "values": [1.0, 2.0], "ages": [0.0]}, "equal lengths.*1, 2 and 1"),
        ({"params": [{}], "values": [1.0], "ages": [-1.0]}, r"ages\[0\].*-1\.0"),
        ({"params": [{}], "values": [1.0], "ages": [math.inf]}, r"ages\[0\].*inf"),
        ({"params": [{}], "values": [1.0], "ages": [math.nan]}, r"ages\[0\].*nan"),
        ({"params": [{}], "values": [1.0], "ages": [True]}, r"ages\[0\].*True"),
        ({"params": [{}], "values": [1.0], "ages": ["1"]}, r"ages\[0\].*'1'"),
        ({"params": [{}, {}], "values": [1.0, math.nan], "ages": [0, 1]}, r"values\[1\].*nan"),
        ({"params": [{}], "values": ["a"], "ages": [0]}, r"values\[0\].*'a'"),
        ({"params": [3], "values": [1.0], "ages": [0]}, r"params\[0\].*3"),
        ({"params": "xy", "values": [1.0], "ages": [0]}, "params must be a sequence.*'xy'"),
        ({"params": [{}], "values": 1.0, "ages": [0]}, "values must be a sequence.*1.0"),
        (
            {"params": [{}], "values": [1.0], "ages": [0], "distributions": {"x": (0, 1)}},
            r"distributions.*\(0, 1\)",
        ),
    ],
)
def test_history_validates_its_fields(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        History(**kwargs)


def test_history_is_immutable_and_copies_its_inputs() -> None:
    params = [{"x": 0.5}]
    h = History(params, [1], [2])
    params[0]["x"] = 0.9
    assert h.params == ({"x": 0.5},) and h.values == (1.0,) and h.ages == (2.0,)
    assert len(h) == 1 and h.distributions is None
    assert pickle.loads(pickle.dumps(h)) == h


@pytest.mark.parametrize("name", ["history", "target"])
def test_sampler_rejects_options_that_are_not_callable(name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} must be callable or None, got 3"):
        GammaBOSampler(**{name: 3})  # type: ignore[arg-type]  # deliberately wrong


def test_history_callable_must_return_a_history() -> None:
    sampler = GammaBOSampler(seed=0, history=lambda study: [1, 2])  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match=r"must return an optuna_gamma.History, got \[1, 2\]"):
        _run(sampler, 1)


def test_target_must_return_a_number() -> None:
    sampler = GammaBOSampler(seed=0, target=lambda t: "bad")  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match=r"target must return a real number.*'bad'.*Trial#0"):
        _run(sampler, 3)


# -- without a history: exactly as before ---------------------------------------------------


def test_without_history_suggestions_are_bit_identical() -> None:
    reference = _params(_run(GammaBOSampler(seed=3), 6))
    empty = History([], [], [], distributions=SPACE)
    outside = History([{"x": 2.0, "y": 0.5}, {"x": 0.5}], [1.0, 2.0], [1.0, 1.0])
    for history in (empty, outside):
        assert _params(_run(GammaBOSampler(seed=3, history=_Fixed(history)), 6)) == reference
    assert _params(_run(GammaBOSampler(seed=3, target=_value), 6)) == reference


def test_a_history_smaller_than_the_startup_keeps_the_random_startup() -> None:
    reference = _params(_run(GammaBOSampler(seed=4), 1))
    one = History([{"x": 0.3, "y": 0.6}], [0.0], [1.0], distributions=SPACE)
    assert _params(_run(GammaBOSampler(seed=4, history=_Fixed(one)), 1)) == reference


# -- with a history -----------------------------------------------------------------------------


def test_history_puts_the_first_trial_near_the_optimum_of_age_zero() -> None:
    """A fresh study's FIRST trial, from a history of the drifting function at ages 1-3, lands
    near the age-0 optimum (0.3, 0.6): far closer than a random first trial."""
    with_history, random_first = [], []
    for seed in range(5):
        history = _Fixed(_drifting_history(seed))
        study = _run(GammaBOSampler(seed=seed, history=history), 1)
        assert history.calls == 1  # once per suggestion
        first = np.array([study.trials[0].params["x"], study.trials[0].params["y"]])
        with_history.append(float(np.linalg.norm(first - _optimum(0))))
        plain = _run(GammaBOSampler(seed=seed), 1).trials[0].params
        random_first.append(float(np.linalg.norm([plain["x"] - 0.3, plain["y"] - 0.6])))
    assert np.median(with_history) < 0.08
    assert np.median(with_history) < np.median(random_first) / 4


def test_history_is_called_once_per_suggestion() -> None:
    history = _Fixed(_drifting_history(0))
    _run(GammaBOSampler(seed=0, history=history), 4)
    assert history.calls == 4


def _bump_history(centre_young: float, centre_old: float, young: float, old: float) -> History:
    xs = np.linspace(0.0, 1.0, 11)
    params, values, ages = [], [], []
    for centre, age in ((centre_young, young), (centre_old, old)):
        for x in xs:
            params.append({"x": float(x)})
            values.append(float(math.exp(-((x - centre) ** 2) / 0.02)))
            ages.append(age)
    return History(params, values, ages, distributions={"x": FloatDistribution(0.0, 1.0)})


@pytest.mark.parametrize(("young", "old"), [(1.0, 8.0), (8.0, 1.0)])
def test_younger_observations_count_more_than_older_ones(young: float, old: float) -> None:
    """Two conflicting histories (a bump at 0.2 and one at 0.8): the first proposal follows the
    one observed at the smaller age, whichever it is."""
    centre = {young: 0.2, old: 0.8}
    history = _bump_history(centre[1.0], centre[8.0], 1.0, 8.0)
    for seed in range(3):
        study = optuna.create_study(
            sampler=GammaBOSampler(seed=seed, history=_Fixed(history)), direction="maximize"
        )
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
        assert abs(study.trials[0].params["x"] - centre[1.0]) < 0.1


def test_the_repeat_guard_concerns_the_study_own_trials_only() -> None:
    """With ``deterministic_objective`` the best history point of a grid is proposed again: it
    was evaluated in another study (at another age), not in this one."""
    grid = FloatDistribution(0.0, 1.0, step=0.1)
    xs = [round(0.1 * i, 1) for i in range(11)]
    values = [math.exp(-((x - 0.2) ** 2) / 0.02) for x in xs]
    history = History([{"x": x} for x in xs], values, [1.0] * 11, distributions={"x": grid})
    sampler = GammaBOSampler(seed=0, history=_Fixed(history), deterministic_objective=True)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1, step=0.1), n_trials=2)
    assert study.trials[0].params["x"] == 0.2  # the history's best point
    assert study.trials[1].params["x"] != 0.2  # an own trial's point is not proposed again


def test_minimize_and_maximize_of_the_negated_values_give_the_same_proposals() -> None:
    h = _drifting_history(1)
    negated = History(h.params, [-v for v in h.values], h.ages, distributions=SPACE)
    minimized = _run(GammaBOSampler(seed=1, history=_Fixed(h)), 4, "minimize")
    study = optuna.create_study(
        sampler=GammaBOSampler(seed=1, history=_Fixed(negated)), direction="maximize"
    )
    study.optimize(lambda t: -_objective(t), n_trials=4)
    assert _params(study) == _params(minimized)
    best = min(minimized.trials, key=lambda t: t.value or 0.0)
    assert math.dist((best.params["x"], best.params["y"]), _optimum(0)) < 0.1


def test_target_is_what_the_gp_models() -> None:
    """A maximize study whose target negates the value proposes what a minimize study does."""
    h = _Fixed(_drifting_history(2))
    minimized = _run(GammaBOSampler(seed=2, history=h), 4, "minimize")
    negated = History(h.history.params, [-v for v in h.history.values], h.history.ages, SPACE)
    sampler = GammaBOSampler(seed=2, history=_Fixed(negated), target=lambda t: -_value(t))
    assert _params(_run(sampler, 4, "maximize")) == _params(minimized)


def test_history_params_outside_the_space_are_skipped() -> None:
    space: dict[str, BaseDistribution] = {
        "x": FloatDistribution(0.0, 1.0),
        "c": CategoricalDistribution(["a", "b"]),
    }
    valid: list[tuple[dict[str, Any], float]] = [
        ({"x": 0.2, "c": "a"}, 1.0),
        ({"x": 0.7, "c": "b"}, 0.5),
        ({"x": 0.4, "c": "a"}, 2.0),
    ]
    invalid: list[tuple[dict[str, Any], float]] = [
        ({"x": 0.3}, 9.0),  # c missing
        ({"x": 1.5, "c": "a"}, 9.0),  # x out of range
        ({"x": 0.3, "c": "z"}, 9.0),  # not a choice
        ({"x": "0.3", "c": "a"}, 9.0),  # not a number
        ({"x": math.nan, "c": "a"}, 9.0),
    ]

    def history(entries: list[tuple[dict[str, Any], float]]) -> History:
        return History([p for p, _ in entries], [v for _, v in entries], [1.0] * len(entries))

    def objective(t: optuna.Trial) -> float:
        return (t.suggest_float("x", 0, 1) - 0.4) ** 2 + (
            t.suggest_categorical("c", ["a", "b"]) == "b"
        )

    space_sampler = SearchSpace(space)
    both = aged_observations(
        space_sampler, [], history(valid + invalid), optuna.study.StudyDirection.MINIMIZE
    )
    assert both is not None and both.n_history == len(valid)
    assert np.allclose(both.X[:, -1], 1.0 / AGE_SCALE)
    runs = []
    for entries in (valid, invalid[:2] + valid + invalid[2:]):
        study = optuna.create_study(
            sampler=GammaBOSampler(seed=0, history=_Fixed(history(entries)))
        )
        study.optimize(objective, n_trials=4)
        runs.append(_params(study))
    assert runs[0] == runs[1]


def test_sampler_with_history_pickles_and_suggests_the_same() -> None:
    sampler = GammaBOSampler(seed=5, history=_Fixed(_drifting_history(5)))
    clone = pickle.loads(pickle.dumps(sampler))
    assert _params(_run(clone, 3)) == _params(_run(sampler, 3))


def test_age_zero_acquisition_appends_the_age_and_drops_its_gradient() -> None:
    """The wrapper's value is the aged acquisition at age 0 and its gradient matches finite
    differences in the real parameters (a constraint term added as it is)."""

    class Quadratic:
        lengthscales = np.array([0.5, 0.25, 2.0])

        def __call__(self, X: np.ndarray) -> np.ndarray:
            return -((X[:, 0] - 0.3) ** 2) - 2 * (X[:, 1] - 0.6) ** 2 - 5 * X[:, 2]

        def value_and_grad(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            g = np.column_stack(
                [-2 * (X[:, 0] - 0.3), -4 * (X[:, 1] - 0.6), np.full(len(X), -5.0)]
            )
            return self(X), g

    class Linear:
        def __call__(self, X: np.ndarray) -> np.ndarray:
            return X @ np.array([1.0, -1.0])

        def value_and_grad(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return self(X), np.tile([1.0, -1.0], (len(X), 1))

    acq = AgeZeroAcquisition(Quadratic(), Linear())
    X = np.array([[0.1, 0.2], [0.9, 0.5]])
    value, grad = acq.value_and_grad(X)
    expected = -((X[:, 0] - 0.3) ** 2) - 2 * (X[:, 1] - 0.6) ** 2 + X[:, 0] - X[:, 1]
    assert np.allclose(value, expected) and np.allclose(acq(X), expected)
    eps = 1e-6
    for j in range(2):
        step = np.zeros(2)
        step[j] = eps
        numeric = (acq(X + step) - acq(X - step)) / (2 * eps)
        assert np.allclose(grad[:, j], numeric, atol=1e-6)
    assert acq.lengthscales is not None and np.allclose(acq.lengthscales, [0.5, 0.25])
    assert grad.shape == (2, 2)


def test_constraints_with_a_history_keep_proposals_feasible() -> None:
    """Constraint GPs (fitted on the study's own trials) still steer the aged acquisition: the
    history's optimum x = 0.3 is infeasible (x <= 0.2 required), later proposals respect it."""
    h = _Fixed(_drifting_history(0))

    def constraints(t: FrozenTrial) -> list[float]:
        return [t.params["x"] - 0.2]

    sampler = GammaBOSampler(seed=0, history=h, constraints_func=constraints)
    study = _run(sampler, 8)
    late = [t.params["x"] for t in study.trials[4:]]
    assert sum(x <= 0.2 for x in late) >= 3


def test_the_docs_example_runs_and_prints_what_it_says() -> None:
    """docs/sampler.md's example: the second study's first trial is near the age-0 optimum."""
    import contextlib
    import io
    from pathlib import Path
    import re

    page = (Path(__file__).resolve().parents[1] / "docs" / "sampler.md").read_text()
    section = page[page.index("## Knowledge from earlier studies") :]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block.group(1), "docs-history-example", "exec"), {})
    assert abs(float(out.getvalue()) - 0.35) < 0.06  # "already near 0.3" (optimum 0.35)


def test_benchmark_regret_and_a_tiny_run(tmp_path: Any) -> None:
    from benchmarks.sampler import history as bench

    for epoch in (0, 5):
        assert bench.regret(bench.centre(epoch), epoch) == 0.0
        assert bench.regret(bench.centre(epoch) + 0.1, epoch) > 0.0
    assert (
        bench.main(["--seeds", "1", "--epochs", "2", "--trials", "2", "--out", str(tmp_path)]) == 0
    )
    cells = [json.loads(line) for line in (tmp_path / "cells.jsonl").read_text().splitlines()]
    assert {(c["arm"], c["epoch"]) for c in cells} == {(a, e) for a in bench.ARMS for e in (0, 1)}
    fresh, hist = ({c["epoch"]: c for c in cells if c["arm"] == a} for a in ("fresh", "history"))
    assert fresh[0]["regrets"] == hist[0]["regrets"]  # no history in epoch 0: the same trials
    assert fresh[1]["regrets"] != hist[1]["regrets"]
    assert "| epoch |" in (tmp_path / "summary.md").read_text()
