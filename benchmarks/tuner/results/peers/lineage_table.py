"""The final model's lineage against the adopted state of each epoch (round).

Reads the reruns of ``pe-pop-w12`` (12 at a time; ``lineage.jsonl``, ``lineage_cifar.jsonl``)
and of ``pe-pop`` (serial; ``lineage_serial.jsonl``): the same runs as ``policies.jsonl``'s
cells, which they reproduce to the last digit of the test accuracy, recorded with the
``adopted`` field. Prints, per arm, task and seed, how often each sequence changes its learning
rate, the longest stretch of epochs it holds one, and the epochs where they differ:

    cd benchmarks/tuner/results/peers && python lineage_table.py > lineage.md
"""

from __future__ import annotations

import json
from pathlib import Path


HERE = Path(__file__).resolve().parent


def _runs(rates: list[float]) -> tuple[int, int]:
    """(changes of rate, longest run of one rate) of a sequence."""
    changes = sum(1 for a, b in zip(rates, rates[1:]) if a != b)
    longest = run = 1
    for a, b in zip(rates, rates[1:]):
        run = run + 1 if a == b else 1
        longest = max(longest, run)
    return changes, longest


def main() -> None:
    stored = {}
    for line in (HERE / "policies.jsonl").read_text().splitlines():
        cell = json.loads(line)
        stored[cell["key"]] = cell
    print("# The final model's lineage against each epoch's adopted state\n")
    print(__doc__.split("\n\n")[1].replace("\n", " ").strip() + "\n")
    print(
        "| arm | task | seed | test % (rerun / stored) | adopted: changes, longest hold | "
        "lineage: changes, longest hold | epochs where they differ | lineage's learning rates |"
    )
    print("| --- | --- | ---: | --- | --- | --- | --- | --- |")
    for name in sorted(HERE.glob("lineage*.jsonl")):
        for line in name.read_text().splitlines():
            cell = json.loads(line)
            old = stored[cell["key"]]
            test = next(iter(cell["test"].values()))["accuracy"] * 100
            test_old = next(iter(old["test"].values()))["accuracy"] * 100
            adopted = [e["lr"] for e in cell["adopted"]]
            lineage = [e["lr"] for e in cell["schedule"]]
            assert [e["lr"] for e in old["schedule"]] == adopted, cell["key"]
            a, b = _runs(adopted), _runs(lineage)
            differ = [
                str(x["epoch"])
                for x, y in zip(cell["adopted"], cell["schedule"])
                if (x["lr"], x["value"]) != (y["lr"], y["value"])
            ]
            rates = ", ".join(f"{r:.3g}" for r in lineage) if len(lineage) <= 12 else "-"
            print(
                f"| {cell['arm']} | {cell['dataset']} | {cell['seed']} | {test:.2f} / "
                f"{test_old:.2f} | {a[0]}, {a[1]} | {b[0]}, {b[1]} | {', '.join(differ)} | "
                f"{rates} |"
            )


if __name__ == "__main__":
    main()
