"""Trust boundaries (issue 16): what a storage, a data file or a state file may make us do.

Each test failed on main before its change: crafted storage records that made workers import
code or write elsewhere, files mistaken for journals, workers that could hang a run, leaked
credentials, forged states adopted silently.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
import re
import subprocess
import sys

import optuna
import pytest


torch = pytest.importorskip("torch")

from optuna_gamma.tuner import TunerConfig  # noqa: E402
from optuna_gamma.tuner.cli import main  # noqa: E402
from optuna_gamma.tuner.trainer_ref import load_trainer  # noqa: E402
from optuna_gamma.tuner.trainer_ref import TrainerRef  # noqa: E402


REPO = Path(__file__).resolve().parents[1]

_TRAINER_FILE = """
import pathlib
pathlib.Path({marker!r}).write_text("imported")


class Trainer:
    def __init__(self, width=1):
        self.width = width

    def build(self, seed, device):
        raise NotImplementedError

    def train_epoch(self, state, hparams, ctx):
        raise NotImplementedError

    def evaluate(self, state, split):
        raise NotImplementedError
"""


def _one_line_exit_2(capsys, args: list[str], needle: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("run '")]
    assert exc.value.code == 2 and len(lines) == 1, err
    assert "error:" in lines[0] and needle in lines[0] and "Traceback" not in err, err
    return lines[0]


def _crafted_run(tmp_path: Path, **record: object) -> str:
    """An SQLite storage holding run ``r`` whose recorded settings are ``record`` over a valid
    manifest of the built-in digits trainer (what a storage writer could forge)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    manifest = {
        "mode": "per-epoch",
        "run": "r",
        "run_dir": str(tmp_path / "r"),
        "artifacts": str(tmp_path / "r" / "artifacts"),
        "sampler": "random",
        "seed": 0,
        "trials": 2,
        "objective": "kappa1",
        "space": {
            "tuned": {
                "lr": {
                    "name": "FloatDistribution",
                    "attributes": {"low": 0.001, "high": 0.5, "log": True, "step": None},
                }
            },  # noqa: E501
            "fixed": {},
        },
        "warm_start": False,
        "trainer": "ThesisTrainer",
        "trainer_spec": {"builtin": {"dataset": "digits", "model": "mlp"}},
        "epochs_total": 1,
        **record,
    }
    study = optuna.create_study(study_name="r/epoch-001", storage=url, direction="maximize")
    study.set_user_attr("config", manifest)
    return url


# ------------------------------------------------------------------ 1: workers trust themselves
@pytest.mark.parametrize("target", ["os:system", "subprocess:getoutput", "EVIL"])
def test_a_worker_never_imports_the_trainer_a_storage_names(
    tmp_path: Path, capsys, target: str
) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.py"
    evil.write_text(_TRAINER_FILE.format(marker=str(marker)))
    target = f"{evil}:Trainer" if target == "EVIL" else target
    url = _crafted_run(
        tmp_path, trainer_spec={"import": target, "args": {"cmd": f"touch {marker}"}}
    )
    line = _one_line_exit_2(
        capsys,
        ["worker", "--storage", url, "--run", "r", "--artifacts", str(tmp_path / "r/artifacts")],
        "give this worker the same --trainer",
    )
    assert "never imports code named by a storage" in line
    assert not marker.exists() and "evil" not in sys.modules


