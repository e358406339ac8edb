"""The trainer protocol: how the per-epoch tuner runs *your* training code.

The tuner's contract with user code is three callables (docs/design.md §4):

1. ``build(seed, device) -> TrainingState``: the initial training state for a seed: the model,
   an optimizer of any kind, optionally an LR scheduler and an AMP ``GradScaler``, and in
   ``extra`` any other object with ``state_dict``/``load_state_dict`` (an EMA, a custom sampler,
   ...) or plain data (a step counter). Every component is made here: one that ``train_epoch``
   adds, removes or replaces by another kind of object is refused after the first trial, since
   a worker or a resumed run, which restores a stored state into a freshly built one, would not
   have it.
2. ``train_epoch(state, hparams, ctx) -> metrics``: train one epoch of ``state`` in place with
   the trial's hyperparameters (your own loop, DataLoader, loss, device, AMP). Returns a mapping
   of training metrics (``{"train_loss": ...}``), a float (the training loss) or ``None``;
   ``{"diverged": True}`` for a setting that cannot train (e.g. a caught out-of-memory error
   for a large batch size: the trial completes with a clearly bad value and is never adopted).
3. ``evaluate(state, split) -> metrics``: metrics of ``state`` on ``split`` (``"valid"``, and
   ``"test"`` for the final report): accuracy and loss for kappa, or whatever your objective
   reads. Values must be numbers (a ``"confusion_matrix"`` list is kept for the test split).

Hyperparameters named like a key of the optimizer's parameter groups (``lr``, ``momentum``,
``weight_decay``, ``betas``, ``eps``, ...; one element of a tuple such as ``betas[0]``) are set on
every parameter group by the tuner before ``train_epoch`` runs (:func:`apply_hyperparameters`);
``lr`` is the base rate the optimizer was built with: the LR scheduler's rates scale with it
(:func:`rescale_schedule`). All
hyperparameters, these included, reach ``train_epoch`` in ``hparams`` (batch size, augmentation
strength, ...). Capture and restore of the state, seeding, and all persistence are the tuner's
job, never the trainer's.

Randomness: every trial of an epoch trains under the same seed. Around each ``train_epoch``
call the tuner forks and seeds Python's :mod:`random`, NumPy's global generator and torch's CPU
and CUDA generators from ``ctx.seed`` (restoring them afterwards), so a ``DataLoader(...,
shuffle=True)``, dropout and random augmentations draw the same numbers in every trial;
``ctx.generator`` is a seeded :class:`torch.Generator` to hand to a DataLoader explicitly. On a
CPU an epoch is then a deterministic function of (state, hyperparameters, seed) for the usual
training loops, which is what makes resume bit-identical and lets the tuner reuse a repeated
trial's result. Set ``deterministic = False`` on a trainer that is not (the tuner then never
tells a model-based sampler that the objective is noise-free).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
import contextlib
import copy
from dataclasses import dataclass
from dataclasses import field
import numbers
import random
import re
import sys
from typing import Any
from typing import Protocol
from typing import runtime_checkable
from typing import TYPE_CHECKING

import numpy as np


if TYPE_CHECKING:
    import torch


__all__ = [
    "LAYOUT",
    "EpochContext",
    "FunctionTrainer",
    "Trainer",
    "TrainingState",
    "apply_hyperparameters",
    "check_hyperparameters",
    "base_rate",
    "build_state",
    "build_takes_epochs",
    "capture",
    "group_values",
    "held_value",
    "own_value",
    "persistent_loaders",
    "plain",
    "rescale_schedule",
    "restore",
    "seeded_rng",
    "setting_values",
    "trainer_defaults",
]


@dataclass
class TrainingState:
    """Everything that one training carries from epoch to epoch.

    Attributes:
        model: The network.
        optimizer: Any :class:`torch.optim.Optimizer` over ``model``'s parameters.
        scheduler: Optional LR scheduler (anything with ``state_dict``/``load_state_dict``).
        scaler: Optional AMP ``torch.amp.GradScaler``.
        extra: Further named things to carry: objects with ``state_dict``/``load_state_dict``
            (EMA weights, a custom sampler, ...) or plain data (numbers, strings, tensors, and
            lists, tuples and dicts of them: a step counter, a loss history), which a restore
            replaces by a copy of the stored value.
    """

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any = None
    scaler: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def components(self) -> dict[str, Any]:
        """The stateful objects by name (``None`` ones left out), in a fixed order."""
        out: dict[str, Any] = {"model": self.model, "optimizer": self.optimizer}
        if self.scheduler is not None:
            out["scheduler"] = self.scheduler
        if self.scaler is not None:
            out["scaler"] = self.scaler
        for name, obj in self.extra.items():
            out[f"extra.{name}"] = obj
        return out


@dataclass(frozen=True)
class EpochContext:
    """What the tuner tells ``train_epoch`` about the epoch it trains.

    Attributes:
        epoch: 1-based epoch of the training (whole-training mode: 1..E within one trial).
        seed: The epoch's seed, the same for every trial of the epoch.
        device: The device the state lives on.
        trial_number: Number of the Optuna trial being trained (for logging).
        generator: A :class:`torch.Generator` seeded from ``seed`` (for a DataLoader).
        epochs: The epochs of the run, i.e. of its final model: the policy's planned epochs
            per epoch (``PopulationPolicy(budget=120).plan.epochs`` is 90), ``E`` in whole-
            training mode; for what depends on the progress, ``epoch / epochs`` (an
            augmentation's strength, a schedule built in ``train_epoch``). ``None`` where a
            caller outside the tuner does not give it.
    """

    epoch: int
    seed: int
    device: torch.device
    trial_number: int
    generator: torch.Generator
    epochs: int | None = None


@runtime_checkable
class Trainer(Protocol):
    """The protocol a user trainer implements (see the module docstring).

    Optional members the tuner uses when present:

    * ``search_space() -> Mapping[str, BaseDistribution | value]``: the default search space
      (the CLI uses it with ``--trainer``; a plain value is a fixed hyperparameter).
    * ``deterministic: bool``: whether an epoch is a deterministic function of (state,
      hyperparameters, seed) on a CPU (default ``True``; on a GPU the tuner assumes not).
    * ``apply_hyperparameters(state, hparams)``: replaces the default
      :func:`apply_hyperparameters` (e.g. to keep per-group learning-rate ratios).
    * ``describe() -> Mapping[str, Any]``: a JSON-ready description recorded in the studies.
    * ``default_hyperparameters() -> Mapping[str, Any]``: the values an untuned training of
      this trainer uses for hyperparameters the optimizer does not hold (batch size,
      augmentation strength, label smoothing), for the untuned candidate that the default
      policy races in epoch 1 (:func:`trainer_defaults`); optimizer keys come from the built
      optimizer, and a name given here overrides that.
    """

    def build(self, seed: int, device: torch.device) -> TrainingState:
        """The initial training state for ``seed`` (called with the tuner's RNGs seeded).

        A ``build`` that also takes ``epochs`` (``def build(self, seed, device, epochs)``) is
        given the run's epochs, those its final model trains (:func:`build_takes_epochs`)."""
        ...

    def train_epoch(
        self, state: TrainingState, hparams: Mapping[str, Any], ctx: EpochContext
    ) -> Mapping[str, float] | float | None:
        """Train ``state`` for one epoch in place; return training metrics."""
        ...

    def evaluate(self, state: TrainingState, split: str) -> Mapping[str, Any]:
        """Metrics of ``state`` on ``split`` (``"valid"`` or ``"test"``)."""
        ...


@dataclass
class FunctionTrainer:
    """A :class:`Trainer` made of three functions (for code that is not a class); ``space``,
    ``deterministic`` and ``defaults`` give the optional members (``search_space()``,
    ``deterministic``, ``default_hyperparameters()``).

    Example:
        .. code-block:: python

            trainer = FunctionTrainer(build=build, train_epoch=train_epoch, evaluate=evaluate)
    """

    build: Callable[..., TrainingState]  # (seed, device), or (seed, device, epochs)
    train_epoch: Callable[[TrainingState, Mapping[str, Any], EpochContext], Any]
    evaluate: Callable[[TrainingState, str], Mapping[str, Any]]
    space: Mapping[str, Any] | None = None
    deterministic: bool = True
    defaults: Mapping[str, Any] | None = None

    def search_space(self) -> Mapping[str, Any] | None:
        return self.space

    def default_hyperparameters(self) -> Mapping[str, Any]:
        return dict(self.defaults or {})


def plain(v: Any) -> Any:
    """``v`` with NumPy scalars (and 0-d arrays or tensors) as the Python numbers they hold,
    inside lists and tuples too: a fixed value of the search space or a
    ``default_hyperparameters()`` value from a NumPy grid or a pandas table (``np.int64(64)``)
    stopped the run where its record was written as JSON, or was not found among the choices."""
    if isinstance(v, (list, tuple)):
        return type(v)(plain(x) for x in v)
    if not isinstance(v, (bool, str)) and getattr(v, "ndim", None) == 0 and hasattr(v, "item"):
        return v.item()
    return v


def trainer_defaults(trainer: Any) -> dict[str, Any]:
    """The trainer's ``default_hyperparameters()`` (``{}`` without one), checked.

    Raises:
        ValueError: It is not a method, or it returns no mapping of names.
    """
    get = getattr(trainer, "default_hyperparameters", None)
    if get is None:
        return {}
    if not callable(get):
        raise ValueError(
            f"trainer.default_hyperparameters must be a method returning a mapping, got {get!r}"
        )
    values = get()
    if not isinstance(values, Mapping) or not all(isinstance(k, str) for k in values):
        raise ValueError(
            f"trainer.default_hyperparameters() must return a mapping of hyperparameter names "
            f"to values, got {values!r}"
        )
    return {name: plain(value) for name, value in values.items()}


def build_takes_epochs(trainer: Any) -> bool:
    """Whether ``trainer.build`` takes the run's epochs: a parameter named ``epochs`` after
    ``seed`` and ``device`` (``def build(self, seed, device, epochs)``), which the tuner then
    passes as a keyword (the epochs its final model trains, ``EpochContext.epochs``), so that a
    schedule sized by the run (a cosine, ``OneCycleLR``) is made with them; a ``**kwargs`` is
    not asked to take it."""
    import inspect

    try:
        parameters = inspect.signature(trainer.build).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        return False
    found = parameters.get("epochs")
    return found is not None and found.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )


def build_state(trainer: Any, seed: int, device: Any, epochs: int | None = None) -> Any:
    """``trainer.build(seed, device)``, with ``epochs=epochs`` where ``build`` takes them
    (:func:`build_takes_epochs`) and they are known: how every state of a run is built."""
    if epochs is not None and build_takes_epochs(trainer):
        return trainer.build(seed, device, epochs=epochs)
    return trainer.build(seed, device)


def check_trainer(trainer: Any) -> None:
    """Raise ``ValueError`` unless ``trainer`` has callable ``build``, ``train_epoch``,
    ``evaluate``."""
    missing = [
        m for m in ("build", "train_epoch", "evaluate") if not callable(getattr(trainer, m, None))
    ]
    if missing:
        raise ValueError(
            f"trainer {trainer!r} lacks {', '.join(missing)}: a trainer needs build(seed, "
            f"device), "
            "train_epoch(state, hparams, ctx) and evaluate(state, split)"
        )


# ------------------------------------------------------------------------ hyperparameters
_ELEMENT = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*)\[(?P<index>\d+)\]$")


