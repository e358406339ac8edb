"""The Python API speaks Python (issue 15, point 8): the range warning names the search space,
not --lr-low; Optuna's per-trial INFO lines stay quiet during a call as in the CLI; a wrong
objective for the metrics is a clear error suggesting one that fits, and locks nothing."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import FloatDistribution
import pytest


pytest.importorskip("torch")

from test_identity import _Base  # noqa: E402
from test_identity import SignTrainer  # noqa: E402

from optuna_gamma.tuner import tune_per_epoch  # noqa: E402
from optuna_gamma.tuner import TunerConfig  # noqa: E402
from optuna_gamma.tuner.frontend import cli_frontend  # noqa: E402


def _cfg(tmp_path: Path, run: str, **kw: Any) -> TunerConfig:
    base: dict[str, Any] = dict(
        run=run, run_dir=str(tmp_path / run), sampler="grid:2", epochs=1, progress=False
    )
    base.update(kw)
    return TunerConfig(**base)


NARROW = {"lr": FloatDistribution(1e-3, 2e-3, log=True)}  # grid:2 adopts an end


def _bound_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return sorted({r.getMessage() for r in caplog.records if "search range" in r.getMessage()})


def test_range_warning_speaks_python_or_cli(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="optuna_gamma"):
        tune_per_epoch(SignTrainer(), NARROW, _cfg(tmp_path, "py"))
        (api,) = _bound_warnings(caplog)
        caplog.clear()
        with cli_frontend():
            tune_per_epoch(SignTrainer(), NARROW, _cfg(tmp_path, "cli"))
        (cli,) = _bound_warnings(caplog)
    assert "--lr" not in api and "end of 'lr' in the search space" in api
    assert "widen --lr-" in cli
    assert "of epoch 1" in api  # a per-epoch run names the epoch ...
    from optuna_gamma.tuner import tune_whole

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="optuna_gamma"):
        tune_whole(SignTrainer(), NARROW, _cfg(tmp_path, "whole"))
    (whole,) = _bound_warnings(caplog)
    assert "of the whole trainings" in whole and "epoch" not in whole  # ... whole trainings none


class _SeesOptunaVerbosity(SignTrainer):
    seen: list[int] = []

    def train_epoch(self, state: Any, hparams: Any, ctx: Any) -> None:
        self.seen.append(optuna.logging.get_verbosity())
        super().train_epoch(state, hparams, ctx)


def test_optuna_info_lines_are_quiet_during_a_call_only(tmp_path: Path) -> None:
    optuna.logging.set_verbosity(optuna.logging.INFO)  # Optuna's default
    trainer = _SeesOptunaVerbosity()
    tune_per_epoch(trainer, NARROW, _cfg(tmp_path, "q"))
    assert trainer.seen and set(trainer.seen) == {optuna.logging.WARNING}
    assert optuna.logging.get_verbosity() == optuna.logging.INFO  # restored
    # a verbosity the user chose is kept
    optuna.logging.set_verbosity(optuna.logging.DEBUG)
    try:
        trainer.seen.clear()
        tune_per_epoch(trainer, NARROW, _cfg(tmp_path, "q2"))
        assert set(trainer.seen) == {optuna.logging.DEBUG}
    finally:
        optuna.logging.set_verbosity(optuna.logging.INFO)


class _LossOnly(_Base):
    def evaluate(self, state: Any, split: str) -> dict[str, float]:
        return {"loss": super().evaluate(state, split)["loss"]}


def test_wrong_objective_suggests_one_and_locks_nothing(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'runs.db'}"
    with pytest.raises(ValueError) as err:
        tune_per_epoch(_LossOnly(), NARROW, _cfg(tmp_path, "o", storage=storage))
    msg = str(err.value)
    assert "needs the metrics ['accuracy']" in msg and "pass objective='loss'" in msg
    assert optuna.get_all_study_names(storage) == []  # nothing recorded the wrong objective
    res = tune_per_epoch(
        _LossOnly(), NARROW, _cfg(tmp_path, "o", storage=storage, objective="loss")
    )
    assert res.new_trials == 2 and res.objective == "loss"
    with cli_frontend(), pytest.raises(ValueError, match="pass --objective loss"):
        tune_per_epoch(_LossOnly(), NARROW, _cfg(tmp_path, "o2", storage=storage))


def test_a_budget_too_small_to_compare_settings_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import re

    from optuna_gamma.tuner.policies import PopulationPolicy

    def small(budget: int) -> list[str]:
        caplog.clear()
        config = _cfg(tmp_path, f"b{budget}", sampler="gamma", epochs=None, budget=budget)
        tune_per_epoch(SignTrainer(), NARROW, config)
        return [r.getMessage() for r in caplog.records if "too small" in r.getMessage()]

    with caplog.at_level(logging.WARNING, logger="optuna_gamma"):
        (message,) = small(2)  # before: the run trained the trainer's own setting, silently
        found = re.search(r"budget=(\d+) is the smallest that tries others", message)
        assert found and "each of its 2 epochs trains one trial" in message
        smallest = int(found.group(1))
        assert max(PopulationPolicy(budget=smallest - 1).plan.trials) == 1
        assert max(PopulationPolicy(budget=smallest).plan.trials) > 1
        assert small(smallest) == []


def test_a_sampler_instance_is_refused_with_the_factory_to_write() -> None:
    with pytest.raises(ValueError) as err:
        TunerConfig(budget=12, sampler=optuna.samplers.TPESampler(seed=0))  # type: ignore[arg-type]
    msg = str(err.value)
    assert "def make_sampler(seed): return TPESampler(..., seed=seed)" in msg
    assert "sampler=make_sampler" in msg
    with pytest.raises(ValueError) as err:
        TunerConfig(budget=12, sampler=3)  # type: ignore[arg-type]
    assert "make_sampler" not in str(err.value)  # not a sampler: no such hint
    config = TunerConfig(budget=12, sampler=lambda seed: optuna.samplers.TPESampler(seed=seed))
    assert callable(config.sampler)


@pytest.mark.parametrize(
    ("setting", "said"),
    [
        (
            {"budget": 40, "epochs": None},
            r"budget=40 is the per-epoch tuner's: .*--epochs E --trials N",
        ),
        ({"policy": "population"}, r"policy='population' is the per-epoch tuner's"),
        ({"final_model": "average"}, r"final_model='average' is the per-epoch tuner's"),
    ],
)
def test_whole_mode_refuses_the_per_epoch_settings_it_would_ignore(
    tmp_path: Path, setting: dict[str, Any], said: str
) -> None:
    """A whole-training run has no budget, policy or final-model choice: before, ``budget=40``
    silently ran the default 12 one-epoch trainings (12 epochs of compute, not 40), and the
    other two were ignored. Refused before anything is written; the thesis's policy, which is
    what whole mode runs, is accepted."""
    from optuna_gamma.tuner import tune_whole

    with pytest.raises(ValueError, match=said):
        tune_whole(SignTrainer(), NARROW, _cfg(tmp_path, "w", **setting))
    assert not (tmp_path / "w").exists()
    res = tune_whole(SignTrainer(), NARROW, _cfg(tmp_path, "w", policy="thesis"))
    assert len(res.trials) == 2


def test_a_budget_the_thesis_policy_cannot_spend_whole_is_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The thesis's policy runs whole epochs of T trials: budget=10 with T=3 is 3 epochs, 9
    training epochs; the run said nothing about the tenth (``--budget`` promised to spend it)."""
    cfg = _cfg(tmp_path, "b", sampler="random", policy="thesis", trials_per_epoch=3, epochs=None)
    with caplog.at_level(logging.WARNING, logger="optuna_gamma"):
        res = tune_per_epoch(SignTrainer(), NARROW, dataclasses.replace(cfg, budget=10))
    assert res.compute_epochs == 9
    said = [r.getMessage() for r in caplog.records if "unspent" in r.getMessage()]
    assert said == [
        "budget=10: the thesis's policy trains whole epochs of 3 trials, so its 3 epochs spend "
        "9 training epochs and 1 is left unspent (a multiple of 3 spends it all)"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="optuna_gamma"):
        tune_per_epoch(SignTrainer(), NARROW, dataclasses.replace(cfg, run="c", budget=9))
    assert not [r for r in caplog.records if "unspent" in r.getMessage()]


