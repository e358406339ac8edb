"""The wheel: built from the source tree, installed into a fresh virtual environment with only
the sampler's dependencies, and working there (the sampler, and the CLI's help) without torch."""

from __future__ import annotations

import os
from pathlib import Path
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
