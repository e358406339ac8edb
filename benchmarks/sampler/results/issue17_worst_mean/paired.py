"""Paired win rates of the worst-observed mean against the mean of before and Optuna's samplers,
from stored cells (no run): the README's tables.

    PYTHONPATH=$PWD python benchmarks/sampler/results/issue17_worst_mean/paired.py

Each row pairs this folder's cells (``GammaBOSampler()`` with ``mean="worst"``) with the stored
cells of the sampler before it (the GLS constant mean; same problems and seeds) and with Optuna's
samplers' stored cells. Win rate: lower simple regret, ties 1/2
(``benchmarks.sampler.regret.win_rate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
import statistics

from benchmarks.sampler.regret import load_records
from benchmarks.sampler.regret import win_rate


HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent

#: (name, this folder's run, the default before, Optuna's samplers' runs)
SETS = [
    ("suite, seeds 0-9", "suite_s0", "issue17_warp_scale/suite_s0", ["issue17_full"]),
    (
        "suite, seeds 10-19",
        "suite_s10",
        "issue17_warp_scale/suite_s10",
        ["issue17_h6/optuna_s10"],
    ),
    ("held-out, seeds 0-9", "heldout_s0", "issue17_warp_scale/heldout_s0", ["heldout"]),
    ("held-out, seeds 10-19", "heldout_s10", "issue17_warp_scale/heldout_s10", ["heldout/s10"]),
    ("noisy, seeds 0-9", "noisy_s0", "issue17_warp_scale/noisy_s0", ["issue17_noise"]),
    (
        "noisy, seeds 10-19",
        "noisy_s10",
        "issue17_warp_scale/noisy_s10",
        ["issue17_s31/gp2_noisy_s10"],
    ),
    (
        "noisy, seeds 20-29",
        "noisy_s20",
        "issue17_warp_scale/noisy_s20",
        ["issue17_s31/gp2_noisy_s20"],
    ),
    (
        "noisy, seeds 30-49",
        "noisy_s30",
        "issue17_worst_mean/noisy_s30_before",
        ["issue17_worst_mean/noisy_s30_gp2"],
    ),
    (
        "held-out noisy tables, seeds 0-19",
        "heldout_noisy",
        "issue17_warp_scale/heldout_noisy",
        ["heldout/noisy"],
    ),
]
OPTUNA = ["gp", "gp_startup2", "tpe"]


def _cells(run: str, sampler: str) -> dict[tuple[str, int], list[float]]:
    return {
        (r["problem"], r["seed"]): r["regret"]
        for r in load_records(RESULTS / run)
        if r["sampler"] == sampler
    }


def _rate(a: dict, b: dict, trial: int) -> tuple[float, int]:
    keys = sorted(set(a) & set(b))
    if not keys:
        return float("nan"), 0
    return win_rate([a[k][trial - 1] for k in keys], [b[k][trial - 1] for k in keys]), len(keys)


def _optuna(runs: Sequence[str], sampler: str) -> dict:
    other: dict = {}
    for run in runs:
        other.update(_cells(run, sampler))
    return other


def main() -> None:
    print(
        "| set | pairs | vs before @12 / @25 / @50 | vs `GPSampler(n_startup_trials=2)` @12 "
        "| vs `GPSampler()` @50 | vs `GPSampler(n_startup_trials=2)` @50 | vs TPE @50 |"
    )
    print("| --- | ---: | --- | --- | --- | --- | --- |")
    for name, run, before_run, optuna_runs in SETS:
        new = _cells(f"issue17_worst_mean/{run}", "student_t")
        before = _cells(before_run, "student_t")
        rates = [_rate(new, before, t) for t in (12, 25, 50)]
        cols = [name, str(rates[0][1]), " / ".join(f"{r:.3f}" for r, _ in rates)]
        gp2 = _optuna(optuna_runs, "gp_startup2")
        cols.append(f"{_rate(new, gp2, 12)[0]:.3f} ({_rate(before, gp2, 12)[0]:.3f})")
        for sampler in OPTUNA:
            other = _optuna(optuna_runs, sampler)
            if not other:
                cols.append("-")
                continue
            now, _ = _rate(new, other, 50)
            old, _ = _rate(before, other, 50)
            cols.append(f"{now:.3f} ({old:.3f})")
        print("| " + " | ".join(cols) + " |")
    print()
    print(
        "Per problem, against the mean of before at trial 12 / 50 (wins; median regret ratio @50):"
    )
    for name, run, before_run, _ in SETS:
        new = _cells(f"issue17_worst_mean/{run}", "student_t")
        before = _cells(before_run, "student_t")
        parts = []
        for p in sorted({k[0] for k in new}):
            keys = [k for k in sorted(new) if k[0] == p and k in before]
            if not keys:
                continue
            w = [
                win_rate([new[k][t - 1] for k in keys], [before[k][t - 1] for k in keys])
                for t in (12, 50)
            ]
            a = statistics.median(new[k][49] for k in keys)
            b = statistics.median(before[k][49] for k in keys)
            parts.append(f"{p} {w[0]:.2f} / {w[1]:.2f} ({a / max(b, 1e-300):.2g}x)")
        print(f"- {name}: " + ", ".join(parts))


if __name__ == "__main__":
    main()
