"""Knowledge across epochs: GammaBOSampler with and without a history, on a drifting function.

The per-epoch tuner runs one short study per training epoch. This benchmark imitates it on a
2-D function (minimized) whose optimum and level drift with the epoch: epoch ``e = 0..E-1`` is a
fresh study of ``T`` trials (default 10 epochs x 3 trials), a trial at ``u`` returns
``level(e) + g_e(u)`` and records the epoch's start value ``level(e) + 1`` as the user attribute
``"start_value"`` (as the tuner records the start state's value), where

* ``g_e(u) = 1.5 |u - c_e|^2 + 0.3 (1 - exp(-|u - c_e|^2 / (2 * 0.1^2)))`` (a bowl with a
  sharper bottom; minimum 0 at ``c_e``),
* ``c_e = (0.2 + 0.06 e, 0.75 - 0.05 e)`` (the optimum moves about 0.08 per epoch),
* ``level(e) = 2 * 0.8^e`` (the loss falls as training goes on).

Arms, each ``GammaBOSampler(seed=...)`` with the default 2 start-up trials:

* ``fresh``: no history (every epoch starts from nothing: 2 random trials, then 1 GP trial);
* ``history``: ``history`` = every earlier epoch's trials with age ``e - e'`` and their
  improvement over the start value, ``target`` = the same improvement for the study's own
  trials, and the history's ``distributions`` (so the GP proposes from the first trial);
* ``history_raw``: the same history with raw values and no ``target`` (shows what the
  improvement target is for: raw values of different epochs differ by the level's fall).

Metric: the regret at age 0 of an epoch, ``min over its trials of g_e(u)`` (the optimum of
``g_e`` is 0), and the regret of its first trial; medians and quartiles over the seeds, per
epoch. Results: ``benchmarks/sampler/results/history/`` (``summary.md``, ``summary.json``,
``cells.jsonl``).

Example (about 3 CPU minutes on one core)::

    python -m benchmarks.sampler.history --seeds 10 --epochs 10 --trials 3
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import json
import math
from pathlib import Path
import platform
import sys
import time
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial

from benchmarks.machine import machine_line
from optuna_gamma import GammaBOSampler
from optuna_gamma import History


RESULTS_DIR = Path(__file__).resolve().parent / "results" / "history"
ARMS = ("fresh", "history", "history_raw")
SPACE: dict[str, BaseDistribution] = {
    "x": FloatDistribution(0.0, 1.0),
    "y": FloatDistribution(0.0, 1.0),
}


def centre(epoch: int) -> np.ndarray:
    """The optimum ``c_e`` of epoch ``epoch``."""
    return np.array([0.2 + 0.06 * epoch, 0.75 - 0.05 * epoch])


def level(epoch: int) -> float:
    """The objective's level at epoch ``epoch`` (falls as training goes on)."""
    return 2.0 * 0.8**epoch


def regret(u: Sequence[float] | np.ndarray, epoch: int) -> float:
    """``g_e(u)``: the regret at age 0 of the point ``u`` in epoch ``epoch`` (0 at ``c_e``)."""
    r2 = float(np.sum((np.asarray(u, dtype=float) - centre(epoch)) ** 2))
    return 1.5 * r2 + 0.3 * (1.0 - math.exp(-r2 / (2 * 0.1**2)))


def improvement(trial: FrozenTrial) -> float:
    """The tuner's target: the value's change from the epoch's start value."""
    assert trial.value is not None
    return trial.value - float(trial.user_attrs["start_value"])


def _raw(trial: FrozenTrial) -> float:
    assert trial.value is not None
    return trial.value


def _history(earlier: list[tuple[int, FrozenTrial]], epoch: int, raw: bool) -> History:
    params = [t.params for _, t in earlier]
    values = [_raw(t) if raw else improvement(t) for _, t in earlier]
    ages = [float(epoch - e) for e, _ in earlier]
    return History(params, values, ages, distributions=SPACE)


