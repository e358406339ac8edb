"""Time per suggestion: GammaBOSampler (student_t) against Optuna's GPSampler.

For each dimension d in ``--dims`` and history size n in ``--sizes``, a study is pre-filled with
n COMPLETE trials (``study.add_trials``; values from Hartmann-6, padded with 0.5 for d < 6), one
untimed ask/tell lets each sampler make its first (cold) fit, then consecutive suggestions are
timed: ``study.ask()`` (which runs ``infer_relative_search_space`` + ``sample_relative``, i.e. the
GP fit and the acquisition optimization) + the ``suggest_float`` calls + ``study.tell()``, in CPU
seconds of this process (``time.process_time``; wall time is recorded too, but on a shared
machine it measures the neighbours as much as the sampler). Both samplers run in the same
process, interleaved, under the same thread limits (torch and BLAS), repeated on ``--reps``
independent histories.

GPSampler refits its hyperparameters at every suggestion, so ``--asks`` suggestions (default 3)
give its typical cost. GammaBOSampler refits on a schedule (every suggestion up to 32
observations, up to 64 while its fit finds noise, then when the data have grown by 12.5% since
the last fit; in between it reuses the hyperparameters and extends the Cholesky factor): it is
timed over a whole refit period
(``ceil(n / 8) + 1`` consecutive suggestions, at least ``--asks``), which contains one warm refit,
and its *mean* over that period is its amortized cost. The reported ratio is GammaBOSampler's
amortized mean over GPSampler's median.

Two kinds of history (``--history random|bo|both``, default both):

* ``random``: the n trials lie at uniformly random points (one history per rep, seed
  ``1000 * d + rep``).
* ``bo``: the n trials are the first n of a real optimization trajectory, i.e. the trials that a
  seeded GammaBOSampler (student_t, seed 0) produced when minimizing the same d-D function
  (Hartmann-6, and its 3-D slice with x4..x6 = 0.5). The points cluster around the optima, as
  they do in practice, which makes the acquisition landscape sharper than on random histories.
  The trajectory is generated once per d up to the largest size (``--bo-sizes``, prefixes for
  smaller sizes) and cached as JSON in ``--out`` (``trajectory_d{d}.json``), so later runs time
  the same history; both samplers are then timed on studies pre-filled with that same prefix,
  reps differing in the samplers' seeds.

Example::

    OMP_NUM_THREADS=1 python -m benchmarks.sampler.timing --reps 5 --asks 3 --threads 1
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import json
import math
import os
from pathlib import Path
import platform
import sys
import time
from typing import Any
import warnings

import numpy as np
import optuna

from benchmarks.machine import machine_line
from benchmarks.sampler.problems import hartmann6_function


RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _objective_value(x: np.ndarray) -> float:
    full = np.full(6, 0.5)
    full[: len(x)] = x
    return hartmann6_function(full)


def _make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "gamma_student_t":
        from optuna_gamma import GammaBOSampler

        return GammaBOSampler(predictive="student_t", seed=seed)
    if name == "gpsampler":
        return optuna.samplers.GPSampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r}")


def prefilled_study(
    sampler: optuna.samplers.BaseSampler, dim: int, n: int, seed: int
) -> optuna.Study:
    """A minimize study holding ``n`` COMPLETE trials at random points of [0, 1]^dim."""
    rng = np.random.default_rng(seed)
    dists = _dists(dim)
    study = optuna.create_study(sampler=sampler)
    X = rng.random((n, dim))
    study.add_trials(
        [
            optuna.trial.create_trial(
                params={f"x{i}": float(x[i]) for i in range(dim)},
                distributions=dists,
                value=_objective_value(x),
            )
            for x in X
        ]
    )
    return study


def _dists(dim: int) -> dict[str, optuna.distributions.BaseDistribution]:
    return {f"x{i}": optuna.distributions.FloatDistribution(0.0, 1.0) for i in range(dim)}


def bo_trajectory(dim: int, n: int, cache_dir: Path) -> list[dict[str, Any]]:
    """The first ``n`` trials (params and value) of a seeded GammaBOSampler run on the function.

    Cached in ``cache_dir/trajectory_d{dim}.json``; a cached trajectory is reused (and extended
    by a fresh run only if it is shorter than ``n``).
    """
    path = cache_dir / f"trajectory_d{dim}.json"
    if path.exists():
        cached = json.loads(path.read_text())
        if len(cached["trials"]) >= n:
            return cached["trials"][:n]
    from optuna_gamma import GammaBOSampler

    study = optuna.create_study(sampler=GammaBOSampler(predictive="student_t", seed=0))
    study.optimize(
        lambda t: _objective_value(
            np.array([t.suggest_float(f"x{i}", 0.0, 1.0) for i in range(dim)])
        ),
        n_trials=n,
    )
    trials = [{"params": t.params, "value": t.value} for t in study.trials]
    path.write_text(
        json.dumps(
            {
                "sampler": "GammaBOSampler(predictive='student_t', seed=0)",
                "dim": dim,
                "trials": trials,
            }
        )
    )
    return trials


def trajectory_study(
    sampler: optuna.samplers.BaseSampler, dim: int, trials: list[dict[str, Any]]
) -> optuna.Study:
    """A minimize study pre-filled with the given trajectory trials."""
    study = optuna.create_study(sampler=sampler)
    dists = _dists(dim)
    study.add_trials(
        [
            optuna.trial.create_trial(params=t["params"], distributions=dists, value=t["value"])
            for t in trials
        ]
    )
    return study


def time_suggestions(study: optuna.Study, dim: int, n_asks: int) -> list[tuple[float, float]]:
    """(CPU seconds, wall seconds) per ask + suggest + tell for ``n_asks`` consecutive
    suggestions."""
    times = []
    for _ in range(n_asks):
        c0, t0 = time.process_time(), time.perf_counter()
        trial = study.ask()
        x = np.array([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(dim)])
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        value = _objective_value(x)
        c1, t1 = time.process_time(), time.perf_counter()
        study.tell(trial, value)
        times.append((cpu + time.process_time() - c1, wall + time.perf_counter() - t1))
    return times


def asks_for(name: str, n: int, asks: int) -> int:
    """Suggestions timed per history: GammaBOSampler over a whole refit period."""
    if name != "gamma_student_t":
        return asks
    from optuna_gamma.samplers._refit import ALWAYS_REFIT
    from optuna_gamma.samplers._refit import REFIT_GROWTH

    if n <= ALWAYS_REFIT:
        return asks
    return max(asks, math.ceil(n * REFIT_GROWTH) + 1)


def _thread_info(threads: int) -> dict[str, Any]:
    info: dict[str, Any] = {
        "requested": threads,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }
    import torch

    info["torch.get_num_threads"] = torch.get_num_threads()
    info["torch.get_num_interop_threads"] = torch.get_num_interop_threads()
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {"api": d.get("internal_api"), "num_threads": d.get("num_threads")}
            for d in threadpool_info()
        ]
    except ImportError:
        info["blas"] = "threadpoolctl not installed"
    return info


def _greenlet_version() -> str | None:
    try:
        import greenlet
    except ImportError:
        return None
    return str(greenlet.__version__)


SAMPLERS = ("gamma_student_t", "gpsampler")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dims", type=int, nargs="+", default=[3, 6])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 500])
    ap.add_argument(
        "--bo-sizes",
        type=int,
        nargs="+",
        default=[50, 100, 200, 500],
        help="history sizes for the trajectory ('bo') histories",
    )
    ap.add_argument("--history", choices=("random", "bo", "both"), default="both")
    ap.add_argument("--reps", type=int, default=3, help="independent histories per cell")
    ap.add_argument("--asks", type=int, default=3, help="timed suggestions per history")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch and BLAS threads for both samplers"
    )
    ap.add_argument("--out", type=Path, default=RESULTS_DIR / "timing")
    args = ap.parse_args(argv)
    for name, v in (("--reps", args.reps), ("--asks", args.asks), ("--threads", args.threads)):
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    if any(not 1 <= d <= 6 for d in args.dims):
        raise ValueError(f"--dims must lie in 1..6, got {args.dims}")
    if any(n < 11 for n in list(args.sizes) + list(args.bo_sizes)):
        raise ValueError(f"--sizes must be > 10 (past both samplers' start-up), got {args.sizes}")
    return args


def measure(args: argparse.Namespace, cells: list[tuple[str, int, int]]) -> list[dict[str, Any]]:
    """Time both samplers, interleaved on the same histories: one record per (cell, rep,
    sampler) with the CPU and wall seconds of each timed suggestion."""
    kinds = {kind for kind, _, _ in cells}
    raw: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    trajectories = {}
    if "bo" in kinds:
        for dim in args.dims:
            t0 = time.perf_counter()
            trajectories[dim] = bo_trajectory(dim, max(args.bo_sizes), args.out)
            print(
                f"trajectory d={dim}: {len(trajectories[dim])} trials "
                f"({time.perf_counter() - t0:.0f}s)",
                flush=True,
            )
    for kind, dim, n in cells:
        for rep in range(args.reps):
            for name in SAMPLERS:  # interleaved, same history for both
                sampler = _make_sampler(name, rep)
                if kind == "random":
                    study = prefilled_study(sampler, dim, n, seed=1000 * dim + rep)
                else:
                    study = trajectory_study(sampler, dim, trajectories[dim][:n])
                time_suggestions(study, dim, 1)  # cold fit, untimed
                ts = time_suggestions(study, dim, asks_for(name, n, args.asks))
                raw.append(
                    {
                        "history": kind,
                        "sampler": name,
                        "dim": dim,
                        "n_trials": n,
                        "rep": rep,
                        "cpu_s": [round(c, 5) for c, _ in ts],
                        "wall_s": [round(w, 5) for _, w in ts],
                    }
                )
                print(
                    f"[{time.perf_counter() - t_start:.0f}s] {kind} d={dim} n={n} rep={rep} "
                    f"{name}: {len(ts)} asks, CPU median {np.median([c for c, _ in ts]):.3f}s "
                    f"mean {np.mean([c for c, _ in ts]):.3f}s",
                    flush=True,
                )
    return raw


def summarize(
    raw: list[dict[str, Any]], cells: list[tuple[str, int, int]]
) -> list[dict[str, Any]]:
    """Per (history, dim, trials): each sampler's median and mean CPU seconds, and the ratios."""
    rows = []
    for kind, dim, n in cells:
        row: dict[str, Any] = {"history": kind, "dim": dim, "n_trials": n}
        for s in SAMPLERS:
            cpu = [
                c
                for r in raw
                if r["sampler"] == s
                and r["dim"] == dim
                and r["n_trials"] == n
                and r["history"] == kind
                for c in r["cpu_s"]
            ]
            row[f"{s}_median_s"] = float(np.median(cpu))
            row[f"{s}_mean_s"] = float(np.mean(cpu))
        row["ratio"] = row["gamma_student_t_mean_s"] / row["gpsampler_median_s"]
        row["ratio_of_medians"] = row["gamma_student_t_median_s"] / row["gpsampler_median_s"]
        rows.append(row)
    return rows


