"""Where a suggestion's time goes: GammaBOSampler's parts timed inside consecutive suggestions.

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python \
        benchmarks/sampler/results/issue17_timing_split/breakdown.py 3 50

A study with ``n`` COMPLETE trials at random points (the timing benchmark's ``random`` history,
``benchmarks/sampler/timing.py``); 32 suggestions after one untimed one; wall milliseconds per
suggestion of the whole ask/suggest/tell and of the sampler's parts (wrapped, nested: the parts
overlap), with the number of calls per suggestion. The values told are the objective's.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
import sys
import time
from typing import Any
import warnings

import numpy as np
import optuna

from benchmarks.sampler.timing import _make_sampler
from benchmarks.sampler.timing import _objective_value
from benchmarks.sampler.timing import prefilled_study
import optuna_gamma.gp.acquisition as acquisition
import optuna_gamma.samplers._gamma_bo as gamma_bo
import optuna_gamma.samplers._observations as observations
import optuna_gamma.samplers._optimize as optimize


SECONDS: collections.defaultdict[str, float] = collections.defaultdict(float)
CALLS: collections.Counter[str] = collections.Counter()


def _timed(owner: Any, name: str, label: str) -> None:
    function: Callable[..., Any] = getattr(owner, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            SECONDS[label] += time.perf_counter() - start
            CALLS[label] += 1

    setattr(owner, name, wrapped)


def main(dim: int, n: int, suggestions: int = 32) -> None:
    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    _timed(gamma_bo.GammaBOSampler, "sample_relative", "sample_relative")
    _timed(gamma_bo.GammaBOSampler, "_fit", "GP fit (refit or extended factor)")
    _timed(gamma_bo, "optimize_acquisition", "acquisition search")
    _timed(optimize, "_lbfgsb_batch", "  L-BFGS-B (joint starts, then polish)")
    _timed(acquisition._LogAcquisition, "value_and_grad", "    log-EI value and gradient")
    _timed(acquisition._LogAcquisition, "__call__", "  log-EI values (candidates, results)")
    _timed(optimize, "_sobol", "  Sobol candidates")
    _timed(observations.Observations, "from_trials", "observations from the trials")
    study = prefilled_study(_make_sampler("gamma_student_t", 0), dim, n, 1000 * dim)

    def one() -> None:
        trial = study.ask()
        x = np.array([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(dim)])
        study.tell(trial, _objective_value(x))

    one()
    SECONDS.clear()
    CALLS.clear()
    start = time.perf_counter()
    for _ in range(suggestions):
        one()
    total = (time.perf_counter() - start) / suggestions
    print(f"d = {dim}, n = {n}: {1e3 * total:.2f} ms per suggestion (ask + suggest + tell)")
    for label, seconds in SECONDS.items():
        per = 1e3 * seconds / suggestions
        print(f"  {label:42s} {per:6.2f} ms  {CALLS[label] / suggestions:5.1f} calls")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
