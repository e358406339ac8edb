"""A finished run called again (issue 15, point 9): no second test-set evaluation, and
result.json keeps the wall time of the call that did the work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from optuna.distributions import FloatDistribution
import pytest


pytest.importorskip("torch")

from test_identity import SignTrainer  # noqa: E402

from optuna_gamma.tuner import tune_per_epoch  # noqa: E402
from optuna_gamma.tuner import tune_whole  # noqa: E402
from optuna_gamma.tuner import TunerConfig  # noqa: E402


SPACE = {"lr": FloatDistribution(1e-3, 0.5, log=True)}


class _CountsTestEvaluations(SignTrainer):
    def __init__(self) -> None:
        self.test_evaluations = 0

    def evaluate(self, state: Any, split: str) -> dict[str, float]:
        self.test_evaluations += split == "test"
        return super().evaluate(state, split)


@pytest.mark.parametrize("tune", [tune_per_epoch, tune_whole])
def test_rerunning_a_finished_run_evaluates_nothing_and_keeps_result_json(
    tune: Any, tmp_path: Path
) -> None:
    cfg = TunerConfig(
        run="done",
        run_dir=str(tmp_path / "done"),
        sampler="random",
        trials_per_epoch=2,
        epochs=2,
        progress=False,
    )
    trainer = _CountsTestEvaluations()
    first = tune(trainer, SPACE, cfg)
    assert trainer.test_evaluations == 1
    written = (tmp_path / "done" / "result.json").read_bytes()
    again = tune(trainer, SPACE, cfg)
    assert trainer.test_evaluations == 1  # the recorded test metrics of the same state
    assert again.new_trials == 0 and again.test == first.test
    assert (tmp_path / "done" / "result.json").read_bytes() == written
    if tune is tune_per_epoch:  # a longer run has a new final state: evaluated, written
        longer = tune(trainer, SPACE, cfg.__class__(**{**cfg.__dict__, "epochs": 3}))
        assert trainer.test_evaluations == 2 and longer.new_trials == 2
        assert (tmp_path / "done" / "result.json").read_bytes() != written


def test_report_prints_the_dashboard_command_with_the_artifact_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 15, point 9: the hint printed by ``report`` lets the dashboard download states."""
    from optuna_gamma.tuner.cli import main

    storage = f"sqlite:///{tmp_path / 'runs.db'}"
    cfg = TunerConfig(
        run="rep",
        run_dir=str(tmp_path / "rep"),
        storage=storage,
        sampler="random",
        trials_per_epoch=1,
        progress=False,
    )
    res = tune_per_epoch(SignTrainer(), SPACE, cfg)
    assert main(["report", "--storage", storage, "-o", str(tmp_path / "r.html")]) == 0
    out = capsys.readouterr().out
    assert f"dashboard: optuna-dashboard {storage} --artifact-dir {res.artifacts}" in out


class _PeaksAtEpoch3(SignTrainer):
    """Its validation accuracy peaks after 3 epochs of training and falls by 5 points an epoch
    after (a model that overfits); the test split reports the epochs the evaluated state was
    trained."""

    def __init__(self) -> None:
        self.test_evaluations = 0

    def build(self, seed: int, device: Any) -> Any:
        import torch

        state = super().build(seed, device)
        state.model.register_buffer("trained_epochs", torch.zeros(()))
        return state

    def train_epoch(self, state: Any, hparams: Any, ctx: Any) -> None:
        super().train_epoch(state, hparams, ctx)
        state.model.trained_epochs += 1

    def evaluate(self, state: Any, split: str) -> dict[str, float]:
        trained = float(state.model.get_buffer("trained_epochs"))
        if split == "test":
            self.test_evaluations += 1
            return {"accuracy": 0.5, "trained_epochs": trained}
        return {"accuracy": 0.9 - 0.05 * abs(trained - 3.0), "loss": 1.0}


