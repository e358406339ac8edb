"""GammaBOSampler on the Branin function: 30 trials, a few seconds on a laptop CPU.

``python example.py`` loads the sampler from the OptunaHub registry (``optunahub.load_module``);
``python example.py --local`` loads the copy in this folder (before publication, or offline).
"""

from __future__ import annotations

import math
import os
import sys

import optuna
import optunahub


if "--local" in sys.argv[1:]:
    here = os.path.dirname(os.path.abspath(__file__))
    module = optunahub.load_local_module(
        package=os.path.basename(here), registry_root=os.path.dirname(here)
    )
else:
    module = optunahub.load_module("samplers/gamma_bo")
GammaBOSampler = module.GammaBOSampler


def branin(trial: optuna.Trial) -> float:
    """Branin-Hoo; minimum 0.397887 at (-pi, 12.275), (pi, 2.275) and (9.42478, 2.475)."""
    x = trial.suggest_float("x", -5.0, 10.0)
    y = trial.suggest_float("y", 0.0, 15.0)
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (y - b * x**2 + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=GammaBOSampler(seed=0))
    study.optimize(branin, n_trials=30)
    print(f"best value {study.best_value:.6f} (optimum 0.397887) at {study.best_params}")
