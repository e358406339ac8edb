"""Compose the cells of a rule "start-up count by dimension" from measured runs.

A cell depends only on (problem, seed, start-up count): the runs here reproduce the default's
cells bit for bit on the problems whose start-up count they leave at 2 (thesis1d, branin,
schwefel2). So a rule's cells are, problem by problem, those of a run with the count the rule
gives for that dimension. Run from the repository root::

    python benchmarks/sampler/results/issue17_s17/composite.py NAME PART [PART ...]

with ``PART = FOLDER,LABEL,MIN_DIM,MAX_DIM``: ``FOLDER`` relative to ``benchmarks/sampler/
results``, whose cells labelled ``LABEL`` are taken for problems with ``MIN_DIM <= d <=
MAX_DIM`` (the first matching part that has the cell wins); every other problem keeps the
default's cell. For each seed set (``""``: seeds 0-9 from ``issue17_full``, ``_s10``: 10-19
from ``issue17_h6/base_s10``, ``_s20``: 20-29 from ``issue17_h6/base_s20``) a cell is looked
up in ``FOLDER<suffix>``, then in ``FOLDER``; the composite goes to
``issue17_s17/NAME<suffix>``, relabelled ``student_t``.
Examples: ``d6 issue17_s17/d,student_t,6,99`` (``n_startup_trials = d`` for d >= 6, else 2),
``cap6 issue17_s17/cap6_high,student_t,7,99 issue17_s17/d,student_t,1,6``.
"""

from __future__ import annotations

import json
from pathlib import Path
import sys
from typing import Any

from benchmarks.sampler.problems import get_problem


RESULTS = Path("benchmarks/sampler/results")
BASE = {
    "": RESULTS / "issue17_full",
    "_s10": RESULTS / "issue17_h6/base_s10",
    "_s20": RESULTS / "issue17_h6/base_s20",
}
Part = tuple[str, str, int, int]


def _cells(folder: Path, label: str) -> dict[tuple[str, int], dict[str, Any]]:
    path = folder / "cells.jsonl"
    if not path.exists():
        return {}
    records = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {(r["problem"], r["seed"]): r for r in records if r["sampler"] == label}


def compose(name: str, parts: list[Part]) -> None:
    """Write ``issue17_s17/<name><suffix>`` for every seed set whose cells are all found.

    Args:
        name: Name of the composite run.
        parts: ``(folder, label, min_dim, max_dim)``; the first matching part that has the
            cell wins.
    """
    for suffix, base in BASE.items():
        default = _cells(base, "student_t")
        sources = [
            ({**_cells(RESULTS / f, label), **_cells(RESULTS / (f + suffix), label)}, lo, hi)
            for f, label, lo, hi in parts
        ]
        records = []
        for key, record in default.items():
            dim = get_problem(key[0]).dim
            matching = [cells for cells, lo, hi in sources if lo <= dim <= hi]
            found = [cells[key] for cells in matching if key in cells]
            if matching and not found:
                break
            records.append({**(found[0] if found else record), "sampler": "student_t"})
        else:
            out = RESULTS / "issue17_s17" / (name + suffix)
            out.mkdir(parents=True, exist_ok=True)
            text = "".join(json.dumps(r) + "\n" for r in records)
            (out / "cells.jsonl").write_text(text)
            note = f"composite of {parts}, other problems from {base.relative_to(RESULTS)}"
            (out / "meta.json").write_text(json.dumps({"commands": [note]}, indent=1))
            print(out, len(records))


def main(argv: list[str]) -> None:
    """Parse ``NAME PART [PART ...]`` and compose."""
    parts: list[Part] = []
    for spec in argv[1:]:
        folder, label, lo, hi = spec.split(",")
        parts.append((folder, label, int(lo), int(hi)))
    compose(argv[0], parts)


if __name__ == "__main__":
    main(sys.argv[1:])
