"""optuna-dashboard serves the driver's storage: studies, trials and user attributes over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
import json
from pathlib import Path
import threading
import urllib.request
from wsgiref.simple_server import make_server
from wsgiref.simple_server import WSGIRequestHandler

import optuna
import pytest


pytest.importorskip("torch")
optuna_dashboard = pytest.importorskip("optuna_dashboard")

from optuna_gamma.tuner import ThesisTrainer  # noqa: E402
from optuna_gamma.tuner import tune_per_epoch  # noqa: E402
from optuna_gamma.tuner import TunerConfig  # noqa: E402


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(params=["journal", "sqlite"])
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, str, object]]:
    """A run in the default journal file (opened by the dashboard from its path, as
    ``optuna-dashboard <path>`` does) or in an SQLite URL; the dashboard served on 127.0.0.1."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = None if request.param == "journal" else f"sqlite:///{tmp_path / 'runs.db'}"
    result = tune_per_epoch(
        ThesisTrainer("digits"),
        None,
        TunerConfig(
            sampler="gamma",
            trials_per_epoch=3,
            epochs=2,
            storage=storage,
            run="dash",
            run_dir=str(tmp_path / "dash"),
        ),
    )
    storage = result.storage  # the printable form: the journal path, or the URL
    server = make_server("127.0.0.1", 0, optuna_dashboard.wsgi(storage), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", storage, result
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.status == 200
        return json.load(resp)


def test_dashboard_lists_the_runs_studies_and_trials(served) -> None:
    base, storage, result = served
    summaries = _get(f"{base}/api/studies")["study_summaries"]
    by_name = {s["study_name"]: s for s in summaries}
    assert set(by_name) == {"dash/epoch-001", "dash/epoch-002"}
    assert all(s["directions"] == ["maximize"] for s in summaries)

    for entry in result.schedule:
        study = _get(f"{base}/api/studies/{by_name[f'dash/epoch-{entry.epoch:03d}']['study_id']}")
        trials = study["trials"]
        assert len(trials) == 3 and all(t["state"] == "Complete" for t in trials)
        best = max(trials, key=lambda t: t["values"][0])
        assert best["number"] == entry.trial_number and best["values"][0] == pytest.approx(
            entry.value
        )
        # The dashboard's "Best Trial" is the adopted one, under the metric name "kappa".
        assert study["best_trials"][0]["number"] == entry.trial_number and study[
            "objective_names"
        ] == ["kappa"]
        attrs = {a["key"]: a["value"] for a in best["user_attrs"]}
        assert {"accuracy", "loss", "kappa_clipped", "train_loss", "time", "state"} <= set(attrs)
        assert float(attrs["accuracy"]) == pytest.approx(entry.metrics["accuracy"])
        assert [a["artifact_id"] for a in best["artifacts"]] == [
            attrs["state"]
        ]  # the trained state
        lr = [p for p in best["params"] if p["name"] == "lr"][0]
        assert float(lr["param_external_value"]) == pytest.approx(entry.lr)
        assert lr["distribution"]["log"] is True
        study_attrs = {a["key"] for a in study["user_attrs"]}
        assert {"config", "adopted"} <= study_attrs
