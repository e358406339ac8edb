"""The two ways to tune: per epoch (thesis fig. 8) and for a whole training (tables 8-10).

:func:`tune_per_epoch` runs, for epoch ``e = 1..E``, the study ``"{run}/epoch-{e:03d}"``: ``T``
trials each train one epoch from the state adopted in epoch ``e - 1``, and the best trial's
model, optimizer, scheduler and scaler state becomes the next start (the thesis's
"Determinant"); its hyperparameters are the epoch's schedule entry. :func:`tune_whole` runs one
study ``"{run}/whole"`` whose trials each train all ``E`` epochs at constant hyperparameters.
With a population (the default policy), the best state of each epoch need not descend from the
previous epoch's best: the result's ``schedule`` is the final model's own lineage
(:mod:`~optuna_gamma.tuner.policies.lineage`) and ``adopted`` the best state of each epoch.
Both run on :class:`~optuna_gamma.tuner.execution.engine.Engine`; re-running the same call resumes.
"""

from __future__ import annotations

import dataclasses
import difflib
import time
from typing import Any
from typing import TYPE_CHECKING

import optuna
from optuna.trial import TrialState

from optuna_gamma.tuner._logging import get_logger
from optuna_gamma.tuner.config import TunerConfig
from optuna_gamma.tuner.execution.coordinator import coordinate
from optuna_gamma.tuner.execution.coordinator import refuse_while_spawned
from optuna_gamma.tuner.execution.engine import Engine
from optuna_gamma.tuner.execution.finished import finish_per_epoch
from optuna_gamma.tuner.execution.finished import save_result
from optuna_gamma.tuner.execution.finished import test_metrics
from optuna_gamma.tuner.execution.runtime import storage_errors
from optuna_gamma.tuner.execution.session import tuner_call
from optuna_gamma.tuner.persistence.runfiles import crash_point
from optuna_gamma.tuner.policies.thesis import ThesisPolicy
from optuna_gamma.tuner.results import count
from optuna_gamma.tuner.results import PerEpochResult
from optuna_gamma.tuner.results import ScheduleEntry
from optuna_gamma.tuner.results import WholeResult
from optuna_gamma.tuner.search.objectives import objective_metric


if TYPE_CHECKING:
    from optuna_gamma.tuner.search.space import SpaceLike
    from optuna_gamma.tuner.trainer import Trainer


__all__ = ["tune_per_epoch", "tune_whole"]

_logger = get_logger(__name__)


def _config(space: Any, config: TunerConfig | None, settings: dict[str, Any]) -> TunerConfig:
    if isinstance(space, TunerConfig):
        # tune_per_epoch(trainer, TunerConfig(...)): the second argument is the search space
        raise ValueError(
            "the second argument is the search space, got a TunerConfig: pass the settings "
            "as config=TunerConfig(...) (the space defaults to trainer.search_space())"
        )
    if config is not None and not isinstance(config, TunerConfig):
        raise ValueError(f"config must be a TunerConfig, got {type(config).__name__}")
    base = config or TunerConfig()
    known = [f.name for f in dataclasses.fields(TunerConfig)]
    unknown = sorted(set(settings) - set(known))
    if unknown:
        close = [m for name in unknown for m in difflib.get_close_matches(name, known, n=1)]
        meant = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise ValueError(
            f"unknown setting(s) {unknown}{meant}; see optuna_gamma.tuner.TunerConfig"
        )
    return dataclasses.replace(base, **settings)


