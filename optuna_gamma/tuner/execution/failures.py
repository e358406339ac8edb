"""One error path: a failed trial's traceback once, one line after it; Ctrl-C in one line.

Optuna logs a failed trial ("Trial 3 failed with parameters ... because of the following
error", with the traceback) and then re-raises the error, whose traceback Python prints again
when it ends the program: the same ~50 lines twice, for a Ctrl-C too.
:func:`reported_failures` (around a tuner call) drops Optuna's copy of that record (a trial
that only returned a bad value is still logged), remembers the trial and its parameters, and
lets the error go on with one line attached that says which trial failed with which
parameters and that calling again resumes the run. The trial is told by the tuner's own
objective (:func:`note_failed_trial`), so the line is there whatever Optuna's verbosity (a
script that silenced Optuna with ``optuna.logging.set_verbosity(optuna.logging.ERROR)`` gets
no "Trial N failed" record to read it from). The line is a note on the exception
(Python 3.11+, printed under the traceback) or, on older Pythons, a log record.

:func:`cli_exit_status` runs a CLI command: a trainer's error prints its traceback and that
line once and exits 1; Ctrl-C prints ``interrupted; re-run the same command to resume`` and
exits 130, as shells expect from SIGINT. Nothing is half-written either way: the interrupted
trial is failed by Optuna and retried by the next call, the result file is written atomically.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import contextlib
import logging
import re
import sys
import traceback

from optuna_gamma.tuner._logging import get_logger
from optuna_gamma.tuner._logging import reported_by_the_command_line
from optuna_gamma.tuner.frontend import cli_frontend
from optuna_gamma.tuner.frontend import from_cli
from optuna_gamma.tuner.frontend import repeat_word


__all__ = [
    "INTERRUPTED",
    "OUT_OF_MEMORY",
    "cli_exit_status",
    "is_reported_failure",
    "note_failed_trial",
    "reported_failures",
]

_logger = get_logger(__name__)

#: What a Ctrl-C prints (the CLI) or adds to the ``KeyboardInterrupt`` (the Python API).
INTERRUPTED = "interrupted; re-run the same command to resume"

_OPTUNA_TRIAL_LOGGER = "optuna.study._optimize"  # where Optuna logs "Trial N failed ..."
_FAILED = re.compile(r"^Trial (\d+) failed with parameters: (.*) because of the following error")
_MARK = "_optuna_gamma_failure_reported"
_TRIAL = "_optuna_gamma_failed_trial"


def note_failed_trial(err: BaseException, number: int, params: object) -> None:
    """Remember on ``err`` the trial whose objective raised it (the innermost, if nested)."""
    if getattr(err, _TRIAL, None) is None:
        with contextlib.suppress(AttributeError, TypeError):  # an error that takes no attribute
            setattr(err, _TRIAL, (str(number), str(params)))


class _DropOptunasCopy(logging.Filter):
    """Drops Optuna's record of a trial that raised (its traceback is the one re-raised)."""

    def __init__(self) -> None:
        super().__init__()
        self.trial: tuple[str, str] | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.trial is not None and message == f"Trial {self.trial[0]} failed with value None.":
            return False  # Optuna's second line about the same raised error
        if not record.exc_info:
            return True  # "failed with value nan": no exception follows, keep it
        match = _FAILED.match(message)
        if match is None:
            return True
        self.trial = (match.group(1), match.group(2))
        return False


#: What the failure line adds for an out-of-memory error: re-running retries the same setting.
OUT_OF_MEMORY = (
    "a setting that does not fit in memory (a large batch size) can fail its trial instead of "
    "the run: catch the error in train_epoch, free the cache (torch.cuda.empty_cache()) and "
    "return {'diverged': True} (docs/tuning.md), or narrow the search space"
)


def _out_of_memory(err: BaseException) -> bool:
    """torch's ``OutOfMemoryError`` (told by its name: no torch import) or
    Python's ``MemoryError``."""
    return isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError"


def attach_line(err: BaseException, line: str) -> None:
    """Attach ``line`` to ``err`` (a note) and mark it reported, so that the error goes on with
    its traceback once and the line after it (the CLI: exit status 1), as a failed trial's."""
    add_note = getattr(err, "add_note", None)
    if callable(add_note):
        add_note(line)
    else:  # Python < 3.11: no notes, log the line
        _logger.error(line)
    setattr(err, _MARK, True)


@contextlib.contextmanager
def reported_failures() -> Iterator[None]:
    """Around a tuner call: one traceback and one line for a failed trial or a Ctrl-C."""
    call = repeat_word()
    dropper = _DropOptunasCopy()
    optuna_logger = logging.getLogger(_OPTUNA_TRIAL_LOGGER)
    optuna_logger.addFilter(dropper)
    try:
        yield
    except KeyboardInterrupt as err:
        attach_line(err, f"interrupted; re-run the same {call} to resume")
        raise
    except Exception as err:
        trial = getattr(err, _TRIAL, None) or dropper.trial
        if from_cli() and reported_by_the_command_line(err):
            trial = None  # the command line says it in one line (exit status 2)
        if trial is not None and not getattr(err, _MARK, False):
            number, params = trial
            line = (
                f"trial {number} failed with parameters {params} ({type(err).__name__}); "
                f"fix the cause and re-run the same {call}: the run resumes from there"
            )
            if _out_of_memory(err):
                line += f"; {OUT_OF_MEMORY}"
            attach_line(err, line)
        raise
    finally:
        optuna_logger.removeFilter(dropper)


def is_reported_failure(err: BaseException) -> bool:
    """Whether ``err`` is a trial's failure that :func:`reported_failures` annotated."""
    return bool(getattr(err, _MARK, False)) and not isinstance(err, KeyboardInterrupt)


def cli_exit_status(command: Callable[[], int]) -> int:
    """Run a CLI command; a trial's failure: traceback and line once, 1; Ctrl-C: one line, 130."""
    try:
        with cli_frontend():
            return command()
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except Exception as err:
        if not is_reported_failure(err):
            raise
        traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
        return 1
