"""kill -9 during a run, then the same call again: identical schedule and final weights.

The job runs in a subprocess. ``OPTUNA_GAMMA_CRASH_AT="<point>:<k>"`` makes it SIGKILL itself
the k-th time it passes a point of the engine (after a trial is asked, after its state is
uploaded but before it is told, after it is told, after an adoption is verified but before it is
recorded, after it is recorded but before the other states are deleted), which is a real
``kill -9`` at an exact, reproducible instant. The same holds for a user's own trainer (AdamW,
a DataLoader and an LR scheduler: ``examples/own_training.py`` plus a scheduler here).
"""

from __future__ import annotations

from collections.abc import Callable
import os
from pathlib import Path
import signal
import subprocess
import sys

import optuna
from optuna.trial import TrialState
import pytest


torch = pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[1]

JOB = r"""
import sys
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
from optuna_gamma.tuner import ThesisTrainer, TunerConfig, tune_per_epoch, tune_whole
run_dir, sampler, mode, policy = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[5]
if mode == "user":
    import runpy, torch
    ns = runpy.run_path(sys.argv[4])

    class WithScheduler(ns["MyTrainer"]):
        def build(self, seed, device):
            state = super().build(seed, device)
            state.scheduler = torch.optim.lr_scheduler.StepLR(
                state.optimizer, step_size=5, gamma=0.5
            )
            return state

        def train_epoch(self, state, hparams, ctx):
            out = super().train_epoch(state, hparams, ctx)
            state.scheduler.step()
            return out

    trainer = WithScheduler()
    space = trainer.search_space()
else:
    trainer, space = ThesisTrainer("digits"), None
if policy == "plateau":  # serial: races the plateau rule decides (test_policies' run)
    from optuna_gamma.tuner.policies import PopulationPolicy
    plan = dict(seed=6, policy=PopulationPolicy(width=1, budget=30, explore_until=1.0,
                                                race_share=None))
elif policy == "small":  # serial, the default policy on a budget of 12: a race sized by it
    plan = dict(seed=6, budget=12)
elif policy == "posterior":  # 4 at a time, ranked by a GP's posterior mean (epoch 2 sees 1)
    from optuna_gamma.tuner.policies import PopulationPolicy
    plan = dict(seed=7, policy=PopulationPolicy(width=4, epochs=2, adopt_on="posterior"))
else:
    plan = dict(seed=7, policy=policy, trials_per_epoch=4, epochs=2)
config = TunerConfig(run="job", run_dir=run_dir, sampler=sampler, warm_start=(mode == "warm"),
                     **plan)
if mode == "whole":
    r = tune_whole(trainer, space, config)
else:
    r = tune_per_epoch(trainer, space, config)
print("done", r.final_state)
"""


def _run(
    tmp: Path, run_dir: Path, sampler: str, mode: str, crash: str | None, policy: str
) -> subprocess.CompletedProcess:
    script = tmp / "job.py"
    script.write_text(JOB)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("OPTUNA_GAMMA_CRASH_AT", None)
    if crash:
        env["OPTUNA_GAMMA_CRASH_AT"] = crash
    args = [
        sys.executable,
        str(script),
        str(run_dir),
        sampler,
        mode,
        str(REPO / "examples" / "own_training.py"),
        policy,
    ]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)


def _final(run_dir: Path):
    from optuna.artifacts import FileSystemArtifactStore

    from optuna_gamma.tuner import load_result
    from optuna_gamma.tuner.persistence.states import StateStore

    res = load_result(run_dir / "result.json")
    return res, StateStore(FileSystemArtifactStore(res.artifacts)).load(res.final_state)


def _assert_equal(a, b) -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_equal(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_equal(x, y)
    else:
        assert a == b


def assert_same_run(a: Path, b: Path) -> None:
    ra, sa = _final(a)
    rb, sb = _final(b)

    def entries(r):
        return r.schedule if r.mode == "per-epoch" else [r.best]

    assert [(e.params, e.value, e.metrics) for e in entries(ra)] == [
        (e.params, e.value, e.metrics) for e in entries(rb)
    ]
    assert ra.test == rb.test
    _assert_equal(sa, sb)  # model, optimizer (and scheduler) bit for bit


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str, str], Path]:
    """Uninterrupted runs, one per (sampler, mode, policy)."""
    cache: dict[tuple[str, str, str], Path] = {}

    def get(sampler: str, mode: str, policy: str) -> Path:
        if (sampler, mode, policy) not in cache:
            tmp = tmp_path_factory.mktemp(f"ref-{sampler.replace(':', '_')}-{mode}-{policy}")
            proc = _run(tmp, tmp / "run", sampler, mode, None, policy)
            assert proc.returncode == 0, proc.stderr
            cache[(sampler, mode, policy)] = tmp / "run"
        return cache[(sampler, mode, policy)]

    return get


