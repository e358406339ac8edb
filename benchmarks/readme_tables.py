"""Regenerate the README's (and the docs') generated tables from the benchmarks' results.

A generated table sits between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->`` in
``README.md`` or a page of ``docs/``; this script recomputes every such table from the raw results
(JSON-lines cells and summaries) and rewrites the text between the markers. ``--check`` changes
nothing and exits 1, naming the stale tables, when a file differs from what it would write (the
test suite runs it, so a README figure cannot drift from the results it quotes).

    python -m benchmarks.readme_tables           # rewrite the tables
    python -m benchmarks.readme_tables --check   # verify them

Tables:

(Paths below are under ``benchmarks/``.)

``sampler-headline``
    ``sampler/results/headline/summary.json`` (the current sampler's cells of
    ``issue17_no_repeats/suite_s0``, then Optuna's samplers' cells of ``issue17_full`` and
    ``random_grid``, all on Optuna 5.1): win rates of ``GammaBOSampler()`` at trials 12 and 50
    and the worst ratio of median final regrets, against each of Optuna's samplers.
``tuner-headline``
    ``tuner/results/peers/peers.jsonl`` (MNIST-500): final test accuracy of the per-epoch tuner
    and of its peers at equal compute.
``policy-headline``
    ``tuner/results/peers/policies.jsonl`` (the policy arms of ``tuner/peers.py`` and the peers
    over five seeds): the default policy against PB2, PBT and untuned training, serial at equal
    compute and with 12 trials at a time at equal wall time, with the issue's targets.
``policy-ablation``
    the same file: what each part of the default policy contributes (docs/when-it-pays.md).
``policy-two``
    ``tuner/results/peers/width2.jsonl``: two at a time, equal wall time (docs/when-it-pays.md).
``policy-widths``
    ``tuner/results/peers/widths.jsonl`` with ``width2.jsonl`` and ``policies.jsonl``: 2 to 12
    at a time, equal wall time, against an untuned training of that wall time and PB2 with as
    many members (docs/when-it-pays.md).
``policy-widths-summary``
    The same cells, the default only: its paired difference to the untuned training of the same
    wall time, one column per ``W`` (README).
``thesis-claims``
    ``thesis/results/*.jsonl`` and ``tuner/results/peers/peers.jsonl``: the thesis's claims
    and the project's targets, each with the figures it rests on and a verdict that follows
    from them.

Generated files (written whole; ``--check`` compares them too):

``docs/figures/when-it-pays.html``
    the cells of ``policy-headline``: a plotly picture of test accuracy against compute for
    every method and task (the docs page "When per-epoch tuning pays" shows it in a frame;
    ``docs/conf.py`` serves it with plotly.js from the site itself).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Iterable
import json
import math
from pathlib import Path
import re
import statistics
import sys
from typing import Any


ROOT = Path(__file__).resolve().parents[1]
SAMPLER = ROOT / "benchmarks" / "sampler" / "results"
THESIS = ROOT / "benchmarks" / "thesis" / "results"
PEERS = ROOT / "benchmarks" / "tuner" / "results" / "peers"
#: Files that may hold generated tables.
TARGETS = ("README.md", "docs/benchmarks.md", "docs/results.md", "docs/when-it-pays.md")
_MARK = re.compile(
    r"(<!-- table:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /table:(?P=name) -->)", re.S
)


# --------------------------------------------------------------------------------------------
# helpers
def load_cells(name: str) -> list[dict[str, Any]]:
    """The cells of ``NAME.jsonl`` (the last record of each key wins): in
    ``tuner/results/peers/`` for ``peers``, ``policies``, ``average``, ``width2`` and
    ``widths``, else in ``thesis/results/``."""
    path = (
        PEERS if name in ("peers", "policies", "average", "width2", "widths") else THESIS
    ) / f"{name}.jsonl"
    records: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                records[str(rec["key"])] = rec
    return list(records.values())


def _median(values: Iterable[float | None]) -> float:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return statistics.median(vals) if vals else math.nan


def _quartiles(values: Iterable[float | None]) -> tuple[float, float, float]:
    vals = sorted(float(v) for v in values if v is not None)
    if not vals:
        return math.nan, math.nan, math.nan
    if len(vals) == 1:
        return vals[0], vals[0], vals[0]
    q1, q2, q3 = statistics.quantiles(vals, n=4, method="inclusive")
    return q1, q2, q3


def _pct(v: float, digits: int = 1) -> str:
    return "-" if math.isnan(v) else f"{100 * v:.{digits}f}"


def _table(header: list[str], rows: list[list[Any]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def final_test(rec: dict[str, Any], key: str = "accuracy") -> float | None:
    """The test metric at a per-epoch record's last checkpoint."""
    tests = rec.get("test") or {}
    if not tests:
        return None
    if key in tests:  # a whole-mode record: one test dict
        return tests.get(key)
    return tests[max(tests, key=int)].get(key)


