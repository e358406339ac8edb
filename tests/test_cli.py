"""The ``optuna-gamma`` command: help, one-line errors with exit status 2, a tiny real run."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys

import pytest


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("OPTUNA_GAMMA_CRASH_AT", None)
    return subprocess.run([sys.executable, "-m", "optuna_gamma", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def test_help_exits_zero() -> None:
    for args in ((["--help"]), (["tune", "--help"]), (["report", "--help"])):
        proc = _cli(*args)
        assert proc.returncode == 0, proc.stderr
        assert "usage:" in proc.stdout
    assert "--trials-per-epoch" in _cli("tune", "--help").stdout


def test_console_script_entry_point_is_main() -> None:
    from importlib.metadata import entry_points

    from optuna_gamma.cli import main

    eps = [e for e in entry_points(group="console_scripts") if e.name == "optuna-gamma"]
    if eps:  # installed in editable mode by the README's set-up command
        assert eps[0].load() is main


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["tune", "--dataset", "imagenet"], "invalid choice: 'imagenet'"),
        (["tune", "--dataset", "digits", "--sampler", "bogus"], "unknown sampler 'bogus'"),
        (["tune", "--dataset", "digits", "--sampler", "grid:zero"], "grid:N"),
        (["tune", "--dataset", "digits", "--lr-low", "0.5", "--lr-high", "0.1"], "low < high"),
        (["tune", "--dataset", "digits", "--lr-low", "0", "--lr-high", "0.5"], "> 0 on a log scale"),
        (["tune", "--dataset", "digits", "--lr-low", "-1", "--lr-high", "0.5"], "> 0 on a log scale"),
        (["tune", "--dataset", "digits", "--epochs", "0"], "--epochs must be >= 1"),
        (["tune", "--dataset", "digits", "--tune-momentum", "0.1"], "LOW,HIGH"),
        (["tune", "--dataset", "mnist"], "--data-root is required"),
        (["tune", "--dataset", "mnist", "--data-root", "NOWHERE"], "not a directory"),
        (["tune", "--dataset", "cifar10", "--data-root", "."], "not found"),  # missing data files
        (["tune"], "required"),
        (["frobnicate"], "invalid choice"),
        (["report", "--storage", "sqlite:///nowhere.db", "-o", "r.html"], "no SQLite file"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    from optuna_gamma.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "error:" in lines[0] and needle in lines[0] and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_bad_argument_in_a_subprocess_has_no_traceback(tmp_path: Path) -> None:
    proc = _cli("tune", "--dataset", "digits", "--sampler", "bogus", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "unknown sampler 'bogus'" in proc.stderr


@pytest.mark.slow
def test_tiny_real_run_writes_result_and_report(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'runs.db'}"
    proc = _cli("tune", "--dataset", "digits", "--epochs", "1", "--trials-per-epoch", "2", "--sampler", "gamma",
                "--storage", storage, "--run", "tiny", "--run-dir", str(tmp_path / "tiny"), "--report",
                str(tmp_path / "report.html"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "tiny" / "result.json").read_text())
    assert result["sampler"] == "gamma" and result["trials_per_epoch"] == 2 and len(result["schedule"]) == 1
    assert f"optuna-dashboard {storage}" in proc.stdout
    # summary table: the schedule's learning rate is printed
    assert f"{result['schedule'][0]['lr']:.4g}" in proc.stdout and "test: accuracy" in proc.stdout
    page = (tmp_path / "report.html").read_text()
    assert "Run tiny" in page and "learning-rate schedule" in page and "misclassifications" in page
    assert '<script src="http' not in page and "<script" in page  # plotly.js inline, offline
    # A second run into the same storage, then the report subcommand compares the samplers.
    proc = _cli("tune", "--dataset", "digits", "--epochs", "1", "--sampler", "grid:2", "--storage", storage,
                "--run", "tiny-grid", "--run-dir", str(tmp_path / "tiny-grid"), "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    grid_out = proc.stdout
    proc = _cli("report", "--storage", storage, "-o", str(tmp_path / "all.html"))
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "all.html").read_text()
    assert "Sampler comparison" in page and "tiny-grid" in page and "grid:2" in page
    # Re-running the finished command resumes: nothing is retrained, the same schedule comes back.
    again = _cli("tune", "--dataset", "digits", "--epochs", "1", "--sampler", "grid:2", "--storage", storage,
                 "--run", "tiny-grid", "--run-dir", str(tmp_path / "tiny-grid"), "--no-progress", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[:2] == grid_out.splitlines()[:2]  # header + the epoch's row


@pytest.mark.slow
def test_per_epoch_mnist_example_runs(tmp_path: Path, data_root: Path) -> None:
    script = Path(__file__).resolve().parents[1] / "examples" / "per_epoch_mnist.py"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("OPTUNA_GAMMA_CRASH_AT", None)
    proc = subprocess.run([sys.executable, str(script), "--data-root", str(data_root), "--epochs", "1", "--trials", "2",
                           "--run-dir", str(tmp_path / "run")], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["trials_per_epoch"] == 2 and sum(map(sum, result["test"]["confusion_matrix"])) == 10000
    assert "epoch 1: lr" in proc.stdout and "optuna-dashboard sqlite:///" in proc.stdout


def test_whole_mode_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from optuna_gamma.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["tune", "--dataset", "digits", "--mode", "whole", "--epochs", "2", "--trials", "2", "--sampler",
                 "random", "--seed", "3", "--no-progress", "--report", "w.html"]) == 0
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "runs" / "digits-mlp-random-s3" / "result.json").read_text())
    assert result["mode"] == "whole" and result["epochs"] == 2 and len(result["trials"]) == 2
    assert f"best lr {result['best_lr']:.4g}" in out
    assert "optuna-dashboard sqlite:///" in out and (tmp_path / "w.html").is_file()
