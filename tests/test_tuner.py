"""The per-epoch tuner on real small data (scikit-learn digits, the built-in MLP trainer).

What the study sees (docs/design.md §3: unclipped kappa, metric name, adopted == best trial,
diverged trials), no wasted trials (§4), baselines through the same engine, the search-space
and sampler plumbing, logging and progress.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
import re
from typing import Any

import optuna
from optuna.artifacts import get_all_artifact_meta
from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
from optuna.distributions import IntDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState
import pytest


torch = pytest.importorskip("torch")

from optuna_gamma.tuner import AllTrialsDivergedError  # noqa: E402
from optuna_gamma.tuner import get_storage  # noqa: E402
from optuna_gamma.tuner import load_result  # noqa: E402
from optuna_gamma.tuner import SAMPLER_CHOICES  # noqa: E402
from optuna_gamma.tuner import SearchSpace  # noqa: E402
from optuna_gamma.tuner import ThesisTrainer  # noqa: E402
from optuna_gamma.tuner import tune_per_epoch  # noqa: E402
from optuna_gamma.tuner import tune_whole  # noqa: E402
from optuna_gamma.tuner import TunerConfig  # noqa: E402
from optuna_gamma.tuner.builtin.models import build_model  # noqa: E402
from optuna_gamma.tuner.builtin.training import make_optimizer  # noqa: E402
from optuna_gamma.tuner.builtin.training import train_one_epoch  # noqa: E402
from optuna_gamma.tuner.persistence.runfiles import derive_seed  # noqa: E402
from optuna_gamma.tuner.persistence.states import StateStore  # noqa: E402
from optuna_gamma.tuner.search.objectives import kappa_1  # noqa: E402
from optuna_gamma.tuner.search.samplers import parse_sampler  # noqa: E402
from optuna_gamma.tuner.search.samplers import ReseededSampler  # noqa: E402
from optuna_gamma.tuner.search.samplers import SamplerPlan  # noqa: E402
from optuna_gamma.tuner.search.space import grid_points  # noqa: E402
from optuna_gamma.tuner.search.space import ParamSpace  # noqa: E402


METRICS = {"accuracy", "loss", "train_loss"}


@pytest.fixture(scope="module")
def digits() -> ThesisTrainer:
    trainer = ThesisTrainer("digits")
    trainer.data  # load once for the module
    return trainer


def _value(t: FrozenTrial) -> float:
    """A finished trial's value (a test bug if it has none)."""
    assert t.value is not None, f"trial {t.number} ({t.state.name}) has no value"
    return t.value


def _cfg(tmp_path: Path, run: str, **kw) -> TunerConfig:
    return TunerConfig(run=run, run_dir=str(tmp_path / run), **kw)


def _store(result) -> StateStore:
    from optuna.artifacts import FileSystemArtifactStore

    return StateStore(FileSystemArtifactStore(result.artifacts))


