"""One self-contained HTML page for the runs in a storage (plotly.js inline, works offline).

The page is built from the storage alone (the tuner records everything there): for each run,
the adopted state of each epoch and, where a population makes it differ, the final model's own
schedule (its lineage: :mod:`~optuna_gamma.tuner.policies.lineage`) (tables and picture), the
objective, accuracy and loss against the learning rate for
every epoch's trials, Optuna's optimization history, and the test-set confusion heatmap; and,
when several runs share the storage, a comparison of their samplers (adopted objective per epoch,
test metrics, compute time).
"""

from __future__ import annotations

from collections import defaultdict
import html
import os
from pathlib import Path
import re
from typing import Any

import optuna
from optuna.trial import TrialState

from optuna_gamma.tuner.errors import require_extra
from optuna_gamma.tuner.persistence.storage import open_storage
from optuna_gamma.tuner.policies.lineage import branches_off
from optuna_gamma.tuner.policies.lineage import carried_records
from optuna_gamma.tuner.policies.lineage import lineage
from optuna_gamma.tuner.reporting.plots import plot_confusion_heatmap
from optuna_gamma.tuner.reporting.plots import plot_metrics_vs_learning_rate
from optuna_gamma.tuner.reporting.plots import write_html
from optuna_gamma.tuner.search.objectives import objective_metric


__all__ = ["build_report", "collect_runs"]

_EPOCH = re.compile(r"^(?P<run>.+)/epoch-(?P<epoch>\d{3,})$")
_WHOLE = re.compile(r"^(?P<run>.+)/whole$")


def collect_runs(storage: Any) -> dict[str, dict[str, Any]]:
    """Runs found in ``storage``: ``{run: {"mode", "sampler", "studies": {e: study}, ...}}``."""
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
            studies = {
                e: optuna.load_study(study_name=n, storage=storage)
                for e, n in sorted(info["epochs"].items())
            }
            last = studies[max(studies)]
            config = last.user_attrs.get("config", {})
            final = _final_epoch(last.user_attrs.get("final"), max(studies))
            out[run] = {
                "mode": "per-epoch",
                "sampler": config.get("sampler", "?"),
                "config": config,
                "studies": studies,
                "schedule": [
                    dict(s.user_attrs["adopted"], epoch=e)
                    for e, s in studies.items()
                    if "adopted" in s.user_attrs
                ],
                "test": last.user_attrs.get("test"),
                "final": final,
                "final_why": _final_why(last.user_attrs.get("final")),
                "lineage": _lineage(studies, final),
            }
        if info["whole"]:
            study = optuna.load_study(study_name=info["whole"], storage=storage)
            config = study.user_attrs.get("config", {})
            adopted = study.user_attrs.get("adopted")
            out[f"{run}/whole" if run in out else run] = {
                "mode": "whole",
                "sampler": config.get("sampler", "?"),
                "config": config,
                "studies": {0: study},
                "schedule": [dict(adopted, epoch=config.get("epochs_per_trial"))]
                if adopted
                else [],
                "test": study.user_attrs.get("test"),
            }
    return out


def _unfinished(info: dict[str, Any]) -> str | None:
    """A sentence on the run's last study where it has no adopted state (the run stopped
    there, or is still training it): its complete trials (of those planned) and the diverged
    ones, with the first one's recorded reason (``diverged_why``); ``None`` where it has one.
    Before, a run stopped by ``AllTrialsDivergedError`` showed an empty table."""
    studies = info["studies"]
    if not studies:
        return None
    epoch = max(studies)
    study = studies[epoch]
    if "adopted" in study.user_attrs:
        return None
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    plan = info["config"].get("plan")
    planned = (
        plan[epoch - 1]
        if info["mode"] == "per-epoch"
        and isinstance(plan, list)
        and len(plan) >= epoch
        and isinstance(plan[epoch - 1], int)
        else None
    )
    where = f"epoch {epoch}" if info["mode"] == "per-epoch" else "the whole trainings"
    text = f"No state adopted in {where} yet: {len(done)}" + (
        f" of {planned} planned trials complete" if planned else " trials complete"
    )
    diverged = [t for t in done if t.user_attrs.get("diverged")]
    if diverged:
        text += f", {len(diverged)} diverged"
        why = diverged[0].user_attrs.get("diverged_why")
        if isinstance(why, str):
            text += f" (trial {diverged[0].number}: {why})"
    return text + "."


