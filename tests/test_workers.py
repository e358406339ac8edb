"""Parallel workers (docs/design.md §6) on SQLite, PostgreSQL and an S3 artifact store.

Each scenario kills workers with SIGKILL at exact points (``OPTUNA_GAMMA_CRASH_AT``; with
``OPTUNA_GAMMA_CRASH_ONCE`` exactly one process, the first to get there, dies) and checks the
guarantees: every epoch adopted exactly once from >= T complete trials, the adopted trial is the
study's best, no point trained twice within an epoch, no state lost, and the run finishes, also
after every worker was killed and the workers were started again.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
import re
import signal
import subprocess
import sys
import time

import optuna
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import TrialState
import pytest


pytest.importorskip("torch")

from optuna_gamma.tuner import get_storage  # noqa: E402
from optuna_gamma.tuner import run_worker  # noqa: E402
from optuna_gamma.tuner.execution.worker_setup import worker_setup  # noqa: E402


RUN = ["--dataset", "digits", "--epochs", "3", "--trials", "4", "--no-progress"]
MARKER = ("artifact_store", "id")  # the first study's record of the store's marker


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTUNA_GAMMA_CRASH")}
    env.update(OMP_NUM_THREADS="1", **extra)
    return env


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "optuna_gamma", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env or _env(),
        timeout=900,
    )


def _popen(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "optuna_gamma", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )


def check_run(
    storage: str | optuna.storages.BaseStorage, run: str, epochs: int = 3, trials: int = 4
) -> dict[str, int]:
    """The guarantees of docs/design.md §6 on a finished run.

    Returns:
        Counts of failed and reused trials.
    """

    counts = {"failed": 0, "reused": 0}
    for e in range(1, epochs + 1):
        study = optuna.load_study(study_name=f"{run}/epoch-{e:03d}", storage=storage)
        trials_ = study.get_trials()
        assert not [t for t in trials_ if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        done = [t for t in trials_ if t.state == TrialState.COMPLETE]
        assert len(done) == trials  # T trials per epoch, never T + 1
        adopted = study.user_attrs["adopted"]
        assert adopted["trial"] == study.best_trial.number and adopted["value"] == study.best_value
        trained = [t for t in done if "reused_from" not in t.user_attrs]
        # a point is a setting from a start state (the policy's slots name the state)
        points = [(t.user_attrs.get("parent", 0), *sorted(t.params.items())) for t in trained]
        assert len(points) == len(set(points)), "a point was trained twice in one epoch"
        carried = study.user_attrs["population"]
        assert carried[0]["trial"] == adopted["trial"]
        assert len({m["state"] for m in carried}) == len(carried)
        counts["failed"] += sum(t.state == TrialState.FAIL for t in trials_)
        counts["reused"] += len(done) - len(trained)
    return counts


def _final_state_loads(result: dict) -> None:
    from optuna_gamma.tuner.persistence.states import open_artifact_store
    from optuna_gamma.tuner.persistence.states import StateStore

    store, _ = open_artifact_store(result["artifacts"], Path(result["run_dir"]) / "artifacts")
    from optuna_gamma.tuner.trainer import LAYOUT

    snap = StateStore(store).load(result["final_state"])
    assert set(snap) == {"model", "optimizer", LAYOUT}
    layout = snap[LAYOUT]  # every parameter trains, in the optimizer's one group, by name
    assert layout["frozen"] == [] and len(layout["groups"]) == 1
    names = layout["groups"][0]
    assert names and all(n.startswith("model:") and n[6:] in snap["model"] for n in names)


def _wait_for(predicate, what: str, timeout: float = 300.0) -> None:
    """Poll until ``predicate()`` (not a sleep deciding an outcome: the condition does)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(2 * delay, 1.0)


