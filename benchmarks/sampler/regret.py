"""Simple-regret benchmark: GammaBOSampler's modes against Optuna's samplers.

Every (problem, sampler, seed) cell runs one study of ``--trials`` trials and appends one JSON
line (objective values, wall and CPU time, the sampler's settings, how many proposals repeated
an earlier trial's parameters) to ``benchmarks/sampler/results/<run>/cells.jsonl``. Finished
cells are skipped, so a long run can be split or resumed; the best-so-far regret curves are
recomputed from the recorded values and the problem's known optimum, and the summary (median
and IQR of the regret at the checkpoints, win rates of the reference sampler against every
other over problem x seed pairs, ratios of median final regrets) is rebuilt from all cells of
the run at the end (or alone with ``--summary-only``).

Samplers (``--samplers``; a name may carry keyword overrides, e.g.
``student_t:prior_shape=2,xi=0.01``):

    student_t, gaussian, plugin   GammaBOSampler(predictive=...) with the sampler's defaults
    gp                            optuna.samplers.GPSampler() (default: 10 start-up trials)
    gp_startup2                   GPSampler(n_startup_trials=2), GammaBO's start-up count
    tpe, random                   TPESampler, RandomSampler
    grid                          GridSampler over a cell-centred grid of ~trials points,
                                  visited in a seeded random order

Example (the full benchmark)::

    python -m benchmarks.sampler.regret --run full --seeds 10 --trials 50 --jobs 1

Regret is |optimum - best value so far| in the problem's own units (see problems.py).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import csv
import json
import math
import multiprocessing as mp
import os
from pathlib import Path
import platform
import sys
import time
from typing import Any
from typing import cast
import warnings

import numpy as np
import optuna

from benchmarks.machine import machine_line
from benchmarks.sampler.problems import DEFAULT_PROBLEMS
from benchmarks.sampler.problems import get_problem
from benchmarks.sampler.problems import Problem


RESULTS_DIR = Path(__file__).resolve().parent / "results"
GAMMA_MODES = ("student_t", "gaussian", "plugin")
OPTUNA_SAMPLERS = ("gp", "gp_startup2", "tpe", "random", "grid")
DEFAULT_SAMPLERS = GAMMA_MODES + OPTUNA_SAMPLERS
CHECKPOINTS = (10, 12, 20, 50)
HIT_TOLERANCES = (1e-2, 1e-3)


# --------------------------------------------------------------------------------------------
# samplers


def parse_sampler_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``"student_t:prior_shape=2,xi=0.01"`` into a base name and keyword overrides.

    Values are parsed as JSON where possible (numbers, true/false/null), else kept as strings.

    Raises:
        ValueError: unknown base name or malformed override.
    """
    base, _, rest = spec.partition(":")
    if base not in DEFAULT_SAMPLERS:
        raise ValueError(f"unknown sampler {base!r}; choose from {list(DEFAULT_SAMPLERS)}")
    kwargs: dict[str, Any] = {}
    if rest:
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            if not eq or not key:
                raise ValueError(f"malformed sampler override {item!r} in {spec!r}")
            try:
                kwargs[key] = json.loads(value)
            except json.JSONDecodeError:
                kwargs[key] = value
    return base, kwargs


def make_sampler(
    spec: str, seed: int, problem: Problem, n_trials: int
) -> optuna.samplers.BaseSampler:
    """Build the sampler named by ``spec`` with ``seed``."""
    base, kwargs = parse_sampler_spec(spec)
    if base in GAMMA_MODES:
        from optuna_gamma import GammaBOSampler
        from optuna_gamma.gp.settings import Predictive

        return GammaBOSampler(predictive=cast(Predictive, base), seed=seed, **kwargs)
    if base == "gp":
        return optuna.samplers.GPSampler(seed=seed, **kwargs)
    if base == "gp_startup2":
        return optuna.samplers.GPSampler(seed=seed, **{"n_startup_trials": 2, **kwargs})
    if base == "tpe":
        return optuna.samplers.TPESampler(seed=seed, **kwargs)
    if base == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    grid = problem.grid(n_trials)
    if grid is None:
        raise ValueError(f"problem {problem.name!r} has no grid")
    return optuna.samplers.GridSampler(grid, seed=seed)


