"""The regret benchmark with every hyperparameter refit also started from the default (README).

An experiment switch, not an option of the library: it lifts ``_MAX_N_TWO_STARTS`` (16) in
``optuna_gamma/gp/fit.py`` before ``benchmarks.sampler.regret`` runs (the worker processes
import this script as their main module, so they get it too)::

    PYTHONPATH=$PWD python benchmarks/sampler/results/issue17_twostart/twostart.py \
        --run issue17_twostart/s0 --samplers student_t --seeds 10 --trials 50 --jobs 2
"""

from __future__ import annotations

import sys

import optuna_gamma.gp.fit as fit


fit._MAX_N_TWO_STARTS = 10**9

from benchmarks.sampler import regret  # noqa: E402


if __name__ == "__main__":
    sys.exit(regret.main())
