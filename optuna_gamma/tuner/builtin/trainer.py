"""The thesis's training as one trainer of the protocol: its models, datasets and SGD loop.

:class:`ThesisTrainer` is an ordinary :class:`~optuna_gamma.tuner.trainer.Trainer`: it builds one
of :data:`~optuna_gamma.tuner.builtin.models.MODELS` with SGD (thesis table 2: mini-batch 50,
weight decay 0.001, no momentum), trains one epoch with
:func:`~optuna_gamma.tuner.builtin.training.train_one_epoch` on an in-memory dataset of
:func:`~optuna_gamma.tuner.builtin.data.load_dataset`, and evaluates with
:func:`~optuna_gamma.tuner.reporting.metrics.evaluate`: accuracy and cross-entropy on the
validation split (all a trial needs for kappa), and on the test split also the thesis's
sensitivity, specificity, MCC and confusion matrix.
"""

from __future__ import annotations

from collections.abc import Mapping
import os
from typing import Any
from typing import TYPE_CHECKING

from optuna_gamma.tuner._logging import get_logger
from optuna_gamma.tuner.builtin.data import DATASETS
from optuna_gamma.tuner.builtin.data import load_dataset
from optuna_gamma.tuner.errors import require_extra
from optuna_gamma.tuner.persistence.runfiles import derive_seed
from optuna_gamma.tuner.reporting.metrics import evaluate
from optuna_gamma.tuner.search.space import SearchSpace
from optuna_gamma.tuner.trainer import EpochContext
from optuna_gamma.tuner.trainer import TrainingState


if TYPE_CHECKING:
    import torch

    from optuna_gamma.tuner.builtin.data import DatasetSplits


__all__ = ["DEFAULT_MODEL", "ThesisTrainer"]

_logger = get_logger(__name__)

#: The model used for each dataset when none is named.
DEFAULT_MODEL = {
    "mnist": "thesis-cnn",
    "fashion-mnist": "thesis-cnn",
    "cifar10": "keras-cifar-cnn",
    "digits": "mlp",
}


