"""Per-epoch tuning of a recurrent model with a cosine schedule sized by the run.

    python examples/own_sequence.py --budget 24 --out r.json
    optuna-gamma tune --trainer examples/own_sequence.py:make_trainer --budget 24

A GRU reads each image row by row (scikit-learn's digits: 8 rows of 8 pixels; Fashion-MNIST:
28 of 28) and classifies it from its last hidden state. AdamW, gradient clipping and a cosine
annealing of the rate stepped once per epoch: the schedule must end when the final model's
training does, and ``build`` learns how long that is by taking ``epochs`` (``def build(self,
seed, device, epochs)``): the tuner passes the epochs its final model trains (90 serially at
``--budget 120``), in every process of the run and in ``load_state``. The learning rate and
weight decay are tuned (a tuned rate is the cosine's starting rate: the schedule keeps its
shape); the data come from ``own_training.py`` beside this file (imported as ``python FILE``
would: a file given to ``--trainer`` imports the modules in its folder).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
import json
from pathlib import Path
import sys
from typing import Any

from optuna.distributions import FloatDistribution
from own_training import MyTrainer
import torch
from torch import nn
import torch.nn.functional as F
from torch.utils.data import DataLoader

from optuna_gamma.tuner import EpochContext
from optuna_gamma.tuner import TrainingState
from optuna_gamma.tuner import tune_per_epoch
from optuna_gamma.tuner import TunerConfig


# --- your code -------------------------------------------------------------------------------
class RowGRU(nn.Module):
    """A GRU over an image's rows, then dropout and a linear classifier."""

    def __init__(self, width: int, n_classes: int, hidden: int = 64) -> None:
        super().__init__()
        self.width = width
        self.gru = nn.GRU(width, hidden, batch_first=True)
        self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(len(x), -1, self.width)
        _, h = self.gru(rows)
        return self.head(h[-1])


class SequenceTrainer(MyTrainer):
    """Implements optuna_gamma.tuner.Trainer for RowGRU + AdamW + a cosine schedule (the data,
    the batch size of 64 and ``evaluate`` are ``own_training.py``'s)."""

    def __init__(
        self, dataset: str = "digits", data_root: str | None = None, subset: int | None = None
    ) -> None:
        super().__init__(dataset, data_root, subset)
        self.width = round(self.n_in**0.5)  # square images: one row per step

    def search_space(self) -> dict[str, Any]:
        return {
            "lr": FloatDistribution(1e-4, 3e-2, log=True),
            "weight_decay": FloatDistribution(1e-5, 1e-1, log=True),
        }

    def build(self, seed: int, device: torch.device, epochs: int = 30) -> TrainingState:
        # `epochs`: the run's, from the tuner (a default keeps the Trainer protocol's signature
        # for type checkers, and is what a training of this code without the tuner runs)
        torch.manual_seed(seed)
        model = RowGRU(self.width, self.n_classes).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        return TrainingState(model=model, optimizer=optimizer, scheduler=scheduler)

    def train_epoch(
        self, state: TrainingState, hparams: Mapping[str, Any], ctx: EpochContext
    ) -> dict[str, float]:
        loader = DataLoader(
            self.data["train"],
            batch_size=int(hparams.get("batch_size", 64)),
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
            nn.utils.clip_grad_norm_(state.model.parameters(), 1.0)
            state.optimizer.step()
            total += loss.item() * len(y)
            n += len(y)
        state.scheduler.step()  # one step per epoch: T_max = the run's epochs
        return {"train_loss": total / n}


def make_trainer(
    dataset: str = "digits", data_root: str | None = None, subset: int | None = None
) -> SequenceTrainer:
    """The factory ``optuna-gamma tune --trainer examples/own_sequence.py:make_trainer`` loads."""
    return SequenceTrainer(dataset, data_root, subset)


# --- tuning it --------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=int, default=24, help="training epochs (default 24)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", default="digits", choices=("digits", "fashion-mnist"))
    p.add_argument("--data-root", default=None)
    p.add_argument("--subset", type=int, default=None)
    p.add_argument("--run-dir", default="runs/own-sequence")
    p.add_argument("--out", default=None, help="write the schedule and test accuracy as JSON here")
    args = p.parse_args(argv)

    trainer = make_trainer(args.dataset, args.data_root, args.subset)
    config = TunerConfig(
        run="own-sequence", run_dir=args.run_dir, seed=args.seed, budget=args.budget
    )
    result = tune_per_epoch(trainer, trainer.search_space(), config)
    out = {
        "schedule": [{"epoch": e.epoch, **e.params} for e in result.schedule],
        "final_epochs": result.final_epochs,
        "test_accuracy": result.test["accuracy"],
    }
    print(json.dumps(out, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
