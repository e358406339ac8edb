"""The live view (issue 15, point 4): each finished trial is one row of the running epoch's
table (above the bar on a terminal, a DEBUG record off it), and log lines never share a line
with the progress bar."""

from __future__ import annotations

import logging
import os
from pathlib import Path
import re
import subprocess
import sys
import textwrap

import pytest


pytest.importorskip("torch")

from optuna_gamma.tuner import ThesisTrainer  # noqa: E402
from optuna_gamma.tuner import tune_per_epoch  # noqa: E402
from optuna_gamma.tuner import TunerConfig  # noqa: E402


ROW = re.compile(r"epoch +(\d+) +trial +(\d+) +lr=\S+ +kappa=\S+ .*(COMPLETE|FAIL)")


def test_off_a_terminal_one_debug_row_per_trial_and_one_info_line_per_epoch(
    tmp_path: Path,
) -> None:
    records: list[logging.LogRecord] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("optuna_gamma")
    handler, level = _Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        tune_per_epoch(
            ThesisTrainer("digits"),
            None,
            TunerConfig(
                run="live",
                run_dir=str(tmp_path / "live"),
                sampler="random",
                trials_per_epoch=3,
                epochs=2,
                progress=False,
            ),
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    found = [ROW.search(r.getMessage()) for r in records if r.levelno == logging.DEBUG]
    rows = [m for m in found if m is not None]
    assert sorted((int(m.group(1)), int(m.group(2))) for m in rows) == [
        (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)
    ]  # fmt: skip
    epochs = [r for r in records if r.levelno == logging.INFO and "adopted trial" in r.msg]
    assert len(epochs) == 2


SCRIPT = textwrap.dedent(
    """
    import sys
    from optuna_gamma.tuner import ThesisTrainer, TunerConfig, tune_per_epoch

    tune_per_epoch(ThesisTrainer("digits"), None, TunerConfig(
        run="bar", run_dir=sys.argv[1], sampler="random", trials_per_epoch=3, epochs=2,
        progress=True))
    """
)


def test_on_a_terminal_rows_and_log_lines_are_printed_above_the_bar(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "bar")],
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    # what a terminal shows on each line: the text after the last carriage return
    shown = [line.rsplit("\r", 1)[-1] for line in proc.stderr.split("\n")]
    logs = [s for s in shown if "adopted trial" in s]
    assert len(logs) == 2 and all(s.startswith("[I ") for s in logs), logs
    rows = [s for s in shown if ROW.search(s)]
    assert len(rows) == 6 and all(s.startswith("epoch ") for s in rows), rows
    assert "6/6" in proc.stderr  # the bar itself


WORKERS_SCRIPT = textwrap.dedent(
    """
    import sys
    from optuna_gamma.tuner import ThesisTrainer, TunerConfig, tune_per_epoch

    if __name__ == "__main__":
        tune_per_epoch(ThesisTrainer("digits"), None, TunerConfig(
            run="bar", run_dir=sys.argv[1], trials_per_epoch=4, epochs=3, workers=2,
            seed=0, progress=True))
    """
)


def test_with_workers_the_bar_and_rows_keep_up_with_the_storage(tmp_path: Path) -> None:
    """The coordinator counts the storage's trials: when it logs an epoch's adoption, that
    epoch's rows are printed and the bar counts its trials; no state is recomputed because
    two workers adopted the same epoch together."""
    script = tmp_path / "run.py"
    script.write_text(WORKERS_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "bar")],
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "recomputing" not in proc.stderr
    seen: set[tuple[int, int]] = set()
    count = 0
    adopted = 0
    for line in proc.stderr.replace("\r", "\n").split("\n"):
        row = ROW.search(line)
        bar = re.search(r"\| *(\d+)/12 \[", line)
        if row is not None:
            seen.add((int(row.group(1)), int(row.group(2))))
        elif bar is not None:
            count = max(count, int(bar.group(1)))
        elif "adopted trial" in line:
            adopted += 1
            assert {(adopted, t) for t in range(4)} <= seen, (adopted, seen)
            assert count >= 4 * adopted, (adopted, count)
    assert adopted == 3 and count == 12
