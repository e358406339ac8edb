"""The README's tables of ``average_window=None`` (the whole lineage averaged) against the
default window of 20 states, from the stored cells (no run).

    PYTHONPATH=$PWD python benchmarks/tuner/results/average_window/table.py

``whole.jsonl``: the default policy serially (``pe-pop``, ``B = 120``), each cell tested with
the last state (``test``), the greedy average of the lineage's last 20 states
(``test_average``, the default final model) and of all its states (``test_average_all``).
PB2 and PBT: ``../peers/policies.jsonl`` (same tasks, seeds and machine).
"""

from __future__ import annotations

import json
from pathlib import Path
import statistics

from benchmarks.readme_tables import final_test
from benchmarks.readme_tables import paired_difference


HERE = Path(__file__).resolve().parent
TASKS = {
    "own-fashion": "own trainer (AdamW MLP), Fashion-MNIST 1,000",
    "mnist": "MNIST-500",
    "fashion-mnist": "Fashion-MNIST 1,000",
    "cifar10": "CIFAR-10 5,000",
}


def _acc(test: dict) -> float:
    """Test accuracy (a fraction) of a per-epoch cell's ``test``-like record."""
    value = final_test({"test": test})
    assert value is not None
    return float(value)


def _paired(a: dict[int, float], b: dict[int, float]) -> str:
    diff, wtl = paired_difference(a, b)
    return f"{diff:+.1f} ({wtl})"


def main() -> None:
    cells = [json.loads(line) for line in (HERE / "whole.jsonl").read_text().splitlines()]
    peers = [
        json.loads(line)
        for line in (HERE.parent / "peers" / "policies.jsonl").read_text().splitlines()
    ]
    print(
        "| task | seeds | last state % | 20 states % | all states % | all vs 20 (pts, W/T/L) "
        "| all vs PB2 | all vs PBT |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    per_seed = []
    for task, name in TASKS.items():
        rows = {c["seed"]: c for c in cells if c["dataset"] == task}
        if not rows:
            continue
        last = {s: _acc(c["test"]) for s, c in rows.items()}
        window = {s: _acc(c["test_average"]) for s, c in rows.items()}
        whole = {s: _acc(c["test_average_all"]) for s, c in rows.items()}
        other = {
            arm: {
                c["seed"]: _acc(c["test"])
                for c in peers
                if c["dataset"] == task and c["arm"] == arm
            }
            for arm in ("pb2", "pbt")
        }
        cols = [
            name,
            str(len(rows)),
            f"{100 * statistics.median(last.values()):.1f}",
            f"{100 * statistics.median(window.values()):.1f}",
            f"{100 * statistics.median(whole.values()):.1f}",
            _paired(whole, window),
            _paired(whole, other["pb2"]) if set(other["pb2"]) & set(whole) else "-",
            _paired(whole, other["pbt"]) if set(other["pbt"]) & set(whole) else "-",
        ]
        print("| " + " | ".join(cols) + " |")
        for s in sorted(rows):
            kept = rows[s]["averaged_epochs_all"]
            per_seed.append(
                f"- {name}, seed {s}: {100 * window[s]:.2f} -> {100 * whole[s]:.2f} "
                f"({len(kept)} states kept, the earliest epoch {min(kept)})"
            )
    print("\nPer seed (20 states -> all states, test accuracy %):\n")
    print("\n".join(per_seed))


if __name__ == "__main__":
    main()