def tune_per_epoch(
    trainer: Trainer,
    space: SpaceLike | None = None,
    config: TunerConfig | None = None,
    **settings: Any,
) -> PerEpochResult:
    """Tune hyperparameters epoch by epoch; return the final model's schedule (thesis fig. 8).

    Args:
        trainer: Your :class:`~optuna_gamma.tuner.trainer.Trainer`, or the built-in
            :class:`~optuna_gamma.tuner.builtin.ThesisTrainer`.
        space: The search space (:mod:`optuna_gamma.tuner.search.space`); default
            ``trainer.search_space()``.
        config: The settings (:class:`~optuna_gamma.tuner.config.TunerConfig`); with
            ``workers=N`` an epoch's trials run in ``N`` worker processes at once
            (:mod:`~optuna_gamma.tuner.execution.workers`; the trainer, space and config must
            then be picklable, and a script must guard its entry point with ``if __name__ ==
            "__main__":``).
        **settings: Fields of :class:`~optuna_gamma.tuner.config.TunerConfig` that replace
            those of ``config`` (e.g. ``epochs=3, sampler="gamma"``).

    Returns:
        The :class:`~optuna_gamma.tuner.results.PerEpochResult`, also written to
        ``run_dir/result.json``.

    Raises:
        ValueError: Bad arguments (before any work), an existing run with other settings, or
            a script whose tuner call is not under ``if __name__ == "__main__":`` (its
            workers would run it again).
        TunerError: The storage, artifact store, device or run directory cannot be used; every
            trial of an epoch diverged; or every worker stopped before the run was done.
    """
    refuse_while_spawned()
    cfg = _config(space, config, settings)
    engine = Engine(trainer, space, cfg, "per-epoch", role=_role(cfg))
    t0 = time.perf_counter()
    with tuner_call(), engine.opened(), storage_errors():
        _warn_if_nothing_compared(engine)
        _warn_if_budget_left(engine)
        before = engine.studies.count_complete()
        n = engine.n_epochs
        with engine.progress.shown(engine.run_plan.compute, before):
            if engine.role == "coordinator":
                _coordinated(engine, trainer, space, before)
            else:
                _serial_epochs(engine)
        studies = [engine.studies.load(e) for e in range(1, n + 1)]
        adopted = [s.user_attrs["adopted"] for s in studies]
        rule = engine.policy.default_final_model if cfg.final_model == "auto" else cfg.final_model
        final, test, chain, state = finish_per_epoch(engine, studies, rule)
        if engine.run_plan.population > 1:
            engine.adoption.warn_lineage_at_bounds(chain)
        engine.progress.count_new_trials(before)
        common = _common(engine, studies, test, time.perf_counter() - t0, state)
        fixed = engine.space.fixed
        result = PerEpochResult(
            **{**common, "final_epochs": final, "final_model": rule},
            averaged_epochs=list(state.get("epochs", [])) if rule == "average" else [],
            schedule=[_entry(e, m, fixed) for e, m in enumerate(chain, start=1)],
            adopted=[_entry(e, a, fixed) for e, a in enumerate(adopted, start=1)],
        )
        save_result(result, engine.paths.result)
        _logger.info(_summary_line(result))
        return result


def _warn_if_budget_left(engine: Engine) -> None:
    """Say so where the plan spends less than the budget: the thesis's policy runs whole
    epochs of ``T`` trials, ``budget // T`` of them (the default policy trims its last epoch
    instead, so it spends the budget exactly); a policy of the user's may plan less."""
    budget = engine.config.budget
    spent = engine.run_plan.compute
    if budget is None or spent >= budget or engine.role == "worker":
        return
    trials = engine.run_plan.trials
    left = f"{budget - spent} {'is' if budget - spent == 1 else 'are'} left unspent"
    if isinstance(engine.policy, ThesisPolicy):
        _logger.warning(
            f"budget={budget}: the thesis's policy trains whole epochs of {trials[0]} trials, "
            f"so its {len(trials)} epochs spend {spent} training epochs and {left} (a multiple "
            f"of {trials[0]} spends it all)"
        )
    else:  # a policy of the user's that plans less
        _logger.warning(
            f"budget={budget}: the policy {type(engine.policy).__name__} plans {spent} "
            f"training epochs over {len(trials)} epochs, so {left}"
        )


def _warn_if_nothing_compared(engine: Engine) -> None:
    """Say so where the budget is too small for the policy to try any setting but the
    trainer's own (every epoch one trial), and which budget is the smallest that does."""
    policy = engine.policy
    budget = getattr(policy, "budget", None)
    if budget is None or max(engine.run_plan.trials) > 1 or not dataclasses.is_dataclass(policy):
        return
    smallest = next(
        (
            b
            for b in range(budget + 1, 4 * budget + 64)
            if max(dataclasses.replace(policy, budget=b).plan.trials) > 1
        ),
        None,
    )
    _logger.warning(
        f"budget={budget} is too small to compare settings: each of its "
        f"{engine.run_plan.epochs} epochs trains one trial, with the trainer's own setting "
        "(where it has one in the search space), so nothing is tuned"
        + (f" (budget={smallest} is the smallest that tries others)" if smallest else "")
    )


def _role(cfg: TunerConfig) -> str:
    return "coordinator" if cfg.workers or cfg.coordinate else "serial"


def _serial_epochs(engine: Engine) -> None:
    record = engine.run_record()
    for epoch in range(1, engine.n_epochs + 1):
        study = engine.studies.open(engine.studies.name(epoch), {**record, "epoch": epoch})
        adopted = study.user_attrs.get("adopted")
        t_epoch = time.perf_counter()
        if adopted is None:
            engine.progress.describe(f"epoch {epoch}/{engine.n_epochs}")
            adopted, _ = engine.run_study(epoch, study)
            how = f"{time.perf_counter() - t_epoch:.1f} s"
        else:
            engine.adoption.clean_up(study)
            how = "adopted earlier"
        _log_adopted(engine, epoch, study, adopted, how)


