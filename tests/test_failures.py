"""One error path (issue 15, point 3): a trainer's error prints its traceback once and one line
naming the trial and its parameters; Ctrl-C prints one line and exits 130; both resume."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
import subprocess
import sys
import textwrap
from typing import Any

import optuna
import pytest


torch = pytest.importorskip("torch")

TRAINER = textwrap.dedent(
    '''
    import os

    import torch
    from optuna.distributions import FloatDistribution

    from optuna_gamma.tuner import TrainingState

    X = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    Y = (X.sum(dim=1) > 0).long()


    class Flaky:
        """Raises FAIL_WITH in the trial FAIL_AT ("epoch:number"; environment variables)."""

        def search_space(self):
            return {"lr": FloatDistribution(1e-3, 0.5, log=True)}

        def describe(self):
            return {"trainer": "Flaky"}  # the failure switch is not part of the identity

        def build(self, seed, device):
            model = torch.nn.Linear(4, 2).to(device)
            return TrainingState(model=model, optimizer=torch.optim.SGD(model.parameters()))

        def train_epoch(self, state, hparams, ctx):
            if f"{ctx.epoch}:{ctx.trial_number}" == os.environ.get("FAIL_AT"):
                raise {"error": RuntimeError("the data loader broke"),
                       "interrupt": KeyboardInterrupt(),
                       "oom": torch.OutOfMemoryError("CUDA out of memory"),
                       }[os.environ["FAIL_WITH"]]
            x, y = X.to(ctx.device), Y.to(ctx.device)
            loss = torch.nn.functional.cross_entropy(state.model(x), y)
            state.optimizer.zero_grad()
            loss.backward()
            state.optimizer.step()

        def evaluate(self, state, split):
            device = next(state.model.parameters()).device
            x, y = X.to(device), Y.to(device)
            with torch.no_grad():
                out = state.model(x)
            return {"accuracy": float((out.argmax(1) == y).float().mean()),
                    "loss": float(torch.nn.functional.cross_entropy(out, y))}
    '''
)


def _tune(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "flaky.py").write_text(TRAINER)
    environ = dict(os.environ, OMP_NUM_THREADS="1", **env)
    for key in ("OPTUNA_GAMMA_CRASH_AT", *(("FAIL_AT", "FAIL_WITH") if not env else ())):
        environ.pop(key, None)
    args = ["tune", "--trainer", str(tmp_path / "flaky.py") + ":Flaky", "--run", "f"]
    args += ["--run-dir", str(tmp_path / "f"), "--epochs", "2", "--trials-per-epoch", "3"]
    args += ["--sampler", "random", "--no-progress"]
    return subprocess.run(
        [sys.executable, "-m", "optuna_gamma", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environ,
        timeout=600,
    )


def test_trainer_error_traceback_once_then_one_line_and_resume(tmp_path: Path) -> None:
    proc = _tune(tmp_path, FAIL_AT="1:1", FAIL_WITH="error")
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr
    assert err.count("Traceback (most recent call last)") == 1, err
    assert err.count("RuntimeError: the data loader broke") == 1, err
    assert "Trial 1 failed" not in err  # Optuna's copy of the same traceback
    last = err.strip().splitlines()[-1]
    assert last.startswith("trial 1 failed with parameters {'lr': ") and "(RuntimeError)" in last
    assert "re-run the same command: the run resumes from there" in last
    assert not (tmp_path / "f" / "result.json").exists()

    again = _tune(tmp_path)  # fixed: the same command resumes
    assert again.returncode == 0, again.stderr
    result = json.loads((tmp_path / "f" / "result.json").read_text())
    assert result["trials_trained"] == 6 and len(result["schedule"]) == 2


def test_ctrl_c_is_one_line_rc_130_and_resumes(tmp_path: Path) -> None:
    proc = _tune(tmp_path, FAIL_AT="2:1", FAIL_WITH="interrupt")
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr and "KeyboardInterrupt" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "interrupted; re-run the same command to resume"
    )
    assert not (tmp_path / "f" / "result.json").exists()  # nothing half-written
    again = _tune(tmp_path)
    assert again.returncode == 0, again.stderr
    assert "epoch 1/2: adopted trial" in again.stderr and "(adopted earlier)" in again.stderr
    result = json.loads((tmp_path / "f" / "result.json").read_text())
    assert result["trials_trained"] == 6


def _flaky_module(tmp_path: Path, name: str) -> Any:
    """The trainer module imported from a file, as a script would."""
    import importlib.util

    (tmp_path / "flaky.py").write_text(TRAINER)
    spec = importlib.util.spec_from_file_location(name, tmp_path / "flaky.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("verbosity", ["INFO", "ERROR"])
def test_python_api_notes_the_failed_trial(tmp_path: Path, monkeypatch, verbosity: str) -> None:
    """A script sees the trainer's own exception, with the line as a note (Python 3.11+), also
    when it silenced Optuna (then Optuna logs no "Trial N failed" record)."""
    import optuna

    from optuna_gamma.tuner import tune_per_epoch

    module = _flaky_module(tmp_path, "flaky_api")
    monkeypatch.setenv("FAIL_AT", "1:0")
    monkeypatch.setenv("FAIL_WITH", "error")
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(getattr(optuna.logging, verbosity))
    try:
        with pytest.raises(RuntimeError, match="the data loader broke") as err:
            tune_per_epoch(
                module.Flaky(), None, run="api", run_dir=str(tmp_path / "api"), progress=False
            )
    finally:
        optuna.logging.set_verbosity(before)
    if sys.version_info >= (3, 11):
        (note,) = err.value.__notes__
        assert note.startswith("trial 0 failed with parameters {'lr': ")
        assert note.endswith("re-run the same call: the run resumes from there")


def test_an_out_of_memory_error_says_how_to_fail_the_trial_instead(
    tmp_path: Path, monkeypatch
) -> None:
    """Re-running retries the same setting, which runs out of memory again: the line says how
    a trainer makes such a setting a failed trial rather than a failed run."""
    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner.execution.failures import OUT_OF_MEMORY

    module = _flaky_module(tmp_path, "flaky_oom")
    monkeypatch.setenv("FAIL_AT", "1:1")
    monkeypatch.setenv("FAIL_WITH", "oom")
    with pytest.raises(torch.OutOfMemoryError) as err:
        tune_per_epoch(
            module.Flaky(), None, run="oom", run_dir=str(tmp_path / "oom"), progress=False
        )
    if sys.version_info >= (3, 11):
        (note,) = err.value.__notes__
        assert note.startswith("trial 1 failed with parameters {'lr': ")
        assert "(OutOfMemoryError)" in note and note.endswith(OUT_OF_MEMORY)
        assert "return {'diverged': True}" in note


def test_the_built_in_trainer_fails_a_batch_size_that_runs_out_of_memory(
    tmp_path: Path, monkeypatch
) -> None:
    """A batch size the device cannot hold is a diverged trial of the built-in trainer: never
    adopted, the run goes on (a CUDA out-of-memory error, raised here for batches of 128)."""
    from optuna.distributions import CategoricalDistribution
    from optuna.distributions import FloatDistribution

    from optuna_gamma.tuner import ThesisTrainer
    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner.builtin import training

    real = training.train_one_epoch

    def small_memory(*args, **kwargs):
        if kwargs["batch_size"] >= 128:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "train_one_epoch", small_memory)
    space = {
        "lr": FloatDistribution(1e-3, 0.5, log=True),
        "batch_size": CategoricalDistribution([16, 128]),
    }
    messages: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = _Collect()
    logging.getLogger("optuna_gamma").addHandler(handler)
    try:
        res = tune_per_epoch(
            ThesisTrainer("digits"),
            space,
            run="mem",
            run_dir=str(tmp_path / "mem"),
            policy="thesis",
            trials_per_epoch=4,
            epochs=3,
            sampler="random",
            progress=False,
        )
    finally:
        logging.getLogger("optuna_gamma").removeHandler(handler)
    assert len(res.schedule) == 3 and res.test["accuracy"] > 0.3
    assert all(e.params["batch_size"] == 16 for e in res.schedule)
    from optuna_gamma.tuner import get_storage

    storage = get_storage(str(tmp_path / "mem" / "journal.log"))
    studies = [
        optuna.load_study(study_name=n, storage=storage).trials
        for n in sorted(optuna.get_all_study_names(storage))
    ]
    big = [t for trials in studies for t in trials if t.params["batch_size"] == 128]
    assert big and all(
        t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs["diverged"] for t in big
    )
    assert "state" not in big[0].user_attrs  # no state of a failed setting is kept
    for trials in studies:  # below every trial that trained, in its epoch's study
        values: dict[int, list[float]] = {t.params["batch_size"]: [] for t in trials}
        for t in trials:
            values[t.params["batch_size"]].append(float(t.value or 0.0))
        assert max(values.get(128, [-1e9])) < min(values[16])
    assert any("out of memory at batch_size=128" in m for m in messages)