def render_markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """``timing.md``: the settings and one table row per (history, dim, trials)."""
    md = ["# Time per suggestion (ask + suggest + tell), CPU seconds", ""]
    md += [f"- {k}: {v}" for k, v in meta.items()]
    md += [
        "",
        "History: `random` = n trials at uniformly random points; `bo` = the first n trials of a "
        "seeded GammaBOSampler run on the same function (clustered, as in real use). "
        "GammaBOSampler: mean over a whole refit period (amortized) and median; "
        "GPSampler: median over its asks. "
        "Ratio = GammaBO amortized mean / GPSampler median.",
        "",
        "| history | dim | complete trials | GammaBO mean (amortized) | GammaBO median "
        "| GPSampler median | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    md += [
        f"| {r['history']} | {r['dim']} | {r['n_trials']} | {r['gamma_student_t_mean_s']:.4f} | "
        f"{r['gamma_student_t_median_s']:.4f} | {r['gpsampler_median_s']:.4f} | {r['ratio']:.2f} |"
        for r in rows
    ]
    return "\n".join(md) + "\n"


def write_results(
    out: Path, meta: dict[str, Any], rows: list[dict[str, Any]], raw: list[dict[str, Any]]
) -> str:
    """``timing.json`` (settings, rows, raw seconds), ``timing.csv`` and ``timing.md``."""
    (out / "timing.json").write_text(
        json.dumps({"meta": meta, "rows": rows, "raw": raw}, indent=1)
    )
    with open(out / "timing.csv", "w") as f:
        keys = list(rows[0])
        f.write(",".join(keys) + "\n")
        for r in rows:
            f.write(
                ",".join(f"{r[k]:.5g}" if isinstance(r[k], float) else str(r[k]) for k in keys)
                + "\n"
            )
    text = render_markdown(meta, rows)
    (out / "timing.md").write_text(text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")
    try:
        from threadpoolctl import threadpool_limits

        limiter: Any = threadpool_limits(limits=args.threads)
    except ImportError:
        limiter = None
    args.out.mkdir(parents=True, exist_ok=True)
    threads = _thread_info(args.threads)
    kinds = ("random", "bo") if args.history == "both" else (args.history,)
    cells = [
        (kind, dim, n)
        for kind in kinds
        for dim in args.dims
        for n in (args.sizes if kind == "random" else args.bo_sizes)
    ]
    raw = measure(args, cells)
    meta = {
        "command": "python -m benchmarks.sampler.timing "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "optuna": optuna.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": machine_line(shared=True),
        "threads": threads,
        # GPSampler optimizes its acquisition with batched L-BFGS-B when greenlet is importable
        # and falls back to sequential (slower) L-BFGS-B otherwise
        "greenlet (GPSampler batched L-BFGS-B)": _greenlet_version(),
        "reps": args.reps,
        "asks": args.asks,
    }
    print(write_results(args.out, meta, summarize(raw, cells), raw), end="")
    if limiter is not None:
        limiter.restore_original_limits()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