@pytest.fixture()
def one_thread():
    """Retrain by hand with the tuner's default of one torch thread (results depend on it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- search space
def test_thesis_search_space_validation() -> None:
    with pytest.raises(ValueError, match="lr_low < lr_high"):
        SearchSpace(lr_low=0.5, lr_high=0.1)
    for low in (0.0, -1.0):
        with pytest.raises(ValueError, match="lr_low must be > 0"):
            SearchSpace(lr_low=low, lr_high=0.5, lr_log=False)
    with pytest.raises(ValueError, match="lr_log must be True or False, got 'no'"):
        SearchSpace(lr_log="no")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="momentum"):
        SearchSpace(momentum=1.0)
    with pytest.raises(ValueError, match="batch_size"):
        SearchSpace(batch_size=[32, 0])
    d = SearchSpace(batch_size=[32, 64], weight_decay=(1e-5, 1e-2), momentum=0.9).distributions()
    assert d["lr"] == FloatDistribution(1e-3, 0.5, log=True)
    assert d["batch_size"] == CategoricalDistribution([32, 64])
    assert d["weight_decay"] == FloatDistribution(1e-5, 1e-2, log=True) and d["momentum"] == 0.9


def test_param_space_of_any_distributions() -> None:
    space = ParamSpace.of(
        {
            "lr": FloatDistribution(1e-4, 1e-1, log=True),
            "bs": IntDistribution(8, 64, log=True),
            "opt": CategoricalDistribution(["a", "b"]),
            "step": FloatDistribution(0.0, 1.0, step=0.25),
            "momentum": 0.9,
            "betas": (0.9, 0.99),
        }
    )
    assert space.tuned() == ("lr", "bs", "opt", "step") and space.fixed == {
        "momentum": 0.9,
        "betas": (0.9, 0.99),
    }
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        t = study.ask()
        p = space.suggest(t)
        assert 1e-4 <= p["lr"] <= 1e-1 and 8 <= p["bs"] <= 64 and p["opt"] in ("a", "b")
        assert p["step"] in (0.0, 0.25, 0.5, 0.75, 1.0) and p["momentum"] == 0.9
        assert set(t.params) == set(space.tuned())
        study.tell(t, 0.0)
    for bad, match in (
        (42, "mapping"),
        ({"": FloatDistribution(0, 1)}, "non-empty"),
        ({"x": object()}, "optuna distribution"),
        ({"x": 1.0}, "tunes nothing"),
    ):
        with pytest.raises(ValueError, match=match):
            ParamSpace.of(bad)  # type: ignore[arg-type]
    assert json.dumps(space.to_dict())  # JSON-ready for the studies' config


def test_same_point_at_each_parameters_resolution() -> None:
    space = ParamSpace.of(
        {
            "lr": FloatDistribution(1e-3, 1.0, log=True),
            "s": FloatDistribution(0, 1, step=0.1),
            "n": IntDistribution(1, 9),
            "c": CategoricalDistribution([1, 2]),
        }
    )
    a = {"lr": 0.01, "s": 0.3, "n": 4, "c": 1}
    assert space.same(a, dict(a))
    assert space.same(a, {**a, "s": 0.30000000000000004})  # the same step
    assert not space.same(a, {**a, "lr": math.nextafter(0.01, 1.0)})  # another float: retrained
    assert not space.same(a, {**a, "n": 5}) and not space.same(a, {**a, "c": 2})
    assert not space.same(a, {k: v for k, v in a.items() if k != "c"})


def test_at_bound_and_grid() -> None:
    space = ParamSpace.of(
        {
            "lr": FloatDistribution(1e-3, 0.5, log=True),
            "bs": CategoricalDistribution([16, 32]),
            "k": IntDistribution(1, 3),
        }
    )
    assert space.at_bound({"lr": 0.5, "k": 2}) == [("lr", "high")]
    assert space.at_bound({"lr": 1e-3, "k": 3}) == [("lr", "low"), ("k", "high")]
    assert space.at_bound({"lr": 0.02, "k": 2}) == []
    # 0 at the low end of a linear range is "off", and an integer's 1 (or 0) the floor of a
    # count (accumulation steps, layers; before, "widen the low end of 'k'" at k = 1):
    # nothing to widen past; their high ends count, and so do other integer low ends
    off = ParamSpace.of(
        {
            "p": FloatDistribution(0.0, 0.5),
            "n": IntDistribution(0, 3),
            "k": IntDistribution(1, 3),
            "bs": IntDistribution(1, 256, log=True),
            "units": IntDistribution(16, 256, log=True),
        }
    )
    assert off.at_bound({"p": 0.0, "n": 0, "k": 1, "bs": 1, "units": 32}) == []
    assert off.at_bound({"p": 0.5, "n": 3, "k": 3, "bs": 256, "units": 16}) == [
        ("p", "high"),
        ("n", "high"),
        ("k", "high"),
        ("bs", "high"),
        ("units", "low"),
    ]
    assert off.at_bound({"p": 0.0, "n": 1, "k": 2, "bs": 2, "units": 256}) == [("units", "high")]
    grid = space.grid(3)
    assert len(grid) == 3 * 2 * 3 and {p["lr"] for p in grid} == set(grid_points(1e-3, 0.5, 3))
    assert {p["lr"] for p in space.grid(3, linear=True)} == set(
        grid_points(1e-3, 0.5, 3, log=False)
    )
    thesis = grid_points(0.5 / 100, 0.5, 100, log=False)  # the thesis's (0, 0.5] grid
    assert thesis[:2] == pytest.approx([0.005, 0.01]) and thesis[-1] == 0.5 and len(thesis) == 100


# ----------------------------------------------------------------------------- samplers, config
def test_parse_sampler() -> None:
    assert parse_sampler("gamma").kind == "gamma"
    assert parse_sampler("GRID:7").grid_size == 7 and not parse_sampler("grid:7").grid_linear
    assert parse_sampler("grid:7:linear").grid_linear
    assert parse_sampler("fixed").fixed_lr == 0.01 and parse_sampler("fixed:0.2").fixed_lr == 0.2
    for bad in ("bogus", "grid:0", "grid:x", "grid:3:cubic", "fixed:-1", "fixed:abc"):
        with pytest.raises(ValueError) as err:
            parse_sampler(bad)
        assert repr(bad) in str(err.value) and "gamma" in str(err.value)
    assert "grid:N" in SAMPLER_CHOICES


def test_sampler_plan_refusals_and_deterministic_flag() -> None:
    space = ParamSpace.of({"lr": FloatDistribution(1e-3, 0.5, log=True)})
    not_a_sampler: Any = "tpe"  # deliberately the wrong type: the plan must refuse it
    with pytest.raises(ValueError, match="returned str, not an optuna.samplers.BaseSampler"):
        SamplerPlan(lambda seed: not_a_sampler, space, None, 2, True)
    with pytest.raises(ValueError, match="exceed"):
        SamplerPlan("grid:3", space, 5, 2, True)
    two = ParamSpace.of({"lr": FloatDistribution(1e-3, 0.5), "wd": FloatDistribution(0, 1)})
    with pytest.raises(ValueError, match="tunes nothing"):
        SamplerPlan("fixed", two, None, 2, True)
    assert SamplerPlan("gamma", space, None, 2, True).trials_per_epoch == 12
    from unittest import mock

    from optuna_gamma.samplers import GammaBOSampler
    import optuna_gamma.tuner.search.samplers as registry

    for det in (True, False):
        with mock.patch.object(registry, "GammaBOSampler", wraps=GammaBOSampler) as g:
            SamplerPlan("gamma", space, None, 2, det).factory(7)
        assert (
            g.call_args.kwargs["deterministic_objective"] is det
            and g.call_args.kwargs["seed"] == 7
        )
        # The tuner's tables were measured with the constant mean and repeats when noisy, not
        # with the sampler's defaults of now.
        assert g.call_args.kwargs["mean"] == "constant"
        assert g.call_args.kwargs["repeats"] == "if_noisy"
        with mock.patch.object(optuna.samplers, "GPSampler", wraps=optuna.samplers.GPSampler) as g:
            SamplerPlan("gp", space, None, 2, det).factory(7)
        assert (
            g.call_args.kwargs["deterministic_objective"] is det
            and g.call_args.kwargs["n_startup_trials"] == 2
        )


def test_config_validation_names_the_value() -> None:
    for kw, match in (
        ({"trials_per_epoch": 2.5}, "trials_per_epoch must be an int >= 1 or None, got 2.5"),
        ({"warm_start": "yes"}, "warm_start must be True or False, got 'yes'"),
        ({"epochs": 0}, "epochs must be an int >= 1 or None, got 0"),
        ({"seed": -1}, "seed"),
        ({"num_threads": 0}, "num_threads"),
        ({"run": "a/b"}, "run must be"),
        ({"sampler": 3}, "sampler"),
    ):
        with pytest.raises(ValueError, match=match):
            TunerConfig(**kw)
    memory = optuna.storages.InMemoryStorage()  # worker processes would each get a copy
    with pytest.raises(ValueError, match=r"^workers=2 needs a storage the worker processes"):
        TunerConfig(storage=memory, workers=2)
    with pytest.raises(ValueError, match=r"^coordinate=True needs a storage the worker"):
        TunerConfig(storage=memory, coordinate=True)
    for url in (
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///:memory:?cache=shared",
        "sqlite+pysqlite://",
        "sqlite:///file:db?mode=memory&uri=true",
        "sqlite:///file::memory:?cache=shared&uri=true",
    ):
        with pytest.raises(ValueError, match=r"the in-memory SQLite database 'sqlite[:+]"):
            TunerConfig(storage=url, workers=2)
    assert TunerConfig(storage="sqlite:///memory.db", workers=2).workers == 2  # a file
    # files too: pysqlite ignores mode=memory without uri=true, and a query names no file
    for url in ("sqlite:///x.db?mode=memory", "sqlite:///runs.db?timeout=30"):
        assert TunerConfig(storage=url, workers=2).workers == 2
    assert TunerConfig(storage=memory).storage is memory  # serial: this process only
    with pytest.raises(
        ValueError, match=r"unknown setting\(s\) \['epoch'\] \(did you mean 'epochs'"
    ):
        tune_per_epoch(ThesisTrainer("digits"), None, epoch=3)
    with pytest.raises(ValueError, match=r"\['zzz'\]; see"):  # nothing close: no guess
        tune_per_epoch(ThesisTrainer("digits"), None, zzz=3)
    # the settings given where the space goes: named, before any work
    for tune in (tune_per_epoch, tune_whole):
        with pytest.raises(ValueError, match=r"^the second argument is the search space, got a "):
            tune(ThesisTrainer("digits"), TunerConfig(budget=4))  # type: ignore[arg-type]


def test_derive_seed_is_stable_and_distinct() -> None:
    assert derive_seed(0, "batches", 1) == derive_seed(0, "batches", 1)
    seeds = {derive_seed(0, "batches", e) for e in range(50)} | {
        derive_seed(1, "batches", e) for e in range(50)
    }
    assert len(seeds) == 100


def test_reseeded_sampler_builds_per_trial_and_shows_the_slot() -> None:
    seen: list[tuple[int, int]] = []

    class Recorder(optuna.samplers.RandomSampler):
        def __init__(self, seed: int) -> None:
            super().__init__(seed=seed)
            self.seed = seed

        def sample_independent(self, study, trial, name, dist):
            seen.append((self.seed, trial.number))
            return super().sample_independent(study, trial, name, dist)

    study = optuna.create_study(sampler=ReseededSampler(Recorder, lambda slot: 100 + slot))
    for _ in range(2):
        study.tell(study.ask(), state=TrialState.FAIL)
    t = study.ask()
    t.suggest_float("x", 0, 1)
    study.tell(t, 1.0)
    t = study.ask()
    t.suggest_float("x", 0, 1)
    assert seen == [(100, 0), (101, 1)]  # trial numbers 2 and 3 are slots 0 and 1


# ----------------------------------------------------------------------------- end to end
def test_per_epoch_gamma_and_grid_share_one_storage(digits, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'runs.db'}"
    results = {}
    for sampler, run in (("gamma", "g"), ("grid:4", "grid")):
        results[run] = tune_per_epoch(
            digits,
            None,
            _cfg(
                tmp_path,
                run,
                sampler=sampler,
                trials_per_epoch=4,
                epochs=2,
                storage=storage,
                keep_trial_states=True,
            ),
        )
    assert set(optuna.get_all_study_names(storage)) == {
        "g/epoch-001",
        "g/epoch-002",
        "grid/epoch-001",
        "grid/epoch-002",
    }
    for run, res in results.items():
        assert [e.epoch for e in res.schedule] == [1, 2]
        assert load_result(Path(res.run_dir) / "result.json") == res
        # print(result) shows the schedule and the test metrics, not 5,000 characters of fields
        shown = str(res).splitlines()
        assert shown[0].split() == ["epoch", "lr", "kappa1", "val", "acc", "trial"]
        assert [row.split()[0] for row in shown[1:3]] == ["1", "2"]
        assert shown[3].startswith(f"test: accuracy {res.test['accuracy']:.4f}  sensitivity ")
        assert shown[4].startswith("trials: 8 (8 trained, 0 reused)") and len(shown) == 5
        assert "; this call: 8 new trials, wall " in shown[4]
        again = str(dataclasses.replace(res, new_trials=1)).splitlines()[4]
        assert "; this call: 1 new trial, wall " in again
        assert repr(res).startswith("PerEpochResult(run=")  # every field
        store = _store(res)
        for entry in res.schedule:
            study = optuna.load_study(study_name=f"{run}/epoch-{entry.epoch:03d}", storage=storage)
            assert study.metric_names == ["kappa"] and study.direction.name == "MAXIMIZE"
            trials = study.get_trials(states=(TrialState.COMPLETE,))
            assert len(trials) == 4
            for t in trials:
                ua = t.user_attrs
                assert (
                    METRICS <= set(ua) and "state" in ua and set(ua["time"]) == {"train", "eval"}
                )
                # The study sees the unclipped kappa; the thesis's clipped one is recorded.
                assert t.value == pytest.approx(
                    kappa_1(ua["accuracy"], ua["loss"], clip=False), rel=1e-12
                )
                assert ua["kappa_clipped"] == max(0.0, _value(t))
            if run == "grid":
                assert {t.params["lr"] for t in trials} == set(grid_points(1e-3, 0.5, 4))
            best = (
                study.best_trial
            )  # the adopted trial is the study's best (dashboard's "Best Trial")
            adopted = study.user_attrs["adopted"]
            assert (
                entry.trial_number == best.number == adopted["trial"] and entry.value == best.value
            )
            assert (
                entry.lr == best.params["lr"]
                and entry.metrics["accuracy"] == best.user_attrs["accuracy"]
            )
            assert adopted["state"] == best.user_attrs["state"]
            snap = store.load(adopted["state"])
            assert snap["optimizer"]["param_groups"][0]["lr"] == entry.lr
        assert (
            sum(map(sum, res.test["confusion_matrix"])) == len(digits.data.test)
            and res.test["accuracy"] > 0.8
        )
        assert res.trials_trained == 8 and res.trials_reused == 0 and res.new_trials == 8


def test_adopted_state_equals_independent_retraining(digits, tmp_path: Path, one_thread) -> None:
    """Epoch 2's adopted weights = the initial model trained one epoch at epoch 1's adopted lr,
    then one at epoch 2's, with each epoch's seed (every trial of an epoch sees the same
    batches)."""
    res = tune_per_epoch(
        digits,
        None,
        _cfg(
            tmp_path,
            "r",
            sampler="random",
            trials_per_epoch=3,
            epochs=2,
            seed=3,
            policy="thesis",  # each epoch from the one adopted state: the schedule retrains it
            device="cpu",  # bit-identical retraining is guaranteed on a CPU
        ),
    )
    model = build_model(
        "mlp", digits.data.input_shape, digits.data.n_classes, seed=derive_seed(3, "model")
    )
    opt = make_optimizer(model, lr=0.01, weight_decay=1e-3)
    for e, entry in enumerate(res.schedule, start=1):
        for g in opt.param_groups:
            g["lr"] = entry.lr
        train_one_epoch(
            model,
            opt,
            digits.data.train,
            batch_size=50,
            seed=derive_seed(3, "batches", e),
            device="cpu",
        )
    final = _store(res).load(res.final_state)
    assert _same(dict(model.state_dict()), final["model"])
    # only the adopted states (and the initial one, and the store's marker) are kept by default
    assert len(list(Path(res.artifacts).iterdir())) == 4


def test_whole_training_mode(digits, tmp_path: Path, one_thread) -> None:
    res = tune_whole(
        digits,
        None,
        _cfg(tmp_path, "w", sampler="tpe", trials_per_epoch=4, epochs=2, device="cpu"),
    )
    study = optuna.load_study(study_name="w/whole", storage=get_storage(res.storage))
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert (
        len(trials) == 4
        and res.best is not None
        and res.best.trial_number == study.best_trial.number
    )
    assert (
        res.best.metrics["accuracy"] == study.best_trial.user_attrs["accuracy"]
        and len(res.trials) == 4
    )
    assert str(res).splitlines()[1].split()[-1] == str(res.best.trial_number)  # the best
    model = build_model(
        "mlp", digits.data.input_shape, digits.data.n_classes, seed=derive_seed(0, "model")
    )
    assert res.best.lr is not None, "the best trial tuned lr"
    opt = make_optimizer(model, lr=res.best.lr, weight_decay=1e-3)
    for e in (1, 2):
        train_one_epoch(
            model,
            opt,
            digits.data.train,
            batch_size=50,
            seed=derive_seed(0, "batches", e),
            device="cpu",
        )
    assert _same(dict(model.state_dict()), _store(res).load(res.final_state)["model"])


def test_fixed_learning_rate_baseline(digits, tmp_path: Path) -> None:
    res = tune_per_epoch(digits, None, _cfg(tmp_path, "f", sampler="fixed:0.05", epochs=2))
    assert res.trials_per_epoch == 1 and res.learning_rates == [0.05, 0.05]
    with pytest.raises(ValueError, match="tunes nothing"):
        tune_per_epoch(
            digits, SearchSpace(batch_size=[16, 32]), _cfg(tmp_path, "f2", sampler="fixed")
        )


def test_warm_start_enqueues_previous_best(digits, tmp_path: Path) -> None:
    res = tune_per_epoch(
        digits,
        None,
        _cfg(
            tmp_path,
            "ws",
            sampler="random",
            trials_per_epoch=3,
            epochs=2,
            warm_start=True,
            policy="thesis",
        ),
    )
    study = optuna.load_study(study_name="ws/epoch-002", storage=get_storage(res.storage))
    assert min(study.get_trials(), key=lambda t: t.number).params["lr"] == res.schedule[0].lr


def test_tuned_batch_size_and_grid_product(digits, tmp_path: Path) -> None:
    space = SearchSpace(lr_low=0.01, lr_high=0.3, batch_size=[32, 64])
    res = tune_per_epoch(digits, space, _cfg(tmp_path, "gb", sampler="grid:2"))
    study = optuna.load_study(study_name="gb/epoch-001", storage=get_storage(res.storage))
    assert len({(t.params["lr"], t.params["batch_size"]) for t in study.get_trials()}) == 4
    assert res.trials_per_epoch == 4 and res.schedule[0].params["batch_size"] in (32, 64)


def test_bad_arguments_before_any_work(digits, tmp_path: Path) -> None:
    for kw, match in (
        ({"sampler": "nope"}, "unknown sampler 'nope'"),
        ({"sampler": "grid:3", "trials_per_epoch": 5}, "exceed"),
        ({"objective": "kappa9"}, "unknown objective"),
        ({"device": "tpu9"}, "unknown device 'tpu9'"),
    ):
        with pytest.raises(ValueError, match=match):
            tune_per_epoch(digits, None, _cfg(tmp_path, "bad", **kw))
    assert not (tmp_path / "bad").exists()
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU is available"):
            tune_per_epoch(digits, None, _cfg(tmp_path, "bad", device="cuda"))
    with pytest.raises(ValueError, match="build, train_epoch, evaluate"):
        tune_per_epoch(object(), {"lr": FloatDistribution(0.1, 1)}, _cfg(tmp_path, "bad"))  # type: ignore[arg-type]


def test_numpy_integers_in_the_config_become_ints_and_the_run_works(
    digits, tmp_path: Path
) -> None:
    """A seed from ``np.arange`` (a NumPy integer) passed TunerConfig's check and then stopped
    the run ("manifest field 'seed' must be an int >= 0, got np.int64(1)"); the config now
    keeps the integers as Python ints."""
    import numpy as np

    cfg = TunerConfig(
        seed=np.int64(1),
        budget=np.int64(4),
        workers=np.int32(0),
        n_startup_trials=np.int16(2),
        heartbeat_interval=np.uint8(5),
    )
    for name in ("seed", "budget", "workers", "n_startup_trials", "heartbeat_interval"):
        assert type(getattr(cfg, name)) is int, name
    res = tune_per_epoch(
        digits,
        None,
        _cfg(tmp_path, "np", sampler="random", seed=np.int64(1), epochs=np.int64(2)),
    )
    assert res.seed == 1 and len(res.schedule) == 2


def test_numpy_values_in_the_space_and_the_trainer_defaults_are_plain_numbers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A fixed value ``np.float64(0.5)`` stopped the run ("Object of type float64 is not JSON
    serializable", from the journal), and a ``default_hyperparameters()`` value
    ``np.int64(64)`` was said to lie outside the choices ``[32, 64]``."""
    import numpy as np
    from test_identity import SignTrainer

    class Defaults(SignTrainer):
        def default_hyperparameters(self) -> dict[str, Any]:
            return {"batch": np.int64(64)}

    space = {
        "lr": FloatDistribution(1e-3, 0.5, log=True),
        "batch": CategoricalDistribution([32, 64]),
        "momentum": np.float64(0.5),
        "betas": (np.float64(0.9), np.float32(0.5)),
    }
    with caplog.at_level(logging.WARNING, logger="optuna_gamma"):
        res = tune_per_epoch(Defaults(), space, _cfg(tmp_path, "np", budget=6))
    assert not [r for r in caplog.records if "outside the search space" in r.getMessage()]
    first = res.schedule[0].params
    assert type(first["momentum"]) is float and type(first["betas"][1]) is float
    study = optuna.load_study(study_name="np/epoch-001", storage=get_storage(res.storage))
    default = [t for t in study.trials if t.user_attrs.get("kind") == "default"]
    assert default and default[0].params["batch"] == 64


