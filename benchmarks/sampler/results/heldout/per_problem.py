"""Win rates of ``GammaBOSampler()`` against Optuna's samplers, overall and per problem, over the
cells of several folders (README). Run from the repository root::

    python benchmarks/sampler/results/heldout/per_problem.py \
        benchmarks/sampler/results/heldout benchmarks/sampler/results/heldout/s10 > per_problem.md

Pairs are (problem, seed) cells of ``student_t`` and of each other sampler; lower regret wins,
ties count 1/2 (``benchmarks.sampler.regret.win_rate``).
"""

from __future__ import annotations

from pathlib import Path
import sys
from typing import Any

from benchmarks.sampler.regret import load_records
from benchmarks.sampler.regret import win_rate


CHECKPOINTS = (12, 25, 50)
OTHERS = ("gp_startup2", "gp", "tpe")


def _cells(folders: list[str], sampler: str) -> dict[tuple[str, int], dict[str, Any]]:
    out = {}
    for folder in folders:
        for r in load_records(Path(folder)):
            if r["sampler"] == sampler:
                out[(r["problem"], r["seed"])] = r
    return out


def _rate(a: dict[Any, Any], b: dict[Any, Any], keys: list[Any], checkpoint: int) -> float:
    return win_rate(
        [a[k]["regret"][checkpoint - 1] for k in keys],
        [b[k]["regret"][checkpoint - 1] for k in keys],
    )


def main(folders: list[str]) -> None:
    ours = _cells(folders, "student_t")
    print("| against | pairs | " + " | ".join(f"@{c}" for c in CHECKPOINTS) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in CHECKPOINTS) + " |")
    per_problem: dict[str, dict[str, str]] = {}
    for other in OTHERS:
        theirs = _cells(folders, other)
        keys = sorted(set(ours) & set(theirs))
        rates = " | ".join(f"{_rate(ours, theirs, keys, c):.3f}" for c in CHECKPOINTS)
        print(f"| {other} | {len(keys)} | {rates} |")
        for problem in sorted({k[0] for k in keys}):
            kk = [k for k in keys if k[0] == problem]
            per_problem.setdefault(problem, {})[other] = (
                f"{_rate(ours, theirs, kk, 12):.2f} / {_rate(ours, theirs, kk, 50):.2f}"
            )
    print("\nPer problem, trial 12 / trial 50:\n")
    print("| problem | " + " | ".join(OTHERS) + " |")
    print("| --- | " + " | ".join("---" for _ in OTHERS) + " |")
    for problem, row in per_problem.items():
        print(f"| {problem} | " + " | ".join(row.get(o, "-") for o in OTHERS) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
