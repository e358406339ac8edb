"""How high can a task's test accuracy go? Constant settings on a grid, each tested after every
epoch, the best (setting, epoch) chosen *on the test set*.

The per-epoch tuner's acceptance asks for ``PB2 + 5`` points on every task. On a task where no
training of the same model and data reaches that, the target measures the task, not the tuner.
This benchmark gives the number to compare with: for each seed, the best test accuracy over a
grid of constant settings (a log grid over the task's tuned ranges, ``--lr`` x ``--wd`` points)
and over epochs ``1..E``, chosen with the test set itself, so it is an optimistic bound for any
method that trains with constant settings and selects by a validation split (the tuner's own
runs are reported beside it by ``peers.py``). Each cell is one (setting, seed): the tuner with
a fixed point and the thesis policy (one trial per epoch), extended epoch by epoch and tested
after each (:func:`benchmarks.thesis.common.run_per_epoch`).

A schedule could do better than any constant setting. ``--schedule cosine`` measures that
bound too: each cell is one (setting, horizon ``H``, seed), trained ``H`` epochs (``--horizons``)
from the setting's learning rate with cosine annealing to zero
(``torch.optim.lr_scheduler.CosineAnnealingLR``, stepped per epoch; Loshchilov & Hutter,
ICLR 2017), in a plain loop over the trainer's own ``build`` / ``train_epoch`` / ``evaluate``
(the tuner is not involved), and tested after every epoch; the best (setting, horizon, epoch)
is again chosen on the test set.

    python -m benchmarks.tuner.ceiling --dataset own-fashion --seeds 0-2 --epochs 20
    python -m benchmarks.tuner.ceiling --dataset own-fashion --seeds 0-2 --lr 8 --wd 3 \
        --schedule cosine --horizons 10 20 40 --tag ceiling_cosine
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


def run_cosine_cell(
    args: Any, point: dict[str, float], horizon: int, seed: int, root: str | None
) -> dict[str, Any]:
    """``horizon`` epochs from ``point`` with cosine annealing to zero, tested after each epoch.

    A plain loop over the trainer's protocol: ``build``, the setting written into every
    parameter group, then per epoch ``train_epoch`` (with the trainer's own default
    hyperparameters for what the optimizer does not hold, e.g. a batch size) and a scheduler
    step, and ``evaluate(state, "test")``.
    """
    import torch

    from optuna_gamma.tuner import EpochContext

    subset = peers.DATASETS[args.dataset]
    trainer = peers.make_trainer(args.dataset, root, subset, seed)
    device = torch.device(args.device)
    state = trainer.build(seed, device)
    for group in state.optimizer.param_groups:
        group.update(point)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(state.optimizer, T_max=horizon)
    defaults: dict[str, Any] = dict(getattr(trainer, "default_hyperparameters", dict)())
    hparams = {**defaults, **point}
    test: dict[str, Any] = {}
    for epoch in range(1, horizon + 1):
        epoch_seed = seed * 1_000 + epoch
        ctx = EpochContext(
            epoch=epoch,
            seed=epoch_seed,
            device=device,
            trial_number=0,
            generator=torch.Generator().manual_seed(epoch_seed),
            epochs=horizon,
        )
        trainer.train_epoch(state, hparams, ctx)
        scheduler.step()
        test[str(epoch)] = tc.test_metrics(trainer.evaluate(state, "test"))
    return {
        "dataset": args.dataset,
        "schedule": "cosine",
        "horizon": horizon,
        "point": point,
        "seed": seed,
        "test": test,
    }


def _described(c: dict[str, Any]) -> str:
    shown = ", ".join(f"{k} {v:.3g}" for k, v in c["point"].items())
    if c.get("schedule") == "cosine":
        shown += f", cosine over {c['horizon']} epochs"
    return shown


def summarize(cells: list[dict[str, Any]], dataset: str) -> str:
    """Per seed: the best (setting, epoch) by test accuracy; the median over seeds."""
    mine = [c for c in cells if c.get("dataset") == dataset]
    best: dict[int, tuple[float, dict[str, Any], int]] = {}
    for c in mine:
        for e, t in c["test"].items():
            acc = t.get("accuracy")
            if acc is not None and (c["seed"] not in best or acc > best[c["seed"]][0]):
                best[c["seed"]] = (acc, c, int(e))
    if not best:
        return f"# Ceiling: {dataset}\n\nno cells\n"
    n_points = len({slug(c["point"]) for c in mine})
    horizons = sorted({c["horizon"] for c in mine if c.get("schedule") == "cosine"})
    what = (
        f"{n_points} constant settings"
        if not horizons
        else f"{n_points} settings annealed by a cosine over {', '.join(map(str, horizons))} "
        "epochs"
    )
    lines = [
        f"# Ceiling: {dataset}",
        "",
        f"Best test accuracy over {what} and their epochs, chosen on the test set (an "
        "optimistic bound; module docstring).",
        "",
        "| seed | test accuracy % | setting | epoch |",
        "| ---: | ---: | --- | ---: |",
    ]
    for seed, (acc, c, e) in sorted(best.items()):
        lines.append(f"| {seed} | {100 * acc:.2f} | {_described(c)} | {e} |")
    med = statistics.median(v[0] for v in best.values())
    lines += ["", f"Median over {len(best)} seeds: **{100 * med:.2f} %**.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = tc.common_parser(__doc__ or "", seeds="0-2", results=peers.RESULTS_DIR)
    p.add_argument("--dataset", choices=tuple(peers.DATASETS), default="own-fashion")
    p.add_argument("--epochs", type=int, default=20, help="epochs of each training (default 20)")
    p.add_argument("--lr", type=int, default=4, help="learning rates on the grid (default 4)")
    p.add_argument("--wd", type=int, default=3, help="weight decays on the grid (default 3)")
    p.add_argument(
        "--schedule",
        choices=("constant", "cosine"),
        default="constant",
        help="constant settings (default), or each annealed by a cosine over --horizons",
    )
    p.add_argument(
        "--horizons",
        type=int,
        nargs="+",
        default=[10, 20, 40],
        help="epochs of the cosine schedules (default 10 20 40)",
    )
    args = p.parse_args(argv)
    if any(h < 1 for h in args.horizons):
        p.error(f"--horizons must be >= 1, got {args.horizons}")
    name = args.tag or NAME
    tc.quiet()
    tc.set_threads(args.threads)
    cells = tc.Cells(args.out / f"{name}.jsonl")
    if not args.summary_only:
        root = tc.data_root(args.data_root, required=peers.TASKS[args.dataset].needs_root)
        seeds = tc.parse_seeds(args.seeds)
        points = grid(args.dataset, args.lr, args.wd)
        meta: dict[str, Any] = {"dataset": args.dataset, "seeds": seeds, "grid": points}
        if args.schedule == "cosine":
            meta.update(schedule="cosine", horizons=args.horizons)
        else:
            meta["epochs"] = args.epochs
        tc.write_meta(args.out, f"{name}_{args.dataset}", meta)
        t0 = time.perf_counter()
        done = 0
        for seed in seeds:
            for point in points:
                if args.schedule == "cosine":
                    for h in args.horizons:
                        key = f"{args.dataset}|cosine|H={h}|seed={seed}|{slug(point)}"
                        done += tc.run_once(
                            cells, key, lambda: run_cosine_cell(args, point, h, seed, root), t0
                        )
                    continue
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
