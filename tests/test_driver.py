"""Per-epoch and whole-training drivers on real small data (scikit-learn digits, the MLP)."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
from optuna.trial import TrialState
import pytest

from optuna_gamma.driver import SAMPLER_CHOICES
from optuna_gamma.driver import SearchSpace
from optuna_gamma.driver import load_result
from optuna_gamma.driver import parse_sampler
from optuna_gamma.driver import tune_per_epoch
from optuna_gamma.driver import tune_whole
from optuna_gamma.driver.checkpoint import derive_seed
from optuna_gamma.driver.samplers import SlotNumberedSampler
from optuna_gamma.driver.space import grid_points


torch = pytest.importorskip("torch")

from optuna_gamma.data import load_dataset  # noqa: E402
from optuna_gamma.training import load_state  # noqa: E402
from optuna_gamma.training import make_optimizer  # noqa: E402
from optuna_gamma.training import restore_state  # noqa: E402
from optuna_gamma.training import set_hyperparameters  # noqa: E402
from optuna_gamma.training import train_one_epoch  # noqa: E402
from optuna_gamma.models import build_model  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)

TRIAL_ATTRS = {
    "accuracy", "loss", "kappa", "diverged", "sensitivity", "specificity", "mcc",
    "train_loss", "train_time", "eval_time", "state", "params", "epoch",
}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", None, seed=0)


def _same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- unit pieces
def test_search_space_validation() -> None:
    with pytest.raises(ValueError, match="low < high"):
        SearchSpace(lr_low=0.5, lr_high=0.1)
    with pytest.raises(ValueError, match="> 0 on a log scale"):
        SearchSpace(lr_low=0.0, lr_high=0.5)
    SearchSpace(lr_low=0.0, lr_high=0.5, lr_log=False)
    with pytest.raises(ValueError, match="momentum"):
        SearchSpace(momentum=1.0)
    with pytest.raises(ValueError, match="batch_size"):
        SearchSpace(batch_size=[32, 0])
    s = SearchSpace(batch_size=[32, 64], weight_decay=(1e-5, 1e-2), momentum=0.9)
    assert s.tuned() == ("lr", "batch_size", "weight_decay")
    assert s.fixed() == {"momentum": 0.9}


def test_search_space_suggest_ranges() -> None:
    s = SearchSpace(lr_low=1e-3, lr_high=0.5, batch_size=(16, 128), weight_decay=[0.0, 1e-3], momentum=(0.0, 0.9))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        t = study.ask()
        p = s.suggest(t)
        assert 1e-3 <= p["lr"] <= 0.5 and 16 <= p["batch_size"] <= 128
        assert p["weight_decay"] in (0.0, 1e-3) and 0.0 <= p["momentum"] <= 0.9
        assert t.distributions["lr"].log and t.distributions["batch_size"].log
        study.tell(t, 0.0)


def test_grid_points() -> None:
    g = grid_points(1e-3, 0.5, 5)
    assert g[0] == 1e-3 and g[-1] == 0.5
    ratios = [g[i + 1] / g[i] for i in range(4)]
    assert max(ratios) == pytest.approx(min(ratios))
    thesis = grid_points(0.5 / 100, 0.5, 100, log=False)  # the thesis's (0, 0.5] grid
    assert thesis[:2] == pytest.approx([0.005, 0.01]) and thesis[-1] == 0.5 and len(thesis) == 100


def test_parse_sampler() -> None:
    assert parse_sampler("gamma").kind == "gamma"
    assert parse_sampler("GRID:7").grid_size == 7 and parse_sampler("grid:7").grid_log
    assert not parse_sampler("grid:7:linear").grid_log
    assert parse_sampler("fixed").fixed_lr == 0.01 and parse_sampler("fixed:0.2").fixed_lr == 0.2
    for bad in ("bogus", "grid:0", "grid:x", "grid:3:cubic", "fixed:-1", "fixed:abc"):
        with pytest.raises(ValueError) as err:
            parse_sampler(bad)
        assert repr(bad) in str(err.value) and "gamma" in str(err.value)
    assert "grid:N" in SAMPLER_CHOICES


def test_derive_seed_is_stable_and_distinct() -> None:
    assert derive_seed(0, "batches", 1) == derive_seed(0, "batches", 1)
    seeds = {derive_seed(0, "batches", e) for e in range(50)} | {derive_seed(1, "batches", e) for e in range(50)}
    assert len(seeds) == 100


def test_slot_numbered_sampler_shows_the_slot() -> None:
    seen = []

    class Recorder(optuna.samplers.RandomSampler):
        def sample_independent(self, study, trial, name, dist):  # type: ignore[override]
            seen.append(trial.number)
            return super().sample_independent(study, trial, name, dist)

    study = optuna.create_study()
    for _ in range(3):
        study.tell(study.ask(), state=TrialState.FAIL)
    study.sampler = SlotNumberedSampler(Recorder(seed=0), slot=1)
    t = study.ask()
    t.suggest_float("x", 0, 1)
    assert t.number == 3 and seen == [1]


# ----------------------------------------------------------------------------- end to end
def test_per_epoch_gamma_and_grid_share_one_storage(digits, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'runs.db'}"
    results = {}
    for sampler, run in (("gamma", "g"), ("grid:4", "grid")):
        results[run] = tune_per_epoch(
            "mlp", digits, sampler=sampler, trials_per_epoch=4, epochs=2, storage=storage, run=run, seed=0,
            run_dir=str(tmp_path / run), keep_trial_states=True,
        )
    names = set(optuna.get_all_study_names(storage))
    assert names == {"g/epoch-001", "g/epoch-002", "grid/epoch-001", "grid/epoch-002"}

    grid_lrs = set(grid_points(1e-3, 0.5, 4))
    for run, res in results.items():
        assert [e.epoch for e in res.schedule] == [1, 2]
        assert json.loads(Path(res.run_dir, "result.json").read_text())["schedule"][1]["lr"] == res.schedule[1].lr
        assert load_result(Path(res.run_dir) / "result.json") == res
        for entry in res.schedule:
            study = optuna.load_study(study_name=f"{run}/epoch-{entry.epoch:03d}", storage=storage)
            trials = study.get_trials(states=(TrialState.COMPLETE,))
            assert len(trials) == 4
            for t in trials:
                assert TRIAL_ATTRS <= set(t.user_attrs)
                assert t.value == t.user_attrs["kappa"] and not t.user_attrs["diverged"]
                assert 0.0 <= t.user_attrs["accuracy"] <= 1.0 and t.user_attrs["train_loss"] > 0
            if run == "grid":
                assert {t.params["lr"] for t in trials} == grid_lrs  # every grid point once
            best = max(trials, key=lambda t: t.value)
            assert entry.lr == best.params["lr"] and entry.kappa == best.value
            assert entry.trial_number == best.number and entry.accuracy == best.user_attrs["accuracy"]
            assert study.user_attrs["adopted"]["trial"] == best.number
            # The adopted weights (model and optimizer) are the best trial's.
            adopted = load_state(Path(res.run_dir) / study.user_attrs["adopted"]["state"])
            trial_state = load_state(Path(res.run_dir) / best.user_attrs["state"])
            assert _same_tensors(adopted.model, trial_state.model)
            assert adopted.optimizer["param_groups"][0]["lr"] == entry.lr
        # The test metrics describe the final adopted model.
        assert sum(map(sum, res.test["confusion_matrix"])) == len(digits.test)
        assert res.test["accuracy"] > 0.8


def test_adopted_state_equals_independent_retraining(digits, tmp_path: Path) -> None:
    """Epoch 2's adopted weights = epoch 1's adopted state trained one epoch at epoch 2's lr with
    the epoch's batch seed (so every trial of an epoch sees the same batches)."""
    res = tune_per_epoch("mlp", digits, sampler="random", trials_per_epoch=3, epochs=2, seed=3, run="r",
                         run_dir=str(tmp_path))
    model = build_model("mlp", digits.input_shape, digits.n_classes, seed=0)
    opt = make_optimizer(model, lr=0.1, weight_decay=1e-3)
    restore_state(model, opt, load_state(tmp_path / "states" / "epoch-001" / "adopted.pt"))
    set_hyperparameters(opt, lr=res.schedule[1].lr)
    train_one_epoch(model, opt, digits.train, batch_size=50, seed=derive_seed(3, "batches", 2), device="cpu")
    final = load_state(res.final_state)
    assert _same_tensors({k: v for k, v in model.state_dict().items()}, final.model)
    # only the adopted states are kept by default
    assert sorted(p.name for p in (tmp_path / "states" / "epoch-002").iterdir()) == ["adopted.pt"]


