"""Parallel workers: speed-up, scaling against PostgreSQL, and what parallelism costs in quality.

Three measurements (results in ``benchmarks/tuner/results/scaling/``):

``speedup``
    Wall time per epoch of the thesis CNN on MNIST-500 (12 trials per epoch, 1 torch thread per
    worker) with 1 and 2 local workers on this machine, median over epochs and repetitions.
    Target: >= 1.7x with 2 workers on 2 cores.
``simulate``
    Beyond this machine: a fake trainer whose epoch *sleeps* a fixed time (no CPU), so that
    1, 4, 16 and 32 workers can run against PostgreSQL on 2 cores. Epoch wall time is compared
    with the ideal ``ceil(T / N) * epoch time``; the difference is the storage, sampling and
    adoption overhead, also given per trial.
``quality``
    Final validation objective and test accuracy with 1, 2 and 4 workers on the same seeds (the
    samplers see other pending trials when more workers run, so the schedules differ).

    OPTUNA_GAMMA_DATA_ROOT=../shared/data python -m benchmarks.tuner.scaling speedup --reps 3
    OPTUNA_GAMMA_TEST_POSTGRES=postgresql://... python -m benchmarks.tuner.scaling simulate
    OPTUNA_GAMMA_DATA_ROOT=../shared/data python -m benchmarks.tuner.scaling quality --seeds 5
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
import platform
import statistics
import tempfile
import time
from typing import Any


RESULTS = Path(__file__).resolve().parent / "results" / "scaling"


def _meta(**extra: Any) -> dict[str, Any]:
    return {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "load_average_at_end": os.getloadavg(),
        **extra,
    }


def _epoch_walls(storage: Any, run: str, epochs: int) -> list[float]:
    """Wall time of each epoch: first trial start to last trial completion."""
    import optuna
    from optuna.trial import TrialState

    out = []
    for e in range(1, epochs + 1):
        study = optuna.load_study(study_name=f"{run}/epoch-{e:03d}", storage=storage)
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        # Optuna allows a COMPLETE trial without timestamps (one added with add_trial):
        # it carries no timing, so it is left out rather than crash min/max on None.
        starts = [t.datetime_start for t in done if t.datetime_start is not None]
        ends = [t.datetime_complete for t in done if t.datetime_complete is not None]
        if not starts or not ends:
            raise ValueError(f"epoch {e} of run {run!r} has no timed complete trial")
        out.append((max(ends) - min(starts)).total_seconds())
    return out


# ------------------------------------------------------------------------------- speedup
def speedup(args: argparse.Namespace) -> dict[str, Any]:
    import optuna

    from optuna_gamma.tuner import get_storage
    from optuna_gamma.tuner import set_verbosity
    from optuna_gamma.tuner import ThesisTrainer
    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    set_verbosity(30)
    trainer = ThesisTrainer("mnist", args.data_root, subset=500)
    rows: list[dict[str, Any]] = []
    for rep in range(args.reps):
        for n in (1, 2):
            with tempfile.TemporaryDirectory() as tmp:
                cfg = TunerConfig(
                    run="s",
                    run_dir=tmp,
                    sampler="gamma",
                    epochs=args.epochs,
                    trials_per_epoch=12,
                    seed=rep,
                    workers=n,
                    num_threads=1,
                )
                result = tune_per_epoch(trainer, None, cfg)
                walls = _epoch_walls(get_storage(result.storage), "s", args.epochs)
            rows.append(
                {
                    "rep": rep,
                    "workers": n,
                    "epoch_walls_s": walls,
                    "compute_s": result.compute_time,
                    "trials": result.trials_trained + result.trials_reused,
                }
            )
            print(
                f"rep {rep} workers {n}: epochs {', '.join(f'{w:.2f}' for w in walls)} s",
                flush=True,
            )
    med = {
        n: statistics.median(w for r in rows if r["workers"] == n for w in r["epoch_walls_s"])
        for n in (1, 2)
    }
    summary = {"median_epoch_wall_s": med, "speedup_2_workers": med[1] / med[2]}
    return {
        "meta": _meta(
            reps=args.reps,
            epochs=args.epochs,
            model="thesis-cnn",
            data="MNIST-500",
            trials=12,
            threads_per_worker=1,
            sampler="gamma",
        ),
        "summary": summary,
        "rows": rows,
    }


# ------------------------------------------------------------------------------- simulate
class SleepTrainer:
    """A trainer whose epoch sleeps ``seconds`` (no CPU): the costs around it are the tuner's."""

    deterministic = True

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def build(self, seed: int, device: Any) -> Any:
        import torch

        from optuna_gamma.tuner import TrainingState

        torch.manual_seed(seed)
        model = torch.nn.Linear(4, 2)
        return TrainingState(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))

    def train_epoch(self, state: Any, hparams: Any, ctx: Any) -> dict[str, float]:
        time.sleep(self.seconds)
        return {"train_loss": 1.0}

    def evaluate(self, state: Any, split: str) -> dict[str, float]:
        lr = float(state.optimizer.param_groups[0]["lr"])
        return {"accuracy": 0.5, "loss": 1.0 + (math.log10(lr) + 2.0) ** 2}  # best at lr = 0.01


