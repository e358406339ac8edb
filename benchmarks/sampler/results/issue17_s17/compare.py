"""The acceptance figures of issue 17's runs here, and their paired win rate against the default.

Run from the repository root, after the runs' ``--summary-only`` summaries (README)::

    python benchmarks/sampler/results/issue17_s17/compare.py default half d d6 ten6 ...

``--dir NAME`` first reads the variants from ``benchmarks/sampler/results/NAME/`` instead of
this folder (``issue17_marg`` uses it).

For each name and seed set (``<name>``: seeds 0-9, ``<name>_s10``: 10-19, ``<name>_s20``:
20-29, ``<name>_s30``: 30-39; ``default`` is ``issue17_full``, ``issue17_h6/base_s10``,
``issue17_h6/base_s20``, ``issue17_s17/base_s30``) one
line: win rates of ``student_t`` at trials 12/25/50 against GPSampler(n_startup_trials=2),
GPSampler() and TPE, the lowest problem at trial 12 against GPSampler(2), the worst
median-regret ratio at trial 50 against each, the Ackley-6 ratio against GPSampler(), and the
paired win rate against the default at 12/25/50 (the same problem and seed; ties 1/2). Seeds
20-39 have no Optuna cells: the paired figures only.
"""

from __future__ import annotations

import json
from pathlib import Path
import sys
from typing import Any

from benchmarks.sampler.regret import load_records
from benchmarks.sampler.regret import win_rate


RESULTS = Path("benchmarks/sampler/results")
BASE = {
    "": RESULTS / "issue17_full",
    "_s10": RESULTS / "issue17_h6/base_s10",
    "_s20": RESULTS / "issue17_h6/base_s20",
    "_s30": RESULTS / "issue17_s17/base_s30",
}
SEEDS = {"": "0-9", "_s10": "10-19", "_s20": "20-29", "_s30": "30-39"}
CHECKPOINTS = (12, 25, 50)
#: The folder under ``RESULTS`` that holds the variants (``--dir``).
VARIANTS = "issue17_s17"


def _cells(folder: Path) -> dict[tuple[str, int], dict[str, Any]]:
    return {
        (r["problem"], r["seed"]): r for r in load_records(folder) if r["sampler"] == "student_t"
    }


def paired(folder: Path, base: Path) -> tuple[int, list[float]]:
    """Number of shared (problem, seed) pairs and the win rate at each checkpoint."""
    a, b = _cells(folder), _cells(base)
    keys = sorted(set(a) & set(b))
    rates = [
        win_rate([a[k]["regret"][c - 1] for k in keys], [b[k]["regret"][c - 1] for k in keys])
        for c in CHECKPOINTS
    ]
    return len(keys), rates


def line(name: str, suffix: str) -> str | None:
    """One seed set's figures (``None`` if the run has no cells)."""
    folder = BASE[suffix] if name == "default" else RESULTS / VARIANTS / (name + suffix)
    if not (folder / "cells.jsonl").exists():
        return None
    row = [f"{name} seeds {SEEDS[suffix]}"]
    summary_path = folder / "summary.json"
    summary: dict[str, Any] = {"wins": [], "regret_ratios": []}
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
    wins = {(w["other"], w["trial"]): w for w in summary["wins"]}
    if not wins:  # no Optuna cells for these seeds: the paired figures only
        summary["regret_ratios"] = []
    for other in ("gp_startup2", "gp", "tpe") if wins else ():
        text = "/".join(f"{wins[(other, c)]['win_rate']:.3f}" for c in CHECKPOINTS)
        row.append(f"vs {other} {text}")
    if wins:
        per_problem = wins[("gp_startup2", 12)]["per_problem"]
        low = min(per_problem, key=per_problem.get)
        row.append(f"lowest @12 vs gp_startup2 {per_problem[low]:.2f} ({low})")
    for ratio in summary["regret_ratios"]:
        if ratio["trial"] == 50:
            pp = ratio["per_problem"]
            worst = max(pp, key=pp.get)
            row.append(f"worst vs {ratio['other']} {pp[worst]:.2f} ({worst})")
            if ratio["other"] == "gp":
                row.append(f"ackley6 vs gp {pp['ackley6']:.2f}")
    if name != "default":
        n, rates = paired(folder, BASE[suffix])
        row.append(f"vs default ({n} pairs) " + "/".join(f"{r:.3f}" for r in rates))
    return " | ".join(row)


def main(names: list[str]) -> None:
    """Print the lines of ``names``."""
    for name in names:
        for suffix in BASE:
            text = line(name, suffix)
            if text is not None:
                print(text)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--dir"]:
        VARIANTS, args = args[1], args[2:]
    main(args)
