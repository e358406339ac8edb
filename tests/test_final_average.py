"""``final_model="average"``: the final model as the greedy average of its lineage's last states
(``optuna_gamma.tuner.execution.averaging``)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import optuna
from optuna.distributions import FloatDistribution
import pytest


torch = pytest.importorskip("torch")

from optuna_gamma.tuner import load_state  # noqa: E402
from optuna_gamma.tuner import TrainingState  # noqa: E402
from optuna_gamma.tuner import tune_per_epoch  # noqa: E402
from optuna_gamma.tuner import TunerConfig  # noqa: E402
from optuna_gamma.tuner.execution.averaging import average_snapshots  # noqa: E402
from optuna_gamma.tuner.execution.averaging import greedy_average  # noqa: E402


SPACE = {"lr": FloatDistribution(1e-3, 0.5, log=True)}


def _snap(w: list[float], **extra: Any) -> dict[str, Any]:
    model = {"w": torch.tensor(w), "h": torch.tensor(w, dtype=torch.float16)}
    model.update(extra)
    return {"model": model, "optimizer": {"state": {}, "tag": w[0]}}


def test_average_snapshots_averages_the_model_and_keeps_the_rest_of_the_first() -> None:
    a = _snap([1.0, 2.0], n=torch.tensor(3))
    b = _snap([3.0, 6.0], n=torch.tensor(9))
    c = _snap([5.0, 1.0], n=torch.tensor(1))
    avg = average_snapshots([a, b, c])
    assert torch.equal(avg["model"]["w"], torch.tensor([3.0, 3.0]))
    assert avg["model"]["h"].dtype == torch.float16  # averaged in float32, cast back
    assert torch.equal(avg["model"]["h"], torch.tensor([3.0, 3.0], dtype=torch.float16))
    assert int(avg["model"]["n"]) == 3  # integer buffers: the first state's
    assert avg["optimizer"] == a["optimizer"]
    assert torch.equal(a["model"]["w"], torch.tensor([1.0, 2.0]))  # inputs untouched
    with pytest.raises(ValueError, match="nothing to average"):
        average_snapshots([])
    with pytest.raises(ValueError, match="'w' differs"):
        average_snapshots([a, _snap([1.0, 2.0, 3.0])])


def _greedy(
    ws: list[float], objective: Any, maximize: bool = True
) -> tuple[list[int], float | None, dict[str, Any]]:
    snaps = [_snap([w]) for w in ws]
    kept, average, metrics = greedy_average(
        lambda i: snaps[i],
        len(snaps),
        {"w": ws[0]},
        lambda s: {"w": float(s["model"]["w"][0])},
        objective,
        maximize=maximize,
    )
    return kept, (None if average is None else float(average["model"]["w"][0])), metrics


def test_greedy_average_keeps_a_state_only_where_the_average_validates_as_well() -> None:
    """States oscillating around the optimum 0 (newest first): the last two average to it,
    every older one would move the average away again, so they are left out."""
    kept, w, metrics = _greedy([0.5, -0.5, 0.5, -0.5, 0.5], lambda m: -abs(m["w"]))
    assert kept == [0, 1] and w == 0.0 and metrics == {"w": 0.0}
    # minimizing the same distance gives the same choice
    assert _greedy([0.5, -0.5, 0.5], lambda m: abs(m["w"]), maximize=False)[0] == [0, 1]
    # nothing helps: the last state alone
    assert _greedy([0.0, 1.0, 2.0], lambda m: -abs(m["w"])) == ([0], None, {"w": 0.0})
    # a state whose average does not validate (NaN) is never kept
    nan_at_one = lambda m: float("nan") if m["w"] == 0.75 else -abs(m["w"] - 1)  # noqa: E731
    assert _greedy([1.0, 0.5, 1.0], nan_at_one)[0] == [0, 2]
    # the first candidate older than the last is compared with the last, ties kept
    assert _greedy([1.0, 1.0], lambda m: 0.0)[0] == [0, 1]


def test_greedy_average_skips_a_state_it_cannot_average_or_load() -> None:
    """A state whose model has other tensors (a model changed during training) or that is
    unavailable is skipped, said once each, and the rest are averaged as before; the last state
    itself must be there."""
    snaps: list[dict[str, Any] | None] = [_snap([0.5]), _snap([1.0, 2.0]), None, _snap([-0.5])]
    skipped: list[tuple[int, str]] = []
    kept, average, metrics = greedy_average(
        lambda i: snaps[i],
        len(snaps),
        {"w": 0.5},
        lambda s: {"w": float(s["model"]["w"][0])},
        lambda m: -abs(m["w"]),
        maximize=True,
        on_skip=lambda i, why: skipped.append((i, why)),
    )
    assert kept == [0, 3] and average is not None and metrics == {"w": 0.0}
    assert [i for i, _ in skipped] == [1, 2]
    assert "'w' differs" in skipped[0][1] and skipped[1][1] == "its state is unavailable"
    with pytest.raises(ValueError, match="the last state"):
        greedy_average(lambda i: None, 2, {}, lambda s: {}, lambda m: 0.0, maximize=True)


@settings(max_examples=60, deadline=None)
@given(
    ws=st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=8),
    target=st.floats(-5, 5),
)
def test_greedy_average_never_validates_worse_than_the_last_state(
    ws: list[float], target: float
) -> None:
    """The returned average is the mean of the kept states and validates at least as well as
    the last state alone (the property the final model relies on)."""

    def objective(m: dict[str, float]) -> float:
        return -((m["w"] - target) ** 2)

    kept, w, metrics = _greedy(ws, objective)
    assert kept[0] == 0 and kept == sorted(set(kept))
    value = objective(metrics)
    assert value >= objective({"w": ws[0]})
    if w is not None:
        mean = sum(torch.tensor(ws[i], dtype=torch.float32).item() for i in kept) / len(kept)
        assert w == pytest.approx(mean, rel=1e-5, abs=1e-5)


class _Oscillates:
    """One weight that each epoch sets to 1 + 0.5 (-1)^epoch: the last two states average to
    the optimum 1, where the validation accuracy is 1 (1 - |w - 1|); counts evaluations."""

    def __init__(self) -> None:
        self.evaluations = {"valid": 0, "test": 0}

    def build(self, seed: int, device: Any) -> TrainingState:
        model = torch.nn.Linear(1, 1, bias=False).to(device)
        return TrainingState(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))

    def train_epoch(self, state: TrainingState, hparams: Any, ctx: Any) -> None:
        with torch.no_grad():
            state.model.get_parameter("weight").fill_(1.0 + 0.5 * (-1) ** ctx.epoch)

    def evaluate(self, state: TrainingState, split: str) -> dict[str, float]:
        self.evaluations[split] += 1
        w = float(state.model.get_parameter("weight").detach())
        return {"accuracy": 1.0 - abs(w - 1.0), "loss": abs(w - 1.0) + 0.1}


def _cfg(tmp_path: Path, **kw: Any) -> TunerConfig:
    base: dict[str, Any] = dict(
        run="avg",
        run_dir=str(tmp_path / "avg"),
        sampler="random",
        objective="accuracy",
        policy="thesis",
        trials_per_epoch=1,
        epochs=6,
        progress=False,
        final_model="average",
    )
    return TunerConfig(**{**base, **kw})


def test_a_run_returns_the_average_of_its_last_two_states_and_reuses_it(tmp_path: Path) -> None:
    """End to end: the final model is the average of epochs 5 and 6 (validation accuracy 1
    against 0.5 for the last state alone), recorded on the last study, loaded by
    ``load_state``; called again the finished run evaluates nothing, and switching to
    ``"last"`` and back tests each state once."""
    from optuna_gamma.tuner import build_report
    from optuna_gamma.tuner import get_storage

    trainer = _Oscillates()
    res = tune_per_epoch(trainer, SPACE, _cfg(tmp_path))
    assert res.final_model == "average" and res.averaged_epochs == [5, 6]
    assert res.final_epochs == 6 and res.test["accuracy"] == pytest.approx(1.0)
    state = load_state(res, trainer)
    assert float(state.model.get_parameter("weight").detach()) == pytest.approx(1.0)

    storage = get_storage(res.storage)
    last = optuna.load_study(study_name="avg/epoch-006", storage=storage)
    record, final = last.user_attrs["average"], last.user_attrs["final"]
    assert record["state"] == res.final_state == final["state"] and record["epochs"] == [5, 6]
    assert record["metrics"]["accuracy"] == pytest.approx(1.0) and len(record["tried"]) == 6
    assert final["rule"] == "average" and final["why"].startswith(
        "the average of the final lineage's states of epochs 5-6 (validation accuracy 1;"
    )
    assert json.loads((tmp_path / "avg" / "result.json").read_text())["averaged_epochs"] == [5, 6]
    page = build_report(res.storage, tmp_path / "r.html").read_text(encoding="utf-8")
    assert html.escape(f"Final model: {final['why']}.") in page

    seen = dict(trainer.evaluations)
    again = tune_per_epoch(trainer, SPACE, _cfg(tmp_path))
    assert again.new_trials == 0 and again.final_state == res.final_state
    assert trainer.evaluations == seen  # the recorded average and its recorded test metrics

    plain = tune_per_epoch(trainer, SPACE, _cfg(tmp_path, final_model="last"))
    assert plain.final_state != res.final_state and plain.averaged_epochs == []
    assert plain.test["accuracy"] == pytest.approx(0.5)
    back = tune_per_epoch(trainer, SPACE, _cfg(tmp_path, final_model="average"))
    assert back.final_state == res.final_state and back.test == res.test
    assert trainer.evaluations == {"valid": seen["valid"], "test": seen["test"] + 2}


def test_a_run_that_no_average_helps_returns_its_last_state(tmp_path: Path) -> None:
    class _Converges(_Oscillates):
        def train_epoch(self, state: TrainingState, hparams: Any, ctx: Any) -> None:
            with torch.no_grad():
                state.model.get_parameter("weight").fill_(
                    1.0 + 0.5**ctx.epoch
                )  # every epoch better

    res = tune_per_epoch(_Converges(), SPACE, _cfg(tmp_path))
    assert res.averaged_epochs == [6]
    assert "final model: the last state (no average of it with earlier states" in str(res)
    plain = tune_per_epoch(_Converges(), SPACE, _cfg(tmp_path, final_model="last"))
    assert res.final_state == plain.final_state  # no new state stored


def test_a_tampered_average_record_is_refused(tmp_path: Path) -> None:
    """The recorded average is read from the storage: a state id that escapes the artifact
    store is refused with a clear error, nothing is loaded from it."""
    from optuna_gamma.tuner import get_storage

    tune_per_epoch(_Oscillates(), SPACE, _cfg(tmp_path))
    last = optuna.load_study(
        study_name="avg/epoch-006", storage=get_storage(f"{tmp_path / 'avg' / 'journal.log'}")
    )
    last.set_user_attr("average", {**last.user_attrs["average"], "state": "../../etc/passwd"})
    with pytest.raises(ValueError, match="the recorded average"):
        tune_per_epoch(_Oscillates(), SPACE, _cfg(tmp_path))


def test_a_deleted_older_state_is_left_out_of_the_average_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Fault injection: epoch 5's stored state is deleted after the run; averaging then skips
    it (a warning names it) and averages the others, instead of losing the finished run."""
    import logging

    from optuna_gamma.tuner import get_storage

    trainer = _Oscillates()
    plain = tune_per_epoch(trainer, SPACE, _cfg(tmp_path, final_model="last"))
    storage = get_storage(plain.storage)
    fifth = optuna.load_study(study_name="avg/epoch-005", storage=storage)
    state = fifth.user_attrs["adopted"]["state"]
    (tmp_path / "avg" / "artifacts" / state).unlink()
    with caplog.at_level(logging.WARNING, logger="optuna_gamma"):
        res = tune_per_epoch(trainer, SPACE, _cfg(tmp_path))
    assert res.new_trials == 0 and res.final_model == "average"
    assert 5 not in res.averaged_epochs and res.averaged_epochs[-1] == 6
    assert len(res.averaged_epochs) > 1  # epochs 4, 3, ... still average with the last
    said = [r.getMessage() for r in caplog.records if "not averaged" in r.getMessage()]
    assert said == [
        "final model: epoch 5's state is not averaged with the last (its state is unavailable)"
    ]