# --------------------------------------------------------------------------------------------
# sampler-headline
_SAMPLER_LABELS = {
    "gp": "`GPSampler()` (10 random start-up trials)",
    "gp_startup2": "`GPSampler(n_startup_trials=2)`",
    "tpe": "`TPESampler()`",
    "random": "`RandomSampler()`",
    "grid": "`GridSampler` (about 50 points, shuffled)",
}


def sampler_headline() -> str:
    summary = json.loads((SAMPLER / "headline" / "summary.json").read_text())
    ref = summary["reference"]
    wins = {
        (w["other"], w["trial"]): w["win_rate"] for w in summary["wins"] if w["reference"] == ref
    }
    last = max(summary["checkpoints"])
    ratios = {
        r["other"]: r["per_problem"]
        for r in summary["regret_ratios"]
        if r["reference"] == ref and r["trial"] == last
    }
    rows = []
    for other, label in _SAMPLER_LABELS.items():
        per = {p: v for p, v in ratios.get(other, {}).items() if v is not None}
        worst = max(per.items(), key=lambda kv: kv[1]) if per else None
        better = sum(v < 1 for v in per.values())
        rows.append(
            [
                label,
                f"{wins[(other, 12)]:.2f}",
                f"{wins[(other, last)]:.2f}",
                f"{better} of {len(per)}",
                f"{worst[1]:.2f}x ({worst[0]})" if worst else "-",
            ]
        )
    return _table(
        [
            "GammaBOSampler() against",
            "win rate @12",
            f"win rate @{last}",
            f"problems with lower median regret @{last}",
            "worst regret ratio",
        ],
        rows,
    )


# --------------------------------------------------------------------------------------------
# tuner-headline
_TUNER_ARMS = {
    "pe-gamma": "per-epoch, GammaBOSampler, 12 trials per epoch (the thesis's system)",
    "pe-gamma-kappa2": "per-epoch, GammaBOSampler, objective kappa_2",
    "pe-gp": "per-epoch, Optuna's `GPSampler`",
    "pe-grid12": "per-epoch, a 12-point log grid",
    "pe-gamma-t4": "per-epoch, GammaBOSampler, 4 trials per epoch for 30 epochs",
    "grid12-best": "best of 12 constant learning rates (whole training)",
    "grid11-cosine": "best of 11 constant rates, then cosine annealing from it",
    "gp-whole": "`GPSampler` over constant rates, 12 whole trainings",
    "pbt": "Ray Tune `PopulationBasedTraining`, population 12",
    "pb2": "Ray Tune `PB2`, population 12",
    "fixed-0.01": "one model, constant lr 0.01, all 120 epochs",
}


def _peer_final(c: dict[str, Any]) -> float | None:
    if c.get("failed"):
        return None
    tests = c.get("test") or {}
    if not tests:
        return None
    return tests[max(tests, key=int)].get("accuracy")


def tuner_headline(dataset: str = "mnist") -> str:
    cells = [c for c in load_cells("peers") if c.get("dataset") == dataset]
    rows = []
    for arm, label in _TUNER_ARMS.items():
        cs = [c for c in cells if c["arm"] == arm]
        if not cs:
            continue
        q1, med, q3 = _quartiles(_peer_final(c) for c in cs)
        rows.append(
            [
                label,
                len(cs),
                f"{_median(c.get('compute_epochs') for c in cs):.0f}",
                f"{_pct(med)} [{_pct(q1)}, {_pct(q3)}]",
            ]
        )
    return _table(["method", "seeds", "training epochs", "test accuracy %"], rows)


# --------------------------------------------------------------------------------------------
# policy-headline, policy-ablation
_TASKS = {
    "mnist": "MNIST-500",
    "fashion-mnist": "Fashion-MNIST 1,000",
    "cifar10": "CIFAR-10 5,000",
    "own-fashion": "own trainer (AdamW, lr + wd), Fashion-MNIST 1,000",
}
#: The untuned training of a task (the thesis's trainer: Keras's SGD default lr 0.01; a user's
#: trainer: its own optimizer settings), as ``benchmarks.tuner.peers`` names the arm.
_UNTUNED = {"own-fashion": "untuned"}


def _test_at(c: dict[str, Any], epochs: int | None = None) -> float | None:
    """A cell's test accuracy: of its final model, or after ``epochs`` epochs."""
    if c.get("failed"):
        return None
    tests = c.get("test") or {}
    if epochs is None:
        return _peer_final(c)
    got = tests.get(str(epochs))
    return got.get("accuracy") if isinstance(got, dict) else None


def _other_final(c: dict[str, Any], which: str) -> dict[str, Any] | None:
    """A policy cell as if its final model were chosen by ``final_model=which``: the peak of
    its validation curve (``test_best``) or the average of its lineage's last states
    (``test_average``); ``None`` for cells that did not test it."""
    tested = c.get(f"test_{which}")
    if not tested:
        return None
    return {**c, "test": tested, "final_epochs": int(next(iter(tested)))}


