"""The thesis's evaluation figures: accuracy, sensitivity, specificity, MCC, confusion matrix.

The thesis (section 4, tables 4-11) reports for every system the accuracy, the sensitivity, the
specificity and the Matthews correlation coefficient (MCC) of the classifier, its confusion matrix
(figs. 18-19) and the learning time. :func:`classification_report` computes them from labels with
scikit-learn where it has the metric (recall, MCC, confusion matrix); the specificity, which
scikit-learn has no multi-class function for, is computed from the confusion matrix.
:func:`evaluate` runs a PyTorch model over an in-memory split and adds the mean cross-entropy and
the wall time.

torch and scikit-learn are imported lazily inside the functions.
"""

from __future__ import annotations

import numbers
import time
from typing import Any
from typing import Optional
from typing import TYPE_CHECKING
from typing import Union

import numpy as np


if TYPE_CHECKING:
    import torch


__all__ = ["classification_report", "evaluate"]


def _as_label_array(labels: Any, name: str) -> np.ndarray:
    """Convert a 1-D integer label sequence (numpy array, torch tensor, list) to int64 numpy."""
    # A torch tensor, recognized without importing torch.
    if hasattr(labels, "detach") and hasattr(labels, "cpu"):
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}.")
    if arr.dtype.kind not in "iu" and arr.size > 0:  # an empty list is float64 in numpy
        raise ValueError(f"{name} must hold integer class labels, got dtype {arr.dtype}.")
    return arr.astype(np.int64, copy=False)


def _check_n_classes(n_classes: Any) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}.")
    return int(n_classes)


