"""Thesis tables 4-5: does kappa help? Per-epoch tuning on MNIST-500, epochs 1-2.

The thesis compares, per epoch, the "existing system" (the objective without kappa), the
proposed system with kappa (eq. 11, "before improvement") and with the improved kappa (eq. 12),
each with grid, Gaussian and Gamma search, and reports sensitivity, specificity, accuracy and
MCC. Here every (sampler, objective) pair runs the tuner's per-epoch mode (thesis fig. 8) on
MNIST-500 (400 train / 100 validation), thesis CNN, for 2 epochs, and the adopted model is
evaluated on the official 10,000-image test set after epoch 1 and after epoch 2.

Objectives (:data:`benchmarks.thesis.common.OBJECTIVES`):

* ``accuracy``: validation accuracy alone (the "existing system");
* ``kappa1-clipped`` / ``kappa2-clipped``: the thesis's eqs. 11-12 literally, ``max(0, .)``
  returned to the study (lambda = 0.5);
* ``kappa1`` / ``kappa2``: the unclipped expressions the project returns (docs/design.md §3).

Samplers: ``grid`` = ``grid:100:linear`` (100 learning rates 0.005..0.5 per epoch, the thesis's
grid), ``gaussian`` and ``gamma`` (``GammaBOSampler``, 2 start-up + 10 BO trials per epoch, lr
linear in [0.001, 0.5]). Default seeds: 0-4 for the model-based samplers, 0-2 for the grid
(100 trainings per epoch; ``--full`` runs the grid on all seeds).

    python -m benchmarks.thesis.kappa              # ~40 min on one busy core
    python -m benchmarks.thesis.kappa --summary-only
"""

from __future__ import annotations

from pathlib import Path
import time
from typing import Any

from benchmarks.thesis import common as tc


NAME = "thesis_kappa"
SAMPLERS = ("grid", "gaussian", "gamma")

#: Thesis tables 4-5: (sensitivity, specificity, accuracy, MCC) in %, by epoch, sampler and
#: system: "accuracy" = existing system, "kappa1" = before the kappa improvement, "kappa2" = after.
THESIS = {
    1: {
        "grid": {
            "accuracy": (43.69, 93.94, 47.0, 35.61),
            "kappa1": (46.98, 94.61, 52.0, 38.20),
            "kappa2": (46.88, 94.20, 52.0, 37.03),
        },
        "gaussian": {
            "accuracy": (42.78, 93.42, 42.0, 35.48),
            "kappa1": (43.05, 94.40, 50.0, 41.23),
            "kappa2": (42.02, 94.47, 51.0, 40.12),
        },
        "gamma": {
            "accuracy": (44.02, 94.00, 46.0, 38.90),
            "kappa1": (47.46, 94.42, 50.0, 39.89),
            "kappa2": (46.92, 94.01, 51.0, 39.81),
        },
    },
    2: {
        "grid": {
            "accuracy": (90.04, 98.67, 88.0, 87.61),
            "kappa1": (91.76, 99.02, 91.0, 89.50),
            "kappa2": (90.56, 98.72, 90.0, 89.50),
        },
        "gaussian": {
            "accuracy": (89.37, 98.55, 87.0, 86.86),
            "kappa1": (88.70, 98.70, 88.0, 85.92),
            "kappa2": (88.70, 99.21, 88.0, 85.92),
        },
        "gamma": {
            "accuracy": (89.38, 98.56, 87.0, 86.83),
            "kappa1": (90.13, 98.80, 89.0, 87.36),
            "kappa2": (90.13, 98.90, 91.0, 87.36),
        },
    },
}


def sampler_spec(sampler: str, grid_size: int) -> tuple[str, Any, int]:
    """(tuner sampler name, search space, trials per epoch) of an arm."""
    if sampler == "grid":
        return (
            f"grid:{grid_size}:linear",
            tc.thesis_space(low=tc.THESIS_LR_HIGH / grid_size),
            grid_size,
        )
    return sampler, tc.thesis_space(), 12