def test_a_worker_refuses_a_run_recorded_with_other_trainer_code(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "imported"
    mine = tmp_path / "mine.py"
    mine.write_text(_TRAINER_FILE.format(marker=str(marker)))
    url = _crafted_run(tmp_path, trainer_spec={"import": "/srv/other.py:Trainer", "args": {}})
    base = ["worker", "--storage", url, "--run", "r", "--artifacts", str(tmp_path / "r/artifacts")]
    line = _one_line_exit_2(capsys, [*base, "--trainer", f"{mine}:Trainer"], "does not match")
    assert "started with --trainer '/srv/other.py:Trainer'" in line
    assert not marker.exists()  # compared before anything is imported
    # the same file name elsewhere (another machine's folder) but other arguments: refused too
    url2 = _crafted_run(
        tmp_path / "b", trainer_spec={"import": "/srv/mine.py:Trainer", "args": {"width": 2}}
    )
    args2 = [
        "worker",
        "--storage",
        url2,
        "--run",
        "r",
        "--artifacts",
        str(tmp_path / "b/r/artifacts"),
    ]
    line = _one_line_exit_2(capsys, [*args2, "--trainer", f"{mine}:Trainer"], "does not match")
    assert "trainer arguments {'width': 2}" in line and not marker.exists()


def test_a_matching_trainer_reference_is_accepted() -> None:
    ref = TrainerRef("/home/me/code/mine.py:make", {"width": 2})
    assert ref.mismatch({"import": "/srv/other/mine.py:make", "args": {"width": 2}}) is None
    assert ref.mismatch({"import": "mine:make", "args": {"width": 2}}) is not None
    assert ref.mismatch({"builtin": {"dataset": "digits"}}) is not None
    mod = TrainerRef("pkg.mod:make")
    assert mod.mismatch({"import": "pkg.mod:make", "args": {}}) is None
    assert mod.mismatch({"import": "pkg.other:make", "args": {}}) is not None
    with pytest.raises(ValueError, match="MODULE:FACTORY"):
        TrainerRef("no-colon")
    with pytest.raises(ValueError, match="JSON values"):
        TrainerRef("m:f", {"x": object()})
    with pytest.raises(ValueError, match="trainer_ref must be a TrainerRef"):
        TunerConfig(trainer_ref="os:system")  # type: ignore[arg-type]


def test_loading_a_trainer_sets_nothing_on_the_users_object(tmp_path: Path) -> None:
    mine = tmp_path / "mine2.py"
    mine.write_text(_TRAINER_FILE.format(marker=str(tmp_path / "m")))
    trainer = load_trainer(TrainerRef(f"{mine}:Trainer", {"width": 3}))
    assert trainer.width == 3 and vars(trainer) == {"width": 3}


def test_a_trainer_file_imports_the_modules_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `python FILE` puts FILE's folder first on the path, so a trainer file that imports its
    # own helper module runs; --trainer FILE:FACTORY loads it the same way (before: "cannot
    # import 'trainer.py' (No module named ...)")
    monkeypatch.setattr(sys, "path", list(sys.path))
    folder = tmp_path / "project"
    folder.mkdir()
    helper = f"helper_{os.getpid()}"
    (folder / f"{helper}.py").write_text(
        _TRAINER_FILE.format(marker=str(tmp_path / "m")), encoding="utf-8"
    )
    (folder / "trainer_file.py").write_text(
        f"from {helper} import Trainer\n\n\ndef make(width=1):\n    return Trainer(width)\n",
        encoding="utf-8",
    )
    monkeypatch.delitem(sys.modules, helper, raising=False)
    trainer = load_trainer(TrainerRef(f"{folder / 'trainer_file.py'}:make", {"width": 2}))
    assert trainer.width == 2 and sys.path[0] == str(folder.resolve())
    monkeypatch.delitem(sys.modules, helper)


_FAULTY = {
    # a script's own command line read at its top level: argv holds only the file, as under
    # `python FILE` (before: "invalid literal for int() ... '--trainer'", no file or line)
    "argv": ("import sys\nN = int(sys.argv[2])\n", "importing", "IndexError", 2),
    "syntax": ("x = (\n", "importing", "SyntaxError", 1),
    # sys.exit at import (before: the process ended with status 3 and nothing said)
    "exit": ("import sys\n\nsys.exit(3)\n", "importing", "SystemExit(3)", 3),
    # the factory's own failure (before: the bare "[Errno 2] ..." without its origin)
    "factory": (
        "def make():\n    return open('/nonexistent/data.bin')\n",
        "calling make()",
        "FileNotFoundError",
        2,
    ),
}


@pytest.mark.parametrize("case", sorted(_FAULTY))
def test_a_trainer_file_that_fails_is_one_line_naming_its_error_and_place(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    source, what, error, line = _FAULTY[case]
    path = tmp_path / f"faulty_{case}.py"
    path.write_text(source, encoding="utf-8")
    args = ["tune", "--trainer", f"{path}:make", "--budget", "4", "--run-dir", str(tmp_path)]
    said = _one_line_exit_2(capsys, args, f"{what} ")
    assert error in said and f"{path}:{line}" in said
    if what == "importing":  # as a failed import leaves no module behind
        assert f"faulty_{case}" not in sys.modules
    if case == "exit":
        assert 'if __name__ == "__main__":' in said


def test_a_script_that_parses_its_command_line_at_import_gets_its_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # before: its parser read the tuner's arguments and exited with its own usage line
    monkeypatch.setattr(sys, "path", list(sys.path))
    path = tmp_path / "script_with_args.py"
    path.write_text(
        "import argparse\n"
        "parser = argparse.ArgumentParser()\n"
        "parser.add_argument('--width', type=int, default=4)\n"
        "args = parser.parse_args()\n"
        + _TRAINER_FILE.format(marker=str(tmp_path / "m"))
        + "\n\ndef make():\n    return Trainer(args.width)\n",
        encoding="utf-8",
    )
    argv = list(sys.argv)
    trainer = load_trainer(TrainerRef(f"{path}:make"))
    assert trainer.width == 4 and sys.argv == argv
    # a module found from the working directory, as `python -m MODULE` runs it
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "script_with_args", raising=False)
    trainer = load_trainer(TrainerRef("script_with_args:make"))
    assert trainer.width == 4 and sys.argv == argv
    monkeypatch.delitem(sys.modules, "script_with_args")


@pytest.mark.parametrize("given", [None, "elsewhere"])
def test_a_worker_writes_only_where_its_own_command_line_says(
    tmp_path: Path, capsys, given: str | None
) -> None:
    crafted = tmp_path / "crafted" / "place"
    url = _crafted_run(tmp_path, artifacts=str(crafted))
    args = ["worker", "--storage", url, "--run", "r"]
    if given is None:
        _one_line_exit_2(capsys, args, "give --artifacts")
    else:
        _one_line_exit_2(
            capsys, [*args, "--artifacts", str(tmp_path / given)], "does not match run 'r'"
        )
    assert not (tmp_path / "crafted").exists() and not (tmp_path / "elsewhere").exists()


def test_a_store_is_known_by_its_marker_wherever_it_is_reached(tmp_path: Path) -> None:
    import shutil

    from optuna.artifacts import FileSystemArtifactStore

    from optuna_gamma.tuner.persistence.states import reach_artifact_store
    from optuna_gamma.tuner.persistence.states import StateStore

    def store(folder: Path) -> StateStore:
        reached = reach_artifact_store(str(folder))
        assert reached is not None
        return StateStore(reached, str(folder))

    (tmp_path / "a").mkdir()
    record = StateStore(FileSystemArtifactStore(tmp_path / "a")).mark("r")
    assert "training states of run 'r'" in (tmp_path / "a" / record["id"]).read_text()
    shutil.copytree(tmp_path / "a", tmp_path / "mnt" / "b")  # the same files, another path
    assert store(tmp_path / "a").holds(record, "r")
    assert store(tmp_path / "mnt" / "b").holds(record, "r")
    (tmp_path / "c").mkdir()
    assert not store(tmp_path / "c").holds(record, "r")  # another store
    (tmp_path / "a" / record["id"]).write_text("replaced")
    assert not store(tmp_path / "a").holds(record, "r")
    assert reach_artifact_store(str(tmp_path / "none")) is None
    assert not (tmp_path / "none").exists()  # reaching creates nothing
    for forged in (
        "x",
        {"id": record["id"]},
        {"id": "../../etc/hostname", "sha256": record["sha256"]},
        {"id": record["id"], "sha256": "not-hex"},
    ):
        with pytest.raises(ValueError, match="run 'r' has a malformed record"):
            store(tmp_path / "c").holds(forged, "r")

    class Unreachable(FileSystemArtifactStore):  # a store whose server does not answer
        def open_reader(self, artifact_id: str):
            raise ConnectionError("Could not connect to the endpoint URL\n(details)")

    from optuna_gamma.tuner.errors import TunerError

    with pytest.raises(TunerError, match=r"cannot read the artifact store 'S3': Could not .*URL$"):
        StateStore(Unreachable(tmp_path / "a"), "S3").holds(record, "r")


def test_a_worker_artifacts_url_matches_with_or_without_a_trailing_slash() -> None:
    from types import SimpleNamespace

    from optuna_gamma.tuner.execution.worker_setup import worker_artifacts

    for recorded, given in (
        ("s3://bucket/runs/cifar", "s3://bucket/runs/cifar/"),
        ("s3://bucket/runs/cifar/", "s3://bucket/runs/cifar"),
    ):
        manifest = SimpleNamespace(artifacts=recorded)
        assert worker_artifacts(manifest, "r", given) == given  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="does not match run 'r'"):
        worker_artifacts(
            SimpleNamespace(artifacts="s3://bucket/runs/cifar"),  # type: ignore[arg-type]
            "r",
            "s3://bucket/runs/cifar2",
        )


