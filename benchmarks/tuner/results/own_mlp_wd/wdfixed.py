"""``benchmarks.tuner.peers`` with the weight decay of the own-trainer task fixed at AdamW's
0.01 as the trainer builds it, so that only the learning rate is tuned (README). An experiment
switch, not an option of the benchmark::

    PYTHONPATH=$PWD python benchmarks/tuner/results/own_mlp_wd/wdfixed.py --tag wdfixed \\
        --dataset own-fashion --seeds 0-4 --arms pe-pop pe-pop-w12 --out <dir>
"""

from __future__ import annotations

import sys
from typing import Any

from benchmarks.tuner import peers


_space = peers.space


def _lr_only(task: str = "mnist") -> Any:
    space = _space(task)
    if isinstance(space, dict) and "weight_decay" in space:
        space = {**space, "weight_decay": 0.01}  # a fixed value: not tuned
    return space


peers.space = _lr_only


if __name__ == "__main__":
    sys.exit(peers.main())