def run_arm(arm: str, seed: int, epochs: int, trials: int) -> list[dict[str, Any]]:
    """One arm on one seed: a cell per epoch (regrets of the epoch's trials)."""
    earlier: list[tuple[int, FrozenTrial]] = []
    cells = []
    for epoch in range(epochs):
        kwargs: dict[str, Any] = {}
        if arm != "fresh":
            snapshot = list(earlier)
            raw = arm == "history_raw"

            def history(study: optuna.Study, e: int = epoch, h: list = snapshot) -> History:
                return _history(h, e, raw)

            kwargs["history"] = history
            if not raw:
                kwargs["target"] = improvement
        sampler = GammaBOSampler(seed=10_000 * seed + epoch, **kwargs)
        study = optuna.create_study(direction="minimize", sampler=sampler)

        def objective(trial: optuna.Trial, e: int = epoch) -> float:
            u = (trial.suggest_float("x", 0.0, 1.0), trial.suggest_float("y", 0.0, 1.0))
            trial.set_user_attr("start_value", level(e) + 1.0)
            return level(e) + regret(u, e)

        start = time.process_time()
        study.optimize(objective, n_trials=trials)
        cpu = time.process_time() - start
        regrets = [regret((t.params["x"], t.params["y"]), epoch) for t in study.trials]
        cells.append(
            {
                "arm": arm,
                "seed": seed,
                "epoch": epoch,
                "regrets": regrets,
                "best": min(regrets),
                "first": regrets[0],
                "cpu_s": cpu,
            }
        )
        earlier.extend((epoch, t) for t in study.trials)
    return cells


def _quartiles(values: Sequence[float]) -> list[float]:
    return [float(q) for q in np.percentile(np.asarray(values, dtype=float), [25, 50, 75])]


def summarize(cells: list[dict[str, Any]], epochs: int) -> dict[str, Any]:
    """Per arm and epoch: quartiles over seeds of the best and first-trial regrets."""
    out: dict[str, Any] = {}
    for arm in ARMS:
        rows = [c for c in cells if c["arm"] == arm]
        if not rows:
            continue
        per_epoch = []
        for e in range(epochs):
            mine = [c for c in rows if c["epoch"] == e]
            per_epoch.append(
                {
                    "epoch": e,
                    "best": _quartiles([c["best"] for c in mine]),
                    "first": _quartiles([c["first"] for c in mine]),
                }
            )
        later = [c["best"] for c in rows if c["epoch"] >= 1]
        out[arm] = {
            "per_epoch": per_epoch,
            "median_best_epochs_1_on": float(np.median(later)) if later else math.nan,
            "cpu_s": float(sum(c["cpu_s"] for c in rows)),
        }
    return out


def _fmt(q: list[float]) -> str:
    return f"{q[1]:.3f} [{q[0]:.3f}, {q[2]:.3f}]"


def write(summary: dict[str, Any], meta: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps({"meta": meta, "arms": summary}, indent=1))
    arms = [a for a in ARMS if a in summary]
    lines = [
        "# Knowledge across epochs: regret at age 0 per epoch",
        "",
        f"- command: `{meta['command']}`",
        f"- {meta['seeds']} seeds x {meta['epochs']} epochs x {meta['trials']} trials per epoch;"
        f" optuna {meta['optuna']}, python {meta['python']}, {meta['machine']}",
        "- regret of an epoch = min over its trials of g_e(u) (0 at the epoch's optimum);"
        " median [Q1, Q3] over seeds",
        "- fresh: no history; history: earlier epochs' trials, age = epochs ago, improvement"
        " over the start value (`target`); history_raw: the same with raw values, no `target`",
        "",
        "| epoch | "
        + " | ".join(f"{a}: best of epoch" for a in arms)
        + " | "
        + " | ".join(f"{a}: first trial" for a in arms)
        + " |",
        "| ---: | " + " | ".join("---:" for _ in range(2 * len(arms))) + " |",
    ]
    for e in range(meta["epochs"]):
        best = [_fmt(summary[a]["per_epoch"][e]["best"]) for a in arms]
        first = [_fmt(summary[a]["per_epoch"][e]["first"]) for a in arms]
        lines.append(f"| {e} | " + " | ".join(best + first) + " |")
    lines += [
        "",
        "| arm | median regret of the best trial, epochs 1 on | CPU s (all seeds) |",
        "| --- | ---: | ---: |",
    ]
    for a in arms:
        lines.append(
            f"| {a} | {summary[a]['median_best_epochs_1_on']:.4f} | {summary[a]['cpu_s']:.0f} |"
        )
    (out / "summary.md").write_text("\n".join(lines) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    ap.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = ap.parse_args(argv)
    for name in ("seeds", "epochs", "trials"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cells = []
    for arm in args.arms:
        for seed in range(args.seeds):
            cells.extend(run_arm(arm, seed, args.epochs, args.trials))
    meta = {
        "command": "python -m benchmarks.sampler.history "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "seeds": args.seeds,
        "epochs": args.epochs,
        "trials": args.trials,
        "optuna": optuna.__version__,
        "python": platform.python_version(),
        "machine": machine_line(shared=True),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "cells.jsonl").open("w") as f:
        for c in cells:
            f.write(json.dumps(c) + "\n")
    write(summarize(cells, args.epochs), meta, args.out)
    print((args.out / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