def test_workers_module_does_not_import_the_cli() -> None:
    code = (
        "import sys, optuna_gamma.tuner.execution.workers, "
        "optuna_gamma.tuner.execution.worker_setup; "
        "print('optuna_gamma.tuner.cli' in sys.modules)"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------ 3: nothing can hang a run
def test_standalone_workers_refuse_a_journal_storage(tmp_path: Path, capsys) -> None:
    journal = tmp_path / "journal.log"
    journal.write_bytes(b"")
    _one_line_exit_2(
        capsys,
        ["worker", "--storage", str(journal), "--run", "r", "--artifacts", str(tmp_path / "a")],
        "is a journal file, which has no heartbeat",
    )


def test_a_coordinator_without_workers_refuses_a_journal(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _one_line_exit_2(
        capsys,
        ["tune", "--dataset", "digits", "--coordinate", "--no-progress", "--run", "c"],
        "coordinate without local workers needs an RDB storage",
    )


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTUNA_GAMMA_CRASH")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), **extra)
    return env


def _popen(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "optuna_gamma", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=env,
    )


def _poll(condition, what: str, limit: float = 120.0) -> None:
    import time

    end = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < end, f"gave up waiting for {what}"
        time.sleep(0.2)


@pytest.mark.slow
def test_a_head_fails_and_retries_the_trial_of_a_killed_worker_by_itself(tmp_path: Path) -> None:
    """The only worker of a head (--coordinate, SQLite) is killed mid-trial. The head alone
    fails that trial and enqueues its retry (no other worker reaches the barrier to do it); a
    worker started later, from its own --artifacts and the built-in trainer, finishes the run."""
    from optuna.trial import TrialState

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    shared = str(tmp_path / "shared")
    head = _popen(
        "tune",
        *("--dataset", "digits", "--epochs", "1", "--trials", "3", "--no-progress"),
        *("--sampler", "random", "--coordinate", "--storage", url, "--artifacts", shared),
        *("--run", "h", "--heartbeat-interval", "1", "--grace-period", "2"),
        cwd=tmp_path,
        env=_env(),
    )
    worker_args = ["worker", "--storage", url, "--run", "h", "--artifacts", shared]
    try:

        def trials(state: TrialState) -> list:
            try:
                study = optuna.load_study(study_name="h/epoch-001", storage=url)
            except KeyError:
                return []
            return study.get_trials(deepcopy=False, states=(state,))

        def prepared() -> bool:
            assert head.poll() is None, head.communicate()[1][-2000:]
            try:
                study = optuna.load_study(study_name="h/epoch-001", storage=url)
            except KeyError:
                return False
            return "prepared" in study.user_attrs

        _poll(prepared, "the head's first study")
        doomed = _popen(*worker_args, cwd=tmp_path, env=_env(OPTUNA_GAMMA_CRASH_AT="after_save:1"))
        assert doomed.wait(timeout=300) == -9, (
            doomed.stderr.read()[-2000:] if doomed.stderr else ""
        )
        _poll(  # (the policy's other slots of the epoch may be queued as well)
            lambda: (
                len(trials(TrialState.FAIL)) == 1
                and any(
                    t.system_attrs.get("failed_trial") is not None
                    for t in trials(TrialState.WAITING)
                )
            ),
            "the head to fail and retry the dead worker's trial",
        )
        assert head.poll() is None  # still coordinating
        worker = _popen(*worker_args, cwd=tmp_path, env=_env())
        assert worker.wait(timeout=300) == 0, worker.stderr.read()[-2000:] if worker.stderr else ""
        out, err = head.communicate(timeout=300)
        assert head.returncode == 0, err[-3000:]
    finally:
        if head.poll() is None:
            head.kill()
    study = optuna.load_study(study_name="h/epoch-001", storage=url)
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") is not None]
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) >= 3 and len(retried) == 1
    assert "adopted" in study.user_attrs


# ------------------------------------------------------------------ 2: no file is truncated
_NOTES = b"epoch,acc\n1,0.91\n2,0.93"


@pytest.mark.parametrize("content", [_NOTES, b"\x89PNG\r\n\x1a\n\x00\x00binary"])
def test_report_on_a_file_that_is_not_a_journal_refuses_and_keeps_it(
    tmp_path: Path, capsys, content: bytes
) -> None:
    notes = tmp_path / "notes.csv"
    notes.write_bytes(content)
    line = _one_line_exit_2(
        capsys,
        ["report", "--storage", str(notes), "-o", str(tmp_path / "r.html")],
        "is not an Optuna journal",
    )
    assert str(notes) in line and ("text starting 'epoch,acc'" in line or "binary" in line)
    assert notes.read_bytes() == content and not (tmp_path / "r.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.csv"]


def test_tune_on_a_file_that_is_not_a_journal_refuses_and_keeps_it(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    precious = tmp_path / "precious.txt"
    precious.write_bytes(_NOTES)
    _one_line_exit_2(
        capsys,
        ["tune", "--dataset", "digits", "--no-progress", "--storage", str(precious)],
        "is not an Optuna journal (it holds text starting 'epoch,acc')",
    )
    assert precious.read_bytes() == _NOTES


def test_report_reads_a_journal_without_changing_it(tmp_path: Path) -> None:
    from optuna_gamma.tuner.persistence.storage import open_storage

    journal = tmp_path / "runs.log"
    storage, _ = open_storage(str(journal))
    optuna.create_study(study_name="x/epoch-001", storage=storage).set_user_attr("k", 1)
    with open(journal, "ab") as f:  # a torn last record: a writer may still be appending it
        f.write(b'{"op_code": 5, "worker_id"')
    before = journal.read_bytes()
    storage, _ = open_storage(str(journal), read_only=True)
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == ["x/epoch-001"]
    assert journal.read_bytes() == before  # the read-only open did not cut the tail
    open_storage(str(journal))  # a writer does (the torn record was never acknowledged)
    assert journal.read_bytes() != before and journal.read_bytes().endswith(b"\n")
    with pytest.raises(ValueError, match="no journal file"):
        open_storage(str(tmp_path / "missing.log"), read_only=True)
    assert not (tmp_path / "missing.log").exists()


def test_report_does_not_change_an_sqlite_file(tmp_path: Path) -> None:
    import hashlib

    from optuna_gamma.tuner.persistence.storage import open_storage

    url = f"sqlite:///{tmp_path / 'r.db'}"
    optuna.create_study(study_name="x/epoch-001", storage=url)
    digest = hashlib.sha256((tmp_path / "r.db").read_bytes()).hexdigest()
    storage, _ = open_storage(url, read_only=True)
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == ["x/epoch-001"]
    del storage
    assert hashlib.sha256((tmp_path / "r.db").read_bytes()).hexdigest() == digest
    assert not (tmp_path / "r.db-wal").exists()  # not switched to write-ahead logging


# ------------------------------------------------------------------ 4: every credential form
_CREDENTIAL_URLS = [
    "postgresql://alice:s3cret@db.example:5432/runs",
    "postgresql+psycopg2://alice:s3cret@db.example/runs",
    "postgresql://alice:p%40s3cret@db.example/runs",  # percent-encoded
    "postgresql://alice@db.example/runs?password=s3cret",
    "postgresql://db.example/runs?user=alice&password=s3cret&sslmode=require",
    "postgresql:///runs?host=/var/run/postgresql&PASSWORD=s3cret",
    "postgresql://alice@db.example/runs?sslpassword=s3cret",
    "postgresql://alice:s3cret@db.example/runs?password=s3cret",
    "mysql+pymysql://alice@db.example/runs?passwd=s3cret",
    "mysql://alice:s3cret@db.example/runs",
    "mssql+pyodbc:///?odbc_connect=DRIVER%3D%7BODBC%7D%3BSERVER%3Dh%3BUID%3Du%3BPWD%3Ds3cret",
    "weird://alice:s3c@ret@host/x",  # not a URL SQLAlchemy parses
]


@pytest.mark.parametrize("url", _CREDENTIAL_URLS)
def test_every_credential_form_is_masked(url: str) -> None:
    from optuna_gamma.tuner.persistence.storage import mask_url

    shown = mask_url(url)
    assert "s3cret" not in shown and "s3c" not in shown and "***" in shown, shown
    assert shown.split("://")[0] == url.split("://")[0]  # still says what it is


def test_masking_keeps_urls_without_secrets() -> None:
    from optuna_gamma.tuner.persistence.storage import mask_url

    for url in ("sqlite:////tmp/x.db", "postgresql://u@h/db?application_name=mypassword"):
        assert mask_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://alice@db.example:5432/runs?password=s3cret",
        "postgresql://db.example/runs?user=alice&password=s3cret",
    ],
)
def test_a_query_password_is_neither_printed_nor_saved(
    tmp_path: Path, monkeypatch, capsys, url: str
) -> None:
    import optuna_gamma.tuner.persistence.storage as storage_mod

    real = storage_mod._connect
    monkeypatch.setattr(  # the connection itself served by SQLite
        storage_mod,
        "_connect",
        lambda _url, shown, heartbeat=None, **kw: real(
            f"sqlite:///{tmp_path / 'pg.db'}", shown, heartbeat, **kw
        ),
    )
    monkeypatch.chdir(tmp_path)
    args = ["tune", "--dataset", "digits", "--trials", "2", "--storage", url, "--run", "pw"]
    assert main([*args, "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "s3cret" not in captured.out + captured.err
    assert "password=***" in captured.out
    result = json.loads((tmp_path / "runs" / "pw" / "result.json").read_text())
    assert "s3cret" not in json.dumps(result) and "password=***" in result["storage"]
    for path in [*(tmp_path / "runs").rglob("*"), tmp_path / "pg.db"]:
        if path.is_file():
            assert b"s3cret" not in path.read_bytes(), path


def test_pgpassword_is_never_echoed(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PGPASSWORD", "s3cret-env")
    monkeypatch.chdir(tmp_path)
    for args in (
        ["tune", "--dataset", "digits", "--storage", "postgresql://u@127.0.0.1:1/db"],
        ["worker", "--storage", "postgresql://u@127.0.0.1:1/db?password=s3cret", "--run", "x"],
    ):
        line = _one_line_exit_2(capsys, args, "cannot open storage")
        assert "s3cret" not in line


# ------------------------------------------------------------------ 5: states bound to trials
@pytest.fixture(scope="module")
def digits():
    from optuna_gamma.tuner import ThesisTrainer

    trainer = ThesisTrainer("digits")
    trainer.data
    return trainer


def _cfg(tmp_path: Path, run: str = "f", **kw) -> TunerConfig:
    return TunerConfig(
        run=run, run_dir=str(tmp_path / run), sampler="random", trials_per_epoch=3, seed=4, **kw
    )


def _forge_zero_state(path: Path) -> None:
    """Replace a stored state by a well-formed one of the same layout with all-zero tensors."""

    def zero(obj):
        if isinstance(obj, torch.Tensor):
            return torch.zeros_like(obj)
        if isinstance(obj, dict):
            return {k: zero(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [zero(v) for v in obj]
        return obj

    payload = torch.load(path, weights_only=True)
    payload["components"] = zero(payload["components"])
    torch.save(payload, path)


def test_a_forged_adopted_state_is_recomputed_with_a_warning_naming_the_trial(
    digits, tmp_path: Path, caplog
) -> None:
    from optuna_gamma.tuner import get_storage
    from optuna_gamma.tuner import tune_per_epoch

    reference = tune_per_epoch(digits, None, _cfg(tmp_path, "ref", epochs=2))
    one = tune_per_epoch(digits, None, _cfg(tmp_path, epochs=1))
    study = optuna.load_study(study_name="f/epoch-001", storage=get_storage(one.storage))
    adopted = study.user_attrs["adopted"]
    best = study.best_trial
    # the adopted record's digest is that of the file it names (a copy kept for the study)
    kept = (Path(one.artifacts) / adopted["state"]).read_bytes()
    assert adopted["state_sha256"] == hashlib.sha256(kept).hexdigest()
    assert best.user_attrs["state_sha256"]
    assert "state_sha256" not in adopted["metrics"]
    _forge_zero_state(Path(one.artifacts) / adopted["state"])
    with caplog.at_level("WARNING", logger="optuna_gamma"):
        two = tune_per_epoch(digits, None, _cfg(tmp_path, epochs=2))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    named = [
        w for w in warnings if f"adopted trial {adopted['trial']} of study 'f/epoch-001'" in w
    ]
    assert named and "SHA-256 differs" in named[0], warnings
    assert not any("not deterministic" in w for w in warnings), warnings  # bit-identical here
    assert [(e.params, e.value) for e in two.schedule] == [
        (e.params, e.value) for e in reference.schedule
    ]
    assert two.test == reference.test  # the forged weights did not reach the final model


def test_the_state_store_refuses_a_state_whose_digest_differs(digits, tmp_path: Path) -> None:
    """A well-formed state with other weights than its trial stored is refused by its digest."""
    from optuna_gamma.tuner import get_storage
    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner.persistence.states import StateStore
    from optuna_gamma.tuner.persistence.states import StateUnavailableError

    one = tune_per_epoch(digits, None, _cfg(tmp_path, epochs=1, keep_trial_states=True))
    study = optuna.load_study(study_name="f/epoch-001", storage=get_storage(one.storage))
    best = study.best_trial
    path = Path(one.artifacts) / best.user_attrs["state"]
    _forge_zero_state(path)
    from optuna.artifacts import FileSystemArtifactStore

    store = StateStore(FileSystemArtifactStore(one.artifacts))
    with pytest.raises(StateUnavailableError, match="not the one its trial stored"):
        store.load(best.user_attrs["state"], best.user_attrs["state_sha256"])
    assert store.load(best.user_attrs["state"])  # well-formed: only the digest tells


# ------------------------------------------------------------------ 8: one line, not a traceback
def _cli(*args: str, cwd: Path, limit_bytes: int | None = None) -> subprocess.CompletedProcess:
    import resource

    def limit() -> None:  # writes past this size fail with EFBIG, as on a full disk
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(
        [sys.executable, "-m", "optuna_gamma", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_env(OPTUNA_GAMMA_CACHE=str(cwd / "cache")),
        timeout=600,
        preexec_fn=limit,
    )


def _only_line(proc: subprocess.CompletedProcess, needle: str) -> str:
    lines = [ln for ln in proc.stderr.strip().splitlines() if not ln.startswith("run '")]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert needle in lines[0] and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return lines[0]


def test_a_truncated_mnist_file_is_one_line_naming_it(tmp_path: Path) -> None:
    import gzip

    raw = tmp_path / "data" / "mnist"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1"):
        name += "-ubyte"
        (raw / f"{name}.gz").write_bytes(gzip.compress(os.urandom(4096)))
    damaged = raw / "train-images-idx3-ubyte.gz"
    damaged.write_bytes(damaged.read_bytes()[:1000])
    proc = _cli("tune", "--dataset", "mnist", "--data-root", str(tmp_path / "data"), cwd=tmp_path)
    line = _only_line(proc, "is damaged")
    assert str(damaged) in line and "EOFError" in line


@pytest.mark.parametrize("kind", ["dotdot", "abs-symlink"])
def test_a_crafted_cifar_archive_is_one_line(tmp_path: Path, kind: str) -> None:
    import io
    import tarfile

    root = tmp_path / "data"
    root.mkdir()
    archive = root / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/readme")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
        if kind == "dotdot":
            evil = tarfile.TarInfo("../../escaped.txt")
            evil.size = 4
            tar.addfile(evil, io.BytesIO(b"evil"))
        else:
            evil = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
            evil.type, evil.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(evil)
    proc = _cli("tune", "--dataset", "cifar10", "--data-root", str(root), cwd=tmp_path)
    line = _only_line(proc, "refusing to extract")
    assert str(archive) in line
    assert not list(tmp_path.rglob("escaped.txt"))


_FAILING_TRAINER = """
import errno
import torch
from optuna.distributions import FloatDistribution
from optuna_gamma.tuner import TrainingState


class Full:
    def search_space(self):
        return {"lr": FloatDistribution(1e-3, 1e-1, log=True)}

    def build(self, seed, device):
        model = torch.nn.Linear(2, 2)
        return TrainingState(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))

    def train_epoch(self, state, hparams, ctx):
        raise OSError(errno.ENOSPC, "No space left on device")

    def evaluate(self, state, split):
        return {"accuracy": 0.5, "loss": 1.0}
"""


def test_a_full_disk_inside_a_trial_is_one_line_naming_the_paths(tmp_path: Path) -> None:
    (tmp_path / "full.py").write_text(_FAILING_TRAINER)
    proc = _cli("tune", "--trainer", "full.py:Full", "--run", "d", "--no-progress", cwd=tmp_path)
    line = _only_line(proc, "No space left on device")
    assert "failed with parameters" not in proc.stderr  # Optuna's warning and traceback
    assert f"run directory {os.path.join('runs', 'd')!r}" in line and "journal.log" in line


def test_a_file_size_limit_is_one_line_naming_the_path(tmp_path: Path) -> None:
    proc = _cli(
        *("tune", "--dataset", "digits", "--run", "l", "--no-progress"),
        cwd=tmp_path,
        limit_bytes=20_000,  # a training state (about 42 kB) does not fit
    )
    line = _only_line(proc, "File too large")
    assert "basic_ios" not in proc.stderr and "training state initial.pt" in line


def test_a_journal_with_an_unknown_record_is_one_line_naming_it(tmp_path: Path, capsys) -> None:
    journal = tmp_path / "j.log"
    journal.write_text(
        '{"op_code": 0, "worker_id": "x", "study_name": "a", "directions": [1]}\n'
        '{"op_code": 99, "worker_id": "x"}\n'
    )
    line = _one_line_exit_2(
        capsys,
        ["report", "--storage", str(journal), "-o", str(tmp_path / "r.html")],
        "is not a usable Optuna journal",
    )
    assert str(journal) in line


def test_a_categorical_momentum_of_strings_is_refused_by_name(digits, tmp_path: Path) -> None:
    from optuna.distributions import CategoricalDistribution
    from optuna.distributions import FloatDistribution

    from optuna_gamma.tuner import tune_per_epoch

    space = {
        "lr": FloatDistribution(1e-3, 0.5, log=True),
        "momentum": CategoricalDistribution(["0.9", "0.5"]),
    }
    with pytest.raises(ValueError, match=r"hyperparameter 'momentum' = '0\.\d' \(str\)"):
        tune_per_epoch(digits, space, _cfg(tmp_path))


# ------------------------------------------------------------------ 9: the words are true
@pytest.mark.parametrize(
    ("setting", "needle"),
    [
        ({"sampler": "bogus"}, "unknown sampler 'bogus'"),
        ({"objective": "kappa9"}, "unknown objective 'kappa9'"),
        ({"device": "tpu9"}, "unknown device 'tpu9'"),
        ({"storage": 42}, "storage must be a URL, a path or an Optuna storage object, got 42"),
        ({"storage": ""}, "storage must not be an empty string"),
        ({"artifacts": 3.5}, "artifacts must be a URL, a path or an Optuna artifacts object"),
    ],
)
def test_tuner_config_validates_on_creation(setting: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        TunerConfig(**setting)


def test_tuner_config_accepts_what_the_tuner_understands(tmp_path: Path) -> None:
    from optuna.artifacts import FileSystemArtifactStore

    cfg = TunerConfig(
        sampler="grid:5",
        objective="kappa2:0.2",
        device=torch.device("cpu"),
        storage=optuna.storages.InMemoryStorage(),
        artifacts=FileSystemArtifactStore(str(tmp_path)),
    )
    assert cfg.sampler == "grid:5"
    assert TunerConfig(device="cuda:1", storage=tmp_path / "j.log").device == "cuda:1"


def test_a_huge_number_of_preliminary_samples_is_refused_at_construction() -> None:
    from optuna_gamma import GammaBOSampler

    with pytest.raises(ValueError, match=r"n_preliminary_samples must be <= 1048576"):
        GammaBOSampler(n_preliminary_samples=10**12)
    GammaBOSampler(n_preliminary_samples=1 << 20)


# ------------------------------------------------------------------ 7: a dead process's lock
_HOLD_AND_DIE = """
import os, sys
from optuna_gamma.tuner.persistence.journal_lock import OwnedSymlinkLock
OwnedSymlinkLock(sys.argv[1]).acquire()
os._exit(0)  # dies holding the lock, as under kill -9
"""

_ACQUIRE = """
import sys
from optuna_gamma.tuner.persistence.journal_lock import OwnedSymlinkLock
lock = OwnedSymlinkLock(sys.argv[1], grace_period=None)  # no grace period: only the owner check
lock.acquire()
lock.release()
print("acquired")
"""


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,  # a hang is a failure, not a slow pass
    )


def test_a_dead_processs_journal_lock_is_taken_over(tmp_path: Path) -> None:
    journal = tmp_path / "journal.log"
    journal.write_bytes(b"")
    lock = Path(f"{journal}.lock")
    assert _python(_HOLD_AND_DIE, str(journal)).returncode == 0
    assert lock.is_symlink() and json_owner(lock)["pid"] > 0  # left behind by the dead process
    out = _python(_ACQUIRE, str(journal))
    assert out.returncode == 0 and out.stdout.strip() == "acquired", out.stderr[-2000:]
    assert not lock.is_symlink() and not Path(f"{lock}.owner").exists()


def json_owner(lock: Path) -> dict:
    return json.loads(Path(f"{lock}.owner").read_text())


def test_a_live_or_unknown_holder_is_not_broken(tmp_path: Path) -> None:
    from optuna_gamma.tuner.persistence.journal_lock import OwnedSymlinkLock

    journal = tmp_path / "journal.log"
    journal.write_bytes(b"")
    mine = OwnedSymlinkLock(str(journal))
    mine.acquire()
    other = OwnedSymlinkLock(str(journal))
    held = other._link_identity()
    assert held is not None and not other._holder_is_dead(held)  # this process is alive
    mine.release()
    os.symlink(str(journal), f"{journal}.lock")  # a plain Optuna lock: no owner record
    held = other._link_identity()
    assert held is not None and not other._holder_is_dead(held)
    stale = {"host": "elsewhere", "pid": 999999, "link": list(held)}
    Path(f"{journal}.lock.owner").write_text(json.dumps(stale))
    assert not other._holder_is_dead(held)  # another host's process cannot be checked


def test_journal_storages_use_the_owned_lock(tmp_path: Path) -> None:
    from optuna_gamma.tuner.persistence.journal_lock import OwnedSymlinkLock
    from optuna_gamma.tuner.persistence.storage import open_storage

    storage, _ = open_storage(str(tmp_path / "j.log"))
    assert isinstance(storage._backend._lock, OwnedSymlinkLock)


# ------------------------------------------------------------------ 10: plain-text run names
def test_run_names_from_the_storage_are_plain_text_in_the_report(digits, tmp_path: Path) -> None:
    from optuna_gamma.tuner import get_storage
    from optuna_gamma.tuner import tune_per_epoch
    from optuna_gamma.tuner.reporting.report import build_report

    one = tune_per_epoch(digits, None, _cfg(tmp_path, "plain", epochs=1))
    storage = get_storage(one.storage)
    crafted = '<a href="https://evil.example/">click</a>'
    optuna.copy_study(
        from_study_name="plain/epoch-001",
        from_storage=storage,
        to_storage=storage,
        to_study_name=f"{crafted}/epoch-001",
    )
    page = Path(build_report(storage, str(tmp_path / "r.html"))).read_text()
    assert "evil.example" in page  # the crafted run is in the report ...
    # ... as text: no live <a href> in the page nor in plotly's figure JSON (where "<" may be
    # written as \u003c, "/" as \u002f and quotes escaped)
    assert re.search(r'(<|\\u003c)a href=\\*"https:(/|\\u002f)+evil', page) is None
    assert "&lt;a href=" in page


def test_a_trial_asked_beyond_the_epochs_t_is_pruned_before_training() -> None:
    """Two workers that both saw T - 1 trials ask one each: the later one is pruned."""
    from optuna.trial import TrialState

    from optuna_gamma.tuner.execution.workers import surplus_trial

    study = optuna.create_study()
    for x in (0.1, 0.2):
        study.tell(study.ask(), x)
    first, second = study.ask(), study.ask()  # both asked when 2 of T = 3 were complete
    surplus_trial(study, first.number, 3)  # the third trial of the epoch: trains
    with pytest.raises(optuna.TrialPruned):
        surplus_trial(study, second.number, 3)
    study.tell(second, state=TrialState.PRUNED)
    study.tell(first, state=TrialState.FAIL)  # a failed trial's retry takes its place
    study.enqueue_trial({"x": 0.5})
    retry = study.ask()
    surplus_trial(study, retry.number, 3)


@pytest.mark.slow
def test_local_workers_train_exactly_t_trials_per_epoch(tmp_path: Path) -> None:
    from optuna.trial import TrialState

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "optuna_gamma",
            *("tune", "--dataset", "digits", "--epochs", "3", "--trials", "3"),
            *("--sampler", "random", "--workers", "3", "--run", "t", "--no-progress"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    from optuna_gamma.tuner import get_storage

    storage = get_storage(str(tmp_path / "runs" / "t" / "journal.log"))
    for e in (1, 2, 3):
        study = optuna.load_study(study_name=f"t/epoch-{e:03d}", storage=storage)
        assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 3


def test_load_result_reads_a_run_directory_and_refuses_what_is_not_a_result(
    tmp_path: Path,
) -> None:
    """``load_result`` takes the file or its run directory; a file that is not a result (a
    corrupt or foreign one) is a ValueError naming it, never a traceback from deep inside."""
    from optuna_gamma.tuner import load_result
    from optuna_gamma.tuner import PerEpochResult
    from optuna_gamma.tuner import ThesisTrainer
    from optuna_gamma.tuner import tune_per_epoch

    run_dir = tmp_path / "r"
    res = tune_per_epoch(
        ThesisTrainer("digits"),
        None,
        TunerConfig(run="r", run_dir=str(run_dir), budget=2, sampler="random", progress=False),
    )
    assert load_result(run_dir) == load_result(run_dir / "result.json") == res
    assert isinstance(res, PerEpochResult)
    good = json.loads((run_dir / "result.json").read_text())
    bad = tmp_path / "bad"
    bad.mkdir()
    cases = {
        b"{not json": "not JSON",
        b"\xff\xfe\x00": "not JSON",
        b"[1, 2]": "not a JSON object",
        json.dumps({**good, "extra": 1}).encode(): "unexpected keyword argument 'extra'",
        json.dumps({**good, "schedule": [1]}).encode(): "must be a mapping",
        json.dumps({k: v for k, v in good.items() if k != "schedule"}).encode(): "no 'schedule'",
    }
    for text, why in cases.items():
        (bad / "result.json").write_bytes(text)
        with pytest.raises(ValueError, match=r"bad/result\.json' is not a result file.*" + why):
            load_result(bad)
    with pytest.raises(FileNotFoundError, match=r"no result at .*nothing/result\.json'"):
        load_result(tmp_path / "nothing" / "result.json")
    # A run directory without the file: a run that has not finished (file or folder given).
    (run_dir / "result.json").unlink()
    for given in (run_dir, run_dir / "result.json"):
        with pytest.raises(FileNotFoundError, match=r"'.*/r' holds no result.json: a run wr"):
            load_result(given)


def test_load_result_names_the_default_run_directory_of_a_run_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``load_result("mnist")`` (a run name, not a path) says where a run of that name is."""
    from optuna_gamma.tuner import load_result

    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"^no result at 'mnist': pass the run's dir\S* "):
        load_result("mnist")
    (tmp_path / "runs" / "mnist").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"a run named 'mnist' is in 'runs/mnist'"):
        load_result("mnist")
