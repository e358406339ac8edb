"""Trainer references: which user code a process imports to build its trainer.

A :class:`TrainerRef` names a trainer by ``module:factory`` or ``path/to/file.py:factory`` plus
the keyword arguments of the factory. The command line builds one from ``--trainer`` and
``--trainer-arg``; a run's workers receive it on their own command line (``optuna-gamma worker
--trainer ...``) or in their :class:`~optuna_gamma.tuner.TunerConfig` (local workers), never
from the run's storage: a storage only records the reference so that a worker can *compare* it
with its own (docs/cluster.md, "Trust model"). :func:`load_trainer` is the one place that
imports such code.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
import contextlib
from dataclasses import dataclass
from dataclasses import field
import importlib
import importlib.util
import json
import os
from pathlib import Path
import re
import sys
from typing import Any

from optuna_gamma.tuner.trainer import check_trainer


__all__ = ["TrainerRef", "load_trainer"]


def _is_path(target: str) -> bool:
    return target.endswith(".py") or os.sep in target or "/" in target


@dataclass(frozen=True)
class TrainerRef:
    """A frozen reference to user trainer code.

    Attributes:
        target: ``"module:attr"`` or ``"path/to/file.py:attr"``; ``attr`` is a trainer, or a
            class or factory returning one when called with ``args``.
        args: Keyword arguments of the factory (JSON values).

    Raises:
        ValueError: A malformed ``target`` or arguments that are not JSON values.
    """

    target: str
    args: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.target, str):
            raise ValueError(f"trainer reference must be a string, got {self.target!r}")
        module, sep, attr = self.target.rpartition(":")
        if not sep or not module or not attr or not attr.isidentifier():
            raise ValueError(
                f"--trainer {self.target!r}: expected MODULE:FACTORY or path/to/file.py:FACTORY"
            )
        if not isinstance(self.args, Mapping) or not all(isinstance(k, str) for k in self.args):
            raise ValueError(f"trainer arguments must be a mapping by name, got {self.args!r}")
        try:
            frozen = json.loads(json.dumps(dict(self.args), allow_nan=False))
        except (TypeError, ValueError) as err:
            raise ValueError(f"trainer arguments must be JSON values: {err}") from None
        object.__setattr__(self, "args", frozen)  # a private copy: later changes do not leak

    @property
    def module(self) -> str:
        """The module name or file path part of :attr:`target`."""
        return self.target.rpartition(":")[0]

    @property
    def attr(self) -> str:
        """The attribute part of :attr:`target`."""
        return self.target.rpartition(":")[2]

    def resolved(self) -> TrainerRef:
        """This reference with a file path made absolute (local workers in another folder)."""
        if not _is_path(self.module):
            return self
        return TrainerRef(f"{Path(self.module).expanduser().resolve()}:{self.attr}", self.args)

    def to_record(self) -> dict[str, Any]:
        """What a run's studies record (``{"import": target, "args": {...}}``)."""
        return {"import": self.target, "args": dict(self.args)}

    def mismatch(self, record: Any) -> str | None:
        """Why ``record`` (read from a storage, untrusted) names other code than this reference,
        or ``None`` when it names the same. A file is compared by its name (machines may hold it
        in different folders), a module by its full name; the arguments must be equal."""
        if not isinstance(record, Mapping) or not isinstance(record.get("import"), str):
            return f"the run was started with the trainer {_short(record)}, not {self.target!r}"
        other, _, other_attr = record["import"].rpartition(":")
        if _is_path(self.module) != _is_path(other):
            same = False
        elif _is_path(other):
            same = Path(other).name == Path(self.module).name and other_attr == self.attr
        else:
            same = record["import"] == self.target
        if not same:
            return f"the run was started with --trainer {_short(record['import'])}"
        if dict(record.get("args") or {}) != dict(self.args):
            return f"the run was started with the trainer arguments {_short(record.get('args'))}"
        return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def load_trainer(ref: TrainerRef) -> Any:
    """Import the code ``ref`` names and return the trainer (called with ``ref.args`` when it
    is a class or factory).

    A file is imported as ``python FILE`` would run it: its folder first on ``sys.path`` (so
    that it imports the modules beside it) and ``sys.argv`` holding only its path while its
    top level runs (a script that parses its own command line there, ``parser.parse_args()``,
    gets its defaults rather than the tuner's arguments); a module's top level also sees an
    empty command line.

    Raises:
        ValueError: A module or file that cannot be imported, whose top level raises or exits
            (naming the error and where in the user's code it was raised), a missing attribute,
            a factory that refuses the arguments or raises, or something that is not a trainer.
    """
    spec, target, attr = ref.target, ref.module, ref.attr
    try:
        if _is_path(target):
            path = Path(target).expanduser()
            if not path.is_file():
                raise ValueError(f"--trainer {spec!r}: no file {target!r}")
            # The file's own folder first on the path, as `python FILE` puts it: a trainer
            # file that imports a module beside it (`from models import Net`) loads as it runs.
            folder = str(path.resolve().parent)
            if folder not in sys.path:
                sys.path.insert(0, folder)
            name = re.sub(r"\W", "_", path.stem)
            module_spec = importlib.util.spec_from_file_location(name, path)
            if module_spec is None or module_spec.loader is None:
                raise ValueError(f"--trainer {spec!r}: {target!r} is not a Python file")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            try:
                with _own_command_line(str(path)):
                    module_spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(name, None)  # as a failed import leaves no module behind
                raise
        else:
            if "" not in sys.path and os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            with _own_command_line(target):
                module = importlib.import_module(target)
    except ValueError as err:
        if str(err).startswith(f"--trainer {spec!r}: "):
            raise
        raise _raised(spec, f"importing {target!r}", err) from err
    except ImportError as err:
        raise ValueError(f"--trainer {spec!r}: cannot import {target!r} ({err})") from err
    except SystemExit as err:
        raise ValueError(
            f"--trainer {spec!r}: importing {target!r} exited (SystemExit({err.code!r}) at "
            f"{_where(err)}): code that parses a command line or exits belongs under "
            '`if __name__ == "__main__":`, which an import does not run'
        ) from None
    except Exception as err:
        raise _raised(spec, f"importing {target!r}", err) from err
    obj = getattr(module, attr, None)
    if obj is None:
        raise ValueError(f"--trainer {spec!r}: {target!r} has no attribute {attr!r}")
    kwargs = dict(ref.args)
    has_protocol = all(
        callable(getattr(obj, m, None)) for m in ("build", "train_epoch", "evaluate")
    )
    if has_protocol and not isinstance(obj, type):
        trainer = obj
    elif callable(obj):
        try:
            trainer = obj(**kwargs)
        except TypeError as err:  # wrong --trainer-arg names or a factory needing arguments
            raise ValueError(
                f"--trainer {spec!r}: calling {attr}({', '.join(kwargs)}) failed: {err}"
            ) from err
        except Exception as err:  # the factory's own failure (missing data, a bad value)
            raise _raised(spec, f"calling {attr}({', '.join(kwargs)})", err) from err
    else:
        trainer = obj
    try:
        check_trainer(trainer)
    except ValueError as err:
        raise ValueError(f"--trainer {spec!r}: {err}") from None
    return trainer


