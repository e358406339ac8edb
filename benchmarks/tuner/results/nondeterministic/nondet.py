"""``benchmarks.tuner.peers`` with the samplers told the training is not deterministic (README).

An experiment switch, not an option of the benchmark: with ``ND=1`` in the environment every
tuner run gets ``TunerConfig(deterministic=False)`` (what a run on a GPU resolves to), so
``GammaBOSampler`` fits the noise of the objective instead of fixing it at 1e-10; without it
the run is ``peers.py``'s own (the CPU's ``deterministic=True``)::

    ND=1 PYTHONPATH=$PWD python benchmarks/tuner/results/nondeterministic/nondet.py \\
        --tag nd --dataset mnist --seeds 0-4 --arms pe-pop pe-pop-w12 --out <dir>
"""

from __future__ import annotations

import os
from pathlib import Path
import sys
from typing import Any

import benchmarks.thesis.common as tc


_tuner_config = tc.tuner_config


def _noisy_tuner_config(args: Any, run: str, run_dir: Path, **kw: Any) -> Any:
    return _tuner_config(args, run, run_dir, deterministic=False, **kw)


if os.environ.get("ND") == "1":
    tc.tuner_config = _noisy_tuner_config

from benchmarks.tuner import peers  # noqa: E402


if __name__ == "__main__":
    sys.exit(peers.main())
