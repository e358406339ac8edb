"""A run's identity: what determines its result, checked before a run is resumed.

A run is resumed by calling the tuner again with the same run name. That is only right when
the call would compute the same run; otherwise the stored studies belong to another experiment
and resuming them returns a stale result (or fails deep in ``load_state_dict``). The identity
of a run is what determines its result (:data:`IDENTITY_KEYS`): the trainer (its
``describe()``, else its class and a hash of the class's source code), the model and optimizer
it builds (names, shapes and dtypes of the tensors; the optimizer's settings), the search
space, the objective and the sampler (a callable one also by its code,
:func:`callable_code`), the sampler's start-up trials, the seed, the number of trials, the mode
and, once the engine has one, the policy; the policy's plan for the epochs a run has trained
(:func:`check_same_plan`). :func:`check_same_run` compares the identity stored with a run's
studies with the current call's and refuses a difference in one line that names the
differing keys and the ways out: another run name, or ``overwrite=True`` (``--overwrite``),
which deletes the run's studies and states (:func:`delete_run`) before anything else.

The default run name (:func:`default_run_name`) is derived from the identity, so two unrelated
scripts that do not name their runs never share one.

A trainer controls its identity with a ``describe()`` method returning a JSON-able dict of
what determines its results (the built-in trainer does); then its source code is not hashed
and editing, e.g., a log message does not refuse the resume.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
import functools
import hashlib
import inspect
import json
from pathlib import Path
import re
from typing import Any
from typing import TYPE_CHECKING

import optuna
from optuna.artifacts import get_all_artifact_meta

from optuna_gamma.tuner._logging import get_logger
from optuna_gamma.tuner.persistence.states import check_artifact_id
from optuna_gamma.tuner.persistence.states import STORE_MARKER


if TYPE_CHECKING:
    from optuna_gamma.tuner.config import TunerConfig
    from optuna_gamma.tuner.persistence.states import StateStore


__all__ = [
    "IDENTITY_KEYS",
    "RunMismatchError",
    "check_same_plan",
    "check_same_run",
    "default_run_name",
    "delete_run",
    "identity_fields",
]

_logger = get_logger(__name__)

#: Keys of a run's recorded config that must match for a resume (the rest, e.g. the device
#: or the thread count, only warn). ``run_dir`` and ``artifacts`` are where the run lives.
IDENTITY_KEYS = (
    "mode",
    "trainer",
    "trainer_code",
    "model",
    "objective_code",
    "sampler_code",
    "space",
    "objective",
    "policy",
    "sampler",
    "n_startup_trials",
    "seed",
    "trials_per_epoch",
    "epochs_per_trial",
    "warm_start",
    "run_dir",
    "artifacts",
)

#: Keys that differ between the machines of one run (a worker's paths are its own).
_LOCAL_KEYS = ("run_dir", "artifacts")
# " at 0x7f3a..." in a default repr: a memory address, another one in every process
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


class RunMismatchError(ValueError):
    """The stored run was made by another experiment (see :func:`check_same_run`)."""


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def trainer_description(trainer: Any) -> Any:
    """``trainer.describe()`` if it has one, else its class's ``module.qualname``."""
    describe = getattr(trainer, "describe", None)
    if callable(describe):
        return dict(describe())
    cls = type(trainer)
    return f"{cls.__module__}.{cls.__qualname__}"


def trainer_code(trainer: Any) -> str | None:
    """A hash of the source of the trainer's class (and its bases from the same module).

    ``None`` for a trainer with ``describe()`` (it states its identity) or whose source is not
    available (defined interactively).
    """
    if callable(getattr(trainer, "describe", None)):
        return None
    cls = type(trainer)
    parts = []
    for klass in cls.__mro__:
        if klass.__module__ in ("builtins", "typing") or klass.__module__ != cls.__module__:
            continue
        try:
            parts.append(inspect.getsource(klass))
        except (OSError, TypeError):
            return None
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def objective_code(objective: Any) -> str | None:
    """:func:`callable_code` of an objective the user wrote (a callable ``metrics -> float``, or
    the ``fn`` of an :class:`~optuna_gamma.tuner.search.objectives.Objective`). Its name alone
    identified it: two different lambdas (``<lambda>``) shared a run, and the second call
    returned the first one's result. ``None`` for the library's own objectives (``kappa1``,
    ``accuracy``, ``min:NAME``, ...: the name says it all)."""
    return callable_code(getattr(objective, "fn", objective))


