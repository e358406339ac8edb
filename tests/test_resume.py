"""kill -9 during a run, then the same call again: identical schedule and final weights.

The job runs in a subprocess. ``OPTUNA_GAMMA_CRASH_AT="<point>:<k>"`` makes it SIGKILL itself
the k-th time it passes a point of the driver (after a trial is asked, after its state file is
written but before it is told, after it is told, after the adopted state is copied but before
the epoch is marked), which is a real ``kill -9`` at an exact, reproducible instant.
"""

from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess
import sys

import optuna
from optuna.trial import TrialState
import pytest


torch = pytest.importorskip("torch")

from optuna_gamma.training import load_state  # noqa: E402


JOB = r"""
import sys
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
from optuna_gamma.driver import tune_per_epoch
from optuna_gamma.data import load_dataset
run_dir, sampler, mode = sys.argv[1], sys.argv[2], sys.argv[3]
data = load_dataset("digits", None, seed=0)
if mode == "whole":
    from optuna_gamma.driver import tune_whole
    r = tune_whole("mlp", data, sampler=sampler, n_trials=4, epochs=2, run="job", seed=7, run_dir=run_dir)
    print("best", r.best_lr)
else:
    r = tune_per_epoch("mlp", data, sampler=sampler, trials_per_epoch=4, epochs=2, run="job", seed=7,
                       run_dir=run_dir, warm_start=(mode == "warm"))
    print("schedule", r.learning_rates)
"""


def _run(tmp: Path, run_dir: Path, sampler: str, mode: str, crash: str | None) -> subprocess.CompletedProcess:
    script = tmp / "job.py"
    script.write_text(JOB)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("OPTUNA_GAMMA_CRASH_AT", None)
    if crash:
        env["OPTUNA_GAMMA_CRASH_AT"] = crash
    return subprocess.run([sys.executable, str(script), str(run_dir), sampler, mode], env=env,
                          capture_output=True, text=True, timeout=600)


def _final(run_dir: Path):
    from optuna_gamma.driver import load_result

    res = load_result(run_dir / "result.json")
    return res, load_state(res.final_state)


def _assert_same(a: Path, b: Path) -> None:
    ra, sa = _final(a)
    rb, sb = _final(b)
    if ra.mode == "whole":
        assert ra.best_lr == rb.best_lr and ra.best_kappa == rb.best_kappa
    else:
        assert [(e.lr, e.kappa, e.accuracy, e.params) for e in ra.schedule] == [
            (e.lr, e.kappa, e.accuracy, e.params) for e in rb.schedule
        ]
    assert ra.test == rb.test
    for part in ("model",):
        da, db = getattr(sa, part), getattr(sb, part)
        assert da.keys() == db.keys()
        for k in da:
            assert torch.equal(da[k], db[k]), k


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Uninterrupted runs, one per (sampler, mode)."""
    cache: dict[tuple[str, str], Path] = {}

    def get(sampler: str, mode: str) -> Path:
        if (sampler, mode) not in cache:
            tmp = tmp_path_factory.mktemp(f"ref-{sampler.replace(':', '_')}-{mode}")
            proc = _run(tmp, tmp / "run", sampler, mode, None)
            assert proc.returncode == 0, proc.stderr
            cache[(sampler, mode)] = tmp / "run"
        return cache[(sampler, mode)]

    return get


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sampler", "mode", "crashes"),
    [
        # 2 epochs x 4 trials: epoch 2 is the 5th..8th trial. Crash 1 kills trial 6 between its
        # state file and tell; the resumed process dies right after asking (the retry), then
        # between copying epoch 2's adopted state and marking the study.
        ("gamma", "per-epoch", ["after_save:6", "after_ask:1", "after_adopt_copy:1"]),
        ("tpe", "warm", ["after_ask:5"]),  # the enqueued warm-start trial of epoch 2
        ("grid:4", "per-epoch", ["after_save:6"]),
        ("gamma", "whole", ["after_save:3"]),
    ],
)
def test_kill_and_resume_gives_identical_run(tmp_path: Path, reference, sampler: str, mode: str, crashes: list[str]) -> None:
    run_dir = tmp_path / "run"
    for crash in crashes:
        proc = _run(tmp_path, run_dir, sampler, mode, crash)
        assert proc.returncode == -signal.SIGKILL, (crash, proc.returncode, proc.stderr[-2000:])
        assert not (run_dir / "result.json").exists()
    proc = _run(tmp_path, run_dir, sampler, mode, None)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _assert_same(run_dir, reference(sampler, mode))

    # The dead process's RUNNING trials were failed and retried with the same parameters.
    storage = f"sqlite:///{run_dir / 'optuna.db'}"
    failed = 0
    for name in optuna.get_all_study_names(storage):
        study = optuna.load_study(study_name=name, storage=storage)
        trials = study.get_trials()
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        for t in trials:
            if t.state == TrialState.FAIL:
                failed += 1
                # follow the chain of retries (a retry may itself have been killed)
                r = t
                while r.state != TrialState.COMPLETE:
                    retry = [x for x in trials if x.user_attrs.get("retry_of") == r.number]
                    assert len(retry) == 1
                    r = retry[0]
                if t.params:
                    assert r.params == t.params
    n_kill_in_trial = sum(c.startswith(("after_ask", "after_save")) for c in crashes)
    assert failed == n_kill_in_trial