class ThesisTrainer:
    """The thesis's models, datasets and SGD loop (see the module docstring).

    Args:
        dataset: A dataset name of :data:`~optuna_gamma.tuner.builtin.data.DATASETS`, or loaded
            :class:`~optuna_gamma.tuner.builtin.data.DatasetSplits`.
        data_root: Where the dataset files are (not needed for ``"digits"``).
        model: A name of :data:`~optuna_gamma.tuner.builtin.models.MODELS` (default per
            dataset: :data:`DEFAULT_MODEL`) or a ``seed -> torch.nn.Module`` callable.
        subset: Training images used (train + validation), e.g. 500; ``None``: all.
        valid_fraction: Fraction held out for validation.
        data_seed: Seeds the subset and the train/validation split.
        test_subset: Test images used; ``None``: the whole official test set.
        download: Let torchvision download a dataset that is not under ``data_root``.
        cache_dir: Cache folder of the datasets.
        batch_size, weight_decay, momentum: SGD settings used unless the search space tunes
            or fixes them (thesis: 50, 0.001, 0).

    Raises:
        ValueError: Unknown dataset or model, or bad settings; the data themselves are loaded
            (and their errors raised) on first use.
    """

    def __init__(
        self,
        dataset: str | DatasetSplits,
        data_root: str | os.PathLike[str] | None = None,
        *,
        model: Any = None,
        subset: int | None = None,
        valid_fraction: float = 0.2,
        data_seed: int = 0,
        test_subset: int | None = None,
        download: bool = False,
        cache_dir: str | os.PathLike[str] | None = None,
        batch_size: int = 50,
        weight_decay: float = 1e-3,
        momentum: float = 0.0,
    ) -> None:
        # torch for the models, scikit-learn for the splits (and digits); torchvision only
        # downloads
        require_extra("ThesisTrainer", "torch", "sklearn", *(("torchvision",) if download else ()))
        from optuna_gamma.tuner.builtin.models import MODELS

        if isinstance(dataset, str):
            if dataset not in DATASETS:
                raise ValueError(
                    f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}"
                )
            self._data: DatasetSplits | None = None
            self.dataset_name = dataset
        else:
            self._data = dataset
            self.dataset_name = str(getattr(dataset, "name", "custom"))
        self._data_given = self._data is not None
        if model is None:
            model = DEFAULT_MODEL.get(self.dataset_name, "mlp")
        if isinstance(model, str) and model not in MODELS:
            raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
        if not isinstance(model, str) and not callable(model):
            raise ValueError(
                f"model must be a model name or a callable seed -> module, got {model!r}"
            )
        SearchSpace(
            batch_size=batch_size, weight_decay=weight_decay, momentum=momentum
        )  # validates
        self.model = model
        self._load_args: dict[str, Any] = dict(
            root=data_root,
            subset=subset,
            valid_fraction=valid_fraction,
            seed=data_seed,
            download=download,
            cache_dir=cache_dir,
            test_subset=test_subset,
        )
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.deterministic = True

    @property
    def data(self) -> DatasetSplits:
        """The dataset (loaded on first use)."""
        if self._data is None:
            args = dict(self._load_args)
            self._data = load_dataset(self.dataset_name, args.pop("root"), **args)
        return self._data

    def search_space(self) -> dict[str, Any]:
        """The thesis's space: ``lr`` log-uniform in [1e-3, 0.5] (:class:`SearchSpace`)."""
        return {"lr": SearchSpace().distributions()["lr"]}

    def default_hyperparameters(self) -> dict[str, Any]:
        """The batch size of an untuned training (weight decay and momentum are the built
        optimizer's): the untuned candidate's, where the batch size is tuned."""
        return {"batch_size": self.batch_size}

    def spec(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this trainer elsewhere (a worker adds its own
        ``data_root``); a trainer of loaded splits has none."""
        if self._data_given or not isinstance(self.model, str):
            return {}
        args = {k: v for k, v in self._load_args.items() if k not in ("root", "cache_dir")}
        return {
            "dataset": self.dataset_name,
            "model": self.model,
            "subset": args["subset"],
            "valid_fraction": args["valid_fraction"],
            "data_seed": args["seed"],
            "test_subset": args["test_subset"],
            "download": args["download"],
            "batch_size": self.batch_size,
            "weight_decay": self.weight_decay,
            "momentum": self.momentum,
        }

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without loaded data when it can be loaded again (spawned workers)."""
        state = dict(self.__dict__)
        if not self._data_given:
            state["_data"] = None
        return state

    def describe(self) -> dict[str, Any]:
        return {
            "trainer": "ThesisTrainer",
            "dataset": self.dataset_name,
            "model": self.model
            if isinstance(self.model, str)
            else getattr(self.model, "__name__", "custom"),
            "subset": self._load_args["subset"],
            "data_seed": self._load_args["seed"],
        }

    def build(self, seed: int, device: torch.device) -> TrainingState:
        from optuna_gamma.tuner.builtin.models import build_model
        from optuna_gamma.tuner.builtin.training import make_optimizer

        data = self.data
        if isinstance(self.model, str):
            net = build_model(
                self.model,
                tuple(data.input_shape),
                int(data.n_classes),
                seed=derive_seed(seed, "model"),
            )
        else:
            net = self.model(seed)
        net.to(device)
        opt = make_optimizer(net, lr=0.01, momentum=self.momentum, weight_decay=self.weight_decay)
        return TrainingState(model=net, optimizer=opt)

    def train_epoch(
        self, state: TrainingState, hparams: Mapping[str, Any], ctx: EpochContext
    ) -> dict[str, Any]:
        """One epoch of :func:`~optuna_gamma.tuner.builtin.training.train_one_epoch`.

        A batch size that does not fit the device's memory fails the trial, not the run: the
        out-of-memory error is caught, the cache freed, and the trial reports ``diverged``
        (completed with a clearly bad value, never adopted; docs/tuning.md).
        """
        import torch

        from optuna_gamma.tuner.builtin.training import train_one_epoch

        batch = int(hparams.get("batch_size", self.batch_size))
        try:
            loss = train_one_epoch(
                state.model,
                state.optimizer,
                self.data.train,
                batch_size=batch,
                seed=ctx.seed,
                device=ctx.device,
            )
        except torch.OutOfMemoryError as err:
            if ctx.device.type == "cuda":
                torch.cuda.empty_cache()
            _logger.warning(
                "trial %d: out of memory at batch_size=%d (%s): the trial counts as diverged",
                ctx.trial_number,
                batch,
                str(err).splitlines()[0] if str(err) else type(err).__name__,
            )
            return {"diverged": True}
        return {"train_loss": loss}

    def evaluate(self, state: TrainingState, split: str) -> dict[str, Any]:
        data = self.data
        part = {"valid": data.valid, "test": data.test}.get(split)
        if part is None:
            raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
        metrics = evaluate(state.model, part, n_classes=int(data.n_classes), full=split == "test")
        metrics.pop("time", None)
        return metrics
