"""How much time does the per-epoch tuner spend outside training and evaluation?

For each case (thesis CNN on MNIST-500; the MLP on digits) the script runs the per-epoch tuner
(GammaBOSampler, ``epochs x trials``, one torch thread) ``--reps`` times in fresh run
directories and measures, inside the process:

* ``train+eval``: the seconds the trainer's ``train_epoch`` and ``evaluate`` took (the trials'
  recorded ``time``), i.e. the work a plain training script would do as well;
* ``study``: the wall time of every study from its start to its adoption (``Engine.run_study``:
  asking, sampling, restoring and capturing states, uploading them to the artifact store,
  storage writes, telling, the adoption and the clean-up) and its split by part (each part timed
  by wrapping the engine's, the sampler's and the store's functions).

The overhead is ``(study - train+eval) / train+eval``, i.e. per trial, the time outside training
and evaluation as a fraction of it (median over the repetitions). Target: <= 10% for the thesis
CNN on MNIST-500. Both are measured twice: in wall-clock seconds and in CPU seconds of this
process (``time.process_time``). On a machine shared with other work the CPU figure is the
stable one; the wall figure also counts waiting for the disk (SQLite and artifact writes).

    OPTUNA_GAMMA_DATA_ROOT=../shared/data OMP_NUM_THREADS=1 \\
        python -m benchmarks.tuner.driver_overhead --reps 5
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import json
import os
from pathlib import Path
import platform
import statistics
import tempfile
import time
from typing import Any


RESULTS = Path(__file__).resolve().parent / "results" / "driver_overhead"

CASES: dict[str, dict[str, Any]] = {
    "thesis-cnn / MNIST-500": dict(dataset="mnist", model="thesis-cnn", subset=500),
    "mlp / digits": dict(dataset="digits", model="mlp", subset=None),
}


@contextlib.contextmanager
def timed(parts: dict[str, float], cpu: dict[str, float]) -> Any:
    """Wrap the engine's pieces with timers adding up into ``parts`` (wall) and ``cpu``."""
    import optuna

    from optuna_gamma.tuner.builtin.trainer import ThesisTrainer
    from optuna_gamma.tuner.execution import engine as engine_mod
    from optuna_gamma.tuner.execution import training as training_mod
    from optuna_gamma.tuner.persistence import states as states_mod
    from optuna_gamma.tuner.search.samplers import ReseededSampler

    targets = [
        (engine_mod.Engine, "run_study", "study"),
        (ThesisTrainer, "train_epoch", "train+eval"),
        (ThesisTrainer, "evaluate", "train+eval"),
        (states_mod.StateStore, "save", "artifact upload"),
        (states_mod.StateStore, "load", "artifact download"),
        (states_mod.StateStore, "remove", "artifact delete"),
        (training_mod, "capture", "capture"),
        (training_mod, "restore", "restore"),
        (optuna.trial.Trial, "set_user_attr", "user attributes"),
        (optuna.study.Study, "ask", "ask (incl. sampler set-up)"),
        (optuna.study.Study, "tell", "tell"),
        (ReseededSampler, "sample_relative", "sampler"),
        (ReseededSampler, "sample_independent", "sampler"),
    ]
    saved = []
    depth = {"study": 0}
    for owner, name, label in targets:
        fn = getattr(owner, name)
        saved.append((owner, name, fn))

        def wrap(fn: Any = fn, label: str = label) -> Any:
            @functools.wraps(fn)
            def inner(*args: Any, **kwargs: Any) -> Any:
                depth["study"] += label == "study"
                t0, c0 = time.perf_counter(), time.process_time()
                try:
                    return fn(*args, **kwargs)
                finally:
                    if depth["study"]:  # only what happens inside the studies (not the test split)
                        parts[label] += time.perf_counter() - t0
                        cpu[label] += time.process_time() - c0
                    depth["study"] -= label == "study"

            return inner

        setattr(owner, name, wrap())
    try:
        yield
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)


def run_case(
    case: dict[str, Any], data_root: str | None, epochs: int, trials: int, seed: int
) -> dict[str, Any]:
    import optuna

    from optuna_gamma.tuner import set_verbosity
    from optuna_gamma.tuner import ThesisTrainer
    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    set_verbosity(30)
    trainer = ThesisTrainer(case["dataset"], data_root, model=case["model"], subset=case["subset"])
    trainer.data  # data loading is not part of the tuner's overhead
    parts: dict[str, float] = collections.defaultdict(float)
    cpu: dict[str, float] = collections.defaultdict(float)
    with tempfile.TemporaryDirectory() as tmp, timed(parts, cpu):
        cfg = TunerConfig(
            run="o",
            run_dir=tmp,
            sampler="gamma",
            epochs=epochs,
            trials_per_epoch=trials,
            seed=seed,
        )
        result = tune_per_epoch(trainer, None, cfg)
    n = result.trials_trained + result.trials_reused
    # train+eval includes the study-start evaluation of the initial state (once per run)
    wall_study, wall_work = parts.pop("study"), parts.pop("train+eval")
    cpu_study, cpu_work = cpu.pop("study"), cpu.pop("train+eval")
    return {
        "trials": n,
        "reused": result.trials_reused,
        "train_eval_s": wall_work,
        "study_s": wall_study,
        "overhead_fraction": (wall_study - wall_work) / wall_work,
        "overhead_fraction_cpu": (cpu_study - cpu_work) / cpu_work,
        "overhead_ms_per_trial": 1e3 * (wall_study - wall_work) / n,
        "overhead_cpu_ms_per_trial": 1e3 * (cpu_study - cpu_work) / n,
        "train_eval_ms_per_trial": 1e3 * wall_work / n,
        "train_eval_cpu_ms_per_trial": 1e3 * cpu_work / n,
        "parts_ms_per_trial": {k: 1e3 * v / n for k, v in sorted(parts.items())},
        "parts_cpu_ms_per_trial": {k: 1e3 * v / n for k, v in sorted(cpu.items())},
    }


