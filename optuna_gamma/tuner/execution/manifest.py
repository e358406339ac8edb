"""A run's manifest: the settings its studies record, and workers rebuild their config from.

The first process of a run writes a :class:`RunManifest` (:meth:`RunManifest.to_record`, a
JSON-safe dict) into the user attribute ``config`` of each of the run's studies. A resumed call
compares the identity keys with its own
(:func:`~optuna_gamma.tuner.persistence.identity.check_same_run`); a standalone worker
(``optuna-gamma worker``) reads it back (:meth:`RunManifest.from_record`) and rebuilds the run's
:class:`~optuna_gamma.tuner.config.TunerConfig` from it (:meth:`RunManifest.to_config`). A record
read from a storage is untrusted: every field is type-checked, and a malformed record is a
:class:`ValueError` naming the field.

Each setting has one name from flag to result: ``--trials-per-epoch`` is
``TunerConfig.trials_per_epoch``, ``RunManifest.trials_per_epoch``, the record's key
``trials_per_epoch`` and the result's ``trials_per_epoch``. Records written before this name
(key ``trials``) are read as the same setting (:func:`current_record`).
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
from dataclasses import dataclass
from typing import Any

from optuna_gamma.tuner.config import TunerConfig
from optuna_gamma.tuner.policies import policy_from_record


__all__ = ["RunManifest", "current_record", "trainer_spec"]

#: Keys of older records and their current names.
_RENAMED = {"trials": "trials_per_epoch"}

_MODES = ("per-epoch", "whole")

#: TunerConfig's own defaults: a record that lacks a setting (an older version's) gets them.
_CONFIG_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(TunerConfig)}


def current_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with the keys of older versions renamed to the current ones."""
    out = dict(record)
    for old, new in _RENAMED.items():
        if old in out and new not in out:
            out[new] = out.pop(old)
    return out


def trainer_spec(trainer: Any, ref: Any = None) -> dict[str, Any] | None:
    """What the run records about its trainer (workers only compare it with their own):
    ``{"import": "module:factory", "args": {...}}`` for a trainer reference (``--trainer``),
    ``{"builtin": {...}}`` for :class:`ThesisTrainer` (its data root is each machine's own),
    ``None`` for other objects (Python-only runs)."""
    if ref is not None:
        return dict(ref.to_record())
    rebuild = getattr(trainer, "spec", None)
    kwargs = rebuild() if callable(rebuild) else None
    return {"builtin": dict(kwargs)} if kwargs else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(key: str, value: Any, ok: bool, want: str) -> None:
    if not ok:
        raise ValueError(f"manifest field {key!r} must be {want}, got {value!r}")


