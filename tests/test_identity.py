"""Safe run identity (issue 15, point 2): a call whose identity differs from the stored run's is
refused in one line before any training; ``overwrite=True`` starts again; the default run name
is derived from the identity, so unrelated scripts never share a run."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import FloatDistribution
import pytest


torch = pytest.importorskip("torch")

from optuna_gamma.tuner import get_storage  # noqa: E402
from optuna_gamma.tuner import TrainingState  # noqa: E402
from optuna_gamma.tuner import tune_per_epoch  # noqa: E402
from optuna_gamma.tuner import TunerConfig  # noqa: E402
from optuna_gamma.tuner.persistence.identity import check_same_run  # noqa: E402
from optuna_gamma.tuner.persistence.identity import default_run_name  # noqa: E402
from optuna_gamma.tuner.persistence.identity import RunMismatchError  # noqa: E402


SPACE = {"lr": FloatDistribution(1e-3, 0.5, log=True)}
_X = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))


class _Base:
    hidden = 3

    def build(self, seed: int, device: Any) -> TrainingState:
        model = torch.nn.Sequential(
            torch.nn.Linear(4, self.hidden), torch.nn.ReLU(), torch.nn.Linear(self.hidden, 2)
        ).to(device)
        return TrainingState(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))

    def target(self) -> Any:
        return (_X.sum(dim=1) > 0).long()

    def train_epoch(self, state: TrainingState, hparams: Any, ctx: Any) -> None:
        loss = torch.nn.functional.cross_entropy(
            state.model(_X.to(ctx.device)), self.target().to(ctx.device)
        )
        state.optimizer.zero_grad()
        loss.backward()
        state.optimizer.step()

    def evaluate(self, state: TrainingState, split: str) -> dict[str, float]:
        device = next(state.model.parameters()).device  # the run's device (CUDA on a GPU)
        with torch.no_grad():
            out = state.model(_X.to(device))
        y = self.target().to(device)
        return {
            "accuracy": float((out.argmax(1) == y).float().mean()),
            "loss": float(torch.nn.functional.cross_entropy(out, y)),
        }


class SignTrainer(_Base):
    """Learns the sign of the sum."""


class FirstTrainer(_Base):
    """Learns the sign of the first feature (another training target)."""

    def target(self) -> Any:
        return (_X[:, 0] > 0).long()


class Described(_Base):
    """States its identity with describe(); the model size is not part of it."""

    def __init__(self, hidden: int) -> None:
        self.hidden = hidden

    def describe(self) -> dict[str, Any]:
        return {"trainer": "Described"}


def _cfg(tmp_path: Path, **kw: Any) -> TunerConfig:
    base: dict[str, Any] = dict(
        storage=f"sqlite:///{tmp_path / 'runs.db'}",
        artifacts=str(tmp_path / "artifacts"),
        run_dir=str(tmp_path / "dir"),
        sampler="random",
        trials_per_epoch=2,
        epochs=2,
        progress=False,
    )
    base.update(kw)
    return TunerConfig(**base)


def _n_trials(tmp_path: Path) -> int:
    storage = get_storage(f"sqlite:///{tmp_path / 'runs.db'}")
    return sum(
        len(optuna.load_study(study_name=s.study_name, storage=storage).get_trials())
        for s in optuna.get_all_study_summaries(storage)
    )


def test_changed_training_target_is_refused_before_training(tmp_path: Path) -> None:
    tune_per_epoch(SignTrainer(), SPACE, _cfg(tmp_path, run="r"))
    before = _n_trials(tmp_path)
    with pytest.raises(RunMismatchError) as err:
        tune_per_epoch(FirstTrainer(), SPACE, _cfg(tmp_path, run="r"))
    msg = str(err.value)
    assert "\n" not in msg and "trainer" in msg and "trainer_code" in msg
    assert "another run name" in msg and "overwrite=True" in msg and "--overwrite" in msg
    assert _n_trials(tmp_path) == before  # nothing trained, nothing written

    # overwrite=True deletes the old run and trains the new one from the start
    res = tune_per_epoch(FirstTrainer(), SPACE, _cfg(tmp_path, run="r", overwrite=True))
    assert res.new_trials == 4 and _n_trials(tmp_path) == 4
    # the same call again resumes it (overwrite off): nothing left to train
    again = tune_per_epoch(FirstTrainer(), SPACE, _cfg(tmp_path, run="r"))
    assert again.new_trials == 0 and again.schedule == res.schedule


def test_changed_model_seed_or_space_is_refused_in_one_line(tmp_path: Path) -> None:
    tune_per_epoch(Described(3), SPACE, _cfg(tmp_path, run="m", epochs=1))
    with pytest.raises(RunMismatchError, match=r"\(model: "):
        tune_per_epoch(Described(5), SPACE, _cfg(tmp_path, run="m", epochs=1))
    with pytest.raises(RunMismatchError, match=r"\(seed: 0 -> 1\)"):
        tune_per_epoch(Described(3), SPACE, _cfg(tmp_path, run="m", epochs=1, seed=1))
    narrow = {"lr": FloatDistribution(1e-3, 0.1, log=True)}
    with pytest.raises(
        RunMismatchError, match=r"\(space\.tuned\.lr\.attributes\.high: 0\.5 -> 0\.1\);"
    ):
        tune_per_epoch(Described(3), narrow, _cfg(tmp_path, run="m", epochs=1))
    # a longer run of the same experiment is not another identity: it resumes and extends
    res = tune_per_epoch(Described(3), SPACE, _cfg(tmp_path, run="m", epochs=2))
    assert res.new_trials == 2


def test_default_run_names_keep_unrelated_scripts_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # run_dir defaults to runs/<run>
    a = tune_per_epoch(SignTrainer(), SPACE, _cfg(tmp_path, run_dir=None, epochs=1))
    b = tune_per_epoch(FirstTrainer(), SPACE, _cfg(tmp_path, run_dir=None, epochs=1))
    assert a.run != b.run and a.run.startswith("run-") and len(a.run) == len("run-") + 8
    assert b.new_trials == 2  # not "adopted earlier": its own run
    again = tune_per_epoch(SignTrainer(), SPACE, _cfg(tmp_path, run_dir=None, epochs=1))
    assert again.run == a.run and again.new_trials == 0
    other_seed = default_run_name(SignTrainer(), {"lr": 1}, "kappa1", "random", 1, "per-epoch")
    assert other_seed != default_run_name(
        SignTrainer(), {"lr": 1}, "kappa1", "random", 0, "per-epoch"
    )


def test_check_same_run_compares_only_recorded_keys() -> None:
    check_same_run("r/epoch-001", {"seed": 0}, {"seed": 0, "model": "x"})  # older record
    with pytest.raises(RunMismatchError, match=r"objective: \"kappa1\" -> \"loss\""):
        check_same_run("r/epoch-001", {"objective": "kappa1"}, {"objective": "loss"})
    # a worker's paths are its own machine's
    check_same_run("r/epoch-001", {"run_dir": "/a"}, {"run_dir": "/b"}, own_paths=True)
    # a store that holds the run's marker is the run's, whatever its path; the run directory
    # (the lock) is still compared
    stores = {"artifacts": "/a/artifacts"}, {"artifacts": "/mnt/artifacts"}
    check_same_run("r/epoch-001", *stores, store_reached=True)
    with pytest.raises(RunMismatchError, match="another artifact store .* the run's marker is"):
        check_same_run("r/epoch-001", *stores)
    with pytest.raises(RunMismatchError, match="another run directory"):
        check_same_run(
            "r/epoch-001",
            {**stores[0], "run_dir": "/a"},
            {**stores[1], "run_dir": "/b"},
            store_reached=True,
        )


def test_a_fixed_tuple_in_the_space_resumes_and_a_range_written_as_a_pair_is_explained(
    tmp_path: Path,
) -> None:
    space = {**SPACE, "momentum": 0.5, "extra": (0.9, 0.99)}  # a fixed pair, e.g. Adam's betas
    first = tune_per_epoch(SignTrainer(), space, _cfg(tmp_path, run="pair"))
    # before: the same call again was refused ("space.fixed.extra: [0.9, 0.99] -> [0.9, 0.99]":
    # the stored record's list against the call's tuple)
    again = tune_per_epoch(SignTrainer(), space, _cfg(tmp_path, run="pair"))
    assert again.new_trials == 0 and again.test == first.test
    changed = r"space.fixed.extra: \[0.9, 0.99\] -> \[0.9, 0.9\]"
    with pytest.raises(RunMismatchError, match=changed):
        tune_per_epoch(SignTrainer(), {**space, "extra": (0.9, 0.9)}, _cfg(tmp_path, run="pair"))
    # a pair given where a range was meant: one fixed value, said with the way to a range
    said = r"'lr' = \(0.0001, 0.1\) is one fixed value here; a range to tune is Float"
    with pytest.raises(ValueError, match=said):
        tune_per_epoch(SignTrainer(), {"lr": (1e-4, 0.1)}, _cfg(tmp_path, run="range"))
    said = r"needs a number; a fixed value in the search space is used as it is; a range to"
    with pytest.raises(ValueError, match=said):
        tune_per_epoch(SignTrainer(), {**SPACE, "momentum": (1e-4, 0.1)}, _cfg(tmp_path, run="m"))


def test_overwrite_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match="overwrite must be True or False, got 'yes'"):
        TunerConfig(overwrite="yes")  # type: ignore[arg-type]


def test_cli_refuses_another_identity_and_overwrite_starts_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from optuna_gamma.tuner.cli import main

    common = ["tune", "--dataset", "digits", "--epochs", "1", "--trials-per-epoch", "2"]
    common += ["--sampler", "random", "--run", "c", "--run-dir", str(tmp_path / "c")]
    common += ["--no-progress"]
    assert main(common) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main([*common, "--seed", "3"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    (line,) = [x for x in err.splitlines() if "other settings" in x]
    assert "seed: 0 -> 3" in line and "--overwrite" in line
    assert main([*common, "--seed", "3", "--overwrite"]) == 0
    assert "overwrite: deleted run 'c' (1 studies" in caplog.text


def _budget_cfg(tmp_path: Path, budget: int, run: str = "b", folder: str = "db") -> TunerConfig:
    return _cfg(
        tmp_path / folder,
        run=run,
        budget=budget,
        epochs=None,
        trials_per_epoch=None,
        sampler="gamma",
    )


def test_a_budget_that_plans_trained_epochs_again_is_refused(tmp_path: Path) -> None:
    """A budget that changes the trials of epochs the run has trained is refused in one line
    before any training: before, budget=20 after 24 returned the old run's epoch-15 state as
    the new budget's result (18 trials spent of 20, planned by neither)."""
    from optuna_gamma.tuner.policies import PopulationPolicy

    old, new = PopulationPolicy(budget=24).plan.trials, PopulationPolicy(budget=20).plan.trials
    first = next(e for e, (a, b) in enumerate(zip(old, new), start=1) if a != b)
    assert first <= len(new)  # the premise: the plans part inside the shorter one
    tune_per_epoch(SignTrainer(), SPACE, _budget_cfg(tmp_path, 24))
    before = _n_trials(tmp_path / "db")
    with pytest.raises(RunMismatchError) as err:
        tune_per_epoch(SignTrainer(), SPACE, _budget_cfg(tmp_path, 20))
    msg = str(err.value)
    assert "\n" not in msg and "budget=24" in msg and "budget=20" in msg
    assert f"epoch {first} with {new[first - 1]} trials where the run has {old[first - 1]}" in msg
    assert "--budget 24" in msg and "overwrite=True" in msg
    assert _n_trials(tmp_path / "db") == before
    # the stored budget resumes (nothing left to train)
    assert tune_per_epoch(SignTrainer(), SPACE, _budget_cfg(tmp_path, 24)).new_trials == 0