def sampler_code(plan: Any) -> str | None:
    """:func:`callable_code` of a sampler factory the user passed (``sampler=make_sampler``;
    a :class:`~optuna_gamma.tuner.search.samplers.SamplerPlan`'s ``factory``), which its name
    alone identified as an objective was (two ``lambda seed: ...`` factories shared a run);
    ``None`` for a sampler given by name."""
    return callable_code(getattr(plan, "factory", None))


def callable_code(fn: Any) -> str | None:
    """A hash of a user callable's code: its source where :mod:`inspect` finds it, with the
    names and constants its code uses (two lambdas on one line differ there; a function defined
    interactively has only these). A callable object counts by its class's ``__call__``; a
    ``functools.partial`` by its function and the arguments it binds (their ``repr``, without
    memory addresses), so ``partial(score, weight=0.3)`` and ``partial(score, weight=0.5)``
    differ.

    ``None`` for the library's own functions (their names identify them), for ``None``, and for
    a callable with no code to read.
    """
    if isinstance(fn, functools.partial):
        inner = fn.func
        name = f"{getattr(inner, '__module__', '')}.{getattr(inner, '__qualname__', '')}"
        bound = [_stable_repr(a) for a in fn.args]
        bound += [f"{k}={_stable_repr(v)}" for k, v in sorted(fn.keywords.items())]
        parts = ["partial", name, callable_code(inner) or "", *bound]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    if fn is None or str(getattr(fn, "__module__", "")).startswith("optuna_gamma."):
        return None
    function = getattr(fn, "__func__", fn)  # a bound method: its function
    code = getattr(function, "__code__", None)
    if code is None:  # a callable object: its class's __call__
        function = getattr(type(fn), "__call__", None)
        code = getattr(function, "__code__", None)
    if code is None:
        return None
    parts = [_code_parts(code)]
    try:
        parts.append(inspect.getsource(function))
    except (OSError, TypeError):  # defined interactively: the code's names and constants
        pass
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _stable_repr(value: Any) -> str:
    """``repr(value)`` without the memory addresses of default reprs (``<... at 0x7f...>``),
    which differ from process to process."""
    return _ADDRESS.sub("", repr(value))


def _code_parts(code: Any) -> str:
    """The names and constants of a code object and of the code objects nested in it (as
    text that does not depend on where they are in memory)."""
    consts = [_code_parts(c) if hasattr(c, "co_consts") else repr(c) for c in code.co_consts]
    return repr((code.co_names, consts))