def test_same_run_with_other_settings_is_refused(digits, tmp_path: Path) -> None:
    tune_per_epoch(digits, None, _cfg(tmp_path, "x", sampler="random", trials_per_epoch=2))
    with pytest.raises(ValueError, match="sampler"):
        tune_per_epoch(digits, None, _cfg(tmp_path, "x", sampler="tpe", trials_per_epoch=2))
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    tune_per_epoch(
        digits,
        None,
        TunerConfig(
            run="same",
            run_dir=str(tmp_path / "a"),
            storage=storage,
            sampler="random",
            trials_per_epoch=1,
        ),
    )
    with pytest.raises(
        ValueError, match="run_dir"
    ):  # two run directories would fail each other's trials
        tune_per_epoch(
            digits,
            None,
            TunerConfig(
                run="same",
                run_dir=str(tmp_path / "b"),
                storage=storage,
                sampler="random",
                trials_per_epoch=1,
            ),
        )


def test_more_epochs_extend_a_finished_run(digits, tmp_path: Path) -> None:
    kw = dict(sampler="random", trials_per_epoch=2, seed=5)
    one = tune_per_epoch(digits, None, _cfg(tmp_path, "a", epochs=1, **kw))
    two = tune_per_epoch(digits, None, _cfg(tmp_path, "a", epochs=2, **kw))
    fresh = tune_per_epoch(digits, None, _cfg(tmp_path, "b", epochs=2, **kw))
    assert two.schedule[0] == one.schedule[0] and two.new_trials == 2
    assert two.learning_rates == fresh.learning_rates and two.test == fresh.test
    again = tune_per_epoch(digits, None, _cfg(tmp_path, "a", epochs=2, **kw))
    assert again.new_trials == 0 and again.compute_time == two.compute_time