def optimizer_keys(optimizer: torch.optim.Optimizer) -> set[str]:
    """Hyperparameter names of ``optimizer``'s parameter groups (``params`` excluded)."""
    keys = set(getattr(optimizer, "defaults", {}))
    for group in optimizer.param_groups:
        keys.update(group)
    keys.discard("params")
    return keys


def apply_hyperparameters(state: TrainingState, hparams: Mapping[str, Any]) -> list[str]:
    """Set the optimizer hyperparameters in ``hparams`` on every parameter group of ``state``.

    A name that is a parameter-group key (``momentum``, ``weight_decay``, ``betas``, ``eps``,
    ...) is set on every group (:func:`group_values`: where the groups hold different numbers,
    as a no-decay group at ``weight_decay=0``, the largest takes the tuned value and the others
    keep their ratio to it); ``key[i]`` sets element ``i`` of a tuple-valued key
    (``betas[0]``) in the same way. A tuned ``lr`` is the base rate the optimizer was built with
    (:func:`base_rate`): every rate of the optimizer and of its LR scheduler scales with it
    (:func:`rescale_schedule`). Other names are left to ``train_epoch``.

    Returns:
        The names that were applied to the optimizer.

    Raises:
        ValueError: ``key[i]`` for a key that is not a tuple, or an index out of range; a value
            of another kind than the optimizer's (a string or ``None`` for a number, a number
            for a flag), such as a categorical ``momentum`` with string choices.
    """
    optimizer = state.optimizer
    check_hyperparameters(optimizer, hparams)
    keys = optimizer_keys(optimizer)
    applied: list[str] = []
    for name, value in hparams.items():
        m = _ELEMENT.match(name)
        if name in keys:
            groups = optimizer.param_groups
            held = [group.get(name, optimizer.defaults.get(name)) for group in groups]
            if name == "lr":
                rescale_schedule(state, value)
            else:
                for group, v in zip(groups, group_values(held, value)):
                    group[name] = v
            applied.append(name)
        elif m and m["key"] in keys:
            key, index = m["key"], int(m["index"])
            tuples: list[Any] = [group.get(key) for group in optimizer.param_groups]
            values = group_values([t[index] for t in tuples], value)
            for group, current, v in zip(optimizer.param_groups, tuples, values):
                items = list(current)
                items[index] = v
                group[key] = type(current)(items)
            applied.append(name)
    return applied