def test_a_larger_budget_that_keeps_the_trained_epochs_extends_the_run(tmp_path: Path) -> None:
    """budget=8 then 10 (the same plan for the 7 trained epochs) extends the run to what a
    fresh budget=10 run gives."""
    from optuna_gamma.tuner.policies import PopulationPolicy

    short, long = PopulationPolicy(budget=8).plan.trials, PopulationPolicy(budget=10).plan.trials
    assert long[: len(short)] == short and len(long) > len(short)
    tune_per_epoch(SignTrainer(), SPACE, _budget_cfg(tmp_path, 8))
    extended = tune_per_epoch(SignTrainer(), SPACE, _budget_cfg(tmp_path, 10))
    assert extended.new_trials == sum(long) - sum(short)
    fresh = tune_per_epoch(SignTrainer(), SPACE, _budget_cfg(tmp_path, 10, folder="fresh"))
    assert extended.compute_epochs == fresh.compute_epochs == 10
    assert extended.schedule == fresh.schedule and extended.test == fresh.test


class _Scheduled(_Base):
    """A cosine over the run's epochs, made in a build that takes them."""

    def build(self, seed: int, device: Any, epochs: int = 5) -> TrainingState:
        state = super().build(seed, device)
        state.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(state.optimizer, epochs)
        return state