@pytest.mark.parametrize("name", ["gamma", "gaussian", "plugin", "gp", "tpe", "random"])
def test_every_model_sampler_runs_through_the_tuner(digits, tmp_path: Path, name: str) -> None:
    res = tune_per_epoch(
        digits, None, _cfg(tmp_path, name, sampler=name, trials_per_epoch=3, seed=1)
    )
    study = optuna.load_study(study_name=f"{name}/epoch-001", storage=get_storage(res.storage))
    lrs = [t.params["lr"] for t in study.get_trials(states=(TrialState.COMPLETE,))]
    assert len(lrs) == 3 and all(1e-3 <= lr <= 0.5 for lr in lrs)
    assert study.user_attrs["config"]["sampler"] == name == res.sampler


# ---------------------------------------------------------------------- docs/design.md §3-§4
def test_repeated_proposals_reuse_the_earlier_result(digits, tmp_path: Path) -> None:
    """A sampler that proposes the same point again: no second training, ``reused_from`` set."""
    res = tune_per_epoch(
        digits,
        None,
        _cfg(
            tmp_path,
            "rep",
            sampler=lambda seed: optuna.samplers.RandomSampler(seed=0),
            trials_per_epoch=4,
            epochs=2,
            policy="thesis",  # every trial from the sampler (no queued slots)
        ),
    )
    assert res.trials_trained == 2 and res.trials_reused == 6
    for e in (1, 2):
        study = optuna.load_study(
            study_name=f"rep/epoch-{e:03d}", storage=get_storage(res.storage)
        )
        first, *rest = sorted(
            study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: t.number
        )
        assert "reused_from" not in first.user_attrs
        for t in rest:
            assert (
                t.params == first.params
                and t.value == first.value
                and t.user_attrs["reused_from"] == first.number
            )
            assert t.user_attrs["state"] == first.user_attrs["state"]
        # the adopted state is kept as a copy attached to the study (the trials' states are
        # never attached, and deleted after the adoption): same weights, its own id
        adopted_id = study.user_attrs["adopted"]["state"]
        assert adopted_id in {m.artifact_id for m in get_all_artifact_meta(study)}
        storage = get_storage(res.storage)
        assert not any(get_all_artifact_meta(t, storage=storage) for t in [first, *rest])
    # compute counts each point once
    one = tune_per_epoch(
        digits, None, _cfg(tmp_path, "one", sampler="fixed:%r" % res.schedule[0].lr, epochs=1)
    )
    assert one.trials_trained == 1