def sampler_settings(spec: str) -> dict[str, Any]:
    """The effective constructor settings of a GammaBOSampler spec (for the record)."""
    base, kwargs = parse_sampler_spec(spec)
    if base not in GAMMA_MODES:
        return dict(kwargs)
    import inspect

    from optuna_gamma import GammaBOSampler

    params = inspect.signature(GammaBOSampler.__init__).parameters
    out = {
        k: p.default
        for k, p in params.items()
        if k != "self"
        and p.default is not inspect.Parameter.empty
        and isinstance(p.default, (int, float, str, bool, type(None)))
    }
    out.update(kwargs)
    out["predictive"] = base
    return out


# --------------------------------------------------------------------------------------------
# one cell


def cell_key(problem: str, spec: str, seed: int) -> tuple[str, str, int]:
    return (problem, spec, seed)


def _init_worker() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is installed with the dev extra
        pass
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message=".*independent sampl.*")


def _n_repeats(trials: list[optuna.trial.FrozenTrial]) -> int:
    """Trials whose parameters equal those of an earlier trial (exactly)."""
    seen: set[tuple[Any, ...]] = set()
    repeats = 0
    for t in trials:
        key = tuple(sorted((k, repr(v)) for k, v in t.params.items()))
        repeats += key in seen
        seen.add(key)
    return repeats


def run_cell(
    problem_name: str, spec: str, seed: int, n_trials: int, record_params: bool = False
) -> dict[str, Any]:
    """Run one study and return its record (values, timing, repeats; params if asked)."""
    _init_worker()
    problem = get_problem(problem_name)
    sampler = make_sampler(spec, seed, problem, n_trials)
    study = optuna.create_study(direction=problem.direction, sampler=sampler)
    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        study.optimize(problem.objective, n_trials=n_trials)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    trials = sorted(study.trials, key=lambda t: t.number)
    values = [
        float(t.value)
        if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None
        else float("nan")
        for t in trials
    ]
    record = {
        "problem": problem.name,
        "sampler": spec,
        "seed": seed,
        "n_trials": n_trials,
        "values": values,
        "n_repeats": _n_repeats(trials),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
    }
    if problem.noisy:
        record["true_values"] = [t.user_attrs.get("true_value", math.nan) for t in trials]
    if record_params:
        record["params"] = [t.params for t in trials]
    return record


def _run_job(job: tuple[str, str, int, int, bool]) -> dict[str, Any]:
    return run_cell(*job)


