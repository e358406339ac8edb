"""The regret benchmark with the second (default) start of a hyperparameter refit only where the
warm start's noise-to-signal ratio is at most ``NOISE_EVIDENT`` (1e-4: the last fit found no
noise) (README). An experiment switch, as ``twostart.py``::

    PYTHONPATH=$PWD python benchmarks/sampler/results/issue17_twostart/twoquiet.py \
        --run issue17_twostart/quiet_s0 --samplers student_t --seeds 10 --trials 50 --jobs 2
"""

from __future__ import annotations

import sys
from typing import Any

import optuna_gamma.gp.fit as fit
from optuna_gamma.samplers._refit import NOISE_EVIDENT


_original = fit._fit


def _fit(data: Any, settings: Any, init: Any, max_iter: int) -> Any:
    if init is not None and float(init.noise) <= NOISE_EVIDENT:
        saved = fit._MAX_N_TWO_STARTS
        fit._MAX_N_TWO_STARTS = 10**9
        try:
            return _original(data, settings, init, max_iter)
        finally:
            fit._MAX_N_TWO_STARTS = saved
    return _original(data, settings, init, max_iter)


fit._fit = _fit

from benchmarks.sampler import regret  # noqa: E402


if __name__ == "__main__":
    sys.exit(regret.main())