def test_diverged_trials_complete_with_a_finite_bad_value(digits, tmp_path: Path) -> None:
    """lr up to 1e4 diverges the MLP: those trials are COMPLETE with the same finite value, just
    below the worst a healthy trial can have (accuracy 0 and 10x the start loss), so they are
    below every healthy trial in whatever order trials finish, without squashing the healthy
    trials' spread."""
    from optuna_gamma.tuner.search.objectives import DIVERGENCE_FACTOR

    space = {"lr": FloatDistribution(1e-2, 1e4, log=True)}
    res = tune_per_epoch(digits, space, _cfg(tmp_path, "d", sampler="grid:8"))
    study = optuna.load_study(study_name="d/epoch-001", storage=get_storage(res.storage))
    trials = sorted(study.get_trials(), key=lambda t: t.number)
    assert all(t.state == TrialState.COMPLETE for t in trials)
    bad = [t for t in trials if t.user_attrs.get("diverged")]
    good = [_value(t) for t in trials if not t.user_attrs.get("diverged")]
    assert bad and good and all(math.isfinite(_value(t)) for t in bad)
    start = study.user_attrs["start"]["metrics"]
    bound = kappa_1(0.0, DIVERGENCE_FACTOR * start["loss"], clip=False)
    for t in bad:
        assert t.value == pytest.approx(bound - 1e-3 * max(1.0, abs(bound)), rel=1e-12)
        assert (
            t.user_attrs["loss"] is None
            or t.user_attrs["loss"] > DIVERGENCE_FACTOR * start["loss"]
        )
        assert "state" not in t.user_attrs
        assert re.fullmatch(
            r"evaluate\(\) returned loss = (nan|inf)|"
            r"train_epoch\(\) returned train_loss = (nan|inf)|"
            r"the validation loss \S+ exceeds 10 times the start's \S+",
            t.user_attrs["diverged_why"],
        ), t.user_attrs["diverged_why"]
    for t in trials:  # every healthy trial is above the bound by construction
        if not t.user_attrs.get("diverged"):
            assert t.user_attrs["loss"] <= DIVERGENCE_FACTOR * start["loss"] and _value(t) >= bound
    assert (max(good) - min(good)) / (
        max(good) - min(_value(t) for t in trials)
    ) > 0.2  # no flattening
    assert study.best_trial.number == res.schedule[
        0
    ].trial_number and not study.best_trial.user_attrs.get("diverged")
    with pytest.raises(AllTrialsDivergedError, match="every trial") as err:
        tune_per_epoch(
            digits,
            {"lr": FloatDistribution(1e5, 1e6, log=True)},
            _cfg(tmp_path, "dd", trials_per_epoch=2),
        )
    assert "diverged (trial 0: " in str(err.value) and "narrow the search space" in str(err.value)
    assert "leave it out" not in str(err.value)  # a loss: the training itself diverged


