"""The report's stars (issue 15, point 5): they mark the trial each epoch adopted in every
panel, with a legend entry saying so, not each panel's own best; the lr schedule's epoch axis
has whole-number ticks only."""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

import optuna
import pytest


pytest.importorskip("torch")

from optuna_gamma.tuner import ThesisTrainer  # noqa: E402
from optuna_gamma.tuner import tune_per_epoch  # noqa: E402
from optuna_gamma.tuner import TunerConfig  # noqa: E402
from optuna_gamma.tuner.reporting.plots import plot_metrics_vs_learning_rate  # noqa: E402
from optuna_gamma.tuner.reporting.report import build_report  # noqa: E402


LABEL = "adopted trial (best objective of its epoch)"

_NEW_PLOT = re.compile(r'Plotly\.newPlot\(\s*"[^"]+",\s*\[')


def _figures(text: str) -> list[tuple[list[dict], dict]]:
    """(traces, layout) of every Plotly.newPlot call in the page."""
    out = []
    decoder = json.JSONDecoder()
    start = 0
    # a call on a div id ("Plotly.newPlot(gd, ...)" in the text of older plotly.js is not one)
    while (found := _NEW_PLOT.search(text, start)) is not None:
        data, end = decoder.raw_decode(text, found.end() - 1)
        layout, end = decoder.raw_decode(text, text.index("{", end))
        out.append((data, layout))
        start = end
    return out


def test_marked_records_are_starred_instead_of_each_panels_best() -> None:
    records = [
        {"lr": 0.01, "objective": 1.0, "loss": 0.2, "adopted": True},  # best objective
        {"lr": 0.1, "objective": 0.5, "loss": 0.1, "adopted": False},  # best loss
    ]
    fig = plot_metrics_vs_learning_rate(
        records, ("objective", "loss"), lr_key="lr", mark="adopted", mark_label=LABEL
    )
    stars = [t for t in fig.data if t.marker.symbol == "star"]
    assert [(t.x, t.y) for t in stars] == [((0.01,), (1.0,)), ((0.01,), (0.2,))]
    assert [t.showlegend for t in stars] == [True, False] and stars[0].name == LABEL
    # without mark: each panel's own best, as before
    plain = plot_metrics_vs_learning_rate(records, ("objective", "loss"), lr_key="lr")
    assert sorted(t.x[0] for t in plain.data if t.marker.symbol == "star") == [0.01, 0.1]


def test_report_stars_the_adopted_trials_and_ticks_whole_epochs(tmp_path: Path) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    res = tune_per_epoch(
        ThesisTrainer("digits"),
        None,
        TunerConfig(
            run="rep",
            run_dir=str(tmp_path / "rep"),
            sampler="random",
            trials_per_epoch=4,
            epochs=3,
            progress=False,
        ),
    )
    page = build_report(res.storage, tmp_path / "r.html").read_text(encoding="utf-8")
    figures = _figures(page)
    (schedule,) = [lay for _, lay in figures if "lr schedule" in json.dumps(lay.get("title"))]
    assert schedule["xaxis"]["tickvals"] == [1, 2, 3]
    (metrics,) = [data for data, lay in figures if "metrics against" in json.dumps(lay)]
    stars = [t for t in metrics if t.get("marker", {}).get("symbol") == "star"]
    adopted_lrs = sorted(e.params["lr"] for e in res.schedule)
    panels = {t.get("yaxis", "y") for t in stars}
    assert len(panels) == 3  # objective, accuracy, loss
    for panel in panels:
        xs = sorted(x for t in stars if t.get("yaxis", "y") == panel for x in t["x"])
        assert xs == pytest.approx(adopted_lrs)  # the adopted trials, in every panel
    assert sum(bool(t.get("showlegend")) and t["name"] == LABEL for t in stars) == 1
    # the report names the final model's epoch
    assert res.final_epochs == 3
    assert "Final model: the state adopted in epoch 3 (the last adopted state)." in page


def test_the_adopted_column_says_what_the_box_moved_and_ignores_forged_records() -> None:
    from optuna_gamma.tuner.reporting.report import _adopted_as

    entry = {"why": "best of 2 trials (kind 'explore')", "proposed": {"lr": 0.0016358}}
    assert _adopted_as(entry) == (
        "best of 2 trials (kind 'explore'); the sampler proposed lr=0.001636, moved near its "
        "parent"
    )
    assert _adopted_as({"why": "best of 4 trials"}) == "best of 4 trials"
    for forged in ("lr=1", ["lr"], {1: 2}, {}):
        assert _adopted_as({"why": "w", "proposed": forged}) == "w"


