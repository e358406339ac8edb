"""Per-problem paired win rate of a variant's ``student_t`` cells against the default's.

    PYTHONPATH=$PWD python benchmarks/sampler/results/issue17_prior/per_problem.py v05

Reads ``<variant>``, ``<variant>_s10`` and ``<variant>_s20`` in this folder (those present) and
the default's ``../issue17_refit_polish/default_s0``, ``_s10``, ``_s20``; prints, per problem, the
win rate (lower regret; ties 1/2) at trials 12, 25 and 50 over the seeds both have.
"""

from __future__ import annotations

from pathlib import Path
import sys

from benchmarks.sampler.regret import load_records
from benchmarks.sampler.regret import win_rate


HERE = Path(__file__).resolve().parent
DEFAULT = HERE.parent / "issue17_refit_polish"


def _curves(folder: Path) -> dict[tuple[str, int], list[float]]:
    if not (folder / "cells.jsonl").exists():
        return {}
    return {
        (r["problem"], r["seed"]): r["regret"]
        for r in load_records(folder)
        if r["sampler"] == "student_t"
    }


def main(variant: str) -> None:
    new: dict[tuple[str, int], list[float]] = {}
    old: dict[tuple[str, int], list[float]] = {}
    for offset, suffix in ((0, ""), (10, "_s10"), (20, "_s20")):
        new.update(_curves(HERE / f"{variant}{suffix}"))
        old.update(_curves(DEFAULT / f"default_s{offset}"))
    for problem in sorted({p for p, _ in new}):
        keys = [k for k in new if k[0] == problem and k in old]
        rates = " ".join(
            f"@{c} {win_rate([new[k][c - 1] for k in keys], [old[k][c - 1] for k in keys]):.2f}"
            for c in (12, 25, 50)
        )
        print(f"{problem:20s} pairs={len(keys)} {rates}")


if __name__ == "__main__":
    main(sys.argv[1])
