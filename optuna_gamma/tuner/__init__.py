"""The per-epoch tuner (the torch side of optuna-gamma; thesis fig. 8, docs/design.md §3-§4).

Tune a network's learning rate (batch size, weight decay, ...) epoch by epoch on *your*
training code: give a :class:`Trainer` (build a state, train one epoch, evaluate) and a search
space of Optuna distributions; :func:`tune_per_epoch` runs one Optuna study per epoch and adopts
its best trial's state, :func:`tune_whole` tunes constant settings for a whole training. The
thesis's CNNs, datasets and SGD loop are one such trainer, :class:`ThesisTrainer`.

Importing this package imports neither torch nor the datasets; they load when used.
"""

from __future__ import annotations

from optuna_gamma.tuner._logging import disable_default_handler
from optuna_gamma.tuner._logging import set_verbosity
from optuna_gamma.tuner.builtin.trainer import ThesisTrainer
from optuna_gamma.tuner.config import DEFAULT_NUM_THREADS
from optuna_gamma.tuner.config import TunerConfig
from optuna_gamma.tuner.errors import AllTrialsDivergedError
from optuna_gamma.tuner.errors import TunerError
from optuna_gamma.tuner.execution.finished import load_state
from optuna_gamma.tuner.execution.workers import run_worker
from optuna_gamma.tuner.persistence.storage import get_storage
from optuna_gamma.tuner.reporting.report import build_report
from optuna_gamma.tuner.results import load_result
from optuna_gamma.tuner.results import PerEpochResult
from optuna_gamma.tuner.results import ScheduleEntry
from optuna_gamma.tuner.results import WholeResult
from optuna_gamma.tuner.search.objectives import Objective
from optuna_gamma.tuner.search.samplers import SAMPLER_CHOICES
from optuna_gamma.tuner.search.space import SearchSpace
from optuna_gamma.tuner.trainer import apply_hyperparameters
from optuna_gamma.tuner.trainer import EpochContext
from optuna_gamma.tuner.trainer import FunctionTrainer
from optuna_gamma.tuner.trainer import Trainer
from optuna_gamma.tuner.trainer import TrainingState
from optuna_gamma.tuner.trainer_ref import load_trainer
from optuna_gamma.tuner.trainer_ref import TrainerRef
from optuna_gamma.tuner.tune import tune_per_epoch
from optuna_gamma.tuner.tune import tune_whole


__all__ = [
    "AllTrialsDivergedError",
    "DEFAULT_NUM_THREADS",
    "EpochContext",
    "FunctionTrainer",
    "Objective",
    "PerEpochResult",
    "SAMPLER_CHOICES",
    "ScheduleEntry",
    "SearchSpace",
    "ThesisTrainer",
    "Trainer",
    "TrainerRef",
    "TrainingState",
    "TunerConfig",
    "TunerError",
    "WholeResult",
    "apply_hyperparameters",
    "build_report",
    "disable_default_handler",
    "get_storage",
    "load_state",
    "load_result",
    "load_trainer",
    "run_worker",
    "set_verbosity",
    "tune_per_epoch",
    "tune_whole",
]