def crash_and_resume(
    tmp_path: Path, sampler: str, mode: str, crashes: list[str], policy: str = "thesis"
) -> Path:
    run_dir = tmp_path / "run"
    for crash in crashes:
        proc = _run(tmp_path, run_dir, sampler, mode, crash, policy)
        assert proc.returncode == -signal.SIGKILL, (crash, proc.returncode, proc.stderr[-2000:])
        assert not (run_dir / "result.json").exists()
    proc = _run(tmp_path, run_dir, sampler, mode, None, policy)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sampler", "mode", "crashes", "policy"),
    [
        # 2 epochs x 4 trials: epoch 2 is the 5th..8th trial. Crash 1 kills trial 6 between its
        # state upload and tell; the resumed process dies right after asking (the retry), then
        # between verifying epoch 2's adoption and recording it.
        (
            "gamma",
            "per-epoch",
            ["after_save:6", "after_ask:1", "after_adopt_verify:1"],
            "thesis",
        ),
        (
            "tpe",
            "warm",
            ["after_ask:5", "after_adopt:1"],
            "thesis",
        ),  # the enqueued warm-start trial of epoch 2
        ("grid:4", "per-epoch", ["after_save:6"], "thesis"),
        ("gamma", "whole", ["after_save:3"], "thesis"),
        # AdamW + DataLoader + StepLR
        ("gamma", "user", ["after_save:2", "after_tell:5"], "thesis"),
        # The population policy: epoch 2 queues 2 continuing and 2 exploring trials, from the
        # 2 states epoch 1 carried; trial 6 is the first explorer (killed before its tell), the
        # resumed process dies after the queued retry is asked, then mid-adoption.
        (
            "gamma",
            "per-epoch",
            ["after_save:7", "after_ask:1", "after_adopt_verify:1"],
            "population",
        ),
        ("tpe", "user", ["after_save:2", "after_tell:6"], "population"),
        # Serial, the plateau rule: 12 epochs, the last an explorer's race that the adopted
        # setting wins by improving (not by the better value: test_policies' run). Killed while
        # training epoch 12's explorer, then between verifying that race's adoption and
        # recording it; the resumed decision reads the stored populations.
        ("gamma", "per-epoch", ["after_save:29", "after_adopt_verify:1"], "plateau"),
        # Serial, the default policy on a small budget (12): its race is sized by the budget
        # (race_share: 2 settings, 1 epoch), then an explorer's race; killed in epoch 3 (trial
        # 5, the adopted setting continuing alone), then mid-adoption.
        ("gamma", "per-epoch", ["after_save:5", "after_adopt_verify:1"], "small"),
        # Ranked by the posterior mean of a GP over setting and age (adopt_on="posterior"):
        # killed mid-adoption of epoch 2, whose ranking also reads epoch 1's trials.
        ("gamma", "per-epoch", ["after_save:7", "after_adopt_verify:1"], "posterior"),
    ],
)
def test_kill_and_resume_gives_identical_run(
    tmp_path: Path, reference, sampler: str, mode: str, crashes: list[str], policy: str
) -> None:
    run_dir = crash_and_resume(tmp_path, sampler, mode, crashes, policy)
    assert_same_run(run_dir, reference(sampler, mode, policy))

    # The dead process's RUNNING trials were failed and retried with the same parameters.
    from optuna_gamma.tuner import get_storage

    storage = get_storage(str(run_dir / "journal.log"))
    failed = 0
    for name in optuna.get_all_study_names(storage):
        study = optuna.load_study(study_name=name, storage=storage)
        trials = study.get_trials()
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        for t in trials:
            if t.state == TrialState.FAIL:
                failed += 1
                r = t  # follow the chain of retries (a retry may itself have been killed)
                while r.state != TrialState.COMPLETE:
                    retry = [x for x in trials if x.user_attrs.get("retry_of") == r.number]
                    assert len(retry) == 1
                    r = retry[0]
                if t.params:
                    assert r.params == t.params
    assert failed == sum(c.startswith(("after_ask", "after_save")) for c in crashes)
    # Only the carried states (and the initial one) are left in the store.
    from optuna_gamma.tuner import load_result
    from optuna_gamma.tuner import PerEpochResult

    carried = set()
    for name in optuna.get_all_study_names(storage):
        attrs = optuna.load_study(study_name=name, storage=storage).user_attrs
        carried |= {m["state"] for m in attrs["population"]}
    # the thesis carries the adopted state; the population policy with 4 at a time carries 3;
    # serial, as many as race
    if policy == "small":
        from optuna_gamma.tuner.policies import PopulationPolicy

        small = PopulationPolicy(width=1, budget=12)
        assert small._race == (2, 1)
        assert len(carried) == sum(small.plan.carry)
    elif policy == "plateau":
        from optuna_gamma.tuner.policies import PopulationPolicy

        plan = PopulationPolicy(width=1, budget=30, explore_until=1.0, race_share=None).plan
        assert len(carried) == sum(plan.carry)
        last = optuna.load_study(study_name="job/epoch-012", storage=storage).user_attrs
        assert last["adopted"]["why"].startswith("the adopted setting improved during its race")
    else:
        assert len(carried) == (1 if mode == "whole" else 2) * (1 if policy == "thesis" else 3)
    assert load_result(run_dir / "result.json").policy["name"] == (
        "population" if policy in ("plateau", "posterior", "small") else policy
    )
    if policy == "posterior":
        last = optuna.load_study(study_name="job/epoch-002", storage=storage).user_attrs
        assert last["adopted"]["why"].startswith("best posterior mean of 4 trials")
        means = [m["posterior_mean"] for m in last["population"]]
        assert means == sorted(means, reverse=True)
    # and the initial state, the store's marker and, where a serial run's default final model
    # averaged its lineage's last states (final_model="auto"), that average
    result = load_result(run_dir / "result.json")
    averaged = False
    if isinstance(result, PerEpochResult):  # a whole run: its best training's last state
        assert result.final_model == ("average" if policy in ("plateau", "small") else "last")
        averaged = len(result.averaged_epochs) > 1
    assert len(list((run_dir / "artifacts").iterdir())) == len(carried) + 2 + averaged
