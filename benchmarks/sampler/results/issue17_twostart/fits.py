"""Is the warm-started hyperparameter fit at its best optimum? (README)

Runs ``GammaBOSampler(seed)`` for 50 trials on a problem, keeps the data and the fitted
hyperparameters of the objective's GP at 20, 30, 40 and 49 observations, and refits the same
data from the default start (``fit_gp(..., init=None)``: the lengthscale prior's mode, noise
ratio 0.1). Prints the log posterior (log evidence + log prior, the objective of the MAP fit) of
both and their lengthscales (sorted)::

    PYTHONPATH=$PWD python benchmarks/sampler/results/issue17_twostart/fits.py ackley6,griewank5 2
"""

from __future__ import annotations

import sys
from typing import Any
import warnings

import numpy as np
import optuna

from benchmarks.sampler.problems import get_problem
from optuna_gamma import GammaBOSampler
from optuna_gamma.gp.fit import fit_gp
from optuna_gamma.gp.fit import log_marginal_likelihood
from optuna_gamma.gp.priors import log_prior
import optuna_gamma.samplers._gamma_bo as gamma_bo


def main(names: str, n_seeds: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")
    captured: dict[int, Any] = {}
    original = gamma_bo.GammaBOSampler._fit

    def spy(self: Any, study: Any, space: Any, X: Any, y: Any, *args: Any, **kwargs: Any) -> Any:
        gp = original(self, study, space, X, y, *args, **kwargs)
        if gp is not None:
            captured[len(X)] = (X.copy(), y.copy(), gp.params, gp.settings)
        return gp

    gamma_bo.GammaBOSampler._fit = spy  # type: ignore[method-assign]
    print("| problem | seed | n | used: log posterior | lengthscales | default start | ls |")
    print("| --- | ---: | ---: | ---: | --- | ---: | --- |")
    for name in names.split(","):
        problem = get_problem(name)
        for seed in range(n_seeds):
            captured.clear()
            study = optuna.create_study(
                sampler=GammaBOSampler(seed=seed), direction=problem.direction
            )
            study.optimize(problem.objective, n_trials=50)
            for n in (20, 30, 40, 49):
                X, y, used, settings = captured[n]
                fresh = fit_gp(X, y, settings).params
                rows = []
                for params in (used, fresh):
                    value = log_marginal_likelihood(X, y, params, settings)
                    value += log_prior(params, settings)
                    ls = np.sort(np.asarray(params.inv_sq_lengthscales) ** -0.5)
                    rows.append(f"{value:.2f} | {np.array2string(ls, precision=2)}")
                print(f"| {name} | {seed} | {n} | " + " | ".join(rows) + " |")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