class _Overfits(_Oscillates):
    """The weight walks away from the optimum after epoch 4: ``w = 1 + 0.02 |epoch - 4|``, so
    the validation accuracy ``1 - |w - 1|`` peaks at epoch 4 and falls to the end."""

    def train_epoch(self, state: TrainingState, hparams: Any, ctx: Any) -> None:
        with torch.no_grad():
            state.model.get_parameter("weight").fill_(1.0 + 0.02 * abs(ctx.epoch - 4))


def test_average_window_none_averages_over_the_whole_lineage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """By default the greedy average tries the last 20 states (``WINDOW``); a lineage that
    overfits early gets a warning that names ``average_window=None``, and with it every state
    is tried, the average reaches back to the peak and validates and tests better; the change
    trains nothing."""
    import logging

    from optuna_gamma.tuner import get_storage
    from optuna_gamma.tuner.execution.averaging import WINDOW

    epochs = WINDOW + 6
    trainer = _Overfits()
    with caplog.at_level(logging.INFO, logger="optuna_gamma"):
        window = tune_per_epoch(trainer, SPACE, _cfg(tmp_path, epochs=epochs))
    last = optuna.load_study(
        study_name=f"avg/epoch-{epochs:03d}", storage=get_storage(window.storage)
    )
    assert len(last.user_attrs["average"]["tried"]) == WINDOW
    assert min(window.averaged_epochs) > epochs - WINDOW
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "average_window=None (--average-window all) averages over all its states" in said

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="optuna_gamma"):
        whole = tune_per_epoch(trainer, SPACE, _cfg(tmp_path, epochs=epochs, average_window=None))
    assert whole.new_trials == 0
    last = optuna.load_study(
        study_name=f"avg/epoch-{epochs:03d}", storage=get_storage(whole.storage)
    )
    assert len(last.user_attrs["average"]["tried"]) == epochs
    assert min(whole.averaged_epochs) <= 4  # back to the peak and before
    assert whole.test["accuracy"] > window.test["accuracy"]
    said = " ".join(r.getMessage() for r in caplog.records)
    assert f"averaging the final lineage's last {epochs} states" in said

    short = tune_per_epoch(trainer, SPACE, _cfg(tmp_path, epochs=epochs, average_window=3))
    assert short.new_trials == 0 and min(short.averaged_epochs) >= epochs - 2


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "all"])
def test_a_bad_average_window_is_refused_before_work_starts(bad: Any) -> None:
    with pytest.raises(
        ValueError, match=f"average_window must be an int >= 1 or None, got {bad!r}"
    ):
        TunerConfig(average_window=bad)


def test_the_cli_takes_an_average_window_or_all(capsys: pytest.CaptureFixture[str]) -> None:
    from optuna_gamma.tuner.cli import _build_parser
    from optuna_gamma.tuner.cli import _config
    from optuna_gamma.tuner.cli import main

    parse = _build_parser().parse_args
    assert _config(parse(["tune"])).average_window == 20
    assert _config(parse(["tune", "--average-window", "all"])).average_window is None
    assert _config(parse(["tune", "--average-window", "7"])).average_window == 7
    for bad in ("0", "x"):
        with pytest.raises(SystemExit) as exited:
            main(["tune", "--average-window", bad])
        assert exited.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [
            "optuna-gamma tune: error: argument --average-window: expected an integer >= 1 "
            f"or 'all', got {bad!r}"
        ]
