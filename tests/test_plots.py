"""plotly pictures: the figures hold the right data, write_html writes one offline page."""

from __future__ import annotations

import json
import math
from pathlib import Path
import re
import subprocess
import sys

import numpy as np
import plotly.graph_objects as go
import pytest

from optuna_gamma.tuner.reporting.plots import plot_confusion_heatmap
from optuna_gamma.tuner.reporting.plots import plot_metric_vs_learning_rate
from optuna_gamma.tuner.reporting.plots import plot_metrics_vs_learning_rate
from optuna_gamma.tuner.reporting.plots import write_html


CM = [[8, 2, 0], [1, 6, 3], [0, 0, 0]]  # class 2 has no true sample


def _heatmaps(fig: go.Figure) -> dict[str, go.Heatmap]:
    return {t.name: t for t in fig.data if isinstance(t, go.Heatmap)}


def test_confusion_heatmap_normalized() -> None:
    fig = plot_confusion_heatmap(CM, ["cat", "dog", "emu"])
    maps = _heatmaps(fig)
    assert set(maps) == {"errors", "correct"}
    # Row 0: 10 samples -> [0.8, 0.2, 0]; row 1: 10 -> [0.1, 0.6, 0.3]; row 2: no sample.
    assert [list(r) for r in maps["errors"].z] == [
        [None, 0.2, 0.0],
        [0.1, None, 0.3],
        [None, None, None],
    ]
    assert [list(r) for r in maps["correct"].z] == [
        [0.8, None, None],
        [None, 0.6, None],
        [None, None, None],
    ]
    for trace in maps.values():
        assert list(trace.x) == ["cat", "dog", "emu"]  # predicted
        assert list(trace.y) == ["cat", "dog", "emu"]  # true
    assert maps["errors"].zmax == pytest.approx(0.3)  # errors on their own colour scale
    assert fig.layout.yaxis.autorange == "reversed"  # first true class on top
    assert "true" in fig.layout.yaxis.title.text and "predicted" in fig.layout.xaxis.title.text


def test_confusion_heatmap_counts_and_default_names() -> None:
    import torch

    fig = plot_confusion_heatmap(torch.tensor(CM), normalize=False, title="counts")
    maps = _heatmaps(fig)
    assert [list(r) for r in maps["errors"].z] == [
        [None, 2.0, 0.0],
        [1.0, None, 3.0],
        [0.0, 0.0, None],
    ]
    assert [maps["correct"].z[i][i] for i in range(3)] == [8.0, 6.0, 0.0]
    assert list(maps["errors"].x) == ["0", "1", "2"]
    assert fig.layout.title.text == "counts"


def test_confusion_heatmap_from_classification_report() -> None:
    from optuna_gamma.tuner.reporting.metrics import classification_report

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    p = np.where(rng.random(200) < 0.7, y, rng.integers(0, 4, 200))
    cm = np.array(classification_report(y, p, 4)["confusion_matrix"], dtype=float)
    fig = plot_confusion_heatmap(cm)
    maps = _heatmaps(fig)
    rows = cm / cm.sum(axis=1, keepdims=True)
    for i in range(4):
        for j in range(4):
            got = maps["correct" if i == j else "errors"].z[i][j]
            assert got == pytest.approx(rows[i, j], rel=1e-12)


@pytest.mark.parametrize(
    "cm, names, match",
    [
        ([[1, 2, 3]], None, "square"),
        ([], None, "square"),
        ([[1, -1], [0, 1]], None, "non-negative"),
        ([[1, math.nan], [0, 1]], None, "finite"),
        ([[1, 0], [0, 1]], ["a"], "class_names has 1 entries"),
        ([["a", "b"], ["c", "d"]], None, "square matrix of counts"),
    ],
)
def test_confusion_heatmap_bad_input(cm, names, match) -> None:
    with pytest.raises(ValueError, match=match):
        plot_confusion_heatmap(cm, names)


def test_metric_vs_learning_rate_sorted_log_and_best() -> None:
    lr = [0.3, 0.01, 0.1, 0.001]
    kappa = [0.5, 1.2, 2.0, math.nan]
    fig = plot_metric_vs_learning_rate(lr, kappa, metric="kappa")
    line, best = fig.data
    assert list(line.x) == [0.001, 0.01, 0.1, 0.3]
    assert list(line.y) == [None, 1.2, 2.0, 0.5]  # nan -> gap
    assert "markers" in line.mode
    assert fig.layout.xaxis.type == "log"
    assert fig.layout.yaxis.title.text == "kappa"
    assert (list(best.x), list(best.y)) == ([0.1], [2.0])


def test_metric_vs_learning_rate_loss_best_is_minimum() -> None:
    fig = plot_metric_vs_learning_rate([0.1, 0.2, 0.4], [0.9, 0.3, math.inf], metric="loss")
    assert list(fig.data[0].y) == [0.9, 0.3, None]
    assert (list(fig.data[1].x), list(fig.data[1].y)) == ([0.2], [0.3])