def _final_epoch(record: Any, epochs: int) -> int:
    """The epoch of a run's final model as its last study records it (``final``, read from a
    storage: anything but an epoch of the run means the last one)."""
    epoch = record.get("epoch") if isinstance(record, dict) else None
    if isinstance(epoch, int) and not isinstance(epoch, bool) and 1 <= epoch <= epochs:
        return epoch
    return epochs


def _lineage(studies: dict[int, Any], final: int) -> list[dict[str, Any]]:
    """The records of the final model's lineage, epochs ``1..final``
    (:func:`~optuna_gamma.tuner.policies.lineage.lineage`); empty while the run is unfinished
    or where the records read from the storage do not have the expected form."""
    if sorted(studies) != list(range(1, len(studies) + 1)):
        return []
    try:
        chain = lineage([carried_records(studies[e].user_attrs) for e in sorted(studies)], final)
    except (KeyError, TypeError, ValueError):
        return []
    ok = all(
        isinstance(m.get("params"), dict)
        and isinstance(m.get("hparams", {}), dict)
        and isinstance(m.get("metrics", {}), dict)
        and isinstance(m.get("trial"), int)
        for m in chain
    )
    return [dict(m, epoch=e) for e, m in enumerate(chain, start=1)] if ok else []


def _final_why(record: Any) -> str | None:
    """Why the run's final model was chosen, as its last study records it (``final.why``;
    ``None`` when missing or not text)."""
    why = record.get("why") if isinstance(record, dict) else None
    return why if isinstance(why, str) and why else None


def _final_entry(info: dict[str, Any]) -> dict[str, Any]:
    """The schedule entry of the run's final model (per-epoch: ``final``; whole: the best)."""
    sched = info["schedule"]
    if not sched:
        return {}
    final = info.get("final")
    return next((s for s in sched if s.get("epoch") == final), sched[-1])


def _x_key(info: dict[str, Any]) -> str | None:
    """The parameter plotted on the x axis: ``lr`` if tuned, else the first tuned float."""
    tuned = info["config"].get("space", {}).get("tuned", {})
    if "lr" in tuned:
        return "lr"
    return next((k for k, d in tuned.items() if d.get("name") == "FloatDistribution"), None)


def _trial_records(study: Any, epoch: int, x: str) -> list[dict[str, Any]]:
    adopted = (study.user_attrs.get("adopted") or {}).get("trial")
    recs = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        ua = t.user_attrs
        if x not in t.params or ua.get("diverged"):
            continue
        recs.append(
            {
                "lr": t.params[x],
                "objective": t.value,
                "accuracy": ua.get("accuracy", float("nan")),
                "loss": ua.get("loss") if ua.get("loss") is not None else float("nan"),
                "epoch": epoch,
                "adopted": t.number == adopted,
            }
        )
    return recs


