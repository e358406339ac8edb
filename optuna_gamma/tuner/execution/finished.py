"""A finished run called again: its recorded test metrics and ``result.json`` stand.

Re-running a finished command is a no-op that prints the result: the test metrics of the
final (adopted) state are evaluated once and recorded on its study with the state's id
(``test``, ``test_state``), so a later call reuses them instead of evaluating the test set
again, and ``result.json`` is rewritten only by a call that trained something, so it keeps
the wall time of the calls that did the work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optuna_gamma.tuner.results import PerEpochResult
from optuna_gamma.tuner.results import WholeResult


__all__ = ["save_result", "test_metrics"]


def test_metrics(engine: Any, study: Any, epoch: int) -> dict[str, Any]:
    """The test metrics of study ``epoch``'s adopted state: recorded ones if they belong to
    that state, else evaluated now and recorded."""
    state = study.user_attrs["adopted"]["state"]
    recorded = study.user_attrs.get("test")
    if recorded is not None and study.user_attrs.get("test_state") == state:
        return dict(recorded)
    test = engine.training.evaluate(engine.starts.adopted_snapshot(epoch), "test")
    study.set_user_attr("test", test)
    study.set_user_attr("test_state", state)
    return test


def save_result(result: PerEpochResult | WholeResult, path: Path) -> None:
    """Write ``result`` to ``path`` unless this call trained nothing and one is there."""
    if result.new_trials == 0 and Path(path).is_file():
        return
    result.save(path)
