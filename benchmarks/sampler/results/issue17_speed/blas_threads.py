"""CPU time per suggestion at the machine's default threads (no OMP_NUM_THREADS), in a fresh
process, for the sampler on ``PYTHONPATH`` (stop 27: the BLAS limit before and after it covered
SciPy's own OpenBLAS). Run from the repository root::

    env -u OMP_NUM_THREADS PYTHONPATH=<checkout> python \\
        benchmarks/sampler/results/issue17_speed/blas_threads.py 3 50

Prints the mean CPU time of 3 suggestions on each of 6 cached BO histories
(``benchmarks.sampler.timing``'s trajectories, written under /tmp/timing51).
"""

from __future__ import annotations

from pathlib import Path
import sys

import optuna

from benchmarks.sampler import timing
from optuna_gamma import GammaBOSampler


optuna.logging.set_verbosity(optuna.logging.WARNING)
dim, n = int(sys.argv[1]), int(sys.argv[2])
trajectory = timing.bo_trajectory(dim, n, Path("/tmp/timing51"))
total = count = 0.0
for rep in range(6):
    study = timing.trajectory_study(GammaBOSampler(seed=rep), dim, trajectory)
    timing.time_suggestions(study, dim, 1)  # warm-up
    times = timing.time_suggestions(study, dim, 3)
    total += sum(t[0] for t in times)
    count += len(times)
print(f"dim {dim}, {n} trials: {total / count * 1e3:.1f} ms CPU per suggestion")
