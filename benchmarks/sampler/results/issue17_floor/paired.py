"""Paired win rates of a variant's cells against the default's stored cells (README).

Run from the repository root::

    python benchmarks/sampler/results/issue17_floor/paired.py VARIANT_DIR BASE_DIR [OPTUNA_DIR]

A folder may name the sampler of its cells as ``FOLDER@SPEC`` (default ``student_t``), e.g.
``heldout/startup3@student_t:n_startup_trials=3``.

Prints the pairs, the identical cells and the win rate at trials 12 / 25 / 50 against the base
(lower regret wins, ties 1/2), the per-problem win rate at trial 50, and, with ``OPTUNA_DIR``
(stored cells of Optuna's samplers on the same seeds), the win rates of the variant and of the
base against ``gp``, ``gp_startup2`` and ``tpe``.
"""

from __future__ import annotations

from pathlib import Path
import sys
from typing import Any

from benchmarks.sampler.regret import load_records
from benchmarks.sampler.regret import win_rate


CHECKPOINTS = (12, 25, 50)


def _cells(folder: str, sampler: str = "student_t") -> dict[tuple[str, int], dict[str, Any]]:
    if "@" in folder:  # FOLDER@SAMPLER: a variant stored under its sampler spec
        folder, sampler = folder.split("@", 1)
    return {
        (r["problem"], r["seed"]): r for r in load_records(Path(folder)) if r["sampler"] == sampler
    }


def _rates(
    a: dict[tuple[str, int], dict[str, Any]], b: dict[tuple[str, int], dict[str, Any]]
) -> tuple[list[tuple[str, int]], str]:
    keys = sorted(set(a) & set(b))
    rates = [
        win_rate([a[k]["regret"][c - 1] for k in keys], [b[k]["regret"][c - 1] for k in keys])
        for c in CHECKPOINTS
    ]
    return keys, " ".join(f"{r:.3f}" for r in rates)


def main(argv: list[str]) -> None:
    """Print the paired win rates (module docstring)."""
    variant, base = _cells(argv[0]), _cells(argv[1])
    keys, rates = _rates(variant, base)
    same = sum(variant[k]["regret"] == base[k]["regret"] for k in keys)
    print(f"vs base: {len(keys)} pairs, {same} identical, @12/25/50 {rates}")
    problems = sorted({k[0] for k in keys})
    per_problem = [
        f"{p}:"
        + format(
            win_rate(
                [variant[k]["regret"][49] for k in keys if k[0] == p],
                [base[k]["regret"][49] for k in keys if k[0] == p],
            ),
            ".2f",
        )
        for p in problems
    ]
    print("  @50 per problem:", " ".join(per_problem))
    if len(argv) > 2:
        for other in ("gp", "gp_startup2", "tpe"):
            cells = _cells(argv[2], other)
            if not cells:  # that sampler was not run in the folder
                continue
            for name, mine in (("variant", variant), ("base", base)):
                pairs, rates = _rates(mine, cells)
                print(f"  {name} vs {other}: {len(pairs)} pairs, @12/25/50 {rates}")


if __name__ == "__main__":
    main(sys.argv[1:])
