"""kappa (thesis eqs. 11-12, docs/design.md §3) on hand-computed points and edge cases, and the
objectives a trial returns (unclipped kappa, accuracy, loss, callables)."""

from __future__ import annotations

from collections.abc import Mapping
import math
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from optuna_gamma.tuner.search.objectives import DEFAULT_LAMBDA
from optuna_gamma.tuner.search.objectives import kappa_1
from optuna_gamma.tuner.search.objectives import kappa_2
from optuna_gamma.tuner.search.objectives import LOSS_FLOOR
from optuna_gamma.tuner.search.objectives import Objective
from optuna_gamma.tuner.search.objectives import resolve_objective


# ---------------------------------------------------------------------------------------------
# Hand-computed points. ln(0.5) = -0.693147..., ln(2) = 0.693147..., ln(0.1) = -2.302585...
# ---------------------------------------------------------------------------------------------


def test_kappa1_hand_computed() -> None:
    # Ma = 0.9, Ml = 0.5, lam = 0.5:  0.9 - 0.5 * ln(0.5) = 0.9 + 0.346574 = 1.246574
    assert kappa_1(0.9, 0.5, lam=0.5) == pytest.approx(1.2465735902799727, rel=1e-12)
    # Ma = 0.8, Ml = 0.1, lam = 1:    0.8 - ln(0.1) = 0.8 + 2.302585 = 3.102585
    assert kappa_1(0.8, 0.1, lam=1.0) == pytest.approx(3.1025850929940457, rel=1e-12)
    # Ma = 0.5, Ml = 1.0, lam = 0.3: ln(1) = 0 -> kappa_1 = Ma = 0.5
    assert kappa_1(0.5, 1.0, lam=0.3) == 0.5


def test_kappa2_hand_computed() -> None:
    # Ma = 0.9, Ml = 0.5, lam = 0.5:  0.81 - ln(0.5)/0.5 = 0.81 + 1.386294 = 2.196294
    assert kappa_2(0.9, 0.5, lam=0.5) == pytest.approx(2.1962943611198906, rel=1e-12)
    # Ma = 0.8, Ml = 0.1, lam = 1:    0.64 - ln(0.1) = 0.64 + 2.302585 = 2.942585
    assert kappa_2(0.8, 0.1, lam=1.0) == pytest.approx(2.9425850929940456, rel=1e-12)
    # Ma = 0.5, Ml = 1.0: ln(1) = 0 -> kappa_2 = Ma^2 = 0.25 whatever lam
    assert kappa_2(0.5, 1.0, lam=0.25) == 0.25


def test_default_lambda_is_used_and_in_range() -> None:
    assert 0.0 < DEFAULT_LAMBDA <= 1.0
    assert kappa_1(0.9, 0.5) == kappa_1(0.9, 0.5, lam=DEFAULT_LAMBDA)
    assert kappa_2(0.9, 0.5) == kappa_2(0.9, 0.5, lam=DEFAULT_LAMBDA)
    # The default makes eq. 12 weigh ln(Ml) more than eq. 11 (the thesis's reason for eq. 12).
    d1 = kappa_1(0.5, 0.5) - kappa_1(0.5, 1.0)  # = -lam ln 0.5
    d2 = kappa_2(0.5, 0.5) - kappa_2(0.5, 1.0)  # = -ln 0.5 / lam
    assert d2 > d1 > 0


# ---------------------------------------------------------------------------------------------
# Edge cases
# ---------------------------------------------------------------------------------------------


def test_max_zero_clamp() -> None:
    # Ma = 0.2, Ml = e^2 (ln = 2), lam = 0.5: 0.2 - 0.5 * 2 = -0.8 -> 0
    assert kappa_1(0.2, math.e**2, lam=0.5) == 0.0
    # Ma = 0.9, Ml = e (ln = 1), lam = 1: 0.81 - 1 = -0.19 -> 0
    assert kappa_2(0.9, math.e, lam=1.0) == 0.0
    # Just above the clamp: Ma = 0.9, Ml = e^0.5, lam = 1: 0.81 - 0.5 = 0.31
    assert kappa_2(0.9, math.exp(0.5), lam=1.0) == pytest.approx(0.31, rel=1e-12)


def test_zero_loss_is_clipped() -> None:
    # ln(1e-12) = -27.631021...; Ma = 1, lam = 1: kappa_1 = 1 + 27.631021 = 28.631021
    expected_1 = 1.0 - math.log(LOSS_FLOOR)
    assert LOSS_FLOOR == 1e-12
    assert kappa_1(1.0, 0.0, lam=1.0) == pytest.approx(expected_1, rel=1e-12)
    assert kappa_1(1.0, 0.0, lam=1.0) == pytest.approx(28.631021115928547, rel=1e-12)
    # Below the floor gives the same value as the floor itself.
    assert kappa_2(0.5, 1e-30, lam=0.5) == kappa_2(0.5, 1e-12, lam=0.5)
    assert kappa_2(0.5, 0.0, lam=0.5) == pytest.approx(0.25 - math.log(1e-12) / 0.5, rel=1e-12)
    # Ma = 0, Ml = 0, lam = 0.01: 0 + 27.631021 / 0.01 = 2763.1021 (finite, no log(0) error)
    assert kappa_2(0.0, 0.0, lam=0.01) == pytest.approx(2763.1021115928547, rel=1e-12)