def run_cell(
    args: Any, root: str | None, seed: int, sampler: str, obj: str, epochs: int
) -> dict[str, Any]:
    from optuna_gamma.tuner import ThesisTrainer

    name, space, trials = sampler_spec(sampler, args.grid_size)
    run_dir = args.runs_dir / NAME / f"s{seed}-{sampler}-{obj}"
    trainer = ThesisTrainer("mnist", root, model="thesis-cnn", subset=500, data_seed=seed)
    rec = tc.run_per_epoch(
        args,
        trainer,
        space,
        run_dir,
        sampler=name,
        objective=tc.objective(obj),
        seed=seed,
        trials=trials,
        test_after=range(1, epochs + 1),
    )
    tc.remove_dir(run_dir)
    return {"arm": sampler, "objective_name": obj, **rec}


# statistics
Cell = dict[str, Any]


def _metric_stats(cells: list[Cell], epochs: list[int]) -> list[dict[str, Any]]:
    """Per (epoch, sampler, objective): the test metrics and adopted trials of every seed."""
    out = []
    for e in epochs:
        for smp in SAMPLERS:
            for obj in tc.OBJECTIVES:
                cs = [
                    c
                    for c in cells
                    if c["arm"] == smp and c["objective_name"] == obj and str(e) in c["test"]
                ]
                if not cs:
                    continue
                base = obj.replace("-clipped", "")
                sched = [c["schedule"][e - 1] for c in cs]
                out.append(
                    {
                        "epoch": e,
                        "sampler": smp,
                        "objective": obj,
                        "seeds": len(cs),
                        "thesis": THESIS.get(e, {}).get(smp, {}).get(base)
                        if obj in ("accuracy", "kappa1-clipped", "kappa2-clipped")
                        else None,
                        "test": [c["test"][str(e)] for c in cs],
                        "schedule": sched,
                        "n_trials": len(sched[0]["trial_lrs"]),
                    }
                )
    return out


def _paired_stats(cells: list[Cell], epochs: list[int]) -> list[tuple[int, str, str, list[float]]]:
    """Test accuracy of each objective minus that of ``accuracy`` (same sampler, seed, epoch)."""
    out = []
    for e in epochs:
        for smp in SAMPLERS:
            for obj in tc.OBJECTIVES[1:]:
                diffs = []
                for c in cells:
                    if c["arm"] != smp or c["objective_name"] != obj or str(e) not in c["test"]:
                        continue
                    ref = [
                        r
                        for r in cells
                        if r["arm"] == smp
                        and r["objective_name"] == "accuracy"
                        and r["seed"] == c["seed"]
                        and str(e) in r["test"]
                    ]
                    if ref:
                        diffs.append(
                            c["test"][str(e)]["accuracy"] - ref[0]["test"][str(e)]["accuracy"]
                        )
                if diffs:
                    out.append((e, smp, obj, diffs))
    return out


# rendering
_INTRO = [
    "# Thesis tables 4-5: accuracy alone vs kappa_1 vs kappa_2, per-epoch tuning on MNIST-500",
    "",
    "Test-set (10,000 images) sensitivity, specificity, accuracy and MCC in % of the adopted "
    "model after each epoch, median over seeds; 'valid acc' = the adopted trial's validation "
    "accuracy (100 images); 'flat' = share of the epoch's trials whose thesis (clipped) kappa "
    "was 0, i.e. that the clipped objective could not tell apart. Thesis: its tables 4 "
    "('existing system' = accuracy, 'before kappa improvement' = kappa_1) and 5 ('after' = "
    "kappa_2); one run each, evaluated on a set of about 100 images (accuracies in whole "
    "points).",
    "",
]
_METRIC_HEADER = [
    "epoch",
    "sampler",
    "objective",
    "seeds",
    "thesis Sens / Spec / Acc / MCC",
    "Sens",
    "Spec",
    "test Acc median [Q1, Q3]",
    "MCC",
    "valid acc",
    "lr (median)",
    "flat",
]
_PAIRED_HEADER = ["epoch", "sampler", "objective", "pairs", "median diff (points)", "W/T/L"]


