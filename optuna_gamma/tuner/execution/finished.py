"""A finished run: which state is the final model, its test metrics, and ``result.json``.

The final model of a per-epoch run is one of its adopted states: the last one (``"last"``, the
default, as in the thesis's fig. 8 and as Keras, Lightning and Hugging Face's trainers end with
the last weights), or the one at the peak of the validation curve (``"best"``; :func:`final_epoch`
says how noise is kept from choosing it), as Keras's ``EarlyStopping(restore_best_weights=True)``
and Hugging Face's ``load_best_model_at_end`` return the checkpoint that validated best; or the
average of the last state with earlier states of its own lineage (``"average"``, weight
averaging kept only where it validates at least as well:
:mod:`~optuna_gamma.tuner.execution.averaging`). The
budget may outlast the model: one that overfits (its validation objective peaks and then falls)
keeps its peak with ``"best"``, and a run whose curve has such a peak says so when it returns
the last state, if the validation accuracy there is higher than at the end too
(:func:`accuracy_agrees`).
``"best"`` is not the default because the objective can fall while the test accuracy still
rises (kappa_1's loss term grows as a CNN gets overconfident), and then the peak is the worse
model (docs/when-it-pays.md). Every adopted state stays in the artifact store, so
any choice can be made, and changed, after the run (an average is stored once, beside them).

Re-running a finished command is a no-op that prints the result: the test metrics of the final
state are evaluated once and recorded on the run's last study with the state's id (``test``,
``test_state``) beside the choice (``final``: epoch, state, rule), so a later call reuses them
instead of evaluating the test set again, and ``result.json`` is rewritten only by a call that
trained something, so it keeps the wall time of the calls that did the work.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import json
import math
import os
from pathlib import Path
import statistics
from typing import Any
from typing import TYPE_CHECKING

from optuna_gamma.tuner.config import FINAL_MODELS
from optuna_gamma.tuner.results import PerEpochResult
from optuna_gamma.tuner.results import WholeResult


if TYPE_CHECKING:
    from optuna_gamma.tuner.trainer import Trainer
    from optuna_gamma.tuner.trainer import TrainingState


__all__ = [
    "PEAK_MARGIN_SE",
    "SMOOTHING_HALF_WIDTH",
    "accuracy_agrees",
    "final_average",
    "final_epoch",
    "finish_per_epoch",
    "load_state",
    "save_result",
    "test_metrics",
]

#: Half-width of the window the validation curve is averaged over when the final model is
#: chosen (5 epochs), and how many standard errors its peak must stand above the curve's end.
SMOOTHING_HALF_WIDTH = 2
PEAK_MARGIN_SE = 2.0


def final_epoch(adopted: Sequence[Mapping[str, Any]], rule: str, *, maximize: bool) -> int:
    """The epoch (1-based) whose adopted state is the final model.

    ``"best"`` guards against the winner's curse: the adopted values are validation estimates
    (a split of a few hundred images moves accuracy by a few points), and the largest of a
    hundred noisy values is mostly noise. So, with ``v_e`` the adopted value of epoch ``e``
    (negated when minimizing), ``h`` = :data:`SMOOTHING_HALF_WIDTH` and ``E`` epochs:

    - the curve is averaged over windows, ``s_e = mean(v_{e-h} .. v_{e+h})`` for the epochs
      whose window is complete, and its end over the last ``h + 1`` epochs, ``s_end``;
    - the noise of one value is estimated from the epoch-to-epoch changes,
      ``sigma = median|v_{e+1} - v_e| / 0.6745 / sqrt(2)`` (the normal distribution's median
      absolute value is 0.6745 sigma; the median is robust to the trend's few jumps);
    - the peak ``e* = argmax s_e`` (the earliest of equal ones) is the final model if it stands
      :data:`PEAK_MARGIN_SE` standard errors above the end,
      ``s_e* - s_end > 2 sigma sqrt(1 / (2h + 1) + 1 / (h + 1))``; otherwise, and for runs of
      fewer than ``2h + 1`` epochs, the last state.

    A model that overfits (its validation objective peaks, then falls for many epochs) gets its
    peak; a model still learning, or whose curve is flat within the noise, keeps its last
    state. Measured on the per-epoch benchmark (docs/when-it-pays.md): the plain argmax lost
    0.2 points of test accuracy against the last state with 12 trials at a time (it picked
    lucky epochs) where this rule ties, and both gain about a point for the overfitting MLP
    trained serially.

    Args:
        adopted: The ``adopted`` records of epochs ``1..E``, in order.
        rule: ``"last"`` and ``"average"`` (whose average ends with it): epoch ``E``;
            ``"best"``: as above.
        maximize: Whether larger objective values are better.
    """
    if rule not in FINAL_MODELS:
        raise ValueError(f"final_model must be one of {FINAL_MODELS}, got {rule!r}")
    if not adopted:
        raise ValueError("a run without epochs has no final model")
    n, h = len(adopted), SMOOTHING_HALF_WIDTH
    sign = 1.0 if maximize else -1.0
    v = [sign * float(record["value"]) for record in adopted]
    if rule != "best" or n < 2 * h + 1 or not all(math.isfinite(x) for x in v):
        return n
    smoothed, end, margin = _smoothed_curve(v)
    peak = max(smoothed, key=lambda e: (smoothed[e], -e))
    return peak + 1 if smoothed[peak] - end > margin else n


def _smoothed_curve(v: Sequence[float]) -> tuple[dict[int, float], float, float]:
    """:func:`final_epoch`'s pieces of a curve of at least ``2h + 1`` values: the window
    averages ``s_e`` by 0-based epoch, the end's average ``s_end`` and the margin a window must
    stand above the end."""
    n, h = len(v), SMOOTHING_HALF_WIDTH
    smoothed = {e: statistics.fmean(v[e - h : e + h + 1]) for e in range(h, n - h)}
    end = statistics.fmean(v[n - h - 1 :])
    changes = [abs(b - a) for a, b in zip(v, v[1:])]
    sigma = statistics.median(changes) / 0.6745 / math.sqrt(2.0)
    margin = PEAK_MARGIN_SE * sigma * math.sqrt(1.0 / (2 * h + 1) + 1.0 / (h + 1))
    return smoothed, end, margin


def _peak_against_end(adopted: Sequence[Mapping[str, Any]], peak: int) -> str:
    """The two averages :func:`final_epoch` compared, in the objective's units: that of the
    window around epoch ``peak`` (1-based) and that of the curve's end, e.g. ``"0.84 averaged
    over epochs 1-5, 0.5 over epochs 10-12"``.

    The single values at the peak and at the end are not what the rule compares, and with a
    noisy curve they can even be in the other order (a regression's validation MSE of 0.5426
    at the peak's epoch and 0.5418 at the end, where the averages are 0.5382 and 0.5426)."""
    n, h = len(adopted), SMOOTHING_HALF_WIDTH
    smoothed, end, _ = _smoothed_curve([float(record["value"]) for record in adopted])
    centre = min(max(peak - 1, h), n - h - 1)  # 0-based, its window inside the curve
    window = smoothed[centre]
    return (
        f"{window:.4g} averaged over epochs {centre - h + 1}-{centre + h + 1}, "
        f"{end:.4g} over epochs {n - h}-{n}"
    )


def finish_per_epoch(
    engine: Any, studies: Sequence[Any], rule: str
) -> tuple[int, dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """Choose a finished per-epoch run's final model by ``rule`` (:func:`final_epoch`; for
    ``"average"``, :func:`final_average`), record the choice on the run's last study
    (``final``: epoch, state, rule, why, and ``lineage``: the trial numbers of the final model's
    lineage, epoch by epoch; the dashboard and the report show it), and return ``(its epoch,
    its test metrics, its lineage's records, the final state's record)``
    (:func:`~optuna_gamma.tuner.policies.lineage.lineage`; the record has ``state`` and
    ``state_sha256``, and ``epochs`` for an average).

    Logs the choice when it is not the last state, and warns when the last state is returned
    although the validation curve has a clear peak (``final_model="best"`` would return it
    without training again)."""
    from optuna_gamma.tuner._logging import get_logger
    from optuna_gamma.tuner.policies.lineage import carried_records
    from optuna_gamma.tuner.policies.lineage import lineage
    from optuna_gamma.tuner.results import epoch_ranges

    logger = get_logger(__name__)
    adopted = [s.user_attrs["adopted"] for s in studies]
    n, last = len(adopted), studies[-1]
    maximize = engine.objective.sign > 0
    final = final_epoch(adopted, rule, maximize=maximize)
    peak = final if rule == "best" else final_epoch(adopted, "best", maximize=maximize)
    chain = lineage([carried_records(s.user_attrs) for s in studies], final)
    name = engine.objective.metric_name
    state: dict[str, Any] = adopted[final - 1]
    if rule == "average":
        state = final_average(engine, last, chain)
        kept = state["epochs"]
        why = (
            f"the average of the final lineage's states of epochs {epoch_ranges(kept)} "
            f"(validation {name} {state['value']:.4g}; the last state alone "
            f"{adopted[-1]['value']:.4g})"
            if len(kept) > 1
            else "the last adopted state: no average of it with earlier states of its lineage "
            "validated as well"
        )
        test = _recorded_test(
            engine,
            last,
            state["state"],
            lambda: engine.starts.store.load(state["state"], state.get("state_sha256")),
        )
    else:
        test = test_metrics(engine, studies[final - 1], final, record_on=last)
        if rule == "last":
            why = "the last adopted state"
        elif final != n:
            why = f"the peak of the validation {name} ({_peak_against_end(adopted, final)})"
        elif n < 2 * SMOOTHING_HALF_WIDTH + 1:
            why = f"the last adopted state: {n} epochs are too few to find a peak"
        else:
            why = (
                f"the last adopted state: no peak of the validation {name} stands above its noise"
            )
    record = {
        "epoch": final,
        "state": state["state"],
        "rule": rule,
        "why": why,
        "lineage": [int(m["trial"]) for m in chain],
    }
    if last.user_attrs.get("final") != record:
        last.set_user_attr("final", record)
    if final != n:
        logger.info(
            f"final model: the state adopted in epoch {final}/{n}, at the peak of the "
            f"validation {name} ({_peak_against_end(adopted, final)}); final_model='last' "
            f"returns epoch {n}'s"
        )
    elif peak != n and accuracy_agrees(adopted, peak, name):
        logger.warning(
            f"the validation {name} was best around epoch {peak}/{n} and is worse at the end "
            f"({_peak_against_end(adopted, peak)}), beyond its epoch-to-epoch noise: if the model "
            f"overfits, final_model='best' (--final-model best) returns epoch {peak}'s state"
            + (
                (
                    " and average_window=None (--average-window all) averages over all its "
                    "states, not only the last ones"
                )
                if rule == "average"
                else " and final_model='average' averages the last states"
            )
            + " (the run need not train again)"
        )
    elif peak != n:
        logger.info(
            f"the validation {name} was best around epoch {peak}/{n}, but the validation "
            f"accuracy is not lower at the end than there: the loss grows as the model gets "
            f"more confident, not from overfitting, so the last state is kept"
        )
    return final, test, chain, state


def final_average(engine: Any, last: Any, chain: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The greedy average of the final lineage's last states (``chain``: its records, epoch 1
    first; :mod:`~optuna_gamma.tuner.execution.averaging`), stored once and recorded on the
    run's last study (``average``: the states tried, the epochs kept, the average's state, its
    validation metrics and value); a recorded average of the same states is reused. The states
    tried are those of the last ``TunerConfig.average_window`` epochs (``None``: all).

    Returns:
        The record: ``state``, ``state_sha256``, ``epochs`` (kept, ascending), ``metrics``,
        ``value``, ``tried`` (the states tried, newest first).
    """
    from optuna_gamma.tuner._logging import get_logger
    from optuna_gamma.tuner.execution.averaging import greedy_average
    from optuna_gamma.tuner.persistence.states import check_artifact_id
    from optuna_gamma.tuner.persistence.states import StateUnavailableError

    logger = get_logger(__name__)
    n = len(chain)
    size = engine.config.average_window
    size = n if size is None else min(size, n)
    window = [(n - i, dict(chain[n - 1 - i])) for i in range(size)]  # newest first
    tried = [check_artifact_id(r.get("state"), where=f"epoch {e}'s state") for e, r in window]
    recorded = last.user_attrs.get("average")
    if isinstance(recorded, dict) and recorded.get("tried") == tried:
        check_artifact_id(recorded.get("state"), where="the recorded average")
        return dict(recorded)
    store, objective = engine.starts.store, engine.objective
    logger.info(
        f"final model: averaging the final lineage's last {len(window)} states where that "
        f"validates as well (up to {len(window) - 1} validation passes, no training; "
        "final_model='last' or --final-model last gives the last state instead)"
    )

    def load(i: int) -> dict[str, Any] | None:
        try:
            return store.load(tried[i], window[i][1].get("state_sha256"))
        except StateUnavailableError:
            if i == 0:  # the last state itself: nothing to return without it
                raise
            return None

    def skipped(i: int, why: str) -> None:
        logger.warning(
            f"final model: epoch {window[i][0]}'s state is not averaged with the last ({why})"
        )

    def evaluate(snapshot: Mapping[str, Any]) -> dict[str, Any]:
        return engine.training.evaluate(dict(snapshot), "valid")

    newest = window[0][1]
    valid = newest.get("metrics")
    if not isinstance(valid, dict) or not valid:  # a record from before metrics were kept
        valid = evaluate(store.load(tried[0], newest.get("state_sha256")))
    kept, average, metrics = greedy_average(
        load,
        len(window),
        valid,
        evaluate,
        objective,
        maximize=objective.sign > 0,
        on_skip=skipped,
    )
    record: dict[str, Any] = {
        "tried": tried,
        "epochs": sorted(window[i][0] for i in kept),
        "metrics": metrics,
        "value": float(objective(metrics)),
    }
    if average is None:
        record.update(state=tried[0], state_sha256=newest.get("state_sha256"))
    else:
        state_id = store.save(average, last, f"average-epoch-{n:04d}.pt")
        record.update(state=state_id, state_sha256=store.digest(state_id))
    last.set_user_attr("average", record)
    return record


def accuracy_agrees(adopted: Sequence[Mapping[str, Any]], peak: int, metric_name: str) -> bool:
    """Whether the validation accuracy confirms that the state at the objective's peak (epoch
    ``peak``, 1-based) is the better model: its window average of the adopted states'
    ``accuracy`` metric stands above the end's by the margin of :func:`final_epoch` (the
    accuracy's own noise).

    A falling validation objective alone is not enough evidence where the objective mixes in
    the loss (kappa_1 = accuracy - lambda ln loss): a CNN's cross-entropy grows as it gets
    overconfident while its accuracy still rises. On the per-epoch benchmark's CIFAR-10 runs
    kappa_1 peaked at epochs 16-41 of 90 while the validation accuracy rose to the end, and the
    peak's test accuracy was 1.9-6.3 points below the last state's (docs/when-it-pays.md). True
    when the objective is the accuracy itself, or when the trainer reports no accuracy (the
    objective is then all the evidence there is).
    """
    if metric_name == "accuracy":
        return True
    accuracy = [record.get("metrics", {}).get("accuracy") for record in adopted]
    if not all(isinstance(a, (int, float)) and math.isfinite(a) for a in accuracy):
        return True
    n, h = len(accuracy), SMOOTHING_HALF_WIDTH
    if n < 2 * h + 1 or not 1 <= peak < n:
        return False
    smoothed, end, margin = _smoothed_curve([float(a) for a in accuracy])
    window = min(max(peak - 1, h), n - h - 1)  # the peak's window, kept inside the curve
    return smoothed[window] - end > margin


def test_metrics(engine: Any, study: Any, epoch: int, *, record_on: Any = None) -> dict[str, Any]:
    """The test metrics of study ``epoch``'s adopted state: recorded ones if they belong to
    that state, else evaluated now and recorded (on ``record_on``, default ``study``: the run's
    last study holds those of its final model, whichever epoch that is)."""
    holder = study if record_on is None else record_on
    state = study.user_attrs["adopted"]["state"]
    return _recorded_test(engine, holder, state, lambda: engine.starts.adopted_snapshot(epoch))


def _recorded_test(
    engine: Any, holder: Any, state: str, snapshot: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """The test metrics of ``state`` recorded on ``holder`` (``test``, ``test_state``), or of
    ``snapshot()`` evaluated now and recorded there."""
    recorded = holder.user_attrs.get("test")
    if recorded is not None and holder.user_attrs.get("test_state") == state:
        return dict(recorded)
    try:
        test = engine.training.evaluate(snapshot(), "test")
    except Exception as err:
        from optuna_gamma.tuner.execution.failures import attach_line
        from optuna_gamma.tuner.frontend import repeat_word

        attach_line(
            err,
            f"the final model's test evaluation, evaluate(state, 'test'), failed "
            f"({type(err).__name__}); the run's training is complete and stored: fix the "
            "cause (a trainer without a test split returns {} for it: the result then has no "
            f"test metrics) and re-run the same {repeat_word()}, which trains nothing and "
            "only tests",
        )
        raise
    holder.set_user_attr("test", test)
    holder.set_user_attr("test_state", state)
    return test


def save_result(result: PerEpochResult | WholeResult, path: Path) -> None:
    """Write ``result`` to ``path`` unless this call trained nothing and the one there has the
    same final model and every field (a call that only changes ``final_model`` rewrites it, and
    so does one that finds a file written before a field existed)."""
    if result.new_trials == 0 and Path(path).is_file():
        try:
            stored = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            stored = None
        if (
            isinstance(stored, dict)
            and stored.get("final_state") == result.final_state
            and stored.get("final_model") == result.final_model
            and set(stored) >= set(result.to_dict())
        ):
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
            raise ValueError(
                f"artifact location {str(folder)!r} is not a directory"
                + ("" if artifacts is not None else "; pass artifacts= where the states are now")
            )
        store: Any = FileSystemArtifactStore(str(folder))
        text = str(folder)
    else:
        store, text = open_artifact_store(location, Path(result.run_dir))
    snapshot = StateStore(store, text).load(state_id, result.final_state_sha256 or None)
    training = Training.build(trainer, result.seed, resolve_device(device or "cpu"), result.epochs)
    restore(training.state, snapshot)
    training.leave()  # a trained model: a run that builds it again is told
    return training.state