def _describe(record: dict[str, Any]) -> str:
    regret = with_regret(record)["regret"]
    return (
        f"{record['problem']} {record['sampler']} seed={record['seed']} "
        f"{record['cpu_s']:.1f}s cpu regret@end={regret[-1]:.4g}"
    )


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one cell as a JSON line (flushed and fsynced: a killed run loses no cell)."""
    with open(path, "a") as f:
        f.write(json.dumps(record, separators=(",", ":")) + "\n")
        f.flush()
        os.fsync(f.fileno())


# --------------------------------------------------------------------------------------------
# summary


def with_regret(record: dict[str, Any]) -> dict[str, Any]:
    """The record with its best-so-far ``regret`` curve, recomputed from the values."""
    problem = get_problem(record["problem"])
    values = [v if v is not None else math.nan for v in record["values"]]
    if "true_values" in record:
        curve = problem.inference_regret_curve(values, record["true_values"], record["n_trials"])
    else:
        curve = problem.regret_curve(values, record["n_trials"])
    return {**record, "regret": curve}


def load_records(run_dir: Path) -> list[dict[str, Any]]:
    """Every cell of a run (``cells.jsonl``; a torn last line of a killed run is skipped)."""
    path = run_dir / "cells.jsonl"
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    latest = {cell_key(r["problem"], r["sampler"], r["seed"]): r for r in records}
    return [with_regret(r) for r in latest.values()]


def _tied(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= 1e-12 + 1e-9 * max(abs(a), abs(b))


def win_rate(ref: Sequence[float], other: Sequence[float]) -> float:
    """Share of pairs where ``ref`` has the lower regret; ties count one half."""
    if len(ref) != len(other) or not ref:
        raise ValueError("win_rate needs two equally long, non-empty sequences")
    score = sum(0.5 if _tied(a, b) else float(a < b) for a, b in zip(ref, other))
    return score / len(ref)


Record = dict[str, Any]
Cells = dict[tuple[str, str, int], Record]


def _problem_order(records: list[Record]) -> list[str]:
    """The problems of ``records``: those of the default suite first, in its order."""
    return sorted(
        {r["problem"] for r in records},
        key=lambda p: (
            p not in DEFAULT_PROBLEMS,
            DEFAULT_PROBLEMS.index(p) if p in DEFAULT_PROBLEMS else 0,
            p,
        ),
    )


def _regret_stats(
    by: Cells, problems: list[str], samplers: list[str], cps: list[int]
) -> list[dict[str, Any]]:
    """Per (problem, sampler): seeds, mean seconds, repeats, median [Q1, Q3] per checkpoint."""
    stats: list[dict[str, Any]] = []
    for p in problems:
        for s in samplers:
            rs = [r for (pp, ss, _), r in by.items() if pp == p and ss == s]
            if not rs:
                continue
            row: dict[str, Any] = {
                "problem": p,
                "sampler": s,
                "n_seeds": len(rs),
                "mean_wall_s": float(np.mean([r["wall_s"] for r in rs])),
            }
            if all("cpu_s" in r for r in rs):
                row["mean_cpu_s"] = float(np.mean([r["cpu_s"] for r in rs]))
            row["repeats"] = int(sum(r.get("n_repeats", 0) for r in rs))
            for c in cps:
                vals = np.array([r["regret"][c - 1] for r in rs if len(r["regret"]) >= c])
                if len(vals):
                    q1, med, q3 = np.percentile(vals, [25, 50, 75])
                    row[f"median@{c}"], row[f"q1@{c}"], row[f"q3@{c}"] = (
                        float(med),
                        float(q1),
                        float(q3),
                    )
            stats.append(row)
    return stats


def _reference_wins(
    by: Cells, problems: list[str], samplers: list[str], cps: list[int], reference: str
) -> list[dict[str, Any]]:
    """Win rates of ``reference`` against every other sampler, overall and per problem."""
    wins: list[dict[str, Any]] = []
    if reference not in samplers:
        return wins
    for s in samplers:
        if s == reference:
            continue
        for c in cps:
            a, b, per_problem = [], [], {}
            for p in problems:
                pa, pb = [], []
                for (pp, ss, seed), r in by.items():
                    if pp == p and ss == reference and (p, s, seed) in by:
                        o = by[(p, s, seed)]
                        if len(r["regret"]) >= c and len(o["regret"]) >= c:
                            pa.append(r["regret"][c - 1])
                            pb.append(o["regret"][c - 1])
                if pa:
                    per_problem[p] = win_rate(pa, pb)
                    a += pa
                    b += pb
            if a:
                wins.append(
                    {
                        "reference": reference,
                        "other": s,
                        "trial": c,
                        "n_pairs": len(a),
                        "win_rate": win_rate(a, b),
                        "per_problem": per_problem,
                    }
                )
    return wins


def _mean_ranks(
    by: Cells, problems: list[str], samplers: list[str], cps: list[int], seeds: list[int]
) -> dict[str, dict[int, float]]:
    """Mean rank per sampler and checkpoint over the (problem, seed) pairs all samplers ran."""
    ranks: dict[str, dict[int, float]] = {}
    for c in cps:
        acc: dict[str, list[float]] = {s: [] for s in samplers}
        for p in problems:
            for seed in seeds:
                present = [
                    s
                    for s in samplers
                    if (p, s, seed) in by and len(by[(p, s, seed)]["regret"]) >= c
                ]
                if len(present) != len(samplers):
                    continue  # rank only over pairs every sampler finished
                vals = np.array([by[(p, s, seed)]["regret"][c - 1] for s in present])
                for s, rk in zip(present, _average_ranks(vals)):
                    acc[s].append(rk)
        for s, v in acc.items():
            if v:
                ranks.setdefault(s, {})[c] = float(np.mean(v))
    return ranks


def _pairwise_wins(
    by: Cells, samplers: list[str], max_t: int
) -> dict[int, dict[str, dict[str, float]]]:
    """Win rate of every sampler against every other at trial 12 and at the last trial."""
    pairwise: dict[int, dict[str, dict[str, float]]] = {}
    for c in sorted({min(12, max_t), max_t}):
        table: dict[str, dict[str, float]] = {}
        for a in samplers:
            for b in samplers:
                if a == b:
                    continue
                ra, rb = [], []
                for (p, s, seed), r in by.items():
                    if s == a and (p, b, seed) in by:
                        ra.append(r["regret"][c - 1])
                        rb.append(by[(p, b, seed)]["regret"][c - 1])
                if ra:
                    table.setdefault(a, {})[b] = win_rate(ra, rb)
        pairwise[c] = table
    return pairwise


def _hitting_times(by: Cells, problems: list[str], samplers: list[str]) -> list[dict[str, Any]]:
    """Trials until the regret is at most each of :data:`HIT_TOLERANCES` (median over seeds)."""
    hitting: list[dict[str, Any]] = []
    for p in problems:
        for s in samplers:
            rs = [r for (pp, ss, _), r in by.items() if pp == p and ss == s]
            for tol in HIT_TOLERANCES:
                hits = [
                    next((i + 1 for i, g in enumerate(r["regret"]) if g <= tol), math.inf)
                    for r in rs
                ]
                if rs:
                    hitting.append(
                        {
                            "problem": p,
                            "sampler": s,
                            "tol": tol,
                            "median": float(np.median(hits)),
                            "reached": sum(math.isfinite(h) for h in hits),
                            "n": len(hits),
                        }
                    )
    return hitting


def _regret_ratios(
    stats: list[dict[str, Any]],
    problems: list[str],
    samplers: list[str],
    max_t: int,
    reference: str,
) -> list[dict[str, Any]]:
    """``reference``'s median final regret over each other sampler's, per problem."""
    ratios: list[dict[str, Any]] = []
    if reference not in samplers:
        return ratios
    med = {(row["problem"], row["sampler"]): row.get(f"median@{max_t}") for row in stats}
    for s in samplers:
        if s == reference:
            continue
        per_problem = {}
        for p in problems:
            med_ref, med_s = med.get((p, reference)), med.get((p, s))
            if med_ref is not None and med_s is not None:
                per_problem[p] = regret_ratio(med_ref, med_s)
        if per_problem:
            ratios.append(
                {
                    "reference": reference,
                    "other": s,
                    "trial": max_t,
                    "per_problem": per_problem,
                    "max": max(per_problem.values()),
                    "worst_problem": max(per_problem, key=per_problem.__getitem__),
                }
            )
    return ratios


def summarize(
    records: list[dict[str, Any]],
    checkpoints: Sequence[int] = CHECKPOINTS,
    reference: str = "student_t",
) -> dict[str, Any]:
    """Median/IQR of regret per (problem, sampler, checkpoint) and win rates of ``reference``.

    Win rates are computed over the (problem, seed) pairs that both samplers finished.
    """
    problems = _problem_order(records)
    samplers = list(dict.fromkeys(r["sampler"] for r in records))
    by = {(r["problem"], r["sampler"], r["seed"]): r for r in records}
    max_t = max(r["n_trials"] for r in records)
    cps = [c for c in checkpoints if c <= max_t]
    if max_t not in cps:
        cps.append(max_t)
    stats = _regret_stats(by, problems, samplers, cps)
    seeds = sorted({r["seed"] for r in records})
    return {
        "checkpoints": cps,
        "problems": problems,
        "samplers": samplers,
        "stats": stats,
        "wins": _reference_wins(by, problems, samplers, cps, reference),
        "reference": reference,
        "mean_rank": _mean_ranks(by, problems, samplers, cps, seeds),
        "pairwise": _pairwise_wins(by, samplers, max_t),
        "hitting": _hitting_times(by, problems, samplers),
        "regret_ratios": _regret_ratios(stats, problems, samplers, max_t, reference),
    }


def regret_ratio(a: float, b: float) -> float:
    """``a / b`` for two median regrets; 1 when both are 0 (to 1e-12), inf when only ``b`` is."""
    if _tied(a, b):
        return 1.0
    if b <= 1e-12:
        return math.inf
    return a / b


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n (1 = lowest regret), tied values (see :func:`_tied`) sharing their mean rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and _tied(values[order[j + 1]], values[order[i]]):
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    return f"{x:.3g}" if abs(x) >= 1e-3 else f"{x:.2e}"


def _fmt_ratio(x: float) -> str:
    return "inf" if not math.isfinite(x) else (f"{x:.2f}" if x < 100 else f"{x:.3g}")


def _md_problem(summary: dict[str, Any], p: str) -> list[str]:
    cps = summary["checkpoints"]
    lines = [
        f"## {p}",
        "",
        "| sampler | n | "
        + " | ".join(f"@{c}" for c in cps)
        + " | s/run (wall) | s/run (CPU) | repeats |",
        "| --- | --- | " + " | ".join("---" for _ in cps) + " | --- | --- | --- |",
    ]
    for row in summary["stats"]:
        if row["problem"] != p:
            continue
        cells = [
            f"{_fmt(row[f'median@{c}'])} [{_fmt(row[f'q1@{c}'])}, {_fmt(row[f'q3@{c}'])}]"
            if f"median@{c}" in row
            else "-"
            for c in cps
        ]
        cpu = f"{row['mean_cpu_s']:.1f}" if "mean_cpu_s" in row else "-"
        lines.append(
            f"| {row['sampler']} | {row['n_seeds']} | "
            + " | ".join(cells)
            + f" | {row['mean_wall_s']:.1f} | {cpu} | {row['repeats']} |"
        )
    lines.append("")
    return lines


def _md_mean_rank(summary: dict[str, Any]) -> list[str]:
    cps = summary["checkpoints"]
    lines = [
        "## Mean rank over problem x seed pairs (1 = best; ties share ranks)",
        "",
        "| sampler | " + " | ".join(f"@{c}" for c in cps) + " |",
        "| --- | " + " | ".join("---" for _ in cps) + " |",
    ]
    order = sorted(
        summary["mean_rank"], key=lambda s: summary["mean_rank"][s].get(cps[-1], math.inf)
    )
    for s in order:
        rk = summary["mean_rank"][s]
        lines.append(
            f"| {s} | " + " | ".join(f"{rk[c]:.2f}" if c in rk else "-" for c in cps) + " |"
        )
    lines.append("")
    return lines


def _md_pairwise(summary: dict[str, Any], c: Any, table: dict[str, dict[str, float]]) -> list[str]:
    names = [s for s in summary["samplers"] if s in table]
    lines = [
        f"## Pairwise win rate at trial {c}: row beats column (ties 1/2)",
        "",
        "| | " + " | ".join(names) + " |",
        "| --- | " + " | ".join("---" for _ in names) + " |",
    ]
    for a in names:
        lines.append(
            f"| {a} | "
            + " | ".join("-" if a == b else f"{table[a].get(b, float('nan')):.2f}" for b in names)
            + " |"
        )
    lines.append("")
    return lines


def _md_hitting(summary: dict[str, Any]) -> list[str]:
    tols = sorted({h["tol"] for h in summary["hitting"]}, reverse=True)
    lines = [
        "## Trials to reach a regret <= tol: median over seeds (seeds that reached it / all)",
        "",
        "| problem | sampler | " + " | ".join(f"tol {t:g}" for t in tols) + " |",
        "| --- | --- | " + " | ".join("---" for _ in tols) + " |",
    ]
    for p in summary["problems"]:
        for s in summary["samplers"]:
            hs = {
                h["tol"]: h for h in summary["hitting"] if h["problem"] == p and h["sampler"] == s
            }
            if hs:
                lines.append(
                    f"| {p} | {s} | "
                    + " | ".join(
                        (f"{hs[t]['median']:g}" if math.isfinite(hs[t]["median"]) else "never")
                        + f" ({hs[t]['reached']}/{hs[t]['n']})"
                        for t in tols
                    )
                    + " |"
                )
    lines.append("")
    return lines


def _md_ratios(summary: dict[str, Any]) -> list[str]:
    ref = summary["reference"]
    last = summary["checkpoints"][-1]
    lines = [
        f"## Median regret of {ref} at trial {last} / the other's median (> 1: {ref} worse)",
        "",
        "| against | worst | " + " | ".join(summary["problems"]) + " |",
        "| --- | --- | " + " | ".join("---" for _ in summary["problems"]) + " |",
    ]
    for r in summary["regret_ratios"]:
        cells = [
            _fmt_ratio(r["per_problem"][p]) if p in r["per_problem"] else "-"
            for p in summary["problems"]
        ]
        lines.append(
            f"| {r['other']} | {_fmt_ratio(r['max'])} ({r['worst_problem']}) | "
            + " | ".join(cells)
            + " |"
        )
    lines.append("")
    return lines


def _md_wins(summary: dict[str, Any]) -> list[str]:
    cps = summary["checkpoints"]
    ref = summary["reference"]
    lines = [
        f"## Win rate of {ref} (lower regret; ties 1/2) over problem x seed pairs",
        "",
        "| against | pairs | " + " | ".join(f"@{c}" for c in cps) + " |",
        "| --- | --- | " + " | ".join("---" for _ in cps) + " |",
    ]
    others = list(dict.fromkeys(w["other"] for w in summary["wins"]))
    for o in others:
        ws = {w["trial"]: w for w in summary["wins"] if w["other"] == o}
        n = max(w["n_pairs"] for w in ws.values())
        lines.append(
            f"| {o} | {n} | "
            + " | ".join(f"{ws[c]['win_rate']:.2f}" if c in ws else "-" for c in cps)
            + " |"
        )
    early = 12 if 12 in cps else cps[0]  # the first dozen trials, or the first checkpoint
    lines += [
        "",
        f"Per problem, win rate of {ref} at trial {cps[-1]} / at trial {early}:",
        "",
        "| against | " + " | ".join(summary["problems"]) + " |",
        "| --- | " + " | ".join("---" for _ in summary["problems"]) + " |",
    ]
    for o in others:
        wl = {w["trial"]: w for w in summary["wins"] if w["other"] == o}
        cells = []
        for p in summary["problems"]:
            end = wl.get(cps[-1], {}).get("per_problem", {}).get(p)
            mid = wl.get(early, {}).get("per_problem", {}).get(p)
            cells.append(f"{end:.2f} / {mid:.2f}" if end is not None and mid is not None else "-")
        lines.append(f"| {o} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def render_markdown(summary: dict[str, Any], title: str, meta: dict[str, Any]) -> str:
    """``summary.md``: the sections of :func:`summarize`'s statistics, as Markdown tables."""
    lines = [f"# {title}", ""]
    lines += [f"- {k}: {v}" for k, v in meta.items()]
    lines += [
        "",
        "Simple regret (best-so-far gap to the known optimum, problem units): "
        "median [Q1, Q3] over seeds.",
        "",
    ]
    for p in summary["problems"]:
        lines += _md_problem(summary, p)
    if summary.get("mean_rank"):
        lines += _md_mean_rank(summary)
    for c, table in sorted(summary.get("pairwise", {}).items(), key=lambda kv: int(kv[0])):
        lines += _md_pairwise(summary, c, table)
    if summary.get("hitting"):
        lines += _md_hitting(summary)
    if summary.get("regret_ratios"):
        lines += _md_ratios(summary)
    if summary["wins"]:
        lines += _md_wins(summary)
    return "\n".join(lines)


