"""A finished run called again (issue 15, point 9): no second test-set evaluation, and
result.json keeps the wall time of the call that did the work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optuna.distributions import FloatDistribution
import pytest


pytest.importorskip("torch")

from test_identity import SignTrainer  # noqa: E402

from optuna_gamma.tuner import tune_per_epoch  # noqa: E402
from optuna_gamma.tuner import tune_whole  # noqa: E402
from optuna_gamma.tuner import TunerConfig  # noqa: E402


SPACE = {"lr": FloatDistribution(1e-3, 0.5, log=True)}


class _CountsTestEvaluations(SignTrainer):
    def __init__(self) -> None:
        self.test_evaluations = 0

    def evaluate(self, state: Any, split: str) -> dict[str, float]:
        self.test_evaluations += split == "test"
        return super().evaluate(state, split)


@pytest.mark.parametrize("tune", [tune_per_epoch, tune_whole])
def test_rerunning_a_finished_run_evaluates_nothing_and_keeps_result_json(
    tune: Any, tmp_path: Path
) -> None:
    cfg = TunerConfig(
        run="done",
        run_dir=str(tmp_path / "done"),
        sampler="random",
        trials_per_epoch=2,
        epochs=2,
        progress=False,
    )
    trainer = _CountsTestEvaluations()
    first = tune(trainer, SPACE, cfg)
    assert trainer.test_evaluations == 1
    written = (tmp_path / "done" / "result.json").read_bytes()
    again = tune(trainer, SPACE, cfg)
    assert trainer.test_evaluations == 1  # the recorded test metrics of the same state
    assert again.new_trials == 0 and again.test == first.test
    assert (tmp_path / "done" / "result.json").read_bytes() == written
    if tune is tune_per_epoch:  # a longer run has a new final state: evaluated, written
        longer = tune(trainer, SPACE, cfg.__class__(**{**cfg.__dict__, "epochs": 3}))
        assert trainer.test_evaluations == 2 and longer.new_trials == 2
        assert (tmp_path / "done" / "result.json").read_bytes() != written


def test_report_prints_the_dashboard_command_with_the_artifact_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 15, point 9: the hint printed by ``report`` lets the dashboard download states."""
    from optuna_gamma.tuner.cli import main

    storage = f"sqlite:///{tmp_path / 'runs.db'}"
    cfg = TunerConfig(
        run="rep",
        run_dir=str(tmp_path / "rep"),
        storage=storage,
        sampler="random",
        trials_per_epoch=1,
        progress=False,
    )
    res = tune_per_epoch(SignTrainer(), SPACE, cfg)
    assert main(["report", "--storage", storage, "-o", str(tmp_path / "r.html")]) == 0
    out = capsys.readouterr().out
    assert f"dashboard: optuna-dashboard {storage} --artifact-dir {res.artifacts}" in out
