"""The regret benchmark with the second (default) start of a hyperparameter refit only where the
warm start has a lengthscale below 0.05 (README). An experiment switch, as ``twostart.py``::

    PYTHONPATH=$PWD python benchmarks/sampler/results/issue17_twostart/twoshort.py \
        --run issue17_twostart/short_s0 --samplers student_t --seeds 10 --trials 50 --jobs 2

``second_start_where`` is shared with ``twoquiet.py``.
"""

from __future__ import annotations

from collections.abc import Callable
import sys
from typing import Any

import numpy as np

import optuna_gamma.gp.fit as fit


def second_start_where(condition: Callable[[Any], bool]) -> None:
    """Fit from the default start as well wherever ``condition(warm start)`` holds."""
    original = fit._fit

    def _fit(data: Any, settings: Any, init: Any, max_iter: int) -> Any:
        if init is not None and condition(init):
            saved = fit._MAX_N_TWO_STARTS
            fit._MAX_N_TWO_STARTS = 10**9
            try:
                return original(data, settings, init, max_iter)
            finally:
                fit._MAX_N_TWO_STARTS = saved
        return original(data, settings, init, max_iter)

    fit._fit = _fit


def _short(init: Any) -> bool:
    return float(np.min(np.asarray(init.inv_sq_lengthscales) ** -0.5)) < 0.05


# the script itself, and its spawned workers, which import it as ``__mp_main__``
if __name__ in ("__main__", "__mp_main__"):
    second_start_where(_short)

from benchmarks.sampler import regret  # noqa: E402


if __name__ == "__main__":
    sys.exit(regret.main())
