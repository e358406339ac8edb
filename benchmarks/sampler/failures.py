"""Objectives that fail in part of the space: GammaBOSampler against Optuna's samplers.

A trial fails when its objective returns NaN (Optuna records it as ``FAIL``: the usual sign of a
training that diverged at a learning rate too large) or raises an error the study catches.
Each problem below fails in a region, or at random, and has a known optimum among the points
that do not fail. Every (problem, sampler, seed) cell runs one study of ``--trials`` trials; the
summary gives, per problem and sampler, the median final regret, the median number of failed
trials and the paired win rate of GammaBOSampler against each other sampler (lower final
regret wins, ties count one half).

Problems:

    branin-region   Branin on [-5, 10] x [0, 15], NaN where x + y > 12 (38 % of the box; the
                    three minima, 0.397887, are outside it)
    lr-divergence   a smooth "loss after training" over log10 lr in [-5, 0] and log10 weight
                    decay in [-6, -1], NaN above a divergence line lr > 10^(-1.5 + 0.1 (wd + 3.5));
                    the optimum lies 0.3 decades below the line (a grid, then Nelder-Mead)
    branin-flaky    Branin where every trial fails with probability 0.15 whatever its point (a
                    transient error; seeded per trial)
    raise-early     (x - 0.4)^2 + y on [0, 1]^2 whose objective raises before it suggests y when
                    x > 0.5 (the trial then holds x alone); optimum 0
    branin-pruned   branin-region with ``optuna.TrialPruned`` raised instead of NaN (the objective
                    skips a setting it cannot run; Optuna records PRUNED)
    median-pruned   a learning curve over log10 lr in [-5, 0] and log10 weight decay in [-6, -1]:
                    ``final + 3 / (step + 1)`` reported at steps 0-9 to Optuna's
                    ``MedianPruner(n_startup_trials=3, n_warmup_steps=2)``, ``final`` returned;
                    optimum 0 at lr 10^-2.5, weight decay 10^-4

Failed trials counts FAIL and PRUNED trials alike (neither has a value).

Samplers (``--samplers``): ``gamma`` (GammaBOSampler()), ``gp`` (GPSampler()), ``gp_startup2``
(GPSampler(n_startup_trials=2)), ``tpe``, ``random``.

Example::

    python -m benchmarks.sampler.failures --seeds 10 --trials 40 \\
        --out benchmarks/sampler/results/failures
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Sequence
import json
import math
from pathlib import Path
import platform
import subprocess
import time
from typing import Any
import warnings

import numpy as np
import optuna


SAMPLERS = ("gamma", "gp", "gp_startup2", "tpe", "random")
PROBLEMS = (
    "branin-region",
    "lr-divergence",
    "branin-flaky",
    "raise-early",
    "branin-pruned",
    "median-pruned",
)
BRANIN_MIN = 0.397887357729739


class _Raised(Exception):
    """The error ``raise-early`` raises (caught by the study)."""


def _branin(x: float, y: float) -> float:
    b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
    return (y - b * x**2 + c * x - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10


def _lr_loss(a: np.ndarray | float, b: np.ndarray | float) -> Any:
    return 0.5 + (a + 1.8) ** 2 + 0.3 * (b + 4.0) ** 2 + 0.1 * np.sin(3.0 * a)


def _lr_diverges(a: np.ndarray | float, b: np.ndarray | float) -> Any:
    return a > -1.5 + 0.1 * (b + 3.5)


def _lr_optimum() -> float:
    """The smallest loss where training does not diverge: the best point of a 2001 x 2001 grid,
    refined by Nelder-Mead (it lies inside the region that trains, so no bound is active)."""
    from scipy.optimize import minimize

    a, b = np.meshgrid(np.linspace(-5.0, 0.0, 2001), np.linspace(-6.0, -1.0, 2001))
    loss = np.where(_lr_diverges(a, b), np.inf, _lr_loss(a, b))
    i = np.unravel_index(int(np.argmin(loss)), loss.shape)
    res = minimize(
        lambda z: float(_lr_loss(z[0], z[1])),
        [a[i], b[i]],
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-14},
    )
    assert not _lr_diverges(*res.x) and res.fun <= loss[i]
    return float(res.fun)


def objective(problem: str, seed: int) -> tuple[Callable[[optuna.Trial], float], float]:
    """The problem's objective (seeded where it draws) and its optimum."""
    if problem == "branin-region":

        def f(trial: optuna.Trial) -> float:
            x, y = trial.suggest_float("x", -5, 10), trial.suggest_float("y", 0, 15)
            return math.nan if x + y > 12 else _branin(x, y)

        return f, BRANIN_MIN
    if problem == "lr-divergence":

        def f(trial: optuna.Trial) -> float:
            a = math.log10(trial.suggest_float("lr", 1e-5, 1.0, log=True))
            b = math.log10(trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True))
            return math.nan if _lr_diverges(a, b) else float(_lr_loss(a, b))

        return f, _lr_optimum()
    if problem == "branin-flaky":

        def f(trial: optuna.Trial) -> float:
            x, y = trial.suggest_float("x", -5, 10), trial.suggest_float("y", 0, 15)
            flaky = np.random.default_rng([seed, trial.number]).random() < 0.15
            return math.nan if flaky else _branin(x, y)

        return f, BRANIN_MIN
    if problem == "raise-early":

        def f(trial: optuna.Trial) -> float:
            x = trial.suggest_float("x", 0, 1)
            if x > 0.5:
                raise _Raised
            return (x - 0.4) ** 2 + trial.suggest_float("y", 0, 1)

        return f, 0.0
    if problem == "branin-pruned":

        def f(trial: optuna.Trial) -> float:
            x, y = trial.suggest_float("x", -5, 10), trial.suggest_float("y", 0, 15)
            if x + y > 12:
                raise optuna.TrialPruned()
            return _branin(x, y)

        return f, BRANIN_MIN
    if problem == "median-pruned":

        def f(trial: optuna.Trial) -> float:
            a = math.log10(trial.suggest_float("lr", 1e-5, 1.0, log=True))
            b = math.log10(trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True))
            final = (a + 2.5) ** 2 + 0.3 * (b + 4.0) ** 2
            for step in range(10):
                trial.report(final + 3.0 / (step + 1), step)
                if trial.should_prune():
                    raise optuna.TrialPruned()
            return final

        return f, 0.0
    raise ValueError(f"unknown problem {problem!r}")


