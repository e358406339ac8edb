"""Share of proposed coordinates within 1 % of the search box's edge, per problem and sampler.

    PYTHONPATH=$PWD python benchmarks/sampler/results/edge_share/edge_share.py \
        benchmarks/sampler/results/edge_share/cells.jsonl.gz > edges.md

Reads cells recorded with ``--record-params`` (``benchmarks.sampler.regret``), counts every
numerical parameter of trials 3-50 (the first two are the random start-up trials of
``GammaBOSampler()``) on the unit scale of its distribution (log scale for log ranges) and
prints a Markdown table: the fraction of those coordinates below 0.01 or above 0.99. Under
uniform sampling the fraction is 0.02. The distributions are read from one trial of each
problem's own objective.
"""

from __future__ import annotations

from collections import defaultdict
import gzip
import json
import math
from pathlib import Path
import sys
from typing import Any
import warnings

import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution

from benchmarks.sampler.problems import get_problem


def distributions(problem: str) -> dict[str, BaseDistribution]:
    """The distributions a problem's objective suggests (one random trial)."""
    p = get_problem(problem)
    study = optuna.create_study(direction=p.direction, sampler=optuna.samplers.RandomSampler(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(p.objective, n_trials=1)
    return study.trials[0].distributions


def unit(d: BaseDistribution, v: Any) -> float | None:
    """``v`` on ``[0, 1]`` of its numerical distribution; ``None`` for a categorical one."""
    if not isinstance(d, (FloatDistribution, IntDistribution)) or d.high == d.low:
        return None
    lo, hi, x = float(d.low), float(d.high), float(v)
    if d.log:
        lo, hi, x = math.log(lo), math.log(hi), math.log(x)
    return (x - lo) / (hi - lo)


def main(path: str) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    dists: dict[str, dict[str, BaseDistribution]] = {}
    opener = gzip.open if path.endswith(".gz") else open
    with opener(Path(path), "rt") as f:
        for line in f:
            record = json.loads(line)
            if "params" not in record:
                continue
            problem = record["problem"]
            if problem not in dists:
                dists[problem] = distributions(problem)
            space = dists[problem]
            cell = counts[(problem, record["sampler"])]
            for params in record["params"][2:]:
                for name, value in params.items():
                    u = unit(space[name], value)
                    if u is not None:
                        cell[0] += u < 0.01 or u > 0.99
                        cell[1] += 1
    samplers = sorted({s for _, s in counts})
    print("| problem | " + " | ".join(samplers) + " |")
    print("| --- | " + " | ".join("---:" for _ in samplers) + " |")
    for problem in sorted({p for p, _ in counts}):
        shares = [counts[(problem, s)] for s in samplers]
        cells = [f"{a / b:.2f}" if b else "-" for a, b in shares]
        print(f"| {problem} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