def _by_seed(
    cells: list[dict[str, Any]], dataset: str, arm: str, epochs: int | None = None
) -> dict[int, float]:
    """Test accuracy of ``arm``'s cells by seed; ``"<arm>@best"``: of the peak of their
    validation curves; ``"<arm>@average"``: of the average of their lineage's last states."""
    out = {}
    for c in _cells_of(cells, dataset, arm):
        v = _test_at(c, epochs)
        if v is not None:
            out[int(c["seed"])] = float(v)
    return out


def _cells_of(cells: list[dict[str, Any]], dataset: str, arm: str) -> list[dict[str, Any]]:
    """The cells of ``arm`` on ``dataset`` (``"<arm>@best"``, ``"<arm>@average"``: with that
    final model's test, where they have it)."""
    name, _, which = arm.partition("@")
    mine = [c for c in cells if c.get("dataset") == dataset and c["arm"] == name]
    if not which:
        return mine
    return [b for b in (_other_final(c, which) for c in mine) if b is not None]


def paired_difference(a: dict[int, float], b: dict[int, float]) -> tuple[float, str]:
    """Median paired difference (points) and wins/ties/losses of ``a`` over ``b``."""
    seeds = sorted(set(a) & set(b))
    diffs = [100 * (a[s] - b[s]) for s in seeds]
    w = sum(d > 0 for d in diffs)
    t = sum(d == 0 for d in diffs)
    return (statistics.median(diffs) if diffs else math.nan), f"{w}/{t}/{len(diffs) - w - t}"


#: (regime, default arm, the untuned training's epochs, PB2 margin, untuned margin). The default
#: arm with its default final model (``final_model="auto"``): serially the average of the final
#: lineage's last states (``@average``: ``average.jsonl``, the same runs as ``policies.jsonl``'s
#: ``pe-pop``, whose ``test`` is the last state), 12 at a time the last state.
_REGIMES = (
    ("serial, equal compute (B = 120)", "pe-pop@average", 120, 5.0, -1.0),
    ("12 at a time, equal wall time (10 rounds)", "pe-pop-w12", 10, 0.0, 0.0),
)


def policy_headline() -> str:
    arms = {arm.partition("@")[0] for _, arm, *_ in _REGIMES}
    cells = load_cells("policies") + [c for c in load_cells("average") if c["arm"] in arms]
    rows = []
    for dataset, task in _TASKS.items():
        for regime, arm, untuned_epochs, m_pb2, m_fixed in _REGIMES:
            mine = _by_seed(cells, dataset, arm)
            if not mine:
                continue
            pb2 = _by_seed(cells, dataset, "pb2")
            pbt = _by_seed(cells, dataset, "pbt")
            fixed = _by_seed(cells, dataset, _UNTUNED.get(dataset, "fixed-0.01"), untuned_epochs)
            thesis = _by_seed(cells, dataset, "pe-gamma")
            d_pb2, wtl_pb2 = paired_difference(mine, pb2)
            d_fix, wtl_fix = paired_difference(mine, fixed)
            ok = d_pb2 >= m_pb2 and d_fix >= m_fixed
            # the targets ask for 5 seeds paired: fewer leave the verdict provisional
            paired = min(len(set(mine) & set(pb2)), len(set(mine) & set(fixed)))
            provisional = f"; provisional: {paired} of 5 seeds paired" if paired < 5 else ""
            rows.append(
                [
                    task,
                    regime,
                    len(mine),
                    _pct(_median(mine.values())),
                    _pct(_median(pb2.values())),
                    _pct(_median(pbt.values())),
                    f"{_pct(_median(fixed.values()))} ({untuned_epochs} ep.)",
                    _pct(_median(thesis.values())),
                    f"{d_pb2:+.1f} ({wtl_pb2})",
                    f"{d_fix:+.1f} ({wtl_fix})",
                    ("met" if ok else "missed")
                    + f" (>= PB2 {m_pb2:+.0f}, >= untuned {m_fixed:+.0f}{provisional})",
                ]
            )
    return _table(
        [
            "task",
            "regime",
            "seeds",
            "default policy %",
            "PB2 %",
            "PBT %",
            "untuned %",
            "thesis policy %",
            "vs PB2 (pts, W/T/L)",
            "vs untuned (pts, W/T/L)",
            "target",
        ],
        rows,
        align="llrrrrrrrrl",
    )


#: The methods of the picture: (label, arm, compute epochs where an untuned training is
#: tested, or ``None`` for the final model at the compute it spent), as in ``policy-headline``.
_FIGURE_METHODS = (
    ("default policy, serial (final model: average)", "pe-pop@average", None),
    ("default policy, 12 at a time", "pe-pop-w12", None),
    ("PB2 (12 members)", "pb2", None),
    ("PBT (12 members)", "pbt", None),
    ("thesis policy (12 trials per epoch)", "pe-gamma", None),
    ("untuned training", "untuned", (10, 120)),
)
#: Plotly's default colour sequence, fixed so that the page does not depend on the template.
_COLOURS = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3")
_SYMBOLS = ("diamond", "star", "circle", "square", "x", "triangle-up")
#: Shorter panel titles than the tables' task names.
_FIGURE_TASKS = {"own-fashion": "own trainer (AdamW MLP), Fashion-MNIST 1,000"}
#: The file of the picture, relative to the repository.
FIGURE = "docs/figures/when-it-pays.html"


