"""The user's trainer run on a snapshot: build the state once, train epochs, evaluate.

:class:`Training` owns the run's one training state (built by ``trainer.build`` under the run's
seed). Every trial restores a snapshot into it, sets the trial's hyperparameters, trains its
epochs (each under the epoch's seed, the same for every trial) and evaluates, so that a
trial's result depends only on (start state, hyperparameters, seeds): a resumed run trains
what an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
import time
from typing import Any
from typing import TYPE_CHECKING
import weakref

from optuna_gamma.tuner._logging import get_logger
from optuna_gamma.tuner.execution.scoring import finite
from optuna_gamma.tuner.execution.scoring import scalars
from optuna_gamma.tuner.persistence.runfiles import derive_seed
from optuna_gamma.tuner.trainer import apply_hyperparameters
from optuna_gamma.tuner.trainer import build_state
from optuna_gamma.tuner.trainer import capture
from optuna_gamma.tuner.trainer import component_kinds
from optuna_gamma.tuner.trainer import EpochContext
from optuna_gamma.tuner.trainer import optimizer_keys
from optuna_gamma.tuner.trainer import restore
from optuna_gamma.tuner.trainer import seeded_rng
from optuna_gamma.tuner.trainer import setting_values


if TYPE_CHECKING:
    import torch

    from optuna_gamma.tuner.trainer import Trainer


__all__ = ["ReadHyperparameters", "Training"]

_logger = get_logger(__name__)

#: Models that a run of this process trained, with the sums of their values as the run left
#: them (:meth:`Training.leave`): a ``build`` that returns one of them unchanged hands the next
#: run a trained model as its "initial" state (:meth:`Training.warn_if_left`).
_LEFT: weakref.WeakKeyDictionary[Any, list[float]] = weakref.WeakKeyDictionary()

#: The most numbers a validation metric's list may hold to be stored with every trial.
MAX_VALID_LIST = 10_000


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
        #: What ``build`` made: each component's kind (class, or plain data), which a training
        #: must keep (:func:`_check_kinds`).
        self._kinds = component_kinds(state)
        #: The built state's snapshot: the first epoch's start.
        self.initial: dict[str, Any] = capture(state)
        #: The run's epochs (``EpochContext.epochs``), set by the engine from its plan.
        self.epochs: int | None = None
        #: The modules' train/eval modes as built, set again with every snapshot: a mode is
        #: not in a ``state_dict``, and a trial would otherwise start in the mode the previous
        #: ``evaluate()`` in this process left (eval: no dropout, frozen batch-norm statistics),
        #: where a trial in a fresh process (a worker, a resumed run) starts as built.
        self._modes = _module_modes(state)
        self._checked_use = False
        self._checked_attributes = False
        self._checked_horizon = False
        #: Validation list metrics too large to store with each trial, already said.
        self._dropped: set[str] = set()

    @classmethod
    def build(
        cls, trainer: Trainer, seed: int, device: torch.device, epochs: int | None = None
    ) -> Training:
        """Build the trainer's state under the run's seed and check it.

        Args:
            trainer: The user's trainer.
            seed: The run's seed.
            device: The run's device.
            epochs: The run's epochs (``EpochContext.epochs``), passed to a ``build`` that
                takes ``epochs`` (:func:`~optuna_gamma.tuner.trainer.build_state`), so
                that it sizes a schedule by them.

        Raises:
            ValueError: ``trainer.build()`` returned no model and optimizer.
        """
        with seeded_rng(derive_seed(seed, "build"), device):
            state = build_state(trainer, seed, device, epochs)
        _check_state(state, device)
        training = cls(trainer, state, seed, device)
        training.epochs = epochs
        return training

    def warn_if_left(self) -> None:
        """Warn if ``build`` returned a model that an earlier run in this process trained, as
        that run left it (:meth:`leave`): not a fresh initial state."""
        left = _LEFT.get(self.state.model)
        if left is not None and _value_sums(self.state.model) == left:
            _logger.warning(
                "trainer.build() returned the model an earlier run in this process trained, as "
                "that run left it (the same object, e.g. made in __init__): this run starts "
                "from those weights and that optimizer state, not from a model built for "
                f"seed {self.seed}, while a worker or a resumed run in a fresh process would "
                "start from a new one; make the model and optimizer in build()"
            )

    def leave(self) -> None:
        """Remember the model as this run leaves it (the run is over in this process)."""
        try:
            _LEFT[self.state.model] = _value_sums(self.state.model)
        except TypeError:  # not weakly referenceable: nothing to check later
            pass

    def train(
        self, snapshot: dict[str, Any], hparams: Mapping[str, Any], epochs: list[int], number: int
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], float, float]:
        """Restore ``snapshot``, train ``epochs`` with ``hparams``, evaluate on validation data.

        Returns:
            (trained snapshot, validation metrics, training metrics, train seconds, eval seconds)
        """
        import torch

        state = self.state
        self._restore(snapshot)
        apply = getattr(self.trainer, "apply_hyperparameters", None)
        if callable(apply):  # the trainer's own: it decides what each name does
            apply(state, hparams)
            applied: Any = None
        else:
            applied = apply_hyperparameters(state, hparams)
        held: dict[str, list[Any]] = {}
        if applied is not None and not self._checked_use:
            hparams = ReadHyperparameters(hparams)
            held = _held_values(state.optimizer, applied)
        attributes = None if self._checked_attributes else _attributes(self.trainer, state)
        steps_before = None if self._checked_horizon else _steps(getattr(state, "scheduler", None))
        train_metrics: dict[str, Any] = {}
        trained = 0
        t0 = time.perf_counter()
        for epoch in epochs:
            trained += 1
            seed = derive_seed(self.seed, "batches", epoch)
            ctx = EpochContext(
                epoch=epoch,
                seed=seed,
                device=self.device,
                trial_number=number,
                generator=torch.Generator().manual_seed(derive_seed(seed, "generator")),
                epochs=self.epochs,
            )
            with seeded_rng(seed, self.device):
                out = self.trainer.train_epoch(state, hparams, ctx)
            train_metrics = scalars(out, what="train_epoch()")
            if not finite(train_metrics) or train_metrics.get("diverged") is True:
                break
        t_train = time.perf_counter() - t0
        _check_kinds(self._kinds, state)
        if attributes is not None:
            self._checked_attributes = True
            _warn_changed_attributes(attributes, _attributes(self.trainer, state))
        if steps_before is not None:
            self._checked_horizon = True
            _warn_horizon(state.scheduler, steps_before, trained, self.epochs or 0)
        if isinstance(hparams, ReadHyperparameters):
            self._checked_use = True
            _warn_unused(hparams, applied, optimizer_keys(state.optimizer))
            _warn_overwritten(held, _held_values(state.optimizer, applied))
        t1 = time.perf_counter()
        with seeded_rng(derive_seed(self.seed, "evaluate"), self.device):
            out = self.trainer.evaluate(state, "valid")
            valid = self._kept(
                scalars(out, what="evaluate()", keep_lists=True, mapping_only=True), "valid"
            )
        t_eval = time.perf_counter() - t1
        return capture(state), valid, train_metrics, t_train, t_eval

    def evaluate(self, snapshot: dict[str, Any], split: str) -> dict[str, Any]:
        """Metrics of ``snapshot`` on ``split``."""
        self._restore(snapshot)
        with seeded_rng(derive_seed(self.seed, "evaluate"), self.device):
            out = self.trainer.evaluate(self.state, split)
        return self._kept(
            scalars(out, what="evaluate()", keep_lists=True, mapping_only=True), split
        )

    def _kept(self, metrics: dict[str, Any], split: str) -> dict[str, Any]:
        """``metrics`` without the validation lists too large for every trial's record (a
        confusion matrix of 1,000 classes is a million numbers, stored with each trial), said
        once per name; the test split's, recorded once, are kept."""
        if split != "valid":
            return metrics
        kept = {}
        for name, value in metrics.items():
            size = _count(value) if isinstance(value, list) else 1
            if size <= MAX_VALID_LIST:
                kept[name] = value
            elif name not in self._dropped:
                self._dropped.add(name)
                _logger.warning(
                    f"evaluate(state, 'valid') returned {name!r} with {size:,} numbers: not "
                    f"stored with each trial (at most {MAX_VALID_LIST:,}); return it for the "
                    "'test' split, which is recorded once"
                )
        return kept

    def _restore(self, snapshot: dict[str, Any]) -> None:
        """Load ``snapshot`` into the state, with the modules' modes as built."""
        restore(self.state, snapshot)
        for module, modes in zip(_modules(self.state), self._modes):
            for m, training in zip(module.modules(), modes):
                m.training = training