def _peaking_run(tmp_path: Path, **kw: Any) -> TunerConfig:
    base: dict[str, Any] = dict(
        run="peak",
        run_dir=str(tmp_path / "peak"),
        sampler="random",
        objective="accuracy",
        epochs=12,
        progress=False,
    )
    return TunerConfig(**{**base, **kw})


def test_final_model_is_the_last_state_or_the_validation_peak_and_can_be_changed_after_the_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With ``final_model="last"`` the last adopted state is the final model, and the run says
    that its validation curve peaked (epoch 3 of 12); called again with ``final_model="best"`` the
    finished run trains nothing, tests epoch 3's state and records the choice on the last
    study; and back."""
    import logging

    import optuna

    from optuna_gamma.tuner import build_report

    trainer = _PeaksAtEpoch3()
    with caplog.at_level(logging.WARNING, logger="optuna_gamma"):
        last = tune_per_epoch(trainer, SPACE, _peaking_run(tmp_path, final_model="last"))
    assert last.final_model == "last" and last.final_epochs == 12 and last.epochs == 12
    assert last.test["trained_epochs"] == 12.0 and trainer.test_evaluations == 1
    (hint,) = [r.getMessage() for r in caplog.records if "was best around" in r.getMessage()]
    assert "around epoch 3/12" in hint and "final_model='best'" in hint

    best = tune_per_epoch(trainer, SPACE, _peaking_run(tmp_path, final_model="best"))
    assert best.new_trials == 0 and best.final_model == "best" and best.final_epochs == 3
    assert best.test["trained_epochs"] == 3.0 and best.final_state != last.final_state
    saved = json.loads((tmp_path / "peak" / "result.json").read_text())
    assert saved["final_epochs"] == 3 and saved["test"]["trained_epochs"] == 3.0
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "peak" / "journal.log"))
    )
    last_study = optuna.load_study(study_name="peak/epoch-012", storage=storage)
    final = last_study.user_attrs["final"]
    assert final["epoch"] == 3 and final["rule"] == "best" and final["state"] == best.final_state
    assert last_study.user_attrs["test"]["trained_epochs"] == 3.0
    page = build_report(best.storage, tmp_path / "r.html").read_text(encoding="utf-8")
    # the averages final_epoch compares: epochs 1-5 (0.8, 0.85, 0.9, 0.85, 0.8), 10-12
    assert final["why"] == (
        "the peak of the validation accuracy (0.84 averaged over epochs 1-5, "
        "0.5 over epochs 10-12)"
    )
    assert f"Final model: the state adopted in epoch 3 ({final['why']})." in page

    again = tune_per_epoch(trainer, SPACE, _peaking_run(tmp_path, final_model="last"))
    assert again.final_epochs == 12 and again.test == last.test
    assert last_study.user_attrs["final"]["why"] == "the last adopted state"
    assert trainer.test_evaluations == 3  # each switch evaluates the newly chosen state once


# A regression's validation MSE, epoch by epoch (a real run's: SGD on scikit-learn's diabetes
# data). The smoothed curve is lowest around epoch 3 (0.5382 over epochs 1-5, 0.5426 over the
# last 3: beyond the noise), while the single value at epoch 3 (0.5426) is above the last one.
_NOISY_MSE = [
    0.5328, 0.5253, 0.5426, 0.5460, 0.5442, 0.5462, 0.5458, 0.5391, 0.5408, 0.5480,
    0.5433, 0.5439, 0.5414, 0.5442, 0.5431, 0.5417, 0.5433, 0.5428, 0.5418,
]  # fmt: skip


class _NoisyMSE(_PeaksAtEpoch3):
    def evaluate(self, state: Any, split: str) -> dict[str, float]:
        trained = int(state.model.get_buffer("trained_epochs"))
        return {"mse": _NOISY_MSE[trained - 1] if split == "valid" else 0.4}


def test_the_peak_is_reported_by_the_averages_the_rule_compares(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A minimized objective whose smoothed curve peaks early: the hint (last state) and the
    record of ``final_model="best"`` give the window averages ``final_epoch`` compared, not
    the single values at the peak and at the end, which here are in the other order (the hint
    said "best around epoch 3 (0.5426) and worse at the end (0.5418)")."""
    import logging

    cfg = _peaking_run(tmp_path, objective="min:mse", epochs=len(_NOISY_MSE), final_model="last")
    with caplog.at_level(logging.INFO, logger="optuna_gamma"):
        tune_per_epoch(_NoisyMSE(), SPACE, cfg)
    (hint,) = [r.getMessage() for r in caplog.records if "was best around" in r.getMessage()]
    assert "around epoch 3/19 and is worse at the end (0.5382 averaged over epochs 1-5, " in hint
    assert "0.5426 over epochs 17-19), beyond its epoch-to-epoch noise" in hint
    assert "0.5418" not in hint
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="optuna_gamma"):
        best = tune_per_epoch(
            _NoisyMSE(),
            SPACE,
            _peaking_run(
                tmp_path, objective="min:mse", epochs=len(_NOISY_MSE), final_model="best"
            ),
        )
    assert best.final_epochs == 3 and best.new_trials == 0
    (chosen,) = [
        r.getMessage() for r in caplog.records if "final model: the state" in r.getMessage()
    ]
    assert "(0.5382 averaged over epochs 1-5, 0.5426 over epochs 17-19)" in chosen