def make_pruner(problem: str) -> optuna.pruners.BasePruner | None:
    """The study's pruner (``None``: Optuna's default, which never prunes without reports)."""
    if problem == "median-pruned":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    return None


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    from optuna_gamma import GammaBOSampler

    factories: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
        "gamma": lambda: GammaBOSampler(seed=seed),
        "gp": lambda: optuna.samplers.GPSampler(seed=seed),
        "gp_startup2": lambda: optuna.samplers.GPSampler(seed=seed, n_startup_trials=2),
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
    }
    if name not in factories:
        raise ValueError(f"unknown sampler {name!r}; choose from {sorted(factories)}")
    return factories[name]()


def run_cell(problem: str, sampler: str, seed: int, trials: int) -> dict[str, Any]:
    f, optimum = objective(problem, seed)
    study = optuna.create_study(sampler=make_sampler(sampler, seed), pruner=make_pruner(problem))
    t0 = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(f, n_trials=trials, catch=(_Raised,))
    values = [
        float(t.value)
        for t in study.trials
        if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None
    ]
    no_value = (optuna.trial.TrialState.FAIL, optuna.trial.TrialState.PRUNED)
    failed = sum(t.state in no_value for t in study.trials)
    best = min(values, default=math.inf)
    return {
        "problem": problem,
        "sampler": sampler,
        "seed": seed,
        "trials": trials,
        "failed": failed,
        "best": best,
        "optimum": optimum,
        "regret": best - optimum,
        "cpu_s": time.process_time() - t0,
    }


def summarize(cells: Sequence[dict[str, Any]], samplers: Sequence[str]) -> str:
    problems = [p for p in PROBLEMS if any(c["problem"] == p for c in cells)]
    lines = [
        "| problem | sampler | median final regret | median failed (or pruned) trials "
        "| GammaBO wins |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for p in problems:
        by = {
            s: {c["seed"]: c for c in cells if c["problem"] == p and c["sampler"] == s}
            for s in samplers
        }
        for s in samplers:
            if not by[s]:
                continue
            regrets = [c["regret"] for c in by[s].values()]
            failed = [c["failed"] for c in by[s].values()]
            wins = ""
            if s != "gamma" and by.get("gamma"):
                seeds = sorted(set(by[s]) & set(by["gamma"]))
                score = sum(
                    1.0
                    if by["gamma"][k]["regret"] < by[s][k]["regret"]
                    else 0.5
                    if by["gamma"][k]["regret"] == by[s][k]["regret"]
                    else 0.0
                    for k in seeds
                )
                wins = f"{score / len(seeds):.2f}" if seeds else ""
            lines.append(
                f"| {p} | {s} | {np.median(regrets):.4g} | {np.median(failed):g} | {wins} |"
            )
    return "\n".join(lines) + "\n"


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=PROBLEMS)
    p.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=SAMPLERS)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--first-seed", type=int, default=0, help="seeds first .. first + seeds - 1")
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if args.seeds < 1 or args.trials < 1 or args.first_seed < 0:
        p.error("--seeds and --trials must be >= 1, --first-seed >= 0")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    args.out.mkdir(parents=True, exist_ok=True)
    cells = [
        run_cell(problem, sampler, seed, args.trials)
        for problem in args.problems
        for sampler in args.samplers
        for seed in range(args.first_seed, args.first_seed + args.seeds)
    ]
    meta = {
        "command": "python -m benchmarks.sampler.failures "
        f"--seeds {args.seeds} --trials {args.trials}"
        + (f" --first-seed {args.first_seed}" if args.first_seed else ""),
        "commit": _commit(),
        "optuna": optuna.__version__,
        "python": platform.python_version(),
    }
    (args.out / "cells.json").write_text(json.dumps({"meta": meta, "cells": cells}, indent=1))
    table = summarize(cells, args.samplers)
    (args.out / "summary.md").write_text(
        f"# Failing objectives ({meta['command']}, commit {meta['commit']}, Optuna "
        f"{meta['optuna']})\n\n{table}"
    )
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