@pytest.mark.slow
def test_two_local_workers_on_sqlite_survive_kills_and_a_full_restart(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'runs.db'}"
    args = [*RUN, "--workers", "2", "--storage", storage, "--run", "w", "--run-dir", "run"]
    # One worker (the first to finish uploading its second state) is killed before its tell.
    proc = _cli(
        "tune",
        *args,
        cwd=tmp_path,
        env=_env(
            OPTUNA_GAMMA_CRASH_AT="after_save:2", OPTUNA_GAMMA_CRASH_ONCE=str(tmp_path / "token")
        ),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "token").exists() and "stopped (exit code -9)" in proc.stderr
    counts = check_run(get_storage(storage), "w")
    assert counts["failed"] == 1  # the killed trial, retried with the same parameters
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    _final_state_loads(result)

    # Every worker dies at its third trial, twice over: the parent reports it in one line; then
    # the same command resumes and finishes.
    args2 = [*RUN, "--workers", "2", "--storage", storage, "--run", "w2", "--run-dir", "run2"]
    proc = _cli(
        "tune",
        *args2,
        cwd=tmp_path,
        env=_env(OPTUNA_GAMMA_CRASH_AT="after_ask:3", OPTUNA_GAMMA_CRASH_WORKER="*"),
    )
    assert (
        proc.returncode == 2 and "every worker stopped before run 'w2' was done" in proc.stderr
    ), proc.stderr[-3000:]
    proc = _cli("tune", *args2, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_run(get_storage(storage), "w2")
    _final_state_loads(json.loads((tmp_path / "run2" / "result.json").read_text()))


@pytest.mark.slow
def test_killing_the_parent_and_its_workers_then_resuming(tmp_path: Path) -> None:
    """The parent kills its whole process group (itself and every worker) right after epoch 1
    is adopted; the same command, run again, resumes and finishes (default journal storage)."""
    args = [*RUN, "--workers", "2", "--run", "g", "--run-dir", "run"]
    proc = subprocess.run(
        [sys.executable, "-m", "optuna_gamma", "tune", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=900,
        start_new_session=True,
        env=_env(OPTUNA_GAMMA_CRASH_AT="coordinator_adopted:1", OPTUNA_GAMMA_CRASH_GROUP="1"),
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert not (tmp_path / "run" / "result.json").exists()
    proc = _cli("tune", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_run(get_storage(str(tmp_path / "run" / "journal.log")), "g")


@pytest.mark.slow
def test_workers_on_postgresql_with_heartbeats(tmp_path: Path, postgres_url: str) -> None:
    """A head node coordinates (no local workers) and three `optuna-gamma worker` processes
    train. One is killed mid-trial: its heartbeat stops, Optuna fails the trial after the grace
    period and it is retried. Then all three die at their third trial (the run cannot finish
    with them); the head is killed too, and everything started again finishes the run."""
    run = f"pg{os.getpid()}"
    head_args = [
        *RUN,
        "--coordinate",
        "--storage",
        postgres_url,
        "--run",
        run,
        "--run-dir",
        "head",
        "--artifacts",
        str(tmp_path / "shared"),
        "--heartbeat-interval",
        "1",
        "--grace-period",
        "2",
    ]
    worker_args = ["worker", "--storage", postgres_url, "--run", run]
    worker_args += ["--artifacts", str(tmp_path / "shared")]

    def start_workers(env: dict[str, str]) -> list[subprocess.Popen]:
        return [_popen(*worker_args, cwd=tmp_path, env=env) for _ in range(3)]

    def manifest_exists() -> bool:
        try:
            return (
                "config"
                in optuna.load_study(
                    study_name=f"{run}/epoch-001", storage=postgres_url
                ).user_attrs
            )
        except KeyError:
            return False

    head = _popen("tune", *head_args, cwd=tmp_path, env=_env())
    _wait_for(manifest_exists, "the run's first study")
    workers = start_workers(
        _env(OPTUNA_GAMMA_CRASH_AT="after_save:2", OPTUNA_GAMMA_CRASH_ONCE=str(tmp_path / "t"))
    )
    out, err = head.communicate(timeout=900)
    assert head.returncode == 0, err[-3000:]
    codes = sorted(w.wait(timeout=300) for w in workers)
    assert codes == [-signal.SIGKILL, 0, 0], [w.stderr.read()[-2000:] for w in workers if w.stderr]
    counts = check_run(postgres_url, run)
    assert counts["failed"] == 1
    study = optuna.load_study(study_name=f"{run}/epoch-001", storage=postgres_url)
    assert study.user_attrs["config"]["heartbeat_interval"] == 1
    result = json.loads((tmp_path / "head" / "result.json").read_text())
    assert "***" in result["storage"] and postgres_url.split(":")[2].split("@")[
        0
    ] not in json.dumps(result)
    _final_state_loads(result)

    # All workers die at their third trial: 3 x 2 = 6 < 12 trials, so the run cannot finish.
    run2 = run + "b"
    head_args2 = [a if a != run else run2 for a in head_args]
    worker_args = ["worker", "--storage", postgres_url, "--run", run2]
    worker_args += ["--artifacts", str(tmp_path / "shared")]
    run = run2
    head = _popen("tune", *head_args2, cwd=tmp_path, env=_env())
    _wait_for(manifest_exists, "the second run's first study")
    workers = start_workers(_env(OPTUNA_GAMMA_CRASH_AT="after_save:3"))
    assert sorted(w.wait(timeout=600) for w in workers) == [-signal.SIGKILL] * 3
    os.killpg(head.pid, signal.SIGKILL)
    head.wait(timeout=60)
    head = _popen("tune", *head_args2, cwd=tmp_path, env=_env())
    workers = start_workers(_env())
    out, err = head.communicate(timeout=900)
    assert head.returncode == 0, err[-3000:]
    assert [w.wait(timeout=300) for w in workers] == [0, 0, 0]
    counts = check_run(postgres_url, run2)
    assert counts["failed"] >= 3  # the three killed trials, failed by the heartbeat and retried


@pytest.mark.slow
def test_two_local_workers_with_an_s3_artifact_store(
    tmp_path: Path, s3_server: dict[str, str]
) -> None:
    import boto3

    env = _env(**s3_server)
    client = boto3.client(
        "s3",
        endpoint_url=s3_server["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket="states")
    storage = f"sqlite:///{tmp_path / 'runs.db'}"
    args = [
        *RUN,
        "--workers",
        "2",
        "--storage",
        storage,
        "--artifacts",
        "s3://states/runs/s3",
        "--run",
        "s3",
        "--run-dir",
        "run",
    ]
    proc = _cli(
        "tune",
        *args,
        cwd=tmp_path,
        env={
            **env,
            "OPTUNA_GAMMA_CRASH_AT": "after_save:2",
            "OPTUNA_GAMMA_CRASH_ONCE": str(tmp_path / "t"),
        },
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_run(get_storage(storage), "s3")
    keys = [
        o["Key"]
        for o in client.list_objects_v2(Bucket="states", Prefix="runs/s3/").get("Contents", [])
    ]
    # the initial state and the states the epochs carried are kept; the trials' own states are
    # deleted (what stays beyond those is a study's attached copy: two workers that adopt an
    # epoch at once may each attach one, and both are listed and readable)
    st = get_storage(storage)
    first = optuna.load_study(study_name="s3/epoch-001", storage=st)
    kept = {f"runs/s3/{first.user_attrs[k][i]}" for k, i in (("start", "state"), MARKER)}
    attached = set()
    for e in (1, 2, 3):
        study = optuna.load_study(study_name=f"s3/epoch-{e:03d}", storage=st)
        kept |= {f"runs/s3/{m['state']}" for m in study.user_attrs["population"]}
        attached |= {f"runs/s3/{m.artifact_id}" for m in get_all_artifact_meta(study, storage=st)}
    assert kept <= set(keys) and set(keys) <= kept | attached, (sorted(keys), sorted(kept))
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert (
        result["artifacts"] == "s3://states/runs/s3" and f"runs/s3/{result['final_state']}" in keys
    )
    os.environ.update(s3_server)
    try:
        _final_state_loads(result)
    finally:
        for k in s3_server:
            os.environ.pop(k, None)
    assert not (tmp_path / "run" / "artifacts").exists()
    # a standalone worker finds the run's marker in the bucket (with or without the slash),
    # not under another prefix
    worker = ["worker", "--storage", storage, "--run", "s3", "--artifacts"]
    proc = _cli(*worker, "s3://states/runs/s3/", cwd=tmp_path, env=env)
    assert proc.returncode == 0 and "nothing to do" in proc.stdout, proc.stderr[-2000:]
    proc = _cli(*worker, "s3://states/runs/other", cwd=tmp_path, env=env)
    assert proc.returncode == 2 and "no marker of the run there" in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["tune", *RUN, "--workers", "2", "--storage", "foo://x"], "unknown storage scheme 'foo'"),
        (
            ["tune", *RUN, "--workers", "2", "--storage", "postgresql://u:s3cret@127.0.0.1:1/db"],
            "cannot open storage",
        ),
        (["tune", *RUN, "--workers", "2", "--artifacts", "/sys/optuna-gamma"], "is not writable"),
        (
            ["worker", "--storage", "postgresql://u:s3cret@127.0.0.1:1/db", "--run", "x"],
            "cannot open storage",
        ),
        (["worker", "--storage", "foo://x", "--run", "x"], "unknown storage scheme"),
    ],
)
def test_unusable_storages_and_artifact_locations_fail_before_any_trial(
    tmp_path: Path,
    monkeypatch,
    capsys,
    args: list[str],
    needle: str,
) -> None:
    from optuna_gamma.tuner.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("run '")]
    assert (
        exc.value.code == 2 and len(lines) == 1 and needle in lines[0] and "s3cret" not in err
    ), err


def test_unwritable_s3_location_fails_before_any_trial(
    tmp_path: Path, monkeypatch, capsys, s3_server
) -> None:
    from optuna_gamma.tuner.cli import main

    for k, v in s3_server.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["tune", *RUN, "--artifacts", "s3://no-such-bucket/x"])
    err = capsys.readouterr().err
    assert (
        exc.value.code == 2 and "artifact location 's3://no-such-bucket/x' is not writable" in err
    )
    assert "Traceback" not in err


def test_a_worker_started_before_its_head_waits_for_the_run(tmp_path: Path) -> None:
    """As a batch scheduler starts a job's tasks together: a worker with --wait is up before
    the head has created the storage (an SQLite file) and the run, waits for both, and trains
    the run's trials when the head has recorded it."""
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    shared = str(tmp_path / "shared")
    worker = _popen(
        "worker",
        "--storage",
        db,
        "--run",
        "early",
        "--artifacts",
        shared,
        "--wait",
        "600",
        cwd=tmp_path,
        env=_env(),
    )
    assert worker.stderr is not None
    seen: list[str] = []
    while not any("waiting up to 600 s for run 'early' to appear" in x for x in seen):
        seen.append(worker.stderr.readline())  # the worker is waiting: now start the head
        assert seen[-1], "".join(seen)
    head = ["tune", *RUN, "--coordinate", "--storage", db, "--run", "early", "--run-dir", "head"]
    proc = _cli(*head, "--artifacts", shared, "--heartbeat-interval", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out, err = worker.communicate(timeout=300)
    assert worker.returncode == 0 and "it completed 12 trials" in out, err[-2000:]
    check_run(db, "early")


def test_a_worker_waits_only_for_a_run_that_may_still_come(tmp_path: Path, capsys) -> None:
    from optuna_gamma.tuner.cli import main

    db = f"sqlite:///{tmp_path / 'runs.db'}"
    optuna.create_study(study_name="other/epoch-001", storage=db)
    args = ["worker", "--storage", db, "--run", "x", "--artifacts", str(tmp_path)]
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--wait", "0.3"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "no run 'x' in storage" in err, err
    assert "runs there: ['other'] (after waiting 0.3 s)" in err
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--wait", "-1"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "--wait: must be a number of seconds >= 0, got -1" in err
    # a journal file cannot take standalone workers: said at once, not after the wait; one
    # that is not there is not created (before: an empty file was left behind the refusal)
    log = tmp_path / "j.log"
    journal = ["worker", "--storage", str(log), "--run", "x", "--wait", "600"]
    with pytest.raises(SystemExit):
        main([*journal, "--artifacts", str(tmp_path)])
    assert "no journal file at" in capsys.readouterr().err and not log.exists()
    log.touch()
    with pytest.raises(SystemExit):
        main([*journal, "--artifacts", str(tmp_path)])
    assert "journal file, which has no heartbeat" in capsys.readouterr().err


def test_a_worker_with_nothing_to_do_exits_0_with_a_reason(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    proc = _cli("tune", *RUN, "--run", "done", "--run-dir", "run", "--storage", db, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    artifacts = str(tmp_path / "run" / "artifacts")
    proc = _cli("worker", "--storage", db, "--run", "done", "--artifacts", artifacts, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip().endswith(
        "nothing to do: run 'done' is finished"
    ), proc.stderr[-2000:]
    proc = _cli("worker", "--storage", db, "--run", "other", cwd=tmp_path)
    assert (
        proc.returncode == 2
        and "no run 'other'" in proc.stderr
        and "runs there: ['done']" in proc.stderr
    )


def test_a_worker_is_known_by_the_store_it_reaches_not_by_its_path(tmp_path: Path) -> None:
    """The run's store reached by another path (a shared folder that a worker's machine mounts
    elsewhere; here the folder moved while the run was down) is accepted; a folder at the run's
    own path that is not the run's (a machine that does not share it) is refused before the
    worker writes anything, and so is a path that does not exist. The head (storage outside
    its run directory) resumes with the store at its new path, and is refused another."""
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    crash = _env(OPTUNA_GAMMA_CRASH_AT="after_tell:2")
    head = ["tune", *RUN, "--run", "m", "--run-dir", "run", "--storage", db]
    assert _cli(*head, cwd=tmp_path, env=crash).returncode == -signal.SIGKILL  # unfinished
    shared, mounted = tmp_path / "run" / "artifacts", tmp_path / "mnt" / "states"
    mounted.parent.mkdir()
    shared.rename(mounted)
    shared.mkdir()  # the run's path, on a machine that does not share the folder
    worker = ["worker", "--storage", db, "--run", "m", "--artifacts"]
    proc = _cli(*worker, str(shared), cwd=tmp_path)
    assert (
        proc.returncode == 2 and "does not hold the training states of run 'm'" in proc.stderr
    ), proc.stderr
    assert "no marker of the run there" in proc.stderr and "mounted at any path" in proc.stderr

    def setup_with(artifacts: Path) -> dict:
        return worker_setup(
            get_storage(db),
            db,
            run="m",
            storage_arg=db,
            trainer_ref=None,
            artifacts=str(artifacts),
            data_root=None,
            device="cpu",
            threads=1,
        )

    with pytest.raises(
        ValueError,
        match="does not hold the training states of run 'm'.*no such folder on this machine",
    ):
        setup_with(tmp_path / "no")
    assert not list(shared.iterdir()) and not (tmp_path / "no").exists()
    # a worker started from Python (run_worker) is refused the same way, before any trial
    setup = setup_with(mounted)
    elsewhere = dataclasses.replace(setup["config"], artifacts=str(shared))
    with pytest.raises(
        ValueError, match="artifact store .* does not hold the training states of run 'm'"
    ):
        run_worker(setup["trainer"], setup["space"], elsewhere, setup["mode"])
    assert not list(shared.iterdir())
    proc = _cli(*worker, str(mounted), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert check_run(db, "m") == {"failed": 0, "reused": 0}  # the worker trained the rest
    # the head given another folder is refused (before: the same "made with other settings"
    # as for the new path below, which it refused too)
    other = tmp_path / "other"
    other.mkdir()
    proc = _cli(*head, "--artifacts", str(other), cwd=tmp_path)
    assert proc.returncode == 2 and "keeps its training states in another" in proc.stderr
    assert not list(other.iterdir())
    proc = _cli(*head, "--artifacts", str(mounted), cwd=tmp_path)  # the store at its new path
    assert proc.returncode == 0 and "missing" not in proc.stderr, proc.stderr[-2000:]
    assert f"is reached at {str(mounted)!r} (it holds the run's marker)" in proc.stderr
    _final_state_loads(json.loads((tmp_path / "run" / "result.json").read_text()))


_MAIN_TRAINER = """
import sys, torch
from optuna.distributions import FloatDistribution
from optuna_gamma.tuner import TrainingState, TunerConfig, tune_per_epoch


class Tiny:
    def build(self, seed, device):
        model = torch.nn.Linear(2, 2)
        return TrainingState(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))

    def train_epoch(self, state, hparams, ctx):
        pass

    def evaluate(self, state, split):
        return {"accuracy": 0.5, "loss": 1.0}


config = TunerConfig(run="t", run_dir=RUN_DIR, budget=4, workers=2, progress=False)
tune_per_epoch(Tiny(), {"lr": FloatDistribution(1e-3, 1.0, log=True)}, config)
"""


@pytest.mark.parametrize("how", ["stdin", "-c"])
def test_workers_refuse_a_trainer_of_a_session_without_a_script_file(
    tmp_path: Path, how: str
) -> None:
    # a notebook, python -c or a script piped to python -: a spawned worker cannot load what
    # __main__ defines (or, for <stdin>, the main "file" itself); the run used to start its
    # workers, which all stopped, and advise to run the same command again
    code = _MAIN_TRAINER.replace("RUN_DIR", repr(str(tmp_path / "run")))
    args = [sys.executable, "-"] if how == "stdin" else [sys.executable, "-c", code]
    proc = subprocess.run(
        args,
        input=code if how == "stdin" else None,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError: with workers=2 the workers are spawned processes")
    assert "'<stdin>' is not a file" in last if how == "stdin" else "refers to Tiny" in last
    assert "started 2 workers" not in proc.stderr


def test_a_script_without_the_main_guard_is_refused_and_not_run_again(tmp_path: Path) -> None:
    # a spawned worker runs the main script's top level again: without the guard its first
    # tuner call (here a serial run with overwrite=True) ran a second time inside every worker,
    # deleting and redoing the run the parent had just finished, and the workers never started
    header, body = _MAIN_TRAINER.replace("RUN_DIR", repr(str(tmp_path / "run"))).split(
        "\nconfig = "
    )
    body = (
        "tune_per_epoch(Tiny(), {'lr': FloatDistribution(1e-3, 1.0, log=True)}, "
        f"TunerConfig(run='s', run_dir={str(tmp_path / 'serial')!r}, budget=2, "
        "progress=False, overwrite=True))\n"
        f"open({str(tmp_path / 'calls.txt')!r}, 'a').write('serial run done\\n')\n"
        "config = " + body
    )
    script = tmp_path / "unguarded.py"
    script.write_text(header + "\n" + body)
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError: a worker process ran the tuner call of your script")
    assert last.endswith('put the call under `if __name__ == "__main__":`')
    assert (tmp_path / "calls.txt").read_text() == "serial run done\n"  # the parent's only
    assert "overwrite: deleted run" not in proc.stderr
    # with the guard the same script runs
    guarded = "if __name__ == '__main__':\n" + "".join(
        f"    {line}\n" for line in body.strip().splitlines()
    )
    script.write_text(header + "\n" + guarded)
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "run" / "result.json").is_file()


def test_no_more_worker_processes_than_the_widest_epoch_has_trials(tmp_path: Path) -> None:
    # budget 2 on 3 workers: no epoch of the plan has 3 trials, so a third process would only
    # have waited (and held its memory); it used to be started all the same
    args = ["--dataset", "digits", "--budget", "2", "--workers", "3", "--no-progress"]
    proc = _cli("tune", *args, "--run", "narrow", "--run-dir", "run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    widest = result["trials_per_epoch"]
    assert widest < 3 and result["compute_epochs"] == 2
    started = re.search(r"started (\d+) workers? \(of the 3 asked for: no epoch", proc.stderr)
    assert started and int(started.group(1)) == widest


def test_local_workers_take_one_gpu_each_where_several_are_visible(monkeypatch) -> None:
    import torch

    from optuna_gamma.tuner.execution.runtime import worker_devices

    assert worker_devices(None, 3) == [None] * 3  # no GPU here: each worker's default
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    spread = ["cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0", "cuda:1"]
    assert worker_devices(None, 6) == worker_devices("cuda", 6) == spread
    assert worker_devices(torch.device("cuda"), 2) == spread[:2]
    for given in ("cuda:1", "cpu", torch.device("cuda", 2)):  # the user's choice, for all
        assert worker_devices(given, 3) == [given] * 3
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert worker_devices("cuda", 2) == ["cuda", "cuda"]
