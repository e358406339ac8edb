"""The final model as an average of its lineage's last states (``final_model="average"``).

Averaging the weights a training passes through near its end generalizes better than its last
state alone: Polyak-Ruppert averaging (Polyak & Juditsky, SIAM J. Control Optim. 1992),
stochastic weight averaging (Izmailov et al., "Averaging weights leads to wider optima and
better generalization", UAI 2018; ``torch.optim.swa_utils``) and the checkpoint averaging of
machine translation. The states are the final model's own ancestors, one per epoch (its
lineage, :mod:`~optuna_gamma.tuner.policies.lineage`), all of them stored already, so the
average costs validation passes and no training.

Which states, greedily as Wortsman et al.'s greedy soup ("Model soups", ICML 2022, recipe 1):
starting from the last state, the lineage's states of the last :data:`WINDOW` epochs (or
``TunerConfig.average_window``; ``None``: all of them) are tried newest first, and one is kept
if the uniform average of the kept ones and it validates at least as well, on the run's
objective, as the kept ones without it. So the average never validates
worse than the last state, and a state from before a change of setting that hurts (a late
decay) is left out. Across lineages (the carried population of parallel runs), states trained
from the same start along different paths need not lie in one basin; only one lineage is
averaged.

What is averaged: every floating-point tensor of the model's ``state_dict`` (weights and
buffers such as BatchNorm's running statistics, as ``AveragedModel(use_buffers=True)``
averages them), in float32 or wider and cast back; integer buffers
(``num_batches_tracked``), the optimizer, scheduler, scaler and extras are the last state's, so
a loaded average trains on from where the run ended. Measured on the per-epoch benchmark
(docs/when-it-pays.md): serial runs gain on every task, most on the user's overfitting MLP.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import math
from typing import Any

from optuna_gamma.tuner.config import AVERAGE_WINDOW


__all__ = ["WINDOW", "average_snapshots", "greedy_average"]

#: The most recent epochs of the final lineage whose states are tried by default
#: (``TunerConfig.average_window``; the whole lineage pays only where the model overfits early:
#: benchmarks/tuner/results/average_window/).
WINDOW = AVERAGE_WINDOW


def _is_float(value: Any) -> bool:
    import torch

    return torch.is_tensor(value) and torch.is_floating_point(value)


def _sums(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """The model's floating-point tensors, widened to at least float32 (a running sum)."""
    import torch

    return {
        name: value.to(torch.promote_types(value.dtype, torch.float32), copy=True)
        for name, value in snapshot["model"].items()
        if _is_float(value)
    }


def _add(sums: Mapping[str, Any], snapshot: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for name, total in sums.items():
        other = snapshot["model"].get(name)
        if not _is_float(other) or other.shape != total.shape:
            raise ValueError(f"model tensor {name!r} differs between the averaged states")
        out[name] = total + other.to(total.dtype)
    return out


def _mean(first: Mapping[str, Any], sums: Mapping[str, Any], count: int) -> dict[str, Any]:
    model = {
        name: (sums[name] / count).to(value.dtype) if name in sums else value
        for name, value in first["model"].items()
    }
    return {**first, "model": model}


def average_snapshots(snapshots: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A snapshot whose model is the uniform average of ``snapshots``' models (module
    docstring); its other components are the first snapshot's.

    Raises:
        ValueError: No snapshot, or the models' tensors differ in names or shapes.
    """
    if not snapshots:
        raise ValueError("nothing to average")
    sums = _sums(snapshots[0])
    for snap in snapshots[1:]:
        sums = _add(sums, snap)
    return _mean(snapshots[0], sums, len(snapshots))


def greedy_average(
    load: Callable[[int], Mapping[str, Any] | None],
    count: int,
    first_metrics: Mapping[str, Any],
    evaluate: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    objective: Callable[[Mapping[str, Any]], float],
    *,
    maximize: bool,
    on_skip: Callable[[int, str], None] | None = None,
) -> tuple[list[int], dict[str, Any] | None, dict[str, Any]]:
    """Greedily average the candidate states (module docstring), holding two at a time.

    A candidate that cannot be averaged with the last state (its model's floating-point tensors
    differ in names or shapes: a model changed during training) or that ``load`` cannot give
    (``None``: a state missing from the store) is skipped, as one that does not validate as
    well is, so the last state is always a valid answer.

    Args:
        load: The candidate state ``i`` (``0``: the last state; then older ones), or ``None``
            where it is unavailable (not for ``0``).
        count: The number of candidates.
        first_metrics: The last state's validation metrics.
        evaluate: The validation metrics of a snapshot.
        objective: The run's objective of validation metrics.
        maximize: Whether larger objective values are better.
        on_skip: Called with ``(i, why)`` for each candidate skipped because it could not be
            averaged (not for one that validated worse).

    Returns:
        ``(kept, average, metrics)``: the indices of the kept states (``[0]`` and more), their
        average (``None`` when only the last state is kept) and its validation metrics.
    """
    sign = 1.0 if maximize else -1.0
    first = load(0)
    if first is None:
        raise ValueError("the last state, the average's first, is unavailable")
    sums = _sums(first)
    kept: list[int] = [0]
    average: dict[str, Any] | None = None
    metrics = dict(first_metrics)
    value = float(objective(metrics))
    for i in range(1, count):
        snapshot = load(i)
        if snapshot is None:
            if on_skip is not None:
                on_skip(i, "its state is unavailable")
            continue
        try:
            with_it = _add(sums, snapshot)
        except ValueError as err:  # another model: not averaged with the last state
            if on_skip is not None:
                on_skip(i, str(err))
            continue
        candidate = _mean(first, with_it, len(kept) + 1)
        candidate_metrics = dict(evaluate(candidate))
        candidate_value = float(objective(candidate_metrics))
        if sign * candidate_value >= sign * value or math.isnan(value):  # NaN is never kept
            sums, kept, average = with_it, [*kept, i], candidate
            metrics, value = candidate_metrics, candidate_value
    return kept, average, metrics
