"""Who is calling the tuner, the Python API or the CLI, so that messages speak its language.

A script user is told ``objective="loss"`` and "widen the range of 'lr'"; a command-line user
``--objective loss`` and ``--lr-high``. The CLI marks its calls with :func:`cli_frontend`; the
Python API is the default.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import contextvars


__all__ = ["cli_flag", "cli_frontend", "from_cli", "option", "repeat_word", "widen_hint"]

_FROM_CLI: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "optuna_gamma_from_cli", default=False
)

#: Settings whose CLI flag is not ``--<name with dashes>``.
_CLI_FLAGS = {"num_threads": "--threads"}


def cli_flag(name: str) -> str:
    """The ``optuna-gamma tune`` flag of setting ``name`` (``trials_per_epoch`` ->
    ``--trials-per-epoch``, ``num_threads`` -> ``--threads``)."""
    return _CLI_FLAGS.get(name, "--" + name.replace("_", "-"))


@contextlib.contextmanager
def cli_frontend() -> Iterator[None]:
    """Mark what runs inside as called from the ``optuna-gamma`` command."""
    token = _FROM_CLI.set(True)
    try:
        yield
    finally:
        _FROM_CLI.reset(token)


def from_cli() -> bool:
    """Whether the current call came from the CLI."""
    return _FROM_CLI.get()


def repeat_word() -> str:
    """How the user repeats what they ran: ``"command"`` (CLI) or ``"call"`` (Python)."""
    return "command" if from_cli() else "call"


def option(name: str, value: str) -> str:
    """A setting as the user writes it: ``--objective loss`` or ``objective='loss'``."""
    if from_cli():
        return f"{cli_flag(name)} {value}"
    return f"{name}={value!r}"


def widen_hint(name: str, side: str) -> str:
    """How to widen the ``side`` (``"low"``/``"high"``) end of parameter ``name``'s range."""
    if from_cli() and name == "lr":
        return f"widen --lr-{side}"
    return f"widen the {side} end of {name!r} in the search space"
