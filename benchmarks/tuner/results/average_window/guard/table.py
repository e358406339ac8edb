"""The table of this folder's README, from the stored cells (no run).

    PYTHONPATH=$PWD python benchmarks/tuner/results/average_window/guard/table.py

``cells.jsonl``: the default policy serially (``pe-pop``, ``B = 120``), each run's final model
chosen five ways after it finished (validation passes only): the last state (``test``), the
greedy average of the lineage's last 20 states (``test_average``, the default), of all its
states (``test_average_all``, ``average_window=None``), and the same two with the accuracy
guard of ``guard.patch`` (``test_guard_all``, ``test_guard_20``): a state joins the average
only where the validation accuracy does not fall either. PB2: ``../../peers/policies.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path
import statistics

from benchmarks.tuner.results.average_window.table import _acc
from benchmarks.tuner.results.average_window.table import _paired
from benchmarks.tuner.results.average_window.table import TASKS


HERE = Path(__file__).resolve().parent
RULES = ("test_average", "test_average_all", "test_guard_all", "test_guard_20")


def main() -> None:
    cells = [json.loads(line) for line in (HERE / "cells.jsonl").read_text().splitlines()]
    peers = (HERE.parent.parent / "peers" / "policies.jsonl").read_text().splitlines()
    pb2_cells = [json.loads(line) for line in peers]
    print(
        "| task | seeds | 20 states % | all % | all, guarded % | 20, guarded % "
        "| all vs 20 | all, guarded vs 20 | 20, guarded vs 20 | all, guarded vs PB2 |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for task, name in TASKS.items():
        rows = {c["seed"]: c for c in cells if c["dataset"] == task}
        if not rows:
            continue
        acc = {rule: {s: _acc(c[rule]) for s, c in rows.items()} for rule in RULES}
        pb2 = {
            c["seed"]: _acc(c["test"])
            for c in pb2_cells
            if c["dataset"] == task and c["arm"] == "pb2"
        }
        cols = [
            name,
            str(len(rows)),
            *(f"{100 * statistics.median(acc[rule].values()):.1f}" for rule in RULES),
            *(_paired(acc[rule], acc["test_average"]) for rule in RULES[1:]),
            _paired(acc["test_guard_all"], pb2),
        ]
        print("| " + " | ".join(cols) + " |")


if __name__ == "__main__":
    main()