def test_a_budget_of_another_length_for_a_build_sized_by_it_is_named(tmp_path: Path) -> None:
    # the state build makes depends on the run's epochs: the refusal says why its model differs
    # (before: "model: 'ab..' -> 'cd..'" alone)
    tune_per_epoch(_Scheduled(), SPACE, _budget_cfg(tmp_path, 8))
    with pytest.raises(RunMismatchError) as info:
        tune_per_epoch(_Scheduled(), SPACE, _budget_cfg(tmp_path, 10))
    message = str(info.value)
    assert "model:" in message and "a build(seed, device, epochs)" in message
    assert "the run's length changed from 7 to 8 epochs" in message


def test_a_moved_run_directory_resumes_where_it_is(tmp_path: Path) -> None:
    """A run whose storage is inside its directory (the default journal) extends from a copy
    of that directory elsewhere exactly as it would have where it was; a run whose storage is
    outside its directory is still one run directory's (another driver is refused)."""
    import shutil

    def cfg(run_dir: Path, budget: int, **kw: Any) -> TunerConfig:
        kw = {"storage": None, "artifacts": None, **kw}  # the defaults: inside run_dir
        return _cfg(
            tmp_path,
            run="m",
            run_dir=str(run_dir),
            budget=budget,
            epochs=None,
            trials_per_epoch=None,
            sampler="gamma",
            **kw,
        )

    tune_per_epoch(SignTrainer(), SPACE, cfg(tmp_path / "here", 8))
    shutil.copytree(tmp_path / "here", tmp_path / "laptop" / "m")
    moved = tune_per_epoch(SignTrainer(), SPACE, cfg(tmp_path / "laptop" / "m", 10))
    stayed = tune_per_epoch(SignTrainer(), SPACE, cfg(tmp_path / "here", 10))
    assert moved.new_trials == stayed.new_trials > 0
    assert moved.schedule == stayed.schedule and moved.test == stayed.test
    assert moved.run_dir == str(tmp_path / "laptop" / "m")
    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    tune_per_epoch(SignTrainer(), SPACE, cfg(tmp_path / "a", 8, storage=shared))
    with pytest.raises(
        RunMismatchError, match="driven from another run directory .* pass run_dir="
    ):
        tune_per_epoch(SignTrainer(), SPACE, cfg(tmp_path / "b", 10, storage=shared))