def test_the_tables_show_the_trainers_own_metrics_where_it_has_no_accuracy() -> None:
    from optuna_gamma.tuner.reporting.report import _metric_columns

    kappa = [{"accuracy": 0.9, "loss": 0.3, "train_loss": 0.2}, {"accuracy": 0.91}]
    assert _metric_columns(kappa) == ["accuracy", "loss"]
    # a regression's validation metrics; the training loss, timings and flags are not shown
    own = [{"mse": 0.5, "mae": 0.4, "train_loss": 0.3, "diverged": False}, "forged", {"r2": 1}]
    assert _metric_columns(own) == ["mae", "mse", "r2"]
    assert _metric_columns([{}]) == []


def test_the_test_table_shows_the_objectives_metric(tmp_path: Path) -> None:
    """A regression tuned on ``min:mse`` whose test split reports ``mse`` and ``loss``: its
    test table showed only the loss."""
    from test_finished import _NoisyMSE
    from test_finished import _peaking_run
    from test_finished import SPACE

    from optuna_gamma.tuner.reporting.report import _test_columns

    assert _test_columns({"mse": 0.4, "loss": 0.5}, "min:mse") == ["mse", "loss"]
    assert _test_columns({"accuracy": 0.9, "loss": 0.3}, "accuracy") == ["accuracy", "loss"]
    assert _test_columns({"accuracy": 0.9, "f1": 0.8}, "max:f1") == ["f1", "accuracy"]
    assert _test_columns({"accuracy": 0.9, "loss": 0.3}, "kappa1") == ["accuracy", "loss"]
    assert _test_columns({"mae": 1.0, "r2": 0.5}, "min:mse") == ["mae", "r2"]  # not reported

    class _Regression(_NoisyMSE):
        def evaluate(self, state: Any, split: str) -> dict[str, float]:
            metrics = super().evaluate(state, split)
            return {**metrics, "loss": 2 * metrics["mse"]}

    res = tune_per_epoch(
        _Regression(), SPACE, _peaking_run(tmp_path, objective="min:mse", epochs=3)
    )
    page = build_report(res.storage, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<th>test mse</th><th>test loss</th>" in page and "<td>0.4</td><td>0.8</td>" in page
    # two runs in one storage: the comparison has the test mse beside the (empty) accuracy
    tune_per_epoch(
        _Regression(),
        SPACE,
        _peaking_run(tmp_path, objective="min:mse", epochs=3, run="other", storage=res.storage),
    )
    page = build_report(res.storage, tmp_path / "r2.html").read_text(encoding="utf-8")
    assert "<th>test MCC</th><th>test mse</th><th>compute s</th>" in page


def test_an_objective_that_is_one_metric_is_shown_once() -> None:
    from optuna_gamma.tuner.search.objectives import objective_metric

    assert objective_metric("accuracy") == "accuracy"
    assert objective_metric("loss") == "loss"
    assert objective_metric("min:mse") == "mse" and objective_metric("max:f1") == "f1"
    for other in ("kappa1", "kappa2:0.2", "min:", "mine", None, 3, ["loss"]):
        assert objective_metric(other) is None


def test_report_says_why_a_run_stopped_without_adopting(tmp_path: Path) -> None:
    """A run stopped by AllTrialsDivergedError showed an empty table; the report now says that
    no state was adopted in that epoch, how many of its planned trials completed and diverged,
    and the first one's reason."""
    from test_identity import _cfg
    from test_identity import SignTrainer

    from optuna_gamma.tuner import AllTrialsDivergedError

    class LogsNaN(SignTrainer):
        def train_epoch(self, state: Any, hparams: Any, ctx: Any) -> Any:
            super().train_epoch(state, hparams, ctx)
            return {"grad_norm": float("nan")}

    storage = str(tmp_path / "j.log")
    cfg = _cfg(tmp_path, run="nan", storage=storage, trials_per_epoch=3)
    space = {"lr": optuna.distributions.FloatDistribution(1e-3, 0.5, log=True)}
    with pytest.raises(AllTrialsDivergedError):
        tune_per_epoch(LogsNaN(), space, cfg)
    path = tmp_path / "r.html"
    build_report(storage, path)
    text = path.read_text()
    assert (
        "No state adopted in epoch 1 yet: 3 of 3 planned trials complete, 3 diverged "
        "(trial 0: train_epoch() returned grad_norm = nan)." in text
    )