class _LogsNaN:
    """A sound training that also returns a metric that is NaN (e.g. a gradient norm it does
    not compute)."""

    def __init__(self, digits: Any) -> None:
        self.digits = digits

    def __getattr__(self, name: str) -> Any:
        return getattr(self.digits, name)

    def train_epoch(self, state: Any, hparams: Any, ctx: Any) -> Any:
        out = self.digits.train_epoch(state, hparams, ctx)
        return {**(out if isinstance(out, dict) else {}), "grad_norm": float("nan")}


def test_every_trial_diverged_names_the_metric_that_was_not_finite(digits, tmp_path: Path) -> None:
    """Every trial counts as diverged when a metric is NaN: before, the error only said to
    narrow the search space, which misleads when the NaN is a logged metric of a sound training
    (here 'grad_norm'); now it names the trial, the metric and the other way out."""
    with pytest.raises(AllTrialsDivergedError) as err:
        tune_per_epoch(_LogsNaN(digits), None, _cfg(tmp_path, "nan", trials_per_epoch=2))
    said = str(err.value)
    assert "(trial 0: train_epoch() returned grad_norm = nan)" in said
    assert "if 'grad_norm' can be non-finite while the training is sound, leave it out" in said
    # the metric is recorded apart from the words (the error reads it, not the text)
    study = optuna.load_study(
        study_name="nan/epoch-001", storage=get_storage(str(tmp_path / "nan" / "journal.log"))
    )
    assert {t.user_attrs.get("diverged_metric") for t in study.trials} == {"grad_norm"}


