"""The live view of a run: a progress bar, the running epoch's trials, log lines that fit.

:func:`live_progress` is what :meth:`Engine.progress <.Engine.progress>`
opens around a run. It gives the engine a :class:`LiveView` as its bar: every time the engine
(serial: after each trial; with workers: the coordinator, about once a second) counts finished
trials, the view reads the running epoch's study and reports each newly finished trial once,
as one row of a compact table (trial, parameters, objective, status):

- on a terminal, the rows are printed above a tqdm bar (``tqdm.write``), and the library's log
  lines go through tqdm too (:func:`tqdm.contrib.logging.logging_redirect_tqdm`), so nothing
  collides with the bar;
- off a terminal (no bar), each row is a DEBUG record of the ``optuna_gamma`` logger, next to
  the INFO line per adopted epoch (``optuna_gamma.tuner.set_verbosity(logging.DEBUG)`` shows
  them).

The view reads the storage, so it is right with workers too: it shows what the storage holds.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import logging
import math
import sys
from typing import Any

import optuna
from optuna.trial import TrialState
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from optuna_gamma.tuner._logging import get_logger


__all__ = ["LiveView", "live_progress", "trial_row"]

_logger = get_logger(__name__)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def trial_row(epoch: int, trial: Any, metric: str) -> str:
    """One row of the trials table: ``epoch 2  trial  3  lr=0.0123  kappa=0.456  COMPLETE``."""
    params = "  ".join(f"{k}={_fmt(v)}" for k, v in sorted(trial.params.items()))
    value = "-" if trial.value is None else _fmt(trial.value)
    ua = trial.user_attrs
    status = trial.state.name
    if "reused_from" in ua:
        status += f" (reused trial {ua['reused_from']})"
    elif ua.get("diverged"):
        status += " (diverged)"
    acc = f"  accuracy={_fmt(ua['accuracy'])}" if isinstance(ua.get("accuracy"), float) else ""
    return f"epoch {epoch:>3}  trial {trial.number:>3}  {params}  {metric}={value}{acc}  {status}"


class LiveView:
    """The engine's bar (``update``, ``set_description``): a tqdm bar or none, and the rows of
    the running epoch's finished trials."""

    def __init__(self, engine: Any, bar: Any) -> None:
        self.engine = engine
        self.bar = bar
        self._shown: dict[int, set[int]] = {}
        self._epoch = self._first_open_epoch()

    def _n_epochs(self) -> int:
        return int(self.engine.n_epochs)

    def _study(self, epoch: int) -> Any:
        try:
            return self.engine.load_study(epoch)
        except KeyError:  # not created yet
            return None
        except optuna.exceptions.OptunaError:
            return None

    def _first_open_epoch(self) -> int:
        """The first epoch not adopted before this call (earlier ones are not shown again)."""
        epoch = 1
        while epoch < self._n_epochs():
            study = self._study(epoch)
            if study is None or "adopted" not in study.user_attrs:
                break
            epoch += 1
        return epoch

    def poll(self) -> None:
        """Report the trials finished since the last poll, epoch by epoch."""
        metric = self.engine.objective.metric_name
        while True:
            study = self._study(self._epoch)
            if study is None:
                return
            shown = self._shown.setdefault(self._epoch, set())
            for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
                if t.state in (TrialState.RUNNING, TrialState.WAITING) or t.number in shown:
                    continue
                shown.add(t.number)
                self._emit(trial_row(self._epoch, t, metric))
            if "adopted" not in study.user_attrs or self._epoch >= self._n_epochs():
                return
            self._epoch += 1

    def _emit(self, row: str) -> None:
        if self.bar is not None:
            tqdm.write(row, file=sys.stderr)
        else:
            _logger.debug(row)

    # the engine's bar interface
    def update(self, n: int = 1) -> None:
        """``n`` more trials finished: show them, advance the bar."""
        self.poll()
        if self.bar is not None:
            self.bar.update(n)

    def set_description(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_description(text)


@contextlib.contextmanager
def live_progress(engine: Any, total: int, done: int) -> Iterator[LiveView]:
    """Set ``engine._bar`` to a :class:`LiveView` for the duration (a tqdm bar on a terminal,
    or when ``config.progress`` is true; none when nothing is left to train)."""
    show = engine.config.progress if engine.config.progress is not None else sys.stderr.isatty()
    bar = None
    if show and done < total:
        bar = tqdm(total=total, initial=done, unit="trial", dynamic_ncols=True)
    view = LiveView(engine, bar)
    engine._bar = view
    try:
        if bar is None:
            yield view
        else:
            with logging_redirect_tqdm(loggers=[logging.getLogger("optuna_gamma")]):
                yield view
    finally:
        engine._bar = None
        if bar is not None:
            bar.close()