def _compute_points(
    cells: list[dict[str, Any]], dataset: str, arm: str, untuned: tuple[int, ...] | None
) -> tuple[list[tuple[float, tuple[float, float, float]]], int]:
    """(compute in training epochs, test accuracy quartiles over seeds) of ``arm`` on
    ``dataset``: its final models at the (median) compute they spent, or, for the untuned
    training, its model after each of ``untuned`` epochs; and the number of seeds."""
    if untuned is not None:
        name = _UNTUNED.get(dataset, "fixed-0.01")
        by_epochs = [(float(e), _by_seed(cells, dataset, name, e)) for e in untuned]
        points = [(x, _quartiles(tested.values())) for x, tested in by_epochs if tested]
        return points, max((len(tested) for _, tested in by_epochs), default=0)
    mine = [c for c in _cells_of(cells, dataset, arm) if _test_at(c) is not None]
    if not mine:
        return [], 0
    compute = _median(c.get("compute_epochs") for c in mine)
    return [(compute, _quartiles(_test_at(c) for c in mine))], len(mine)


def _seeds_text(counts: dict[str, set[int]]) -> str:
    """ "5 seeds", or "5 seeds (PBT: 3)" where a method has fewer on some task."""
    most = max((n for ns in counts.values() for n in ns), default=0)
    fewer = [
        f"{label.split(' (')[0]}: {', '.join(str(n) for n in sorted(ns - {most}))}"
        for label, ns in counts.items()
        if ns - {most}
    ]
    return f"{most} seeds" + (f" ({'; '.join(fewer)})" if fewer else "")


def policy_figure() -> str:
    """The HTML page of :data:`FIGURE` (:func:`policy_figure_object`); plotly.js is loaded from
    ``plotly.min.js`` beside the page."""
    fig = policy_figure_object()
    return fig.to_html(include_plotlyjs="plotly.min.js", full_html=True, div_id="when-it-pays")