def check_hyperparameters(optimizer: torch.optim.Optimizer, hparams: Mapping[str, Any]) -> None:
    """Refuse values that :func:`apply_hyperparameters` could not set on ``optimizer``: a value
    of another kind than the optimizer's, a number for a tuple-valued key (``betas``: tune
    ``betas[0]``), ``key[i]`` for a key that is not a tuple or an index out of range. Names
    that are not the optimizer's are left alone (they are ``train_epoch``'s).

    Raises:
        ValueError: Naming the hyperparameter, the optimizer's value and what fits.
    """
    keys = optimizer_keys(optimizer)
    for name, value in hparams.items():
        m = _ELEMENT.match(name)
        if name in keys:
            for group in optimizer.param_groups:
                current = group.get(name, optimizer.defaults.get(name))
                if isinstance(current, (tuple, list)) and not isinstance(value, (tuple, list)):
                    elements = " or ".join(f"{name}[{i}]" for i in range(len(current)))
                    raise ValueError(
                        f"hyperparameter {name!r} = {value!r}: the optimizer's {name!r} is "
                        f"{current!r}, a tuple; tune one element ({elements}) in the search space"
                    )
                _check_kind(name, current, value)
        elif m and m["key"] in keys:
            key, index = m["key"], int(m["index"])
            for group in optimizer.param_groups:
                current = group.get(key)
                if not isinstance(current, (tuple, list)) or index >= len(current):
                    raise ValueError(
                        f"hyperparameter {name!r}: optimizer key {key!r} is {current!r}, "
                        f"which has no element {index}"
                    )
                _check_kind(name, current[index], value)


