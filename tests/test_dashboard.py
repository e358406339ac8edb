"""optuna-dashboard serves the driver's storage: studies, trials and user attributes over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
import json
from pathlib import Path
import re
import threading
import urllib.request
from wsgiref.simple_server import make_server
from wsgiref.simple_server import WSGIRequestHandler

import optuna
from optuna.artifacts import FileSystemArtifactStore
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
    app = optuna_dashboard.wsgi(storage, artifact_store=FileSystemArtifactStore(result.artifacts))
    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
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


def _adopted_state(study: dict) -> str:
    (value,) = [a["value"] for a in study["user_attrs"] if a["key"] == "adopted"]
    # the dashboard serializes the attribute's value as text (JSON or a Python repr)
    match = re.search(r"['\"]state['\"]: ['\"]([0-9a-f-]{36})['\"]", value)
    assert match, value
    return match.group(1)


def _listed_artifact_urls(base: str) -> list[str]:
    """Every artifact link the dashboard offers: each study's and each trial's."""
    urls = []
    for summary in _get(f"{base}/api/studies")["study_summaries"]:
        sid = summary["study_id"]
        study = _get(f"{base}/api/studies/{sid}")
        urls += [f"{base}/artifacts/{sid}/{a['artifact_id']}" for a in study["artifacts"]]
        for t in study["trials"]:
            urls += [
                f"{base}/artifacts/{sid}/{t['trial_id']}/{a['artifact_id']}"
                for a in t["artifacts"]
            ]
    return urls


def _kept(storage: str) -> int:
    """The states a run keeps: the initial one and those its epochs carried forward."""
    from optuna_gamma.tuner import get_storage

    st = get_storage(storage)
    carried = set()
    for name in optuna.get_all_study_names(st):
        attrs = optuna.load_study(study_name=name, storage=st).user_attrs
        carried |= {m["state"] for m in attrs["population"]}
    return 1 + len(carried)


def test_every_artifact_the_dashboard_lists_downloads(served) -> None:
    """Issue 15, point 1: no listed artifact is a broken link (HTTP 500, ArtifactNotFound):
    the deleted trial states were never attached."""
    base, storage, _ = served
    urls = _listed_artifact_urls(base)
    assert len(urls) == _kept(storage)  # the initial state and the carried ones
    for url in urls:
        with urllib.request.urlopen(url, timeout=30) as resp:
            assert resp.status == 200 and len(resp.read()) > 1000


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
        # The trials' states are not attached (all but the adopted one are deleted); the
        # adopted state is kept attached to the study, so every listed artifact exists.
        assert all(t["artifacts"] == [] for t in trials)
        adopted = _adopted_state(study)
        assert adopted in [a["artifact_id"] for a in study["artifacts"]]
        assert adopted != attrs["state"]  # a copy: the trial's own state is deleted
        lr = [p for p in best["params"] if p["name"] == "lr"][0]
        assert float(lr["param_external_value"]) == pytest.approx(entry.lr)
        assert lr["distribution"]["log"] is True
        study_attrs = {a["key"] for a in study["user_attrs"]}
        assert {"config", "adopted"} <= study_attrs
    # The run's last study shows which state is the final model, and why.
    last = _get(f"{base}/api/studies/{by_name['dash/epoch-002']['study_id']}")
    (final,) = [a["value"] for a in last["user_attrs"] if a["key"] == "final"]
    assert result.final_state in final and "last" in final and result.final_epochs == 2


CHROMIUM = "/usr/bin/chromium"  # Debian's chromium package (.ci/run installs it)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_every_artifact_link_in_the_browser_downloads(served) -> None:
    """Issue 15, point 1, as a user meets it: headless Chromium opens each study's page and
    each trial's page, collects the "download artifact" links the dashboard renders and GETs
    each: all HTTP 200 (the quick start had 32 of 36 broken links)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)")
    base, _, result = served
    links: set[str] = set()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            download = page.locator("a[aria-label='download artifact']")
            for summary in _get(f"{base}/api/studies")["study_summaries"]:
                sid = summary["study_id"]
                page.goto(f"{base}/dashboard/studies/{sid}")
                download.first.wait_for(timeout=60_000)  # each study keeps its adopted state
                links |= {
                    download.nth(i).get_attribute("href") or "" for i in range(download.count())
                }
                for t in _get(f"{base}/api/studies/{sid}")["trials"]:
                    page.goto(f"{base}/dashboard/studies/{sid}/trials?numbers={t['number']}")
                    page.get_by_text(f"(trial_id={t['trial_id']})").first.wait_for(timeout=60_000)
                    page.get_by_text("Artifacts", exact=True).first.wait_for(timeout=60_000)
                    links |= {
                        download.nth(i).get_attribute("href") or ""
                        for i in range(download.count())
                    }
            statuses = {link: page.request.get(base + link).status for link in sorted(links)}
        finally:
            browser.close()
    # the initial state and the states each epoch carried (the policy's population)
    assert len(links) == _kept(result.storage)
    assert statuses and set(statuses.values()) == {200}, statuses