def write_summary(
    run_dir: Path,
    reference: str,
    title: str | None = None,
    merge: Sequence[Path] = (),
    only: Sequence[str] | None = None,
    checkpoints: Sequence[int] = CHECKPOINTS,
    only_problems: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Summarize the run's raw cells (plus those of the ``merge`` runs) into summary.*.

    ``only`` keeps the listed samplers, ``only_problems`` the listed problems; of duplicate cells
    the run's own win, then those of the merged run named first (so a rerun of one sampler,
    merged before an older run, replaces that sampler's older cells).
    """
    records = load_records(run_dir)
    have = {(r["problem"], r["sampler"], r["seed"]) for r in records}
    for other in merge:
        new = [
            r for r in load_records(other) if (r["problem"], r["sampler"], r["seed"]) not in have
        ]
        records += new
        have |= {(r["problem"], r["sampler"], r["seed"]) for r in new}
    if only is not None:
        records = [r for r in records if r["sampler"] in only]
    if only_problems is not None:
        records = [r for r in records if r["problem"] in only_problems]
    if not records:
        raise ValueError(f"no finished cells under {run_dir}")
    summary = summarize(records, checkpoints=checkpoints, reference=reference)
    meta_path = run_dir / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta["cells finished"] = len(records)
    if merge:
        meta["merged runs"] = [m.name for m in merge]
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    with open(run_dir / "summary.csv", "w", newline="") as f:
        keys = list(dict.fromkeys(k for row in summary["stats"] for k in row))
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(summary["stats"])
    (run_dir / "summary.md").write_text(
        render_markdown(summary, title or f"Regret benchmark: {run_dir.name}", meta)
    )
    return summary


# --------------------------------------------------------------------------------------------
# CLI


def _git_state() -> str:
    """HEAD commit and whether the sampler sources differ from it (for the record)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "optuna_gamma"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (
        " (optuna_gamma/ modified: " + " ".join(dirty.split()[1::2]) + ")" if dirty else ""
    )


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--run",
        default="headline",
        help="run name: results go to benchmarks/sampler/results/<run>/",
    )
    ap.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    ap.add_argument("--problems", nargs="+", default=list(DEFAULT_PROBLEMS))
    ap.add_argument("--samplers", nargs="+", default=list(DEFAULT_SAMPLERS))
    ap.add_argument("--seeds", type=int, default=10, help="number of seeds (0..N-1)")
    ap.add_argument("--seed-offset", type=int, default=0)
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (at most 2)")
    ap.add_argument(
        "--reference", default="student_t", help="sampler whose win rates are reported"
    )
    ap.add_argument("--summary-only", action="store_true")
    ap.add_argument(
        "--merge", nargs="*", default=[], help="other runs whose cells join the summary"
    )
    ap.add_argument(
        "--summary-samplers",
        nargs="*",
        default=None,
        help="samplers kept in the summary (default: all)",
    )
    ap.add_argument(
        "--summary-problems",
        nargs="*",
        default=None,
        help="problems kept in the summary (default: all)",
    )
    ap.add_argument(
        "--checkpoints",
        type=int,
        nargs="+",
        default=list(CHECKPOINTS),
        help="trials at which the summary reports regrets (the last is added)",
    )
    ap.add_argument(
        "--record-params",
        action="store_true",
        help="also record every trial's parameters in the cells",
    )
    return ap


