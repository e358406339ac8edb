"""Smoke tests of the thesis-reproduction benchmarks (``benchmarks/thesis/``) and the peers
benchmark (``benchmarks/tuner/peers.py``).

Tiny real runs (scikit-learn's digits with the MLP, or a few MNIST-500 trainings) through the
same code paths as the full experiments: resumable cell files, the grid-union bookkeeping, the
clipped objectives, compute accounting at equal budgets, the cosine-annealing trainer and a
population member of PBT/PB2 without Ray. The Ray Tune run itself needs the ``peers`` extra
and is skipped where Ray is not installed (CI installs ``.[dev]`` only).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest


torch = pytest.importorskip("torch")

from benchmarks.thesis import common as tc  # noqa: E402
from benchmarks.thesis import kappa as thesis_kappa  # noqa: E402
from benchmarks.thesis import mnist500 as m500  # noqa: E402
from benchmarks.thesis import one_d as thesis_1d  # noqa: E402
from benchmarks.thesis import probe as thesis_probe  # noqa: E402
from benchmarks.tuner import peers  # noqa: E402
import optuna_gamma.tuner as tuner  # noqa: E402
from optuna_gamma.tuner import ThesisTrainer  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_log_levels() -> object:
    """The modules' ``main`` quiets Optuna's and the tuner's loggers for the whole process (as a
    command line should); put them back so that other tests' log assertions still hold."""
    import logging

    import optuna

    before = optuna.logging.get_verbosity(), logging.getLogger("optuna_gamma").level
    yield
    optuna.logging.set_verbosity(before[0])
    logging.getLogger("optuna_gamma").setLevel(before[1])


def _args(tmp_path: Path) -> argparse.Namespace:
    return argparse.Namespace(
        runs_dir=tmp_path / "runs", device="cpu", threads=1, out=tmp_path / "out"
    )


def _digits(*_: object, data_seed: int = 0, **__: object) -> ThesisTrainer:
    return ThesisTrainer("digits", model="mlp", data_seed=data_seed)


# ------------------------------------------------------------------------------- common plumbing
def test_parse_seeds() -> None:
    assert tc.parse_seeds("0-2,5") == [0, 1, 2, 5]
    assert tc.parse_seeds(["3", "1-2"]) == [1, 2, 3]
    with pytest.raises(argparse.ArgumentTypeError):
        tc.parse_seeds("2-1")
    with pytest.raises(argparse.ArgumentTypeError):
        tc.parse_seeds("x")


def test_cells_are_durable_and_skip_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    cells = tc.Cells(path)
    cells.add({"key": "a", "v": 1.0, "nan": float("nan")})
    cells.add({"key": "b", "v": np.float64(2.5)})
    with open(path, "a") as f:
        f.write('{"key": "c", "v"')  # a write cut short by a kill
    again = tc.Cells(path)
    assert "a" in again and "b" in again and "c" not in again
    assert again.records["a"]["nan"] is None and again.records["b"]["v"] == 2.5


def test_union_grid_shares_points_between_grids() -> None:
    union, grids = tc.union_grid([100, 200, 300, 400, 500])
    assert len(union) == 1000  # 400 + 500 + 300 - 3 * 100 + 100 (inclusion-exclusion)
    for n, pts in grids.items():
        assert len(pts) == n and len(set(pts)) == n
        assert pts[0] == pytest.approx(0.5 / n) and pts[-1] == 0.5
        assert set(pts) <= set(union)
    assert set(grids[100]) <= set(grids[200]) and set(grids[100]) <= set(grids[500])
    assert min(union) == tc.THESIS_LR_LOW


