"""How many fitted lengthscales sit at the 0.025 floor, per problem (README's first paragraph).

Run from the repository root::

    python benchmarks/sampler/results/issue17_floor/lengthscales.py ackley6 rastrigin3 schwefel2

For each problem and seeds 0-2, runs ``GammaBOSampler(seed=seed)`` for 50 trials and prints, for
the objective's fits at 10, 20, 30 and 40 observations, the number of lengthscales below 0.026
and the fitted noise ratio.
"""

from __future__ import annotations

import sys
from typing import Any
import warnings

import numpy as np
import optuna

from benchmarks.sampler.problems import get_problem
from optuna_gamma import GammaBOSampler
import optuna_gamma.samplers._gamma_bo as gamma_bo


def main(problems: list[str]) -> None:
    """Print the counts (module docstring)."""
    warnings.filterwarnings("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    fits: list[tuple[int, np.ndarray, float]] = []
    fit = gamma_bo.GammaBOSampler._fit

    def recording_fit(
        self: Any, study: Any, space: Any, X: Any, y: Any, target: str, *a: Any, **k: Any
    ) -> Any:
        gp = fit(self, study, space, X, y, target, *a, **k)
        if gp is not None and target == "objective":
            lengthscales = 1.0 / np.sqrt(np.asarray(gp.params.inv_sq_lengthscales))
            fits.append((len(X), lengthscales, float(gp.params.noise)))
        return gp

    gamma_bo.GammaBOSampler._fit = recording_fit  # type: ignore[method-assign]
    for name in problems:
        problem = get_problem(name)
        for seed in range(3):
            fits.clear()
            study = optuna.create_study(
                sampler=GammaBOSampler(seed=seed), direction=problem.direction
            )
            study.optimize(problem.objective, n_trials=50)
            shown = [f for f in fits if f[0] in (10, 20, 30, 40)]
            print(
                name,
                seed,
                "at the floor:",
                [int((ls < 0.026).sum()) for _, ls, _ in shown],
                "noise:",
                [f"{noise:.1g}" for _, _, noise in shown],
            )


if __name__ == "__main__":
    main(sys.argv[1:])
