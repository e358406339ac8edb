"""Paired test accuracies of ``nd.jsonl`` against ``base.jsonl`` (README)::

python benchmarks/tuner/results/nondeterministic/paired.py
"""

from __future__ import annotations

from collections import defaultdict
import json
from pathlib import Path
import statistics


HERE = Path(__file__).parent


def _accuracies(name: str) -> dict[tuple[str, str, int], float]:
    out = {}
    for line in (HERE / name).read_text().splitlines():
        cell = json.loads(line)
        test = cell["test"]
        out[(cell["dataset"], cell["arm"], cell["seed"])] = (
            100.0 * test[max(test, key=int)]["accuracy"]
        )
    return out


def main() -> None:
    """Print one row per task and arm: medians, the median paired difference, W/T/L."""
    base, nd = _accuracies("base.jsonl"), _accuracies("nd.jsonl")
    pairs: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for key in sorted(set(base) & set(nd)):
        pairs[key[:2]].append((base[key], nd[key]))
    print("| task | arm | seeds | deterministic=True % | False % | difference (pts, W/T/L) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for (task, arm), rows in sorted(pairs.items()):
        diff = [n - b for b, n in rows]
        wtl = f"{sum(d > 0 for d in diff)}/{sum(d == 0 for d in diff)}/{sum(d < 0 for d in diff)}"
        print(
            f"| {task} | `{arm}` | {len(rows)} | {statistics.median(b for b, _ in rows):.1f} | "
            f"{statistics.median(n for _, n in rows):.1f} | "
            f"{statistics.median(diff):+.1f} ({wtl}) |"
        )


if __name__ == "__main__":
    main()
