"""The docs' quoted log line and the quick start's figure come from real runs (issue 15,
point 9): the line in docs/tuning.md has the format a run logs, and the quick start reaches
the test accuracy docs/getting-started.md states."""

from __future__ import annotations

import os
from pathlib import Path
import re
import subprocess
import sys

import pytest


REPO = Path(__file__).resolve().parents[1]
#: One adopted epoch, as the tuner logs it (Optuna's log format, then tune._describe's text).
EPOCH_LINE = re.compile(
    r"^\[I \d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\] epoch (\d+)/(\d+): adopted trial \d+: "
    r"lr=[0-9.e+-]+ kappa=[0-9.e+-]+ accuracy=[0-9.]+ loss=[0-9.e+-]+ \(\d+\.\d s\)$"
)


def _quick_start(cwd: Path, data_root: Path) -> subprocess.CompletedProcess:
    text = (REPO / "docs" / "getting-started.md").read_text(encoding="utf-8")
    match = re.search(r"optuna-gamma tune --dataset mnist .*?--report report.html", text, re.S)
    assert match, "the quick start's command is not in docs/getting-started.md"
    args = match.group(0).replace("\\\n", " ").split()[1:]
    args[args.index("--data-root") + 1] = str(data_root)
    return subprocess.run(
        [sys.executable, "-m", "optuna_gamma", *args, "--no-progress"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        timeout=900,
    )


def test_quoted_epoch_line_has_the_format_a_run_logs(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    quoted = [
        line.strip()
        for line in (REPO / "docs" / "tuning.md").read_text(encoding="utf-8").splitlines()
        if "adopted trial" in line and line.strip().startswith("[I ")
    ]
    assert quoted and all(EPOCH_LINE.match(q) for q in quoted), quoted
    args = ["tune", "--dataset", "digits", "--epochs", "2", "--trials-per-epoch", "2"]
    args += ["--sampler", "random", "--run-dir", str(tmp_path / "r"), "--no-progress"]
    proc = subprocess.run(
        [sys.executable, "-m", "optuna_gamma", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    logged = [line for line in proc.stderr.splitlines() if "adopted trial" in line]
    assert len(logged) == 2 and all(EPOCH_LINE.match(line) for line in logged), logged


@pytest.mark.slow
def test_quick_start_reaches_the_documented_test_accuracy(tmp_path: Path, data_root: Path) -> None:
    pytest.importorskip("torch")
    if not (data_root / "mnist").exists() and not any(data_root.glob("*mnist*")):
        pytest.skip("MNIST is not in the data root")
    text = (REPO / "docs" / "getting-started.md").read_text(encoding="utf-8")
    ((low, high),) = re.findall(r"the CNN is at ([0-9.]+)-([0-9.]+) % test accuracy", text)
    proc = _quick_start(tmp_path, data_root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (acc,) = re.findall(r"^test: accuracy ([0-9.]+)", proc.stdout, re.M)
    # The range the docs state: another CPU's vector instructions round the float32 training
    # differently (26.2 %, 27.5 %, 28.3 % and 30.7 % seen); the docs must not drift from it.
    assert float(low) <= 100 * float(acc) <= float(high), (acc, low, high)
    lines = [line for line in proc.stderr.splitlines() if "adopted trial" in line]
    assert len(lines) == 3 and all(EPOCH_LINE.match(line) for line in lines), lines