def test_thesis_policy_keeps_the_last_state(
    tmp_path: Path,
) -> None:
    """The default ``final_model="auto"`` keeps the thesis's last state (its tables)."""
    thesis = tune_per_epoch(
        _PeaksAtEpoch3(), SPACE, _peaking_run(tmp_path, policy="thesis", trials_per_epoch=1)
    )
    assert thesis.final_model == "last" and thesis.final_epochs == 12
    assert thesis.test["trained_epochs"] == 12.0 and thesis.averaged_epochs == []


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ({"width": 1}, "average"),  # serial races: one lineage trains most of the budget
        ({"width": 2}, "average"),  # the races two at a time
        ({"width": 3}, "average"),
        ({"width": 2, "two_as_serial": False}, "last"),  # a population of two
        ({"width": 4}, "last"),  # a population
        ({"width": 12}, "last"),
    ],
)
def test_the_default_final_model_is_the_one_the_policy_was_measured_best_with(
    policy: dict[str, Any], expected: str
) -> None:
    from optuna_gamma.tuner.policies import PopulationPolicy
    from optuna_gamma.tuner.policies import ThesisPolicy

    assert PopulationPolicy(budget=120, **policy).default_final_model == expected
    assert ThesisPolicy(trials=12, epochs=3).default_final_model == "last"
    assert TunerConfig().final_model == "auto"