def simulate(args: argparse.Namespace) -> dict[str, Any]:
    import optuna
    from optuna.distributions import FloatDistribution

    from optuna_gamma.tuner import set_verbosity
    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    url = args.postgres or os.environ.get("OPTUNA_GAMMA_TEST_POSTGRES")
    if not url:
        raise SystemExit("simulate needs --postgres URL or $OPTUNA_GAMMA_TEST_POSTGRES")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    set_verbosity(30)
    space = {"lr": FloatDistribution(1e-4, 1.0, log=True)}
    rows = []
    stamp = time.strftime("%H%M%S")
    for n in args.workers:
        run = f"sim{stamp}w{n}"
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TunerConfig(
                run=run,
                run_dir=tmp,
                storage=url,
                sampler=args.sampler,
                epochs=args.epochs,
                trials_per_epoch=args.trials,
                workers=n,
                heartbeat_interval=10,
            )
            t0 = time.perf_counter()
            tune_per_epoch(SleepTrainer(args.seconds), space, cfg)
            total = time.perf_counter() - t0
            walls = _epoch_walls(url, run, args.epochs)
        ideal = math.ceil(args.trials / n) * args.seconds
        wall = statistics.median(walls)
        rows.append(
            {
                "workers": n,
                "epoch_walls_s": walls,
                "median_epoch_wall_s": wall,
                "ideal_s": ideal,
                "overhead_s": wall - ideal,
                "overhead_per_trial_ms": 1e3 * (wall - ideal) * n / args.trials,
                "run_wall_s": total,
            }
        )
        print(
            f"{n:>3} workers: epoch {wall:.2f} s (ideal {ideal:.2f} s, overhead "
            f"{wall - ideal:.2f} s)",
            flush=True,
        )
    return {
        "meta": _meta(
            epochs=args.epochs,
            trials=args.trials,
            seconds_per_epoch=args.seconds,
            sampler=args.sampler,
            storage="PostgreSQL 15 on 127.0.0.1",
        ),
        "rows": rows,
    }


# ------------------------------------------------------------------------------- quality
def quality(args: argparse.Namespace) -> dict[str, Any]:
    import optuna

    from optuna_gamma.tuner import set_verbosity
    from optuna_gamma.tuner import ThesisTrainer
    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    set_verbosity(30)
    trainer = ThesisTrainer(args.dataset, args.data_root, subset=args.subset)
    rows = []
    for seed in range(args.seeds):
        for n in (1, 2, 4):
            with tempfile.TemporaryDirectory() as tmp:
                cfg = TunerConfig(
                    run="q",
                    run_dir=tmp,
                    sampler=args.sampler,
                    epochs=args.epochs,
                    trials_per_epoch=args.trials,
                    seed=seed,
                    workers=n,
                )
                r = tune_per_epoch(trainer, None, cfg)
            rows.append(
                {
                    "seed": seed,
                    "workers": n,
                    "final_value": r.schedule[-1].value,
                    "final_valid_accuracy": r.schedule[-1].metrics["accuracy"],
                    "test_accuracy": r.test["accuracy"],
                    "schedule": r.learning_rates,
                    "reused": r.trials_reused,
                }
            )
            print(
                f"seed {seed} workers {n}: value {rows[-1]['final_value']:.4f} test "
                f"{rows[-1]['test_accuracy']:.4f}",
                flush=True,
            )
    summary = {}
    for n in (1, 2, 4):
        sel = [r for r in rows if r["workers"] == n]
        summary[n] = {
            "median_final_value": statistics.median(r["final_value"] for r in sel),
            "median_test_accuracy": statistics.median(r["test_accuracy"] for r in sel),
        }
    return {
        "meta": _meta(
            dataset=args.dataset,
            subset=args.subset,
            epochs=args.epochs,
            trials=args.trials,
            sampler=args.sampler,
            seeds=args.seeds,
        ),
        "summary": summary,
        "rows": rows,
    }