def test_check_same_plan_compares_the_epochs_up_to_the_study() -> None:
    from optuna_gamma.tuner.persistence.identity import check_same_plan

    old = {"run": "r", "budget": 24, "plan": [2, 2, 1, 1]}
    # the epochs up to the study's agree: a longer or shorter plan beyond them is fine
    check_same_plan("r/epoch-002", old, {"budget": 30, "plan": [2, 2, 2], "epoch": 2})
    with pytest.raises(RunMismatchError, match=r"plans epoch 3 with 2 trials where the run has 1"):
        check_same_plan("r/epoch-003", old, {"budget": 30, "plan": [2, 2, 2], "epoch": 3})
    # epochs instead of a budget; a shorter new plan than the study's epoch
    with pytest.raises(
        RunMismatchError,
        match=r"epochs=4, this call with epochs=2, which plans "
        r"epoch 3 with no trials",
    ):
        check_same_plan("r/epoch-003", {"plan": [1, 1, 1, 1]}, {"plan": [1, 1], "epoch": 3})
    # older records, whole mode: nothing to compare
    check_same_plan("r/epoch-001", {"run": "r"}, {"plan": [3], "epoch": 1})
    check_same_plan("r/whole", old, {"plan": [5]})


def test_a_finished_run_called_with_other_workers_is_checked_too(tmp_path: Path) -> None:
    """The coordinator (``workers=N`` or ``coordinate=True``) checks the stored epochs as the
    serial driver does: before, a finished run called with 3 trials at a time instead of 2 was
    not checked, and its result.json was rewritten with the new plan over the old trials
    (policy width 3, 4 epochs of the 6 trained). The message names the way to resume with
    other workers."""
    cfg = _budget_cfg(tmp_path, 12)
    first = tune_per_epoch(SignTrainer(), SPACE, dataclasses.replace(cfg, trials_per_epoch=2))
    written = (tmp_path / "db" / "dir" / "result.json").read_bytes()
    wider = dataclasses.replace(cfg, trials_per_epoch=3, coordinate=True)
    with pytest.raises(RunMismatchError, match=r"policy\.width: 2 -> 3") as err:
        tune_per_epoch(SignTrainer(), SPACE, wider)
    assert "use trials_per_epoch=2 (--trials-per-epoch 2), the run's, with any number" in str(
        err.value
    )
    assert (tmp_path / "db" / "dir" / "result.json").read_bytes() == written
    same = tune_per_epoch(
        SignTrainer(), SPACE, dataclasses.replace(cfg, trials_per_epoch=2, coordinate=True)
    )
    assert same.new_trials == 0 and same.test == first.test