def policy_figure_object() -> Any:
    """Test accuracy against compute (log scale), median and interquartile range over the
    seeds, one panel per task, the methods of ``policy-headline`` (a plotly ``Figure``)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    arms = {arm.partition("@")[0] for _, arm, *_ in _REGIMES}
    cells = load_cells("policies") + [c for c in load_cells("average") if c["arm"] in arms]
    titles = [_FIGURE_TASKS.get(d, label) for d, label in _TASKS.items()]
    fig = make_subplots(rows=2, cols=2, subplot_titles=titles, horizontal_spacing=0.1)
    counts: dict[str, set[int]] = {}
    for i, dataset in enumerate(_TASKS):
        row, col = divmod(i, 2)
        for j, (label, arm, untuned) in enumerate(_FIGURE_METHODS):
            points, n_seeds = _compute_points(cells, dataset, arm, untuned)
            if not points:
                continue
            counts.setdefault(label, set()).add(n_seeds)
            fig.add_trace(
                go.Scatter(
                    # side by side at the same compute (a dodge of 4 % per method on the log
                    # axis); the hover text gives the compute itself
                    x=[round(x * 1.04 ** (j - 2.5), 3) for x, _ in points],
                    customdata=[x for x, _ in points],
                    hovertemplate="%{customdata:.0f} epochs: %{y:.1f} %",
                    y=[100 * q[1] for _, q in points],
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": [100 * (q[2] - q[1]) for _, q in points],
                        "arrayminus": [100 * (q[1] - q[0]) for _, q in points],
                    },
                    mode="lines+markers" if len(points) > 1 else "markers",
                    marker={"symbol": _SYMBOLS[j], "size": 10, "color": _COLOURS[j]},
                    line={"color": _COLOURS[j], "dash": "dot"},
                    name=label,
                    legendgroup=label,
                    showlegend=i == 0,
                ),
                row=row + 1,
                col=col + 1,
            )
        fig.update_xaxes(
            type="log",
            tickvals=[10, 20, 40, 60, 120],
            title_text="compute (training epochs)",
            row=row + 1,
            col=col + 1,
        )
        fig.update_yaxes(title_text="test accuracy %", row=row + 1, col=col + 1)
    fig.update_layout(
        title="Test accuracy against compute at B = 120 training epochs<br>"
        f"<sup>median and interquartile range over {_seeds_text(counts)}; "
        "the untuned training after 10 and 120 epochs</sup>",
        height=850,
        legend={"orientation": "h", "y": -0.12},
        margin={"t": 90},
    )
    return fig


#: (variant, reference, what the variant changes). ``@best``: the arm's cells with the peak
#: of their validation curves as the final model (``final_model="best"``).
_ABLATION = (
    (
        "pe-pop-no-late",
        "pe-pop",
        "no explorer race in the budget's last fifth (the default before it)",
    ),
    (
        "pe-pop-anywhere",
        "pe-pop-no-late",
        "explorers anywhere in the space, not near their parent (the default before that)",
    ),
    (
        "pe-pop-always",
        "pe-pop-anywhere",
        "an explorer also replaces an adopted setting that still improves, both anywhere",
    ),
    (
        "pe-pop-explore-none",
        "pe-pop-anywhere",
        "no explorer after the first race (choose, then commit)",
    ),
    (
        "pe-pop-explore-all",
        "pe-pop-always",
        "explorers to the end (not only in the first quarter), both without the plateau rule",
    ),
    (
        "pe-pop-rung1",
        "pe-pop-always",
        "races halved every epoch: one-epoch verdicts, both without the plateau rule",
    ),
    ("pe-thesis-t2", "pe-pop", "no commitment or race: 2 sampled trials per epoch, best adopted"),
    (
        "pe-pop@best",
        "pe-pop",
        'final model: the peak of the validation curve (`final_model="best"`), not the last state',
    ),
    (
        "pe-pop-posterior",
        "pe-pop-no-late",
        "trials ranked by a GP's posterior mean over setting and age, not their values",
    ),
    (
        "pe-pop-valid40",
        "pe-pop-no-late",
        "a validation split of 40 % of the images instead of 20 % (fewer training images)",
    ),
    (
        "pe-pop-w12-no-late",
        "pe-pop-w12",
        "12 at a time, no late perturbation: 9 states continue to the end (the default before it)",
    ),
    ("pe-pop-w12-carry1", "pe-pop-w12-no-late", "12 at a time, 1 state carried instead of 9"),
    (
        "pe-pop-w12-nohist",
        "pe-pop-w12-no-late",
        "12 at a time, explorers without the earlier epochs",
    ),
    (
        "pe-pop-w12-posterior",
        "pe-pop-w12-no-late",
        "12 at a time, trials ranked by a GP's posterior mean, not their values",
    ),
    (
        "pe-pop-w12-no-late@best",
        "pe-pop-w12-no-late",
        "12 at a time, final model: the peak of the validation curve, not the last state",
    ),
    (
        "pe-pop@average",
        "pe-pop",
        'final model: the average of its lineage\'s last states (`final_model="average"`), '
        "not the last state alone",
    ),
    (
        "pe-pop-w12-no-late@average",
        "pe-pop-w12-no-late",
        "12 at a time, final model: the average of its lineage's last states",
    ),
    (
        "pe-pop-w12@average",
        "pe-pop-w12",
        "12 at a time with the late perturbation (the default), final model: the average of "
        "its lineage's last states",
    ),
)


def policy_ablation() -> str:
    policies = load_cells("policies")
    # the averages were measured by running the default arms again (average.jsonl, the same
    # deterministic runs): each is paired with the last state of its own run
    averaged = load_cells("average")
    rows = []
    for dataset, task in _TASKS.items():
        for arm, ref, what in _ABLATION:
            # the 12-at-a-time default's cells in policies.jsonl hold their average too
            reran = arm.endswith("@average") and _cells_of(averaged, dataset, arm)
            cells = averaged if reran else policies
            mine = _by_seed(cells, dataset, arm)
            base = _by_seed(cells, dataset, ref)
            if not mine or not base:
                continue
            diff, wtl = paired_difference(mine, base)
            epochs = _median(c.get("final_epochs") for c in _cells_of(cells, dataset, arm))
            rows.append(
                [
                    task,
                    f"`{arm}`: {what}",
                    len(mine),
                    f"{epochs:.0f}",
                    _pct(_median(mine.values())),
                    f"`{ref}` {_pct(_median(base.values()))}",
                    f"{diff:+.1f} ({wtl})",
                ]
            )
    return _table(
        [
            "task",
            "variant",
            "seeds",
            "final model's epochs",
            "test accuracy %",
            "default",
            "variant - default (pts, W/T/L)",
        ],
        rows,
        align="llrrrrr",
    )


#: The default two at a time with its default final model (``final_model="auto"``: the average
#: of the final lineage's last states, as for the serial races it runs two at a time).
_DEFAULT_W2 = "pe-pop-w2@average"


def policy_two() -> str:
    """Two at a time (``width=2``), equal wall time: the default (the serial races two trials at
    a time) against the population of two it replaced and an untuned training of the same wall
    time (``B / 2`` epochs), in ``width2.jsonl``."""
    cells = load_cells("width2")
    rows = []
    for dataset, task in _TASKS.items():
        mine = _by_seed(cells, dataset, _DEFAULT_W2)
        if not mine:
            continue
        before = _by_seed(cells, dataset, "pe-pop-w2-population")
        untuned = _by_seed(cells, dataset, _UNTUNED.get(dataset, "fixed-0.01"), 60)
        d_before, wtl_before = paired_difference(mine, before)
        d_untuned, wtl_untuned = paired_difference(mine, untuned)
        rows.append(
            [
                task,
                len(mine),
                _pct(_median(mine.values())),
                _pct(_median(before.values())),
                _pct(_median(untuned.values())),
                f"{d_before:+.1f} ({wtl_before})",
                f"{d_untuned:+.1f} ({wtl_untuned})",
            ]
        )
    return _table(
        [
            "task",
            "seeds",
            "default % (races, 2 at a time)",
            "population of 2 % (before)",
            "untuned % (60 ep.)",
            "vs before (pts, W/T/L)",
            "vs untuned (pts, W/T/L)",
        ],
        rows,
        align="lrrrrrr",
    )


#: (cells file, W, the default's arm, PB2's and PBT's arms with W members or None, a superseded
#: variant's arm and label, or None). The default's arm with its default final model: the average
#: of its lineage's last states where it runs the serial races (W = 2, 3), the last state with a
#: population (W >= 4); the superseded variants are populations (their last state).
_WIDTHS = (
    (
        "width2",
        2,
        _DEFAULT_W2,
        ("pb2-w2", "pbt-w2"),
        ("pe-pop-w2-population", "population of 2 (before)"),
    ),
    (
        "widths",
        3,
        "pe-pop-w3@average",
        ("pb2-w3", "pbt-w3"),
        ("pe-pop-w3-population", "population, 2 carried (before)"),
    ),
    ("widths", 4, "pe-pop-w4", ("pb2-w4", "pbt-w4"), None),
    ("widths", 8, "pe-pop-w8", ("pb2-w8", "pbt-w8"), None),
    ("policies", 12, "pe-pop-w12", ("pb2", "pbt"), None),
)


def policy_widths() -> str:
    """``W`` at a time, equal wall time (``B = 120``: ``120 / W`` rounds): the default policy,
    and a variant it replaced, against an untuned training of ``120 / W`` epochs and PB2 with
    ``W`` members."""
    files = {name: load_cells(name) for name in {w[0] for w in _WIDTHS}}
    rows = []
    for dataset, task in _TASKS.items():
        for name, width, arm, peers, before in _WIDTHS:
            cells = files[name]
            rounds = 120 // width
            untuned = _by_seed(cells, dataset, _UNTUNED.get(dataset, "fixed-0.01"), rounds)
            pb2, pbt = ({}, {}) if peers is None else (_by_seed(cells, dataset, a) for a in peers)
            variants = [(arm, "default")] + ([before] if before else [])
            for variant, label in variants:
                mine = _by_seed(cells, dataset, variant)
                if not mine:
                    continue
                d_fix, wtl_fix = paired_difference(mine, untuned)
                d_pb2, wtl_pb2 = paired_difference(mine, pb2)
                d_pbt, wtl_pbt = paired_difference(mine, pbt)
                rows.append(
                    [
                        task,
                        width,
                        label,
                        len(mine),
                        _pct(_median(mine.values())),
                        f"{_pct(_median(untuned.values()))} ({rounds} ep.)",
                        f"{d_fix:+.1f} ({wtl_fix})" if untuned else "-",
                        _pct(_median(pb2.values())),
                        f"{d_pb2:+.1f} ({wtl_pb2})" if pb2 else "-",
                        _pct(_median(pbt.values())),
                        f"{d_pbt:+.1f} ({wtl_pbt})" if pbt else "-",
                    ]
                )
    return _table(
        [
            "task",
            "W at a time",
            "policy",
            "seeds",
            "test accuracy %",
            "untuned, same wall time %",
            "vs untuned (pts, W/T/L)",
            "PB2, W members %",
            "vs PB2 (pts, W/T/L)",
            "PBT, W members %",
            "vs PBT (pts, W/T/L)",
        ],
        rows,
        align="lrlrrrrrrrr",
    )


def policy_widths_summary() -> str:
    """The default policy ``W`` at a time against an untuned training of the same wall time:
    median paired difference (points, W/T/L) per task and ``W``."""
    files = {name: load_cells(name) for name in {w[0] for w in _WIDTHS}}
    rows = []
    for dataset, task in _TASKS.items():
        row: list[Any] = [task]
        for name, width, arm, _peers, _before in _WIDTHS:
            cells = files[name]
            untuned = _by_seed(cells, dataset, _UNTUNED.get(dataset, "fixed-0.01"), 120 // width)
            mine = _by_seed(cells, dataset, arm)
            d, wtl = paired_difference(mine, untuned)
            row.append(f"{d:+.1f} ({wtl})" if mine and untuned else "-")
        rows.append(row)
    header = ["task"] + [f"{w[1]} at a time ({120 // w[1]} rounds)" for w in _WIDTHS]
    return _table(header, rows)


# --------------------------------------------------------------------------------------------
# thesis-claims
def _claim_1d() -> list[Any] | None:
    cells = [c for c in load_cells("thesis_1d") if not c.get("deterministic")]
    if not cells:
        return None

    def med(sampler: str, tol: str) -> float:
        return _median(c.get(f"evals_{tol}") for c in cells if c["sampler"] == sampler)

    seeds = len({c["seed"] for c in cells})
    ok = med("student_t", "0.01") < med("gaussian", "0.01")
    return [
        "Figs. 12-13: Gamma finds the 1-D maximum in fewer evaluations than Gaussian (5-6 vs 8-9)",
        f"evaluations to within 1e-2 / 1e-3 of the maximum, median of {seeds} seeds: Gamma "
        f"(Student-t) {med('student_t', '0.01'):g} / {med('student_t', '0.001'):g}, Gaussian "
        f"{med('gaussian', '0.01'):g} / {med('gaussian', '0.001'):g}, Optuna's GPSampler(2) "
        f"{med('gp', '0.01'):g} / {med('gp', '0.001'):g}",
        "confirmed" if ok else "not confirmed",
    ]


def _claim_mnist500(epochs: int) -> list[Any] | None:
    from benchmarks.thesis.mnist500 import grid_result

    cells = load_cells("thesis_mnist500")
    grids = {c["seed"]: c for c in cells if c.get("kind") == "grid" and c.get("epochs") == epochs}
    bos = {
        c["seed"]: c
        for c in cells
        if c.get("kind") == "bo"
        and c.get("epochs") == epochs
        and c.get("sampler") == "gamma"
        and c.get("objective") == "accuracy"
        and c.get("trials_per_study") == 12
    }
    seeds = sorted(set(grids) & set(bos))
    if not seeds:
        return None
    g = _median(grid_result(grids[s], 100)["valid_accuracy"] for s in seeds)
    b = _median(bos[s]["valid_accuracy"] for s in seeds)
    wins = sum(
        bos[s]["valid_accuracy"] >= grid_result(grids[s], 100)["valid_accuracy"] for s in seeds
    )
    thesis = {1: "thesis 47.8 / 47 %", 50: "thesis 88 / 87 %"}.get(epochs, "")
    return [
        "Tables 8-11 / target: Gamma with 12 trials reaches grid-100's best validation accuracy "
        f"at <= 1/8 of its compute (MNIST-500, {epochs} epoch{'s' if epochs > 1 else ''} per "
        "training)",
        f"median of {len(seeds)} seeds: Gamma 12 trials {_pct(b)} %, grid 100 {_pct(g)} % "
        f"(Gamma >= grid on {wins} of {len(seeds)} seeds; compute {12 * epochs} vs "
        f"{100 * epochs} epochs); {thesis}",
        "confirmed (target met)" if b >= g else "not confirmed (target missed)",
    ]


def _claim_kappa() -> list[Any] | None:
    cells = [c for c in load_cells("thesis_kappa") if c.get("arm") == "gamma"]
    if not cells:
        return None
    med = {
        o: _median(final_test(c) for c in cells if c.get("objective") == o)
        for o in ("accuracy", "kappa1-clipped", "kappa2-clipped", "kappa1", "kappa2")
    }
    seeds = len({c["seed"] for c in cells})
    best_kappa = max(med[o] for o in ("kappa1-clipped", "kappa2-clipped"))
    if best_kappa > med["accuracy"] and med["kappa2-clipped"] >= med["kappa1-clipped"]:
        verdict = "confirmed"
    elif best_kappa > med["accuracy"]:
        verdict = "mixed"
    else:
        verdict = "not confirmed"
    return [
        "Tables 4-5: kappa (and kappa_2 more) gives a better model than accuracy alone "
        "(MNIST-500, per-epoch Gamma, 2 epochs)",
        f"test accuracy, median of {seeds} seeds: accuracy {_pct(med['accuracy'])} %, "
        f"kappa_1 {_pct(med['kappa1-clipped'])} %, kappa_2 {_pct(med['kappa2-clipped'])} % "
        f"(unclipped: {_pct(med['kappa1'])} / {_pct(med['kappa2'])} %)",
        verdict,
    ]


def _perepoch_arms(name: str) -> dict[str, float]:
    cells = [c for c in load_cells(name) if not c.get("failed")]
    return {
        arm: _median(final_test(c) for c in cells if c.get("arm") == arm)
        for arm in ("grid", "gaussian", "gamma", "gamma-kappa2")
        if any(c.get("arm") == arm for c in cells)
    }


def _seeds(name: str) -> int:
    return len({c["seed"] for c in load_cells(name)})


_ARM_LABELS = {
    "grid": "grid 12",
    "gaussian": "Gaussian",
    "gamma": "Gamma",
    "gamma-kappa2": "Gamma + kappa_2",
}


def _arms_text(med: dict[str, float], digits: int = 2) -> str:
    return ", ".join(f"{_ARM_LABELS.get(a, a)} {_pct(v, digits)} %" for a, v in med.items())


def _claim_full() -> list[Any] | None:
    med = _perepoch_arms("thesis_mnist_full")
    if "gamma" not in med:
        return None
    best = max(med.get("gamma", math.nan), med.get("gamma-kappa2", -1.0))
    return [
        "Table 6 / target: per-epoch Gamma on full MNIST reaches >= 99.0 % test accuracy after "
        "3 epochs (thesis 98.79 % with kappa_2)",
        f"test accuracy after 3 epochs, {_seeds('thesis_mnist_full')} seed(s): " + _arms_text(med),
        ("confirmed (target met" if best >= 0.99 else "not confirmed (target missed")
        + (", one seed)" if _seeds("thesis_mnist_full") == 1 else ")"),
    ]


def _ordering(med: dict[str, float]) -> str:
    """Verdict on "Gamma beats Gaussian and grid, and kappa_2 improves it" (thesis table 6)."""
    if not {"gamma", "grid"} <= set(med):
        return "not measured"
    others = [med["grid"]] + ([med["gaussian"]] if "gaussian" in med else [])
    gamma_best = med["gamma"] >= max(others)
    kappa2 = med.get("gamma-kappa2")
    kappa2_helps = kappa2 is not None and kappa2 >= med["gamma"]
    if gamma_best and (kappa2 is None or kappa2_helps):
        return "confirmed"
    if gamma_best:
        return "mixed: Gamma best, kappa_2 does not add"
    if kappa2 is not None and kappa2 >= max(others):
        return "mixed: only Gamma with kappa_2 is best"
    return "not confirmed"


def _claim_order(name: str, title: str) -> list[Any] | None:
    med = _perepoch_arms(name)
    if len(med) < 2:
        return None
    return [
        title,
        f"{_seeds(name)} seed(s), after the last epoch: " + _arms_text(med),
        _ordering(med),
    ]


def _claim_peers(dataset: str, label: str) -> list[Any] | None:
    cells = [c for c in load_cells("peers") if c.get("dataset") == dataset]
    arms = {
        a: _median(_peer_final(c) for c in cells if c["arm"] == a)
        for a in ("pe-gamma", "pbt", "pb2")
    }
    if any(math.isnan(v) for v in arms.values()):
        return None
    seeds = len({c["seed"] for c in cells if c["arm"] == "pe-gamma"})
    ok = arms["pe-gamma"] >= max(arms["pbt"], arms["pb2"])
    return [
        f"Target: per-epoch Gamma at least as good as PBT and PB2 at equal compute ({label})",
        f"test accuracy, median of {seeds} seeds: per-epoch Gamma {_pct(arms['pe-gamma'])} %, "
        f"PBT {_pct(arms['pbt'])} %, PB2 {_pct(arms['pb2'])} %",
        "confirmed" if ok else "not confirmed (target missed)",
    ]


def thesis_claims() -> str:
    rows = [
        r
        for r in (
            _claim_1d(),
            _claim_mnist500(1),
            _claim_mnist500(50),
            _claim_kappa(),
            _claim_full(),
            _claim_order(
                "thesis_mnist_full",
                "Table 6: per-epoch Gamma beats Gaussian and grid, kappa_2 adds more (full MNIST)",
            ),
            _claim_order(
                "thesis_cifar10",
                "Table 7: the same on CIFAR-10 with the Keras CNN (reduced: subset, 10 epochs)",
            ),
            _claim_order(
                "thesis_fashion",
                "Held out: the same on Fashion-MNIST (not in the thesis; 10k-image subset)",
            ),
            _claim_peers("mnist", "MNIST-500"),
            _claim_peers("fashion-mnist", "Fashion-MNIST, 1,000 images"),
        )
        if r is not None
    ]
    return _table(["claim", "measured here", "verdict"], rows, align="lll")


TABLES: dict[str, Callable[[], str]] = {
    "sampler-headline": sampler_headline,
    "tuner-headline": tuner_headline,
    "policy-headline": policy_headline,
    "policy-ablation": policy_ablation,
    "policy-two": policy_two,
    "policy-widths": policy_widths,
    "policy-widths-summary": policy_widths_summary,
    "thesis-claims": thesis_claims,
}


# --------------------------------------------------------------------------------------------
def render(text: str, tables: dict[str, str]) -> str:
    """``text`` with every known generated table replaced by its regenerated body."""

    def sub(m: re.Match[str]) -> str:
        name = m.group("name")
        if name not in tables:
            raise ValueError(f"unknown generated table {name!r}")
        return m.group(1) + tables[name] + m.group(4)

    return _MARK.sub(sub, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="verify, change nothing")
    args = parser.parse_args(argv)
    tables = {name: fn() for name, fn in TABLES.items()}
    stale = []
    figure = ROOT / FIGURE
    page = policy_figure()
    if not figure.exists() or figure.read_text() != page:
        stale.append(FIGURE)
        if not args.check:
            figure.parent.mkdir(parents=True, exist_ok=True)
            figure.write_text(page)
    for rel in TARGETS:
        path = ROOT / rel
        if not path.exists():
            continue
        text = path.read_text()
        new = render(text, tables)
        if new != text:
            stale.append(rel)
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print("stale generated tables or files: " + ", ".join(stale), file=sys.stderr)
        print("run: python -m benchmarks.readme_tables", file=sys.stderr)
        return 1
    if not args.check:
        print("rewrote: " + (", ".join(stale) if stale else "nothing (up to date)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