def _render_failed(failed: list[Cell]) -> list[str]:
    if not failed:
        return []
    return [
        "Stopped runs (every trial of an epoch diverged; left out below): "
        + "; ".join(
            f"{c['arm']} / {c['objective_name']} seed {c['seed']} "
            f"after {c.get('epochs_adopted')} epochs"
            for c in failed
        ),
        "",
    ]


def _render_metrics(stats: list[dict[str, Any]]) -> str:
    rows = []
    for r in stats:
        t, sched, th = r["test"], r["schedule"], r["thesis"]
        rows.append(
            [
                r["epoch"],
                r["sampler"],
                r["objective"],
                r["seeds"],
                " / ".join(f"{v:.1f}" for v in th) if th else "",
                tc.pct(tc.median(x["sensitivity"] for x in t)),
                tc.pct(tc.median(x["specificity"] for x in t)),
                tc.med_iqr([x["accuracy"] for x in t]),
                tc.pct(tc.median(x["mcc"] for x in t)),
                tc.pct(tc.median(s["valid_accuracy"] for s in sched), 0),
                f"{tc.median(s['lr'] for s in sched):.3f}",
                f"{tc.median(s['n_zero_clipped'] / r['n_trials'] for s in sched):.0%}",
            ]
        )
    return tc.md_table(_METRIC_HEADER, rows)


def _render_paired(stats: list[tuple[int, str, str, list[float]]]) -> list[str]:
    rows = [
        [
            e,
            smp,
            obj,
            len(diffs),
            f"{100 * tc.median(diffs):+.1f}",
            f"{sum(d > 0 for d in diffs)}/{sum(d == 0 for d in diffs)}"
            f"/{sum(d < 0 for d in diffs)}",
        ]
        for e, smp, obj, diffs in stats
    ]
    return [
        "",
        "Paired over seeds: test accuracy of each objective minus that of `accuracy` (same "
        "sampler, seed, epoch), median in points, and wins/ties/losses:",
        "",
        tc.md_table(_PAIRED_HEADER, rows),
    ]


