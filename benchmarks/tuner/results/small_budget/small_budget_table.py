"""The default policy at a small budget (B = 24), before and after ``race_share``.

Reads the ``peers.jsonl`` cells of ``benchmarks.tuner.peers --epochs 2`` (B = 24) under
``race_share/<task>/`` (the policy with its first race sized by the budget, commit 0db0924, and
0cf99e9 for CIFAR-10; the untuned trainings ran beside it) and ``before/<task>/`` (the policy
before, commit aadbc1d; not run for CIFAR-10), and prints, per task, the median test accuracy of
each and of one untuned training of 24 epochs, the paired differences (5 seeds) and the final
model's epochs. With the argument ``b12``, the same for ``b12/<task>/`` (``--epochs 1``, B = 12,
commit 87d5659) against one untuned training of 12 epochs, with no ``before`` run. With
``b12_no_early``, ``b12_no_early/<task>/`` (B = 12 without the early explorer over 1-epoch rungs,
``explore_short=False``, commit 6c4098e; only the tuner ran) against ``b12/<task>/`` as
``before``, and the untuned trainings of ``b12/``; on MNIST-500, Fashion-MNIST and the MLP
with seeds 5-14 of both policies (CIFAR-10: 5-9) from
``b12_no_early/more_seeds/{now,before}/<task>/``:

    cd benchmarks/tuner/results/small_budget && python small_budget_table.py > table.md
    python small_budget_table.py b12 > table_b12.md
    python small_budget_table.py b12_no_early > table_b12_no_early.md
"""

from __future__ import annotations

import json
from pathlib import Path
import statistics
import sys


HERE = Path(__file__).resolve().parent
TASKS = {
    "mnist": ("MNIST-500 (thesis CNN, SGD)", "fixed-0.01"),
    "fashion": ("Fashion-MNIST 1,000 (thesis CNN, SGD)", "fixed-0.01"),
    "own": ("own trainer (AdamW MLP), Fashion-MNIST 1,000", "untuned"),
    "cifar10": ("CIFAR-10 5,000 (Keras CNN, SGD)", "fixed-0.01"),
}


def _cells(path: Path) -> dict[tuple[str, int], dict]:
    cells = {}
    for line in path.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            cells[(r["arm"], r["seed"])] = r
    return cells


def _accuracy(cell: dict, epochs: str | None = None) -> float:
    """Test accuracy (%) after ``epochs`` (default: the cell's last test)."""
    tests = cell["test"]
    key = epochs if epochs is not None else max(tests, key=int)
    return 100.0 * tests[key]["accuracy"]


def _signed(x: float) -> str:
    return f"{x:+.1f}"


def main(argv: list[str]) -> None:
    """B = 24 (no argument): ``race_share/`` against ``before/``; ``b12``: ``b12/`` at B = 12."""
    mode = argv[0] if argv else None
    if mode not in (None, "b12", "b12_no_early"):
        raise SystemExit(f"unknown mode {mode!r}: give none, 'b12' or 'b12_no_early'")
    budget = 24 if mode is None else 12
    new_dir = HERE / (mode or "race_share")
    before_dir = {None: "before", "b12": None, "b12_no_early": "b12"}[mode]
    name = "no early explorer" if mode == "b12_no_early" else "race_share"
    print(
        f"| task | seeds | before % | {name} % | untuned, {budget} epochs % | {name} - "
        f"before (pts, W/T/L) | {name} - untuned (pts, W/T/L) | final model's epochs "
        "(before -> now) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for task, (label, untuned) in TASKS.items():
        new = _cells(new_dir / task / "peers.jsonl")
        before = HERE / str(before_dir) / task / "peers.jsonl"
        old = _cells(before) if before_dir and before.exists() else {}
        more = HERE / "b12_no_early" / "more_seeds"
        if mode == "b12_no_early" and (more / "now" / task / "peers.jsonl").exists():
            # seeds 5-14 (CIFAR-10: 5-9) of both policies (the one before from commit 1951556,
            # with its untuned trainings)
            new.update(_cells(more / "now" / task / "peers.jsonl"))
            old.update(_cells(more / "before" / task / "peers.jsonl"))
        if (untuned, 0) not in new:  # the tuner alone ran: the untuned cells of `before`
            new.update({k: v for k, v in old.items() if k[0] == untuned})
        seeds = sorted(
            s for arm, s in new if arm == "pe-pop" and (not old or ("pe-pop", s) in old)
        )
        a = [_accuracy(new[("pe-pop", s)]) for s in seeds]
        u = [_accuracy(new[(untuned, s)], str(budget)) for s in seeds]

        def wtl(x: list[float], y: list[float]) -> str:
            w = sum(p > q for p, q in zip(x, y))
            t = sum(p == q for p, q in zip(x, y))
            return f"{w}/{t}/{len(x) - w - t}"

        d_un = statistics.median(p - q for p, q in zip(a, u))
        epochs_new = sorted({new[("pe-pop", s)]["epochs"] for s in seeds})
        if old:
            b = [_accuracy(old[("pe-pop", s)]) for s in seeds]
            d_old = statistics.median(p - q for p, q in zip(a, b))
            epochs_old = sorted({old[("pe-pop", s)]["epochs"] for s in seeds})
            before_cells = (
                f"{statistics.median(b):.1f}",
                f"{_signed(d_old)} ({wtl(a, b)})",
                f"{epochs_old} -> {epochs_new}",
            )
        else:
            before_cells = ("-", "-", f"- -> {epochs_new}")
        print(
            f"| {label} | {len(seeds)} | {before_cells[0]} | {statistics.median(a):.1f} "
            f"| {statistics.median(u):.1f} | {before_cells[1]} | {_signed(d_un)} "
            f"({wtl(a, u)}) | {before_cells[2]} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
