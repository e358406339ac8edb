"""Does enqueueing the previous epoch's best lr as the next epoch's first trial help?

Runs the per-epoch driver with and without warm start on the same seeds (paired: same initial
model, same batch orders, same sampler seeds) and compares the final epoch's adopted validation
objective (unclipped kappa_1) and the test accuracy. The figure decides the default of
``optuna_gamma.tuner.TunerConfig.warm_start``.

    OMP_NUM_THREADS=1 python -m benchmarks.tuner.driver_warm_start --dataset digits \
        --seeds 8 --epochs 4 --trials 6 \
        --out benchmarks/tuner/results/driver_warm_start/driver_warm_start_digits.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import tempfile
import time
from typing import Any

import numpy as np
import optuna


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--dataset", default="digits")
    p.add_argument("--data-root", default=None)
    p.add_argument("--subset", type=int, default=None)
    p.add_argument("--model", default="mlp")
    p.add_argument("--sampler", default="gamma")
    p.add_argument("--seeds", type=int, default=6)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from optuna_gamma.tuner import set_verbosity
    from optuna_gamma.tuner import ThesisTrainer
    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner import TunerConfig

    set_verbosity(30)

    rows = []
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        trainer = ThesisTrainer(
            args.dataset, args.data_root, model=args.model, subset=args.subset, data_seed=seed
        )
        row: dict[str, Any] = {"seed": seed}
        for warm in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                r = tune_per_epoch(
                    trainer,
                    None,
                    TunerConfig(
                        sampler=args.sampler,
                        trials_per_epoch=args.trials,
                        epochs=args.epochs,
                        seed=seed,
                        run="ws",
                        run_dir=tmp,
                        warm_start=warm,
                    ),
                )
            key = "warm" if warm else "cold"
            row[key] = {
                "final_kappa": r.schedule[-1].value,
                "final_valid_accuracy": r.schedule[-1].metrics["accuracy"],
                "test_accuracy": r.test["accuracy"],
                "schedule": r.learning_rates,
            }
        rows.append(row)
        print(seed, row["cold"]["final_kappa"], row["warm"]["final_kappa"], flush=True)
    d_kappa = np.array([r["warm"]["final_kappa"] - r["cold"]["final_kappa"] for r in rows])
    d_acc = np.array([r["warm"]["test_accuracy"] - r["cold"]["test_accuracy"] for r in rows])
    summary = {
        "setup": vars(args),
        "mean_delta_final_kappa": float(d_kappa.mean()),
        "median_delta_final_kappa": float(np.median(d_kappa)),
        "warm_wins_kappa": int((d_kappa > 0).sum()),
        "ties_kappa": int((d_kappa == 0).sum()),
        "mean_delta_test_accuracy": float(d_acc.mean()),
        "warm_wins_test_accuracy": int((d_acc > 0).sum()),
        "ties_test_accuracy": int((d_acc == 0).sum()),
        "n": len(rows),
        "seconds": time.perf_counter() - t0,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()