def _log_adopted(
    engine: Engine, epoch: int, study: optuna.Study, adopted: dict[str, Any], how: str
) -> None:
    what = (
        f"epoch {epoch}/{engine.n_epochs}"
        if engine.mode == "per-epoch"
        else f"whole training, {engine.epochs_per_trial} epochs"
    )
    _logger.info(f"{what}: {_describe(engine, study, adopted)} ({how})")
    if engine.run_plan.population == 1:  # else the final model's lineage is checked at the end
        engine.adoption.warn_at_bounds(
            epoch if engine.mode == "per-epoch" else None, adopted["hparams"]
        )


def _coordinated(engine: Engine, trainer: Any, space: Any, before: int) -> None:
    """Start the workers, log each adoption as it happens, keep the bar counting."""
    n = engine.n_epochs
    final: dict[int, int] = {}  # complete trials of adopted epochs (they do not change)
    t_last = time.perf_counter()
    shown = [before]

    def progress(log: bool = True) -> None:
        nonlocal t_last
        names = engine.studies.names()
        done = 0
        adopted_now: list[tuple[int, Any, Any, str]] = []
        for epoch in range(1, n + 1):
            if epoch in final:
                done += final[epoch]
                continue
            if engine.studies.name(epoch) not in names:
                continue
            study = engine.studies.load(epoch)
            count = min(
                engine.trials_of(epoch),
                len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))),
            )
            done += count
            adopted = study.user_attrs.get("adopted")
            if adopted is not None:
                final[epoch] = count
                if log:
                    adopted_now.append(
                        (epoch, study, adopted, f"{time.perf_counter() - t_last:.1f} s")
                    )
                t_last = time.perf_counter()
        # the bar and the rows of the finished trials first, then the epochs' adoption lines
        if done > shown[0]:
            engine.progress.advance(done - shown[0])
            shown[0] = done
        for epoch, study, adopted, took in adopted_now:
            _log_adopted(engine, epoch, study, adopted, took)
            crash_point("coordinator_adopted")
        if final:
            engine.progress.describe(f"epoch {min(max(final) + 1, n)}/{n}")

    progress(log=False)  # epochs adopted before this call are not logged again
    coordinate(engine, trainer, space, on_progress=progress)
    progress()


def tune_whole(
    trainer: Trainer,
    space: SpaceLike | None = None,
    config: TunerConfig | None = None,
    **settings: Any,
) -> WholeResult:
    """Tune constant hyperparameters for a whole ``epochs``-long training (tables 8-10).

    Arguments as :func:`tune_per_epoch`; ``trials_per_epoch`` is the number of trainings.

    Returns:
        The :class:`~optuna_gamma.tuner.results.WholeResult`, also written to
        ``run_dir/result.json``.
    """
    refuse_while_spawned()
    cfg = _config(space, config, settings)
    _check_whole(cfg)
    engine = Engine(trainer, space, cfg, "whole", role=_role(cfg))
    t0 = time.perf_counter()
    with tuner_call(), engine.opened(), storage_errors():
        before = engine.studies.count_complete()
        record = engine.run_record()
        study = engine.studies.open(engine.studies.name(1), record)
        with engine.progress.shown(engine.plan.trials_per_epoch, before):
            if engine.role == "coordinator":
                _coordinated(engine, trainer, space, before)
            elif "adopted" not in study.user_attrs:
                engine.progress.describe(f"whole ({engine.epochs_per_trial} epochs)")
                adopted, _ = engine.run_study(1, study)
                _log_adopted(engine, 1, study, adopted, f"{time.perf_counter() - t0:.1f} s")
            else:
                engine.adoption.clean_up(study)
        adopted = study.user_attrs["adopted"]
        test = test_metrics(engine, study, 1)
        engine.progress.count_new_trials(before)
        trials = [
            {
                "number": t.number,
                "params": dict(t.params),
                "value": t.value,
                "metrics": {k: t.user_attrs.get(k) for k in adopted["metrics"]},
                "reused_from": t.user_attrs.get("reused_from"),
            }
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        ]
        result = WholeResult(
            **_common(engine, [study], test, time.perf_counter() - t0, adopted),
            best=_entry(engine.epochs_per_trial, adopted, engine.space.fixed),
            trials=trials,
        )
        save_result(result, engine.paths.result)
        _logger.info(_summary_line(result))
        return result


