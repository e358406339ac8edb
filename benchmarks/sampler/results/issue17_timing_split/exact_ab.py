"""Two exact savings, timed against the sampler as it is (interleaved in one process).

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD python \
        benchmarks/sampler/results/issue17_timing_split/exact_ab.py 3 50

With the switch on: each trial's encoded parameters are cached (``SearchSpace.encode`` is
called for every COMPLETE trial at every suggestion), and the box bounds reach SciPy's
L-BFGS-B as a ``scipy.optimize.Bounds`` instead of a list of pairs (SciPy converts the list at
every call). Neither changes a result: the proposals are compared and must be identical. Six
reps, each 9 suggestions on the timing benchmark's ``bo`` history of ``benchmarks/sampler/
results/timing/``; CPU milliseconds per suggestion, median over the reps.
"""

from __future__ import annotations

from collections.abc import Callable
import json
from pathlib import Path
import sys
import time
from typing import Any
import warnings

import numpy as np
import optuna
import scipy.optimize

from benchmarks.sampler.timing import _make_sampler
from benchmarks.sampler.timing import trajectory_study
import optuna_gamma.samplers._search_space as search_space


TIMING = Path(__file__).resolve().parents[1] / "timing"
SWITCH = {"on": False}


def _patch() -> None:
    encode: Callable[..., np.ndarray] = search_space.SearchSpace.encode
    cache: dict[tuple[int, int], tuple[Any, np.ndarray]] = {}

    def cached_encode(self: Any, params: Any) -> np.ndarray:
        if not SWITCH["on"]:
            return encode(self, params)
        hit = cache.get((id(params), id(self)))
        if hit is None or hit[0] is not params:
            hit = (params, encode(self, params))
            cache[(id(params), id(self))] = hit
        return hit[1].copy()

    minimize: Callable[..., Any] = scipy.optimize.minimize

    def minimize_with_bounds(fun: Any, x0: Any, *args: Any, bounds: Any = None, **kw: Any) -> Any:
        if SWITCH["on"] and isinstance(bounds, list):
            lo, hi = np.array(bounds, dtype=float).T
            bounds = scipy.optimize.Bounds(lo, hi)
        return minimize(fun, x0, *args, bounds=bounds, **kw)

    setattr(search_space.SearchSpace, "encode", cached_encode)
    setattr(scipy.optimize, "minimize", minimize_with_bounds)


def main(dim: int, n: int) -> None:
    warnings.simplefilter("ignore")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    _patch()
    history = json.loads((TIMING / f"trajectory_d{dim}.json").read_text())["trials"][:n]
    seconds: dict[bool, list[float]] = {False: [], True: []}
    proposals: dict[bool, list[list[float]]] = {False: [], True: []}
    for rep in range(6):
        for on in (False, True):
            SWITCH["on"] = on
            study = trajectory_study(_make_sampler("gamma_student_t", rep), dim, history)

            def one() -> list[float]:
                trial = study.ask()
                x = [trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(dim)]
                study.tell(trial, float(np.sum(x)))
                return x

            one()
            start = time.process_time()
            proposals[on] += [one() for _ in range(9)]
            seconds[on].append((time.process_time() - start) / 9)
    off, on_ = np.median(seconds[False]), np.median(seconds[True])
    same = proposals[False] == proposals[True]
    print(f"d = {dim}, n = {n}: {1e3 * off:.2f} ms -> {1e3 * on_:.2f} ms, identical: {same}")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
