"""The run manifest: one typed record from TunerConfig to storage and back (issue 18)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from optuna_gamma.tuner import TunerConfig
from optuna_gamma.tuner.execution.manifest import current_record
from optuna_gamma.tuner.execution.manifest import RunManifest


_SPACE = {
    "tuned": {
        "lr": {
            "name": "FloatDistribution",
            "attributes": {"low": 0.001, "high": 0.5, "log": True, "step": None},
        }
    },
    "fixed": {"batch_size": 64},
}


def _manifest(**changes: Any) -> RunManifest:
    config = TunerConfig(run="r", sampler="random", seed=3, epochs=2, policy="thesis")
    base: dict[str, Any] = dict(
        mode="per-epoch",
        sampler="random",
        trials_per_epoch=4,
        objective="kappa1",
        space=_SPACE,
        epochs_total=2,
        policy={"name": "thesis"},
        plan=(4, 4),
        run_dir="/runs/r",
        artifacts="/runs/r/artifacts",
        trainer="ThesisTrainer",
        trainer_spec={"builtin": {"dataset": "digits"}},
        device="cpu",
    )
    return RunManifest.from_config(config, **{**base, **changes})


def test_a_manifest_survives_its_json_record() -> None:
    manifest = _manifest()
    record = json.loads(json.dumps(manifest.to_record(epoch=1)))
    assert record["trials_per_epoch"] == 4 and "trials" not in record and record["epoch"] == 1
    assert RunManifest.from_record(record) == manifest


def test_defaults_come_from_tunerconfig() -> None:
    record = _manifest().to_record()
    for key in ("n_startup_trials", "warm_start", "keep_trial_states", "heartbeat_interval"):
        del record[key]
    back = RunManifest.from_record(record)
    defaults = TunerConfig()
    assert back.n_startup_trials == defaults.n_startup_trials
    assert back.warm_start == defaults.warm_start
    assert back.keep_trial_states == defaults.keep_trial_states
    assert back.heartbeat_interval == defaults.heartbeat_interval


def test_to_config_runs_the_same_plan() -> None:
    config = _manifest().to_config(storage="sqlite:///x.db", num_threads=2)
    assert (config.run, config.sampler, config.seed) == ("r", "random", 3)
    assert (config.trials_per_epoch, config.epochs, config.policy) == (4, 2, "thesis")
    assert config.storage == "sqlite:///x.db" and config.num_threads == 2
    whole = _manifest(mode="whole", epochs_total=1, epochs_per_trial=5).to_config()
    assert (whole.trials_per_epoch, whole.epochs) == (4, 5)


def test_records_of_the_previous_version_are_read() -> None:
    record = _manifest().to_record()
    record["trials"] = record.pop("trials_per_epoch")
    assert current_record(record)["trials_per_epoch"] == 4
    assert RunManifest.from_record(record).trials_per_epoch == 4


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"trials_per_epoch": "4"}, "'trials_per_epoch' must be an int >= 1"),
        ({"trials_per_epoch": True}, "'trials_per_epoch' must be an int >= 1"),
        ({"mode": "sideways"}, "'mode' must be 'per-epoch' or 'whole'"),
        ({"seed": -1}, "'seed' must be an int >= 0"),
        ({"space": {"tuned": []}}, "'space' must be an object"),
        ({"warm_start": "no"}, "'warm_start' must be true or false"),
        ({"policy": "population"}, "'policy' must be an object or null"),
        ({"plan": [4, 0]}, "'plan' must be a list of ints >= 1"),
        ({"run": ""}, "'run' must be a non-empty string"),
        ({"grace_period": 0.5}, "'grace_period' must be null or int"),
        ({"deterministic": "yes"}, "'deterministic' must be null or a bool"),
    ],
)
def test_a_malformed_record_is_a_clear_value_error(change: dict[str, Any], needle: str) -> None:
    record = {**_manifest().to_record(), **change}
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
        RunManifest.from_record(record)


def test_a_record_without_a_required_field_or_not_a_mapping_is_refused() -> None:
    record = _manifest().to_record()
    del record["seed"]
    with pytest.raises(ValueError, match=r"lacks \['seed'\]"):
        RunManifest.from_record(record)
    with pytest.raises(ValueError, match="must be an object"):
        RunManifest.from_record(["not", "a", "record"])


def test_a_malformed_policy_is_a_value_error_from_to_config() -> None:
    manifest = _manifest(policy={"name": "population", "frobnicate": 3})
    with pytest.raises(ValueError, match="unknown settings"):
        manifest.to_config()


def test_the_manifest_copies_no_config_default_by_hand() -> None:
    fields = {f.name: f.default for f in dataclasses.fields(RunManifest)}
    config = {f.name: f.default for f in dataclasses.fields(TunerConfig)}
    for key in ("warm_start", "n_startup_trials", "keep_trial_states", "heartbeat_interval"):
        assert fields[key] == config[key]
