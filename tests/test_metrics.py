"""classification_report and evaluate: a hand-worked example, scikit-learn, a known torch model."""

from __future__ import annotations

import math
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix
from sklearn.metrics import matthews_corrcoef
from sklearn.metrics import recall_score
import torch
import torch.nn.functional as F

from optuna_gamma.tuner.reporting.metrics import classification_report
from optuna_gamma.tuner.reporting.metrics import evaluate


# ---------------------------------------------------------------------------------------------
# classification_report
# ---------------------------------------------------------------------------------------------

# Hand-worked 3-class example, N = 10.
Y_TRUE = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
Y_PRED = [0, 0, 0, 1, 1, 1, 2, 2, 2, 0]
# Confusion matrix (rows true, columns predicted):
#   true 0 -> predicted 0,0,0,1   -> [3, 1, 0]
#   true 1 -> predicted 1,1,2     -> [0, 2, 1]
#   true 2 -> predicted 2,2,0     -> [1, 0, 2]
CM = [[3, 1, 0], [0, 2, 1], [1, 0, 2]]
# accuracy     = trace / N = 7 / 10
# recall       : c0 = 3/4, c1 = 2/3, c2 = 2/3 -> (3/4 + 4/3) / 3 = 25/36
# specificity  : c0: TP 3, FN 1, FP (col 0 sum 4) - 3 = 1, TN = 10 - 5 = 5 -> 5/6
#                c1: TP 2, FN 1, FP (col 1 sum 3) - 2 = 1, TN = 10 - 4 = 6 -> 6/7
#                c2: TP 2, FN 1, FP (col 2 sum 3) - 2 = 1, TN = 10 - 4 = 6 -> 6/7
#                mean = (5/6 + 12/7) / 3 = (35 + 72) / 126 = 107/126
# MCC (Gorodkin): c = trace = 7, s = N = 10, t = row sums = (4, 3, 3), p = column sums = (4, 3, 3)
#                (c s - sum p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2))
#              = (70 - 34) / sqrt(66 * 66) = 36/66 = 6/11
HAND = {
    "accuracy": 7 / 10,
    "sensitivity": 25 / 36,
    "specificity": 107 / 126,
    "mcc": 6 / 11,
}


def test_hand_worked_three_class() -> None:
    report = classification_report(Y_TRUE, Y_PRED, 3)
    assert report["confusion_matrix"] == CM
    assert all(type(v) is int for row in report["confusion_matrix"] for v in row)
    for key, value in HAND.items():
        assert isinstance(report[key], float)
        assert report[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
    assert set(report) == {"accuracy", "sensitivity", "specificity", "mcc", "confusion_matrix"}


def test_numpy_and_torch_inputs_agree() -> None:
    ref = classification_report(Y_TRUE, Y_PRED, 3)
    assert classification_report(np.array(Y_TRUE), np.array(Y_PRED, dtype=np.int32), 3) == ref
    assert classification_report(torch.tensor(Y_TRUE), torch.tensor(Y_PRED), 3) == ref
    assert classification_report(np.array(Y_TRUE, dtype=np.uint8), torch.tensor(Y_PRED), 3) == ref


def test_unused_classes_widen_the_matrix() -> None:
    # n_classes = 4 with class 3 never seen: one extra zero row and column.
    report = classification_report(Y_TRUE, Y_PRED, 4)
    assert report["confusion_matrix"] == [[3, 1, 0, 0], [0, 2, 1, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    assert report["accuracy"] == pytest.approx(0.7)
    # Recall of class 3 is undefined (no true sample): left out -> same macro recall.
    assert report["sensitivity"] == pytest.approx(25 / 36, rel=1e-12)
    # Class 3: TN = 10, FP = 0 -> specificity 1; mean = (107/42 + 1) / 4 = 149/168
    assert report["specificity"] == pytest.approx((5 / 6 + 12 / 7 + 1) / 4, rel=1e-12)
    assert report["mcc"] == pytest.approx(6 / 11, rel=1e-12)


def test_single_true_class_specificity() -> None:
    # Every true label is 0: class 0's specificity is undefined (TN + FP = 0) and left out.
    # Class 1: TN = #pred != 1 = 3, FP = 1 -> 3/4; class 2: TN = 4, FP = 0 -> 1. Mean 7/8.
    report = classification_report([0, 0, 0, 0], [0, 1, 0, 0], 3)
    assert report["specificity"] == pytest.approx(7 / 8)
    assert report["sensitivity"] == pytest.approx(3 / 4)  # only class 0 has a true sample
    assert report["accuracy"] == pytest.approx(3 / 4)


def test_perfect_and_constant_predictions() -> None:
    y = [0, 1, 2, 1, 0, 2]
    perfect = classification_report(y, y, 3)
    assert perfect["accuracy"] == perfect["sensitivity"] == perfect["specificity"] == 1.0
    assert perfect["mcc"] == pytest.approx(1.0)
    constant = classification_report(y, [1] * 6, 3)
    assert constant["accuracy"] == pytest.approx(1 / 3)
    assert constant["sensitivity"] == pytest.approx(1 / 3)  # recalls 0, 1, 0
    # specificities: class 0: 4/4, class 1: 0/4, class 2: 4/4 -> 2/3
    assert constant["specificity"] == pytest.approx(2 / 3)
    assert constant["mcc"] == 0.0  # undefined MCC: scikit-learn's 0


def _brute_force_specificity(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> float:
    values = []
    for c in range(k):
        tn = sum(1 for t, p in zip(y_true, y_pred) if t != c and p != c)
        fp = sum(1 for t, p in zip(y_true, y_pred) if t != c and p == c)
        if tn + fp:
            values.append(tn / (tn + fp))
    return sum(values) / len(values)


@pytest.mark.parametrize("seed", range(6))
def test_against_sklearn_on_random_labels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 11))
    n = int(rng.integers(k * 5, 400))
    y_true = rng.integers(0, k, size=n)
    # Correlated predictions: right with probability 0.6, else uniform.
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, k, size=n))
    report = classification_report(y_true, y_pred, k)
    labels = list(range(k))
    assert report["confusion_matrix"] == confusion_matrix(y_true, y_pred, labels=labels).tolist()
    assert report["accuracy"] == pytest.approx(np.mean(y_true == y_pred), rel=1e-12)
    assert report["sensitivity"] == pytest.approx(
        recall_score(y_true, y_pred, labels=labels, average="macro"), rel=1e-12
    )
    assert report["mcc"] == pytest.approx(matthews_corrcoef(y_true, y_pred), rel=1e-12)
    assert report["specificity"] == pytest.approx(
        _brute_force_specificity(y_true, y_pred, k), rel=1e-12
    )


