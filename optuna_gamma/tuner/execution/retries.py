"""Trials of dead processes: failed, and retried once with the same parameters.

A RUNNING trial whose process is gone (the serial driver and the coordinator hold the run lock,
so every RUNNING trial they find at the start of a study is such a trial; a local worker that
stopped; a worker whose heartbeat went stale) is told FAIL and enqueued once more in its slot
(:func:`fail_and_retry`). On an RDB storage in worker role, Optuna's heartbeat does this
(:func:`storage_has_heartbeat`).
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from optuna_gamma.tuner.search.space import ParamSpace


__all__ = ["fail_and_retry", "fail_stale", "storage_has_heartbeat"]


def fail_stale(study: optuna.Study, space: ParamSpace) -> None:
    """Fail every RUNNING trial (its process is dead: this process holds the run lock) and
    retry each once with the same parameters (:func:`fail_and_retry`)."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        fail_and_retry(study, t, space)


def fail_and_retry(
    study: optuna.Study, trial: optuna.trial.FrozenTrial, space: ParamSpace
) -> None:
    """Tell a dead process's RUNNING ``trial`` FAIL and enqueue a retry with its parameters,
    once: the retry carries ``user_attrs["retry_of"]``, so a second crash between the
    enqueue and the fail does not enqueue it twice. A trial that died before all its
    parameters were suggested is retried with whatever was fixed for it (an enqueued point),
    else the sampler proposes again."""
    retried = {t.user_attrs.get("retry_of") for t in study.get_trials(deepcopy=False)}
    fixed = dict(trial.system_attrs.get("fixed_params") or {})
    params = {**fixed, **trial.params}
    # the retry keeps the policy's slot (its start state and kind)
    attrs: dict[str, Any] = {
        k: trial.user_attrs[k] for k in ("slot", "parent", "kind") if k in trial.user_attrs
    }
    attrs["retry_of"] = trial.number
    if trial.number not in retried:
        if set(space.tuned()) <= set(params):
            study.enqueue_trial({k: params[k] for k in space.tuned()}, user_attrs=attrs)
        elif fixed or len(attrs) > 1:
            study.enqueue_trial(fixed, user_attrs=attrs)
    study.tell(trial.number, state=TrialState.FAIL)


def storage_has_heartbeat(storage: Any) -> bool:
    """Whether the storage fails trials whose worker stopped beating (RDB in worker role)."""
    get = getattr(storage, "get_heartbeat_interval", None)
    return callable(get) and get() is not None
