"""Paired win rates of the warp with a chosen scale against the warp of before and Optuna's
samplers, from stored cells (no run): the README's tables.

    PYTHONPATH=$PWD python benchmarks/sampler/results/issue17_warp_scale/paired.py

Each row pairs this folder's cells (``GammaBOSampler()`` at the commit that chose the scale) with
the stored cells of the sampler before it (same problems and seeds) and with Optuna's samplers'
stored cells. Win rate: lower simple regret, ties 1/2 (``benchmarks.sampler.regret.win_rate``).
"""

from __future__ import annotations

from pathlib import Path
import statistics

from benchmarks.sampler.regret import load_records
from benchmarks.sampler.regret import win_rate


HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent

#: (name, this folder's run, the default before, Optuna's samplers' runs)
SETS = [
    ("suite, seeds 0-9", "suite_s0", "issue17_refit_polish/default_s0", ["issue17_full"]),
    (
        "suite, seeds 10-19",
        "suite_s10",
        "issue17_refit_polish/default_s10",
        ["issue17_h6/optuna_s10"],
    ),
    ("held-out, seeds 0-9", "heldout_s0", "heldout", ["heldout"]),
    ("held-out, seeds 10-19", "heldout_s10", "heldout/s10", ["heldout/s10"]),
    ("noisy, seeds 0-9", "noisy_s0", "issue17_noise", ["issue17_noise"]),
    (
        "noisy, seeds 10-19",
        "noisy_s10",
        "issue17_s31/base_noisy_s10",
        ["issue17_s31/gp2_noisy_s10"],
    ),
    (
        "noisy, seeds 20-29",
        "noisy_s20",
        "issue17_s31/base_noisy_s20",
        ["issue17_s31/gp2_noisy_s20"],
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


def main() -> None:
    print(
        "| set | pairs | vs before @12 / @25 / @50 | vs `GPSampler()` @50: now (before) "
        "| vs `GPSampler(n_startup_trials=2)` @50 | vs TPE @50 |"
    )
    print("| --- | ---: | --- | --- | --- | --- |")
    for name, run, before_run, optuna_runs in SETS:
        new = _cells(f"issue17_warp_scale/{run}", "student_t")
        before = _cells(before_run, "student_t")
        rates = [_rate(new, before, t) for t in (12, 25, 50)]
        cols = [name, str(rates[0][1]), " / ".join(f"{r:.3f}" for r, _ in rates)]
        for sampler in OPTUNA:
            other: dict = {}
            for o in optuna_runs:
                other.update(_cells(o, sampler))
            if not other:
                cols.append("-")
                continue
            now, _ = _rate(new, other, 50)
            old, _ = _rate(before, other, 50)
            cols.append(f"{now:.3f} ({old:.3f})")
        print("| " + " | ".join(cols) + " |")
    print()
    print("Per problem, against the warp of before at trial 50 (wins; median regret ratio):")
    for name, run, before_run, _ in SETS:
        new = _cells(f"issue17_warp_scale/{run}", "student_t")
        before = _cells(before_run, "student_t")
        parts = []
        for p in sorted({k[0] for k in new}):
            a = [new[k][49] for k in sorted(new) if k[0] == p and k in before]
            b = [before[k][49] for k in sorted(new) if k[0] == p and k in before]
            if a:
                ratio = statistics.median(a) / max(statistics.median(b), 1e-300)
                parts.append(f"{p} {win_rate(a, b):.2f} ({ratio:.2g}x)")
        print(f"- {name}: " + ", ".join(parts))


if __name__ == "__main__":
    main()