def _check_whole(cfg: TunerConfig) -> None:
    """Refuse the per-epoch tuner's settings in a whole-training run, which would ignore them
    (before, ``budget=40`` ran its default 12 one-epoch trainings: 12 epochs of compute).

    Raises:
        ValueError: ``budget``, a ``policy`` other than the thesis's, or a ``final_model`` other
            than ``"auto"`` and ``"last"``, naming what a whole-training run takes instead.
    """
    if cfg.budget is not None:
        raise ValueError(
            f"budget={cfg.budget} is the per-epoch tuner's: a whole-training run trains "
            "trials_per_epoch trainings of epochs each (its compute is their product), so give "
            "epochs=E and trials_per_epoch=N (--epochs E --trials N)"
        )
    if cfg.policy is not None and cfg.policy != "thesis":
        shown = cfg.policy if isinstance(cfg.policy, str) else type(cfg.policy).__name__
        raise ValueError(
            f"policy={shown!r} is the per-epoch tuner's: a whole-training run samples "
            "trials_per_epoch trainings of constant settings (the thesis's tables 8-10)"
        )
    if cfg.final_model not in ("auto", "last"):
        raise ValueError(
            f"final_model={cfg.final_model!r} is the per-epoch tuner's: a whole-training run "
            "returns its best training's last state"
        )


def _entry(epoch: int, adopted: dict[str, Any], fixed: dict[str, Any]) -> ScheduleEntry:
    return ScheduleEntry(
        epoch=epoch,
        trial_number=int(adopted["trial"]),
        value=float(adopted["value"]),
        params={**adopted["params"], **fixed},
        metrics=dict(adopted["metrics"]),
    )


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _describe(engine: Engine, study: optuna.Study, adopted: dict[str, Any]) -> str:
    params = " ".join(f"{k}={_fmt(v)}" for k, v in adopted["params"].items())
    metrics = adopted["metrics"]
    shown = " ".join(
        f"{k}={_fmt(metrics[k])}"
        for k in ("accuracy", "loss")
        if metrics.get(k) is not None and k != engine.objective.metric_name
    )
    return (
        f"adopted trial {adopted['trial']}: {params} {engine.objective.metric_name}="
        f"{_fmt(adopted['value'])} {shown}".rstrip()
    )


def _common(
    engine: Engine,
    studies: list[optuna.Study],
    test: dict[str, Any],
    wall: float,
    final: dict[str, Any],
) -> dict[str, Any]:
    trained = reused = 0
    compute = 0.0
    for study in studies:
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if "reused_from" in t.user_attrs:
                reused += 1
                continue
            trained += 1
            spent = t.user_attrs.get("time") or {}
            compute += float(spent.get("train", 0.0)) + float(spent.get("eval", 0.0))
    cfg = engine.config
    return dict(
        run=cfg.run,
        sampler=engine.plan.name,
        objective=engine.objective.name,
        seed=cfg.seed,
        storage=engine.storage_text,
        artifacts=engine.artifacts_text,
        run_dir=str(engine.paths.root),
        epochs=engine.n_epochs if engine.mode == "per-epoch" else engine.epochs_per_trial,
        trials_per_epoch=max(engine.run_plan.trials),
        policy={**engine.policy.describe(), "trials": list(engine.run_plan.trials)},
        compute_epochs=trained * engine.epochs_per_trial,
        final_epochs=engine.n_epochs if engine.mode == "per-epoch" else engine.epochs_per_trial,
        test=test,
        compute_time=compute,
        wall_time=wall,
        trials_trained=trained,
        trials_reused=reused,
        new_trials=engine.progress.new_trials,
        num_threads=cfg.num_threads,
        device=str(engine.device),
        final_state=final["state"],
        final_state_sha256=str(final.get("state_sha256") or ""),
        space=engine.space.to_dict(),
        notes={},
    )


def _summary_line(result: PerEpochResult | WholeResult) -> str:
    done = result.trials_trained + result.trials_reused
    if result.new_trials == 0:
        this_call = f"this call: nothing left to train ({result.wall_time:.1f} s)"
    else:
        new = count(result.new_trials, "new trial")
        this_call = f"this call: {new} in {result.wall_time:.1f} s wall"
    # the objective's own test metric first (the f1 of "max:f1"), then the test accuracy; a
    # trainer without one (a regression): its own metrics, three at most
    test = result.test
    numbers = [k for k, v in test.items() if isinstance(v, float)]
    names = ["accuracy"] if "accuracy" in numbers else numbers
    own = objective_metric(result.objective)
    if own in numbers:
        names = [own, *(k for k in names if k != own)]
    shown = [f"{k} {test[k]:.4f}" if k == "accuracy" else f"{k} {test[k]:.4g}" for k in names]
    return (
        f"run {result.run!r} done: {count(done, 'trial')} ({result.trials_trained} trained, "
        f"{result.trials_reused} reused), {result.compute_time:.1f} s of training+validation; "
        f"{this_call}" + (f"; test {', '.join(shown[:3])}" if shown else "")
    )