def _check_kinds(built: Mapping[str, str], state: Any) -> None:
    """Refuse a training that changed what ``build`` made: a component added (an LR scheduler
    made at the first epoch), removed, or replaced by another kind of object.

    In one process such a change would ride along from trial to trial, but a trial restores its
    start state into the freshly built state in a worker or a resumed run, where the component
    the training made does not exist, and a state from before the change would not fit it.

    Raises:
        ValueError: Naming each component that changed and the way out.
    """
    try:
        now = component_kinds(state)
    except ValueError as err:
        raise ValueError(f"train_epoch() changed the training state: {err}") from None
    if now == built:
        return

    def label(name: str) -> str:
        return f"extra[{name[6:]!r}]" if name.startswith("extra.") else name

    changes = [f"added {label(n)} ({now[n]})" for n in now if n not in built]
    changes += [f"removed {label(n)}" for n in built if n not in now]
    changes += [
        f"replaced {label(n)} ({built[n]}) by {now[n]}"
        for n in now
        if n in built and now[n] != built[n]
    ]
    raise ValueError(
        f"train_epoch() {'; '.join(changes)} in the TrainingState that build() made. The tuner "
        "restores each trial's start state into the state build() makes (in a worker or a "
        "resumed run, a freshly built one), so every component must be made in build() and "
        "kept: make it there (a schedule sized by the run's length takes the run's epochs "
        "from a build that asks for them: def build(self, seed, device, epochs))"
    )