@contextlib.contextmanager
def _own_command_line(name: str) -> Iterator[None]:
    """``sys.argv`` as ``python FILE`` (or ``python -m MODULE``) with no arguments would have it
    while the user's top level runs, then the caller's again."""
    argv = sys.argv
    sys.argv = [name]
    try:
        yield
    finally:
        sys.argv = argv


def _raised(spec: str, what: str, err: BaseException) -> ValueError:
    """One line for an error raised by the user's code: what raised it, where, and why."""
    return ValueError(
        f"--trainer {spec!r}: {what} raised {type(err).__name__} at {_where(err)}: {err}"
    )


def _where(err: BaseException) -> str:
    """``file:line`` of the innermost frame of ``err``'s traceback in the user's code (not in
    the standard library or an installed package: the ``int()`` of ``int(sys.argv[2])``, the
    ``parse_args()`` that exits), or of the innermost frame; a syntax error's own place."""
    import sysconfig
    import traceback

    if isinstance(err, SyntaxError) and err.filename:
        return f"{err.filename}:{err.lineno}"
    frames = traceback.extract_tb(err.__traceback__)
    libraries = tuple(
        {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    )
    here = str(Path(__file__).resolve().parent.parent)
    for frame in reversed(frames):
        name = frame.filename
        if not name.startswith(("<", *libraries, here)):
            return f"{name}:{frame.lineno}"
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
