"""The table of this folder's README, from the stored cells (no run).

    PYTHONPATH=$PWD python benchmarks/tuner/results/heldout_tasks/table.py

``cells.jsonl``: the default policy serially (``pe-pop``, ``B = 120``; its default final
model, the greedy average of the last 20 states, is ``test_average``), one untuned training of
the whole budget (``untuned``: 120 epochs) and Ray Tune's PBT and PB2 (12 members x 10 epochs),
on scikit-learn's digits with the thesis's SGD MLP (``digits``), with the user's AdamW MLP of
``examples/own_training.py`` (``own-digits``) and with the user's GRU of
``examples/own_sequence.py`` (``own-sequence``: AdamW, a cosine over the epochs its ``build``
is given: 90 for the default's final model, 120 for the untuned training, 10 for a member),
and the same GRU on the Fashion-MNIST subset of 1,000 images (``own-sequence-fashion``). The
GRU tasks also have the default 12 at a time (``pe-pop-w12``), in a second table.
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
    "digits": "digits, the thesis's MLP (SGD, lr)",
    "own-digits": "digits, the user's AdamW MLP (lr, weight decay)",
    "own-sequence": "digits rows, the user's GRU (AdamW, cosine; lr, weight decay)",
    "own-sequence-fashion": "Fashion-MNIST 1,000 rows, the same GRU",
}
PEERS = ("untuned", "pbt", "pb2")


def _accuracy(cell: dict[str, Any], at: int | None = None) -> float:
    """The test accuracy of a cell's final model: the serial default's average, else its last
    state (the untuned training's after the whole budget, or after ``at`` epochs: a training of
    its own there, whose cosine anneals over them)."""
    key = "test_average" if cell["arm"] == "pe-pop" else "test"
    if at is not None:
        return float(cell[key][str(at)]["accuracy"])
    value = final_test({"test": cell[key]})
    assert value is not None
    return float(value)


def main() -> None:
    cells = [json.loads(line) for line in (HERE / "cells.jsonl").read_text().splitlines()]
    print("| task | default % | untuned % | PBT % | PB2 % | vs untuned | vs PBT | vs PB2 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for task, name in TASKS.items():
        own = [c for c in cells if c["dataset"] == task]
        by_arm = {
            arm: {c["seed"]: _accuracy(c) for c in own if c["arm"] == arm}
            for arm in ("pe-pop", *PEERS)
        }
        medians = [f"{100 * statistics.median(v.values()):.1f}" for v in by_arm.values()]
        paired = []
        for arm in PEERS:
            diff, wtl = paired_difference(by_arm["pe-pop"], by_arm[arm])
            paired.append(f"{diff:+.1f} ({wtl})")
        print("| " + " | ".join([name, *medians, *paired]) + " |")
    wide = [c for c in cells if c["arm"] == "pe-pop-w12"]
    if not wide:
        return
    print()
    print(
        "| task, 12 at a time | default % | untuned, 10 epochs % | PBT % | PB2 % | vs untuned "
        "| vs PBT | vs PB2 |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for task in [t for t in TASKS if any(c["dataset"] == t for c in wide)]:
        own = [c for c in cells if c["dataset"] == task]
        default = {c["seed"]: _accuracy(c) for c in wide if c["dataset"] == task}
        by_arm = {
            "untuned": {c["seed"]: _accuracy(c, at=10) for c in own if c["arm"] == "untuned"},
            **{
                arm: {c["seed"]: _accuracy(c) for c in own if c["arm"] == arm} for arm in PEERS[1:]
            },
        }
        medians = [
            f"{100 * statistics.median(v.values()):.1f}" for v in (default, *by_arm.values())
        ]
        paired = []
        for arm, other in by_arm.items():
            diff, wtl = paired_difference(default, other)
            paired.append(f"{diff:+.1f} ({wtl})")
        print("| " + " | ".join([TASKS[task], *medians, *paired]) + " |")


if __name__ == "__main__":
    main()
