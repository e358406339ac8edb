"""The thesis's training step: one seeded epoch of mini-batch SGD on an in-memory split.

:func:`train_one_epoch` makes one pass of SGD (or any optimizer) over an in-memory
:class:`~optuna_gamma.tuner.builtin.data.Split`, cross-entropy loss, mini-batches in an order
drawn only from ``seed``. Dropout masks are drawn from a torch RNG seeded from ``seed`` as well,
inside :func:`torch.random.fork_rng`, so the global RNG state neither influences the epoch nor is
changed by it. On a CPU an epoch is therefore a deterministic function of (model state,
optimizer state, data, batch size, seed).

The optimizer of the thesis is :class:`torch.optim.SGD` (:func:`make_optimizer`):
``v <- momentum * v + (g + weight_decay * w)``, ``w <- w - lr * v`` (PyTorch's convention; weight
decay is an L2 term on every parameter, biases included).
"""

from __future__ import annotations

import math
from typing import Any
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


if TYPE_CHECKING:
    from optuna_gamma.tuner.builtin.data import Split


__all__ = ["default_device", "make_optimizer", "train_one_epoch"]


def default_device() -> torch.device:
    """``cuda`` if a CUDA device is available, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _check_real(
    name: str, value: Any, *, low: float, low_inclusive: bool, high: float | None = None
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if v < low or (v == low and not low_inclusive):
        raise ValueError(f"{name} must be {'>=' if low_inclusive else '>'} {low}, got {value!r}")
    if high is not None and v >= high:
        raise ValueError(f"{name} must be < {high}, got {value!r}")
    return v


def _check_lr(lr: Any) -> float:
    return _check_real("lr", lr, low=0.0, low_inclusive=False)


def _check_momentum(momentum: Any) -> float:
    return _check_real("momentum", momentum, low=0.0, low_inclusive=True, high=1.0)


def _check_weight_decay(weight_decay: Any) -> float:
    return _check_real("weight_decay", weight_decay, low=0.0, low_inclusive=True)


def make_optimizer(
    model: nn.Module, *, lr: float, momentum: float = 0.0, weight_decay: float = 0.0
) -> torch.optim.SGD:
    """Plain SGD over all parameters of ``model``.

    Args:
        model: The network.
        lr: Learning rate, finite and > 0.
        momentum: Heavy-ball momentum in [0, 1).
        weight_decay: L2 coefficient, finite and >= 0 (the thesis uses 0.001).

    Raises:
        ValueError: A value out of range (the message names it).
    """
    return torch.optim.SGD(
        model.parameters(),
        lr=_check_lr(lr),
        momentum=_check_momentum(momentum),
        weight_decay=_check_weight_decay(weight_decay),
    )


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def _derived_seeds(seed: int) -> tuple[int, int]:
    """Two independent 32-bit seeds (batch order, dropout) derived from ``seed``."""
    a, b = np.random.SeedSequence(seed).generate_state(2, dtype=np.uint32)
    return int(a), int(b)


def _move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.device != device and key != "step":
                state[key] = value.to(device)


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    split: Split,
    *,
    batch_size: int = 50,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> float:
    """Train ``model`` for one epoch of mini-batch SGD with cross-entropy loss.

    The training set is shuffled by ``torch.randperm`` with a :class:`torch.Generator` seeded
    from ``seed`` (so two calls with the same seed and the same split see the same batches, in
    the same order, whatever the global RNG state) and cut into ``ceil(N / batch_size)``
    batches (the last one may be smaller). Dropout and any other random layer draw from the
    global torch RNG, which is reseeded from ``seed`` inside :func:`torch.random.fork_rng` and
    restored afterwards.

    Args:
        model: The network; it is moved to ``device`` and put in training mode.
        optimizer: An optimizer over ``model``'s parameters (see :func:`make_optimizer`); its
            state tensors are moved to ``device``.
        split: The training data (``x`` float32, ``y`` int64 class indices).
        batch_size: Mini-batch size, an int >= 1 (the thesis uses 50).
        seed: Non-negative int; fixes the batch order and the dropout masks.
        device: Where to train; ``None`` means :func:`default_device`.

    Returns:
        The mean training loss over the epoch, ``sum_b |b| * loss_b / N``. If a batch loss
        becomes non-finite the epoch stops at once and that value (``nan`` or ``inf``) is
        returned; the model is then left as it was after the offending step's forward pass (no
        update with the non-finite gradient is made).

    Raises:
        ValueError: Bad ``batch_size`` or ``seed``, an empty split or mismatched ``x``/``y``.
    """
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    batch_size = int(batch_size)
    seed = _check_seed(seed)
    x, y = split.x, split.y
    n = int(y.shape[0])
    if n == 0:
        raise ValueError("cannot train on an empty split")
    if int(x.shape[0]) != n:
        raise ValueError(f"split.x has {x.shape[0]} rows but split.y has {n}")
    dev = default_device() if device is None else torch.device(device)

    first = next(model.parameters(), None)
    if first is None or first.device != dev:
        model.to(dev)
    _move_optimizer_state(optimizer, dev)
    model.train()
    x = x.to(dev)
    y = y.to(dev)

    order_seed, dropout_seed = _derived_seeds(seed)
    gen = torch.Generator().manual_seed(order_seed)
    perm = torch.randperm(n, generator=gen).to(dev)

    fork_devices = (
        [dev.index if dev.index is not None else torch.cuda.current_device()]
        if dev.type == "cuda"
        else []
    )
    total = 0.0
    with torch.random.fork_rng(devices=fork_devices):
        # Seed only the generators this epoch can draw from (torch.manual_seed would also
        # initialise every other backend, which costs more than a small epoch).
        torch.default_generator.manual_seed(dropout_seed)
        for index in fork_devices:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(dropout_seed)
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            xb, yb = x[idx], y[idx]
            loss = F.cross_entropy(model(xb), yb)
            value = float(loss.detach())
            if not math.isfinite(value):
                optimizer.zero_grad(set_to_none=True)
                return value
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += value * int(idx.shape[0])
    return total / n