def test_the_default_serial_run_returns_the_average_and_can_switch_to_the_last_state(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``final_model="auto"`` on a serial run of the default policy: the greedy average of its
    lineage's last states (the model overfits after epoch 3: the states before the last
    validate better, so the average keeps some), recorded as ``"average"`` (the rule chosen,
    not ``"auto"``); ``final_model="last"`` then trains nothing and tests the last state."""
    import logging

    trainer = _PeaksAtEpoch3()
    with caplog.at_level(logging.INFO, logger="optuna_gamma"):
        auto = tune_per_epoch(trainer, SPACE, _peaking_run(tmp_path))
    said = [
        r.getMessage() for r in caplog.records if "averaging the final lineage" in r.getMessage()
    ]
    assert len(said) == 1 and "last 12 states" in said[0] and "final_model='last'" in said[0]
    assert auto.policy["name"] == "population" and auto.policy["width"] == 1
    assert auto.final_model == "average" and auto.final_epochs == 12
    assert len(auto.averaged_epochs) > 1 and auto.averaged_epochs[-1] == 12
    # the average's weights are the mean of the kept states: their epochs trained, averaged
    assert auto.test["trained_epochs"] == pytest.approx(
        sum(auto.averaged_epochs) / len(auto.averaged_epochs)
    )
    saved = json.loads((tmp_path / "peak" / "result.json").read_text())
    assert saved["final_model"] == "average"
    assert "final model: the average of its lineage's states of epochs" in str(auto)
    last = tune_per_epoch(trainer, SPACE, _peaking_run(tmp_path, final_model="last"))
    assert last.new_trials == 0 and last.final_model == "last" and last.averaged_epochs == []
    assert last.test["trained_epochs"] == 12.0 and last.final_state != auto.final_state
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="optuna_gamma"):
        again = tune_per_epoch(trainer, SPACE, _peaking_run(tmp_path))  # the recorded average
    assert again.final_state == auto.final_state and again.test == auto.test
    assert not [r for r in caplog.records if "averaging the final lineage" in r.getMessage()]


_PEAKED = [0.80, 0.85, 0.90, 0.85, 0.80, 0.75, 0.70, 0.65, 0.60, 0.55, 0.50, 0.45]


@pytest.mark.parametrize(
    ("values", "maximize", "rule", "expected"),
    [
        (_PEAKED, True, "best", 3),  # a clear peak, then a long fall: the peak
        (_PEAKED, True, "last", 12),
        ([-v for v in _PEAKED], False, "best", 3),  # minimizing: the valley
        (_PEAKED[:4], True, "best", 4),  # shorter than a window: the last
        ([float("nan"), *_PEAKED[1:]], True, "best", 12),  # not a finite curve: the last
        (list(range(12)), True, "best", 12),  # still improving: the last
        ([0.5] * 12, True, "best", 12),  # flat: the last
    ],
)
def test_final_epoch(values: list[float], maximize: bool, rule: str, expected: int) -> None:
    from optuna_gamma.tuner.execution.finished import final_epoch

    records = [{"value": v} for v in values]
    assert final_epoch(records, rule, maximize=maximize) == expected


def test_final_epoch_ignores_a_lucky_draw_and_finds_a_peak_under_noise() -> None:
    """Monte Carlo over noisy curves: a curve that keeps improving slowly, with one lucky
    epoch far above it, keeps its last state (the plain argmax would take the lucky one); an
    overfitting curve under the same noise gets a state near its peak."""
    import numpy as np

    from optuna_gamma.tuner.execution.finished import final_epoch

    rng = np.random.default_rng(0)
    epochs = np.arange(1, 61)
    lucky_kept = near_peak = 0
    for _ in range(200):
        noise = rng.normal(0.0, 0.02, size=epochs.size)
        rising = 0.7 + 0.001 * epochs + noise
        rising[20] += 0.08  # one lucky validation draw, 4 sigma high
        lucky_kept += final_epoch([{"value": v} for v in rising], "best", maximize=True) == 60
        peaked = 0.8 - 0.002 * np.abs(epochs - 15) + noise
        chosen = final_epoch([{"value": v} for v in peaked], "best", maximize=True)
        near_peak += abs(chosen - 15) <= 8
    assert lucky_kept >= 190 and near_peak >= 180


def test_bad_final_model_is_refused_before_work() -> None:
    from optuna_gamma.tuner.config import SettingError
    from optuna_gamma.tuner.execution.finished import final_epoch

    expected = r"must be one of \('auto', 'last', 'best', 'average'\), got 'top'"
    with pytest.raises(SettingError, match=expected):
        TunerConfig(final_model="top")
    for rule in ("first", "auto"):  # "auto" is resolved by the policy before a rule applies
        with pytest.raises(ValueError, match="final_model must be one of"):
            final_epoch([{"value": 1.0}], rule, maximize=True)
    with pytest.raises(ValueError, match="no final model"):
        final_epoch([], "best", maximize=True)


def test_load_state_gives_the_final_model_and_refuses_a_tampered_result(tmp_path: Path) -> None:
    """``load_state`` loads the result's final state (the best-validated one, epoch 3) into the
    trainer's state, from the returned result and from ``result.json``; a state id that
    escapes the artifact store or a replaced state file is refused."""
    import dataclasses

    from optuna_gamma.tuner import load_result
    from optuna_gamma.tuner import load_state
    from optuna_gamma.tuner.persistence.states import StateUnavailableError

    trainer = _PeaksAtEpoch3()
    res = tune_per_epoch(trainer, SPACE, _peaking_run(tmp_path, final_model="best"))
    state = load_state(res, trainer)
    assert float(state.model.get_buffer("trained_epochs")) == 3.0
    assert trainer.evaluate(state, "valid")["accuracy"] == pytest.approx(0.9)
    saved = load_result(tmp_path / "peak" / "result.json")
    assert float(load_state(saved, trainer).model.get_buffer("trained_epochs")) == 3.0
    assert len(res.final_state_sha256) == 64

    with pytest.raises(ValueError, match="final_state"):
        load_state(dataclasses.replace(res, final_state="../../etc/passwd"), trainer)
    (Path(res.artifacts) / res.final_state).write_bytes(b"not a state")
    with pytest.raises(StateUnavailableError, match="SHA-256"):
        load_state(res, trainer)
    with pytest.raises(ValueError, match="not a directory"):
        load_state(res, trainer, artifacts=tmp_path / "nowhere")


def test_a_moved_run_directory_loads_its_final_model(tmp_path: Path) -> None:
    """A run directory moved elsewhere (rsync from a cluster, a rename) reads with its artifact
    folder and journal where they are now: before, ``load_state`` looked for the states in the
    recorded absolute path and failed ("... is not a directory"). Paths kept outside the run
    directory, and a run directory that still exists, are read as recorded."""
    import shutil

    from optuna_gamma.tuner import load_result
    from optuna_gamma.tuner import load_state
    from optuna_gamma.tuner import PerEpochResult

    trainer = _PeaksAtEpoch3()
    res = tune_per_epoch(trainer, SPACE, _peaking_run(tmp_path, final_model="best"))
    old = tmp_path / "peak"
    assert Path(res.artifacts).parent == old and Path(res.storage).parent == old
    copy = tmp_path / "elsewhere" / "peak-copy"
    shutil.copytree(old, copy)
    assert load_result(copy).run_dir == str(old)  # the recorded one exists: as recorded
    shutil.rmtree(old)
    moved = load_result(copy)
    assert isinstance(moved, PerEpochResult)
    assert moved.run_dir == str(copy.resolve())
    assert moved.artifacts == str(copy.resolve() / "artifacts")
    assert moved.storage == str(copy.resolve() / "journal.log")
    assert moved.schedule == res.schedule and moved.test == res.test
    assert float(load_state(moved, trainer).model.get_buffer("trained_epochs")) == 3.0
    # without the move, the error says how to point at the states
    with pytest.raises(ValueError, match="pass artifacts= where the states are now"):
        load_state(res, trainer)
    assert (
        float(
            load_state(res, trainer, artifacts=copy / "artifacts").model.get_buffer(
                "trained_epochs"
            )
        )
        == 3.0
    )


def test_the_recorded_reason_when_best_keeps_the_last_state(tmp_path: Path) -> None:
    """``final_model="best"`` returns the last state of a run too short to have a peak, and of
    one whose peak does not stand above its noise, and says which."""
    import optuna

    def run(name: str, epochs: int) -> tuple[int, str]:
        """The final model's epoch of a ``final_model="best"`` run, and the recorded reason."""
        cfg = _peaking_run(
            tmp_path, run=name, run_dir=str(tmp_path / name), epochs=epochs, final_model="best"
        )
        res = tune_per_epoch(_PeaksAtEpoch3(), SPACE, cfg)
        storage = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / name / "journal.log"))
        )
        study = optuna.load_study(study_name=f"{name}/epoch-{epochs:03d}", storage=storage)
        return res.final_epochs, str(study.user_attrs["final"]["why"])

    assert run("short", 4) == (4, "the last adopted state: 4 epochs are too few to find a peak")
    # accuracy 0.8, 0.85, 0.9, 0.85, 0.8, 0.75: the peak's window (epochs 1-5) averages 0.84,
    # the end (epochs 4-6) 0.8, and the noise estimated from the changes (0.05) hides it
    assert run("small", 6) == (
        6,
        "the last adopted state: no peak of the validation accuracy stands above its noise",
    )


