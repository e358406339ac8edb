"""Result records of the tuner, saved as ``run_dir/result.json``, and their text form
(``print(result)``: :func:`summary_text`)."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
import json
import os
from pathlib import Path
from typing import Any

from optuna_gamma.tuner.persistence.runfiles import atomic_write_json
from optuna_gamma.tuner.persistence.runfiles import default_run_dir
from optuna_gamma.tuner.policies.lineage import branches_off
from optuna_gamma.tuner.search.objectives import objective_metric


__all__ = [
    "PerEpochResult",
    "ScheduleEntry",
    "WholeResult",
    "count",
    "epoch_ranges",
    "load_result",
    "summary_text",
]


@dataclass(frozen=True)
class ScheduleEntry:
    """One trial of a run: an epoch of the final model's schedule or an epoch's adopted
    ("Determinant") state, or whole mode's best.

    Attributes:
        epoch: 1-based epoch (whole mode: the number of epochs trained).
        trial_number: Its number in its study.
        value: Its objective value (what the study maximized or minimized).
        params: All its hyperparameters, tuned and fixed.
        metrics: Its validation (and training) metrics.
    """

    epoch: int
    trial_number: int
    value: float
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def lr(self) -> float | None:
        """The learning rate, if the space has one."""
        lr = self.params.get("lr")
        return None if lr is None else float(lr)


@dataclass(frozen=True)
class _Common:
    run: str
    sampler: str
    objective: str
    seed: int
    storage: str
    artifacts: str
    run_dir: str
    epochs: int
    trials_per_epoch: int
    test: dict[str, Any]
    compute_time: float
    wall_time: float
    trials_trained: int
    trials_reused: int
    new_trials: int
    num_threads: int | None
    device: str
    final_state: str
    space: dict[str, Any]
    notes: dict[str, Any]
    policy: dict[str, Any] = field(default_factory=dict)
    compute_epochs: int = 0
    final_epochs: int = 0
    final_model: str = "last"
    final_state_sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        """The final model's schedule, test metrics, trials and compute, in a few lines
        (:func:`summary_text`); ``repr`` has every field."""
        assert isinstance(self, (PerEpochResult, WholeResult))
        return summary_text(self)

    def save(self, path: str | os.PathLike[str]) -> Path:
        atomic_write_json(self.to_dict(), path)
        return Path(path)


@dataclass(frozen=True)
class PerEpochResult(_Common):
    """Outcome of :func:`~optuna_gamma.tuner.tune_per_epoch`.

    Attributes:
        run: Run name (study names are ``"{run}/epoch-NNN"``).
        sampler: Canonical sampler name (or the factory's name).
        objective: Objective name.
        seed: Run seed.
        storage: Storage URL without its password.
        artifacts: Where the training states are.
        run_dir: Run directory.
        epochs: Number of epochs (studies).
        trials_per_epoch: Trials per epoch (the most of any epoch; whole mode: trainings).
        policy: The policy and its plan (``name``, ``trials`` per epoch, its settings).
        compute_epochs: Compute spent, in training epochs (trials trained times the epochs
            each trained; reused trials cost nothing).
        final_epochs: Epochs of training of the final model (the epoch whose adopted state it
            is).
        final_model: How the final model was chosen (``TunerConfig.final_model``; for
            ``"auto"``, the rule it chose): ``"last"`` (the last adopted state), ``"best"``
            (the peak of the validation curve) or ``"average"`` (the last state averaged with
            earlier states of its lineage).
        schedule: The final model's schedule: one :class:`ScheduleEntry` per epoch
            ``1..final_epochs``, the trials of its lineage (the settings its state was trained
            with, epoch by epoch; :mod:`~optuna_gamma.tuner.policies.lineage`).
        adopted: The state adopted in each epoch ``1..epochs`` (the best of its trials). With
            the thesis's policy these are the schedule (up to ``final_epochs``); with a
            population, the best state of an epoch may descend from another lineage than the
            previous epoch's best, so these settings need not be any model's schedule.
        test: Test-set metrics of the final state (the trainer's ``evaluate(state, "test")``).
        compute_time: Seconds of training plus validation over every trained trial of the run
            (reused trials cost nothing; the same on resume).
        wall_time: Seconds this call took (a resumed call counts only itself).
        trials_trained, trials_reused: Complete trials of the run that trained, and that reused
            an earlier trial's result.
        new_trials: Trials this call completed (0 on a finished run's resume).
        num_threads, device: Where and how the training ran.
        final_state: Artifact id of the final model's state
            (:func:`~optuna_gamma.tuner.load_state` loads it into your trainer's state).
        final_state_sha256: Its SHA-256, checked when it is loaded.
        space: The search space (JSON form).
        notes: Provenance.
        averaged_epochs: With ``final_model="average"``, the epochs of the final model's
            lineage whose states its weights average (ascending; ``[epochs]`` alone when no
            average validated as well as the last state); empty otherwise.
    """

    schedule: list[ScheduleEntry] = field(default_factory=list)
    adopted: list[ScheduleEntry] = field(default_factory=list)
    mode: str = "per-epoch"
    averaged_epochs: list[int] = field(default_factory=list)

    @property
    def learning_rates(self) -> list[float | None]:
        """The final model's learning rates, epoch by epoch (its ``schedule``)."""
        return [e.lr for e in self.schedule]


@dataclass(frozen=True)
class WholeResult(_Common):
    """Outcome of :func:`~optuna_gamma.tuner.tune_whole` (thesis tables 8-10).

    Attributes:
        best: The best trial (a constant setting for all ``epochs``).
        trials: Per complete trial: number, params, value, metrics, reused_from.
        (others as in :class:`PerEpochResult`)
    """

    best: ScheduleEntry | None = None
    trials: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "whole"
    final_model: str = "best"  # the trial whose whole training validated best


def load_result(path: str | os.PathLike[str]) -> PerEpochResult | WholeResult:
    """Read a ``result.json`` back into its dataclass.

    Args:
        path: The file, or the run directory that holds it (``run_dir``).

    A run directory that was moved or copied (to another machine, or renamed) reads as it is
    now: where the recorded ``run_dir`` no longer exists, ``run_dir`` becomes the folder that
    holds the file, and the local paths recorded inside the old one (the ``artifacts`` folder,
    a journal file ``storage``) the same paths inside it, where they exist, so that
    :func:`~optuna_gamma.tuner.load_state` finds the states there. (A URL, such as
    ``s3://...`` or ``sqlite:///...``, is kept.)

    A per-epoch ``result.json`` written before results had ``adopted`` holds the adopted
    states as its ``schedule``; both fields then read those (with a population they need not
    be the final model's lineage; calling the finished run again rewrites the file with it).

    Raises:
        FileNotFoundError: No such file (a run writes it when it finishes); the message says
            whether the folder exists, or where the run of that name is (``runs/<run>``) when
            ``path`` is a run's name.
        ValueError: The file is not a result of this library (not JSON, not an object, a
            missing or unknown field, an entry that is not an object); it is never executed.
    """
    file = Path(path)
    if file.is_dir():
        file = file / "result.json"
    if not file.is_file():
        raise FileNotFoundError(_missing(Path(path), file))
    try:
        data = json.loads(file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{str(file)!r} is not a result file: not JSON ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{str(file)!r} is not a result file: not a JSON object")
    try:
        result = _result(data)
    except (TypeError, AttributeError, KeyError) as err:
        why = f"no {err}" if isinstance(err, KeyError) else str(err)
        raise ValueError(f"{str(file)!r} is not a result file of this version: {why}") from err
    return _moved(result, file.parent)


def _missing(path: Path, file: Path) -> str:
    """Why :func:`load_result` found no result at ``path`` (``file``: where it looked)."""
    if file.name == "result.json" and file.parent.is_dir():
        return (
            f"{str(file.parent)!r} holds no result.json: a run writes it when it finishes (if "
            "this is the run's directory, calling the run again resumes and finishes it)"
        )
    message = f"no result at {str(path)!r}: pass the run's directory or its result.json"
    default = default_run_dir(str(path))
    if not path.is_absolute() and len(path.parts) == 1 and default.is_dir():
        message += f" (a run named {path.name!r} is in {str(default)!r}, the default run_dir)"
    return message


def _moved(result: PerEpochResult | WholeResult, folder: Path) -> PerEpochResult | WholeResult:
    """``result`` with its paths inside its recorded ``run_dir`` moved to ``folder``, where the
    recorded one no longer exists (:func:`load_result`)."""
    if not isinstance(result.run_dir, str) or not os.path.isabs(result.run_dir):
        return result
    recorded = Path(result.run_dir)
    if recorded.exists() or not folder.is_dir():
        return result
    folder = folder.resolve()
    changes: dict[str, Any] = {"run_dir": str(folder)}
    for key in ("artifacts", "storage"):
        value = getattr(result, key)
        if not isinstance(value, str) or "://" in value or not os.path.isabs(value):
            continue
        try:
            inside = Path(value).relative_to(recorded)
        except ValueError:  # kept elsewhere (a shared folder): not moved with the run
            continue
        if ".." not in inside.parts and (folder / inside).exists():
            changes[key] = str(folder / inside)
    return replace(result, **changes)


def _result(data: dict[str, Any]) -> PerEpochResult | WholeResult:
    if "trials_per_study" in data:  # result.json files written before the setting had one name
        data.setdefault("trials_per_epoch", data.pop("trials_per_study"))
    if data.get("mode") == "whole":
        data["best"] = ScheduleEntry(**data["best"]) if data.get("best") else None
        return WholeResult(**data)
    data["schedule"] = [ScheduleEntry(**e) for e in data["schedule"]]
    data["adopted"] = [ScheduleEntry(**e) for e in data.get("adopted", [])] or list(
        data["schedule"]
    )
    return PerEpochResult(**data)


#: Test metrics shown first (with four decimals) where the trainer returns them.
_KNOWN = ("accuracy", "sensitivity", "specificity", "mcc")


def summary_text(result: PerEpochResult | WholeResult, *, cli: bool = False) -> str:
    """The result as a reader wants it first: the final model's schedule (one row per epoch:
    its settings, objective value, validation accuracy and trial; whole mode: the best
    training), the test metrics, the trials and the compute. ``print(result)`` shows it; the
    command line prints it at the end of a run (``cli=True``: the other final model is named
    as the flag ``--final-model last`` instead of ``final_model="last"``)."""
    lines: list[str] = []
    if isinstance(result, PerEpochResult):
        entries = result.schedule
        adopted = [e.trial_number for e in result.adopted]
        if branches_off([e.trial_number for e in entries], adopted):
            lines.append(
                "the final model's schedule (its lineage; the best state of each epoch, which "
                "can descend from another, is result.json's 'adopted'):"
            )
    else:
        entries = [result.best] if result.best is not None else []
    lines += _table(entries, str(result.objective))
    if isinstance(result, PerEpochResult):
        lines += _final_model(result, "--final-model last" if cli else 'final_model="last"')
    lines.append(f"test: {_test(result.test, str(result.objective))}")
    done = result.trials_trained + result.trials_reused
    lines.append(
        f"trials: {done} ({result.trials_trained} trained, {result.trials_reused} reused); "
        f"compute {result.compute_time:.1f} s over the run; this call: "
        f"{count(result.new_trials, 'new trial')}, wall {result.wall_time:.1f} s"
    )
    return "\n".join(lines)


def _table(entries: Sequence[ScheduleEntry], objective: str) -> list[str]:
    """A header and one row per entry: its settings, objective value, validation accuracy
    (where the trainer gives one and the objective is not it) and trial number."""
    keys = list(entries[0].params) if entries else []
    with_acc = objective != "accuracy" and any("accuracy" in e.metrics for e in entries)
    rows = [
        f"{'epoch':>5}  "
        + "  ".join(f"{k:>12}" for k in keys)
        + f"  {objective:>10}"
        + (f"  {'val acc':>8}" if with_acc else "")
        + f"  {'trial':>5}"
    ]
    for e in entries:
        vals = "  ".join(
            f"{v:>12.4g}" if isinstance(v, float) else f"{v!s:>12}" for v in e.params.values()
        )
        acc = e.metrics.get("accuracy")
        acc_text = f"{acc:>8.4f}" if isinstance(acc, float) else f"{'':>8}"
        acc_text = f"  {acc_text}" if with_acc else ""
        rows.append(f"{e.epoch:>5}  {vals}  {e.value:>10.4f}{acc_text}  {e.trial_number:>5}")
    return rows


def _final_model(result: PerEpochResult, last: str) -> list[str]:
    """What the final model is, where it is not the last adopted state."""
    lines = []
    if result.final_epochs != result.epochs:
        lines.append(
            f"final model: epoch {result.final_epochs} of {result.epochs} (its adopted state "
            f"is the peak of the validation curve; {last} tests epoch {result.epochs}'s)"
        )
    if len(result.averaged_epochs) > 1:
        lines.append(
            f"final model: the average of its lineage's states of epochs "
            f"{epoch_ranges(result.averaged_epochs)} ({last} tests the last state)"
        )
    elif result.final_model == "average":  # tried (the default of serial races), not kept
        lines.append(
            "final model: the last state (no average of it with earlier states of its lineage "
            "validated as well)"
        )
    return lines


def _test(test: Mapping[str, Any], objective: str) -> str:
    """The test metrics: the objective's own first (the f1 of ``max:f1``), then the thesis's
    where the trainer returns them, else its own (a regression's mse)."""
    known = [k for k in _KNOWN if k in test]
    names = known or [k for k in test if k not in ("time", "confusion_matrix")]
    own = objective_metric(objective)
    if own is not None and own in test:
        names = [own, *(k for k in names if k != own)]
    shown = "  ".join(
        f"{k} {test[k]:.4f}" if k in known else f"{k} {test[k]:.4g}"
        for k in names
        if isinstance(test.get(k), float)
    )
    return shown or "no metrics (evaluate(state, 'test') returned none)"


def epoch_ranges(epochs: Sequence[int]) -> str:
    """Increasing epochs as runs: ``[1, 2, 3, 7, 9, 10]`` -> ``"1-3, 7, 9-10"``."""
    runs: list[list[int]] = []
    for e in epochs:
        if runs and e == runs[-1][1] + 1:
            runs[-1][1] = e
        else:
            runs.append([e, e])
    return ", ".join(f"{a}-{b}" if b > a else str(a) for a, b in runs)


def count(n: int, noun: str) -> str:
    """``n`` and the noun, plural unless ``n`` is 1: ``"1 new trial"``, ``"8 new trials"``."""
    return f"{n} {noun}" + ("" if n == 1 else "s")
