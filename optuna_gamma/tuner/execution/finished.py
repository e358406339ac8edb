"""A finished run: which state is the final model, its test metrics, and ``result.json``.

The final model of a per-epoch run is one of its adopted states: the last one (``"last"``, the
thesis's fig. 8), or the one with the best validation objective (``"best"``, the default of the
population policy), as Keras's ``EarlyStopping(restore_best_weights=True)`` and Hugging Face's
``load_best_model_at_end`` return the checkpoint that validated best rather than the last one.
The budget may outlast the model: a model that overfits its training data (its validation
objective peaks and then falls) keeps its peak. Every adopted state stays in the artifact store,
so either choice can be made, and changed, after the run.

Re-running a finished command is a no-op that prints the result: the test metrics of the final
state are evaluated once and recorded on the run's last study with the state's id (``test``,
``test_state``) beside the choice (``final``: epoch, state, rule), so a later call reuses them
instead of evaluating the test set again, and ``result.json`` is rewritten only by a call that
trained something, so it keeps the wall time of the calls that did the work.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import json
import math
import os
from pathlib import Path
from typing import Any
from typing import TYPE_CHECKING

from optuna_gamma.tuner.results import PerEpochResult
from optuna_gamma.tuner.results import WholeResult


if TYPE_CHECKING:
    from optuna_gamma.tuner.trainer import Trainer
    from optuna_gamma.tuner.trainer import TrainingState


__all__ = ["FINAL_MODELS", "final_epoch", "load_state", "save_result", "test_metrics"]

#: The choices of a per-epoch run's final model (``TunerConfig.final_model``).
FINAL_MODELS = ("best", "last")


def final_epoch(adopted: Sequence[Mapping[str, Any]], rule: str, *, maximize: bool) -> int:
    """The epoch (1-based) whose adopted state is the final model.

    Args:
        adopted: The ``adopted`` records of epochs ``1..E``, in order.
        rule: ``"last"``: epoch ``E``. ``"best"``: the epoch whose adopted state has the best
            validation objective (the earliest of equal ones: a later state replaces it only
            by improving on it, as in Keras's ``EarlyStopping``).
        maximize: Whether larger objective values are better.
    """
    if rule not in FINAL_MODELS:
        raise ValueError(f"final_model must be one of {FINAL_MODELS}, got {rule!r}")
    if not adopted:
        raise ValueError("a run without epochs has no final model")
    if rule == "last":
        return len(adopted)
    sign = 1.0 if maximize else -1.0
    best, best_value = len(adopted), -math.inf
    for epoch, record in enumerate(adopted, start=1):
        value = sign * float(record["value"])
        if value > best_value:  # NaN never is
            best, best_value = epoch, value
    return best


def test_metrics(engine: Any, study: Any, epoch: int, *, record_on: Any = None) -> dict[str, Any]:
    """The test metrics of study ``epoch``'s adopted state: recorded ones if they belong to
    that state, else evaluated now and recorded (on ``record_on``, default ``study``: the run's
    last study holds those of its final model, whichever epoch that is)."""
    holder = study if record_on is None else record_on
    state = study.user_attrs["adopted"]["state"]
    recorded = holder.user_attrs.get("test")
    if recorded is not None and holder.user_attrs.get("test_state") == state:
        return dict(recorded)
    test = engine.training.evaluate(engine.starts.adopted_snapshot(epoch), "test")
    holder.set_user_attr("test", test)
    holder.set_user_attr("test_state", state)
    return test


def save_result(result: PerEpochResult | WholeResult, path: Path) -> None:
    """Write ``result`` to ``path`` unless this call trained nothing and the one there has the
    same final model (a call that only changes ``final_model`` rewrites it)."""
    if result.new_trials == 0 and Path(path).is_file():
        try:
            stored = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            stored = None
        if isinstance(stored, dict) and stored.get("final_state") == result.final_state:
            return
    result.save(path)


def load_state(
    result: PerEpochResult | WholeResult,
    trainer: Trainer,
    *,
    artifacts: Any = None,
    device: Any = None,
) -> TrainingState:
    """The final model of a run: ``trainer.build()``'s state with the run's final state loaded
    (model, optimizer, scheduler, scaler and extras, as the run's trials restore it).

    Args:
        result: The run's result (returned by the tuner, or read by
            :func:`~optuna_gamma.tuner.results.load_result` from ``result.json``).
        trainer: The trainer the run used (or one that builds the same state).
        artifacts: Where the states are (a directory, ``s3://bucket/prefix`` or an Optuna
            artifact store); default ``result.artifacts``.
        device: Where the state goes (default: the CPU).

    Raises:
        ValueError: ``result`` names no valid state id, or the state does not fit the trainer.
        StateUnavailableError: The state is missing, unreadable, or not the file the run stored
            (its SHA-256 differs from ``result.final_state_sha256``).
    """
    from optuna.artifacts import FileSystemArtifactStore

    from optuna_gamma.tuner.execution.runtime import resolve_device
    from optuna_gamma.tuner.execution.training import Training
    from optuna_gamma.tuner.persistence.states import check_artifact_id
    from optuna_gamma.tuner.persistence.states import open_artifact_store
    from optuna_gamma.tuner.persistence.states import StateStore
    from optuna_gamma.tuner.trainer import restore

    if not isinstance(result, (PerEpochResult, WholeResult)):
        raise ValueError(f"result must be a PerEpochResult or WholeResult, got {result!r}")
    state_id = check_artifact_id(result.final_state, where="the result's final_state")
    location = artifacts if artifacts is not None else result.artifacts
    if isinstance(location, (str, os.PathLike)) and not str(location).startswith("s3://"):
        folder = Path(location).expanduser()
        if not folder.is_dir():  # read only: nothing is created or probed
            raise ValueError(f"artifact location {str(folder)!r} is not a directory")
        store: Any = FileSystemArtifactStore(str(folder))
        text = str(folder)
    else:
        store, text = open_artifact_store(location, Path(result.run_dir))
    snapshot = StateStore(store, text).load(state_id, result.final_state_sha256 or None)
    training = Training.build(trainer, result.seed, resolve_device(device or "cpu"))
    restore(training.state, snapshot)
    return training.state