def _attributes(trainer: Any, state: Any) -> dict[str, Any]:
    """What of the trainer's own attributes a training could change unseen: numbers, strings
    and flags as they are; a torch module or tensor outside the training state by the sum of
    its values (one float64 per tensor). A module or tensor whose values all belong to the
    state (the model, a part of it) is left out: the state restores them."""
    import torch

    held = {id(t) for module in _modules(state) for t in [*module.parameters(), *module.buffers()]}
    found: dict[str, Any] = {}
    for name, value in getattr(trainer, "__dict__", {}).items():
        if isinstance(value, (bool, int, float, str)):
            found[name] = value
            continue
        if isinstance(value, torch.nn.Module):
            tensors = [*value.parameters(), *value.buffers()]
            kind = "module"
        elif isinstance(value, torch.Tensor):
            tensors, kind = [value], "tensor"
        else:
            continue
        tensors = [t for t in tensors if id(t) not in held]
        if tensors:
            found[name] = (kind, _float64_sums(tensors))
    return found


def _count(value: Any) -> int:
    """The numbers in a (nested) list."""
    return sum(_count(v) for v in value) if isinstance(value, list) else 1


def _value_sums(model: Any) -> list[float]:
    """The model's parameters and buffers as one float64 sum each (a NaN as inf, so that
    unchanged values compare equal)."""
    import torch

    tensors = [t for t in model.state_dict().values() if isinstance(t, torch.Tensor)]
    return [s if s == s else float("inf") for s in _float64_sums(tensors)]


def _float64_sums(tensors: list[Any]) -> list[float]:
    """One sum per tensor, in float64 without a float64 copy of the tensor."""
    import torch

    with torch.no_grad():
        return [float(t.detach().sum(dtype=torch.float64)) for t in tensors]


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN (a tensor holding a NaN is unchanged if it still does)."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return a[0] == b[0] and len(a[1]) == len(b[1]) and all(map(_same, a[1], b[1]))
    return bool(a == b) or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


