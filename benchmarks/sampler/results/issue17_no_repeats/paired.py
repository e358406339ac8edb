"""Paired win rates of ``repeats="never"`` against the rule before (``"if_noisy"``) and Optuna's
samplers, from stored cells (no run): the README's tables.

    PYTHONPATH=$PWD python benchmarks/sampler/results/issue17_no_repeats/paired.py

Each row pairs this folder's cells (``GammaBOSampler()``, which no longer re-proposes an
evaluated point) with the cells of the sampler before it (``../issue17_worst_mean/``: the same
problems, seeds and code but for the repeat rule) and with Optuna's samplers' stored cells. Win
rate: lower simple regret, ties 1/2 (``benchmarks.sampler.regret.win_rate``); on a noisy problem
the regret is that of the best-observed trial's true value.
"""

from __future__ import annotations

from pathlib import Path
import statistics

from benchmarks.sampler.regret import load_records
from benchmarks.sampler.regret import win_rate


HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent
BEFORE = "issue17_worst_mean"

#: (name, run in this folder and in BEFORE, Optuna's samplers' runs)
SETS = [
    ("suite, seeds 0-9", "suite_s0", ["issue17_full"]),
    ("suite, seeds 10-19", "suite_s10", ["issue17_h6/optuna_s10"]),
    ("held-out, seeds 0-9", "heldout_s0", ["heldout"]),
    ("held-out, seeds 10-19", "heldout_s10", ["heldout/s10"]),
    ("noisy, seeds 0-9", "noisy_s0", ["issue17_noise"]),
    ("noisy, seeds 10-19", "noisy_s10", ["issue17_s31/gp2_noisy_s10"]),
    ("noisy, seeds 20-29", "noisy_s20", ["issue17_s31/gp2_noisy_s20"]),
    ("noisy, seeds 30-49", "noisy_s30", ["issue17_worst_mean/noisy_s30_gp2"]),
    ("held-out noisy tables, seeds 0-19", "heldout_noisy", ["heldout/noisy"]),
]
OPTUNA = ["gp", "gp_startup2", "tpe"]


def _records(run: str, sampler: str = "student_t") -> dict[tuple[str, int], dict]:
    return {
        (r["problem"], r["seed"]): r
        for r in load_records(RESULTS / run)
        if r["sampler"] == sampler
    }


def _rate(a: dict, b: dict, trial: int) -> float:
    keys = sorted(set(a) & set(b))
    return win_rate(
        [a[k]["regret"][trial - 1] for k in keys], [b[k]["regret"][trial - 1] for k in keys]
    )


def main() -> None:
    print(
        "| set | pairs | cells changed | repeats before -> now | vs before @12 / @25 / @50 "
        "| vs `GPSampler(n_startup_trials=2)` @12 | vs `GPSampler()` @50 "
        "| vs `GPSampler(n_startup_trials=2)` @50 | vs TPE @50 |"
    )
    print("| --- | ---: | ---: | --- | --- | --- | --- | --- | --- |")
    totals = {"noise-free": [0.0, 0], "noisy": [0.0, 0]}
    for name, run, optuna_runs in SETS:
        new = _records(f"issue17_no_repeats/{run}")
        before = _records(f"{BEFORE}/{run}")
        keys = sorted(set(new) & set(before))
        changed = sum(new[k]["values"] != before[k]["values"] for k in keys)
        repeats = (
            f"{sum(before[k]['n_repeats'] for k in keys)} -> "
            f"{sum(new[k]['n_repeats'] for k in keys)}"
        )
        rates = [_rate(new, before, t) for t in (12, 25, 50)]
        kind = "noisy" if "noisy" in name else "noise-free"
        totals[kind][0] += rates[2] * len(keys)
        totals[kind][1] += len(keys)
        cols = [name, str(len(keys)), str(changed), repeats]
        cols.append(" / ".join(f"{r:.3f}" for r in rates))
        other: dict[str, dict] = {s: {} for s in OPTUNA}
        for o in optuna_runs:
            for s in OPTUNA:
                other[s].update(_records(o, s))
        cols.append(
            f"{_rate(new, other['gp_startup2'], 12):.3f} "
            f"({_rate(before, other['gp_startup2'], 12):.3f})"
        )
        for s in OPTUNA:
            if not other[s]:
                cols.append("-")
                continue
            cols.append(f"{_rate(new, other[s], 50):.3f} ({_rate(before, other[s], 50):.3f})")
        print("| " + " | ".join(cols) + " |")
    print()
    for kind, (wins, n) in totals.items():
        print(f"{kind}: {wins / n:.3f} of {n} pairs at trial 50 against the rule before")
    print()
    print("Per problem at trial 50 where a cell changed (wins against before; median regret now /")
    print("before / `GPSampler(n_startup_trials=2)`):")
    for name, run, optuna_runs in SETS:
        new = _records(f"issue17_no_repeats/{run}")
        before = _records(f"{BEFORE}/{run}")
        gp2: dict = {}
        for o in optuna_runs:
            gp2.update(_records(o, "gp_startup2"))
        parts = []
        for p in sorted({k[0] for k in new}):
            keys = [k for k in sorted(new) if k[0] == p and k in before]
            if all(new[k]["values"] == before[k]["values"] for k in keys):
                continue
            a = [new[k]["regret"][49] for k in keys]
            b = [before[k]["regret"][49] for k in keys]
            g = [gp2[k]["regret"][49] for k in keys if k in gp2]
            parts.append(
                f"{p} {win_rate(a, b):.2f} ({statistics.median(a):.3g} / "
                f"{statistics.median(b):.3g} / {statistics.median(g):.3g})"
            )
        print(f"- {name}: " + ", ".join(parts))


if __name__ == "__main__":
    main()
