"""One validated settings object for a tuner run (:class:`TunerConfig`)."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
import numbers
import os
import re
from typing import Any
from typing import Union

import optuna

from optuna_gamma.tuner.frontend import from_cli
from optuna_gamma.tuner.persistence.storage import sqlite_file
from optuna_gamma.tuner.policies.base import Policy
from optuna_gamma.tuner.search.objectives import resolve_objective
from optuna_gamma.tuner.search.samplers import parse_sampler
from optuna_gamma.tuner.trainer_ref import TrainerRef


__all__ = [
    "DEFAULT_NUM_THREADS",
    "FINAL_MODEL_CHOICES",
    "FINAL_MODELS",
    "SettingError",
    "TunerConfig",
]

#: The rules for the state a finished run returns (:mod:`~optuna_gamma.tuner.execution.finished`
#: applies them; ``PerEpochResult.final_model`` is one of them).
FINAL_MODELS = ("last", "best", "average")

#: The default of ``TunerConfig.average_window``: how many of the final lineage's last states
#: the greedy average tries (the whole lineage pays only where the model overfits early:
#: benchmarks/tuner/results/average_window/).
AVERAGE_WINDOW = 20

#: What ``TunerConfig.final_model`` and ``--final-model`` take: a rule, or ``"auto"`` (the
#: default), the rule the run's policy was measured best with
#: (:attr:`~optuna_gamma.tuner.policies.Policy.default_final_model`).
FINAL_MODEL_CHOICES = ("auto", *FINAL_MODELS)

#: torch's intra-op threads during a run, by default. Results depend on the thread count (the
#: order of floating-point reductions changes), so the default is a fixed number rather than
#: "all cores": the same command gives the same schedule on any machine. One thread is also the
#: efficient setting for the small per-epoch trials of the thesis; scale out with workers, or
#: pass ``num_threads`` (``--threads``) for large models on a CPU.
DEFAULT_NUM_THREADS = 1


class SettingError(ValueError):
    """A setting of :class:`TunerConfig` with a bad value: ``"{setting} must be
    {requirement}, got {value!r}"``. The CLI shows it under the setting's flag
    (``--trials-per-epoch: must be an int >= 1, got 0``)."""

    def __init__(self, setting: str, requirement: str, value: Any) -> None:
        self.setting, self.requirement, self.value = setting, requirement, value
        super().__init__(f"{setting} must be {requirement}, got {value!r}")


def _check_int(config: Any, name: str, low: int, *, none_ok: bool = False) -> None:
    """Check ``config.name`` and store it as a Python ``int``: a NumPy integer (a seed from
    ``np.arange``) passed the check but then stopped the run in its records."""
    value = getattr(config, name)
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise SettingError(name, f"an int >= {low}{' or None' if none_ok else ''}", value)
    object.__setattr__(config, name, int(value))


def _check_bool(name: str, value: Any, *, none_ok: bool = False) -> None:
    if value is None and none_ok:
        return
    if not isinstance(value, bool):
        raise SettingError(name, f"True or False{' or None' if none_ok else ''}", value)


_DEVICE = re.compile(r"^(cpu|cuda|mps)(:\d+)?$")


def _check_location(name: str, value: Any, methods: tuple[str, ...]) -> None:
    """``value`` is ``None``, a non-empty string, a path, or an object with ``methods``."""
    if value is None or isinstance(value, os.PathLike):
        return
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"{name} must not be an empty string")
        return
    if not all(callable(getattr(value, m, None)) for m in methods):
        raise ValueError(f"{name} must be a URL, a path or an Optuna {name} object, got {value!r}")


def _check_named_settings(config: TunerConfig) -> None:
    """Validate the settings given by name (sampler, objective, device) and the storage and
    artifact locations' types at construction, as the class docstring promises (availability
    of a device or reachability of a storage is checked when a run opens them)."""
    if isinstance(config.sampler, str):  # parsed once, here: the canonical name is kept
        object.__setattr__(config, "sampler", parse_sampler(config.sampler).name)
    resolve_objective(config.objective)
    device = config.device
    if isinstance(device, str) and not _DEVICE.match(device.strip()):
        raise ValueError(
            f"unknown device {device!r}: use cpu, cuda, cuda:K, mps or a torch.device"
        )
    if device is not None and not isinstance(device, str) and type(device).__name__ != "device":
        raise ValueError(f"device must be a string or a torch.device, got {device!r}")
    _check_location("storage", config.storage, ("get_all_studies", "create_new_study"))
    _check_location("artifacts", config.artifacts, ("open_reader", "write", "remove"))
    private = _in_this_process_only(config.storage)
    if (config.workers or config.coordinate) and private:
        # each worker process would get a copy of it, and the run would see none of its trials
        if from_cli():
            who = f"--workers {config.workers}" if config.workers else "--coordinate"
            where = "give --storage a journal file path or an RDB URL such as sqlite:///runs.db"
        else:
            who = f"workers={config.workers}" if config.workers else "coordinate=True"
            where = "give a journal file path, an RDB URL such as 'sqlite:///runs.db'"
        raise ValueError(
            f"{who} needs a storage the worker processes share, and {private} lives in this "
            f"process only: {where}, or no storage (the run's journal file)"
        )


def _in_this_process_only(storage: Any) -> str | None:
    """What ``storage`` is if no other process can open it (an ``InMemoryStorage``, an
    in-memory SQLite URL), else ``None``."""
    if isinstance(storage, optuna.storages.InMemoryStorage):
        return "an optuna.storages.InMemoryStorage"
    if isinstance(storage, str) and re.match(r"(?i)^\s*sqlite(\+\w+)?://", storage):
        try:
            in_memory = sqlite_file(storage.strip()) is None
        except ValueError:
            return None  # not a URL: opening the storage says so
        if in_memory:
            return f"the in-memory SQLite database {storage!r}"
    return None


@dataclass(frozen=True)
class TunerConfig:
    """Settings of one tuner run (validated on creation; ``ValueError`` names a bad value).

    Attributes:
        run: Run name, the prefix of the study names (``"{run}/epoch-003"``, ``"{run}/whole"``);
            calling again with the same name resumes the run. Default: ``run-<8 hex>``, a hash
            of what determines the result (trainer, space, objective, sampler, seed, mode;
            :mod:`optuna_gamma.tuner.persistence.identity`), so unrelated scripts never share a
            run.
        overwrite: Delete the run's studies, states and ``result.json`` first and start again
            (for a run name whose stored run was made with other settings, which is refused
            otherwise).
        run_dir: Run directory (default storage, artifacts, ``result.json``); default
            ``runs/<run>``.
        storage: An RDB URL (``sqlite:///runs.db``, ``postgresql://...``), a journal file path,
            or an Optuna storage object; default ``<run_dir>/journal.log``.
        artifacts: Where training states go: a directory (default ``<run_dir>/artifacts``) or an
            Optuna artifact store object.
        sampler: A registry name (:mod:`optuna_gamma.tuner.search.samplers`; kept in its canonical
            form, e.g. ``"GAMMA"`` becomes ``"gamma"``) or a callable ``seed -> sampler``.
        policy: How the run spends its compute (:mod:`~optuna_gamma.tuner.policies`):
            ``"population"`` (default: a population of committed settings and sampled explorers,
            sized from ``budget`` and ``workers``) or ``"thesis"`` (``trials_per_epoch`` trials
            per epoch from the adopted state, the best adopted: the thesis's fig. 8), or a
            :class:`~optuna_gamma.tuner.policies.Policy` object (e.g. a ``PopulationPolicy`` with
            other settings). ``None`` (default) is ``"population"``, or ``"thesis"`` for
            ``grid:N`` and ``fixed:LR``.
        budget: Compute in training epochs (one epoch of one model), spent exactly by the
            default policy (its last epoch trimmed to fit); the thesis's policy runs
            ``budget // trials_per_epoch`` whole epochs (a warning says what is left). The
            policy derives the epochs and trials per epoch from it. Give ``budget`` or
            ``epochs``.
        final_model: Which state a per-epoch run returns and tests. ``"auto"`` (default): the
            rule the policy was measured best with
            (:attr:`~optuna_gamma.tuner.policies.Policy.default_final_model`): ``"average"``
            where the default policy races settings serially (one worker, or two or three),
            so that the final model trains one lineage for most of the budget (measured:
            docs/when-it-pays.md), and ``"last"`` otherwise (four or more trials at a time,
            the thesis's policy).
            ``"last"``: the last state (as Keras, Lightning and Hugging Face's trainers
            return the last weights); ``"best"``: the peak of the validation curve, when it
            stands clearly above the curve's end
            (:func:`~optuna_gamma.tuner.execution.finished.final_epoch`; Keras's
            ``restore_best_weights``; a run whose curve has such a peak says so); or
            ``"average"``: the last state's weights averaged with those of earlier states of
            its lineage (up to 20 epochs back), each kept only where the average validates at
            least as well (:mod:`~optuna_gamma.tuner.execution.averaging`; stochastic weight
            averaging, greedy as a model soup; the optimizer, scheduler and extras are the
            last state's). Every adopted state is kept, so calling a finished run again with
            another choice trains nothing and only tests that state.
        average_window: With ``final_model="average"`` (or ``"auto"`` where it means that):
            how many of the final lineage's last states the greedy average tries, newest
            first (default 20); ``None``: all of them. The whole lineage pays where the model
            overfits its training data early and trains on for most of the budget: serially
            at ``B = 120`` the user's AdamW MLP on 800 images (docs/when-it-pays.md) reaches
            80.0 % against 78.7 % with 20 states (5 of 5 seeds), level with PB2; on the CNNs,
            which still learn at the end, early states that validate as well on kappa_1 are
            kept and cost test accuracy (MNIST-500 median -0.1 points, worse on 5 of 5 seeds;
            Fashion-MNIST -1.0, worse on 4 of 5; CIFAR-10 -1.1, 2 of 2). A finished run whose
            validation accuracy peaked well before the end says so in a warning that names
            this option; changing it trains nothing.
        trials_per_epoch: Trials of each study. Thesis policy (and whole mode: trainings):
            default 12 (2 start-up + 10 BO), the grid size for ``grid:N``, 1 for ``fixed``.
            Population policy: the trials that run at once (default ``max(1, workers)``).
        epochs: Epochs ``E`` of the per-epoch run (default 1 unless ``budget`` is given);
            whole mode: the epochs of each training.
        objective: ``"kappa1"``, ``"kappa2"`` (``"kappa2:0.2"`` sets lambda), ``"accuracy"``,
            ``"loss"``, ``"min:NAME"`` / ``"max:NAME"`` (one metric of ``evaluate()``), an
            :class:`~optuna_gamma.tuner.search.objectives.Objective` or a callable
            ``metrics -> float``.
        seed: Seeds the initial state, the epochs' randomness and the samplers.
        n_startup_trials: Start-up trials of the model-based samplers.
        warm_start: Enqueue the previous epoch's best parameters as the next epoch's first
            trial (off by default: it did not help, see ``benchmarks/driver_warm_start.py``).
        device: Torch device (default: CUDA if available, else CPU). Bit-identical resume and
            the reuse of repeated trials are guaranteed on a CPU. With ``workers=N`` and several
            GPUs, the default (or ``"cuda"``) gives local worker ``i`` its own GPU,
            ``cuda:(i mod count)``; ``"cuda:K"`` puts every worker on GPU ``K``.
        num_threads: torch intra-op threads during the run (default
            :data:`DEFAULT_NUM_THREADS`; ``None`` leaves torch's setting). Results depend on it.
        deterministic: Whether training is deterministic, so that model-based samplers are told
            the objective is noise-free; default: on a CPU unless the trainer says
            ``deterministic = False``.
        keep_trial_states: Keep every trial's state (default: only the adopted ones).
        progress: Show a progress bar; default: only on a terminal.
        workers: ``0`` (default): train the trials one after the other in this process, with a
            bit-identical resume. ``N >= 1``: start ``N`` local worker processes that train an
            epoch's trials at the same time (and wait for them); more workers may join from
            other machines (``optuna-gamma worker``, :func:`~optuna_gamma.tuner.run_worker`).
        coordinate: Coordinate the run (prepare it, wait for workers, write the result) even with
            ``workers=0``: the head node of a cluster whose workers all run elsewhere.
        heartbeat_interval: Seconds between a worker's heartbeats on an RDB storage; a trial
            whose worker has not beaten for ``grace_period`` seconds is failed and retried once
            with the same parameters (Optuna's heartbeat and ``RetryFailedTrialCallback``).
        grace_period: See ``heartbeat_interval``; default ``3 * heartbeat_interval``.
        trainer_ref: How worker processes import the trainer
            (:class:`~optuna_gamma.tuner.trainer_ref.TrainerRef`, built by the CLI from
            ``--trainer``); ``None``: local workers receive the trainer object itself (pickled).
            Workers never import what a storage names (docs/cluster.md, "Trust model").
    """

    run: str | None = None
    run_dir: Union[str, os.PathLike[str], None] = None
    storage: Any = None
    artifacts: Any = None
    sampler: Union[str, Callable[[int], Any]] = "gamma"
    policy: Union[str, Policy, None] = None
    budget: int | None = None
    final_model: str = "auto"
    average_window: int | None = AVERAGE_WINDOW
    trials_per_epoch: int | None = None
    epochs: int | None = None
    objective: Union[str, Callable[[Mapping[str, Any]], float], Any] = "kappa1"
    seed: int = 0
    n_startup_trials: int = 2
    warm_start: bool = False
    device: Any = None
    num_threads: int | None = DEFAULT_NUM_THREADS
    deterministic: bool | None = None
    keep_trial_states: bool = False
    progress: bool | None = None
    workers: int = 0
    coordinate: bool = False
    heartbeat_interval: int = 10
    grace_period: int | None = None
    trainer_ref: TrainerRef | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.run is not None and (
            not isinstance(self.run, str) or not self.run or "/" in self.run
        ):
            raise ValueError(f"run must be a non-empty name without '/' or None, got {self.run!r}")
        if self.run_dir is not None and not isinstance(self.run_dir, (str, os.PathLike)):
            raise ValueError(f"run_dir must be a path, got {self.run_dir!r}")
        _check_int(self, "trials_per_epoch", 1, none_ok=True)
        _check_int(self, "epochs", 1, none_ok=True)
        _check_int(self, "budget", 1, none_ok=True)
        if self.budget is not None and self.epochs is not None:
            raise ValueError(
                f"give a budget (budget={self.budget}) or a number of epochs "
                f"(epochs={self.epochs}), not both: the policy derives the epochs from the budget"
            )

        if not isinstance(self.policy, Policy) and self.policy not in (
            None,
            "population",
            "thesis",
        ):
            raise ValueError(
                f"policy must be 'population', 'thesis', a Policy or None, got {self.policy!r}"
            )
        if self.final_model not in FINAL_MODEL_CHOICES:
            raise SettingError("final_model", f"one of {FINAL_MODEL_CHOICES}", self.final_model)
        _check_int(self, "average_window", 1, none_ok=True)
        _check_int(self, "seed", 0)
        _check_int(self, "n_startup_trials", 0)
        _check_int(self, "num_threads", 1, none_ok=True)
        _check_bool("warm_start", self.warm_start)
        _check_bool("deterministic", self.deterministic, none_ok=True)
        _check_bool("keep_trial_states", self.keep_trial_states)
        _check_bool("progress", self.progress, none_ok=True)
        _check_int(self, "workers", 0)
        _check_bool("coordinate", self.coordinate)
        _check_bool("overwrite", self.overwrite)
        _check_int(self, "heartbeat_interval", 1)
        _check_int(self, "grace_period", 1, none_ok=True)
        if self.trainer_ref is not None and not isinstance(self.trainer_ref, TrainerRef):
            raise ValueError(f"trainer_ref must be a TrainerRef or None, got {self.trainer_ref!r}")
        if not isinstance(self.sampler, str) and not callable(self.sampler):
            hint = ""
            if isinstance(self.sampler, optuna.samplers.BaseSampler):
                kind = type(self.sampler).__name__
                hint = (
                    f": every study of the run gets a sampler of its own, seeded for it, so "
                    f"pass a factory: def make_sampler(seed): return {kind}(..., seed=seed), "
                    "then sampler=make_sampler (a function of a module, which workers can "
                    "import; a lambda works without workers)"
                )
            raise ValueError(
                f"sampler must be a name or a callable seed -> sampler, got {self.sampler!r}{hint}"
            )
        _check_named_settings(self)
