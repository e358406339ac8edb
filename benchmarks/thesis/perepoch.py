"""The per-epoch comparison shared by thesis tables 6 (full MNIST) and 7 (CIFAR-10).

Four arms run the tuner's per-epoch mode (thesis fig. 8) on the same data, model, initial
weights and batch order, and the adopted model is evaluated on the official test set at the
checkpoint epochs:

``grid``          ``grid:G:linear``: ``G`` learning rates ``0.5 k / G`` every epoch (the thesis's
                  grid; ``G`` is reduced on a CPU, the tables say so)
``gaussian``      ``GammaBOSampler(predictive="gaussian")``, 2 + 10 trials per epoch, kappa_1
``gamma``         ``GammaBOSampler()`` (Student-t), 2 + 10 trials, kappa_1
``gamma-kappa2``  the same with kappa_2 (the thesis's "kappa-improved Gamma")

kappa is the project's unclipped objective (docs/design.md §3); the thesis's clipped value is
recorded. The model-based arms search ``lr`` linearly in [0.001, 0.5].
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
import time
from typing import Any

from benchmarks.thesis import common as tc


ARMS = ("grid", "gaussian", "gamma", "gamma-kappa2")


@dataclass
class Experiment:
    """One per-epoch comparison (a table of the thesis)."""

    name: str
    title: str
    dataset: str
    model: str
    subset: int | None
    valid_fraction: float
    epochs: int
    test_after: tuple[int, ...]
    grid_size: int
    seeds: list[int]
    thesis: Mapping[int, Mapping[str, tuple[float, ...]]] = field(default_factory=dict)
    thesis_columns: tuple[str, ...] = ("Sens", "Spec", "Acc", "MCC")
    notes: str = ""


def arm_spec(arm: str, grid_size: int) -> tuple[str, Any, int, str]:
    """(tuner sampler, space, trials per epoch, objective) of an arm."""
    if arm == "grid":
        return (
            f"grid:{grid_size}:linear",
            tc.thesis_space(low=tc.THESIS_LR_HIGH / grid_size),
            grid_size,
            "kappa1",
        )
    if arm == "gamma-kappa2":
        return "gamma", tc.thesis_space(), 12, "kappa2"
    return arm, tc.thesis_space(), 12, "kappa1"


def run_cell(args: Any, exp: Experiment, root: str | None, seed: int, arm: str) -> dict[str, Any]:
    from optuna_gamma.tuner import ThesisTrainer

    sampler, space, trials, obj = arm_spec(arm, exp.grid_size)
    run_dir = args.runs_dir / exp.name / f"s{seed}-{arm}"
    trainer = ThesisTrainer(
        exp.dataset,
        root,
        model=exp.model,
        subset=exp.subset,
        valid_fraction=exp.valid_fraction,
        data_seed=seed,
    )
    rec = tc.run_per_epoch(
        args,
        trainer,
        space,
        run_dir,
        sampler=sampler,
        objective=obj,
        seed=seed,
        trials=trials,
        test_after=[e for e in exp.test_after if e <= exp.epochs],
    )
    tc.remove_dir(run_dir)
    return {
        "arm": arm,
        "dataset": exp.dataset,
        "subset": exp.subset,
        "grid_size": exp.grid_size,
        **rec,
    }


def run(args: Any, exp: Experiment, arms: list[str]) -> tc.Cells:
    cells = tc.Cells(args.out / f"{exp.name}.jsonl")
    if args.summary_only:
        return cells
    root = tc.data_root(args.data_root, required=exp.dataset != "digits")
    tc.write_meta(
        args.out,
        exp.name,
        {
            "dataset": exp.dataset,
            "model": exp.model,
            "subset": exp.subset,
            "valid_fraction": exp.valid_fraction,
            "epochs": exp.epochs,
            "test_after": exp.test_after,
            "grid_size": exp.grid_size,
            "seeds": exp.seeds,
            "arms": arms,
            "full": args.full,
            "device": args.device,
            "threads": args.threads,
        },
    )
    t0 = time.perf_counter()
    done = 0
    for seed in exp.seeds:
        for arm in arms:
            k = f"{arm}|seed={seed}|E={exp.epochs}|subset={exp.subset}|G={exp.grid_size}"
            done += tc.run_once(cells, k, lambda: run_cell(args, exp, root, seed, arm), t0)
    tc.finish_meta(args.out, exp.name, cells_run=done, wall_seconds=time.perf_counter() - t0)
    return cells


def main(
    doc: str,
    make: Callable[[Any], Experiment],
    add_args: Callable[[Any], None],
    argv: list[str] | None,
) -> int:
    """The command line of a per-epoch comparison module (``make(args)`` builds its experiment)."""
    p = tc.common_parser(doc, seeds="")
    add_args(p)
    p.add_argument(
        "--grid-size",
        type=int,
        default=None,
        help="learning rates of the grid per epoch (12; --full 100)",
    )
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    args = p.parse_args(argv)
    tc.quiet()
    tc.set_threads(args.threads)
    exp = make(args)
    cells = run(args, exp, args.arms)
    print(summarize(exp, cells.values(), args.out))
    return 0


# statistics
Cell = dict[str, Any]


def _checkpoint_stats(exp: Experiment, cells: list[Cell]) -> list[dict[str, Any]]:
    """Per (checkpoint epoch, arm): the test metrics of every seed, the schedule, the compute."""
    out = []
    for e in sorted({int(e) for c in cells for e in c["test"]}):
        for arm in ARMS:
            cs = [c for c in cells if c["arm"] == arm and str(e) in c["test"]]
            if not cs:
                continue
            sched = cs[0]["schedule"]
            out.append(
                {
                    "epoch": e,
                    "label": arm if arm != "grid" else f"grid {cs[0]['grid_size']}",
                    "seeds": len(cs),
                    "thesis": exp.thesis.get(e, {}).get(arm),
                    "test": [c["test"][str(e)] for c in cs],
                    # the first seed's schedule when short, else the median over all
                    "lrs": [s["lr"] for s in sched[:e]] if len(sched) <= 5 else None,
                    "median_lr": tc.median(s["lr"] for c in cs for s in c["schedule"][:e]),
                    "epochs_trained": tc.median(c["compute_epochs"] for c in cs)
                    * e
                    / cs[0]["epochs"],
                    "minutes": tc.median(c["compute_time"] for c in cs) * e / cs[0]["epochs"] / 60,
                }
            )
    return out


# rendering
def _render_failed(failed: list[Cell]) -> list[str]:
    if not failed:
        return []
    return [
        "Stopped runs (every trial of an epoch diverged; left out below): "
        + "; ".join(
            f"{c['arm']} seed {c['seed']} after {c.get('epochs_adopted')} epochs" for c in failed
        ),
        "",
    ]


def _render_checkpoints(exp: Experiment, stats: list[dict[str, Any]], first_seed: int) -> str:
    rows = []
    for r in stats:
        t, th = r["test"], r["thesis"]
        rows.append(
            [
                r["epoch"],
                r["label"],
                r["seeds"],
                " / ".join(f"{v:g}" for v in th) if th else "-",
                tc.pct(tc.median(x["sensitivity"] for x in t), 2),
                tc.pct(tc.median(x["specificity"] for x in t), 2),
                tc.med_iqr([x["accuracy"] for x in t], digits=2),
                tc.pct(tc.median(x["mcc"] for x in t), 2),
                f"{tc.median(x['loss'] for x in t):.4f}",
                " ".join(f"{lr:.3f}" for lr in r["lrs"])
                if r["lrs"] is not None
                else f"{r['median_lr']:.3f} (median)",
                f"{r['epochs_trained']:.0f}",
                f"{r['minutes']:.1f}",
            ]
        )
    return tc.md_table(
        [
            "epoch",
            "arm",
            "seeds",
            "thesis " + " / ".join(exp.thesis_columns),
            "Sens",
            "Spec",
            "test Acc % median [Q1, Q3]",
            "MCC",
            "test loss",
            "lr schedule (seed " + str(first_seed) + ")",
            "epochs trained",
            "train+valid min",
        ],
        rows,
    )


def _figures(exp: Experiment, cells: list[Cell]) -> list[Any]:
    """Test accuracy at the checkpoints and the adopted learning rates, per arm and seed."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("test accuracy at the checkpoints", "adopted learning rate per epoch"),
    )
    for arm in ARMS:
        for c in (c for c in cells if c["arm"] == arm):
            es = sorted(int(e) for e in c["test"])
            fig.add_trace(
                go.Scatter(
                    x=es,
                    y=[c["test"][str(e)]["accuracy"] for e in es],
                    mode="lines+markers",
                    name=f"{arm} s{c['seed']}",
                    legendgroup=arm,
                ),
                1,
                1,
            )
            fig.add_trace(
                go.Scatter(
                    x=[s["epoch"] for s in c["schedule"]],
                    y=[s["lr"] for s in c["schedule"]],
                    mode="lines+markers",
                    name=f"{arm} s{c['seed']}",
                    legendgroup=arm,
                    showlegend=False,
                ),
                1,
                2,
            )
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(title=exp.title, height=500)
    return [fig]


def summarize(exp: Experiment, cells: list[Cell], out: Path) -> str:
    """Write ``<exp.name>.md`` and ``.html`` from the cells; return the text."""
    lines = [f"# {exp.title}", "", exp.notes, ""]
    lines += _render_failed([c for c in cells if c.get("failed")])
    cells = [c for c in cells if not c.get("failed")]
    first_seed = min((c["seed"] for c in cells), default=0)
    lines.append(_render_checkpoints(exp, _checkpoint_stats(exp, cells), first_seed))
    lines += [
        "",
        "'epochs trained' and minutes up to that epoch (pro rata of the run's total). The "
        "learning-rate schedule is the adopted trial's lr per epoch.",
    ]
    lines += ["", tc.code_note(cells, lambda c: c["arm"])]
    text = "\n".join(lines) + "\n"
    tc.write_text(out, exp.name, ".md", text)
    tc.write_figures(out, exp.name, _figures(exp, cells), exp.title)
    return text