def _figures(cells: list[Cell], epochs: list[int]) -> list[Any]:
    """Test accuracy by sampler and objective; the first seed's confusion matrices."""
    import numpy as np
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1, cols=len(epochs) or 1, subplot_titles=[f"after epoch {e}" for e in epochs]
    )
    colors = dict(zip(tc.OBJECTIVES, ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a")))
    for j, e in enumerate(epochs, 1):
        for obj in tc.OBJECTIVES:
            xs, ys = [], []
            for smp in SAMPLERS:
                for c in cells:
                    if c["arm"] == smp and c["objective_name"] == obj and str(e) in c["test"]:
                        xs.append(smp)
                        ys.append(c["test"][str(e)]["accuracy"])
            if ys:
                fig.add_trace(
                    go.Box(
                        x=xs,
                        y=ys,
                        name=obj,
                        marker_color=colors[obj],
                        boxpoints="all",
                        legendgroup=obj,
                        showlegend=j == 1,
                    ),
                    1,
                    j,
                )
    fig.update_layout(
        boxmode="group",
        title="Test accuracy of the per-epoch schedule by sampler and objective "
        "(one point per seed)",
        yaxis_title="test accuracy",
    )
    figs = [fig]
    # confusion matrices of seed 0, epoch 2 (thesis figs. 18-19)
    last = max(epochs) if epochs else None
    cms = [
        (c["arm"], c["objective_name"], c["test"][str(last)].get("confusion_matrix"))
        for c in cells
        if last is not None
        and c["seed"] == min(x["seed"] for x in cells)
        and str(last) in c["test"]
        and c["objective_name"] in ("accuracy", "kappa1-clipped", "kappa2-clipped")
    ]
    cms = [x for x in cms if x[2]]
    if cms:
        cms.sort(key=lambda x: (SAMPLERS.index(x[0]), tc.OBJECTIVES.index(x[1])))
        ncol = 3
        nrow = (len(cms) + ncol - 1) // ncol
        fig = make_subplots(rows=nrow, cols=ncol, subplot_titles=[f"{a} / {o}" for a, o, _ in cms])
        for i, (a, o, cm) in enumerate(cms):
            m = np.array(cm, dtype=float)
            off = m.copy()
            np.fill_diagonal(off, np.nan)
            fig.add_trace(
                go.Heatmap(z=off.tolist(), colorscale="Reds", showscale=i == 0),
                i // ncol + 1,
                i % ncol + 1,
            )
            fig.update_yaxes(autorange="reversed", row=i // ncol + 1, col=i % ncol + 1)
        fig.update_layout(
            title=f"Misclassifications on the test set after epoch {last}, "
            f"seed {min(x['seed'] for x in cells)} "
            "(rows: true digit, columns: predicted; diagonal blank; cf. thesis figs. 18-19)",
            height=330 * nrow,
        )
        figs.append(fig)
    return figs


def summarize(cells: list[Cell], out: Path, name: str) -> str:
    """Write ``<name>.md`` (tables 4-5 against ours) and ``<name>.html``; return the text."""
    lines = list(_INTRO)
    lines += _render_failed([c for c in cells if c.get("failed")])
    cells = [c for c in cells if not c.get("failed")]
    epochs = sorted({int(e) for c in cells for e in c["test"]})
    lines.append(_render_metrics(_metric_stats(cells, epochs)))
    lines += _render_paired(_paired_stats(cells, epochs))
    lines += ["", tc.code_note(cells, lambda c: c["arm"])]
    text = "\n".join(lines) + "\n"
    tc.write_text(out, name, ".md", text)
    tc.write_figures(out, name, _figures(cells, epochs), "Thesis tables 4-5: kappa")
    return text


def main(argv: list[str] | None = None) -> int:
    p = tc.common_parser(__doc__ or "", seeds="0-4")
    p.add_argument(
        "--grid-seeds", default="0-2", help="seeds of the grid arm (default 0-2; --full: --seeds)"
    )
    p.add_argument(
        "--grid-size",
        type=int,
        default=100,
        help="learning rates of the per-epoch grid (default 100)",
    )
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=SAMPLERS)
    p.add_argument("--objectives", nargs="+", default=list(tc.OBJECTIVES), choices=tc.OBJECTIVES)
    args, name, cells = tc.start(p, argv, NAME)
    if not args.summary_only:
        root = tc.data_root(args.data_root)
        seeds = tc.parse_seeds(args.seeds)
        grid_seeds = (
            seeds if args.full else [s for s in tc.parse_seeds(args.grid_seeds) if s in seeds]
        )
        tc.write_meta(
            args.out,
            name,
            {
                "seeds": seeds,
                "grid_seeds": grid_seeds,
                "grid_size": args.grid_size,
                "epochs": args.epochs,
                "device": args.device,
            },
        )
        t0 = time.perf_counter()
        done = 0
        for smp in args.samplers:
            for seed in grid_seeds if smp == "grid" else seeds:
                for obj in args.objectives:
                    k = f"{smp}|{obj}|seed={seed}|E={args.epochs}" + (
                        f"|N={args.grid_size}" if smp == "grid" else ""
                    )
                    done += tc.run_once(
                        cells, k, lambda: run_cell(args, root, seed, smp, obj, args.epochs), t0
                    )
        tc.finish_meta(args.out, name, cells_run=done, wall_seconds=time.perf_counter() - t0)
    print(summarize(cells.values(), args.out, name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