def test_a_policy_of_the_users_that_plans_less_than_its_budget_is_said_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The warning spoke of the thesis's policy whatever the policy: a policy of the user's
    with budget=5 that plans two epochs of 2 trials was said to be the thesis's."""
    from dataclasses import dataclass

    from optuna_gamma.tuner.policies.base import Policy
    from optuna_gamma.tuner.policies.base import RunPlan
    from optuna_gamma.tuner.policies.base import Slot

    @dataclass(frozen=True)
    class Pairs(Policy):
        budget: int
        name = "pairs"

        @property
        def plan(self) -> RunPlan:
            return RunPlan((2,) * (self.budget // 2))

        def slots(self, epoch, population, default=None):
            return [Slot(), Slot()]

    cfg = _cfg(tmp_path, "u", sampler="random", policy=Pairs(budget=5), budget=5, epochs=None)
    with caplog.at_level(logging.WARNING, logger="optuna_gamma"):
        res = tune_per_epoch(SignTrainer(), NARROW, cfg)
    assert res.compute_epochs == 4
    said = [r.getMessage() for r in caplog.records if "unspent" in r.getMessage()]
    assert said == [
        "budget=5: the policy Pairs plans 4 training epochs over 2 epochs, so 1 is left unspent"
    ]


_OWN_LOGGING = r"""
import logging

import optuna
import optuna_gamma.tuner as tuner
from optuna_gamma import GammaBOSampler

mine = []


class Keep(logging.Handler):
    def emit(self, record):
        mine.append(record.getMessage())


logging.getLogger().addHandler(Keep())
logging.getLogger("optuna_gamma.tuner.tune").info("before")
tuner.disable_default_handler()
logging.getLogger("optuna_gamma.tuner.tune").info("after")
logging.getLogger("optuna_gamma.samplers._gamma_bo").warning("sampler")
print(mine)
"""


def test_disable_default_handler_hands_the_records_to_the_users_logging(tmp_path: Path) -> None:
    """``optuna_gamma.tuner.disable_default_handler()`` (public, as Optuna's namesake): the
    library's records, the sampler's warnings included, reach the user's own root handler and no
    longer the library's stderr handler; before it they go to stderr only."""
    import subprocess
    import sys

    script = tmp_path / "own_logging.py"
    script.write_text(_OWN_LOGGING)
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True
    )
    assert proc.stdout.strip() == "['after', 'sampler']", proc.stdout
    assert "before" in proc.stderr and "after" not in proc.stderr, proc.stderr
    assert "sampler" not in proc.stderr, proc.stderr
