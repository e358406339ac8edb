"""plotly pictures of the thesis: misclassification heatmaps and metrics against learning rate.

- :func:`plot_confusion_heatmap`: the misclassification heatmap of thesis figs. 18-19 (rows: true
  class, columns: predicted class; the diagonal is drawn apart in grey so that the errors stand
  out in colour).
- :func:`plot_metric_vs_learning_rate` / :func:`plot_metrics_vs_learning_rate`: accuracy, loss
  and kappa against the learning rate on a log axis (thesis figs. 9, 10, 14, 15).
- :func:`write_html`: one self-contained HTML file for one figure or a list of figures, with
  plotly.js embedded once (works offline; never a CDN link).

plotly is imported lazily inside the functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import html
import math
import os
from pathlib import Path
from typing import Any
from typing import Optional
from typing import TYPE_CHECKING
from typing import Union

import numpy as np

from optuna_gamma.tuner.persistence.runfiles import atomic_write


if TYPE_CHECKING:
    import plotly.graph_objects as go


__all__ = [
    "plot_confusion_heatmap",
    "plot_metric_vs_learning_rate",
    "plot_metrics_vs_learning_rate",
    "write_html",
]

_LR_KEYS = ("learning_rate", "lr")


def _as_confusion_matrix(confusion_matrix: Any) -> np.ndarray:
    if hasattr(confusion_matrix, "detach") and hasattr(confusion_matrix, "cpu"):
        confusion_matrix = confusion_matrix.detach().cpu().numpy()
    try:
        cm = np.asarray(confusion_matrix, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"confusion_matrix must be a square matrix of counts, got {confusion_matrix!r}."
        ) from None
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"confusion_matrix must be square and non-empty, got shape {cm.shape}.")
    if not np.all(np.isfinite(cm)) or np.any(cm < 0):
        raise ValueError("confusion_matrix must hold finite non-negative counts.")
    return cm


def _nan_to_none(a: np.ndarray) -> list:
    return [[None if math.isnan(v) else float(v) for v in row] for row in a]


def plot_confusion_heatmap(
    confusion_matrix: Any,
    class_names: Optional[Sequence[str]] = None,
    *,
    normalize: bool = True,
    title: Optional[str] = None,
) -> go.Figure:
    """Misclassification heatmap of a confusion matrix (thesis figs. 18-19).

    The figure has two heatmap traces on the same axes: ``"errors"`` holds the off-diagonal
    cells (diagonal masked as ``None``) on a colour scale, ``"correct"`` holds only the diagonal
    in grey, so that the few misclassifications are not washed out by the large diagonal. Rows
    are the true class (top to bottom), columns the predicted class. Each cell is annotated with
    its value.

    Args:
        confusion_matrix: ``(k, k)`` counts, rows true and columns predicted (as returned by
            :func:`optuna_gamma.tuner.reporting.metrics.classification_report`).
        class_names: ``k`` class names for the axes; ``"0" .. "k-1"`` by default.
        normalize: If True, each row is divided by its total, so a cell is the fraction of
            the true class predicted as the column's class (rows with no sample stay blank).
            If False, raw counts are shown.
        title: Figure title; a default naming the normalization is used if None.

    Returns:
        A ``plotly.graph_objects.Figure``.

    Raises:
        ValueError: If the matrix is not square, empty, or holds negative or non-finite
            values, or ``class_names`` has the wrong length.
    """
    import plotly.graph_objects as go

    cm = _as_confusion_matrix(confusion_matrix)
    k = cm.shape[0]
    if class_names is None:
        names = [str(i) for i in range(k)]
    else:
        names = [str(c) for c in class_names]
        if len(names) != k:
            raise ValueError(
                f"class_names has {len(names)} entries, but the confusion matrix is {k}x{k}."
            )
    if normalize:
        totals = cm.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            values = np.where(totals > 0, cm / np.where(totals > 0, totals, 1.0), np.nan)
        text_fmt, hover_value = "%{z:.1%}", "%{z:.2%} of the true class"
    else:
        values = cm.copy()
        text_fmt, hover_value = "%{z:.0f}", "%{z:.0f} samples"
    eye = np.eye(k, dtype=bool)
    errors = np.where(eye, np.nan, values)
    correct = np.where(eye, values, np.nan)
    hover = f"true %{{y}}<br>predicted %{{x}}<br>{hover_value}<extra>%{{fullData.name}}</extra>"
    # Colour range for the errors: their own maximum, so that small errors are visible.
    finite_errors = errors[np.isfinite(errors)]
    zmax = float(finite_errors.max()) if finite_errors.size and finite_errors.max() > 0 else 1.0
    fig = go.Figure()
    fig.add_trace(
        go.Heatmap(
            z=_nan_to_none(errors),
            x=names,
            y=names,
            name="errors",
            colorscale="Reds",
            zmin=0.0,
            zmax=zmax,
            texttemplate=text_fmt,
            hovertemplate=hover,
            colorbar={"title": {"text": "fraction" if normalize else "count"}},
        )
    )
    fig.add_trace(
        go.Heatmap(
            z=_nan_to_none(correct),
            x=names,
            y=names,
            name="correct",
            colorscale=[[0.0, "#d9d9d9"], [1.0, "#d9d9d9"]],
            showscale=False,
            texttemplate=text_fmt,
            hovertemplate=hover,
        )
    )
    if title is None:
        detail = " (fraction of each true class)" if normalize else " (counts)"
        title = "Misclassifications" + detail
    fig.update_layout(
        title={"text": title},
        xaxis={"title": {"text": "predicted class"}, "side": "bottom", "type": "category"},
        yaxis={"title": {"text": "true class"}, "autorange": "reversed", "type": "category"},
        plot_bgcolor="white",
    )
    return fig


def _check_lr_values(
    learning_rates: Sequence[float], values: Sequence[float], metric: str
) -> tuple[np.ndarray, np.ndarray]:
    lr = np.asarray(learning_rates, dtype=np.float64).ravel()
    val = np.asarray(values, dtype=np.float64).ravel()
    if lr.shape != val.shape:
        raise ValueError(
            f"learning_rates and values of {metric!r} must have the same length, got "
            f"{lr.size} and {val.size}."
        )
    bad = lr[~(np.isfinite(lr) & (lr > 0))]
    if bad.size:
        raise ValueError(
            f"learning rates must be finite and > 0 for a log axis, got {float(bad[0])!r}."
        )
    order = np.argsort(lr, kind="stable")
    return lr[order], val[order]


def _to_list(a: np.ndarray) -> list:
    return [None if not math.isfinite(v) else float(v) for v in a]


def _best_index(values: np.ndarray, metric: str) -> Optional[int]:
    finite = np.isfinite(values)
    if not finite.any():
        return None
    masked = np.where(finite, values, np.inf if "loss" in metric else -np.inf)
    return int(np.argmin(masked) if "loss" in metric else np.argmax(masked))


def _metric_traces(
    lr: np.ndarray,
    val: np.ndarray,
    metric: str,
    name: str,
    color: Optional[str],
    star_best: bool = True,
) -> list[go.Scatter]:
    import plotly.graph_objects as go

    line = {"color": color} if color else {}
    traces = [
        go.Scatter(
            x=lr.tolist(),
            y=_to_list(val),
            mode="lines+markers",
            name=name,
            legendgroup=name,
            line=line,
            marker={"color": color} if color else {},
            hovertemplate=(
                f"lr %{{x:.4g}}<br>{metric} %{{y:.4g}}<extra>{html.escape(name)}</extra>"
            ),
        )
    ]
    best = _best_index(val, metric) if star_best else None
    if best is not None:
        traces.append(
            go.Scatter(
                x=[float(lr[best])],
                y=[float(val[best])],
                mode="markers",
                name=f"best {metric}" if name == metric else f"{name}: best",
                legendgroup=name,
                showlegend=False,
                marker={"symbol": "star", "size": 14, **({"color": color} if color else {})},
                hovertemplate=(
                    f"best {metric} %{{y:.4g}}<br>at lr %{{x:.4g}}"
                    f"<extra>{html.escape(name)}</extra>"
                ),
            )
        )
    return traces


def plot_metric_vs_learning_rate(
    learning_rates: Sequence[float],
    values: Sequence[float],
    *,
    metric: str = "kappa",
    title: Optional[str] = None,
) -> go.Figure:
    """One metric against the learning rate, log-scaled x axis (thesis figs. 9, 10, 14, 15).

    The points are sorted by learning rate and joined by lines with markers; the best point
    (minimum if ``metric`` contains ``"loss"``, maximum otherwise) is marked with a star.
    Non-finite values (diverged runs) are left as gaps.

    Args:
        learning_rates: Learning rates (> 0).
        values: The metric at each learning rate.
        metric: Name of the metric (axis label; ``"loss"`` in it means smaller is better).
        title: Figure title; ``"{metric} against learning rate"`` if None.

    Returns:
        A ``plotly.graph_objects.Figure`` whose first trace holds the sorted data.

    Raises:
        ValueError: On unequal lengths or a learning rate that is not finite and positive.
    """
    import plotly.graph_objects as go

    lr, val = _check_lr_values(learning_rates, values, metric)
    fig = go.Figure(_metric_traces(lr, val, metric, metric, None))
    fig.update_layout(
        title={"text": title if title is not None else f"{metric} against learning rate"},
        xaxis={"type": "log", "title": {"text": "learning rate"}},
        yaxis={"title": {"text": metric}},
        showlegend=False,
    )
    return fig


def _record_lr(record: Mapping[str, Any], i: int, lr_key: Optional[str]) -> float:
    keys = (lr_key,) if lr_key is not None else _LR_KEYS
    for key in keys:
        if key in record:
            return float(record[key])
    raise ValueError(
        f"record {i} has no learning rate (looked for keys {list(keys)}): {record!r}."
    )


def plot_metrics_vs_learning_rate(
    records: Sequence[Mapping[str, Any]],
    metrics: Sequence[str] = ("accuracy", "loss", "kappa"),
    *,
    lr_key: Optional[str] = None,
    group_by: Optional[str] = None,
    title: Optional[str] = None,
    mark: Optional[str] = None,
    mark_label: str = "marked",
) -> go.Figure:
    """Several metrics against the learning rate, one subplot per metric, shared log x axis.

    Each subplot stars its own best point, unless ``mark`` names a key: then the records whose
    ``mark`` is true are starred in every subplot (e.g. the trial each epoch adopted, which is
    the best of the objective but not always of the accuracy or the loss), with one legend
    entry ``mark_label`` saying what the stars are.

    Args:
        records: One mapping per evaluated learning rate, e.g. ``{"learning_rate": 0.1,
            "accuracy": 0.9, "loss": 0.3, "kappa": 1.5, "epoch": 1}`` (trial user attributes
            plus the suggested learning rate).
        metrics: The keys to plot, one subplot each, top to bottom.
        lr_key: The learning-rate key; ``"learning_rate"`` or else ``"lr"`` if None.
        group_by: Optional key whose values split the records into series drawn in the same
            subplots with one colour each (e.g. ``"epoch"`` or ``"sampler"``, as thesis fig. 14
            draws 1 and 50 epochs).
        title: Figure title.
        mark: Key of the records to star (truthy values) instead of each subplot's best.
        mark_label: The legend entry of the stars when ``mark`` is given.

    Returns:
        A ``plotly.graph_objects.Figure`` with ``len(metrics)`` rows of subplots.

    Raises:
        ValueError: If ``records`` or ``metrics`` is empty, a record lacks the learning rate, a
            metric or the ``group_by`` key, or a learning rate is not finite and positive.
    """
    import plotly.colors
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    records = list(records)
    metrics = list(metrics)
    if not records:
        raise ValueError("records is empty; nothing to plot.")
    if not metrics:
        raise ValueError("metrics is empty; name at least one metric to plot.")
    groups: dict[Any, list[int]] = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping):
            raise ValueError(f"record {i} must be a mapping, got {type(rec).__name__}.")
        for m in metrics:
            if m not in rec:
                raise ValueError(f"record {i} has no metric {m!r}: {rec!r}.")
        if group_by is not None and group_by not in rec:
            raise ValueError(f"record {i} has no group_by key {group_by!r}: {rec!r}.")
        groups.setdefault(rec[group_by] if group_by is not None else None, []).append(i)
    lrs = [_record_lr(rec, i, lr_key) for i, rec in enumerate(records)]

    fig = make_subplots(
        rows=len(metrics), cols=1, shared_xaxes=True, vertical_spacing=0.06, subplot_titles=metrics
    )
    palette = plotly.colors.qualitative.Plotly
    for g, (group, idx) in enumerate(groups.items()):
        name = "all" if group_by is None else f"{group_by} {group}"
        color = palette[g % len(palette)]
        for row, m in enumerate(metrics, start=1):
            lr, val = _check_lr_values([lrs[i] for i in idx], [records[i][m] for i in idx], m)
            traces = _metric_traces(lr, val, m, name, color, star_best=mark is None)
            for t, trace in enumerate(traces):
                if t == 0:
                    trace.showlegend = row == 1 and group_by is not None
                fig.add_trace(trace, row=row, col=1)
            if mark is not None:
                marked = [i for i in idx if records[i].get(mark)]
                fig.add_trace(
                    go.Scatter(
                        x=[lrs[i] for i in marked],
                        y=_to_list(np.asarray([records[i][m] for i in marked], dtype=float)),
                        mode="markers",
                        name=mark_label,
                        legendgroup="__marked__",
                        showlegend=row == 1 and g == 0,
                        marker={
                            "symbol": "star",
                            "size": 14,
                            "color": color,
                            "line": {"width": 1, "color": "black"},
                        },
                        hovertemplate=(
                            f"{html.escape(mark_label)}<br>{m} %{{y:.4g}} at lr %{{x:.4g}}"
                            f"<extra>{html.escape(name)}</extra>"
                        ),
                    ),
                    row=row,
                    col=1,
                )
            fig.update_yaxes(title_text=m, row=row, col=1)
    fig.update_xaxes(type="log")
    fig.update_xaxes(title_text="learning rate", row=len(metrics), col=1)
    fig.update_layout(
        title={"text": title if title is not None else "metrics against learning rate"},
        height=max(360, 260 * len(metrics)),
        showlegend=group_by is not None or mark is not None,
    )
    return fig


def write_html(
    fig_or_figs: Union[go.Figure, Sequence[Union[go.Figure, str]]],
    path: Union[str, os.PathLike],
    *,
    title: Optional[str] = None,
) -> Path:
    """Write one figure, or a list of figures as one page, to a self-contained HTML file.

    plotly.js is embedded once (inline), so the file works offline; no CDN is referenced.
    Strings in the list are inserted as HTML fragments between the figures (e.g. a heading or a
    table). The file is written atomically (temporary file, then ``os.replace``); missing parent
    directories are created.

    Args:
        fig_or_figs: A ``plotly.graph_objects.Figure`` or a non-empty sequence of figures and
            HTML strings.
        path: Output file.
        title: The page's ``<title>`` (and a heading for a list); the path's stem if None.

    Returns:
        The path written, as a ``pathlib.Path``.

    Raises:
        ValueError: If the list is empty or holds something that is neither a figure nor a
            string.
    """
    import plotly.graph_objects as go

    path = Path(path)
    items = [fig_or_figs] if isinstance(fig_or_figs, go.Figure) else list(fig_or_figs)
    if not items:
        raise ValueError("write_html needs at least one figure, got an empty list.")
    for i, item in enumerate(items):
        if not isinstance(item, (go.Figure, str)):
            raise ValueError(
                f"item {i} must be a plotly Figure or an HTML string, got {type(item).__name__}."
            )
    page_title = html.escape(title if title is not None else path.stem)
    parts: list[str] = []
    plotlyjs_done = False
    for item in items:
        if isinstance(item, str):
            parts.append(item)
            continue
        height = item.layout.height
        parts.append(
            item.to_html(
                full_html=False,
                include_plotlyjs=not plotlyjs_done,  # True: the whole plotly.js, inline
                default_height=f"{height}px" if height else "520px",
                default_width="100%",
            )
        )
        plotlyjs_done = True
    heading = f"<h1>{page_title}</h1>\n" if len(items) > 1 else ""
    body = "\n".join(f'<div class="og-item">{p}</div>' for p in parts)
    document = (
        '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
        f"<title>{page_title}</title>\n"
        "<style>body{font-family:sans-serif;margin:1em 2em}.og-item{margin-bottom:2em}</style>\n"
        f"</head>\n<body>\n{heading}{body}\n</body>\n</html>\n"
    )
    atomic_write(path, lambda f: f.write(document.encode("utf-8")))
    return path
