"""One self-contained HTML page for the runs in a storage (plotly.js inline, works offline).

The page is built from the storage alone (the driver records everything there): for each run,
the learning-rate schedule (table and picture), kappa / accuracy / loss against learning rate
for every epoch's trials, the test-set confusion heatmap; and, when several runs share the
storage, a comparison of their samplers (adopted kappa per epoch, test metrics, compute time).
"""

from __future__ import annotations

from collections import defaultdict
import html
import os
from pathlib import Path
import re
from typing import Any


__all__ = ["build_report", "collect_runs"]

_EPOCH = re.compile(r"^(?P<run>.+)/epoch-(?P<epoch>\d{3,})$")
_WHOLE = re.compile(r"^(?P<run>.+)/whole$")


def collect_runs(storage: Any) -> dict[str, dict[str, Any]]:
    """Runs found in ``storage``: ``{run: {"mode", "sampler", "epochs": {e: study}, ...}}``."""
    import optuna

    runs: dict[str, dict[str, Any]] = defaultdict(lambda: {"epochs": {}, "whole": None})
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        name = summary.study_name
        m = _EPOCH.match(name)
        if m:
            runs[m["run"]]["epochs"][int(m["epoch"])] = name
            continue
        m = _WHOLE.match(name)
        if m:
            runs[m["run"]]["whole"] = name
    out: dict[str, dict[str, Any]] = {}
    for run, info in sorted(runs.items()):
        if info["epochs"]:
            studies = {e: optuna.load_study(study_name=n, storage=storage) for e, n in sorted(info["epochs"].items())}
            last = studies[max(studies)]
            config = last.user_attrs.get("config", {})
            out[run] = {
                "mode": "per-epoch", "sampler": config.get("sampler", "?"), "config": config, "studies": studies,
                "schedule": [dict(s.user_attrs["adopted"], epoch=e) for e, s in studies.items() if "adopted" in s.user_attrs],
                "test": last.user_attrs.get("test"),
            }
        if info["whole"]:
            study = optuna.load_study(study_name=info["whole"], storage=storage)
            config = study.user_attrs.get("config", {})
            out[f"{run}/whole" if run in out else run] = {
                "mode": "whole", "sampler": config.get("sampler", "?"), "config": config, "studies": {0: study},
                "best": study.user_attrs.get("best"), "test": study.user_attrs.get("test"),
            }
    return out


def _trial_records(study: Any, epoch: int) -> list[dict[str, Any]]:
    from optuna.trial import TrialState

    recs = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        ua = t.user_attrs
        recs.append({"lr": t.params["lr"], "kappa": t.value, "accuracy": ua.get("accuracy"),
                     "loss": ua.get("loss") if ua.get("loss") is not None else float("nan"), "epoch": epoch})
    return recs


def _compute_time(info: dict[str, Any]) -> float:
    from optuna.trial import TrialState

    total = 0.0
    for study in info["studies"].values():
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            total += float(t.user_attrs.get("train_time", 0.0)) + float(t.user_attrs.get("eval_time", 0.0))
    return total


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return (
        '<table style="border-collapse:collapse;font-family:sans-serif" border="1" cellpadding="4">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def build_report(
    storage: Any,
    path: str | os.PathLike[str],
    *,
    runs: list[str] | None = None,
    class_names: list[str] | None = None,
    title: str | None = None,
) -> Path:
    """Write the HTML report of ``runs`` (default: every run in ``storage``) to ``path``.

    Raises:
        ValueError: No run in the storage, or a requested run is missing.
    """
    import plotly.graph_objects as go

    from optuna_gamma.plots import plot_confusion_heatmap
    from optuna_gamma.plots import plot_metrics_vs_learning_rate
    from optuna_gamma.plots import write_html

    found = collect_runs(storage)
    if not found:
        raise ValueError(f"no optuna-gamma run found in storage {storage!r}")
    names = list(found) if not runs else runs
    missing = [r for r in names if r not in found]
    if missing:
        raise ValueError(f"run(s) {missing} not in storage; found {sorted(found)}")
    items: list[Any] = []

    if len(found) > 1:
        items.append("<h2>Sampler comparison (all runs in this storage)</h2>")
        rows = []
        fig = go.Figure()
        for run, info in found.items():
            test = info.get("test") or {}
            if info["mode"] == "per-epoch":
                sched = info["schedule"]
                last = sched[-1] if sched else {}
                rows.append([run, info["sampler"], info["mode"], len(sched), last.get("kappa", ""),
                             last.get("accuracy", ""), test.get("accuracy", ""), test.get("mcc", ""), _compute_time(info)])
                fig.add_trace(go.Scatter(x=[s["epoch"] for s in sched], y=[s["kappa"] for s in sched],
                                         mode="lines+markers", name=f"{run} ({info['sampler']})"))
            else:
                best = info.get("best") or {}
                rows.append([run, info["sampler"], info["mode"], info["config"].get("epochs", ""), best.get("kappa", ""),
                             "", test.get("accuracy", ""), test.get("mcc", ""), _compute_time(info)])
        items.append(_table(["run", "sampler", "mode", "epochs", "final kappa (valid)", "accuracy (valid)",
                             "test accuracy", "test MCC", "compute s"], rows))
        fig.update_layout(title="Adopted kappa per epoch", xaxis_title="epoch", yaxis_title="kappa (validation)")
        items.append(fig)

    for run in names:
        info = found[run]
        items.append(f"<h2>Run {html.escape(run)} &mdash; sampler {html.escape(str(info['sampler']))}, {info['mode']}</h2>")
        records: list[dict[str, Any]] = []
        if info["mode"] == "per-epoch":
            sched = info["schedule"]
            items.append(_table(["epoch", "lr", "kappa", "accuracy", "loss", "trial"],
                                [[s["epoch"], s["lr"], s["kappa"], s["accuracy"], s["loss"], s["trial"]] for s in sched]))
            fig = go.Figure(go.Scatter(x=[s["epoch"] for s in sched], y=[s["lr"] for s in sched], mode="lines+markers"))
            fig.update_layout(title=f"{run}: learning-rate schedule", xaxis_title="epoch", yaxis_title="learning rate",
                              yaxis_type="log", height=360)
            items.append(fig)
            for e, study in info["studies"].items():
                records += _trial_records(study, e)
        else:
            best = info.get("best") or {}
            items.append(_table(["best lr", "kappa", "trial"], [[best.get("lr", ""), best.get("kappa", ""), best.get("trial", "")]]))
            records += _trial_records(info["studies"][0], 0)
        if records:
            items.append(plot_metrics_vs_learning_rate(records, ("kappa", "accuracy", "loss"), lr_key="lr",
                                                       group_by="epoch" if info["mode"] == "per-epoch" else None,
                                                       title=f"{run}: metrics against learning rate (validation)"))
        last_study = info["studies"][max(info["studies"])]
        if records:
            import optuna

            hist = optuna.visualization.plot_optimization_history(last_study, target_name="kappa")
            hist.update_layout(title=f"{run}: optimization history of {last_study.study_name}", height=360)
            items.append(hist)
        test = info.get("test")
        if test and test.get("confusion_matrix"):
            items.append(_table(["test accuracy", "sensitivity", "specificity", "MCC", "loss"],
                                [[test["accuracy"], test["sensitivity"], test["specificity"], test["mcc"], test.get("loss")]]))
            items.append(plot_confusion_heatmap(test["confusion_matrix"], class_names,
                                                title=f"{run}: test-set misclassifications"))
    return write_html(items, path, title=title or "optuna-gamma report")