def test_accuracy_bounds() -> None:
    # Ma = 0: kappa_1 = -lam ln Ml; Ml = 0.1, lam = 0.5: 0.5 * 2.302585 = 1.151293
    assert kappa_1(0.0, 0.1, lam=0.5) == pytest.approx(1.1512925464970228, rel=1e-12)
    # Ma = 1: kappa_2 = 1 - ln(Ml)/lam; Ml = 1: exactly 1
    assert kappa_2(1.0, 1.0, lam=0.7) == 1.0
    for bad in (-0.01, 1.0001, 95.0, math.nan, math.inf):
        for fn in (kappa_1, kappa_2):
            with pytest.raises(ValueError, match="accuracy"):
                fn(bad, 0.5)
    with pytest.raises(ValueError, match="accuracy"):
        kappa_1("0.5", 0.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("lam", [0.0, -0.5, 1.0000001, 2.0, math.nan, math.inf])
def test_lambda_bounds(lam: float) -> None:
    for fn in (kappa_1, kappa_2):
        with pytest.raises(ValueError, match=r"lam must lie in \(0, 1\], got " + repr(lam)):
            fn(0.5, 0.5, lam=lam)


def test_lambda_upper_bound_inclusive_and_tiny_lambda() -> None:
    assert kappa_1(0.5, 0.5, lam=1.0) == pytest.approx(0.5 + math.log(2.0), rel=1e-12)
    # lam = 1e-3: kappa_2 = 0.25 + ln(2)/1e-3 = 0.25 + 693.147...
    assert kappa_2(0.5, 0.5, lam=1e-3) == pytest.approx(0.25 + 1000.0 * math.log(2.0), rel=1e-12)


def test_bad_loss_in_kappa_functions() -> None:
    for bad in (-0.1, math.nan, math.inf):
        with pytest.raises(ValueError, match="loss"):
            kappa_1(0.5, bad)
        with pytest.raises(ValueError, match="loss"):
            kappa_2(0.5, bad)


def test_numpy_scalars_accepted() -> None:
    f32: Any = np.float32(0.9)  # not a float subclass (np.float64 is): accepted all the same
    assert kappa_1(f32, np.float64(0.5), lam=0.5) == pytest.approx(
        kappa_1(0.9, 0.5, lam=0.5), rel=1e-6
    )
    assert isinstance(kappa_2(np.float64(0.9), np.float64(0.5)), float)


# ---------------------------------------------------------------------------------------------
# Objectives: what the study sees (docs/design.md §3)
# ---------------------------------------------------------------------------------------------


def test_unclipped_kappa_orders_like_kappa_and_separates_where_kappa_is_zero() -> None:
    k1 = Objective.kappa1()
    assert k1.metric_name == "kappa" and k1.direction == "maximize" and k1.name == "kappa1"
    # Two early-epoch trials with kappa_1 clipped to 0 (loss near ln 10): the study still sees
    # that the second is better.
    a = {"accuracy": 0.11, "loss": 2.30}
    b = {"accuracy": 0.30, "loss": 2.10}
    assert kappa_1(0.11, 2.30) == kappa_1(0.30, 2.10) == 0.0
    assert k1(a) == pytest.approx(0.11 - 0.5 * math.log(2.30), rel=1e-12) and k1(b) > k1(a)
    assert k1.clipped is not None and k1.clipped(a) == 0.0
    # Where kappa > 0 the unclipped value is kappa itself.
    good = {"accuracy": 0.9, "loss": 0.5}
    assert k1(good) == kappa_1(0.9, 0.5) and k1.clipped(good) == kappa_1(0.9, 0.5)
    k2 = Objective.kappa2(0.2)
    assert (
        k2(good) == pytest.approx(0.81 - math.log(0.5) / 0.2, rel=1e-12)
        and k2.name == "kappa2:0.2"
    )


def test_kappa_of_a_diverged_run_is_nan_not_an_error() -> None:
    for obj in (Objective.kappa1(), Objective.kappa2()):
        assert math.isnan(obj({"accuracy": 0.1, "loss": math.inf}))
        assert math.isnan(obj({"accuracy": 0.1, "loss": math.nan}))


def test_resolve_objective_names_lambdas_and_callables() -> None:
    assert resolve_objective("kappa1").name == "kappa1"
    assert resolve_objective("KAPPA2:0.25").fn({"accuracy": 0.5, "loss": 1.0}) == 0.25
    assert resolve_objective("kappa2", lam=0.1).name == "kappa2:0.1"
    acc = resolve_objective("accuracy")
    assert acc({"accuracy": 0.7}) == 0.7 and acc.metric_name == "accuracy"
    loss = resolve_objective("loss")
    assert loss.direction == "minimize" and loss.sign == -1.0 and loss({"loss": 0.3}) == 0.3

    def mine(m):
        return m["accuracy"] - m["loss"]

    obj = resolve_objective(mine)
    assert obj.name == "mine" and obj({"accuracy": 0.9, "loss": 0.4}) == pytest.approx(0.5)
    own = Objective(
        "mse", lambda m: m["mse"], direction="minimize", metric_name="mse", requires=("mse",)
    )
    assert resolve_objective(own) is own
    for bad, match in (
        ("kappa3", "unknown objective 'kappa3'"),
        ("kappa1:x", "lambda"),
        ("kappa1:2", r"lam must lie in \(0, 1\]"),
        ("accuracy:0.5", "unknown"),
        (42, "42"),
    ):
        with pytest.raises(ValueError, match=match):
            resolve_objective(bad)  # type: ignore[arg-type]
    up: Any = "up"  # deliberately not a direction
    with pytest.raises(ValueError, match="direction"):
        Objective("x", mine, direction=up)


def test_objective_names_missing_metrics_and_bad_returns() -> None:
    with pytest.raises(ValueError, match=r"needs the metrics \['loss'\]"):
        Objective.kappa1()({"accuracy": 0.5})
    # metrics under other names: each as it is, its direction read from its name
    keras = {"val_accuracy": 0.5, "val_loss": 1.2, "train_loss": 0.9, "diverged": False}
    with pytest.raises(ValueError) as err:
        Objective.kappa1()(keras)
    assert "pass objective='max:val_accuracy' or objective='min:val_loss', or" in str(err.value)
    with pytest.raises(ValueError) as err:
        Objective.kappa1()({"confusion": [[1, 0], [0, 1]]})
    assert "pass an objective computed from your metrics" in str(err.value)
    bad_returns: tuple[Any, ...] = ("1.0", None, True, np.array([1.0, 2.0]))
    for bad in bad_returns:

        def returns_bad(m: Mapping[str, Any], bad: Any = bad) -> Any:
            return bad

        with pytest.raises(ValueError, match="must return a real number"):
            resolve_objective(returns_bad)({})
    f32: Any = np.float32(2.5)  # a numpy scalar that is not a float subclass
    assert resolve_objective(lambda m: f32)({}) == 2.5
    assert math.isnan(resolve_objective(lambda m: math.nan)({}))  # non-finite: the caller's call


def test_import_does_not_pull_torch() -> None:
    code = (
        "import sys, optuna_gamma.tuner.search.objectives; "
        "assert 'torch' not in sys.modules and 'sklearn' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------------------------
# examples/own_objective.py: GammaBOSampler in a plain create_study on a user's objective
# ---------------------------------------------------------------------------------------------


def test_example_own_objective_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path
    import runpy

    import optuna

    from optuna_gamma import GammaBOSampler

    path = Path(__file__).resolve().parents[1] / "examples" / "own_objective.py"
    module = runpy.run_path(str(path), run_name="own_objective")
    study = module["main"](["--n-trials", "5", "--seed", "1"])
    assert isinstance(study.sampler, GammaBOSampler)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 5
    assert 0.0 < study.best_value <= 1.0
    assert study.best_value == max(t.value for t in study.trials)
    out = capsys.readouterr().out
    assert f"best 3-fold accuracy {study.best_value:.4f}" in out


def test_one_metric_of_evaluate_as_the_objective() -> None:
    from optuna_gamma.tuner.search.objectives import Objective
    from optuna_gamma.tuner.search.objectives import resolve_objective

    mse = resolve_objective("min:mse")
    assert (mse.name, mse.direction, mse.metric_name, mse.requires) == (
        "min:mse",
        "minimize",
        "mse",
        ("mse",),
    )
    assert mse({"mse": 0.25, "accuracy": 0.1}) == 0.25
    f1 = resolve_objective(" MAX:F1 ")  # the direction in any case, the name as evaluate() has it
    assert (f1.direction, f1({"F1": 0.5})) == ("maximize", 0.5)
    with pytest.raises(ValueError, match=r"objective 'min:mse' needs the metrics \['mse'\]"):
        mse({"loss": 1.0})
    with pytest.raises(ValueError, match="needs a metric name"):
        resolve_objective("max: ")
    with pytest.raises(ValueError, match="direction must be 'min' or 'max'"):
        Objective.metric("mse", "minimize")
    with pytest.raises(ValueError, match="'min:NAME' or 'max:NAME'"):
        resolve_objective("mse")
