"""The wheel: built from the source tree, installed into a fresh virtual environment with only
the sampler's dependencies, and working there (the sampler, and the CLI's help) without torch;
then on the oldest Optuna that ``pyproject.toml`` accepts."""

from __future__ import annotations

import os
from pathlib import Path
import re
import subprocess
import sys
import zipfile

import pytest


REPO = Path(__file__).resolve().parents[1]

SMOKE = r"""
import importlib.util, math, sys
import optuna
from optuna_gamma import GammaBOSampler
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(direction="maximize", sampler=GammaBOSampler(seed=0))
def f(t):
    x = t.suggest_float("x", -1.0, 2.0)
    return -math.sin(3 * x) - x**2
study.optimize(f, n_trials=8)
assert len(study.trials) == 8 and study.best_value > 0.4, study.best_value
assert importlib.util.find_spec("torch") is None and "torch" not in sys.modules
import optuna_gamma.tuner  # the tuner imports without torch; it needs it only to train
print("ok", round(study.best_value, 3))
"""

# On the oldest Optuna that pyproject.toml accepts: the sampler (constraints, several
# objectives) and the tuner's torch-free parts that touch Optuna's API the most (its journal
# storage under the tuner's own lock, a sampler it builds by name). (Optuna 4.0's GPSampler
# needs torch to be built at all, so the tuner's "gp" is not tried here.)
OLDEST = r"""
import optuna
from optuna.distributions import FloatDistribution
from optuna_gamma import GammaBOSampler
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(
    sampler=GammaBOSampler(seed=0, constraints_func=lambda t: (t.params["x"] - 0.5,))
)
study.optimize(lambda t: (t.suggest_float("x", 0.0, 1.0) - 0.8) ** 2, n_trials=10)
assert len(study.trials) == 10
study = optuna.create_study(directions=["minimize", "minimize"], sampler=GammaBOSampler(seed=0))
study.optimize(lambda t: (t.suggest_float("x", 0, 1), (1 - t.params["x"]) ** 2), n_trials=8)
assert len(study.best_trials) >= 1
from optuna_gamma.tuner.persistence.storage import open_storage
from optuna_gamma.tuner.search.samplers import SamplerPlan
from optuna_gamma.tuner.search.space import ParamSpace
storage, _ = open_storage("journal.log")
space = ParamSpace.of({"lr": FloatDistribution(1e-4, 1.0, log=True)})
plan = SamplerPlan("gamma", space, 4, 2, False)
study = optuna.create_study(storage=storage, study_name="s", sampler=plan.factory(0))
study.optimize(lambda t: (t.suggest_float("lr", 1e-4, 1.0, log=True) - 0.1) ** 2, n_trials=4)
again = optuna.load_study(study_name="s", storage=open_storage("journal.log")[0])
assert len(again.trials) == 4
print("ok", optuna.__version__)
"""


def _oldest_optuna() -> str:
    text = (REPO / "pyproject.toml").read_text()
    (floor,) = re.findall(r'"optuna>=([0-9.]+)"', text)
    return floor


@pytest.mark.slow
def test_wheel_installs_and_runs_with_only_the_samplers_dependencies(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(dist)],
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    (wheel,) = dist.glob("optuna_gamma-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "optuna_gamma/py.typed" in names and "optuna_gamma/tuner/builtin/trainer.py" in names
    assert any(n.endswith("LICENSE") for n in names)
    assert not any(n.startswith(("tests/", "benchmarks/", "optunahub/", "tools/")) for n in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    # Without PYTHONPATH: a source tree on it (with the optuna_gamma.egg-info that `pip wheel`
    # leaves there) makes the venv's pip take the wheel as installed already and skip it.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=1800,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = subprocess.run(
        [str(py), "-c", SMOKE], capture_output=True, text=True, timeout=600, env=env
    )
    assert proc.returncode == 0 and proc.stdout.startswith("ok"), proc.stderr[-3000:]
    proc = subprocess.run(
        [str(venv / "bin" / "optuna-gamma"), "tune", "--help"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0 and "--trainer" in proc.stdout, proc.stderr[-2000:]
    # a command that trains, without the torch extra: one line that says what to install
    proc = subprocess.run(
        [str(venv / "bin" / "optuna-gamma"), "tune", "--dataset", "digits", "--budget", "6"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr[-2000:]
    assert "needs torch and scikit-learn" in proc.stderr and "optuna-gamma[torch]" in proc.stderr
    assert not (tmp_path / "runs").exists()

    # the oldest Optuna the package accepts
    floor = _oldest_optuna()
    proc = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", f"optuna=={floor}"],
        capture_output=True,
        text=True,
        timeout=1800,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    work = tmp_path / "oldest"
    work.mkdir()
    proc = subprocess.run(
        [str(py), "-c", OLDEST], capture_output=True, text=True, timeout=600, env=env, cwd=work
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ok, version = proc.stdout.split()
    assert ok == "ok" and version.split(".")[:2] == floor.split(".")[:2], proc.stdout
