"""Paired test accuracies of ``nd.jsonl`` against ``base.jsonl`` (README)::

python benchmarks/tuner/results/nondeterministic/paired.py
"""

from __future__ import annotations

from collections import defaultdict
import json
from pathlib import Path
import statistics

from benchmarks.readme_tables import final_test
from benchmarks.readme_tables import paired_difference


HERE = Path(__file__).parent


def _accuracies(name: str) -> dict[tuple[str, str], dict[int, float]]:
    """Final test accuracy (a fraction) by (task, arm), then by seed."""
    out: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    for line in (HERE / name).read_text().splitlines():
        cell = json.loads(line)
        accuracy = final_test(cell)
        if accuracy is not None:
            out[(cell["dataset"], cell["arm"])][int(cell["seed"])] = float(accuracy)
    return out


def main() -> None:
    """Print one row per task and arm: medians, the median paired difference, W/T/L."""
    base, nd = _accuracies("base.jsonl"), _accuracies("nd.jsonl")
    print("| task | arm | seeds | deterministic=True % | False % | difference (pts, W/T/L) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for task, arm in sorted(set(base) & set(nd)):
        b, n = base[(task, arm)], nd[(task, arm)]
        seeds = sorted(set(b) & set(n))
        diff, wtl = paired_difference(n, b)
        print(
            f"| {task} | `{arm}` | {len(seeds)} | "
            f"{100 * statistics.median(b[s] for s in seeds):.1f} | "
            f"{100 * statistics.median(n[s] for s in seeds):.1f} | {diff:+.1f} ({wtl}) |"
        )


if __name__ == "__main__":
    main()