def test_clipped_objective_is_flat_where_the_thesis_kappa_is_zero() -> None:
    obj = tc.objective("kappa1-clipped")
    high_loss = {"accuracy": 0.3, "loss": 2.2}  # 0.3 - 0.5 ln 2.2 < 0
    assert obj(high_loss) == 0.0
    assert obj({"accuracy": 0.2, "loss": 2.3}) == 0.0
    assert obj.clipped(high_loss) == 0.0
    low_loss = {"accuracy": 0.9, "loss": 0.3}
    assert obj(low_loss) == pytest.approx(0.9 - 0.5 * math.log(0.3))
    k2 = tc.objective("kappa2-clipped")
    assert k2(low_loss) == pytest.approx(0.81 - math.log(0.3) / 0.5)
    # a diverged trial is told a value just below 0, under every healthy trial of a flat epoch
    assert (
        obj.worst({"accuracy": 0.1, "loss": 2.3}) == 0.0
        and k2.worst({"accuracy": 0.1, "loss": 2.3}) == 0.0
    )
    assert tc.objective("kappa1") == "kappa1"
    with pytest.raises(ValueError, match="unknown objective"):
        tc.objective("kappa3")


def test_fixed_points_sampler_trains_every_point_once(tmp_path: Path) -> None:
    """The tuner reseeds a sampler factory every trial; a seeded GridSampler would then train
    some points twice and others never (its grid order depends on its seed)."""
    points = [0.02 * k for k in range(1, 7)]
    res = tuner.tune_whole(
        _digits(),
        tc.thesis_space(),
        tc.tuner_config(
            _args(tmp_path),
            "pts",
            tmp_path / "r",
            sampler=tc.fixed_points_sampler(points),
            trials_per_epoch=len(points),
            epochs=1,
            seed=0,
        ),
    )
    assert res.trials_reused == 0
    assert sorted(t["params"]["lr"] for t in res.trials) == pytest.approx(points)


# ------------------------------------------------------------------------------- figs. 12-13
def test_thesis_1d_counts_evaluations_to_the_maximum() -> None:
    x, fmax = thesis_1d.true_maximum()
    assert x == pytest.approx(-0.35939, abs=1e-4) and fmax == pytest.approx(0.500360, abs=1e-6)
    assert thesis_1d.evaluations_to([0.0, 0.4995, 0.5], fmax, 1e-2) == 2
    assert thesis_1d.evaluations_to([0.0, 0.4995, 0.5], fmax, 1e-3) == 2
    assert thesis_1d.evaluations_to([0.0, 0.49], fmax, 1e-3) is None
    cell = thesis_1d.run_cell("student_t", 0, True, 8, fmax)
    assert len(cell["values"]) == 8 and max(cell["values"]) <= fmax + 1e-12
    e = cell["evals_0.01"]
    assert e is None or max(cell["values"][:e]) >= fmax - 1e-2