@pytest.mark.parametrize(
    "y_true, y_pred, n_classes, match",
    [
        ([[0, 1]], [[0, 1]], 2, r"y_true must be 1-D, got shape \(1, 2\)"),
        ([0.0, 1.0], [0, 1], 2, "integer class labels, got dtype float64"),
        ([0, 1], [True, False], 2, "y_pred must hold integer class labels"),
        ([0, 1, 1], [0, 1], 2, "same length, got 3 and 2"),
        ([], [], 2, "empty"),
        ([0, 3], [0, 1], 3, "y_true holds label 3 outside"),
        ([0, 1], [0, -1], 3, "y_pred holds label -1 outside"),
        ([0, 0], [0, 0], 1, "n_classes must be an integer >= 2, got 1"),
        ([0, 1], [0, 1], 2.0, "n_classes must be an integer >= 2, got 2.0"),
    ],
)
def test_bad_inputs(y_true, y_pred, n_classes, match) -> None:
    with pytest.raises(ValueError, match=match):
        classification_report(np.asarray(y_true), np.asarray(y_pred), n_classes)


# ---------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------


def _known_linear() -> torch.nn.Linear:
    # logits = x W^T + b with W = [[1, 0], [0, 1], [-1, -1]], b = [0, 0, 0.5]
    layer = torch.nn.Linear(2, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
        layer.bias.copy_(torch.tensor([0.0, 0.0, 0.5]))
    return layer


# x            logits              argmax
# [ 2,  0] -> [ 2,   0,  -1.5] -> 0
# [ 0,  2] -> [ 0,   2,  -1.5] -> 1
# [-1, -1] -> [-1,  -1,   2.5] -> 2
# [ 1, .5] -> [ 1,  .5,  -1.0] -> 0
# [ 0,  0] -> [ 0,   0,   0.5] -> 2
X = torch.tensor([[2.0, 0.0], [0.0, 2.0], [-1.0, -1.0], [1.0, 0.5], [0.0, 0.0]])
LOGITS = np.array(
    [[2, 0, -1.5], [0, 2, -1.5], [-1, -1, 2.5], [1, 0.5, -1.0], [0, 0, 0.5]], dtype=np.float64
)
Y = torch.tensor([0, 1, 2, 1, 0])
PRED = [0, 1, 2, 0, 2]


def _manual_cross_entropy() -> float:
    lse = np.log(np.exp(LOGITS).sum(axis=1))
    return float(np.mean(lse - LOGITS[np.arange(5), Y.numpy()]))


@pytest.mark.parametrize("batch_size", [1, 2, 1000])
def test_evaluate_known_linear_model(batch_size: int) -> None:
    model = _known_linear()
    result = evaluate(model, SimpleNamespace(x=X, y=Y), n_classes=3, batch_size=batch_size)
    expected = classification_report(Y.numpy(), np.array(PRED), 3)
    for key in ("accuracy", "sensitivity", "specificity", "mcc", "confusion_matrix"):
        assert result[key] == expected[key], key
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert result["confusion_matrix"] == [[1, 0, 1], [1, 1, 0], [0, 0, 1]]
    assert result["loss"] == pytest.approx(_manual_cross_entropy(), rel=1e-12)
    assert result["loss"] == pytest.approx(float(F.cross_entropy(model(X).detach(), Y)), rel=1e-6)
    assert isinstance(result["time"], float) and result["time"] >= 0.0


class _Recorder(torch.nn.Module):
    """Linear layer + dropout that records the grad mode seen in forward."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = _known_linear()
        self.dropout = torch.nn.Dropout(p=0.9)
        self.grad_enabled: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.grad_enabled.append(torch.is_grad_enabled())
        return self.dropout(self.linear(x))


@pytest.mark.parametrize("initially_training", [True, False])
def test_evaluate_uses_eval_mode_and_no_grad_and_restores_mode(initially_training: bool) -> None:
    torch.manual_seed(0)
    model = _Recorder()
    model.train(initially_training)
    result = evaluate(model, SimpleNamespace(x=X, y=Y), n_classes=3, batch_size=2)
    # With dropout p = 0.9 active, the loss would differ from the dropout-free value.
    assert result["loss"] == pytest.approx(_manual_cross_entropy(), rel=1e-12)
    assert model.grad_enabled == [False, False, False]
    assert model.training is initially_training
    assert model.dropout.training is initially_training
    assert model.linear.weight.grad is None


def test_evaluate_with_data_split_and_explicit_device() -> None:
    from optuna_gamma.tuner.builtin.data import Split

    model = _known_linear()
    split = Split(x=X.clone(), y=Y.clone())
    result = evaluate(model, split, n_classes=3, device="cpu")
    assert result["loss"] == pytest.approx(_manual_cross_entropy(), rel=1e-12)
    assert torch.equal(split.x, X) and torch.equal(split.y, Y)  # inputs untouched


def test_evaluate_diverged_model_gives_nan_loss() -> None:
    model = _known_linear()
    with torch.no_grad():
        model.weight.fill_(math.nan)
    result = evaluate(model, SimpleNamespace(x=X, y=Y), n_classes=3)
    assert math.isnan(result["loss"])
    assert 0.0 <= result["accuracy"] <= 1.0


def test_evaluate_restores_mode_on_error() -> None:
    model = _known_linear()
    model.train()
    with pytest.raises(ValueError, match=r"model output must have shape .*\(5, 4\), got \(5, 3\)"):
        evaluate(model, SimpleNamespace(x=X, y=Y), n_classes=4)
    assert model.training


@pytest.mark.parametrize(
    "split, kwargs, match",
    [
        (SimpleNamespace(x=X.numpy(), y=Y), {}, "tensor attributes x and y"),
        (object(), {}, "tensor attributes x and y"),
        (SimpleNamespace(x=X, y=Y[:4]), {}, "y shape"),
        (SimpleNamespace(x=X[:0], y=Y[:0]), {}, "empty"),
        (SimpleNamespace(x=X, y=Y.float()), {}, "integer class labels"),
        (SimpleNamespace(x=X, y=torch.tensor([0, 1, 2, 3, 0])), {}, "label 3 outside"),
        (SimpleNamespace(x=X, y=Y), {"batch_size": 0}, "integer >= 1, got 0"),
        (SimpleNamespace(x=X, y=Y), {"n_classes": 1}, "n_classes"),
    ],
)
def test_evaluate_bad_inputs(split, kwargs, match) -> None:
    kwargs = {"n_classes": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        evaluate(_known_linear(), split, **kwargs)


def test_evaluate_on_real_digits() -> None:
    """A least-squares linear classifier on scikit-learn's digits, evaluated by evaluate()."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.data / 16.0, dtype=torch.float32)
    y = torch.tensor(data.target, dtype=torch.int64)
    onehot = F.one_hot(y, 10).double()
    design = torch.cat([x.double(), torch.ones(len(x), 1, dtype=torch.float64)], dim=1)
    coef = torch.linalg.lstsq(design, onehot).solution  # (65, 10)
    model = torch.nn.Linear(64, 10)
    with torch.no_grad():
        model.weight.copy_(coef[:64].T.float())
        model.bias.copy_(coef[64].float())
    result = evaluate(model, SimpleNamespace(x=x, y=y), n_classes=10, batch_size=300)
    pred = model(x).detach().argmax(1).numpy()
    assert result["accuracy"] == pytest.approx(float(np.mean(pred == data.target)))
    assert result["accuracy"] > 0.9  # linear least squares fits digits well
    assert result["mcc"] == pytest.approx(matthews_corrcoef(data.target, pred))
    assert result["loss"] == pytest.approx(float(F.cross_entropy(model(x).detach(), y)), rel=1e-5)


def test_import_does_not_pull_torch_or_sklearn() -> None:
    code = (
        "import sys, optuna_gamma.tuner.reporting.metrics; "
        "assert 'torch' not in sys.modules and 'sklearn' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
