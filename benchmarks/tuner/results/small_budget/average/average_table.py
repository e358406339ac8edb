"""The default final model at a small budget: the average of the final lineage's last states
against the last state, in the same serial runs (README section "The default final model").

Reads the cells of ``benchmarks.tuner.peers --arms pe-pop --epochs 2`` (B = 24) and
``--epochs 1`` (B = 12) in this folder (``<task>_b24.jsonl``, ``<task>_b12.jsonl``); each cell
holds the run's last state's test accuracy (``test``) and that of the average of its lineage's
last states (``test_average``: the same run called again with ``final_model="average"``,
nothing trained), so each pair is one run. Prints, per budget and task, the medians, the paired
difference (points, W/T/L) and the number of states the averages kept::

    python benchmarks/tuner/results/small_budget/average/average_table.py > \\
        benchmarks/tuner/results/small_budget/average/table.md
"""

from __future__ import annotations

import json
from pathlib import Path
import statistics
from typing import Any

from benchmarks.readme_tables import final_test
from benchmarks.readme_tables import paired_difference


HERE = Path(__file__).resolve().parent
TASKS = {
    "mnist": "MNIST-500 (thesis CNN, SGD)",
    "fashion-mnist": "Fashion-MNIST 1,000 (thesis CNN, SGD)",
    "own-fashion": "own trainer (AdamW MLP), Fashion-MNIST 1,000",
    "cifar10": "CIFAR-10 5,000 (Keras CNN, SGD)",
}


def _tests(cells: list[dict[str, Any]], key: str) -> dict[int, float]:
    """Test accuracy by seed of the state each cell tested under ``key``."""
    out = {}
    for c in cells:
        value = final_test({**c, "test": c[key]})
        if value is not None:
            out[int(c["seed"])] = float(value)
    return out


def main() -> None:
    """Print the table (module docstring)."""
    print(
        "| budget | task | seeds | last state % | average % | average - last (pts, W/T/L) "
        "| states kept (median) |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for budget in (24, 12):
        for task, label in TASKS.items():
            path = HERE / f"{task}_b{budget}.jsonl"
            if not path.exists():
                continue
            cells = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            cells = [c for c in cells if c.get("test") and c.get("test_average")]
            last = _tests(cells, "test")
            average = _tests(cells, "test_average")
            diff, wtl = paired_difference(average, last)
            kept = statistics.median(len(c.get("averaged_epochs") or [1]) for c in cells)
            medians = [100 * statistics.median(d.values()) for d in (last, average)]
            print(
                f"| {budget} | {label} | {len(cells)} | {medians[0]:.1f} | {medians[1]:.1f} "
                f"| {diff:+.1f} ({wtl}) | {kept:g} |"
            )


if __name__ == "__main__":
    main()
