"""Paired win rate of the ``best_*`` cells against the default's stored cells (README).

Run from the repository root::

    python benchmarks/sampler/results/issue17_best_evaluated/paired.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.sampler.regret import load_records
from benchmarks.sampler.regret import win_rate


HERE = Path(__file__).parent
BASE = HERE.parent / "issue17_refit_polish"
PAIRS = (
    ("best_s0", "default_s0"),
    ("best_s10", "default_s10"),
    ("best_s20", "default_s20"),
    ("best_noisy", "default_noisy"),
)


def _cells(folder: Path) -> dict[tuple[str, int], dict[str, Any]]:
    return {
        (r["problem"], r["seed"]): r for r in load_records(folder) if r["sampler"] == "student_t"
    }


def main() -> None:
    """Print, per seed set, the pairs, the identical cells, the win rate at trials 12/25/50
    and the per-problem win rate at trial 50."""
    for variant, base in PAIRS:
        a, b = _cells(HERE / variant), _cells(BASE / base)
        keys = sorted(set(a) & set(b))
        same = sum(a[k]["regret"] == b[k]["regret"] for k in keys)
        rates = [
            win_rate([a[k]["regret"][c - 1] for k in keys], [b[k]["regret"][c - 1] for k in keys])
            for c in (12, 25, 50)
        ]
        print(variant, len(keys), "identical", same, " ".join(f"{r:.3f}" for r in rates))
        problems = sorted({k[0] for k in keys})
        per_problem = {
            p: win_rate(
                [a[k]["regret"][49] for k in keys if k[0] == p],
                [b[k]["regret"][49] for k in keys if k[0] == p],
            )
            for p in problems
        }
        print("   ", " ".join(f"{p}:{v:.2f}" for p, v in per_problem.items()))


if __name__ == "__main__":
    main()