@pytest.mark.parametrize(
    "lr, values, match",
    [
        ([0.1, 0.2], [1.0], "same length, got 2 and 1"),
        ([0.0, 0.2], [1.0, 2.0], "finite and > 0 .*0.0"),
        ([-0.1, 0.2], [1.0, 2.0], "-0.1"),
        ([math.nan], [1.0], "nan"),
    ],
)
def test_metric_vs_learning_rate_bad_input(lr: list, values: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        plot_metric_vs_learning_rate(lr, values)


RECORDS = [
    {"learning_rate": 0.2, "accuracy": 0.8, "loss": 0.6, "kappa": 1.0, "epoch": 1},
    {"learning_rate": 0.05, "accuracy": 0.7, "loss": 0.9, "kappa": 0.8, "epoch": 1},
    {"learning_rate": 0.1, "accuracy": 0.9, "loss": 0.4, "kappa": 1.5, "epoch": 2},
    {"learning_rate": 0.01, "accuracy": 0.85, "loss": 0.5, "kappa": 1.2, "epoch": 2},
]


def _lines(fig: go.Figure) -> list[go.Scatter]:
    return [t for t in fig.data if t.mode == "lines+markers"]


def test_metrics_vs_learning_rate_subplots() -> None:
    fig = plot_metrics_vs_learning_rate(RECORDS)
    lines = _lines(fig)
    assert len(lines) == 3  # accuracy, loss, kappa; one series
    by_axis = {t.yaxis: t for t in lines}
    assert list(by_axis["y"].x) == [0.01, 0.05, 0.1, 0.2]
    assert list(by_axis["y"].y) == [0.85, 0.7, 0.9, 0.8]  # accuracy, top row
    assert list(by_axis["y2"].y) == [0.5, 0.9, 0.4, 0.6]  # loss
    assert list(by_axis["y3"].y) == [1.2, 0.8, 1.5, 1.0]  # kappa
    for axis in (fig.layout.xaxis, fig.layout.xaxis2, fig.layout.xaxis3):
        assert axis.type == "log"
    assert [a.text for a in fig.layout.annotations] == ["accuracy", "loss", "kappa"]
    stars = [t for t in fig.data if t.mode == "markers"]
    best = {t.yaxis: (t.x[0], t.y[0]) for t in stars}
    assert best == {"y": (0.1, 0.9), "y2": (0.1, 0.4), "y3": (0.1, 1.5)}


def test_metrics_vs_learning_rate_grouped_and_lr_key() -> None:
    records = [
        {**{k: v for k, v in r.items() if k != "learning_rate"}, "lr": r["learning_rate"]}
        for r in RECORDS
    ]
    fig = plot_metrics_vs_learning_rate(records, ("kappa",), group_by="epoch")
    lines = _lines(fig)
    assert [t.name for t in lines] == ["epoch 1", "epoch 2"]
    assert (list(lines[0].x), list(lines[0].y)) == ([0.05, 0.2], [0.8, 1.0])
    assert (list(lines[1].x), list(lines[1].y)) == ([0.01, 0.1], [1.2, 1.5])
    assert lines[0].line.color != lines[1].line.color
    fig2 = plot_metrics_vs_learning_rate(records, ("loss",), lr_key="lr")
    assert list(_lines(fig2)[0].y) == [0.5, 0.9, 0.4, 0.6]


@pytest.mark.parametrize(
    "records, kwargs, match",
    [
        ([], {}, "records is empty"),
        (RECORDS, {"metrics": ()}, "metrics is empty"),
        ([{"learning_rate": 0.1, "accuracy": 0.5}], {"metrics": ("kappa",)}, "no metric 'kappa'"),
        ([{"accuracy": 0.5}], {"metrics": ("accuracy",)}, "no learning rate"),
        (RECORDS, {"group_by": "sampler"}, "no group_by key 'sampler'"),
        ([0.1], {}, "record 0 must be a mapping"),
    ],
)
def test_metrics_vs_learning_rate_bad_input(records: list, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        plot_metrics_vs_learning_rate(records, **kwargs)


_NEW_PLOT = re.compile(r'Plotly\.newPlot\(\s*"[^"]+",\s*\[')


def _embedded_figures(text: str) -> list[list[dict]]:
    """The trace lists passed to Plotly.newPlot in the page."""
    out = []
    decoder = json.JSONDecoder()
    start = 0
    # a call on a div id ("Plotly.newPlot(gd, ...)" in the text of older plotly.js is not one)
    while (found := _NEW_PLOT.search(text, start)) is not None:
        data, end = decoder.raw_decode(text, found.end() - 1)
        out.append(data)
        start = end
    return out


def test_write_html_single_figure(tmp_path: Path) -> None:
    fig = plot_metric_vs_learning_rate([0.01, 0.1], [1.25, 2.5], title="kappa sweep 42")
    out = write_html(fig, tmp_path / "sub" / "one.html")
    assert out == tmp_path / "sub" / "one.html" and out.is_file()
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "kappa sweep 42" in text
    assert text.count("* plotly.js v") == 1  # the library itself, inline
    assert re.search(r"<script[^>]*\bsrc=", text) is None  # no external script (no CDN)
    (data,) = _embedded_figures(text)
    assert data[0]["x"] == [0.01, 0.1] and data[0]["y"] == [1.25, 2.5]
    assert [p.name for p in out.parent.iterdir()] == ["one.html"]  # no temporary file left


def test_write_html_many_figures_one_plotlyjs(tmp_path: Path) -> None:
    heat = plot_confusion_heatmap(CM)
    sweep = plot_metrics_vs_learning_rate(RECORDS)
    out = write_html([heat, "<h2>between</h2>", sweep], str(tmp_path / "page.html"), title="Run A")
    text = out.read_text(encoding="utf-8")
    assert text.count("* plotly.js v") == 1
    assert "<title>Run A</title>" in text and "<h2>between</h2>" in text
    figures = _embedded_figures(text)
    assert len(figures) == 2
    assert figures[0][0]["name"] == "errors"
    assert figures[0][0]["z"][1] == [0.1, None, 0.3]
    assert figures[1][0]["y"] == [0.85, 0.7, 0.9, 0.8]


def test_write_html_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty list"):
        write_html([], tmp_path / "x.html")
    with pytest.raises(
        ValueError, match="item 1 must be a plotly Figure or an HTML string, got int"
    ):
        write_html([go.Figure(), 3], tmp_path / "x.html")
    assert not (tmp_path / "x.html").exists()


def test_import_does_not_pull_plotly() -> None:
    code = "import sys, optuna_gamma.tuner.reporting.plots; assert 'plotly' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------------
# examples/thesis_1d_demo.py: the thesis's 1-D demo (figs. 3-4, 12-13)
# ---------------------------------------------------------------------------------------------


def _load_demo() -> dict:
    import runpy

    path = Path(__file__).resolve().parents[1] / "examples" / "thesis_1d_demo.py"
    return runpy.run_path(str(path), run_name="thesis_1d_demo")


def test_example_thesis_1d_demo_writes_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = _load_demo()
    x_star, f_star = demo["true_maximum"]()
    xs = np.linspace(-1.0, 2.0, 3001)
    assert f_star == pytest.approx(float(np.max(demo["f"](xs))), abs=1e-6)
    assert x_star == pytest.approx(-0.3594, abs=1e-3)  # f'(x) = -3cos(3x) - 2x + 0.7 = 0
    needed = demo["main"](["--output", str(tmp_path / "demo.html"), "--n-trials", "5"])
    assert set(needed) == {"student_t", "gaussian"}
    assert all(n is None or 1 <= n <= 5 for n in needed.values())
    text = (tmp_path / "demo.html").read_text(encoding="utf-8")
    assert text.count("* plotly.js v") == 1
    figures = _embedded_figures(text)
    assert len(figures) == 2  # slider figure (posterior + EI), convergence figure
    # 2 static traces (f in each column) + 3 proposals x 2 modes x 7 traces.
    assert len(figures[0]) == 2 + 3 * 2 * 7
    out = capsys.readouterr().out
    assert "Gamma search (Student-t EI)" in out and "Gaussian search (Gaussian EI)" in out


@pytest.mark.parametrize("predictive", ["student_t", "gaussian"])
def test_example_thesis_1d_demo_refit_matches_sampler(predictive: str) -> None:
    """The demo's refit posterior must explain the sampler's proposals: the EI maximizer of the
    refit lies where GammaBOSampler proposed, and the band contains the observations."""
    demo = _load_demo()
    res = demo["run_mode"](predictive, 10, [0.910885, -0.19064], 0, 0.01)
    grid = demo["GRID"]
    snaps = res["snapshots"]
    assert len(snaps) == 8
    gaps = [abs(grid[int(np.argmax(s["ei"]))] - s["x_next"]) for s in snaps]
    assert np.mean(np.array(gaps) < 0.02) >= 0.75, gaps
    for s in snaps:
        assert np.all(s["lower"] <= s["mean"]) and np.all(s["mean"] <= s["upper"])
        assert np.all(s["ei"] >= 0)
        # The noise-free GP interpolates the data (in the objective's units): at the grid point
        # nearest each observation (within 0.0025; |f'| <= 7.7 on [-1, 2]) the location is within
        # 0.05 of the observed value.
        for x, y in zip(s["x_obs"], s["y_obs"]):
            i = int(np.argmin(np.abs(grid - x)))
            assert s["mean"][i] == pytest.approx(y, abs=0.05)
    if predictive == "student_t":
        assert all(math.isfinite(s["dof"]) and s["dof"] > 2 for s in snaps)
    else:
        assert all(math.isinf(s["dof"]) for s in snaps)
