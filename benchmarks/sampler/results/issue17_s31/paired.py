"""Paired win rates of a variant's ``student_t`` cells (lower regret; ties 1/2) against the
default's cells and Optuna's samplers on the same problems and seeds.

    python benchmarks/sampler/results/issue17_s31/paired.py 0 <variant>_s0/cells.jsonl
    python benchmarks/sampler/results/issue17_s31/paired.py 10 <variant>_s10/cells.jsonl
    python benchmarks/sampler/results/issue17_s31/paired.py 10 <noisy cells> \
        --default base_noisy_s10/cells.jsonl --optuna gp2_noisy_s10/cells.jsonl

Seeds 0-9 compare with ``../issue17_repeats`` (the default; ``../issue17_full`` for the cells it
left unchanged) and Optuna's cells of ``../issue17_full`` (``../issue17_noise`` for the noisy
problems); seeds 10-19 with
``../issue17_reflect/base_s10`` and ``../issue17_h6/optuna_s10``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

from benchmarks.sampler.regret import load_records
from benchmarks.sampler.regret import win_rate


RESULTS = Path(__file__).resolve().parent.parent
OPTUNA = {0: ["issue17_full", "issue17_noise"], 10: ["issue17_h6/optuna_s10"]}
DEFAULT = {0: ["issue17_repeats", "issue17_full"], 10: ["issue17_reflect/base_s10"]}


def load(paths: list[Path]) -> dict[tuple[str, str, int], dict]:
    """The cells of the ``cells.jsonl`` files, with their regret curves; the first-named file
    wins a duplicate (as ``regret.py --merge`` does)."""
    cells: dict[tuple[str, str, int], dict] = {}
    for path in paths:
        for cell in load_records(path.parent):
            cells.setdefault((cell["problem"], cell["sampler"], cell["seed"]), cell)
    return cells


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("offset", type=int, help="the first seed of the set (0, 10, 20)")
    parser.add_argument("cells", nargs="+", type=Path, help="the variant's cells.jsonl")
    parser.add_argument("--default", nargs="+", type=Path, help="the default's cells instead")
    parser.add_argument("--optuna", nargs="+", type=Path, help="Optuna's cells instead")
    args = parser.parse_args(argv)
    if args.offset not in DEFAULT and not args.default:
        parser.error(f"seeds from {args.offset}: give --default (and --optuna, if there are any)")
    variant = {k: c for k, c in load(args.cells).items() if k[1] == "student_t"}
    default = load(args.default or [RESULTS / r / "cells.jsonl" for r in DEFAULT[args.offset]])
    optuna = load(
        args.optuna or [RESULTS / r / "cells.jsonl" for r in OPTUNA.get(args.offset, [])]
    )
    for name, source in [
        ("default", default),
        ("gp_startup2", optuna),
        ("gp", optuna),
        ("tpe", optuna),
    ]:
        ref = "student_t" if name == "default" else name
        keys = [(problem, seed) for problem, _, seed in variant if (problem, ref, seed) in source]
        if not keys:
            continue
        row = []
        for t in (12, 25, 50):
            ours = [variant[(p, "student_t", s)]["regret"][t - 1] for p, s in keys]
            theirs = [source[(p, ref, s)]["regret"][t - 1] for p, s in keys]
            row.append(f"@{t} {win_rate(ours, theirs):.3f}")
        print(f"{name:12s} pairs={len(keys):3d} " + " ".join(row))


if __name__ == "__main__":
    main(sys.argv[1:])