def classification_report(y_true: Any, y_pred: Any, n_classes: int) -> dict[str, Any]:
    """Accuracy, macro sensitivity, macro specificity, multi-class MCC and the confusion matrix.

    With the confusion matrix ``C`` (rows: true class, columns: predicted class, ``N`` samples),
    and for each class ``c``: ``TP_c = C[c, c]``, ``FN_c = sum_j C[c, j] - TP_c``,
    ``FP_c = sum_i C[i, c] - TP_c``, ``TN_c = N - TP_c - FN_c - FP_c``:

    - ``accuracy = trace(C) / N``;
    - ``sensitivity = mean_c TP_c / (TP_c + FN_c)`` (macro recall,
      ``sklearn.metrics.recall_score(average="macro")``);
    - ``specificity = mean_c TN_c / (TN_c + FP_c)`` (macro one-vs-rest specificity);
    - ``mcc``: the multi-class Matthews correlation coefficient (Gorodkin's R_K statistic,
      ``sklearn.metrics.matthews_corrcoef``), 0 when undefined (e.g. a constant prediction).

    A class whose per-class figure is undefined (sensitivity: the class does not occur in
    ``y_true``; specificity: every sample belongs to the class) is left out of that macro average,
    as ``zero_division=np.nan`` does in scikit-learn.

    Args:
        y_true: True labels, 1-D integers in ``[0, n_classes)`` (numpy array, torch tensor or
            sequence).
        y_pred: Predicted labels, same length and range.
        n_classes: Number of classes (>= 2); the confusion matrix is ``n_classes x n_classes``.

    Returns:
        A dict with ``accuracy``, ``sensitivity``, ``specificity``, ``mcc`` (floats) and
        ``confusion_matrix`` (``list[list[int]]``, rows true, columns predicted).

    Raises:
        ValueError: On non-1-D or non-integer labels, unequal lengths, no samples, labels
            outside ``[0, n_classes)``, or ``n_classes < 2``.
    """
    k = _check_n_classes(n_classes)
    t = _as_label_array(y_true, "y_true")
    p = _as_label_array(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(
            f"y_true and y_pred must have the same length, got {t.shape[0]} and {p.shape[0]}."
        )
    if t.size == 0:
        raise ValueError("y_true and y_pred are empty; need at least one sample.")
    for name, arr in (("y_true", t), ("y_pred", p)):
        bad = arr[(arr < 0) | (arr >= k)]
        if bad.size:
            raise ValueError(f"{name} holds label {int(bad[0])} outside [0, {k}) (n_classes={k}).")

    from sklearn.metrics import confusion_matrix
    from sklearn.metrics import matthews_corrcoef
    from sklearn.metrics import recall_score

    labels = np.arange(k)
    cm = confusion_matrix(t, p, labels=labels)
    n = int(cm.sum())
    tp = np.diag(cm).astype(np.float64)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    tn = n - tp - fp - fn
    neg = tn + fp
    with np.errstate(invalid="ignore", divide="ignore"):
        spec_per_class = np.where(neg > 0, tn / np.where(neg > 0, neg, 1.0), np.nan)
    specificity = float(np.nanmean(spec_per_class))
    sensitivity = float(recall_score(t, p, labels=labels, average="macro", zero_division=np.nan))
    mcc = float(matthews_corrcoef(t, p))
    return {
        "accuracy": float(tp.sum() / n),
        "sensitivity": sensitivity,
        "specificity": specificity,
        "mcc": mcc,
        "confusion_matrix": [[int(v) for v in row] for row in cm],
    }


def evaluate(
    model: torch.nn.Module,
    split: Any,
    *,
    n_classes: int,
    batch_size: int = 1000,
    device: Optional[Union[str, torch.device]] = None,
    full: bool = True,
) -> dict[str, Any]:
    """Evaluate a classifier on an in-memory split: the thesis's metrics, loss and wall time.

    The model is put in evaluation mode (dropout off) and run under ``torch.no_grad()`` over
    ``split.x`` in batches of ``batch_size``; its training mode is restored afterwards. The loss
    is the mean cross-entropy ``(1/N) sum_i -log softmax(f(x_i))[y_i]`` (summed per batch in
    float64, then divided by ``N``), so it does not depend on ``batch_size``.

    Args:
        model: A ``torch.nn.Module`` mapping a batch of inputs to ``(B, n_classes)`` logits.
        split: Any object with tensors ``x`` (inputs, first dimension ``N``) and ``y``
            (``N`` integer labels), e.g. :class:`optuna_gamma.tuner.builtin.data.Split`.
        n_classes: Number of classes.
        batch_size: Evaluation batch size (>= 1).
        device: Device to evaluate on. ``None`` uses the device of the model's parameters
            (CPU for a parameter-free model) and does not move the model; otherwise the model is
            moved there (``model.to(device)``, as PyTorch does in place) and each batch with it.

        full: Compute :func:`classification_report`'s figures; ``False`` gives only the accuracy
            (the cheap form the tuner uses for every trial's validation).

    Returns:
        :func:`classification_report`'s dict (only ``accuracy`` when ``full=False``) plus
        ``loss`` (mean cross-entropy; nan or inf if the model diverged) and ``time``
        (wall-clock seconds of the whole evaluation).

    Raises:
        ValueError: If ``split`` lacks ``x``/``y``, they disagree in length or are empty,
            ``batch_size < 1``, or the model's output is not ``(B, n_classes)``.
    """
    import torch
    import torch.nn.functional as F

    k = _check_n_classes(n_classes)
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Integral)
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}.")
    x = getattr(split, "x", None)
    y = getattr(split, "y", None)
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise ValueError(
            f"split must have tensor attributes x and y, got {type(split).__name__} with "
            f"x={type(x).__name__}, y={type(y).__name__}."
        )
    n = int(y.shape[0]) if y.ndim == 1 else -1
    if y.ndim != 1 or x.ndim < 1 or x.shape[0] != n:
        raise ValueError(
            f"split.x must have N rows and split.y must be 1-D of length N, got x shape "
            f"{tuple(x.shape)} and y shape {tuple(y.shape)}."
        )
    if n == 0:
        raise ValueError("split is empty; need at least one sample to evaluate.")
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise ValueError(f"split.y must hold integer class labels, got dtype {y.dtype}.")
    y_min, y_max = int(y.min()), int(y.max())
    if y_min < 0 or y_max >= k:
        bad = y_min if y_min < 0 else y_max
        raise ValueError(f"split.y holds label {bad} outside [0, {k}) (n_classes={k}).")

    if device is None:
        param = next(model.parameters(), None)
        dev = param.device if param is not None else torch.device("cpu")
    else:
        dev = torch.device(device)
        model.to(dev)

    was_training = model.training
    start = time.perf_counter()
    loss_sum = 0.0
    preds = []
    model.eval()
    try:
        with torch.no_grad():
            for lo in range(0, n, int(batch_size)):
                xb = x[lo : lo + batch_size].to(dev, non_blocking=True)
                yb = y[lo : lo + batch_size].to(dev, dtype=torch.int64, non_blocking=True)
                logits = model(xb)
                if logits.ndim != 2 or logits.shape != (xb.shape[0], k):
                    raise ValueError(
                        f"model output must have shape (batch, n_classes) = "
                        f"({xb.shape[0]}, {k}), got {tuple(logits.shape)}."
                    )
                loss_sum += float(F.cross_entropy(logits.double(), yb, reduction="sum"))
                preds.append(logits.argmax(dim=1).cpu())
    finally:
        model.train(was_training)
    y_pred = torch.cat(preds)
    if full:
        report = classification_report(y.cpu(), y_pred, k)
    else:
        report = {"accuracy": float((y_pred == y.cpu()).double().mean())}
    report["loss"] = loss_sum / n
    report["time"] = time.perf_counter() - start
    return report
