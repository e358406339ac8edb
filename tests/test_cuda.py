"""The CUDA paths of the tuner: trials trained on a GPU, states stored without a device, a final
model that loads on either device, spawned workers sharing one GPU (or one GPU each), a user's own
trainer, and mixed precision (``autocast`` and a ``GradScaler`` whose state the lineage carries).

CI has no GPU, so these tests are skipped there; ``tools/cuda_check.sh`` runs them (with the
tuner's other tests, whose default device is then CUDA) on a GPU machine.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
import sys
from typing import Any

import optuna
from optuna.trial import TrialState
import pytest


torch = pytest.importorskip("torch")

from optuna_gamma.tuner import EpochContext  # noqa: E402
from optuna_gamma.tuner import get_storage  # noqa: E402
from optuna_gamma.tuner import load_state  # noqa: E402
from optuna_gamma.tuner import ThesisTrainer  # noqa: E402
from optuna_gamma.tuner import tune_per_epoch  # noqa: E402
from optuna_gamma.tuner import TunerConfig  # noqa: E402
from optuna_gamma.tuner.persistence.states import open_artifact_store  # noqa: E402
from optuna_gamma.tuner.persistence.states import StateStore  # noqa: E402


pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits() -> ThesisTrainer:
    trainer = ThesisTrainer("digits")
    trainer.data  # load once for the module
    return trainer


def _tensors(tree) -> list:
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, dict):
        return [t for v in tree.values() for t in _tensors(v)]
    if isinstance(tree, (list, tuple)):
        return [t for v in tree for t in _tensors(v)]
    return []


def _stored_states_are_on_the_cpu(result) -> int:
    """Every state the run stored holds CPU tensors only; returns how many states there are."""
    store, _ = open_artifact_store(result.artifacts, Path(result.run_dir) / "artifacts")
    states = StateStore(store)
    marker = optuna.load_study(
        study_name=f"{result.run}/epoch-001", storage=get_storage(result.storage)
    ).user_attrs["artifact_store"]["id"]
    ids = [p.name for p in Path(result.artifacts).iterdir() if p.name != marker]
    for state_id in ids:
        snapshot = states.load(state_id)
        tensors = _tensors(snapshot)
        assert tensors and all(t.device.type == "cpu" for t in tensors), state_id
    return len(ids)


def test_per_epoch_run_on_cuda_stores_cpu_states_and_its_model_loads_on_both_devices(
    digits, tmp_path: Path
) -> None:
    res = tune_per_epoch(
        digits,
        None,
        TunerConfig(run="g", run_dir=str(tmp_path / "g"), device="cuda", budget=8, seed=0),
    )
    assert res.compute_epochs == 8 and 1 <= res.final_epochs <= 8
    assert _stored_states_are_on_the_cpu(res) >= 2  # the initial state and the adopted ones
    study = optuna.load_study(study_name="g/epoch-001", storage=get_storage(res.storage))
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert done and all(math.isfinite(t.value or math.nan) for t in done)

    # The final model, loaded on either device, scores the test accuracy the run recorded on
    # the GPU (the same weights; CPU and GPU kernels differ only in rounding).
    for device in ("cpu", "cuda"):
        state = load_state(res, digits, device=device)
        assert next(state.model.parameters()).device.type == device
        metrics = digits.evaluate(state, "test")
        assert metrics["accuracy"] == pytest.approx(res.test["accuracy"], abs=2e-3)
        for group in state.optimizer.state.values():
            for t in _tensors(group):
                if t.dim() > 0:  # momentum buffers follow their parameters
                    assert t.device.type == device


def _two_workers(tmp_path: Path, run: str, device: str) -> TunerConfig:
    """Two local workers, 4 trials per epoch for 2 epochs, on ``device``."""
    return TunerConfig(
        run=run,
        run_dir=str(tmp_path / run),
        device=device,
        workers=2,
        trials_per_epoch=4,
        epochs=2,
        seed=1,
    )


def test_spawned_workers_share_one_gpu(digits, tmp_path: Path) -> None:
    """Two spawned worker processes train on ``cuda:0`` at the same time (CUDA cannot be used
    in a forked child, so this also checks that the workers are spawned)."""
    res = tune_per_epoch(digits, None, _two_workers(tmp_path, "w", "cuda:0"))
    storage = get_storage(res.storage)
    workers = set()
    for e in (1, 2):
        study = optuna.load_study(study_name=f"w/epoch-{e:03d}", storage=storage)
        done = study.get_trials(states=(TrialState.COMPLETE,))
        assert len(done) == 4
        assert study.user_attrs["adopted"]["trial"] == study.best_trial.number
        workers |= {t.user_attrs.get("worker") for t in done}
    assert None not in workers and 1 <= len(workers) <= 2  # every trial ran in a worker
    assert res.test["accuracy"] > 0.5
    _stored_states_are_on_the_cpu(res)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_local_workers_take_one_gpu_each(digits, tmp_path: Path, caplog) -> None:
    """``device="cuda"`` (no index) with several GPUs: local worker i trains on cuda:i."""
    with caplog.at_level("INFO", logger="optuna_gamma"):
        res = tune_per_epoch(digits, None, _two_workers(tmp_path, "g", "cuda"))
    (line,) = [r.getMessage() for r in caplog.records if "started 2 workers" in r.getMessage()]
    assert " on cuda:0" in line and " on cuda:1" in line
    assert res.test["accuracy"] > 0.5
    _stored_states_are_on_the_cpu(res)


def test_own_trainer_example_on_cuda(tmp_path: Path) -> None:
    """The README's own-training example (AdamW, DataLoader, batch norm) on the GPU."""
    path = REPO / "examples" / "own_training.py"
    spec = importlib.util.spec_from_file_location("own_training", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["own_training"] = module  # the workers would import it by this name
    spec.loader.exec_module(module)
    trainer = module.make_trainer()
    res = tune_per_epoch(
        trainer,
        None,
        TunerConfig(run="o", run_dir=str(tmp_path / "o"), device="cuda", budget=8, seed=0),
    )
    assert res.compute_epochs == 8 and res.test["accuracy"] > 0.5
    _stored_states_are_on_the_cpu(res)
    state = load_state(res, trainer, device="cuda")
    assert next(state.model.parameters()).is_cuda
    assert trainer.evaluate(state, "test")["accuracy"] == pytest.approx(
        res.test["accuracy"], abs=2e-3
    )


class _AmpTrainer:
    """Mixed precision as a user writes it: ``torch.autocast`` in float16 and a ``GradScaler``
    that never grows (so its ``_growth_tracker`` counts every optimizer step it took)."""

    batch = 50

    def __init__(self) -> None:
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        self.x = torch.tensor(x / 16.0, dtype=torch.float32)
        self.y = torch.tensor(y)

    def search_space(self) -> dict:
        from optuna.distributions import FloatDistribution

        return {"lr": FloatDistribution(1e-3, 0.3, log=True)}

    def build(self, seed: int, device: Any) -> Any:
        from optuna_gamma.tuner import TrainingState

        torch.manual_seed(seed)
        model = torch.nn.Sequential(
            torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)
        ).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        scaler = torch.amp.GradScaler("cuda", init_scale=16.0, growth_interval=10**9)
        return TrainingState(model=model, optimizer=optimizer, scaler=scaler)

    def train_epoch(self, state: Any, hparams: Any, ctx: Any) -> None:
        order = torch.randperm(len(self.x), generator=ctx.generator)
        for start in range(0, len(order), self.batch):
            rows = order[start : start + self.batch]
            x, y = self.x[rows].to(ctx.device), self.y[rows].to(ctx.device)
            with torch.autocast("cuda", dtype=torch.float16):
                loss = torch.nn.functional.cross_entropy(state.model(x), y)
            state.optimizer.zero_grad()
            state.scaler.scale(loss).backward()
            state.scaler.step(state.optimizer)
            state.scaler.update()

    def evaluate(self, state: Any, split: str) -> dict:
        device = next(state.model.parameters()).device
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16):
            out = state.model(self.x.to(device)).float()
        y = self.y.to(device)
        return {
            "accuracy": float((out.argmax(1) == y).float().mean()),
            "loss": float(torch.nn.functional.cross_entropy(out, y)),
        }


def test_mixed_precision_scaler_state_carries_across_epochs(tmp_path: Path) -> None:
    """The ``GradScaler`` is part of the state: every epoch's trial restores it, so the final
    state's scaler has counted every step of the final model's lineage, not one epoch's."""
    trainer = _AmpTrainer()
    res = tune_per_epoch(
        trainer,
        None,
        TunerConfig(run="amp", run_dir=str(tmp_path / "amp"), device="cuda", budget=6, seed=0),
    )
    _stored_states_are_on_the_cpu(res)
    state = load_state(res, trainer, device="cuda")
    steps_per_epoch = math.ceil(len(trainer.x) / trainer.batch)
    scaler = state.scaler.state_dict()
    assert scaler["scale"] == 16.0  # no overflow on this model: it never halved
    assert scaler["_growth_tracker"] == res.final_epochs * steps_per_epoch
    device = next(state.model.parameters()).device
    ctx = EpochContext(
        epoch=99, seed=0, device=device, trial_number=0, generator=torch.Generator()
    )
    trainer.train_epoch(state, {}, ctx)  # the loaded state trains on
    assert state.scaler.state_dict()["_growth_tracker"] == (res.final_epochs + 1) * steps_per_epoch
