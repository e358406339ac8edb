"""Paired win rates of the epsilon-greedy variants against the default and Optuna's samplers,
from stored cells (no run): the README's tables.

    PYTHONPATH=$PWD python benchmarks/sampler/results/issue17_epsilon/paired.py

Each row pairs a run of this folder (``epsilon.patch`` with ``OG_EPS``/``OG_EPS_FROM`` set)
with the default's cells on the same problems and seeds (``../issue17_no_repeats/``, the
sampler of commit 9d42a73, which the patched code reproduces without a switch) and with
Optuna's samplers' stored cells. Win rate: lower simple regret, ties 1/2
(``benchmarks.sampler.regret.win_rate``).
"""

from __future__ import annotations

from pathlib import Path
import statistics

from benchmarks.sampler.regret import load_records
from benchmarks.sampler.regret import win_rate


HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent
DEFAULT = "issue17_no_repeats"

#: (name, run in this folder, the default's run, Optuna's samplers' runs)
SETS = [
    ("from trial 13, suite, seeds 0-9", "f12_s0", "suite_s0", ["issue17_full"]),
    ("from trial 13, suite, seeds 10-19", "f12_s10", "suite_s10", ["issue17_h6/optuna_s10"]),
    ("from trial 13, held-out, seeds 0-9", "f12_h0", "heldout_s0", ["heldout"]),
    ("from trial 13, held-out, seeds 10-19", "f12_h10", "heldout_s10", ["heldout/s10"]),
    ("from trial 3, suite, seeds 0-9", "f0_s0", "suite_s0", ["issue17_full"]),
    ("from trial 3, held-out, seeds 0-9", "f0_h0", "heldout_s0", ["heldout"]),
]
OPTUNA = ["gp", "gp_startup2", "tpe"]


def _records(path: Path, sampler: str = "student_t") -> dict[tuple[str, int], dict]:
    return {(r["problem"], r["seed"]): r for r in load_records(path) if r["sampler"] == sampler}


def _rate(a: dict, b: dict, trial: int, keys: list | None = None) -> float:
    keys = sorted(set(a) & set(b)) if keys is None else keys
    return win_rate(
        [a[k]["regret"][trial - 1] for k in keys], [b[k]["regret"][trial - 1] for k in keys]
    )


def _worst_ratio(a: dict, b: dict) -> str:
    """The problem whose median regret at trial 50 is highest relative to ``b``'s."""
    worst = (0.0, "-")
    for problem in sorted({k[0] for k in a}):
        keys = [k for k in a if k[0] == problem and k in b]
        ours = statistics.median(a[k]["regret"][49] for k in keys)
        theirs = statistics.median(b[k]["regret"][49] for k in keys)
        if theirs > 0 and ours / theirs > worst[0]:
            worst = (ours / theirs, problem)
    return f"{worst[0]:.2f}x ({worst[1]})"


def main() -> None:
    print(
        "| set | pairs | vs default @12 / @25 / @50 | vs `GPSampler(n_startup_trials=2)` @12 "
        "| vs `GPSampler()` @50 | vs TPE @50 | worst ratio vs `GPSampler()` @50 |"
    )
    print("| --- | ---: | --- | --- | --- | --- | --- |")
    lines = []
    for name, run, default_run, optuna_runs in SETS:
        new = _records(HERE / run)
        default = _records(RESULTS / DEFAULT / default_run)
        other: dict[str, dict] = {s: {} for s in OPTUNA}
        for o in optuna_runs:
            for s in OPTUNA:
                other[s].update(_records(RESULTS / o, s))
        keys = sorted(set(new) & set(default))
        rates = " / ".join(f"{_rate(new, default, t):.3f}" for t in (12, 25, 50))
        cols = [name, str(len(keys)), rates]
        for s, t in (("gp_startup2", 12), ("gp", 50), ("tpe", 50)):
            cols.append(f"{_rate(new, other[s], t):.3f} ({_rate(default, other[s], t):.3f})")
        cols.append(f"{_worst_ratio(new, other['gp'])} ({_worst_ratio(default, other['gp'])})")
        print("| " + " | ".join(cols) + " |")
        per = ", ".join(
            f"{p} {_rate(new, default, 50, [k for k in keys if k[0] == p]):.2f}"
            for p in sorted({k[0] for k in keys})
        )
        lines.append(f"- {name}: {per}")
    print("\nPer problem at trial 50, win rate against the default:\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
