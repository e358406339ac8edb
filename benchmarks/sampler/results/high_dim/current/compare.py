"""The current default against the stored cells of ``../d20``, ``../d40`` and ``../h6in20`` (the
sampler of commit 0c179f2 with the constant mean, ``lengthscale_prior="optuna"``,
``GPSampler()`` and TPE on the same problems and seeds), from stored cells (no run):

    PYTHONPATH=$PWD python benchmarks/sampler/results/high_dim/current/compare.py
"""

from __future__ import annotations

from pathlib import Path
import statistics

from benchmarks.sampler.regret import load_records
from benchmarks.sampler.regret import win_rate


HERE = Path(__file__).resolve().parent
OTHERS = ("student_t", "student_t:lengthscale_prior=optuna", "gp", "tpe")


def _cells(run: Path, sampler: str) -> dict[tuple[str, int], list[float]]:
    records = load_records(run)
    return {(r["problem"], r["seed"]): r["regret"] for r in records if r["sampler"] == sampler}


def main() -> None:
    print("| set | trial | against | win rate now | win rate of 0c179f2's default |")
    print("| --- | ---: | --- | ---: | ---: |")
    medians = []
    for name, trial in (("d20", 60), ("d40", 80), ("h6in20", 50)):
        new = _cells(HERE / name, "student_t")
        old = {s: _cells(HERE.parent / name, s) for s in OTHERS}
        for s in OTHERS:
            keys = sorted(set(new) & set(old[s]))
            now = win_rate([new[k][trial - 1] for k in keys], [old[s][k][trial - 1] for k in keys])
            before = win_rate(
                [old["student_t"][k][trial - 1] for k in keys],
                [old[s][k][trial - 1] for k in keys],
            )
            label = "0c179f2's default" if s == "student_t" else s
            print(f"| {name} | {trial} | {label} | {now:.2f} | {before:.2f} |")
        for p in sorted({k[0] for k in new}):
            keys = sorted(k for k in new if k[0] == p)
            row = [statistics.median(new[k][trial - 1] for k in keys)]
            row += [statistics.median(old[s][k][trial - 1] for k in keys) for s in OTHERS]
            medians.append(f"| {p} | " + " | ".join(f"{v:.3g}" for v in row) + " |")
    print()
    print('| problem | now | 0c179f2\'s default | `lengthscale_prior="optuna"` ', end="")
    print("| GPSampler() | TPE |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(medians))


if __name__ == "__main__":
    main()