class _ConfidentAtEpoch3(_PeaksAtEpoch3):
    """A model that does not overfit: its validation accuracy rises every epoch, but from epoch
    3 on its loss grows by a factor e an epoch (overconfidence), so kappa_1 peaks at epoch 3.
    With ``overfits`` the accuracy falls after epoch 3 as well."""

    def __init__(self, overfits: bool) -> None:
        super().__init__()
        self.overfits = overfits

    def evaluate(self, state: Any, split: str) -> dict[str, float]:
        metrics = super().evaluate(state, split)
        if split == "test":
            return metrics
        trained = float(state.model.get_buffer("trained_epochs"))
        accuracy = 0.5 + 0.02 * trained
        if self.overfits and trained > 3.0:
            accuracy = 0.56 - 0.02 * (trained - 3.0)
        return {"accuracy": accuracy, "loss": float(np.exp(abs(trained - 3.0)))}


@pytest.mark.parametrize("overfits", [False, True])
def test_the_overfitting_hint_needs_the_validation_accuracy_to_fall_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, overfits: bool
) -> None:
    """kappa_1 (the default objective) peaks at epoch 3 of 12 in both runs. Only where the
    validation accuracy falls as well does the run advise ``final_model='best'``; where the
    accuracy still rises (a CNN getting overconfident: on CIFAR-10 that advice cost 2-6
    points) it says why it keeps the last state. ``"best"`` itself still returns the objective's
    peak when asked for."""
    import logging

    from optuna_gamma.tuner.execution.finished import accuracy_agrees

    cfg = _peaking_run(tmp_path, objective="kappa1")
    with caplog.at_level(logging.INFO, logger="optuna_gamma"):
        last = tune_per_epoch(_ConfidentAtEpoch3(overfits), SPACE, cfg)
    messages = [r.getMessage() for r in caplog.records]
    hints = [m for m in messages if "final_model='best'" in m and "was best around" in m]
    kept = [m for m in messages if "the last state is kept" in m]
    assert last.final_epochs == 12
    if overfits:
        assert len(hints) == 1 and "around epoch 3/12" in hints[0] and not kept
    else:
        assert not hints and len(kept) == 1 and "around epoch 3/12" in kept[0]
    best = tune_per_epoch(
        _ConfidentAtEpoch3(overfits),
        SPACE,
        _peaking_run(tmp_path, objective="kappa1", final_model="best"),
    )
    assert best.final_epochs == 3 and best.new_trials == 0

    rising = [{"metrics": {"accuracy": 0.5 + 0.01 * e}} for e in range(12)]
    peaked = [{"metrics": {"accuracy": 0.9 - 0.05 * abs(e - 3)}} for e in range(12)]
    assert not accuracy_agrees(rising, 4, "kappa") and accuracy_agrees(peaked, 4, "kappa")
    # The accuracy peaks at epoch 4, but the objective's peak (epoch 11) validates no better
    # than the end.
    assert not accuracy_agrees(peaked, 11, "kappa")
    assert accuracy_agrees(rising, 4, "accuracy")  # the objective's own curve decides
    assert accuracy_agrees([{"metrics": {"loss": 1.0}}] * 12, 4, "loss")  # no accuracy
