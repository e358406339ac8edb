"""Two categorical choices with additive effects and three continuous inputs (issue17_prior).

    PYTHONPATH=$PWD python benchmarks/sampler/results/issue17_prior/categorical_probe.py

Median regret after 30 trials over 10 seeds for each lengthscale prior the sampler has, and
for ``GPSampler()``. With ``v05.patch`` applied, ``"dim_scaled"`` is the narrower prior that was
measured: median regret 0.21 against 4e-4 with the published width (``README.md``).
"""

from __future__ import annotations

import warnings

import numpy as np
import optuna

from optuna_gamma import GammaBOSampler


RNG = np.random.default_rng(7)
EFFECT_1 = dict(zip("abcdef", RNG.normal(0, 1, 6)))
EFFECT_2 = {"relu": 0.0, "tanh": 0.8, "gelu": 0.3}
BEST = min(EFFECT_1.values())


def objective(trial: optuna.Trial) -> float:
    c1 = trial.suggest_categorical("c1", list("abcdef"))
    c2 = trial.suggest_categorical("c2", list(EFFECT_2))
    x = np.array([trial.suggest_float(f"x{i}", 0, 1) for i in range(3)])
    interaction = 0.5 if c1 in "ab" and x[0] > 0.5 else 0.0
    return (
        EFFECT_1[c1] + EFFECT_2[c2] + 3 * float(np.sum((x - [0.2, 0.7, 0.4]) ** 2)) + interaction
    )


def median_regret(make: object) -> float:
    regrets = []
    for seed in range(10):
        study = optuna.create_study(sampler=make(seed))  # type: ignore[operator]
        study.optimize(objective, n_trials=30)
        regrets.append(study.best_value - BEST)
    return float(np.median(regrets))


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    for prior in ("dim_scaled", "optuna"):
        regret = median_regret(lambda s, p=prior: GammaBOSampler(seed=s, lengthscale_prior=p))
        print(f"GammaBOSampler(lengthscale_prior={prior!r}): median regret {regret:.3g}")
    gp = median_regret(lambda s: optuna.samplers.GPSampler(seed=s))
    print(f"GPSampler(): median regret {gp:.3g}")