def model_fingerprint(snapshot: Mapping[str, Any] | None) -> str | None:
    """A hash of the initial state's structure: every tensor's name, shape and dtype, and every
    non-tensor setting (optimizer hyperparameters), not the tensors' values."""
    if snapshot is None:
        return None

    def shape(value: Any) -> Any:
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            return [list(value.shape), str(value.dtype)]
        if isinstance(value, Mapping):
            return {str(k): shape(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [shape(v) for v in value]
        return value

    return _digest(shape(snapshot))


def identity_fields(trainer: Any, initial: Mapping[str, Any] | None, config: TunerConfig) -> dict:
    """The identity keys that :meth:`Engine.manifest` does not record itself (it records
    the policy, as :meth:`~optuna_gamma.tuner.policies.Policy.describe` gives it)."""
    return {
        "trainer_code": trainer_code(trainer),
        "model": model_fingerprint(initial),
    }


def default_run_name(
    trainer: Any,
    space: Mapping[str, Any],
    objective: str,
    sampler: str,
    seed: int,
    mode: str,
    policy: Any = None,
    objective_hash: str | None = None,
    sampler_hash: str | None = None,
) -> str:
    """``run-<8 hex>``: a hash of what identifies the run, so unrelated scripts never share
    (``objective_hash``, ``sampler_hash``: :func:`objective_code`, :func:`sampler_code`, left
    out where ``None`` so that the names of runs with the library's objectives and named
    samplers are as before they existed)."""
    ident = {
        "trainer": trainer_description(trainer),
        "trainer_code": trainer_code(trainer),
        "space": space,
        "objective": objective,
        "sampler": sampler,
        "seed": seed,
        "mode": mode,
    }
    if policy is not None:
        ident["policy"] = policy
    if objective_hash is not None:
        ident["objective_code"] = objective_hash
    if sampler_hash is not None:
        ident["sampler_code"] = sampler_hash
    return f"run-{_digest(ident)[:8]}"


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=repr)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _difference(key: str, old: Any, new: Any) -> str:
    """``key: old -> new``; for two mappings (the policy's settings, the space) the entries
    that differ, down to the innermost ones, ``key.entry.inner: old -> new`` (an entry one
    side lacks shows as ``(absent)``)."""
    if not (isinstance(old, Mapping) and isinstance(new, Mapping)):
        return f"{key}: {_short(old)} -> {_short(new)}"
    missing = object()
    parts = []
    for k in sorted(set(old) | set(new), key=str):
        a, b = old.get(k, missing), new.get(k, missing)
        if a == b:
            continue
        if a is missing or b is missing:
            shown = (
                "(absent)" if a is missing else _short(a),
                "(absent)" if b is missing else _short(b),
            )
            parts.append(f"{key}.{k}: {shown[0]} -> {shown[1]}")
        else:
            parts.append(_difference(f"{key}.{k}", a, b))
    return "; ".join(parts) or f"{key}: {_short(old)} -> {_short(new)}"


def _as_stored(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` as a study's user attribute holds it: through JSON (tuples become lists);
    a value JSON cannot hold is kept as it is."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        try:
            out[key] = json.loads(json.dumps(value))
        except (TypeError, ValueError):
            out[key] = value
    return out


def check_same_run(
    study_name: str,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    own_paths: bool = False,
    store_reached: bool = False,
) -> None:
    """Refuse a call whose identity differs from the stored run's.

    Only keys recorded on both sides are compared (runs recorded before a key existed
    resume). ``own_paths``: the caller reaches the run by paths of its own (a worker on another
    machine, a run directory moved with its storage), so ``run_dir`` and ``artifacts`` are not
    compared. ``store_reached``: the caller's artifact store holds the run's marker (the run's
    store, reached by another path), so ``artifacts`` is not compared.

    Raises:
        RunMismatchError: One line naming the differing keys and the ways out.
    """
    # as stored: the record went through JSON, where a tuple (a fixed ``betas=(0.9, 0.99)``) is a
    # list; compared as it is, the same call's tuple differed from its own stored list
    old, new = _as_stored(old), _as_stored(new)
    diffs = [
        key
        for key in IDENTITY_KEYS
        if not (own_paths and key in _LOCAL_KEYS)
        and not (store_reached and key == "artifacts")
        and key in old
        and key in new
        and old[key] != new[key]
    ]
    if not diffs:
        return
    shown = "; ".join(_difference(k, old[k], new[k]) for k in diffs)
    run = old.get("run", study_name.split("/")[0])
    if set(diffs) <= set(_LOCAL_KEYS) and "run_dir" in diffs:
        raise RunMismatchError(
            f"run {run!r} (study {study_name!r}) is driven from another run directory "
            f"({shown}), which holds its lock, and its storage is not inside it: pass "
            f"run_dir={old['run_dir']!r} (--run-dir), or use another run name"
        )
    if diffs == ["artifacts"]:
        raise RunMismatchError(
            f"run {run!r} (study {study_name!r}) keeps its training states in another artifact "
            f"store ({shown}; the run's marker is not in this one): pass the run's store, at "
            f"whatever path it is reached (artifacts=, --artifacts), or use another run name, "
            "or overwrite=True (--overwrite) to delete it and start again"
        )
    width = old.get("trials_per_epoch")
    keep = (
        f"trials_per_epoch={width} (--trials-per-epoch {width}), the run's, with any number "
        "of workers, or "
        if "trials_per_epoch" in diffs and isinstance(width, int) and not isinstance(width, bool)
        else ""
    )
    length = ""
    before, after = old.get("epochs_total"), new.get("epochs_total")
    if "model" in diffs and before is not None and after is not None and before != after:
        # a trainer whose build takes the run's epochs made its state (a schedule) for them
        length = (
            f", and the run's length changed from {before} to {after} epochs (where a "
            "build(seed, device, epochs) makes its state, a schedule, for the run's epochs, a "
            "budget of another length is another run)"
        )
    raise RunMismatchError(
        f"run {run!r} (study {study_name!r}) was made with other settings ({shown}){length}; "
        f"use {keep}another run name, or overwrite=True (--overwrite) to delete it and start "
        "again"
    )


def check_same_plan(study_name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """Refuse a call that plans the epochs up to the study's own differently from the run.

    The policy's settings are part of the identity (:func:`check_same_run`); the length of its
    plan is not, so that a larger budget or more epochs extend a run. But the population
    policy plans every epoch from its budget (the first race's size, the explorers while a
    share of the budget is spent, the late races), so another budget can also change the
    trials of epochs the run has already trained: a budget of 20 after 24 plans epoch 14 with 2
    trials where the run trained 1. Resuming would give a run that is neither the stored one
    nor the new budget's (nor spends that budget), so the trials per epoch of epochs
    ``1..e`` (``e`` the study's epoch) must be the same in both plans. Records without a plan
    or an epoch (older runs, whole mode) are not compared.

    Raises:
        RunMismatchError: One line naming the first epoch planned differently, both budgets
            (or numbers of epochs) and the ways out.
    """
    epoch, old_plan, new_plan = new.get("epoch"), old.get("plan"), new.get("plan")
    if not (
        isinstance(epoch, int)
        and isinstance(old_plan, (list, tuple))
        and isinstance(new_plan, (list, tuple))
    ):
        return
    differs = next(
        (e for e in range(1, epoch + 1) if _trials_at(old_plan, e) != _trials_at(new_plan, e)),
        None,
    )
    if differs is None:
        return
    run = old.get("run", study_name.split("/")[0])
    had, has = (_trials_at(plan, differs) or "no" for plan in (old_plan, new_plan))
    raise RunMismatchError(
        f"run {run!r} was planned with {_plan_size(old, old_plan)}, this call with "
        f"{_plan_size(new, new_plan)}, which plans epoch {differs} with {has} trials where the "
        f"run has {had}: a run's trained epochs cannot be planned again; resume it with "
        f"{_plan_size(old, old_plan, flag=True)}, or use another run name, or overwrite=True "
        "(--overwrite) to delete it and start again"
    )


def _trials_at(plan: Any, epoch: int) -> Any:
    """The planned trials of ``epoch`` (1-based); ``None`` beyond the plan."""
    return plan[epoch - 1] if epoch <= len(plan) else None


def _plan_size(record: Mapping[str, Any], plan: Any, flag: bool = False) -> str:
    """``budget=B`` of a recorded run, or ``epochs=E`` without one (``flag``: with the flag)."""
    budget = record.get("budget")
    key, value = ("budget", budget) if budget is not None else ("epochs", len(plan))
    return f"{key}={value}" + (f" (--{key} {value})" if flag else "")


def delete_run(storage: Any, store: StateStore, run: str, result_path: Any = None) -> int:
    """Delete every study of ``run`` (``run/...``) with its training states, and its
    ``result.json``; return the number of studies deleted."""
    names = [
        s.study_name
        for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
        if s.study_name.startswith(f"{run}/")
    ]
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        ids = {m.artifact_id for m in get_all_artifact_meta(study)}
        for rec, key in (("start", "state"), ("adopted", "state"), (STORE_MARKER, "id")):
            if isinstance(study.user_attrs.get(rec), Mapping) and key in study.user_attrs[rec]:
                ids.add(study.user_attrs[rec][key])
        for t in study.get_trials(deepcopy=False):
            ids |= {m.artifact_id for m in get_all_artifact_meta(t, storage=storage)}
            if "state" in t.user_attrs:
                ids.add(t.user_attrs["state"])
        for artifact_id in sorted(ids):
            store.remove(check_artifact_id(artifact_id, where=f"study {name!r}"))
        optuna.delete_study(study_name=name, storage=storage)
    if result_path is not None:
        Path(result_path).unlink(missing_ok=True)
    if names:
        _logger.warning(f"overwrite: deleted run {run!r} ({len(names)} studies and their states)")
    return len(names)


def prepare_run(engine: Any) -> None:
    """Before any study is opened: with ``overwrite=True`` (not on a worker) delete the run;
    for a new run, check the objective on the initial state's validation metrics, so a wrong
    objective is a clear error that leaves nothing behind (no study that records it)."""
    if engine.config.overwrite and engine.role != "worker":
        delete_run(engine.storage, engine.store, engine.config.run, engine.paths.result)
    names = {
        s.study_name
        for s in optuna.get_all_study_summaries(engine.storage, include_best_trial=False)
    }
    if engine.role != "worker" and engine.studies.name(1) not in names:
        training = engine.training
        engine.objective(training.evaluate(training.initial, "valid"))  # ValueError: the fix


def resolve_run_name(config: TunerConfig, engine: Any) -> TunerConfig:
    """``config`` with its run name: the given one, else :func:`default_run_name`."""
    if config.run is not None:
        return config
    name = default_run_name(
        engine.trainer,
        engine.space.to_dict(),
        engine.objective.name,
        engine.plan.name,
        config.seed,
        engine.mode,
        engine.policy.describe(),
        objective_code(engine.objective),
        sampler_code(engine.plan),
    )
    return dataclasses.replace(config, run=name)
