"""The user's trainer run on a snapshot: build the state once, train epochs, evaluate.

:class:`Training` owns the run's one training state (built by ``trainer.build`` under the run's
seed). Every trial restores a snapshot into it, sets the trial's hyperparameters, trains its
epochs (each under the epoch's seed, the same for every trial) and evaluates, so that a
trial's result depends only on (start state, hyperparameters, seeds): a resumed run trains
what an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Mapping
import time
from typing import Any
from typing import TYPE_CHECKING

from optuna_gamma.tuner.execution.scoring import finite
from optuna_gamma.tuner.execution.scoring import scalars
from optuna_gamma.tuner.persistence.runfiles import derive_seed
from optuna_gamma.tuner.trainer import apply_hyperparameters
from optuna_gamma.tuner.trainer import capture
from optuna_gamma.tuner.trainer import EpochContext
from optuna_gamma.tuner.trainer import restore
from optuna_gamma.tuner.trainer import seeded_rng


if TYPE_CHECKING:
    import torch

    from optuna_gamma.tuner.trainer import Trainer


__all__ = ["Training"]


class Training:
    """The trainer, its training state and the run's seed and device.

    Args:
        trainer: The user's :class:`~optuna_gamma.tuner.trainer.Trainer`.
        state: The state ``trainer.build`` returned (checked by :meth:`build`).
        seed: The run's seed.
        device: The device the state lives on.
    """

    def __init__(self, trainer: Trainer, state: Any, seed: int, device: torch.device) -> None:
        self.trainer = trainer
        self.state = state
        self.seed = seed
        self.device = device
        #: The built state's snapshot: the first epoch's start.
        self.initial: dict[str, Any] = capture(state)

    @classmethod
    def build(cls, trainer: Trainer, seed: int, device: torch.device) -> Training:
        """Build the trainer's state under the run's seed and check it.

        Raises:
            ValueError: ``trainer.build()`` returned no model and optimizer.
        """
        with seeded_rng(derive_seed(seed, "build"), device):
            state = trainer.build(seed, device)
        _check_state(state, device)
        return cls(trainer, state, seed, device)

    def train(
        self, snapshot: dict[str, Any], hparams: Mapping[str, Any], epochs: list[int], number: int
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], float, float]:
        """Restore ``snapshot``, train ``epochs`` with ``hparams``, evaluate on validation data.

        Returns:
            (trained snapshot, validation metrics, training metrics, train seconds, eval seconds)
        """
        import torch

        state = self.state
        restore(state, snapshot)
        apply = getattr(self.trainer, "apply_hyperparameters", None)
        (apply if callable(apply) else apply_hyperparameters)(state, hparams)
        train_metrics: dict[str, Any] = {}
        t0 = time.perf_counter()
        for epoch in epochs:
            seed = derive_seed(self.seed, "batches", epoch)
            ctx = EpochContext(
                epoch=epoch,
                seed=seed,
                device=self.device,
                trial_number=number,
                generator=torch.Generator().manual_seed(derive_seed(seed, "generator")),
            )
            with seeded_rng(seed, self.device):
                out = self.trainer.train_epoch(state, hparams, ctx)
            train_metrics = scalars(out, what="train_epoch()")
            if not finite(train_metrics) or train_metrics.get("diverged") is True:
                break
        t_train = time.perf_counter() - t0
        t1 = time.perf_counter()
        with seeded_rng(derive_seed(self.seed, "evaluate"), self.device):
            valid = scalars(self.trainer.evaluate(state, "valid"), what="evaluate()")
        t_eval = time.perf_counter() - t1
        return capture(state), valid, train_metrics, t_train, t_eval

    def evaluate(self, snapshot: dict[str, Any], split: str) -> dict[str, Any]:
        """Metrics of ``snapshot`` on ``split``."""
        restore(self.state, snapshot)
        with seeded_rng(derive_seed(self.seed, "evaluate"), self.device):
            out = self.trainer.evaluate(self.state, split)
        return scalars(out, what="evaluate()", keep_lists=True)


def _check_state(state: Any, device: torch.device) -> None:
    """Refuse a state without a torch model and optimizer; move its model to ``device``."""
    import torch

    if not isinstance(getattr(state, "model", None), torch.nn.Module) or not isinstance(
        getattr(state, "optimizer", None), torch.optim.Optimizer
    ):
        raise ValueError(
            "trainer.build() must return a TrainingState with a torch.nn.Module model and a "
            f"torch.optim.Optimizer optimizer, got {state!r}"
        )
    first = next(state.model.parameters(), None)
    if (
        first is not None
        and first.device != device
        and not (first.device.type == device.type and device.index is None)
    ):
        state.model.to(device)
