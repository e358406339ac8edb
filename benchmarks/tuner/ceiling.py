"""How high can a task's test accuracy go? Constant settings on a grid, each tested after every
epoch, the best (setting, epoch) chosen *on the test set*.

The per-epoch tuner's acceptance asks for ``PB2 + 5`` points on every task. On a task where no
training of the same model and data reaches that, the target measures the task, not the tuner.
This benchmark gives the number to compare with: for each seed, the best test accuracy over a
grid of constant settings (a log grid over the task's tuned ranges, ``--lr`` x ``--wd`` points)
and over epochs ``1..E``, chosen with the test set itself, so it is an optimistic bound for any
method that trains with constant settings and selects by a validation split (a schedule could
in principle do better; the tuner's own runs are reported beside it by ``peers.py``). Each cell
is one (setting, seed): the tuner with a fixed point and the thesis policy (one trial per
epoch), extended epoch by epoch and tested after each
(:func:`benchmarks.thesis.common.run_per_epoch`).

    python -m benchmarks.tuner.ceiling --dataset own-fashion --seeds 0-2 --epochs 20
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from typing import Any

from benchmarks.thesis import common as tc
from benchmarks.tuner import peers


NAME = "ceiling"


def grid(dataset: str, n_lr: int, n_wd: int) -> list[dict[str, float]]:
    """Log-spaced points over the task's tuned ranges (``lr``; ``weight_decay`` if tuned)."""
    bounds = peers.TASKS[dataset].bounds

    def axis(name: str, n: int) -> list[float]:
        lo, hi = bounds[name]
        if n == 1:
            return [math.sqrt(lo * hi)]
        return [lo * (hi / lo) ** (i / (n - 1)) for i in range(n)]

    names = [k for k in ("lr", "weight_decay") if k in bounds]
    axes = [axis(k, n_lr if k == "lr" else n_wd) for k in names]
    return [dict(zip(names, p)) for p in itertools.product(*axes)]


def slug(point: dict[str, float]) -> str:
    """A setting as a file-name-safe key (``lr0.001-weight_decay0.01``)."""
    return "-".join(f"{k}{v:.3g}" for k, v in point.items())


def run_cell(args: Any, point: dict[str, float], seed: int, root: str | None) -> dict[str, Any]:
    subset = peers.DATASETS[args.dataset]
    trainer = peers.make_trainer(args.dataset, root, subset, seed)
    run_dir = args.runs_dir / NAME / f"{args.dataset}-s{seed}-{slug(point)}"
    rec = tc.run_per_epoch(
        args,
        trainer,
        peers.space(args.dataset),
        run_dir,
        sampler=peers.point_sampler(point),
        objective="kappa1",
        seed=seed,
        trials=1,
        test_after=list(range(1, args.epochs + 1)),
    )
    tc.remove_dir(run_dir)
    return {"dataset": args.dataset, "point": point, "seed": seed, "test": rec["test"]}


def summarize(cells: list[dict[str, Any]], dataset: str) -> str:
    """Per seed: the best (setting, epoch) by test accuracy; the median over seeds."""
    mine = [c for c in cells if c.get("dataset") == dataset]
    best: dict[int, tuple[float, dict[str, float], int]] = {}
    for c in mine:
        for e, t in c["test"].items():
            acc = t.get("accuracy")
            if acc is not None and (c["seed"] not in best or acc > best[c["seed"]][0]):
                best[c["seed"]] = (acc, c["point"], int(e))
    if not best:
        return f"# Ceiling: {dataset}\n\nno cells\n"
    lines = [
        f"# Ceiling: {dataset}",
        "",
        f"Best test accuracy over {len({slug(c['point']) for c in mine})} constant settings "
        "and their epochs, chosen on the test set (an optimistic bound; module docstring).",
        "",
        "| seed | test accuracy % | setting | epoch |",
        "| ---: | ---: | --- | ---: |",
    ]
    for seed, (acc, point, e) in sorted(best.items()):
        shown = ", ".join(f"{k} {v:.3g}" for k, v in point.items())
        lines.append(f"| {seed} | {100 * acc:.2f} | {shown} | {e} |")
    med = statistics.median(v[0] for v in best.values())
    lines += ["", f"Median over {len(best)} seeds: **{100 * med:.2f} %**.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = tc.common_parser(__doc__ or "", seeds="0-2", results=peers.RESULTS_DIR)
    p.add_argument("--dataset", choices=tuple(peers.DATASETS), default="own-fashion")
    p.add_argument("--epochs", type=int, default=20, help="epochs of each training (default 20)")
    p.add_argument("--lr", type=int, default=4, help="learning rates on the grid (default 4)")
    p.add_argument("--wd", type=int, default=3, help="weight decays on the grid (default 3)")
    args = p.parse_args(argv)
    name = args.tag or NAME
    tc.quiet()
    tc.set_threads(args.threads)
    cells = tc.Cells(args.out / f"{name}.jsonl")
    if not args.summary_only:
        root = tc.data_root(args.data_root, required=peers.TASKS[args.dataset].needs_root)
        seeds = tc.parse_seeds(args.seeds)
        points = grid(args.dataset, args.lr, args.wd)
        meta = {"dataset": args.dataset, "epochs": args.epochs, "seeds": seeds, "grid": points}
        tc.write_meta(args.out, f"{name}_{args.dataset}", meta)
        t0 = time.perf_counter()
        done = 0
        for seed in seeds:
            for point in points:
                key = f"{args.dataset}|E={args.epochs}|seed={seed}|{slug(point)}"
                done += tc.run_once(cells, key, lambda: run_cell(args, point, seed, root), t0)
        tc.finish_meta(
            args.out,
            f"{name}_{args.dataset}",
            cells_run=done,
            wall_seconds=time.perf_counter() - t0,
        )
    text = summarize(list(cells.values()), args.dataset)
    (args.out / f"{name}_{args.dataset}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