def test_whole_training_mode(digits, tmp_path: Path) -> None:
    res = tune_whole("mlp", digits, sampler="tpe", n_trials=4, epochs=2, run="w", seed=0, run_dir=str(tmp_path))
    study = optuna.load_study(study_name="w/whole", storage=res.storage)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    best = max(trials, key=lambda t: t.value)
    assert len(trials) == 4 and res.best_lr == best.params["lr"] and res.best_kappa == best.value
    assert res.valid["accuracy"] == best.user_attrs["accuracy"]
    assert sum(map(sum, res.test["confusion_matrix"])) == len(digits.test)
    # The best trial's state really is two epochs at the constant best lr from the initial state.
    model = build_model("mlp", digits.input_shape, digits.n_classes, seed=derive_seed(0, "model"))
    opt = make_optimizer(model, lr=res.best_lr, weight_decay=1e-3)
    for e in (1, 2):
        train_one_epoch(model, opt, digits.train, batch_size=50, seed=derive_seed(0, "batches", e), device="cpu")
    assert _same_tensors(dict(model.state_dict()), load_state(res.final_state).model)


def test_fixed_learning_rate_baseline(digits, tmp_path: Path) -> None:
    res = tune_per_epoch("mlp", digits, sampler="fixed:0.05", epochs=2, run="f", run_dir=str(tmp_path))
    assert res.trials_per_epoch == 1 and res.learning_rates == [0.05, 0.05]
    with pytest.raises(ValueError, match="tunes nothing"):
        tune_per_epoch("mlp", digits, sampler="fixed", space=SearchSpace(batch_size=[16, 32]), run="f2",
                       run_dir=str(tmp_path / "f2"))