def test_thesis_1d_main_writes_table_and_page(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert (
        thesis_1d.main(
            [
                "--seeds",
                "0",
                "--budget",
                "5",
                "--samplers",
                "gaussian",
                "gp",
                "--deterministic",
                "no",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert len(tc.Cells(out / "thesis_1d.jsonl")) == 2
    assert "gp (Optuna GPSampler)" in (out / "thesis_1d.md").read_text()
    assert (out / "thesis_1d.html").exists() and (out / "plotly.min.js").exists()
    # resume: nothing new to run
    thesis_1d.main(
        [
            "--seeds",
            "0",
            "--budget",
            "5",
            "--samplers",
            "gaussian",
            "gp",
            "--deterministic",
            "no",
            "--out",
            str(out),
        ]
    )
    assert len((out / "thesis_1d.jsonl").read_text().splitlines()) == 2


# ------------------------------------------------------------------------------- tables 8-11
def test_grid_results_read_off_the_union_equal_direct_grid_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(m500, "_trainer", lambda root, seed: _digits(data_seed=seed))
    args = _args(tmp_path)
    args.chunk = 3  # the union of grids 4 and 6 (8 points) in three studies
    cell = m500.run_grid_cell(args, None, 0, 1, [4, 6])
    assert cell["n_points"] == 8 and len(cell["trials"]) == 8
    for n in (4, 6):
        derived = m500.grid_result(cell, n)
        direct = tuner.tune_whole(
            _digits(),
            tc.thesis_space(low=0.5 / n),
            tc.tuner_config(
                args, "g", tmp_path / f"direct{n}", sampler=f"grid:{n}:linear", epochs=1, seed=0
            ),
        )
        accs = [
            (t["metrics"]["accuracy"], -t["metrics"]["loss"], t["params"]["lr"])
            for t in direct.trials
        ]
        best = max(accs)
        assert derived["valid_accuracy"] == pytest.approx(best[0])
        assert derived["lr"] == pytest.approx(best[2])
        assert derived["epochs"] == n


def test_mnist500_bo_cell_and_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(m500, "_trainer", lambda root, seed: _digits(data_seed=seed))
    out = tmp_path / "out"
    assert (
        m500.main(
            [
                "--seeds",
                "0",
                "--grid-sizes",
                "4",
                "--bo-trials",
                "3",
                "--samplers",
                "gamma",
                "--objectives",
                "accuracy",
                "--out",
                str(out),
                "--runs-dir",
                str(tmp_path / "runs"),
                "--data-root",
                str(tmp_path),
            ]
        )
        == 0
    )
    recs = tc.Cells(out / "thesis_mnist500.jsonl").values()
    bo = [r for r in recs if r["kind"] == "bo"][0]
    assert len(bo["trials"]) == 3 and bo["valid_accuracy"] == max(t[2] for t in bo["trials"])
    assert bo["test"]["accuracy"] > 0.1
    text = (out / "thesis_mnist500.md").read_text()
    assert "gamma 2+1 (accuracy)" in text and "grid 4" in text
    assert not (tmp_path / "runs" / m500.NAME).exists() or not any(
        (tmp_path / "runs" / m500.NAME).iterdir()
    )


# ------------------------------------------------------------------------------- tables 4-5
def test_kappa_experiment_records_flat_clipped_epochs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tuner, "ThesisTrainer", _digits)
    out = tmp_path / "out"
    assert (
        thesis_kappa.main(
            [
                "--seeds",
                "0",
                "--grid-seeds",
                "0",
                "--grid-size",
                "3",
                "--samplers",
                "grid",
                "gamma",
                "--objectives",
                "accuracy",
                "kappa1-clipped",
                "--out",
                str(out),
                "--runs-dir",
                str(tmp_path / "runs"),
                "--data-root",
                str(tmp_path),
            ]
        )
        == 0
    )
    cells = tc.Cells(out / "thesis_kappa.jsonl").values()
    assert len(cells) == 4
    for c in cells:
        assert set(c["test"]) == {"1", "2"}
        assert len(c["schedule"]) == 2
        assert c["compute_epochs"] == 2 * (3 if c["arm"] == "grid" else 12) - c["trials_reused"]
        for s in c["schedule"]:
            assert 0 <= s["n_zero_clipped"] <= len(s["trial_lrs"])
            assert {"sensitivity", "specificity", "mcc"} <= set(c["test"]["2"])
    assert "kappa1-clipped" in (out / "thesis_kappa.md").read_text()


# ------------------------------------------------------------------------------- peers
def test_cosine_trainer_anneals_per_epoch() -> None:
    from optuna_gamma.tuner import apply_hyperparameters
    from optuna_gamma.tuner import EpochContext

    trainer = peers.CosineTrainer(_digits(), epochs=4)
    state = trainer.build(0, torch.device("cpu"))
    apply_hyperparameters(state, {"lr": 0.2})
    seen = []
    for e in range(1, 5):
        seen.append(state.optimizer.param_groups[0]["lr"])
        trainer.train_epoch(
            state, {"lr": 0.2}, EpochContext(e, e, torch.device("cpu"), 0, torch.Generator())
        )
    assert seen == pytest.approx([0.2 * (1 + math.cos(math.pi * k / 4)) / 2 for k in range(4)])
    with pytest.raises(ValueError):
        peers.CosineTrainer(_digits(), epochs=0)


def test_a_run_that_diverges_is_recorded_not_lost(tmp_path: Path) -> None:
    from optuna_gamma.tuner import SearchSpace

    trainer = _digits()
    space = SearchSpace(lr_low=1e5, lr_high=1e6)  # every trial explodes
    rec = tc.run_per_epoch(
        _args(tmp_path),
        trainer,
        space,
        tmp_path / "r",
        sampler="random",
        objective="kappa1",
        seed=0,
        trials=2,
        test_after=[2],
    )
    assert (
        "diverged" in rec["failed"] and rec["epochs_adopted"] == 0 and rec["compute_epochs"] == 2
    )
    cell = {"arm": "pe-gamma", "seed": 0, **rec}
    assert peers._points(cell) == []


def test_population_member_step_without_ray() -> None:
    trainer = _digits()
    state = trainer.build(0, torch.device("cpu"))
    m = peers.member_step(trainer, state, 0.05, 1, 0, torch.device("cpu"))
    assert state.optimizer.param_groups[0]["lr"] == 0.05
    assert (
        math.isfinite(m["objective"]) and 0 <= m["valid_accuracy"] <= 1 and m["train_seconds"] > 0
    )
    bad = peers.member_step(
        trainer, trainer.build(0, torch.device("cpu")), 1e6, 1, 0, torch.device("cpu")
    )
    assert bad["objective"] == -100.0 and bad["valid_loss"] is None
    assert peers._clip_to_bounds({"lr": 3.0})["lr"] == peers.LR_HIGH
    assert peers._clip_to_bounds({"log10_lr": -9.0})["log10_lr"] == pytest.approx(-3.0)


def test_peers_tuner_arms_spend_the_same_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        peers, "make_trainer", lambda dataset, root, subset, seed: _digits(data_seed=seed)
    )
    out = tmp_path / "out"
    arms = ["pe-gamma", "pe-gamma-t4", "fixed-0.1", "grid11-cosine", "tpe-whole"]
    assert (
        peers.main(
            [
                "--dataset",
                "mnist",
                "--seeds",
                "0",
                "--epochs",
                "1",
                "--arms",
                *arms,
                "--out",
                str(out),
                "--runs-dir",
                str(tmp_path / "runs"),
                "--data-root",
                str(tmp_path),
            ]
        )
        == 0
    )
    cells = {c["arm"]: c for c in tc.Cells(out / "peers.jsonl").values()}
    assert set(cells) == set(arms)
    assert cells["pe-gamma"]["compute_epochs"] + cells["pe-gamma"]["trials_reused"] == 12
    assert cells["tpe-whole"]["compute_epochs"] + cells["tpe-whole"]["trials_reused"] == 12
    assert cells["pe-gamma-t4"]["compute_epochs"] + cells["pe-gamma-t4"]["trials_reused"] == 12
    assert cells["pe-gamma-t4"]["epochs"] == 3
    assert cells["grid11-cosine"]["compute_epochs"] == 12
    assert set(cells["fixed-0.1"]["test"]) == {"1", "12"}  # after E and after B = 12 E epochs
    assert [p[0] for p in peers._points(cells["fixed-0.1"])] == [1, 12]
    text = (out / "peers_mnist.md").read_text()
    assert "fixed-0.1 (12 epochs)" in text and "Per-epoch gamma against PBT and PB2" in text
    assert "E = 1 epoch, budget B = 12 E = 12 training epochs" in text
    # E comes from the budget, not from the first cell: a fixed-lr cell's "epochs" is all of B
    assert cells["fixed-0.1"]["epochs"] == 12
    first_fixed = [cells["fixed-0.1"], *(c for a, c in cells.items() if a != "fixed-0.1")]
    text = peers.summarize(first_fixed, tmp_path / "again", "peers", "mnist")
    assert "E = 1 epoch, budget B = 12 E = 12 training epochs" in text


def test_a_trainer_option_arm_builds_its_trainer_and_the_own_trainer_refuses_one() -> None:
    """``pe-pop-valid40`` trains ``pe-pop-no-late`` on a 40 % validation split."""
    assert peers._TRAINER_OPTIONS["pe-pop-valid40"] == {"valid_fraction": 0.4}
    assert peers.POLICIES["pe-pop-valid40"] == peers.POLICIES["pe-pop-no-late"]
    wide = peers.make_trainer("digits", None, None, 0, valid_fraction=0.4).data
    usual = peers.make_trainer("digits", None, None, 0).data
    n = len(usual.train.y) + len(usual.valid.y)
    assert len(wide.train.y) + len(wide.valid.y) == n
    assert len(wide.valid.y) == math.ceil(0.4 * n) and len(usual.valid.y) == math.ceil(0.2 * n)
    with pytest.raises(ValueError, match=r"own trainer, which takes no \['valid_fraction'\]"):
        peers.make_trainer("own-digits", None, None, 0, valid_fraction=0.4)


@pytest.mark.slow
def test_pbt_population_on_ray(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray", reason="the peers extra (ray[tune]) is not installed")
    monkeypatch.setattr(
        peers, "make_trainer", lambda dataset, root, subset, seed: _digits(data_seed=seed)
    )
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    # Ray workers import benchmarks.tuner.peers afresh, without this test's monkeypatch: give them
    # the digits trainer through the dataset name the real make_trainer understands.
    rec = peers.run_ray_arm(_args(tmp_path), "pbt", "digits", None, 0, 2, None)
    assert rec["compute_epochs"] == 2 * peers.TRIALS
    assert rec["test"]["2"]["accuracy"] > 0.1
    assert len(rec["lr_path"]) == 2 and all(
        peers.LR_LOW <= lr <= peers.LR_HIGH for lr in rec["lr_path"]
    )


def test_own_trainer_task_tunes_lr_and_weight_decay(tmp_path: Path) -> None:
    """The user-trainer task (examples/own_training.py: AdamW, lr and weight decay tuned):
    a member trains with both values set on the optimizer, explored values stay in range, and
    the tuner's arms and the untuned training run through the same benchmark."""
    task = peers.TASKS["own-digits"]
    trainer = peers.make_trainer("own-digits", None, None, 0)
    state = trainer.build(0, torch.device("cpu"))
    m = peers.member_step(
        trainer,
        state,
        {"lr": 0.004, "weight_decay": 0.02},
        1,
        0,
        torch.device("cpu"),
        fixed=task.fixed,
    )
    group = state.optimizer.param_groups[0]
    assert (group["lr"], group["weight_decay"]) == (0.004, 0.02)
    assert m["params"] == {"lr": 0.004, "weight_decay": 0.02} and 0 <= m["valid_accuracy"] <= 1
    static = {"dataset": "own-digits"}
    assert peers.member_params({"log10_lr": -3.0, "weight_decay": 0.5}, task) == {
        "lr": pytest.approx(1e-3),
        "weight_decay": 0.5,
    }
    clipped = peers._clip_to_bounds({"static": static, "lr": 1.0, "log10_weight_decay": -9.0})
    assert clipped["lr"] == 3e-2 and clipped["log10_weight_decay"] == pytest.approx(-5.0)
    out = tmp_path / "out"
    common = ["--dataset", "own-digits", "--seeds", "0", "--epochs", "1", "--out", str(out)]
    common += ["--runs-dir", str(tmp_path / "runs")]
    assert peers.main([*common, "--arms", "untuned", "pe-pop"]) == 0
    cells = {c["arm"]: c for c in tc.Cells(out / "peers.jsonl").values()}
    assert [p[0] for p in peers._points(cells["untuned"])] == [1, 12]
    assert cells["untuned"]["schedule"][0]["trial_lrs"] == [1e-3]
    assert cells["pe-pop"]["compute_epochs"] == 12
    assert {"lr", "weight_decay"} <= set(cells["pe-pop"]["schedule"][-1]["params"])
    # the last state is the final model; the validation peak's test is recorded beside it
    pop = cells["pe-pop"]
    assert pop["final_model"] == "last" and set(pop["test"]) == {str(pop["epochs"])}
    (best_epoch,) = pop["test_best"]
    assert 1 <= int(best_epoch) <= pop["epochs"] and "accuracy" in pop["test_best"][best_epoch]
    assert "untuned (12 epochs)" in (out / "peers_own-digits.md").read_text()
    with pytest.raises(ValueError, match="searches the thesis's learning rate only"):
        peers.run_tuner_arm(_args(tmp_path), "pe-gamma", "own-digits", None, 0, 1, None)


def test_a_task_whose_build_sizes_its_cosine_by_the_run(tmp_path: Path) -> None:
    """``own-sequence`` (examples/own_sequence.py: a GRU, AdamW, a cosine over the epochs its
    build is given): a member's schedule spans the member's epochs, and the untuned training of
    E and of B epochs are two trainings, each annealed over its own length (not the first E
    epochs of the B-epoch one)."""
    static = {
        "dataset": "own-sequence",
        "root": None,
        "subset": None,
        "seed": 0,
        "device": "cpu",
        "epochs": 10,
    }
    _, state, _ = peers._worker_trainer(static)
    assert state.scheduler.T_max == 10
    out = tmp_path / "out"
    args = ["--dataset", "own-sequence", "--seeds", "0", "--epochs", "1", "--out", str(out)]
    args += ["--runs-dir", str(tmp_path / "runs"), "--arms", "untuned"]
    # before: the 12-epoch training extended the 1-epoch one, whose build (a cosine over 1
    # epoch) made another run: RunMismatchError
    assert peers.main(args) == 0
    (cell,) = tc.Cells(out / "peers.jsonl").values()
    assert [p[0] for p in peers._points(cell)] == [1, 12]
    assert cell["epochs"] == 12 == len(cell["schedule"]) == cell["compute_epochs"]


def test_ceiling_cosine_anneals_every_setting_and_takes_the_best_test_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ceiling --schedule cosine``: each (setting, horizon) trains ``H`` epochs with the rate
    of epoch ``e`` at ``lr0 (1 + cos(pi (e - 1) / H)) / 2`` and the setting's weight decay,
    is tested after every epoch, and the table takes the best (setting, horizon, epoch)."""
    from benchmarks.tuner import ceiling

    seen: list[tuple[float, float, int]] = []
    make = peers.make_trainer

    def spying(*a: Any, **k: Any) -> Any:
        trainer = make(*a, **k)
        train_epoch = trainer.train_epoch

        def recorded(state: Any, hparams: Any, ctx: Any) -> Any:
            group = state.optimizer.param_groups[0]
            seen.append((group["lr"], group["weight_decay"], ctx.epoch))
            assert ctx.epochs in (2, 3) and set(hparams) == {"lr", "weight_decay"}
            return train_epoch(state, hparams, ctx)

        trainer.train_epoch = recorded
        return trainer

    monkeypatch.setattr(peers, "make_trainer", spying)
    out = tmp_path / "out"
    argv = ["--dataset", "own-digits", "--seeds", "0", "--lr", "2", "--wd", "1"]
    argv += ["--schedule", "cosine", "--horizons", "2", "3", "--tag", "cc", "--out", str(out)]
    argv += ["--runs-dir", str(tmp_path / "runs")]
    assert ceiling.main(argv) == 0
    cells = list(tc.Cells(out / "cc.jsonl").values())
    assert sorted((c["horizon"], round(c["point"]["lr"], 9)) for c in cells) == sorted(
        (h, lr) for h in (2, 3) for lr in (1e-4, 3e-2)
    )
    assert all(set(c["test"]) == {str(e) for e in range(1, c["horizon"] + 1)} for c in cells)
    assert len(seen) == 2 * (2 + 3)
    runs = [seen[i : i + h] for i, h in zip((0, 2, 5, 7), (2, 3, 2, 3))]
    assert [run[0][0] for run in runs] == pytest.approx([1e-4, 1e-4, 3e-2, 3e-2])  # lr0: the point
    for run in runs:
        lr0, h = run[0][0], len(run)
        assert [r[0] for r in run] == pytest.approx(
            [lr0 * (1 + math.cos(math.pi * (e - 1) / h)) / 2 for e in range(1, h + 1)]
        )
        assert [r[1] for r in run] == pytest.approx([math.sqrt(1e-5 * 1e-1)] * h)
    best = max((t["accuracy"], c["horizon"], int(e)) for c in cells for e, t in c["test"].items())
    table = (out / "cc_own-digits.md").read_text()
    assert "annealed by a cosine over 2, 3 epochs" in table
    assert f"| 0 | {100 * best[0]:.2f} |" in table and f"cosine over {best[1]} epochs" in table
    with pytest.raises(SystemExit) as err:
        ceiling.main([*argv[:-6], "--horizons", "0", "--out", str(out)])
    assert err.value.code == 2


@pytest.mark.slow
def test_pb2_population_on_ray_tunes_two_parameters(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the peers extra (ray[tune]) is not installed")
    # a population of 4 for 12 * 2 / 4 = 6 epochs: the same compute, 4 at a time
    rec = peers.run_ray_arm(_args(tmp_path), "pb2-w4", "own-digits", None, 0, 2, None)
    assert rec["compute_epochs"] == 2 * peers.TRIALS
    assert (rec["population"], rec["epochs"], len(rec["lr_path"])) == (4, 6, 6)
    assert rec["test"]["6"]["accuracy"] > 0.1
    bounds = peers.TASKS["own-digits"].bounds
    assert set(rec["params"]) == set(bounds)
    assert all(lo <= rec["params"][k] <= hi for k, (lo, hi) in bounds.items())


# ------------------------------------------------------------------------------- the probe
def test_probe_variants_build(data_root: Path) -> None:
    cell = thesis_probe.sweep("batch-10", str(data_root), 0, 1, (0.01,), "cpu")
    assert cell["steps_per_epoch"] == 40 and len(cell["valid_accuracy"]) == 1
    trainer, hp = thesis_probe.make_trainer("inputs-0-1", str(data_root), 0)
    x = trainer.data.train.x
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0 + 1e-6
    net = thesis_probe.mlp6(0.5)
    assert sum(isinstance(m, torch.nn.Linear) for m in net.modules()) == 7
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    keras = thesis_probe._reinit(thesis_probe.mlp6(0.0), "keras", 0)
    w = keras[1].weight.detach()
    assert float(w.abs().max()) <= math.sqrt(6 / (784 + 100)) + 1e-6


# ------------------------------------------------------------------------------- tables 6-7
def test_per_epoch_comparison_tests_at_each_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks.thesis import cifar10 as thesis_cifar10
    from benchmarks.thesis import mnist_full as thesis_mnist_full

    monkeypatch.setattr(tuner, "ThesisTrainer", _digits)
    out = tmp_path / "out"
    assert (
        thesis_mnist_full.main(
            [
                "--seeds",
                "0",
                "--epochs",
                "2",
                "--grid-size",
                "2",
                "--arms",
                "grid",
                "gamma-kappa2",
                "--out",
                str(out),
                "--runs-dir",
                str(tmp_path / "runs"),
                "--data-root",
                str(tmp_path),
            ]
        )
        == 0
    )
    cells = {c["arm"]: c for c in tc.Cells(out / "thesis_mnist_full.jsonl").values()}
    assert set(cells) == {"grid", "gamma-kappa2"}
    assert (
        set(cells["grid"]["test"]) == {"1", "2"} and cells["gamma-kappa2"]["objective"] == "kappa2"
    )
    assert cells["grid"]["compute_epochs"] + cells["grid"]["trials_reused"] == 4
    assert (
        "98.61 / 99.9 / 98.62 / 98.56" in (out / "thesis_mnist_full.md").read_text()
    )  # thesis table 6, epoch 2
    args = argparse.Namespace(
        full=False, seeds="", epochs=3, subset=5000, grid_size=None, tag=None
    )
    exp = thesis_cifar10.experiment(args)
    assert exp.test_after == (1, 3) and exp.subset == 5000 and exp.grid_size == 12
    args.full, args.epochs = True, None
    full = thesis_cifar10.experiment(args)
    assert (
        full.epochs == 50
        and full.subset is None
        and full.test_after == (1, 10, 20, 50)
        and full.grid_size == 100
    )


def test_fashion_comparison_is_table_6_on_held_out_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmarks.thesis import fashion as thesis_fashion

    args = argparse.Namespace(
        full=False, seeds="", epochs=3, subset=10000, grid_size=None, tag=None
    )
    exp = thesis_fashion.experiment(args)
    assert exp.dataset == "fashion-mnist" and exp.model == "thesis-cnn"
    assert exp.subset == 10000 and exp.valid_fraction == 0.2 and exp.grid_size == 12
    assert (
        exp.test_after == (1, 2, 3)
        and exp.seeds == [0, 1, 2]
        and "8,000 train / 2,000 validation" in exp.notes
    )
    args.full = True
    full = thesis_fashion.experiment(args)
    assert (
        full.subset is None
        and full.valid_fraction == pytest.approx(1 / 6)
        and full.grid_size == 100
    )
    # the same runner as tables 6-7 (digits stand in for Fashion-MNIST here)
    monkeypatch.setattr(tuner, "ThesisTrainer", _digits)
    out = tmp_path / "out"
    assert (
        thesis_fashion.main(
            [
                "--seeds",
                "0",
                "--epochs",
                "1",
                "--grid-size",
                "2",
                "--arms",
                "grid",
                "gamma",
                "--out",
                str(out),
                "--runs-dir",
                str(tmp_path / "runs"),
                "--data-root",
                str(tmp_path),
            ]
        )
        == 0
    )
    cells = {c["arm"]: c for c in tc.Cells(out / "thesis_fashion.jsonl").values()}
    assert set(cells) == {"grid", "gamma"} and cells["gamma"]["dataset"] == "fashion-mnist"
    assert all(c["code"] == tc.code_version() for c in cells.values())
    text = (out / "thesis_fashion.md").read_text()
    assert "Fashion-MNIST" in text and "Code version" in text


def test_peers_picture_adds_the_average_of_the_runs_given(tmp_path: Path) -> None:
    """``summarize(..., averages)`` plots each averaged arm's ``test_average`` beside its last
    state at the same compute; the table stays the last state's."""
    pytest.importorskip("plotly")

    def cell(seed: int, last: float, average: float | None) -> dict[str, Any]:
        c: dict[str, Any] = {
            "arm": "pe-pop",
            "dataset": "mnist",
            "seed": seed,
            "epochs": 90,
            "budget_epochs": 120,
            "compute_epochs": 120,
            "subset": 500,
            "objective": "kappa1",
            "mode": "per-epoch",
            "compute_time": 1.0,
            "wall_time": 2.0,
            "test": {"90": {"accuracy": last}},
        }
        if average is not None:
            c["test_average"] = {"90": {"accuracy": average}}
        return c

    cells = [cell(s, 0.90 + 0.01 * s, None) for s in range(3)]
    reruns = [cell(s, 0.5, 0.92 + 0.01 * s) for s in range(3)] + [cell(3, 0.5, None)]
    plain = peers._figures(cells, "MNIST", [0, 1, 2])[0]
    assert [t.name for t in plain.data] == ["pe-pop"]
    fig = peers._figures(cells, "MNIST", [0, 1, 2], reruns)[0]
    traces = {t.name: t for t in fig.data}
    assert set(traces) == {"pe-pop", "pe-pop, final model: average"}
    assert list(traces["pe-pop"].y) == pytest.approx([0.91])  # the median last state
    averaged = traces["pe-pop, final model: average"]
    assert list(averaged.x) == [120] and list(averaged.y) == pytest.approx([0.93])
    other = [dict(c, dataset="fashion-mnist") for c in reruns]
    text = peers.summarize(cells, tmp_path, "t", "mnist", other)  # another task's: not plotted
    assert "final model: average" not in (tmp_path / "t_mnist.html").read_text()
    assert text == peers.summarize(cells, tmp_path, "t", "mnist", reruns)
    assert "final model: average" in (tmp_path / "t_mnist.html").read_text()
