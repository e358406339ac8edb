"""Per-epoch learning-rate study on MNIST-500 with the thesis's CNN (thesis fig. 8), Python API.

    python examples/per_epoch_mnist.py --data-root ../shared/data --epochs 3 --trials 12

Every epoch is an Optuna study ``"mnist500/epoch-NNN"`` whose trials train a copy of the current
network for one epoch at a GammaBOSampler-proposed learning rate; the best copy (model and
optimizer state) is adopted: the thesis's procedure, ``policy="thesis"``. (The default policy
spends a ``budget`` of training epochs instead: ``examples/own_training.py``.) The run resumes if
interrupted (run it again); open the studies with the printed optuna-dashboard command.
"""

from __future__ import annotations

import argparse

import optuna

from optuna_gamma.tuner import SearchSpace
from optuna_gamma.tuner import ThesisTrainer
from optuna_gamma.tuner import tune_per_epoch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", required=True, help="folder holding mnist/MNIST/raw/*.gz")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--trials", type=int, default=12, help="trials per epoch (2 start-up + 10 BO)")
    p.add_argument("--sampler", default="gamma")
    p.add_argument("--run-dir", default="runs/mnist500")
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    # --- the core: the thesis's trainer, its search space, one call --------------------------
    trainer = ThesisTrainer(
        "mnist", args.data_root, subset=500
    )  # thesis CNN, 400 train / 100 valid
    result = tune_per_epoch(
        trainer,
        SearchSpace(lr_low=1e-3, lr_high=0.5),  # log scale; batch 50, weight decay 1e-3
        sampler=args.sampler,
        policy="thesis",
        trials_per_epoch=args.trials,
        epochs=args.epochs,
        objective="kappa1",
        run="mnist500",
        run_dir=args.run_dir,
    )
    for e in result.schedule:
        print(
            f"epoch {e.epoch}: lr {e.lr:.4g}  kappa {e.value:.3f}  valid accuracy "
            f"{e.metrics['accuracy']:.3f}"
        )
    print(f"test accuracy {result.test['accuracy']:.3f}, MCC {result.test['mcc']:.3f}")
    # ------------------------------------------------------------------------------------------
    print(f"optuna-dashboard {result.storage}")


if __name__ == "__main__":
    main()
