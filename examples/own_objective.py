"""GammaBOSampler on your own objective: an SVM's cross-validated accuracy on scikit-learn digits.

    python examples/own_objective.py --n-trials 30

GammaBOSampler is an ordinary Optuna sampler: pass it to ``optuna.create_study`` and optimize any
objective. Here it tunes the two log-scaled hyperparameters of an RBF support vector machine.
"""

from __future__ import annotations

import argparse

import optuna
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_val_score
from sklearn.svm import SVC

from optuna_gamma import GammaBOSampler


def main(argv: list[str] | None = None) -> optuna.Study:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    x, y = load_digits(return_X_y=True)

    def objective(trial: optuna.Trial) -> float:
        c = trial.suggest_float("C", 1e-3, 1e3, log=True)
        gamma = trial.suggest_float("gamma", 1e-5, 1e-1, log=True)
        return cross_val_score(SVC(C=c, gamma=gamma), x, y, cv=3).mean()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=GammaBOSampler(seed=args.seed))
    study.optimize(objective, n_trials=args.n_trials)
    print(f"best 3-fold accuracy {study.best_value:.4f} with {study.best_params}")
    return study


if __name__ == "__main__":
    main()
