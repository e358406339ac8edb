"""Parallel workers: regret against wall time with 4 asynchronous workers on one study.

A discrete-event simulation of ``--workers`` workers sharing one study through Optuna's
ask-and-tell interface. Each worker repeatedly asks a trial (the sampler's computation, timed in
CPU seconds of this process and added to that worker's clock), evaluates it for a simulated
duration (log-normal, median ``--eval-time`` seconds, sigma 0.5, so the workers drift out of
step as real ones do) and tells the value when its clock reaches the end of the evaluation. The
next event is always the worker whose evaluation ends first, so the trials a sampler sees as
RUNNING (with their parameters) are exactly those a real asynchronous run would have at that
moment. No sleeps: the wall clock is simulated, the sampler's own cost is measured.

Samplers: ``fantasy`` (``GammaBOSampler(parallel="fantasy")``: EI averaged over joint
Student-t draws at the pending points), ``liar`` (``GammaBOSampler(parallel="liar")``: constant
liar at the worst value so far), ``gp`` (Optuna's ``GPSampler``, qLogEI over running trials),
and ``sequential`` (GammaBOSampler with one worker, for reference).

Every run appends one JSON line (``benchmarks/sampler/results/parallel/cells.jsonl``: the simulated
time at which each trial was told, the best-so-far regret then, the sampler's CPU seconds);
finished cells are skipped. The summary gives the median regret at fixed wall times and the
win rate of ``fantasy`` against ``liar`` and ``gp`` at each.

Example::

    python -m benchmarks.sampler.parallel --seeds 10 --trials 48 --workers 4
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import heapq
import json
import math
import os
from pathlib import Path
import time
from typing import Any
import warnings

import numpy as np
import optuna

from benchmarks.sampler.problems import get_problem
from benchmarks.sampler.regret import append_record
from benchmarks.sampler.regret import win_rate


RESULTS_DIR = Path(__file__).resolve().parent / "results" / "parallel"
SAMPLERS = ("fantasy", "liar", "gp", "sequential")
PROBLEMS = ("branin", "hartmann6", "lr_wd_bs", "rosenbrock4", "levy10", "hpobench_vehicle")


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=4)
    from optuna_gamma import GammaBOSampler

    return GammaBOSampler(
        seed=seed, n_startup_trials=4, parallel="liar" if name == "liar" else "fantasy"
    )


def simulate(
    problem_name: str,
    sampler_name: str,
    seed: int,
    n_trials: int,
    n_workers: int,
    eval_time: float,
) -> dict[str, Any]:
    """One asynchronous run (module docstring); returns its record."""
    problem = get_problem(problem_name)
    study = optuna.create_study(
        direction=problem.direction, sampler=make_sampler(sampler_name, seed)
    )
    workers = 1 if sampler_name == "sequential" else n_workers
    durations = np.random.default_rng(10_000 + seed)
    events: list[tuple[float, int, Any, float]] = []  # (finish time, trial number, trial, value)
    told_at, regret, values = [], [], []
    cpu_total = 0.0
    best = math.inf
    asked = 0

    def start(now: float) -> None:
        nonlocal asked, cpu_total
        c0 = time.process_time()
        trial = study.ask()
        value = problem.objective(trial)  # suggest_* happen here: the trial holds its params
        cpu = time.process_time() - c0
        cpu_total += cpu
        asked += 1
        finish = now + cpu + eval_time * float(np.exp(0.5 * durations.standard_normal()))
        heapq.heappush(events, (finish, trial.number, trial, value))

    for _ in range(min(workers, n_trials)):
        start(0.0)
    while events:
        now, _, trial, value = heapq.heappop(events)
        study.tell(trial, value)
        best = min(best, problem.regret(value))
        told_at.append(now)
        regret.append(best)
        values.append(value)
        if asked < n_trials:
            start(now)
    return {
        "problem": problem_name,
        "sampler": sampler_name,
        "seed": seed,
        "workers": workers,
        "n_trials": n_trials,
        "eval_time": eval_time,
        "told_at": [round(t, 4) for t in told_at],
        "regret": regret,
        "values": values,
        "cpu_s": round(cpu_total, 3),
    }


def regret_at(record: dict[str, Any], t: float) -> float:
    """Best-so-far regret at simulated wall time ``t`` (inf before the first result)."""
    out = math.inf
    for when, r in zip(record["told_at"], record["regret"]):
        if when > t:
            break
        out = r
    return out


def summarize(records: list[dict[str, Any]], times: Sequence[float]) -> str:
    problems = list(dict.fromkeys(r["problem"] for r in records))
    samplers = [s for s in SAMPLERS if any(r["sampler"] == s for r in records)]
    by = {(r["problem"], r["sampler"], r["seed"]): r for r in records}
    seeds = sorted({r["seed"] for r in records})
    lines = [
        "# Parallel workers: regret against simulated wall time",
        "",
        f"{records[0]['workers'] if records else '?'} workers for the parallel samplers, "
        f"evaluation time log-normal (median {records[0]['eval_time']} s, sigma 0.5), "
        f"{len(seeds)} seeds; the sampler's own CPU time is added to its worker's clock.",
        "",
    ]
    lines += [
        "## Median best regret at wall time t (s)",
        "",
        "| problem | sampler | " + " | ".join(f"t={t:g}" for t in times) + " | CPU s/run |",
        "| --- | --- | " + " | ".join("---" for _ in times) + " | --- |",
    ]
    for p in problems:
        for s in samplers:
            rs = [by[(p, s, seed)] for seed in seeds if (p, s, seed) in by]
            if not rs:
                continue
            cells = [f"{np.median([regret_at(r, t) for r in rs]):.3g}" for t in times]
            lines.append(
                f"| {p} | {s} | "
                + " | ".join(cells)
                + f" | {np.mean([r['cpu_s'] for r in rs]):.2f} |"
            )
    lines += [
        "",
        "## Win rate of fantasy (lower regret at the same wall time; ties 1/2)",
        "",
        "| against | pairs | " + " | ".join(f"t={t:g}" for t in times) + " |",
        "| --- | --- | " + " | ".join("---" for _ in times) + " |",
    ]
    for other in [s for s in samplers if s != "fantasy"]:
        pairs = [
            (by[(p, "fantasy", seed)], by[(p, other, seed)])
            for p in problems
            for seed in seeds
            if (p, "fantasy", seed) in by and (p, other, seed) in by
        ]
        if not pairs:
            continue
        cells = []
        for t in times:
            ours = [regret_at(a, t) for a, _ in pairs]
            theirs = [regret_at(b, t) for _, b in pairs]
            cells.append(f"{win_rate(ours, theirs):.2f}")
        lines.append(f"| {other} | {len(pairs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS))
    ap.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=SAMPLERS)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--trials", type=int, default=48)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--eval-time", type=float, default=1.0, help="median evaluation time (s)")
    ap.add_argument("--times", type=float, nargs="+", default=[4.0, 8.0, 12.0, 16.0])
    ap.add_argument("--out", type=Path, default=RESULTS_DIR)
    ap.add_argument("--summary-only", action="store_true")
    args = ap.parse_args(argv)
    if args.workers < 1 or args.trials < 1 or args.seeds < 1 or not args.eval_time > 0:
        raise ValueError("--workers, --trials, --seeds must be >= 1 and --eval-time > 0")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")
    args.out.mkdir(parents=True, exist_ok=True)
    cells = args.out / "cells.jsonl"
    done = set()
    if cells.exists():
        for line in cells.read_text().splitlines():
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            done.add((r["problem"], r["sampler"], r["seed"]))
    if not args.summary_only:
        for seed in range(args.seeds):
            for p in args.problems:
                get_problem(p)
                for s in args.samplers:
                    if (p, s, seed) in done:
                        continue
                    record = simulate(p, s, seed, args.trials, args.workers, args.eval_time)
                    append_record(cells, record)
                    print(
                        f"{p} {s} seed={seed} regret@end={record['regret'][-1]:.4g} "
                        f"cpu={record['cpu_s']:.1f}s",
                        flush=True,
                    )
    records = [json.loads(line) for line in cells.read_text().splitlines() if line.strip()]
    text = summarize(records, args.times)
    (args.out / "summary.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
