"""The regret benchmark with the second (default) start of a hyperparameter refit only where the
warm start's noise-to-signal ratio is at most ``NOISE_EVIDENT`` (1e-4: the last fit found no
noise) (README). An experiment switch, as ``twostart.py``::

    PYTHONPATH=$PWD python benchmarks/sampler/results/issue17_twostart/twoquiet.py \
        --run issue17_twostart/quiet_s0 --samplers student_t --seeds 10 --trials 50 --jobs 2
"""

from __future__ import annotations

import sys
from typing import Any

from twoshort import second_start_where  # the script's folder is on sys.path

from optuna_gamma.samplers._refit import NOISE_EVIDENT


def _quiet(init: Any) -> bool:
    return float(init.noise) <= NOISE_EVIDENT


if __name__ in ("__main__", "__mp_main__"):
    second_start_where(_quiet)

from benchmarks.sampler import regret  # noqa: E402


if __name__ == "__main__":
    sys.exit(regret.main())
