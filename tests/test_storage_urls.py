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


def test_sqlite_queue_gives_each_waiting_trial_to_one_process(tmp_path: Path) -> None:
    """Four processes pop 200 enqueued trials from one SQLite file: each trial goes to exactly
    one of them. Optuna reads the trial ``FOR UPDATE``, which SQLite ignores; without the
    storage's ``BEGIN IMMEDIATE`` 16-20 of the 200 were popped twice (two workers then train
    one trial, and the second's tell fails: "Cannot tell a COMPLETE trial")."""
    import multiprocessing

    import optuna

    from optuna_gamma.tuner.persistence.storage import get_storage

    url = f"sqlite:///{tmp_path / 'q.db'}"
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