def summarize(rows: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per case, the medians over the repetitions of :func:`run_case`'s figures."""
    summary = {}
    med = statistics.median
    for name, rs in rows.items():
        summary[name] = {
            "overhead_fraction_cpu_median": med(r["overhead_fraction_cpu"] for r in rs),
            "overhead_fraction_median": med(r["overhead_fraction"] for r in rs),
            "overhead_cpu_ms_per_trial_median": med(r["overhead_cpu_ms_per_trial"] for r in rs),
            "overhead_ms_per_trial_median": med(r["overhead_ms_per_trial"] for r in rs),
            "train_eval_cpu_ms_per_trial_median": med(
                r["train_eval_cpu_ms_per_trial"] for r in rs
            ),
            "train_eval_ms_per_trial_median": med(r["train_eval_ms_per_trial"] for r in rs),
            "parts_cpu_ms_per_trial_median": {
                k: med(r["parts_cpu_ms_per_trial"].get(k, 0.0) for r in rs)
                for k in rs[0]["parts_cpu_ms_per_trial"]
            },
            "parts_ms_per_trial_median": {
                k: med(r["parts_ms_per_trial"].get(k, 0.0) for r in rs)
                for k in rs[0]["parts_ms_per_trial"]
            },
        }
    return summary


def render_markdown(meta: dict[str, Any], summary: dict[str, dict[str, Any]]) -> str:
    """``summary.md``: overhead per case, and where the time outside training goes."""
    lines = [
        f"Measured {meta['when']} on {meta['cpus']} CPUs (load average "
        f"{', '.join(f'{x:.1f}' for x in meta['load_average'])}), "
        f"GammaBOSampler, {meta['epochs']} epochs x {meta['trials_per_epoch']} trials, 1 torch "
        f"thread, median of {meta['reps']} runs.",
        "",
        "| case | train+eval per trial (CPU / wall) "
        "| outside train+eval per trial (CPU / wall) | overhead (CPU / wall) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, s in summary.items():
        lines.append(
            f"| {name} | {s['train_eval_cpu_ms_per_trial_median']:.1f} / "
            f"{s['train_eval_ms_per_trial_median']:.1f} ms "
            f"| {s['overhead_cpu_ms_per_trial_median']:.1f} / "
            f"{s['overhead_ms_per_trial_median']:.1f} ms "
            f"| {100 * s['overhead_fraction_cpu_median']:.1f}% / "
            f"{100 * s['overhead_fraction_median']:.1f}% |"
        )
    lines += [
        "",
        "Where the time outside training goes (CPU ms per trial, median; parts overlap: ask "
        "contains the sampler's set-up, the sampler line is the suggestion itself):",
        "",
        "| part | " + " | ".join(summary) + " |",
        "| --- |" + " ---: |" * len(summary),
    ]
    keys = sorted({k for s in summary.values() for k in s["parts_cpu_ms_per_trial_median"]})
    for k in keys:
        lines.append(
            f"| {k} | "
            + " | ".join(
                f"{s['parts_cpu_ms_per_trial_median'].get(k, 0.0):.2f}" for s in summary.values()
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--data-root", default=os.environ.get("OPTUNA_GAMMA_DATA_ROOT"))
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args()

    rows: dict[str, list[dict[str, Any]]] = {}
    for name, case in CASES.items():
        rows[name] = []
        for rep in range(args.reps):
            r = run_case(case, args.data_root, args.epochs, args.trials, seed=rep)
            rows[name].append(r)
            print(
                f"{name} rep {rep}: overhead {100 * r['overhead_fraction_cpu']:.1f}% CPU, "
                f"{100 * r['overhead_fraction']:.1f}% wall ({r['overhead_ms_per_trial']:.1f} ms "
                f"of "
                f"{r['train_eval_ms_per_trial']:.1f} ms per trial)",
                flush=True,
            )
    summary = summarize(rows)
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "reps": args.reps,
        "epochs": args.epochs,
        "trials_per_epoch": args.trials,
        "sampler": "gamma",
        "threads": 1,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(
        json.dumps({"meta": meta, "summary": summary, "rows": rows}, indent=2) + "\n"
    )
    text = render_markdown(meta, summary)
    (out / "summary.md").write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
