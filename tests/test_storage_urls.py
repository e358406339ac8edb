"""Storage URLs (issue 15, point 7): a scheme without '://' is refused with the two right
spellings; a storage the user names never creates folders (a typo must not make /nonexistent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from optuna_gamma.tuner.persistence.storage import open_storage


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        (
            "sqlite:/runs.db",
            "write sqlite:///runs.db for 'runs.db' in the current folder, or sqlite:////runs.db",
        ),
        ("sqlite:runs.db", "write sqlite:///runs.db"),
        ("postgresql:/host/db", "write postgresql://host/db"),
    ],
)
def test_scheme_without_slashes_is_refused(
    spec: str, needle: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="is not a URL") as err:
        open_storage(spec)
    assert needle in str(err.value) and "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []  # no folder "sqlite:" and no file


@pytest.mark.parametrize("form", ["sqlite", "journal"])
def test_a_named_storage_in_a_missing_folder_is_refused(form: str, tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    spec = f"sqlite:///{missing / 'runs.db'}" if form == "sqlite" else str(missing / "j.log")
    with pytest.raises(ValueError, match="does not exist; create it first"):
        open_storage(spec)
    assert not (tmp_path / "nonexistent").exists()
    # the run directory's default storage is created with its folder
    _, shown = open_storage(None, default=str(missing / "journal.log"))
    assert Path(shown).is_file()


def test_cli_reports_the_missing_folder_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from optuna_gamma.tuner.cli import main

    spec = f"sqlite:///{tmp_path / 'nonexistent' / 'runs.db'}"
    with pytest.raises(SystemExit) as exit_:
        main(["tune", "--dataset", "digits", "--storage", spec, "--run-dir", str(tmp_path / "r")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if "error:" in x]
    assert "does not exist" in line and "Traceback" not in err
    assert not (tmp_path / "nonexistent").exists()


def _pop_all(url: str, barrier: Any, out: Any) -> None:
    """A worker process: pop WAITING trials of study ``q`` until none is left."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    from optuna_gamma.tuner.persistence.storage import get_storage

    study = optuna.load_study(study_name="q", storage=get_storage(url))
    barrier.wait()  # all start popping together
    popped = []
    while (trial_id := study._pop_waiting_trial_id()) is not None:
        popped.append(trial_id)
    out.put(popped)


@pytest.mark.parametrize("scheme", ["sqlite", "sqlite+pysqlite"])
def test_sqlite_queue_gives_each_waiting_trial_to_one_process(scheme: str, tmp_path: Path) -> None:
    """Four processes pop 200 enqueued trials from one SQLite file: each trial goes to exactly
    one of them. Optuna reads the trial ``FOR UPDATE``, which SQLite ignores; without the
    storage's ``BEGIN IMMEDIATE`` 16-20 of the 200 were popped twice (two workers then train
    one trial, and the second's tell fails: "Cannot tell a COMPLETE trial"). The URL with the
    driver's name (``sqlite+pysqlite:///``) gets the same set-up (it once got none of it)."""
    import multiprocessing

    import optuna

    from optuna_gamma.tuner.persistence.storage import get_storage

    url = f"{scheme}:///{tmp_path / 'q.db'}"
    study = optuna.create_study(study_name="q", storage=get_storage(url))
    for i in range(200):
        study.enqueue_trial({"x": i})
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_pop_all, args=(url, barrier, out)) for _ in range(4)]
    for p in procs:
        p.start()
    popped = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    ids = [t for chunk in popped for t in chunk]
    assert len(ids) == len(set(ids)) == 200


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///runs.db", "runs.db"),
        ("sqlite:///runs.db?timeout=30", "runs.db"),
        ("sqlite+pysqlite:///runs.db", "runs.db"),
        ("sqlite:////abs/runs.db?timeout=5&check_same_thread=false", "/abs/runs.db"),
        ("sqlite:///file:runs.db?mode=ro&uri=true", "runs.db"),
        ("sqlite:///file:///abs/runs.db?uri=true", "/abs/runs.db"),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///:memory:?cache=shared", None),
        ("sqlite+pysqlite:///:memory:", None),
        ("sqlite:///file::memory:?cache=shared&uri=true", None),
        ("sqlite:///file:db?mode=memory&uri=true", None),
    ],
)
def test_sqlite_file_is_the_file_sqlalchemy_opens(url: str, expected: str | None) -> None:
    from optuna_gamma.tuner.persistence.storage import sqlite_file

    assert sqlite_file(url) == (None if expected is None else Path(expected))


def _journal_mode(path: Path) -> str:
    import contextlib
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as con:
        return str(con.execute("PRAGMA journal_mode").fetchone()[0])


@pytest.mark.parametrize("query", ["?timeout=30", ""])
@pytest.mark.parametrize("scheme", ["sqlite", "sqlite+pysqlite"])
def test_an_sqlite_url_sets_up_and_checks_the_file_it_names(
    scheme: str, query: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A query (``?timeout=30``) or a driver name in the URL once made the tuner switch a file
    named ``runs.db?timeout=30`` to WAL (a stray empty database beside the real one, which stayed
    in rollback mode), check a worker's database under that name (refused although
    ``runs.db`` was there), or skip the set-up (``sqlite+pysqlite``)."""
    monkeypatch.chdir(tmp_path)
    url = f"{scheme}:///runs.db{query}"
    with pytest.raises(ValueError, match="no SQLite file at"):
        open_storage(url, existing=True)  # a worker needs the head's database
    open_storage(url)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.db"]
    assert _journal_mode(tmp_path / "runs.db") == "wal"
    open_storage(url, existing=True)  # now it is there
    open_storage(url, read_only=True)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm"))) == [
        "runs.db"
    ]


def test_in_memory_sqlite_urls_leave_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import optuna

    monkeypatch.chdir(tmp_path)
    for url in ("sqlite:///:memory:?cache=shared", "sqlite://", "sqlite+pysqlite:///:memory:"):
        storage, _ = open_storage(url)
        assert isinstance(storage, optuna.storages.RDBStorage)
    assert list(tmp_path.iterdir()) == []


def test_a_journal_file_given_as_a_path_object_opens(tmp_path: Path) -> None:
    """``TunerConfig(storage=Path(...))`` is accepted, so the storage must open from a
    ``pathlib.Path`` too (it was refused when the run started: "storage must be a URL")."""
    import optuna

    storage, shown = open_storage(tmp_path / "journal.log")
    assert isinstance(storage, optuna.storages.JournalStorage)
    assert shown == str(tmp_path / "journal.log")
    assert open_storage(str(tmp_path / "journal.log"))[1] == shown
