"""Where the first dozen trials go: how many proposals sit at a corner of the box.

For each held-out function (``HELD_OUT`` in ``benchmarks/sampler/problems.py``) and seeds 0-9,
12 trials of ``GammaBOSampler()`` and of ``GPSampler(n_startup_trials=2)`` (both with 2 random
start-up trials); a proposal is at a corner when every coordinate lies within 1 % of the box's
width of a bound. Prints, per sampler, the number of corner proposals at each trial (3 to 12)
summed over the functions and seeds, and the share of coordinates within 1 % of a bound.

    PYTHONPATH=$PWD python benchmarks/sampler/results/heldout/corners.py > corners.md
"""

from __future__ import annotations

import warnings

import numpy as np
import optuna

from benchmarks.sampler.problems import get_problem
from benchmarks.sampler.problems import HELD_OUT
from optuna_gamma import GammaBOSampler


def _unit(trial: optuna.trial.FrozenTrial) -> np.ndarray:
    out = []
    for name, value in trial.params.items():
        dist = trial.distributions[name]
        assert isinstance(dist, optuna.distributions.FloatDistribution)
        out.append((value - dist.low) / (dist.high - dist.low))
    return np.array(out)


def main() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.simplefilter("ignore")
    makers = {
        "GammaBOSampler()": lambda seed: GammaBOSampler(seed=seed),
        "GPSampler(n_startup_trials=2)": lambda seed: optuna.samplers.GPSampler(
            seed=seed, n_startup_trials=2
        ),
    }
    print("| sampler | runs | corner proposals at trial 3, 4, ..., 12 | coordinates at a bound |")
    print("| --- | ---: | --- | ---: |")
    for label, make in makers.items():
        corners = np.zeros(10, dtype=int)
        edge = []
        runs = 0
        for name in HELD_OUT:
            problem = get_problem(name)
            for seed in range(10):
                study = optuna.create_study(sampler=make(seed), direction=problem.direction)
                study.optimize(problem.objective, n_trials=12)
                runs += 1
                for trial in study.trials[2:]:
                    u = _unit(trial)
                    at_bound = np.minimum(u, 1.0 - u) < 0.01
                    edge.append(at_bound.mean())
                    corners[trial.number - 2] += int(at_bound.all())
        print(f"| {label} | {runs} | {', '.join(map(str, corners))} | {np.mean(edge):.2f} |")


if __name__ == "__main__":
    main()