def _metric_columns(metrics: list[Any]) -> list[str]:
    """The validation metrics a table shows: accuracy and loss where the trainer gives them
    (kappa's), else the trainer's own numbers (a regression's ``mse``), four at most; never the
    training loss or the timings."""
    found = [m for m in metrics if isinstance(m, dict)]
    known = [k for k in ("accuracy", "loss") if any(k in m for m in found)]
    if known:
        return known
    own = {
        str(k)
        for m in found
        for k, v in m.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    return sorted(own - {"train_loss", "time", "diverged"})[:4]


def _test_columns(test: dict[str, Any], objective: Any) -> list[str]:
    """The test metrics a run's table shows: the objective's own metric first where it is one
    (the ``mse`` of ``min:mse``: before, a regression's table showed only its test loss), then
    the thesis's classification metrics it has, else the trainer's own numbers."""
    known: list[str] = [
        k for k in ("accuracy", "sensitivity", "specificity", "mcc", "loss") if k in test
    ]
    shown = known or _metric_columns([test])
    own = objective_metric(objective)
    value = test.get(own) if own is not None else None
    if own is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return shown
    return [own, *(k for k in shown if k != own)]


def _compute_time(info: dict[str, Any]) -> float:
    total = 0.0
    for study in info["studies"].values():
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if "reused_from" not in t.user_attrs:
                spent = t.user_attrs.get("time") or {}
                total += float(spent.get("train", 0.0)) + float(spent.get("eval", 0.0))
    return total


def _plain(text: Any) -> str:
    """``text`` (a run, study or parameter name read from the storage) as plain text in a
    plotly title or legend: plotly renders a subset of HTML there (``<a href=...>`` becomes a
    live link), so ``<``, ``>`` and ``&`` are escaped; plotly shows the entities as characters."""
    return html.escape(str(text), quote=False)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return (
        '<table style="border-collapse:collapse;font-family:sans-serif" border="1" '
        'cellpadding="4">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _adopted_as(entry: dict[str, Any]) -> str:
    """Why an epoch's state was adopted (its record's ``why``), and, for an explorer whose
    proposal the box around its parent moved, what the sampler proposed (read from a storage:
    anything but a mapping of names to values is left out)."""
    why = str(entry.get("why", ""))
    proposed = entry.get("proposed")
    if isinstance(proposed, dict) and proposed and all(isinstance(k, str) for k in proposed):
        why += f"; the sampler proposed {_params_text(proposed)}, moved near its parent"
    return why


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
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

    ``storage`` is an RDB URL, a journal file path or an Optuna storage object.

    Raises:
        ValueError: No run in the storage, a requested run is missing, or ``path`` is a folder.
        MissingExtraError: plotly is not installed (an :class:`ImportError`).
    """
    require_extra("the report", "plotly")
    import plotly.graph_objects as go

    if Path(path).is_dir() or str(path).endswith(("/", os.sep)):  # "out/" named a file "out"
        raise ValueError(
            f"report path {str(path)!r} is a directory; give a file name such as report.html"
        )
    storage, _ = open_storage(storage)
    found = collect_runs(storage)
    if not found:
        raise ValueError("no optuna-gamma run found in the storage")
    names = list(found) if not runs else runs
    missing = [r for r in names if r not in found]
    if missing:
        raise ValueError(f"run(s) {missing} not in storage; found {sorted(found)}")
    items: list[Any] = []

    if len(found) > 1:
        items.append("<h2>Sampler comparison (all runs in this storage)</h2>")
        rows = []
        fig = go.Figure()
        # the runs' objectives that are one metric other than the accuracy (a regression's mse)
        own = sorted(
            {
                m
                for info in found.values()
                if (m := objective_metric(info["config"].get("objective")))
                not in (None, "accuracy")
            }
        )
        for run, info in found.items():
            test = info.get("test") or {}
            sched = info["schedule"]
            last = _final_entry(info)
            rows.append(
                [
                    run,
                    info["sampler"],
                    info["mode"],
                    len(info["studies"])
                    if info["mode"] == "per-epoch"
                    else info["config"].get("epochs_per_trial", ""),
                    last.get("value", ""),
                    (last.get("metrics") or {}).get("accuracy", ""),
                    test.get("accuracy", ""),
                    test.get("mcc", ""),
                    *(test.get(m, "") for m in own),
                    _compute_time(info),
                ]
            )
            if info["mode"] == "per-epoch":
                fig.add_trace(
                    go.Scatter(
                        x=[s["epoch"] for s in sched],
                        y=[s["value"] for s in sched],
                        mode="lines+markers",
                        name=_plain(f"{run} ({info['sampler']})"),
                    )
                )
        items.append(
            _table(
                [
                    "run",
                    "sampler",
                    "mode",
                    "epochs",
                    "final model's objective (valid)",
                    "accuracy (valid)",
                    "test accuracy",
                    "test MCC",
                    *(f"test {m}" for m in own),
                    "compute s",
                ],
                rows,
            )
        )
        fig.update_layout(
            title="Adopted objective per epoch",
            xaxis_title="epoch",
            yaxis_title="objective (validation)",
        )
        items.append(fig)

    for run in names:
        info = found[run]
        # the record is read from a storage: show only what has the expected form
        policy = info["config"].get("policy")
        name = policy.get("name") if isinstance(policy, dict) else "thesis"
        plan = info["config"].get("plan")
        if not isinstance(plan, list) or not all(isinstance(t, int) for t in plan):
            plan = []
        items.append(
            f"<h2>Run {html.escape(run)} &mdash; sampler {html.escape(str(info['sampler']))}, "
            f"{info['mode']}, policy {html.escape(str(name))}"
            + (
                f" ({sum(plan)} training epochs over {len(plan)} "
                f"epoch{'' if len(plan) == 1 else 's'})"
                if plan
                else ""
            )
            + "</h2>"
        )
        sched = info["schedule"]
        chain = info.get("lineage") or []
        branched = info["mode"] == "per-epoch" and branches_off(
            [m["trial"] for m in chain], [s.get("trial") for s in sched]
        )
        if branched:
            items.append("<p>The state adopted in each epoch (the best of its trials):</p>")
        objective = info["config"].get("objective")
        objective_head = f"objective ({objective})" if isinstance(objective, str) else "objective"
        # an objective that is one metric (``accuracy``, ``loss``, ``min:mse``) is that metric,
        # shown once
        own_metric = objective_metric(objective)
        shown_metrics = [
            k for k in _metric_columns([s["metrics"] for s in sched]) if k != own_metric
        ]
        items.append(
            _table(
                ["epoch", "parameters", objective_head, *shown_metrics, "trial", "adopted as"],
                [
                    [
                        s["epoch"],
                        _params_text(s["hparams"]),
                        s["value"],
                        *(s["metrics"].get(k, "") for k in shown_metrics),
                        s["trial"],
                        _adopted_as(s),
                    ]
                    for s in sched
                ],
            )
        )
        if branched:
            items.append(
                "<p>The final model's schedule (its lineage): the best state of an epoch above "
                "can descend from another state than the previous epoch's best, so the final "
                "model was trained with these settings:</p>"
            )
            items.append(
                _table(
                    ["epoch", "parameters", objective_head, *shown_metrics, "trial"],
                    [
                        [
                            s["epoch"],
                            _params_text(s.get("hparams") or s["params"]),
                            s.get("value", ""),
                            *((s.get("metrics") or {}).get(k, "") for k in shown_metrics),
                            s["trial"],
                        ]
                        for s in chain
                    ],
                )
            )
        pending = _unfinished(info)
        if pending:
            items.append(f"<p>{html.escape(pending)}</p>")
        x = _x_key(info)
        records: list[dict[str, Any]] = []
        if x is not None:
            if info["mode"] == "per-epoch" and sched:
                fig = go.Figure(
                    go.Scatter(
                        x=[s["epoch"] for s in sched],
                        y=[s["params"].get(x) for s in sched],
                        mode="lines+markers",
                        name="adopted (the best state of each epoch)",
                    )
                )
                if branched:
                    fig.add_trace(
                        go.Scatter(
                            x=[s["epoch"] for s in chain],
                            y=[s["params"].get(x) for s in chain],
                            mode="lines+markers",
                            name="the final model's schedule (its lineage)",
                        )
                    )
                fig.update_layout(
                    title=_plain(f"{run}: {x} schedule"),
                    xaxis_title="epoch",
                    yaxis_title=_plain(x),
                    yaxis_type="log",
                    height=360,
                )
                # epochs are whole numbers: one tick per epoch, none at 1.5
                fig.update_xaxes(tickmode="array", tickvals=[s["epoch"] for s in sched])
                items.append(fig)
            for e, study in info["studies"].items():
                records += _trial_records(study, e, x)
        if records:
            keys = ("objective",) + tuple(
                k
                for k in ("accuracy", "loss")
                if k != own_metric and any(r[k] == r[k] for r in records)
            )
            fig = plot_metrics_vs_learning_rate(
                records,
                keys,
                lr_key="lr",
                group_by="epoch" if info["mode"] == "per-epoch" else None,
                title=_plain(f"{run}: metrics against {x} (validation)"),
                mark="adopted",
                mark_label="adopted trial (best objective of its epoch)",
            )
            items.append(fig)

            last_study = info["studies"][max(info["studies"])]
            hist = optuna.visualization.plot_optimization_history(last_study)
            hist.update_layout(
                title=_plain(f"{run}: optimization history of {last_study.study_name}"),
                height=360,
            )
            items.append(hist)
        test = info.get("test")
        if test:
            shown = _test_columns(test, info["config"].get("objective"))
            final = info.get("final")
            if info["mode"] == "per-epoch" and final is not None:
                epochs = len(info["studies"])
                which = info.get("final_why") or (
                    "the last adopted state" if final == epochs else "the validation peak"
                )
                if which.startswith("the average of"):  # final_model="average"
                    items.append(f"<p>Final model: {html.escape(which)}.</p>")
                else:
                    items.append(
                        f"<p>Final model: the state adopted in epoch {final} "
                        f"({html.escape(which)}).</p>"
                    )
            items.append(_table([f"test {k}" for k in shown], [[test[k] for k in shown]]))
            if test.get("confusion_matrix"):
                items.append(
                    plot_confusion_heatmap(
                        test["confusion_matrix"],
                        class_names,
                        title=_plain(f"{run}: test-set misclassifications"),
                    )
                )
    return write_html(items, path, title=title or "optuna-gamma report")