def test_a_diverged_trial_is_never_the_best_whatever_the_order(digits, tmp_path: Path) -> None:
    """Whatever order the trials finish in (a seeded grid order here), a diverged trial is
    below every healthy one, so a healthy one is adopted."""
    space = {"lr": CategoricalDistribution([5e3, 1e-4, 2e-4])}
    res = tune_per_epoch(
        digits, space, _cfg(tmp_path, "first", sampler="grid:3", epochs=2, seed=1)
    )
    for e in (1, 2):
        study = optuna.load_study(
            study_name=f"first/epoch-{e:03d}", storage=get_storage(res.storage)
        )
        assert any(t.user_attrs.get("diverged") for t in study.trials)
        assert not study.best_trial.user_attrs.get("diverged")


def test_objectives_and_minimize(digits, tmp_path: Path) -> None:
    acc = tune_per_epoch(
        digits,
        None,
        _cfg(tmp_path, "acc", sampler="random", trials_per_epoch=3, objective="accuracy"),
    )
    study = optuna.load_study(study_name="acc/epoch-001", storage=get_storage(acc.storage))
    assert study.metric_names == ["accuracy"] and all(
        t.value == t.user_attrs["accuracy"] for t in study.trials
    )
    loss = tune_per_epoch(
        digits,
        None,
        _cfg(tmp_path, "loss", sampler="random", trials_per_epoch=3, objective="loss"),
    )
    study = optuna.load_study(study_name="loss/epoch-001", storage=get_storage(loss.storage))
    assert study.direction.name == "MINIMIZE" and study.best_trial.value == min(
        t.user_attrs["loss"] for t in study.trials
    )
    assert loss.schedule[0].trial_number == study.best_trial.number
    mine = tune_per_epoch(
        digits,
        None,
        _cfg(
            tmp_path,
            "mine",
            sampler="random",
            trials_per_epoch=2,
            objective=lambda m: m["accuracy"] - m["loss"],
        ),
    )
    study = optuna.load_study(study_name="mine/epoch-001", storage=get_storage(mine.storage))
    assert all(t.value == t.user_attrs["accuracy"] - t.user_attrs["loss"] for t in study.trials)
    with pytest.raises(
        ValueError,
        match=r"reads the metric 'mcc', but evaluate\(\) returned \['accuracy', 'loss'\]",
    ):
        tune_per_epoch(
            digits, None, _cfg(tmp_path, "mcc", sampler="random", objective=lambda m: m["mcc"])
        )