def _markdown(name: str, data: dict[str, Any]) -> str:
    m = data["meta"]
    load = ", ".join(f"{x:.1f}" for x in m["load_average_at_end"])
    head = f"Measured {m['when']} on {m['cpus']} CPUs; load average at the end {load}."
    if name == "speedup":
        s = data["summary"]
        return "\n".join(
            [
                head,
                "",
                "| workers | median epoch wall time | speed-up |",
                "| ---: | ---: | ---: |",
                f"| 1 | {s['median_epoch_wall_s'][1]:.2f} s | 1.00x |",
                f"| 2 | {s['median_epoch_wall_s'][2]:.2f} s | {s['speedup_2_workers']:.2f}x |",
            ]
        )
    if name == "simulate":
        lines = [
            head,
            "",
            f"Sleeping trainer: {m['seconds_per_epoch']} s per epoch, {m['trials']} trials per "
            f"epoch, "
            f"{m['epochs']} epochs, sampler {m['sampler']}, {m['storage']}.",
            "",
            "| workers | median epoch wall | ideal ceil(T/N) x epoch | overhead per epoch "
            "| overhead per trial x N |",
            "| ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in data["rows"]:
            lines.append(
                f"| {r['workers']} | {r['median_epoch_wall_s']:.2f} s | {r['ideal_s']:.2f} s | "
                f"{r['overhead_s']:.2f} s | {r['overhead_per_trial_ms']:.0f} ms |"
            )
        return "\n".join(lines)
    lines = [
        head,
        "",
        f"{m['dataset']} (subset {m['subset']}), {m['epochs']} epochs x {m['trials']} trials, "
        f"sampler {m['sampler']}, seeds 0..{m['seeds'] - 1}.",
        "",
        "| workers | median final validation objective | median test accuracy |",
        "| ---: | ---: | ---: |",
    ]
    for n, s in data["summary"].items():
        lines.append(f"| {n} | {s['median_final_value']:.4f} | {s['median_test_accuracy']:.4f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    a = sub.add_parser("speedup")
    a.add_argument("--reps", type=int, default=3)
    a.add_argument("--epochs", type=int, default=3)
    b = sub.add_parser("simulate")
    b.add_argument("--postgres", default=None)
    b.add_argument("--workers", type=int, nargs="+", default=[1, 4, 16, 32])
    b.add_argument("--trials", type=int, default=32)
    b.add_argument("--epochs", type=int, default=2)
    b.add_argument("--seconds", type=float, default=2.0)
    b.add_argument("--sampler", default="tpe")
    c = sub.add_parser("quality")
    c.add_argument("--seeds", type=int, default=5)
    c.add_argument("--dataset", default="mnist")
    c.add_argument("--subset", type=int, default=500)
    c.add_argument("--epochs", type=int, default=3)
    c.add_argument("--trials", type=int, default=12)
    c.add_argument("--sampler", default="gamma")
    for x in (a, c):
        x.add_argument("--data-root", default=os.environ.get("OPTUNA_GAMMA_DATA_ROOT"))
    args = p.parse_args()
    data = {"speedup": speedup, "simulate": simulate, "quality": quality}[args.what](args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.what}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    md = _markdown(args.what, data)
    (RESULTS / f"{args.what}.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
