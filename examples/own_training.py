"""Per-epoch tuning of *your own* training code: your model, AdamW, a DataLoader.

    python examples/own_training.py --budget 24 --out r.json
    optuna-gamma tune --trainer examples/own_training.py:make_trainer --budget 24

Everything below ``# --- your code`` is ordinary PyTorch: a model class, ``torch.optim.AdamW``,
a ``torch.utils.data.DataLoader`` whose batch size is a tuned hyperparameter, and a plain
training loop. The tuner needs three things from it (optuna_gamma.tuner.Trainer): ``build``
(a fresh model and optimizer for a seed), ``train_epoch`` (one epoch with a trial's
hyperparameters) and ``evaluate`` (accuracy and loss, which kappa combines). Every epoch runs a
short Optuna study over learning rate, weight decay and batch size; the best states carry on to
the next epoch. ``--budget`` is the compute in training epochs (the default policy gives most of
it to the final model); ``--epochs E --trials-per-epoch W`` is the fixed plan of ``W`` trials at
a time for ``E`` epochs (with ``--policy thesis``: the thesis's procedure). ``lr`` and
``weight_decay`` are AdamW param-group keys, so the tuner sets them on the optimizer;
``batch_size`` reaches ``train_epoch``.

Data: scikit-learn's digits (bundled, the default) or Fashion-MNIST (``--dataset fashion-mnist
--data-root DIR``; the Debian package ``dataset-fashion-mnist`` is found without a root).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
import json
from pathlib import Path
import sys
from typing import Any

from optuna.distributions import CategoricalDistribution
from optuna.distributions import FloatDistribution
import torch
from torch import nn
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torch.utils.data import TensorDataset

from optuna_gamma.tuner import EpochContext
from optuna_gamma.tuner import TrainingState
from optuna_gamma.tuner import tune_per_epoch
from optuna_gamma.tuner import TunerConfig


# --- your code -------------------------------------------------------------------------------
class SmallNet(nn.Module):
    """A small classifier: two hidden layers with batch norm and dropout."""

    def __init__(self, n_in: int, n_classes: int, hidden: int = 128) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(n_in, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _tensors(dataset: str, data_root: str | None, subset: int | None) -> dict[str, TensorDataset]:
    if dataset == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        x, y = load_digits(return_X_y=True)
        x = torch.tensor(x / 16.0, dtype=torch.float32)
        y = torch.tensor(y, dtype=torch.int64)
        idx = torch.arange(len(y)).numpy()
        rest, test = train_test_split(idx, test_size=0.2, stratify=y.numpy(), random_state=0)
        train, valid = train_test_split(
            rest, test_size=0.2, stratify=y.numpy()[rest], random_state=0
        )
        return {
            k: TensorDataset(x[i], y[i])
            for k, i in (("train", train), ("valid", valid), ("test", test))
        }
    from optuna_gamma.tuner.builtin.data import load_dataset  # any loader of yours works here

    d = load_dataset(dataset, data_root, subset=subset, seed=0)
    return {
        k: TensorDataset(s.x, s.y)
        for k, s in (("train", d.train), ("valid", d.valid), ("test", d.test))
    }


class MyTrainer:
    """Implements optuna_gamma.tuner.Trainer for SmallNet + AdamW + DataLoader."""

    def __init__(
        self, dataset: str = "digits", data_root: str | None = None, subset: int | None = None
    ) -> None:
        self.data = _tensors(dataset, data_root, subset)
        x, y = self.data["train"].tensors
        self.n_in, self.n_classes = int(x[0].numel()), int(y.max()) + 1

    def search_space(self) -> dict[str, Any]:
        return {
            "lr": FloatDistribution(1e-4, 3e-2, log=True),
            "weight_decay": FloatDistribution(1e-5, 1e-1, log=True),
            "batch_size": CategoricalDistribution([16, 32, 64, 128]),
        }

    def default_hyperparameters(self) -> dict[str, Any]:
        # what this training uses untuned, for what AdamW does not hold (lr and weight decay:
        # as built below): the default policy races this setting in epoch 1
        return {"batch_size": 64}

    def build(self, seed: int, device: torch.device) -> TrainingState:
        torch.manual_seed(seed)
        model = SmallNet(self.n_in, self.n_classes).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
        return TrainingState(model=model, optimizer=optimizer)

    def train_epoch(
        self, state: TrainingState, hparams: Mapping[str, Any], ctx: EpochContext
    ) -> dict[str, float]:
        loader = DataLoader(
            self.data["train"],
            batch_size=int(hparams["batch_size"]),
            shuffle=True,
            generator=ctx.generator,
        )
        state.model.train()
        total, n = 0.0, 0
        for x, y in loader:
            x, y = x.to(ctx.device), y.to(ctx.device)
            state.optimizer.zero_grad()
            loss = F.cross_entropy(state.model(x), y)
            loss.backward()
            state.optimizer.step()
            total += loss.item() * len(y)
            n += len(y)
        return {"train_loss": total / n}

    @torch.no_grad()
    def evaluate(self, state: TrainingState, split: str) -> dict[str, float]:
        x, y = self.data[split].tensors
        device = next(state.model.parameters()).device
        state.model.eval()
        logits = state.model(x.to(device))
        return {
            "accuracy": float((logits.argmax(1) == y.to(device)).float().mean()),
            "loss": float(F.cross_entropy(logits, y.to(device))),
        }


def make_trainer(
    dataset: str = "digits", data_root: str | None = None, subset: int | None = None
) -> MyTrainer:
    """The factory ``optuna-gamma tune --trainer examples/own_training.py:make_trainer`` loads."""
    return MyTrainer(dataset, data_root, subset)


# --- tuning it --------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=int, default=None, help="training epochs (default 24)")
    p.add_argument("--epochs", type=int, default=None, help="a fixed plan: epochs E")
    p.add_argument("--trials-per-epoch", type=int, default=None, help="... of W trials each")
    p.add_argument("--policy", default="population", choices=("population", "thesis"))
    p.add_argument("--sampler", default="gamma")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", default="digits", choices=("digits", "fashion-mnist"))
    p.add_argument("--data-root", default=None)
    p.add_argument("--subset", type=int, default=None)
    p.add_argument("--run-dir", default="runs/own-training")
    p.add_argument("--out", default=None, help="write the schedule and test accuracy as JSON here")
    args = p.parse_args(argv)

    plan: dict[str, Any] = {"budget": args.budget}
    if args.epochs is not None or args.trials_per_epoch is not None:
        plan = {"epochs": args.epochs, "trials_per_epoch": args.trials_per_epoch}
        if args.budget is not None:
            p.error("give --budget or --epochs/--trials-per-epoch, not both")
    elif args.budget is None:
        plan = {"budget": 24}

    trainer = make_trainer(args.dataset, args.data_root, args.subset)
    config = TunerConfig(
        run="own-training",
        run_dir=args.run_dir,
        sampler=args.sampler,
        policy=args.policy,
        seed=args.seed,
        **plan,
    )
    result = tune_per_epoch(trainer, trainer.search_space(), config)
    out = {
        "schedule": [
            {
                "epoch": e.epoch,
                **e.params,
                "kappa": e.value,
                "valid_accuracy": e.metrics["accuracy"],
            }
            for e in result.schedule
        ],
        "test_accuracy": result.test["accuracy"],
        "test_loss": result.test["loss"],
        "storage": result.storage,
    }
    print(json.dumps(out, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