def _write_meta(run_dir: Path, args: argparse.Namespace, argv: Sequence[str] | None) -> None:
    """Add this invocation (command, versions, git state, GammaBO settings) to ``meta.json``."""
    meta_path = run_dir / "meta.json"
    old = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    command = "python -m benchmarks.sampler.regret " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    meta = {
        "commands": [*old.get("commands", []), command],
        "optuna": optuna.__version__,
        "python": platform.python_version(),
        "machine": machine_line(),
        "git": {**old.get("git", {}), command: _git_state()},
        "jobs": args.jobs,
        "torch threads per worker": 1,
        "gamma settings": {
            **old.get("gamma settings", {}),
            **{
                s: sampler_settings(s)
                for s in args.samplers
                if parse_sampler_spec(s)[0] in GAMMA_MODES
            },
        },
    }
    (run_dir / "meta.json").write_text(json.dumps(meta, indent=1, default=str))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not 1 <= args.jobs <= 2:
        raise ValueError(f"--jobs must be 1 or 2, got {args.jobs}")
    if args.trials < 1 or args.seeds < 1:
        raise ValueError(f"--trials and --seeds must be >= 1, got {args.trials}, {args.seeds}")
    for p in args.problems:
        get_problem(p)
    for s in args.samplers:
        parse_sampler_spec(s)

    run_dir = args.results_dir / args.run
    run_dir.mkdir(parents=True, exist_ok=True)
    if not args.summary_only:
        _write_meta(run_dir, args, argv)
        done = {cell_key(r["problem"], r["sampler"], r["seed"]) for r in load_records(run_dir)}
        jobs = []
        for seed in range(args.seed_offset, args.seed_offset + args.seeds):
            for p in args.problems:
                for s in args.samplers:
                    if cell_key(p, s, seed) not in done:
                        jobs.append((p, s, seed, args.trials, args.record_params))
        print(f"{len(jobs)} cells to run in {run_dir}", flush=True)
        t0 = time.perf_counter()
        cells = run_dir / "cells.jsonl"
        if args.jobs == 1:
            results: Any = map(_run_job, jobs)
            pool = None
        else:
            pool = mp.get_context("spawn").Pool(args.jobs, initializer=_init_worker)
            results = pool.imap_unordered(_run_job, jobs)
        try:
            for i, record in enumerate(results):
                append_record(cells, record)
                print(
                    f"[{i + 1}/{len(jobs)} {time.perf_counter() - t0:.0f}s] {_describe(record)}",
                    flush=True,
                )
        finally:
            if pool is not None:
                pool.terminate()
    summary = write_summary(
        run_dir,
        args.reference,
        merge=[args.results_dir / m for m in args.merge],
        checkpoints=args.checkpoints,
        only=args.summary_samplers,
        only_problems=args.summary_problems,
    )
    print((run_dir / "summary.md").read_text())
    return 0 if summary["stats"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
