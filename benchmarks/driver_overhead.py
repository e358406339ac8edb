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
CNN on MNIST-500.

    OPTUNA_GAMMA_DATA_ROOT=../shared/data OMP_NUM_THREADS=1 python -m benchmarks.driver_overhead --reps 5
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

CASES = {
    "thesis-cnn / MNIST-500": dict(dataset="mnist", model="thesis-cnn", subset=500),
    "mlp / digits": dict(dataset="digits", model="mlp", subset=None),
}


@contextlib.contextmanager
def timed(parts: dict[str, float]) -> Any:
    """Wrap the engine's pieces with timers adding up into ``parts`` (restored on exit)."""
    import optuna

    from optuna_gamma.tuner import engine as engine_mod
    from optuna_gamma.tuner import states as states_mod
    from optuna_gamma.tuner import trainer as trainer_mod

    targets = [
        (engine_mod.Engine, "run_study", "study"),
        (states_mod.StateStore, "save", "artifact upload"),
        (states_mod.StateStore, "load", "artifact download"),
        (states_mod.StateStore, "remove", "artifact delete"),
        (trainer_mod, "capture", "capture"),
        (trainer_mod, "restore", "restore"),
        (optuna.trial.Trial, "set_user_attr", "user attributes"),
        (optuna.study.Study, "ask", "ask (incl. sampler set-up)"),
        (optuna.study.Study, "tell", "tell"),
        (engine_mod.ReseededSampler, "sample_relative", "sampler"),
        (engine_mod.ReseededSampler, "sample_independent", "sampler"),
    ]
    saved = []
    for owner, name, label in targets:
        fn = getattr(owner, name)
        saved.append((owner, name, fn))

        def wrap(fn: Any = fn, label: str = label) -> Any:
            @functools.wraps(fn)
            def inner(*args: Any, **kwargs: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    parts[label] += time.perf_counter() - t0

            return inner

        setattr(owner, name, wrap())
    try:
        yield
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)


def run_case(case: dict[str, Any], data_root: str | None, epochs: int, trials: int, seed: int) -> dict[str, Any]:
    import optuna
    from optuna.trial import TrialState

    from optuna_gamma.tuner import ThesisTrainer
    from optuna_gamma.tuner import TunerConfig
    from optuna_gamma.tuner import set_verbosity
    from optuna_gamma.tuner import tune_per_epoch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    set_verbosity(30)
    trainer = ThesisTrainer(case["dataset"], data_root, model=case["model"], subset=case["subset"])
    trainer.data  # data loading is not part of the tuner's overhead
    parts: dict[str, float] = collections.defaultdict(float)
    with tempfile.TemporaryDirectory() as tmp, timed(parts):
        cfg = TunerConfig(run="o", run_dir=tmp, sampler="gamma", epochs=epochs, trials_per_epoch=trials, seed=seed)
        result = tune_per_epoch(trainer, None, cfg)
        train_eval = 0.0
        n = 0
        for e in range(1, epochs + 1):
            study = optuna.load_study(study_name=f"o/epoch-{e:03d}", storage=result.storage)
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                if "reused_from" not in t.user_attrs:
                    train_eval += t.user_attrs["time"]["train"] + t.user_attrs["time"]["eval"]
                n += 1
    study_wall = parts.pop("study")
    overhead = study_wall - train_eval
    return {
        "trials": n, "reused": result.trials_reused, "train_eval_s": train_eval, "study_s": study_wall,
        "overhead_fraction": overhead / train_eval, "overhead_ms_per_trial": 1e3 * overhead / n,
        "train_eval_ms_per_trial": 1e3 * train_eval / n,
        "parts_ms_per_trial": {k: 1e3 * v / n for k, v in sorted(parts.items())},
    }


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
            print(f"{name} rep {rep}: overhead {100 * r['overhead_fraction']:.1f}% "
                  f"({r['overhead_ms_per_trial']:.1f} ms of {r['train_eval_ms_per_trial']:.1f} ms per trial)", flush=True)
    summary = {}
    for name, rs in rows.items():
        parts = {k: statistics.median(r["parts_ms_per_trial"].get(k, 0.0) for r in rs) for k in rs[0]["parts_ms_per_trial"]}
        summary[name] = {
            "overhead_fraction_median": statistics.median(r["overhead_fraction"] for r in rs),
            "overhead_ms_per_trial_median": statistics.median(r["overhead_ms_per_trial"] for r in rs),
            "train_eval_ms_per_trial_median": statistics.median(r["train_eval_ms_per_trial"] for r in rs),
            "parts_ms_per_trial_median": parts,
        }
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(), "load_average": os.getloadavg(), "reps": args.reps, "epochs": args.epochs,
        "trials_per_epoch": args.trials, "sampler": "gamma", "threads": 1,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps({"meta": meta, "summary": summary, "rows": rows}, indent=2) + "\n")
    lines = [
        f"Measured {meta['when']} on {meta['cpus']} CPUs (load average {', '.join(f'{x:.1f}' for x in meta['load_average'])}), "
        f"GammaBOSampler, {args.epochs} epochs x {args.trials} trials, 1 torch thread, median of {args.reps} runs.",
        "",
        "| case | train+eval per trial | outside train+eval per trial | overhead |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, s in summary.items():
        lines.append(f"| {name} | {s['train_eval_ms_per_trial_median']:.1f} ms | {s['overhead_ms_per_trial_median']:.1f} ms "
                     f"| {100 * s['overhead_fraction_median']:.1f}% |")
    lines += ["", "Where the time outside training goes (ms per trial, median; parts overlap: ask contains the sampler's "
              "set-up, the sampler line is the suggestion itself):", "",
              "| part | " + " | ".join(summary) + " |", "| --- |" + " ---: |" * len(summary)]
    keys = sorted({k for s in summary.values() for k in s["parts_ms_per_trial_median"]})
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(f"{s['parts_ms_per_trial_median'].get(k, 0.0):.2f}" for s in summary.values()) + " |")
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
