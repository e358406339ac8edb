"""A diverged trial is never adopted and never looks better to the sampler than a healthy one,
for objectives other than kappa: a minimized metric of ``"min:NAME"`` gets the loss's bound
(10 times the start's), and the thesis's policy adopts the best healthy trial where an objective
without a bound (``"max:NAME"``) gave a diverged trial a better value than a later healthy one."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution
import pytest


torch = pytest.importorskip("torch")

from optuna_gamma.tuner import TrainingState  # noqa: E402
from optuna_gamma.tuner import tune_per_epoch  # noqa: E402
from optuna_gamma.tuner import TunerConfig  # noqa: E402
from optuna_gamma.tuner.execution.scoring import diverged_value  # noqa: E402
from optuna_gamma.tuner.execution.scoring import divergence  # noqa: E402
from optuna_gamma.tuner.search.objectives import DIVERGENCE_FACTOR  # noqa: E402
from optuna_gamma.tuner.search.objectives import resolve_objective  # noqa: E402


class _Scripted:
    """One metric that an epoch moves by ``step`` (a healthy epoch, worse than its start when
    ``step`` says so), or that becomes ``blown`` (NaN, or a value far off) when ``lr > 0.1``."""

    def __init__(self, name: str, start: float, step: float, blown: float) -> None:
        self.name, self.start, self.step, self.blown = name, start, step, blown

    def build(self, seed: int, device: Any) -> TrainingState:
        model = torch.nn.Linear(1, 1)
        model.register_buffer("metric", torch.tensor(self.start, dtype=torch.float64))
        return TrainingState(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.01))

    def train_epoch(self, state: TrainingState, hparams: Any, ctx: Any) -> None:
        metric = state.model.get_buffer("metric")
        if hparams["lr"] > 0.1:
            metric.fill_(self.blown)
        else:
            metric.add_(self.step)

    def evaluate(self, state: TrainingState, split: str) -> dict[str, float]:
        return {self.name: float(state.model.get_buffer("metric"))}


def _first_is_diverged(seed: int) -> optuna.samplers.BaseSampler:
    # a grid whose seed puts lr = 0.5 (diverges) first: checked below
    return optuna.samplers.GridSampler({"lr": [0.5, 0.01]}, seed=1)


def _run(tmp_path: Path, trainer: _Scripted, objective: str) -> tuple[Any, list[Any]]:
    cfg = TunerConfig(
        run="d",
        run_dir=str(tmp_path / "d"),
        sampler=_first_is_diverged,
        policy="thesis",
        trials_per_epoch=2,
        epochs=1,
        objective=objective,
        progress=False,
    )
    result = tune_per_epoch(trainer, {"lr": CategoricalDistribution([0.5, 0.01])}, cfg)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "d" / "journal.log"))
    )
    study = optuna.load_study(study_name="d/epoch-001", storage=storage)
    trials = sorted(study.get_trials(), key=lambda t: t.number)
    assert [t.params["lr"] for t in trials] == [0.5, 0.01]  # the order the test needs
    assert trials[0].user_attrs["diverged"] and not trials[1].user_attrs.get("diverged")
    return result, trials


def test_the_thesis_policy_adopts_the_best_healthy_trial_without_a_bound(tmp_path: Path) -> None:
    """``max:r2`` has no bound: the diverged first trial (NaN) is told just below the start's
    0.5, above the healthy trial's 0.3 that comes after it. Before, the thesis's policy took
    ``study.best_trial``, saw it diverged, and stopped the run with "every trial diverged"."""
    result, trials = _run(tmp_path, _Scripted("r2", 0.5, -0.2, math.nan), "max:r2")
    assert trials[0].value is not None and trials[1].value is not None
    assert trials[0].value > trials[1].value == pytest.approx(0.3)  # what misled the choice
    assert result.schedule[0].trial_number == 1 and result.schedule[0].lr == 0.01


@pytest.mark.parametrize("blown", [math.nan, 25.0])
def test_a_minimized_metric_has_the_loss_bound(tmp_path: Path, blown: float) -> None:
    """``min:mse`` from a start MSE of 1.0: a trial whose MSE is NaN or above 10 (25 here) has
    diverged and is told just beyond 10, worse than the healthy trial's 1.5 (worse than its
    start, not diverged). Before, the NaN trial was told 1.001, better than 1.5, so the sampler
    saw the diverged region as the best, and 25 counted as a healthy value."""
    result, trials = _run(tmp_path, _Scripted("mse", 1.0, 0.5, blown), "min:mse")
    limit = DIVERGENCE_FACTOR * 1.0
    assert trials[0].value == pytest.approx(limit + 1e-3 * limit, rel=1e-12)
    assert trials[1].value == pytest.approx(1.5)
    why = trials[0].user_attrs["diverged_why"]
    if math.isnan(blown):
        assert why == "evaluate() returned mse = nan"
    else:
        assert why == (
            "the validation mse 25 is beyond 10, the worst a healthy trial can have from its "
            "start (10 times the start's)"
        )
    assert result.schedule[0].trial_number == 1


def test_the_bound_of_each_objective() -> None:
    """``min:NAME`` is bounded by 10 times a positive start value (none for a start at or
    below 0: a log-likelihood has no such scale), ``max:NAME`` has no bound; divergence() flags
    a value beyond the bound and diverged_value() tells a value just beyond it."""
    mse, r2 = resolve_objective("min:mse"), resolve_objective("max:r2")
    start_metrics = {"mse": 0.4, "r2": 0.2}
    start: dict[str, Any] = {"metrics": start_metrics, "value": 0.4}
    assert mse.worst is not None and mse.worst(start_metrics) == pytest.approx(4.0)
    assert math.isnan(mse.worst({"mse": 0.0})) and math.isnan(mse.worst({"mse": -3.0}))
    assert r2.worst is None
    assert divergence({"mse": 3.9}, {}, 3.9, start, mse) is None
    assert divergence({"mse": 4.1}, {}, 4.1, start, mse) is not None
    assert divergence({"mse": 4.1}, {}, 4.1, {"metrics": {"mse": -1.0}}, mse) is None
    assert divergence({"r2": -9.0}, {}, -9.0, start, r2) is None
    # a loss at or below 0 (a Gaussian negative log-likelihood) has no such scale: a healthy
    # trial worse than its start is not diverged (before, "loss" from a start of -2 had the
    # bound -20, below which every trial counted as diverged)
    loss = resolve_objective("loss")
    for ref in (-2.0, 0.0):
        assert loss.worst is not None and math.isnan(loss.worst({"loss": ref}))
        assert divergence({"loss": -1.0}, {}, -1.0, {"metrics": {"loss": ref}}, loss) is None
    assert loss.worst is not None and loss.worst({"loss": 0.5}) == pytest.approx(5.0)
    # a bound of the user's own: said without the factor
    from optuna_gamma.tuner.search.objectives import Objective

    mine = Objective("f1", lambda m: m["f1"], metric_name="f1", worst=lambda start: 0.1)
    why = divergence({"f1": 0.05}, {}, 0.05, {"metrics": {"f1": 0.5}}, mine)
    assert why is not None and why.why == (
        "the validation f1 0.05 is beyond 0.1, the worst a healthy trial can have from its start"
    )
    assert diverged_value(mse, [], start) == pytest.approx(4.004)
    # kappa and the loss keep their own bounds and words (the exploded loss is said first)
    kappa = resolve_objective("kappa1")
    start_k = {"metrics": {"accuracy": 0.5, "loss": 1.0}, "value": 0.5}
    why = divergence({"accuracy": 0.0, "loss": 11.0}, {}, kappa({"accuracy": 0.0, "loss": 11.0}),
                     start_k, kappa)  # fmt: skip
    assert why is not None and why.why.startswith("the validation loss 11 exceeds 10 times")