def _accuracy(metrics: Any) -> float:
    return float(metrics["accuracy"])


def test_a_callable_objective_is_known_by_its_code_not_its_name(tmp_path: Path) -> None:
    """Two lambdas are both '<lambda>': a run tuned for one was resumed by a call with the
    other (and two scripts without run names shared a run), whose result was the first one's.
    Now the code is part of the identity; the same function resumes."""
    from optuna_gamma.tuner.persistence.identity import objective_code
    from optuna_gamma.tuner.search.objectives import Objective

    first, second = (lambda m: m["accuracy"]), (lambda m: -m["loss"])  # one line, one name
    assert first.__name__ == second.__name__
    assert objective_code(first) != objective_code(second)
    assert objective_code(first) == objective_code(first)
    assert objective_code(Objective.kappa1()) is None  # the library's: its name says it
    assert objective_code(Objective(name="acc", fn=_accuracy)) == objective_code(_accuracy)

    tune_per_epoch(SignTrainer(), SPACE, _cfg(tmp_path, run="f", objective=first, epochs=1))
    with pytest.raises(RunMismatchError, match=r"\(objective_code: "):
        tune_per_epoch(SignTrainer(), SPACE, _cfg(tmp_path, run="f", objective=second, epochs=1))
    again = tune_per_epoch(
        SignTrainer(), SPACE, _cfg(tmp_path, run="f", objective=first, epochs=1)
    )
    assert again.new_trials == 0
    # without run names the two are two runs
    a = tune_per_epoch(
        SignTrainer(),
        SPACE,
        _cfg(tmp_path, run=None, run_dir=str(tmp_path / "a"), objective=first),
    )
    b = tune_per_epoch(
        SignTrainer(),
        SPACE,
        _cfg(tmp_path, run=None, run_dir=str(tmp_path / "b"), objective=second),
    )
    assert a.run != b.run and b.new_trials == 4


def test_a_sampler_factory_is_known_by_its_code_not_its_name(tmp_path: Path) -> None:
    """``sampler=lambda seed: ...`` factories are all '<lambda>': a run made with TPE was
    resumed by a call with random search. Now the factory's code is part of the identity; a
    sampler given by name has none (its name says it)."""
    from optuna_gamma.tuner.persistence.identity import callable_code

    tpe, rnd = (
        (lambda s: optuna.samplers.TPESampler(seed=s)),
        (lambda s: optuna.samplers.RandomSampler(seed=s)),
    )
    assert callable_code(tpe) != callable_code(rnd)
    tune_per_epoch(SignTrainer(), SPACE, _cfg(tmp_path, run="s", sampler=tpe, epochs=1))
    with pytest.raises(RunMismatchError, match=r"sampler_code: "):
        tune_per_epoch(SignTrainer(), SPACE, _cfg(tmp_path, run="s", sampler=rnd, epochs=1))
    again = tune_per_epoch(SignTrainer(), SPACE, _cfg(tmp_path, run="s", sampler=tpe, epochs=1))
    assert again.new_trials == 0


