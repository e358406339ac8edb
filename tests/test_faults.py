"""Fault injection: untrusted references, corrupt states, unusable storages and disks, bad input.

Each case of the fault-injection pass of the trainer-protocol issue has a test here: what was
read from a storage is confined to the run's store; a truncated or missing state is recomputed
(the run stays bit-identical); every unusable environment gives one line on stderr and exit
status 2 before any trial starts where it can be known then, and a later run resumes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import resource
import shutil
import sqlite3
import subprocess
import sys

import optuna
from optuna.distributions import FloatDistribution
import pytest


torch = pytest.importorskip("torch")

from optuna_gamma.tuner import get_storage  # noqa: E402
from optuna_gamma.tuner import ThesisTrainer  # noqa: E402
from optuna_gamma.tuner import tune_per_epoch  # noqa: E402
from optuna_gamma.tuner import TunerConfig  # noqa: E402
from optuna_gamma.tuner.cli import main  # noqa: E402
from optuna_gamma.tuner.persistence.storage import dashboard_command  # noqa: E402
from optuna_gamma.tuner.persistence.storage import mask_url  # noqa: E402
from optuna_gamma.tuner.persistence.storage import open_storage  # noqa: E402


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits() -> ThesisTrainer:
    trainer = ThesisTrainer("digits")
    trainer.data
    return trainer


def _cfg(tmp_path: Path, run: str = "f", **kw) -> TunerConfig:
    kw = {"policy": "thesis", **kw}  # the fault machinery is shared; test_resume runs both
    return TunerConfig(
        run=run, run_dir=str(tmp_path / run), sampler="random", trials_per_epoch=3, seed=4, **kw
    )


def _cli(*args: str, cwd: Path, limit_bytes: int | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("OPTUNA_GAMMA_CRASH_AT", None)

    def limit() -> None:  # a disk that fills up: writes past this size fail (EFBIG)
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(
        [sys.executable, "-m", "optuna_gamma", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
        preexec_fn=limit,
    )


def _one_line_exit_2(capsys, args: list[str], needle: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("run '")]
    assert exc.value.code == 2 and len(lines) == 1, err
    assert "error:" in lines[0] and needle in lines[0] and "Traceback" not in err, err
    return lines[0]


def _artifact(result, ident: str) -> Path:
    return Path(result.artifacts) / ident


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


# ------------------------------------------------------------------------ untrusted references
@pytest.mark.parametrize("ref", ["/etc/hostname", "../../victim.txt", "a" * 36])
def test_state_reference_outside_the_store_is_refused_and_nothing_is_deleted(
    digits, tmp_path: Path, ref: str
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    first = tune_per_epoch(digits, None, _cfg(tmp_path, epochs=1))
    study = optuna.load_study(study_name="f/epoch-001", storage=get_storage(first.storage))
    adopted = dict(study.user_attrs["adopted"])
    study.set_user_attr("adopted", {**adopted, "state": ref})
    study.set_user_attr("population", [{**adopted, "state": ref}])
    with pytest.raises(ValueError, match="not an artifact id of this run's store; refusing"):
        tune_per_epoch(digits, None, _cfg(tmp_path, epochs=2))
    assert victim.read_text() == "keep me" and Path("/etc/hostname").exists()


def _forged(value: float, **attrs):
    return optuna.trial.create_trial(
        params={"lr": 0.01},
        distributions={"lr": FloatDistribution(1e-3, 0.5, log=True)},
        value=value,
        **attrs,
    )


def test_forged_trial_state_is_refused_at_adoption(digits, tmp_path: Path) -> None:
    """A COMPLETE trial whose state is a path (here the best one) is refused; the file is
    untouched."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    storage = f"sqlite:///{tmp_path / 'f.db'}"
    study = optuna.create_study(study_name="f/epoch-001", storage=storage, direction="maximize")
    study.add_trial(_forged(1e9, user_attrs={"state": str(victim), "accuracy": 1.0, "loss": 0.0}))
    with pytest.raises(ValueError, match="refers to the state .*victim.txt.* refusing"):
        tune_per_epoch(digits, None, _cfg(tmp_path, epochs=1, storage=storage))
    assert victim.read_text() == "keep me"


