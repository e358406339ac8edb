"""Paired win rates of a variant's ``student_t`` cells (lower regret; ties 1/2) against the
default's cells and Optuna's samplers on the same problems and seeds.

    python benchmarks/sampler/results/issue17_s31/paired.py 0 <variant>_s0/cells.jsonl
    python benchmarks/sampler/results/issue17_s31/paired.py 10 <variant>_s10/cells.jsonl

Seeds 0-9 compare with ``../issue17_repeats`` (the default; ``../issue17_full`` for the cells it
left unchanged) and Optuna's cells of ``../issue17_full`` (``../issue17_noise`` for the noisy
problems); seeds 10-19 with
``../issue17_reflect/base_s10`` and ``../issue17_h6/optuna_s10``.
"""

from __future__ import annotations

import json
from pathlib import Path
import sys

from benchmarks.sampler.regret import with_regret


RESULTS = Path(__file__).resolve().parent.parent
OPTUNA = {0: ["issue17_full", "issue17_noise"], 10: ["issue17_h6/optuna_s10"]}
DEFAULT = {0: ["issue17_repeats", "issue17_full"], 10: ["issue17_reflect/base_s10"]}


def load(paths: list[Path], sampler: str | None = None) -> dict[tuple[str, str, int], dict]:
    cells: dict[tuple[str, str, int], dict] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            cell = json.loads(line)
            if sampler is None or cell["sampler"] == sampler:
                cells.setdefault((cell["problem"], cell["sampler"], cell["seed"]), cell)
    return cells


def regret(cell: dict, t: int) -> float:
    """Best-so-far regret after ``t`` trials (noisy problems: of the best trial's true value)."""
    return float(with_regret(cell)["regret"][t - 1])


def main(offset: int, files: list[str]) -> None:
    variant = load([Path(f) for f in files], "student_t")
    default = load([RESULTS / r / "cells.jsonl" for r in DEFAULT[offset]], "student_t")
    optuna = load([RESULTS / r / "cells.jsonl" for r in OPTUNA[offset]])
    for name, ref, source in [
        ("default", "student_t", default),
        ("gp_startup2", "gp_startup2", optuna),
        ("gp", "gp", optuna),
        ("tpe", "tpe", optuna),
    ]:
        row = []
        for t in (12, 25, 50):
            wins, n = 0.0, 0
            for (problem, _, seed), cell in variant.items():
                other = source.get((problem, ref, seed))
                if other is None:
                    continue
                a, b = regret(cell, t), regret(other, t)
                wins += 1.0 if a < b else 0.5 if a == b else 0.0
                n += 1
            row.append(f"@{t} {wins / max(n, 1):.3f}")
        print(f"{name:12s} pairs={n:3d} " + " ".join(row))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