def _weighted(metrics: dict[str, Any], weight: Any) -> float:
    return float(metrics["accuracy"]) - weight * float(metrics["loss"])


def test_a_partial_is_known_by_its_function_and_bound_arguments(tmp_path: Path) -> None:
    """``functools.partial(score, weight=0.3)`` and ``weight=0.5`` were known by their name only:
    a run tuned for one was resumed by a call with the other. Now the bound arguments count
    (without memory addresses, which differ from process to process)."""
    from optuna_gamma.tuner.persistence.identity import callable_code

    light, heavy = (
        functools.partial(_weighted, weight=0.3),
        functools.partial(_weighted, weight=0.5),
    )
    assert callable_code(light) == callable_code(functools.partial(_weighted, weight=0.3))
    assert callable_code(light) != callable_code(heavy)
    assert callable_code(light) != callable_code(_weighted)
    # a bound object with a default repr: the same whatever its address
    one, two = object(), object()
    assert callable_code(functools.partial(_weighted, weight=one)) == callable_code(
        functools.partial(_weighted, weight=two)
    )
    tune_per_epoch(SignTrainer(), SPACE, _cfg(tmp_path, run="p", objective=light, epochs=1))
    with pytest.raises(RunMismatchError, match=r"\(objective_code: "):
        tune_per_epoch(SignTrainer(), SPACE, _cfg(tmp_path, run="p", objective=heavy, epochs=1))
    again = tune_per_epoch(
        SignTrainer(),
        SPACE,
        _cfg(tmp_path, run="p", objective=functools.partial(_weighted, weight=0.3), epochs=1),
    )
    assert again.new_trials == 0


def test_another_number_of_start_up_trials_is_refused(tmp_path: Path) -> None:
    """``n_startup_trials`` decides the sampler's proposals like the sampler itself: a run
    resumed with another one was a mix of both (it was recorded, not compared)."""
    cfg = _cfg(tmp_path, run="n", sampler="gamma", epochs=1, trials_per_epoch=3)
    tune_per_epoch(SignTrainer(), SPACE, cfg)
    with pytest.raises(RunMismatchError, match=r"n_startup_trials: 2 -> 1"):
        tune_per_epoch(SignTrainer(), SPACE, dataclasses.replace(cfg, n_startup_trials=1))


def test_a_resume_with_other_local_settings_says_which_in_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Threads, device and whether the samplers take the training as deterministic are not part
    of a run's identity (a resume goes on), but a resume that changes them is told which, in
    one line, once (not once per study); the same settings again say nothing."""
    import logging

    first = tune_per_epoch(SignTrainer(), SPACE, _cfg(tmp_path, run="r", deterministic=True))
    storage = get_storage(_cfg(tmp_path).storage)
    records = [
        optuna.load_study(study_name=f"r/epoch-00{e}", storage=storage).user_attrs["config"]
        for e in (1, 2)
    ]
    assert [r["deterministic"] for r in records] == [True, True]
    with caplog.at_level(logging.WARNING, logger="optuna_gamma"):
        again = tune_per_epoch(SignTrainer(), SPACE, _cfg(tmp_path, run="r", deterministic=True))
    assert again.new_trials == 0 and not [r for r in caplog.records if "was run with" in r.message]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="optuna_gamma"):
        other = tune_per_epoch(
            SignTrainer(), SPACE, _cfg(tmp_path, run="r", deterministic=False, num_threads=2)
        )
    said = [r.message for r in caplog.records if "was run with" in r.message]
    assert other.new_trials == 0 and other.schedule == first.schedule
    assert len(said) == 1 and "\n" not in said[0]
    assert said[0] == (
        "study 'r/epoch-001' was run with num_threads=1, deterministic=True, this call uses "
        "num_threads=2, deterministic=False: results may differ from an uninterrupted run"
    )
