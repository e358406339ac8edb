"""The live view of a run: a progress bar, the running epoch's trials, log lines that fit.

:class:`Progress` is how the drivers report a run's progress (and count a call's new trials);
:meth:`Progress.shown` opens a :class:`LiveView` around a run (:func:`live_progress`): every
time a driver (serial: after each trial; with workers: the coordinator, about once a second)
counts finished trials, the view reads the running epoch's study and reports each newly
finished trial once, as one row of a compact table (trial, parameters, objective, status):

- on a terminal, the rows are printed above a tqdm bar (``tqdm.write``), and the library's log
  lines go through tqdm too (:func:`tqdm.contrib.logging.logging_redirect_tqdm`), so nothing
  collides with the bar;
- off a terminal (no bar), each row is a DEBUG record of the ``optuna_gamma`` logger, next to
  the INFO line per adopted epoch (``optuna_gamma.tuner.set_verbosity(logging.DEBUG)`` shows
  them).

The view reads the storage, so it is right with workers too: it shows what the storage holds.
"""

from __future__ import annotations

from collections.abc import Callable
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


__all__ = ["LiveView", "Progress", "live_progress", "trial_row"]

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
    """The run's bar (``update``, ``set_description``): a tqdm bar or none, and the rows of
    the running epoch's finished trials.

    Args:
        load_study: Study ``epoch`` of the run (``KeyError`` or an Optuna error: not created).
        n_epochs: The run's number of studies.
        metric: The objective's metric name (the rows' value column).
        bar: The tqdm bar, or ``None``.
    """

    def __init__(
        self, load_study: Callable[[int], Any], n_epochs: int, metric: str, bar: Any
    ) -> None:
        self.load_study = load_study
        self.n_epochs = n_epochs
        self.metric = metric
        self.bar = bar
        self._shown: dict[int, set[int]] = {}
        self._epoch = self._first_open_epoch()

    def _n_epochs(self) -> int:
        return int(self.n_epochs)

    def _study(self, epoch: int) -> Any:
        try:
            return self.load_study(epoch)
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
        metric = self.metric
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

    # the bar interface
    def update(self, n: int = 1) -> None:
        """``n`` more trials finished: show them, advance the bar."""
        self.poll()
        if self.bar is not None:
            self.bar.update(n)

    def set_description(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_description(text)


@contextlib.contextmanager
def live_progress(
    load_study: Callable[[int], Any],
    n_epochs: int,
    metric: str,
    show: bool | None,
    total: int,
    done: int,
) -> Iterator[LiveView]:
    """A :class:`LiveView` for the duration (with a tqdm bar when ``show``, or, when ``show``
    is ``None``, on a terminal; none when nothing is left to train)."""
    show = show if show is not None else sys.stderr.isatty()
    bar = None
    if show and done < total:
        bar = tqdm(total=total, initial=done, unit="trial", dynamic_ncols=True)
    view = LiveView(load_study, n_epochs, metric, bar)
    try:
        if bar is None:
            yield view
        else:
            with logging_redirect_tqdm(loggers=[logging.getLogger("optuna_gamma")]):
                yield view
    finally:
        if bar is not None:
            bar.close()


class Progress:
    """A run's progress as its drivers report it: the live view while :meth:`shown`, and the
    count of the trials this call completed (:attr:`new_trials`).

    Args:
        studies: The run's studies (``load``, ``count_complete``).
        n_epochs: The run's number of studies.
        metric: The objective's metric name.
        show: ``config.progress`` (``None``: a bar on a terminal).
    """

    def __init__(self, studies: Any, n_epochs: int, metric: str, show: bool | None) -> None:
        self.studies = studies
        self.n_epochs = n_epochs
        self.metric = metric
        self.show = show
        self.view: LiveView | None = None
        #: Trials completed by this call (set by :meth:`count_new_trials`).
        self.new_trials = 0

    @contextlib.contextmanager
    def shown(self, total: int, done: int) -> Iterator[None]:
        """A tqdm bar over the run's trials (total and start count right on resume) and the
        running epoch's trials, for the duration."""
        with live_progress(
            self.studies.load, self.n_epochs, self.metric, self.show, total, done
        ) as view:
            self.view = view
            try:
                yield
            finally:
                self.view = None

    def describe(self, text: str) -> None:
        """Set the bar's description (if a view is open)."""
        if self.view is not None:
            self.view.set_description(text)

    def advance(self, n: int) -> None:
        """Count ``n`` more complete trials on the bar (if a view is open)."""
        if self.view is not None and n > 0:
            self.view.update(n)

    def trial_finished(self) -> None:
        """One trial of this process finished (the serial driver's callback)."""
        self.new_trials += 1
        if self.view is not None:
            self.view.update(1)

    def count_new_trials(self, before: int) -> int:
        """Set and return :attr:`new_trials`: the run's complete trials now less ``before``
        (those of earlier calls), including trials completed by workers."""
        self.new_trials = self.studies.count_complete() - before
        return self.new_trials