def test_forged_artifact_entry_is_refused_at_clean_up(digits, tmp_path: Path) -> None:
    """A trial whose artifact list names a path outside the store: clean-up refuses to delete
    it."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    storage = f"sqlite:///{tmp_path / 'f.db'}"
    study = optuna.create_study(study_name="f/epoch-001", storage=storage, direction="maximize")
    meta = {"artifact_id": "../../victim.txt", "filename": "x", "mimetype": "x", "encoding": None}
    study.add_trial(_forged(-1e9, system_attrs={"artifacts:../../victim.txt": json.dumps(meta)}))
    with pytest.raises(ValueError, match="refers to the state '../../victim.txt'.* refusing"):
        tune_per_epoch(digits, None, _cfg(tmp_path, epochs=1, storage=storage))
    assert victim.read_text() == "keep me"


# ------------------------------------------------------------------------ corrupt / lost states
def test_truncated_or_missing_adopted_and_initial_states_are_recomputed(
    digits, tmp_path: Path
) -> None:
    reference = tune_per_epoch(digits, None, _cfg(tmp_path, "ref", epochs=3))
    one = tune_per_epoch(digits, None, _cfg(tmp_path, epochs=1))
    study = optuna.load_study(study_name="f/epoch-001", storage=get_storage(one.storage))
    initial = study.user_attrs["start"]["state"]
    _truncate(_artifact(one, study.user_attrs["adopted"]["state"]))
    _truncate(_artifact(one, initial))
    old_id = study.user_attrs["adopted"]["state"]
    two = tune_per_epoch(digits, None, _cfg(tmp_path, epochs=2))  # both recomputed / rebuilt
    study = optuna.load_study(study_name="f/epoch-001", storage=get_storage(one.storage))
    assert (
        study.user_attrs["adopted"]["state"] != old_id
        and study.user_attrs["start"]["state"] != initial
    )
    _artifact(two, two.final_state).unlink()  # epoch 2's adopted state is lost entirely
    three = tune_per_epoch(digits, None, _cfg(tmp_path, epochs=3))
    assert [(e.params, e.value) for e in three.schedule] == [
        (e.params, e.value) for e in reference.schedule
    ]
    assert three.test == reference.test


def test_a_run_resumed_on_an_emptied_store_says_so_once_and_finishes_the_same(
    digits, tmp_path: Path, caplog
) -> None:
    reference = tune_per_epoch(digits, None, _cfg(tmp_path, "ref", epochs=2))
    one = tune_per_epoch(digits, None, _cfg(tmp_path, epochs=1))
    storage = get_storage(one.storage)
    old = optuna.load_study(study_name="f/epoch-001", storage=storage).user_attrs
    assert (Path(one.artifacts) / old["artifact_store"]["id"]).is_file()
    shutil.rmtree(one.artifacts)  # the store is lost (a cleaned folder, another disk)
    with caplog.at_level("WARNING", logger="optuna_gamma"):
        two = tune_per_epoch(digits, None, _cfg(tmp_path, epochs=2))
    said = [
        r.getMessage()
        for r in caplog.records
        if "does not hold the training states of run 'f'" in r.getMessage()
    ]
    assert len(said) == 1 and "recomputed" in said[0], said
    new = optuna.load_study(study_name="f/epoch-001", storage=storage).user_attrs
    assert new["artifact_store"]["id"] != old["artifact_store"]["id"]
    assert (Path(two.artifacts) / new["artifact_store"]["id"]).is_file()  # marked again
    assert [(e.params, e.value) for e in two.schedule] == [
        (e.params, e.value) for e in reference.schedule
    ]
    assert two.test == reference.test


@pytest.mark.slow
def test_truncated_trial_state_is_recomputed_before_adoption(tmp_path: Path) -> None:
    """Killed after the last trial of epoch 1 is told, before the adoption; the best trial's
    state is then truncated. The resumed run recomputes it and ends bit-identical."""
    from test_resume import _run
    from test_resume import assert_same_run

    ref = tmp_path / "ref"
    ref.mkdir()
    assert _run(ref, ref / "run", "random", "per-epoch", None, "thesis").returncode == 0
    proc = _run(tmp_path, tmp_path / "run", "random", "per-epoch", "after_tell:4", "thesis")
    assert proc.returncode == -9, proc.stderr[-2000:]
    best = optuna.load_study(
        study_name="job/epoch-001", storage=get_storage(str(tmp_path / "run" / "journal.log"))
    ).best_trial
    _truncate(tmp_path / "run" / "artifacts" / best.user_attrs["state"])
    proc = _run(tmp_path, tmp_path / "run", "random", "per-epoch", None, "thesis")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "unreadable" in proc.stderr and "recomputing" in proc.stderr
    assert_same_run(tmp_path / "run", ref / "run")


# ------------------------------------------------------------------------ one line, exit 2
@pytest.mark.parametrize(
    ("storage", "needle"),
    [
        ("foo://host/db", "unknown storage scheme 'foo'"),
        ("runs.sqlite", "looks like an SQLite file: write it as sqlite:///"),
        (
            "postgresql://alice:s3cret@127.0.0.1:1/db",
            "cannot open storage 'postgresql://alice:***@127.0.0.1:1/db'",
        ),
        ("mysql+pymysql://alice:s3cret@127.0.0.1:1/db", "the database driver is not installed"),
    ],
)
def test_unusable_storage_urls(
    tmp_path: Path, monkeypatch, capsys, storage: str, needle: str
) -> None:
    monkeypatch.chdir(tmp_path)
    line = _one_line_exit_2(capsys, ["tune", "--dataset", "digits", "--storage", storage], needle)
    assert "s3cret" not in line
    assert (
        not list((tmp_path / "runs").rglob("artifacts/*"))
        if (tmp_path / "runs").exists()
        else True
    )


def test_malformed_and_locked_storages(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "junk.log").write_bytes(b'{"op_code": 0, "worker_id": "x"\nnot json\n')
    _one_line_exit_2(
        capsys,
        ["tune", "--dataset", "digits", "--storage", "junk.log"],
        "not a usable Optuna journal",
    )
    _one_line_exit_2(
        capsys, ["report", "--storage", "junk.log", "-o", "r.html"], "not a usable Optuna journal"
    )
    _one_line_exit_2(
        capsys, ["tune", "--dataset", "digits", "--storage", "runs.db"], "write it as sqlite:///"
    )
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    _one_line_exit_2(
        capsys,
        ["tune", "--dataset", "digits", "--storage", "sqlite:///junk.db"],
        "not a usable database",
    )
    _one_line_exit_2(
        capsys,
        ["report", "--storage", "sqlite:///junk.db", "-o", "r.html"],
        "not a usable database",
    )
    lock = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    lock.execute("CREATE TABLE t (x)")
    lock.execute("BEGIN EXCLUSIVE")
    try:
        _one_line_exit_2(
            capsys,
            ["tune", "--dataset", "digits", "--storage", "sqlite:///locked.db"],
            "database is locked",
        )
    finally:
        lock.execute("ROLLBACK")
        lock.close()


def test_bad_devices_fail_before_any_trial(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    _one_line_exit_2(
        capsys, ["tune", "--dataset", "digits", "--device", "tpu9"], "unknown device 'tpu9'"
    )
    if not torch.cuda.is_available():
        _one_line_exit_2(
            capsys, ["tune", "--dataset", "digits", "--device", "cuda"], "no CUDA GPU is available"
        )
    assert not (tmp_path / "runs").exists()


def test_run_dir_that_is_a_file_or_cannot_be_written(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    _one_line_exit_2(
        capsys,
        ["tune", "--dataset", "digits", "--run-dir", "afile"],
        "exists and is not a directory",
    )
    # sysfs takes no new files, even from root: a run directory that cannot be written.
    _one_line_exit_2(
        capsys,
        ["tune", "--dataset", "digits", "--run-dir", "/sys/optuna-gamma-run"],
        "not writable",
    )
    _one_line_exit_2(
        capsys,
        ["tune", "--dataset", "digits", "--artifacts", "/sys/optuna-gamma-artifacts"],
        "artifact location '/sys/optuna-gamma-artifacts' is not writable",
    )


def test_report_output_and_storage_errors(tmp_path: Path, monkeypatch, capsys, digits) -> None:
    monkeypatch.chdir(tmp_path)
    res = tune_per_epoch(digits, None, _cfg(tmp_path, epochs=1))
    (tmp_path / "outdir").mkdir()
    _one_line_exit_2(
        capsys, ["report", "--storage", res.storage, "-o", "outdir"], "is a directory"
    )
    # a folder that does not exist yet, named as one: before, a file "newdir" was written
    _one_line_exit_2(
        capsys, ["report", "--storage", res.storage, "-o", "newdir/"], "is a directory"
    )
    assert not (tmp_path / "newdir").exists()
    _one_line_exit_2(
        capsys, ["report", "--storage", "sqlite:///nowhere.db", "-o", "r.html"], "no SQLite file"
    )
    _one_line_exit_2(
        capsys, ["report", "--storage", "nowhere.log", "-o", "r.html"], "no journal file"
    )
    assert (
        main(["report", "--storage", res.storage, "-o", "ok.html"]) == 0
        and (tmp_path / "ok.html").is_file()
    )


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["journal", "sqlite"])
def test_full_disk_gives_one_line_and_the_run_resumes_identically(
    tmp_path: Path, storage: str
) -> None:
    """Files may not grow past 45 kB (RLIMIT_FSIZE: writes fail as on a full disk): a state
    (about 42 kB) still fits, the storage does not after some trials. Twice, then with room."""

    def args(run: str) -> list[str]:
        extra = ["--storage", f"sqlite:///{run}.db"] if storage == "sqlite" else []
        return [
            "tune",
            "--dataset",
            "digits",
            "--epochs",
            "4",
            "--trials",
            "6",
            "--run-dir",
            run,
            "--no-progress",
            *extra,
        ]

    ref = _cli(*args("ref"), cwd=tmp_path)
    assert ref.returncode == 0, ref.stderr
    for _ in range(2):
        proc = _cli(*args("run"), cwd=tmp_path, limit_bytes=45_000)
        err = [ln for ln in proc.stderr.splitlines() if "error:" in ln]
        assert proc.returncode == 2 and len(err) == 1 and "Traceback" not in proc.stderr, (
            proc.stderr[-2000:]
        )
        assert "Should not reach" not in err[0]
        assert any(w in err[0] for w in ("storage", "File too large", "disk")), err[0]
    proc = _cli(*args("run"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    a = json.loads((tmp_path / "run" / "result.json").read_text())
    b = json.loads((tmp_path / "ref" / "result.json").read_text())
    same = ("params", "value", "metrics")  # trial numbers may differ after a failed trial
    assert [[e[k] for k in same] for e in a["schedule"]] == [
        [e[k] for k in same] for e in b["schedule"]
    ]
    assert a["test"] == b["test"]


def test_a_torn_journal_tail_is_cut_before_appending(tmp_path: Path) -> None:
    from optuna_gamma.tuner import get_storage

    path = tmp_path / "j.log"
    study = optuna.create_study(study_name="s", storage=get_storage(str(path)))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"op_code": 5, "worker_id": "dead", "tri')  # a write cut short
    study = optuna.load_study(study_name="s", storage=get_storage(str(path)))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert path.read_bytes().startswith(whole)
    assert len(optuna.load_study(study_name="s", storage=get_storage(str(path))).trials) == 5


def test_two_drivers_on_a_fresh_storage(tmp_path: Path, monkeypatch) -> None:
    """Optuna's schema set-up races (alembic IntegrityError) when two processes create the same
    database at once: the loser retries. Once forced here, then for real with four processes."""
    import sqlalchemy.exc

    calls = {"n": 0}
    real = optuna.storages.RDBStorage

    def flaky(url: str):
        calls["n"] += 1
        if calls["n"] == 1:
            raise sqlalchemy.exc.IntegrityError(
                "INSERT INTO alembic_version", {}, Exception("UNIQUE constraint failed")
            )
        return real(url)

    monkeypatch.setattr(optuna.storages, "RDBStorage", flaky)
    storage, shown = open_storage(f"sqlite:///{tmp_path / 'race.db'}")
    assert calls["n"] == 2 and shown.endswith("race.db")
    monkeypatch.undo()

    code = (
        "import sys; import optuna;"
        "from optuna_gamma.tuner.persistence.storage import open_storage;"
        "s, _ = open_storage(sys.argv[1]); optuna.create_study(storage=s, study_name=sys.argv[2])"
    )
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, url, f"s{i}"], stderr=subprocess.PIPE, text=True
        )
        for i in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert sorted(optuna.get_all_study_names(url)) == ["s0", "s1", "s2", "s3"]


# ------------------------------------------------------------------------ bad input, credentials
def test_bad_python_arguments_name_the_value(digits, tmp_path: Path) -> None:
    for kw, match in (
        ({"trials_per_epoch": 2.5}, "trials_per_epoch must be an int >= 1 or None, got 2.5"),
        ({"warm_start": "yes"}, "warm_start must be True or False, got 'yes'"),
    ):
        with pytest.raises(ValueError, match=match):
            tune_per_epoch(digits, None, run_dir=str(tmp_path / "x"), **kw)
    with pytest.raises(ValueError, match="returned NoneType, not an optuna.samplers.BaseSampler"):
        tune_per_epoch(digits, None, run_dir=str(tmp_path / "x"), sampler=lambda seed: None)
    assert not (tmp_path / "x").exists()


def test_passwords_are_masked_and_the_dashboard_command_is_quoted() -> None:
    assert (
        mask_url("postgresql://alice:s3cret@db.example:5432/runs")
        == "postgresql://alice:***@db.example:5432/runs"
    )
    assert (
        mask_url("postgresql+psycopg://alice:p%40ss@h/db") == "postgresql+psycopg://alice:***@h/db"
    )
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert mask_url("weird://u:pw@host") == "weird://u:***@host"
    cmd = dashboard_command("sqlite:////tmp/my runs/optuna.db", "/tmp/my runs/artifacts")
    assert (
        cmd == "optuna-dashboard 'sqlite:////tmp/my runs/optuna.db' "
        "--artifact-dir '/tmp/my runs/artifacts'"
    )


def test_dashboard_line_is_quoted_for_a_run_dir_with_spaces(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            [
                "tune",
                "--dataset",
                "digits",
                "--trials",
                "1",
                "--run-dir",
                "my run",
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    line = [ln for ln in out.splitlines() if ln.startswith("dashboard: ")][0]
    assert line == "dashboard: " + dashboard_command(
        str(tmp_path / "my run" / "journal.log"), str(tmp_path / "my run" / "artifacts")
    )
    assert "'" in line


def test_a_storage_password_is_neither_printed_nor_saved(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """A PostgreSQL URL with a password (the connection itself served by SQLite here): the
    dashboard line, the log, result.json and the studies' records carry only the masked URL."""
    import optuna_gamma.tuner.persistence.storage as storage_mod

    real = storage_mod._connect
    monkeypatch.setattr(
        storage_mod,
        "_connect",
        lambda url, shown, heartbeat=None, **kw: real(
            f"sqlite:///{tmp_path / 'pg.db'}", shown, heartbeat, **kw
        ),
    )
    monkeypatch.chdir(tmp_path)
    url = "postgresql://alice:s3cret@db.example:5432/runs"
    assert (
        main(
            [
                "tune",
                "--dataset",
                "digits",
                "--trials",
                "2",
                "--storage",
                url,
                "--run",
                "pw",
                "--no-progress",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "s3cret" not in captured.out + captured.err
    assert (
        "dashboard: optuna-dashboard 'postgresql://alice:***@db.example:5432/runs'" in captured.out
    )
    result = json.loads((tmp_path / "runs" / "pw" / "result.json").read_text())
    assert result["storage"] == "postgresql://alice:***@db.example:5432/runs"
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file():
            assert b"s3cret" not in path.read_bytes(), path
    assert b"s3cret" not in (tmp_path / "pg.db").read_bytes()
