"""Result records of the driver, saved as ``run_dir/result.json``."""

from __future__ import annotations

from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
import json
import os
from pathlib import Path
from typing import Any

from optuna_gamma.driver.checkpoint import atomic_write_json


__all__ = ["PerEpochResult", "ScheduleEntry", "WholeResult", "load_result"]


@dataclass(frozen=True)
class ScheduleEntry:
    """One epoch of the learning-rate schedule: the adopted ("Determinant") trial.

    Attributes:
        epoch: 1-based epoch.
        lr: The adopted trial's learning rate.
        kappa: Its objective value on the validation set.
        accuracy: Its validation accuracy.
        loss: Its validation cross-entropy (``None`` if it diverged).
        trial_number: Its trial number in study ``"{run}/epoch-{epoch:03d}"``.
        params: All its SGD settings (lr, batch_size, weight_decay, momentum).
        metrics: Further validation metrics (sensitivity, specificity, mcc, train_loss).
    """

    epoch: int
    lr: float
    kappa: float
    accuracy: float
    loss: float | None
    trial_number: int
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PerEpochResult:
    """Outcome of :func:`~optuna_gamma.driver.tune_per_epoch`.

    Attributes:
        run: Run name (study names are ``"{run}/epoch-NNN"``).
        sampler: Canonical sampler name (or the factory's name).
        seed: Run seed.
        storage: Storage URL.
        run_dir: Run directory.
        epochs: Number of epochs.
        trials_per_epoch: Trials per epoch.
        kappa: Objective name.
        warm_start: Whether the previous best lr was enqueued first.
        schedule: One :class:`ScheduleEntry` per epoch.
        test: Test-set metrics of the final state: accuracy, loss, sensitivity, specificity,
            mcc, confusion_matrix.
        total_time: Seconds of training plus validation over all completed trials (stable across
            resumes).
        wall_time: Seconds this call took (a resumed call counts only itself).
        final_state: Path of the final (last adopted) state file.
        space: The search space (JSON form).
        notes: Provenance, e.g. the warm-start default's measurement.
    """

    run: str
    sampler: str
    seed: int
    storage: str
    run_dir: str
    epochs: int
    trials_per_epoch: int
    kappa: str
    warm_start: bool
    schedule: list[ScheduleEntry]
    test: dict[str, Any]
    total_time: float
    wall_time: float
    final_state: str
    space: dict[str, Any]
    notes: dict[str, Any] = field(default_factory=dict)
    mode: str = "per-epoch"

    @property
    def learning_rates(self) -> list[float]:
        """The schedule's learning rates, epoch by epoch."""
        return [e.lr for e in self.schedule]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | os.PathLike[str]) -> Path:
        atomic_write_json(self.to_dict(), Path(path))
        return Path(path)


@dataclass(frozen=True)
class WholeResult:
    """Outcome of :func:`~optuna_gamma.driver.tune_whole` (thesis tables 8-10).

    Attributes:
        best_lr: Learning rate of the best trial (a constant lr for all epochs).
        best_params: All its SGD settings.
        best_trial_number: Its number in study ``"{run}/whole"``.
        best_kappa: Its validation kappa.
        valid: Its validation metrics.
        test: Test-set metrics of its final state (with confusion_matrix).
        trials: Per trial: number, params, kappa, accuracy.
        (others as in :class:`PerEpochResult`)
    """

    run: str
    sampler: str
    seed: int
    storage: str
    run_dir: str
    epochs: int
    n_trials: int
    kappa: str
    best_lr: float
    best_params: dict[str, Any]
    best_trial_number: int
    best_kappa: float
    valid: dict[str, Any]
    test: dict[str, Any]
    trials: list[dict[str, Any]]
    total_time: float
    wall_time: float
    final_state: str
    space: dict[str, Any]
    notes: dict[str, Any] = field(default_factory=dict)
    mode: str = "whole"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | os.PathLike[str]) -> Path:
        atomic_write_json(self.to_dict(), Path(path))
        return Path(path)


def load_result(path: str | os.PathLike[str]) -> PerEpochResult | WholeResult:
    """Read a ``result.json`` back into its dataclass."""
    data = json.loads(Path(path).read_text())
    if data.get("mode") == "whole":
        return WholeResult(**data)
    data["schedule"] = [ScheduleEntry(**e) for e in data["schedule"]]
    return PerEpochResult(**data)