@dataclass(frozen=True)
class RunManifest:
    """What a run records about itself (see the module docstring).

    Attributes:
        mode: ``"per-epoch"`` or ``"whole"``.
        run: The run name.
        run_dir: The head's run directory (a label for workers: they never write there).
        artifacts: Where the head keeps the training states (workers compare their own).
        sampler: The sampler's canonical registry name.
        policy: The policy's record (:meth:`~optuna_gamma.tuner.policies.Policy.describe`).
        seed: The run seed.
        trials_per_epoch: Trials per study (population policy: its width).
        plan: Trials of each epoch's study.
        budget: The compute budget in training epochs, if the run was given one.
        objective: The objective's name.
        space: The search space (``{"tuned": {name: distribution JSON}, "fixed": {...}}``).
        epochs_total: Studies of the run (1 in whole mode).
        epochs_per_trial: Whole mode: the epochs each trial trains (``None`` per epoch).
        trainer: The trainer's ``describe()`` or its class name.
        trainer_spec: How workers get the trainer (compared with theirs, never imported).
        trainer_code, model, objective_code, sampler_code: Identity hashes
            (:mod:`optuna_gamma.tuner.persistence.identity`).
        warm_start, n_startup_trials, keep_trial_states, heartbeat_interval, grace_period,
            num_threads: As in :class:`~optuna_gamma.tuner.config.TunerConfig`.
        device: The head's device (a worker uses its own).
        deterministic: Whether the head's samplers were told the training is deterministic
            (:attr:`TunerConfig.deterministic <optuna_gamma.tuner.config.TunerConfig>`, resolved;
            a worker resolves its own).
    """

    mode: str
    run: str
    sampler: str
    seed: int
    trials_per_epoch: int
    objective: str
    space: Mapping[str, Any]
    epochs_total: int
    epochs_per_trial: int | None = None
    run_dir: str | None = None
    artifacts: str | None = None
    policy: Mapping[str, Any] | None = None
    plan: tuple[int, ...] | None = None
    budget: int | None = None
    trainer: Any = None
    trainer_spec: Mapping[str, Any] | None = None
    trainer_code: str | None = None
    objective_code: str | None = None
    sampler_code: str | None = None
    model: str | None = None
    device: str | None = None
    deterministic: bool | None = None
    warm_start: bool = _CONFIG_DEFAULTS["warm_start"]
    n_startup_trials: int = _CONFIG_DEFAULTS["n_startup_trials"]
    keep_trial_states: bool = _CONFIG_DEFAULTS["keep_trial_states"]
    heartbeat_interval: int = _CONFIG_DEFAULTS["heartbeat_interval"]
    grace_period: int | None = _CONFIG_DEFAULTS["grace_period"]
    num_threads: int | None = _CONFIG_DEFAULTS["num_threads"]

    def __post_init__(self) -> None:
        _check("mode", self.mode, self.mode in _MODES, "'per-epoch' or 'whole'")
        for key in ("run", "sampler", "objective"):
            value = getattr(self, key)
            _check(key, value, isinstance(value, str) and bool(value), "a non-empty string")
        for key in (
            "run_dir",
            "artifacts",
            "trainer_code",
            "objective_code",
            "sampler_code",
            "model",
            "device",
        ):
            value = getattr(self, key)
            _check(key, value, value is None or isinstance(value, str), "a string or null")
        for key, low in (("seed", 0), ("trials_per_epoch", 1), ("epochs_total", 1)):
            value = getattr(self, key)
            _check(key, value, _is_int(value) and value >= low, f"an int >= {low}")
        for key, low in (
            ("epochs_per_trial", 1),
            ("budget", 1),
            ("grace_period", 1),
            ("num_threads", 1),
        ):
            value = getattr(self, key)
            _check(key, value, value is None or (_is_int(value) and value >= low), "null or int")
        for key, low in (("n_startup_trials", 0), ("heartbeat_interval", 1)):
            value = getattr(self, key)
            _check(key, value, _is_int(value) and value >= low, f"an int >= {low}")
        for key in ("warm_start", "keep_trial_states"):
            value = getattr(self, key)
            _check(key, value, isinstance(value, bool), "true or false")
        value = self.deterministic
        _check("deterministic", value, value is None or isinstance(value, bool), "null or a bool")
        for key in ("policy", "trainer_spec"):
            value = getattr(self, key)
            _check(key, value, value is None or isinstance(value, Mapping), "an object or null")
        space = self.space
        _check(
            "space",
            space,
            isinstance(space, Mapping)
            and isinstance(space.get("tuned"), Mapping)
            and isinstance(space.get("fixed"), Mapping),
            'an object {"tuned": {...}, "fixed": {...}}',
        )
        if self.plan is not None:
            _check(
                "plan",
                self.plan,
                isinstance(self.plan, tuple) and all(_is_int(t) and t >= 1 for t in self.plan),
                "a list of ints >= 1",
            )
        if self.mode == "whole":
            _check(
                "epochs_per_trial",
                self.epochs_per_trial,
                self.epochs_per_trial is not None,
                "an int >= 1 in whole mode",
            )

    # ------------------------------------------------------------------ records
    def to_record(self, **extra: Any) -> dict[str, Any]:
        """The JSON-safe dict the studies store (``extra``: per-study keys, e.g. ``epoch``)."""
        record = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        record["space"] = dict(self.space)
        record["policy"] = None if self.policy is None else dict(self.policy)
        record["trainer_spec"] = None if self.trainer_spec is None else dict(self.trainer_spec)
        record["plan"] = None if self.plan is None else list(self.plan)
        if self.mode != "whole":
            del record["epochs_per_trial"]
        return {**record, **extra}

    @classmethod
    def from_record(cls, record: Any) -> RunManifest:
        """Read a stored record back (untrusted: every field is checked; keys of older
        versions are renamed; keys this version does not know are ignored).

        Raises:
            ValueError: Not a mapping, a missing required field, or a field of the wrong type.
        """
        if not isinstance(record, Mapping):
            raise ValueError(f"the run's manifest must be an object, got {type(record).__name__}")
        data = current_record(record)
        names = {f.name for f in dataclasses.fields(cls)}
        required = {
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        missing = sorted(required - set(data))
        if missing:
            raise ValueError(f"the run's manifest lacks {missing}")
        kwargs = {k: v for k, v in data.items() if k in names}
        if isinstance(kwargs.get("plan"), list):
            kwargs["plan"] = tuple(kwargs["plan"])
        return cls(**kwargs)

    @classmethod
    def from_config(
        cls,
        config: TunerConfig,
        *,
        mode: str,
        sampler: str,
        trials_per_epoch: int,
        objective: str,
        space: Mapping[str, Any],
        epochs_total: int,
        **resolved: Any,
    ) -> RunManifest:
        """The manifest of a run with ``config``; the other arguments are what the engine
        resolved from it (the sampler's canonical name, the policy's record and plan, the run
        directory, the trainer's description, ...; see the attributes)."""
        assert config.run is not None, "the run name is resolved before the manifest"
        return cls(
            mode=mode,
            run=config.run,
            sampler=sampler,
            seed=config.seed,
            trials_per_epoch=trials_per_epoch,
            objective=objective,
            space=space,
            epochs_total=epochs_total,
            budget=config.budget,
            warm_start=config.warm_start,
            n_startup_trials=config.n_startup_trials,
            keep_trial_states=config.keep_trial_states,
            heartbeat_interval=config.heartbeat_interval,
            grace_period=config.grace_period,
            num_threads=config.num_threads,
            **resolved,
        )

    def to_config(self, **local: Any) -> TunerConfig:
        """The :class:`TunerConfig` that runs this manifest's plan, with a worker's ``local``
        settings (storage, artifacts, device, threads, ...).

        Raises:
            ValueError: A setting TunerConfig or the policy refuses (e.g. a malformed policy).
        """
        epochs = self.epochs_total if self.mode == "per-epoch" else self.epochs_per_trial
        policy = self.policy or {"name": "thesis"}
        plan: dict[str, Any]
        if self.mode == "per-epoch" and policy.get("name") != "thesis":
            # the same plan as the run's: its policy with its settings, and its budget or epochs
            plan = {
                "policy": policy_from_record(policy, budget=self.budget, epochs=epochs),
                "trials_per_epoch": None,
                "epochs": None,
            }
        else:
            plan = {
                "policy": "thesis",
                "trials_per_epoch": self.trials_per_epoch,
                "epochs": epochs,
            }
        return TunerConfig(
            run=self.run,
            sampler=self.sampler,
            objective=self.objective,
            seed=self.seed,
            n_startup_trials=self.n_startup_trials,
            warm_start=self.warm_start,
            keep_trial_states=self.keep_trial_states,
            heartbeat_interval=self.heartbeat_interval,
            grace_period=self.grace_period,
            **plan,
            **local,
        )