def test_one_log_line_per_epoch_and_a_warning_at_a_bound(digits, tmp_path: Path) -> None:
    records: list[logging.LogRecord] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = _Collect()
    logger = logging.getLogger("optuna_gamma")
    logger.addHandler(handler)
    try:
        tune_per_epoch(
            digits,
            {"lr": FloatDistribution(1e-4, 1e-2, log=True)},
            _cfg(tmp_path, "log", sampler="grid:3", epochs=2),
        )
    finally:
        logger.removeHandler(handler)
    lines = [r.getMessage() for r in records]
    epochs = [m for m in lines if m.startswith("epoch ")]
    assert (
        len(epochs) == 2
        and "epoch 1/2: adopted trial" in epochs[0]
        and "lr=" in epochs[0]
        and "kappa=" in epochs[0]
    )
    assert "accuracy=" in epochs[0] and epochs[0].endswith(" s)")
    # the Python API names the search space (the CLI says "widen --lr-high")
    warnings = [m for m in lines if "widen the high end of 'lr' in the search space" in m]
    assert len(warnings) == 1  # lr 1e-2 is best in both epochs: warned once
    assert any(m.startswith("run 'log' done: 6 trials") for m in lines)


def test_progress_bar_counts_right_on_resume_and_extension(digits, tmp_path: Path, capsys) -> None:
    kw = dict(sampler="random", trials_per_epoch=2, progress=True)
    tune_per_epoch(digits, None, _cfg(tmp_path, "p", epochs=1, **kw))
    capsys.readouterr()
    tune_per_epoch(digits, None, _cfg(tmp_path, "p", epochs=3, **kw))
    err = capsys.readouterr().err
    assert "2/6" in err and "6/6" in err and "0/6" not in err
    tune_per_epoch(digits, None, _cfg(tmp_path, "p", epochs=3, **kw))  # nothing left: no bar
    assert "/6" not in capsys.readouterr().err


def test_threads_are_set_for_the_run_and_restored(digits, tmp_path: Path) -> None:
    seen: list[int] = []

    class Spy(ThesisTrainer):
        def train_epoch(self, state, hparams, ctx):
            seen.append(torch.get_num_threads())
            return super().train_epoch(state, hparams, ctx)

    spy = Spy("digits")
    before = torch.get_num_threads()
    tune_per_epoch(
        spy, None, _cfg(tmp_path, "t", sampler="random", trials_per_epoch=2, num_threads=1)
    )
    assert seen == [1, 1] and torch.get_num_threads() == before
    res = tune_per_epoch(
        spy, None, _cfg(tmp_path, "t2", sampler="random", trials_per_epoch=1, num_threads=None)
    )
    assert seen[-1] == before and res.num_threads is None


def test_imports_do_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, optuna_gamma, optuna_gamma.tuner, optuna_gamma.tuner.cli, "
        "optuna_gamma.tuner.reporting.report;"
        "from optuna_gamma.tuner.cli import _build_parser; _build_parser();"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


class _CountsEpochs:
    """Records ``(ctx.epoch, ctx.epochs)`` of every epoch it trains."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int | None]] = []

    def build(self, seed: int, device: Any) -> Any:
        from optuna_gamma.tuner import TrainingState

        model = torch.nn.Linear(2, 2)
        return TrainingState(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))

    def train_epoch(self, state: Any, hparams: Any, ctx: Any) -> None:
        self.seen.append((ctx.epoch, ctx.epochs))

    def evaluate(self, state: Any, split: str) -> dict[str, float]:
        return {"accuracy": 0.5, "loss": 1.0}


def test_every_epoch_knows_the_runs_length(tmp_path: Path) -> None:
    from optuna_gamma.tuner.policies import PopulationPolicy

    space = {"lr": FloatDistribution(1e-3, 1.0, log=True)}
    trainer = _CountsEpochs()
    result = tune_per_epoch(
        trainer, space, TunerConfig(run="n", run_dir=str(tmp_path / "n"), budget=12)
    )
    planned = PopulationPolicy(budget=12).plan.epochs  # what a user can size a schedule by
    assert planned == result.final_epochs == 10
    assert {epochs for _, epochs in trainer.seen} == {planned}
    assert max(epoch for epoch, _ in trainer.seen) == planned
    whole = _CountsEpochs()
    config = TunerConfig(run="w", run_dir=str(tmp_path / "w"), epochs=3, sampler="grid:2")
    tune_whole(whole, space, config)
    assert whole.seen == [(1, 3), (2, 3), (3, 3)] * 2
