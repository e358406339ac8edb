"""The process a run runs in: its torch device and threads, its worker id, its storage errors.

What :class:`~optuna_gamma.tuner.execution.engine.Engine` needs from the machine before and
around a run, apart from any study: the device checked to exist (:func:`resolve_device`), torch's
thread count for the duration (:func:`torch_threads`), the ``host:pid`` recorded on the trials
a worker trains (:func:`worker_id`), and a storage failure in the middle of a run turned into
one line (:func:`storage_errors`).
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import os
import socket
from typing import Any
from typing import TYPE_CHECKING

import optuna
import sqlalchemy.exc

from optuna_gamma.tuner.errors import TunerError


if TYPE_CHECKING:
    import torch


__all__ = ["resolve_device", "storage_errors", "torch_threads", "worker_devices", "worker_id"]


def worker_id() -> str:
    """``host:pid`` of this process (recorded on the trials a worker trains)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def resolve_device(spec: Any) -> torch.device:
    """The torch device for ``spec`` (``None``: CUDA if available, else CPU), checked to exist.

    Raises:
        ValueError: An unknown device string, or a device this machine does not have.
    """
    import torch

    if spec is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {spec!r}: {str(err).splitlines()[0]}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {spec!r} requested, but no CUDA GPU is available here")
        if device.index is not None and device.index >= count:
            raise ValueError(f"device {spec!r} requested, but only {count} CUDA device(s) exist")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {spec!r} requested, but MPS is not available here")
    elif device.type != "cpu":
        raise ValueError(f"device {spec!r} is not supported (use cpu, cuda, cuda:K or mps)")
    return device


def worker_devices(spec: Any, n: int) -> list[Any]:
    """The device of each of ``n`` local workers.

    With ``spec`` ``None`` or ``"cuda"`` (no index) and several CUDA GPUs visible (after
    ``CUDA_VISIBLE_DEVICES``), worker ``i`` trains on ``cuda:(i mod count)``: one GPU per
    worker, as Ray Tune gives each trial its own. Any other ``spec`` (``"cuda:1"``, ``"cpu"``,
    ``"mps"``) is every worker's.
    """
    import torch

    if (spec is not None and str(spec) != "cuda") or not torch.cuda.is_available():
        return [spec] * n
    count = torch.cuda.device_count()
    return [f"cuda:{i % count}" for i in range(n)] if count > 1 else [spec] * n


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Torch's intra-op thread count set to ``n`` for the duration (``None``: left alone)."""
    import torch

    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def storage_errors() -> Iterator[None]:
    """Turn storage failures in the middle of a run into a one-line :class:`TunerError`."""
    try:
        yield
    except (optuna.exceptions.StorageInternalError, sqlalchemy.exc.SQLAlchemyError) as err:
        cause: BaseException | None = err
        while (
            cause is not None and getattr(cause, "orig", None) is None
        ):  # find the database's error
            cause = cause.__cause__ or cause.__context__
        text = str(getattr(cause, "orig", None) or err).strip().splitlines()
        raise TunerError(f"storage error: {text[0] if text else type(err).__name__}") from err