def test_warm_start_enqueues_previous_best(digits, tmp_path: Path) -> None:
    res = tune_per_epoch("mlp", digits, sampler="random", trials_per_epoch=3, epochs=2, run="ws",
                         run_dir=str(tmp_path), warm_start=True)
    study = optuna.load_study(study_name="ws/epoch-002", storage=res.storage)
    first = min(study.get_trials(), key=lambda t: t.number)
    assert first.params["lr"] == res.schedule[0].lr


def test_tuned_batch_size_and_grid_product(digits, tmp_path: Path) -> None:
    space = SearchSpace(lr_low=0.01, lr_high=0.3, batch_size=[32, 64])
    res = tune_per_epoch("mlp", digits, space=space, sampler="grid:2", epochs=1, run="gb", run_dir=str(tmp_path))
    study = optuna.load_study(study_name="gb/epoch-001", storage=res.storage)
    pts = {(t.params["lr"], t.params["batch_size"]) for t in study.get_trials()}
    assert len(pts) == 4 and res.trials_per_epoch == 4
    assert res.schedule[0].params["batch_size"] in (32, 64)


def test_bad_arguments(digits, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown sampler 'nope'"):
        tune_per_epoch("mlp", digits, sampler="nope", run_dir=str(tmp_path))
    with pytest.raises(ValueError, match="exceed"):
        tune_per_epoch("mlp", digits, sampler="grid:3", trials_per_epoch=5, run_dir=str(tmp_path))
    with pytest.raises(ValueError, match="epochs"):
        tune_per_epoch("mlp", digits, epochs=0, run_dir=str(tmp_path))
    with pytest.raises(ValueError, match="kappa"):
        tune_per_epoch("mlp", digits, kappa="kappa9", run_dir=str(tmp_path))


def test_same_run_with_other_settings_is_refused(digits, tmp_path: Path) -> None:
    tune_per_epoch("mlp", digits, sampler="random", trials_per_epoch=2, epochs=1, run="x", run_dir=str(tmp_path))
    with pytest.raises(ValueError, match="sampler"):
        tune_per_epoch("mlp", digits, sampler="tpe", trials_per_epoch=2, epochs=1, run="x", run_dir=str(tmp_path))


def test_diverging_trials_get_kappa_zero(digits, tmp_path: Path) -> None:
    space = SearchSpace(lr_low=1e3, lr_high=1e4)  # absurd learning rates
    res = tune_per_epoch("mlp", digits, space=space, sampler="random", trials_per_epoch=2, epochs=1, run="d",
                         run_dir=str(tmp_path))
    study = optuna.load_study(study_name="d/epoch-001", storage=res.storage)
    for t in study.get_trials():
        if t.user_attrs["diverged"]:
            assert t.value == 0.0 and t.user_attrs["kappa"] == 0.0
    assert any(t.user_attrs["diverged"] for t in study.get_trials())


def test_driver_and_cli_imports_do_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, optuna_gamma.driver, optuna_gamma.cli, optuna_gamma.driver.report;"
        "from optuna_gamma.cli import _build_parser; _build_parser();"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", ["gamma", "gaussian", "plugin", "gp", "tpe", "random"])
def test_every_model_sampler_runs_through_the_driver(digits, tmp_path: Path, name: str) -> None:
    res = tune_per_epoch("mlp", digits, sampler=name, trials_per_epoch=3, epochs=1, run=name, seed=1,
                         run_dir=str(tmp_path))
    study = optuna.load_study(study_name=f"{name}/epoch-001", storage=res.storage)
    lrs = [t.params["lr"] for t in study.get_trials(states=(TrialState.COMPLETE,))]
    assert len(set(lrs)) == 3 and all(1e-3 <= lr <= 0.5 for lr in lrs)
    assert study.user_attrs["config"]["sampler"] == name and res.sampler == name


def test_determinant_breaks_kappa_ties_by_accuracy_then_loss() -> None:
    from optuna.distributions import FloatDistribution

    from optuna_gamma.driver._engine import best_trial

    def t(lr: float, kappa: float, acc: float, loss: float | None) -> optuna.trial.FrozenTrial:
        return optuna.trial.create_trial(
            params={"lr": lr}, distributions={"lr": FloatDistribution(1e-3, 1.0, log=True)}, value=kappa,
            user_attrs={"accuracy": acc, "loss": loss},
        )

    trials = [t(0.001, 0.0, 0.14, 2.30), t(0.2, 0.0, 0.31, 2.20), t(0.3, 0.0, 0.31, 2.10), t(0.9, 0.0, 0.10, None)]
    assert best_trial(trials).params["lr"] == 0.3
    assert best_trial(trials[::-1]).params["lr"] == 0.3  # order-independent
    trials.append(t(0.05, 0.01, 0.2, 2.25))
    assert best_trial(trials).params["lr"] == 0.05  # kappa first


def test_same_run_name_from_another_run_dir_is_refused(digits, tmp_path: Path) -> None:
    """Two run directories must not drive the same studies (each would fail the other's trials)."""
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    tune_per_epoch("mlp", digits, sampler="random", trials_per_epoch=1, epochs=1, run="same", storage=storage,
                   run_dir=str(tmp_path / "a"))
    with pytest.raises(ValueError, match="run_dir"):
        tune_per_epoch("mlp", digits, sampler="random", trials_per_epoch=1, epochs=1, run="same", storage=storage,
                       run_dir=str(tmp_path / "b"))


def test_more_epochs_extend_a_finished_run(digits, tmp_path: Path) -> None:
    kw = dict(sampler="random", trials_per_epoch=2, seed=5, run="ext")
    one = tune_per_epoch("mlp", digits, epochs=1, run_dir=str(tmp_path / "a"), **kw)
    two = tune_per_epoch("mlp", digits, epochs=2, run_dir=str(tmp_path / "a"), **kw)
    fresh = tune_per_epoch("mlp", digits, epochs=2, run_dir=str(tmp_path / "b"), **kw)
    assert two.schedule[0] == one.schedule[0]
    assert two.learning_rates == fresh.learning_rates and two.test == fresh.test