def _number(v: Any) -> bool:
    """A real number, not a bool."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def group_values(current: Sequence[Any], value: Any) -> list[Any]:
    """The value of a tuned optimizer key for each parameter group, given the groups' values.

    Where the groups agree, or a value is not a number, every group gets ``value``. Where they
    hold different numbers (a no-decay group for biases and norms at ``weight_decay=0``, per-layer
    learning rates, a frozen group at ``lr=0``), the largest gets ``value`` and the others keep
    their ratio to it: group ``g`` gets ``value * current[g] / max(current)``, so a group at 0
    stays at 0 and the tuned number means the same as with one group.
    """

    if not current or not _number(value) or not all(_number(c) for c in current):
        return [value] * len(current)
    top = max(float(c) for c in current)
    if top <= 0 or all(float(c) == top for c in current):
        return [value] * len(current)
    return [value if float(c) == top else _scaled(value, float(c), top) for c in current]


def _scaled(value: float, c: float, top: float) -> float:
    """``value * c / top``; the ratio first where the product is subnormal (it lost precision,
    or underflowed to 0), so that a group keeps its ratio; the product first elsewhere, as runs
    before computed it."""
    product = value * c
    if abs(product) < sys.float_info.min:
        return value * (c / top)
    return product / top


def held_value(current: Sequence[Any]) -> Any:
    """The one value that stands for the groups' values of an optimizer key: the value that
    :func:`group_values` maps back onto them unchanged (the largest number, or the first
    group's value where they are not all numbers). It is the trainer's own setting of a tuned
    key (what an untuned training uses)."""
    if current and all(_number(c) for c in current):
        return max(current)
    return current[0] if current else None


def base_rate(group: Mapping[str, Any]) -> Any:
    """The learning rate a parameter group was built with: the base rate of its LR scheduler
    (what a tuned ``lr`` stands for, :func:`rescale_schedule`), not the rate of the moment.

    A scheduler sets the group's rate when it is built: ``OneCycleLR`` to its peak divided by
    ``div_factor``, a warm-up (``LinearLR``, a ``LambdaLR`` such as a linear warm-up from 0) to
    a fraction of the base rate. The base is ``OneCycleLR``'s peak ``max_lr``, else the
    ``initial_lr`` that every PyTorch (and timm) scheduler records, else the rate itself.
    """
    if "max_lr" in group and "min_lr" in group:  # OneCycleLR
        return group["max_lr"]
    return group.get("initial_lr", group.get("lr"))


def setting_values(groups: Sequence[Mapping[str, Any]], name: str) -> list[Any] | None:
    """Each group's value of the optimizer setting ``name``: a group key, or ``key[i]`` for
    element ``i`` of a tuple-valued key. ``None`` where a group does not hold it."""
    m = _ELEMENT.match(name)
    if m is None:
        return [g[name] for g in groups] if all(name in g for g in groups) else None
    key, index = m["key"], int(m["index"])
    items = [g.get(key) for g in groups]
    elements = [v[index] for v in items if isinstance(v, (tuple, list)) and index < len(v)]
    return elements if len(elements) == len(items) else None


def own_value(groups: Sequence[Mapping[str, Any]], name: str, *, scheduled: bool = True) -> Any:
    """The trainer's own value of the tuned hyperparameter ``name`` in the optimizer's
    ``groups`` (as built): for ``lr`` the base rate (:func:`base_rate`) when the state has an
    LR scheduler (``scheduled``), else the rate; the value of a key or of an element ``key[i]``
    otherwise (:func:`setting_values`); one value for all groups (:func:`held_value`).
    ``None`` where the groups do not hold it."""
    if name == "lr" and scheduled and all("lr" in g for g in groups):
        return held_value([base_rate(g) for g in groups])
    values = setting_values(groups, name)
    return None if values is None else held_value(values)


def rescale_schedule(state: TrainingState, lr: Any) -> None:
    """Make ``lr`` the base rate of ``state``'s optimizer: scale every learning rate of the
    optimizer and of its LR scheduler by ``lr / B``, ``B`` the base rate the optimizer holds
    now (the largest group's :func:`base_rate`).

    The schedule then continues on the curve it would have followed had the optimizer been
    built with ``lr`` (a warm-up stays a warm-up, a step decay keeps what it has decayed, a
    cycle keeps its shape), and groups with their own rates (per-layer rates, a frozen group at
    0) keep their ratios. What scales:

    - each group's current ``lr`` (chainable schedulers, ``LinearLR``, ``StepLR``, cosine,
      multiply it at their next step: set to the tuned rate itself half-way through a warm-up,
      the warm-up overshot it by the factor it had left), its ``initial_lr`` and, for
      ``OneCycleLR``, ``max_lr`` and ``min_lr``;
    - the scheduler's ``base_lrs`` (and ``CyclicLR``'s ``max_lrs``), and those of the
      schedulers inside a ``SequentialLR`` or ``ChainedScheduler`` (warm-up then cosine);
    - timm's schedulers (``timm.scheduler.Scheduler`` for ``"lr"``: cosine, step, plateau,
      ...), which compute every step's rate from ``base_values`` and their warm-up's
      increments ``warmup_steps`` (from ``warmup_lr_init`` to the base values): both follow.

    ``ReduceLROnPlateau`` keeps no base rate: the groups get an ``initial_lr`` (their rate when
    ``lr`` is first tuned), so that a reduction it has made is kept, as a step decay's is, where
    the tuned rate used to replace it at every epoch. A number equal to ``B`` becomes ``lr``
    exactly, and one that is not a positive number (a tensor, ``B = 0``) becomes ``lr``.

    Without a scheduler in the state there is no schedule to continue: each group's rate
    becomes ``lr`` (in its ratio to the others, :func:`group_values`), and so does an
    ``initial_lr`` that a scheduler built inside ``train_epoch`` left in the groups (PyTorch's
    schedulers keep an ``initial_lr`` they find, so the next epoch's scheduler starts from the
    tuned rate, not from the last epoch's).
    """
    groups = state.optimizer.param_groups
    if state.scheduler is None:
        for group, v in zip(groups, group_values([g["lr"] for g in groups], lr)):
            group["lr"] = v
            if "initial_lr" in group:
                group["initial_lr"] = v
        return
    top = held_value([base_rate(g) for g in groups])

    def scaled(q: Any) -> Any:
        if not (_number(q) and _number(top) and top > 0 and _number(lr)):
            return lr
        return lr if q == top else lr * float(q) / float(top)

    for group in groups:
        if "initial_lr" not in group:  # ReduceLROnPlateau keeps none: the base is the rate now
            group["initial_lr"] = group["lr"]
        group["lr"] = scaled(group["lr"])
        for key in ("initial_lr", "max_lr", "min_lr"):
            if key in group and (key == "initial_lr" or "min_lr" in group and "max_lr" in group):
                group[key] = scaled(group[key])
    pending = [state.scheduler]
    while pending:
        scheduler = pending.pop()
        children = getattr(scheduler, "_schedulers", None)  # SequentialLR, ChainedScheduler
        if isinstance(children, (list, tuple)):
            pending.extend(children)
        for attr in ("base_lrs", "max_lrs"):  # every PyTorch scheduler; CyclicLR
            values = getattr(scheduler, attr, None)
            if isinstance(values, list) and len(values) == len(groups):
                values[:] = [scaled(v) for v in values]
        _rescale_timm(scheduler, scaled)


def _rescale_timm(scheduler: Any, scaled: Callable[[Any], Any]) -> None:
    """A timm scheduler of the learning rate: its ``base_values`` scale, and its linear
    warm-up's per-step increments ``(base - warmup_lr_init) / warmup_t`` follow them."""
    values = getattr(scheduler, "base_values", None)
    if getattr(scheduler, "param_group_field", None) != "lr" or not isinstance(values, list):
        return
    values[:] = [scaled(v) for v in values]
    steps, t = getattr(scheduler, "warmup_steps", None), getattr(scheduler, "warmup_t", 0)
    init = getattr(scheduler, "warmup_lr_init", 0.0)
    if isinstance(steps, list) and len(steps) == len(values) and isinstance(t, int) and t > 0:
        steps[:] = [(v - init) / t for v in values]


def _check_kind(name: str, current: Any, value: Any) -> None:
    """Refuse a hyperparameter value of another kind than the optimizer's setting."""

    if isinstance(current, bool) and not isinstance(value, bool):
        wanted = "True or False"
    elif _number(current) and not _number(value):
        wanted = "a number"
    else:
        return
    hint = "give the search space numeric choices"
    if range_like(value):  # {"lr": (1e-4, 1e-1)}: meant as a range, taken as one value
        hint = (
            f"a fixed value in the search space is used as it is; a range to tune is "
            f"FloatDistribution({value[0]!r}, {value[1]!r}, log=True)"
        )
    raise ValueError(
        f"hyperparameter {name!r} = {value!r} ({type(value).__name__}): the optimizer's "
        f"{name!r} needs {wanted}; {hint}"
    )


def range_like(value: Any) -> bool:
    """A pair ``(low, high)`` of numbers with ``low < high`` (what other tools take as a range)."""
    return (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(_number(v) for v in value)
        and value[0] < value[1]
    )


def persistent_loaders(trainer: Any) -> list[str]:
    """The trainer's attributes (and the items of its dict, list and tuple attributes of up to
    64 items, three levels deep: ``loaders['train']['mnist']``) that are ``DataLoader`` s whose
    worker processes outlive an epoch (``num_workers > 0`` and ``persistent_workers=True``).

    Such workers are seeded once, when the loader first iterates, and keep their random state
    from then on: the tuner's seeding around ``train_epoch`` reaches the shuffle order (drawn in
    the main process) but not their random augmentations, which then differ between the trials
    of an epoch, and between a run and its resumption.
    """
    from torch.utils.data import DataLoader

    found: list[str] = []

    def visit(where: str, obj: Any, depth: int) -> None:
        if isinstance(obj, DataLoader):
            if obj.num_workers > 0 and obj.persistent_workers:
                found.append(where)
        elif depth >= 3 or not isinstance(obj, (Mapping, list, tuple)) or len(obj) > 64:
            return  # (a long list is data, not a few loaders)
        elif isinstance(obj, Mapping):
            for k, v in obj.items():
                visit(f"{where}[{k!r}]", v, depth + 1)
        else:
            for i, v in enumerate(obj):
                visit(f"{where}[{i}]", v, depth + 1)

    for name, value in vars(trainer).items() if hasattr(trainer, "__dict__") else ():
        visit(name, value, 0)
    return found


# ------------------------------------------------------------------------ capture / restore
def _clone(obj: Any) -> Any:
    """Deep copy of nested dicts/lists/tuples with every tensor detached and cloned to CPU."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, Mapping):
        items = {k: _clone(v) for k, v in obj.items()}
        if type(obj) is dict:
            return items
        out: Any = type(obj)(items)  # type: ignore[call-arg]  # e.g. Module.state_dict()'s OrderedDict
        metadata = getattr(obj, "_metadata", None)  # per-module versions used by load_state_dict
        if metadata is not None:
            out._metadata = copy.deepcopy(metadata)
        return out
    if isinstance(obj, list):
        return [_clone(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_clone(v) for v in obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return copy.deepcopy(obj)


#: The snapshot's key for what no ``state_dict`` holds (:func:`capture`); components are named
#: ``model``, ``optimizer``, ``scheduler``, ``scaler`` and ``extra.<name>``, so it is never one.
LAYOUT = "_layout"


def _named_parameters(state: TrainingState) -> dict[str, Any]:
    """Every parameter of the state's module components by name (``"model:body.0.weight"``)."""
    import torch

    named: dict[str, Any] = {}
    for component, obj in state.components().items():
        if isinstance(obj, torch.nn.Module):
            for name, p in obj.named_parameters():
                named[f"{component}:{name}"] = p
    return named


def _groups(optimizer: Any, named: Mapping[str, Any]) -> list[list[str]] | None:
    """The optimizer's parameter groups by parameter name (``None`` when a parameter of the
    optimizer is not among ``named``)."""
    names = {id(p): name for name, p in named.items()}
    try:
        return [[names[id(p)] for p in group["params"]] for group in optimizer.param_groups]
    except KeyError:
        return None


def _layout(state: TrainingState) -> dict[str, Any]:
    """What a ``state_dict`` leaves out and a training may change: the names of the parameters
    that do not require gradients (a frozen backbone, unfrozen later), and the optimizer's
    parameter groups by parameter name (``add_param_group`` when a backbone is unfrozen;
    ``None`` when a parameter of the optimizer belongs to no module of the state)."""
    named = _named_parameters(state)
    return {
        "frozen": [name for name, p in named.items() if not p.requires_grad],
        "groups": _groups(state.optimizer, named),
    }


def _stateful(obj: Any) -> bool:
    return callable(getattr(obj, "state_dict", None)) and callable(
        getattr(obj, "load_state_dict", None)
    )


def _plain(obj: Any, depth: int = 0) -> bool:
    """Whether ``obj`` is plain data that a state file holds as it is (what
    ``torch.load(weights_only=True)`` reads back): ``None``, numbers, strings, tensors, and
    lists, tuples and dicts (string or integer keys) of them."""
    import torch

    if depth > 32:
        return False
    if obj is None or isinstance(obj, (bool, int, float, str, torch.Tensor)):
        return True
    if isinstance(obj, (list, tuple)) and type(obj) in (list, tuple):
        return all(_plain(v, depth + 1) for v in obj)
    if type(obj) is dict:
        return all(isinstance(k, (str, int)) and _plain(v, depth + 1) for k, v in obj.items())
    return False


def _on(value: Any, device: Any) -> Any:
    """Plain data with every tensor moved to ``device`` (``None``: left where it is)."""
    import torch

    if device is None:
        return value
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, list):
        return [_on(v, device) for v in value]
    if isinstance(value, tuple):
        return tuple(_on(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _on(v, device) for k, v in value.items()}
    return value


#: The kind of a plain-data extra in :func:`component_kinds`.
PLAIN = "plain data"


def component_kinds(state: TrainingState) -> dict[str, str]:
    """Each component's kind: the class of an object with ``state_dict``/``load_state_dict``
    (``"torch.optim.adamw.AdamW"``), :data:`PLAIN` for plain data in ``extra``.

    Raises:
        ValueError: A component is neither (named, with its type and what it needs).
    """
    kinds: dict[str, str] = {}
    for name, obj in state.components().items():
        if _stateful(obj):
            kinds[name] = f"{type(obj).__module__}.{type(obj).__qualname__}"
        elif name.startswith("extra.") and _plain(obj):
            kinds[name] = PLAIN
        else:
            what = (
                "an object with state_dict()/load_state_dict() or plain data (numbers, "
                "strings, tensors, and lists, tuples and dicts of them)"
                if name.startswith("extra.")
                else "an object with state_dict()/load_state_dict()"
            )
            label = f"extra[{name[6:]!r}]" if name.startswith("extra.") else name
            raise ValueError(
                f"TrainingState.{label} is a {type(obj).__name__}, which the tuner cannot "
                f"capture and restore: it must be {what}"
            )
    return kinds


def capture(state: TrainingState) -> dict[str, Any]:
    """A snapshot of every component's ``state_dict()`` (CPU deep copies, safe to keep; a
    plain-data extra is copied as it is), and under :data:`LAYOUT` which parameters are frozen
    and how the optimizer groups them (neither is in a ``state_dict``; :func:`restore` sets
    both)."""
    snapshot = {
        name: _clone(obj.state_dict() if _stateful(obj) else obj)
        for name, obj in state.components().items()
    }
    snapshot[LAYOUT] = _layout(state)
    return snapshot


def _restore_layout(state: TrainingState, layout: Any) -> None:
    """Give ``state`` the snapshot's parameter groups (rebuilt by name where they differ, before
    the optimizer's ``load_state_dict``) and frozen parameters (:func:`capture`)."""
    groups = layout.get("groups") if isinstance(layout, Mapping) else None
    frozen = layout.get("frozen") if isinstance(layout, Mapping) else None

    def names(value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(n, str) for n in value)

    if not (
        isinstance(layout, Mapping)
        and (groups is None or (isinstance(groups, list) and all(names(g) for g in groups)))
        and (frozen is None or names(frozen))
    ):
        raise ValueError(f"training state has a bad layout record: {layout!r}")
    named = _named_parameters(state)
    if groups is not None and groups != _groups(state.optimizer, named):
        try:
            params = [[named[name] for name in group] for group in groups]
        except KeyError as err:
            raise ValueError(
                f"training state's optimizer groups name a parameter the trainer's model "
                f"lacks: {err}"
            ) from err
        optimizer = state.optimizer
        try:
            optimizer.param_groups.clear()
            optimizer.state.clear()
            for group in params:
                # the hyperparameters come with load_state_dict; these fill the required ones
                optimizer.add_param_group({**optimizer.defaults, "params": group})
        except (AttributeError, TypeError, ValueError) as err:
            raise ValueError(
                f"training state's optimizer has {len(groups)} parameter groups, and the "
                f"trainer's optimizer cannot be given them: {err}"
            ) from err
    if frozen is not None:
        frozen = set(frozen)
        for name, p in named.items():
            p.requires_grad_(name not in frozen)


def restore(state: TrainingState, snapshot: Mapping[str, Any]) -> None:
    """Load ``snapshot`` (from :func:`capture`) into ``state``'s components.

    The snapshot is copied in, never aliased, so one snapshot can be restored into any number of
    trials. Afterwards the optimizer's hyperparameters are those of the snapshot, and no
    parameter holds a gradient (``grad`` is ``None``, as in a state just built): a snapshot has
    none, and a gradient left by the trial trained before in the same process (a gradient
    accumulation cut by the epoch's end, an interrupted epoch) would otherwise be added to the
    next trial's first step, so that a trial's result depended on which trial ran before it,
    and a retried or resumed trial (a new process) differed from the first run.

    For the same reason the parameters' ``requires_grad`` flags and the optimizer's parameter
    groups are the snapshot's (:data:`LAYOUT`): a training that unfreezes a backbone after a few
    epochs, adding its parameters to the optimizer as a new group, resumes unfrozen with both
    groups in a fresh process, and a trial that starts from a state before the unfreezing trains
    it frozen, whichever trial ran before it (the groups are matched by parameter name, as
    PyTorch Lightning's ``BaseFinetuning`` restores its added groups).

    Raises:
        ValueError: The snapshot's components differ from the state's, or one does not load.
    """
    import torch

    comps = state.components()
    stored = {name for name in snapshot if name != LAYOUT}
    if set(comps) != stored:
        raise ValueError(
            f"training state has components {sorted(stored)}, but the trainer builds "
            f"{sorted(comps)}"
        )
    if LAYOUT in snapshot:  # not in states stored before layouts were (then left as they are)
        _restore_layout(state, snapshot[LAYOUT])
    first = next(state.model.parameters(), None)
    device = None if first is None else first.device
    for name, obj in comps.items():
        if name.startswith("extra.") and not _stateful(obj):
            if not _plain(snapshot[name]):
                raise ValueError(f"training state has a bad value for {name}")
            # its tensors where the model lives (a snapshot holds CPU copies)
            state.extra[name[len("extra.") :]] = _on(_clone(snapshot[name]), device)
            continue
        try:
            obj.load_state_dict(_clone(snapshot[name]))
        except (RuntimeError, KeyError, ValueError, TypeError) as err:
            raise ValueError(f"training state does not fit the trainer's {name}: {err}") from err
    for obj in comps.values():
        if isinstance(obj, torch.nn.Module):
            for p in obj.parameters():
                p.grad = None
    for group in state.optimizer.param_groups:
        for p in group["params"]:
            p.grad = None


# ------------------------------------------------------------------------ randomness
@contextlib.contextmanager
def seeded_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Seed Python's, NumPy's and torch's global generators from ``seed``; restore them after.

    torch's CPU generator and the current CUDA device's (when ``device`` is CUDA) are forked
    with :func:`torch.random.fork_rng`; :mod:`random` and NumPy's legacy global state are saved
    and restored by hand. The three seeds are derived from ``seed`` by
    :class:`numpy.random.SeedSequence`.
    """
    import torch

    torch_seed, np_seed, py_seed = (
        int(s) for s in np.random.SeedSequence(int(seed)).generate_state(3, dtype=np.uint32)
    )
    cuda = (
        [device.index if device.index is not None else torch.cuda.current_device()]
        if (device.type == "cuda")
        else []
    )
    py_state = random.getstate()
    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(torch_seed)
        for index in cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(torch_seed)
        random.seed(py_seed)
        np.random.seed(np_seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