def _warn_changed_attributes(before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    """Warn about attributes of the trainer that the first trial's training changed: the tuner
    restores only the training state before each trial, so the next trial in this process
    starts from what this one left (and a worker or a resumed run from what ``build`` left)."""
    for name, value in before.items():
        now = after.get(name, value)
        if _same(value, now):
            continue
        if isinstance(value, tuple):
            what = f"trained the trainer's {value[0]} attribute {name!r}"
            fix = "keep it in TrainingState.extra (restored with the trial's start state)"
        else:
            what = f"changed the trainer's attribute {name!r} (from {value!r} to {now!r})"
            fix = (
                "keep it in TrainingState.extra (plain data is restored with the trial's "
                "start state), or set it from ctx.epoch in every epoch"
            )
        _logger.warning(
            f"train_epoch() {what} in the first trial. The tuner restores only the "
            "TrainingState before each trial, so the next trial in this process starts from "
            f"what this one left, and a worker or a resumed run from what build() left: {fix}"
        )


def _modules(state: Any) -> list[Any]:
    """The state's components that are torch modules (the model, an EMA, ...)."""
    import torch

    return [c for c in state.components().values() if isinstance(c, torch.nn.Module)]


def _module_modes(state: Any) -> list[list[bool]]:
    """Every submodule's ``training`` flag, per module component of ``state``."""
    return [[m.training for m in module.modules()] for module in _modules(state)]


class ReadHyperparameters(dict[str, Any]):
    """A trial's hyperparameters (a ``dict``, as ``train_epoch`` receives them) that records
    which names the trainer read: by key, ``get``, ``in`` or ``pop``; iterating, ``keys()``,
    ``items()``, ``values()``, ``dict(...)`` and ``**`` count as reading every name."""

    def __init__(self, hparams: Mapping[str, Any]) -> None:
        super().__init__(hparams)
        self.read: set[str] = set()
        self.all_read = False

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return super().__contains__(key)

    def pop(self, key: str, *default: Any) -> Any:
        self.read.add(key)
        return super().pop(key, *default)

    def __iter__(self) -> Iterator[str]:
        self.all_read = True
        return super().__iter__()

    def keys(self) -> Any:
        self.all_read = True
        return super().keys()

    def items(self) -> Any:
        self.all_read = True
        return super().items()

    def values(self) -> Any:
        self.all_read = True
        return super().values()


def _warn_unused(hparams: ReadHyperparameters, applied: list[str], keys: set[str]) -> None:
    """Warn about names that change nothing: not applied to the optimizer (``applied``, what
    :func:`~optuna_gamma.tuner.trainer.apply_hyperparameters` returned) and not read from
    ``hparams`` by ``train_epoch`` in the run's first trial (in this process)."""
    if hparams.all_read:
        return
    for name in sorted(set(dict.keys(hparams)) - set(applied) - hparams.read):
        _logger.warning(
            f"hyperparameter {name!r} changes nothing: it is not a key of the optimizer's "
            f"parameter groups ({', '.join(sorted(keys))}) and the trainer did not read it from "
            f"hparams in the first trial; rename it after a group key or read hparams[{name!r}] "
            f"in train_epoch()"
        )


def _held_values(optimizer: Any, applied: list[str]) -> dict[str, list[Any]]:
    """The groups' values of the applied names other than ``lr`` (which schedulers move)."""
    return {
        name: setting_values(optimizer.param_groups, name) or []
        for name in applied
        if name != "lr"
    }


def _warn_overwritten(before: dict[str, list[Any]], after: dict[str, list[Any]]) -> None:
    """Warn about tuned optimizer settings that the first trial's training changed: something
    in ``train_epoch`` sets them (``OneCycleLR`` and ``CyclicLR`` cycle ``momentum`` /
    ``betas[0]`` unless built with ``cycle_momentum=False``), so the tuned value holds only
    until then."""
    for name, values in before.items():
        if after.get(name) != values:
            _logger.warning(
                f"hyperparameter {name!r} was changed during the first trial's training "
                f"(from {values} to {after.get(name)}): something in train_epoch sets it (an "
                f"LR scheduler that cycles the momentum, such as OneCycleLR or CyclicLR, unless "
                f"built with cycle_momentum=False), so the tuned value holds only until then"
            )


def _steps(scheduler: Any) -> int | None:
    """The steps an LR scheduler has taken (its ``last_epoch``), if it counts them."""
    steps = getattr(scheduler, "last_epoch", None)
    return steps if isinstance(steps, int) and not isinstance(steps, bool) else None


def _horizon(scheduler: Any) -> tuple[str, int] | None:
    """The steps over which an LR scheduler sized by the length of a training runs its course,
    with the settings that say so: ``CosineAnnealingLR``'s ``T_max``, ``OneCycleLR``'s
    ``total_steps``, ``PolynomialLR``'s and a decaying ``LinearLR``'s ``total_iters``, and a
    ``SequentialLR`` ending in one of them (a warm-up, then a cosine: its last milestone plus
    the cosine's); else ``None`` (a step decay, a plateau rule, a warm-up alone, a cycle: not
    sized by the run)."""
    from torch.optim import lr_scheduler

    if isinstance(scheduler, lr_scheduler.CosineAnnealingLR):
        return f"T_max={scheduler.T_max}", int(scheduler.T_max)
    if isinstance(scheduler, lr_scheduler.OneCycleLR):
        return f"total_steps={scheduler.total_steps}", int(scheduler.total_steps)
    if isinstance(scheduler, lr_scheduler.PolynomialLR):
        return f"total_iters={scheduler.total_iters}", int(scheduler.total_iters)
    if (
        isinstance(scheduler, lr_scheduler.LinearLR)
        and scheduler.end_factor < scheduler.start_factor
    ):
        # a linear decay over the training (a warm-up rises: it is not sized by the run)
        return f"total_iters={scheduler.total_iters}", int(scheduler.total_iters)
    if isinstance(scheduler, lr_scheduler.SequentialLR):
        children = getattr(scheduler, "_schedulers", None)
        milestones = getattr(scheduler, "_milestones", None)
        if isinstance(children, list) and children and isinstance(milestones, list):
            last = _horizon(children[-1])
            if last is not None and milestones:
                return f"its last milestone {milestones[-1]} + {last[0]}", milestones[-1] + last[1]
    return None


def _warn_horizon(scheduler: Any, steps_before: int, epochs_trained: int, epochs: int) -> None:
    """Warn about an LR scheduler that anneals over another number of epochs than the run's
    final model trains (``ctx.epochs``, the policy's ``plan.epochs``): sized by the budget (120
    where the default policy's final model trains 90 epochs), or by the serial plan in a run
    with workers (whose plan is shorter), its rate is cut short of its end or runs past it.

    One step per epoch counts ``T_max`` in epochs; a schedule stepped every batch is converted
    at the steps the first trial's epoch took (with a tuned batch size, those of its size)."""
    horizon, after = _horizon(scheduler), _steps(scheduler)
    if horizon is None or after is None or after <= steps_before or epochs_trained <= 0:
        return
    if epochs <= 0:
        return
    per_epoch = (after - steps_before) / epochs_trained
    span = horizon[1] / per_epoch
    if abs(span - epochs) <= max(1.0, 0.05 * epochs):
        return
    at = (
        "one step per epoch"
        if per_epoch == 1
        else f"at the first trial's {per_epoch:g} steps per epoch"
    )
    _logger.warning(
        f"the LR scheduler {type(scheduler).__name__} runs its course over {span:.4g} epochs "
        f"({horizon[0]}, {at}), but the run's final model trains {epochs} (ctx.epochs): its "
        f"rate {'stops short of' if span > epochs else 'runs past'} the schedule's end. If the "
        "schedule is meant to end with the training, size it by the epochs the tuner passes "
        "to a build() that takes them: def build(self, seed, device, epochs)"
    )


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
    try:
        component_kinds(state)
    except ValueError as err:
        raise ValueError(f"trainer.build() returned a state the tuner cannot keep: {err}") from (
            None
        )
    lazy = [name for name, p in state.model.named_parameters() if torch.nn.parameter.is_lazy(p)]
    if lazy:
        raise ValueError(
            f"trainer.build() returned a model with uninitialized (lazy) parameters "
            f"({', '.join(lazy[:3])}{', ...' if len(lazy) > 3 else ''}): the tuner snapshots the "
            "built state, so build() must materialize them, e.g. by a forward pass of a dummy "
            "batch before the optimizer is made"
        )
    first = next(state.model.parameters(), None)
    if (
        first is not None
        and first.device != device
        and not (first.device.type == device.type and device.index is None)
    ):
        state.model.to(device)
