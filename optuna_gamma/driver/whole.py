"""Whole-training mode (thesis tables 8-10): one constant learning rate per trial.

One study ``"{run}/whole"`` (maximize). Each trial starts from the same initial state (the model
built with the run's seed), trains ``E`` epochs at the trial's constant settings with the same
per-epoch batch orders as the per-epoch driver (``derive_seed(seed, "batches", e)``), evaluates
on validation data and returns kappa. The best trial's final state is kept on disk, so the test
metrics need no retraining. Resume works as in the per-epoch driver (a trial killed mid-training
is failed and retried from scratch with the same parameters).
"""

from __future__ import annotations

from collections.abc import Callable
import time
from typing import TYPE_CHECKING
from typing import Any
from typing import Union

from optuna_gamma.driver import _engine
from optuna_gamma.driver.checkpoint import RunPaths
from optuna_gamma.driver.checkpoint import atomic_copy
from optuna_gamma.driver.checkpoint import derive_seed
from optuna_gamma.driver.checkpoint import run_lock
from optuna_gamma.driver.results import WholeResult
from optuna_gamma.driver.samplers import SamplerFactory
from optuna_gamma.driver.space import SearchSpace


if TYPE_CHECKING:
    import torch

    from optuna_gamma.data import DatasetSplits


__all__ = ["tune_whole"]


def tune_whole(
    model: Union[str, torch.nn.Module],
    data: Union[str, DatasetSplits],
    *,
    space: SearchSpace | None = None,
    sampler: Union[str, SamplerFactory] = "gamma",
    n_trials: int | None = None,
    epochs: int = 1,
    kappa: Union[str, Callable[[float, float], float]] = "kappa1",
    storage: Any = None,
    run: str = "run",
    seed: int = 0,
    run_dir: str | None = None,
    n_startup_trials: int = 2,
    device: Any = None,
    data_root: Any = None,
    subset: int | None = None,
    download: bool = False,
    keep_trial_states: bool = False,
    progress: bool = False,
) -> WholeResult:
    """Tune one constant learning rate for a whole ``epochs``-long training.

    Arguments as in :func:`~optuna_gamma.driver.tune_per_epoch`; ``n_trials`` (default 12, the
    grid size for ``grid:N``, 1 for ``fixed``) is the number of trainings.

    Returns:
        The :class:`~optuna_gamma.driver.results.WholeResult`, also written to
        ``run_dir/result.json``.
    """
    import torch  # noqa: F401

    from optuna_gamma.metrics import evaluate
    from optuna_gamma.training import capture_state
    from optuna_gamma.training import load_state
    from optuna_gamma.training import restore_state
    from optuna_gamma.training import set_hyperparameters
    from optuna_gamma.training import train_one_epoch

    t_start = time.perf_counter()
    _engine.check_common(epochs, seed, run, kappa)
    space = space or SearchSpace()
    plan = _engine.SamplerPlan(sampler, space, n_trials, n_startup_trials)
    paths = RunPaths(run_dir if run_dir is not None else f"runs/{run}")

    with run_lock(paths):
        storage_obj, storage_url = _engine.resolve_storage(storage, paths)
        splits = _engine.resolve_data(data, data_root=data_root, subset=subset, seed=seed, download=download)
        net, optimizer, initial = _engine.prepare_model(model, splits, plan.space, seed, paths)
        n_classes = int(splits.n_classes)
        name = f"{run}/whole"
        study = _engine.open_study(storage_obj, name)
        _engine.check_config(study, {
            "mode": "whole", "run": run, "run_dir": str(paths.root), "sampler": plan.name, "seed": seed, "trials": plan.trials, "epochs": epochs,
            "kappa": _engine.kappa_name(kappa), "space": plan.space.to_dict(),
            "dataset": getattr(splits, "name", None), "model": model if isinstance(model, str) else type(model).__name__,
        })
        _engine.fail_stale_trials(study, plan.space.tuned())
        if plan.grid:
            _engine.enqueue_once(study, plan.grid_queue(derive_seed(seed, "grid", 0)))

        def train(params: dict[str, Any], number: int) -> tuple[Any, dict[str, Any]]:
            restore_state(net, optimizer, initial)
            set_hyperparameters(optimizer, lr=params["lr"], momentum=params["momentum"], weight_decay=params["weight_decay"])
            t0 = time.perf_counter()
            loss = float("nan")
            for e in range(1, epochs + 1):
                loss = train_one_epoch(
                    net, optimizer, splits.train, batch_size=params["batch_size"],
                    seed=derive_seed(seed, "batches", e), device=device,
                )
                if loss != loss or loss in (float("inf"), float("-inf")):
                    break
            t_train = time.perf_counter() - t0
            ev = evaluate(net, splits.valid, n_classes=n_classes, device=device)
            return capture_state(net, optimizer), {**ev, "train_loss": loss, "train_time": t_train}

        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=plan.trials, unit="trial", desc=f"whole ({epochs} epochs)", dynamic_ncols=True, disable=None)
        try:
            while True:
                done = _engine.complete_trials(study)
                if bar is not None:
                    bar.n = min(len(done), plan.trials)
                    bar.refresh()
                if len(done) >= plan.trials:
                    break
                _engine.run_trial(
                    storage=storage_obj, study_name=name, plan=plan,
                    sampler_seed=derive_seed(seed, "sampler", 0, len(done)), slot=len(done),
                    train=train, paths=paths, epoch=None, kappa=kappa,
                )
        finally:
            if bar is not None:
                bar.close()

        done = _engine.complete_trials(study)
        best = _engine.best_trial(done)
        final = paths.root / "states" / "whole" / "best.pt"
        src = paths.resolve(best.user_attrs["state"])
        if src.is_file():
            atomic_copy(src, final)
        study.set_user_attr("best", {"trial": best.number, "lr": float(best.params["lr"]), "kappa": float(best.value),
                                     "state": paths.relative(final)})
        if not keep_trial_states:
            for t in done:
                _engine.remove_quietly(paths.resolve(t.user_attrs["state"]))
        restore_state(net, optimizer, load_state(final))
        test = evaluate(net, splits.test, n_classes=n_classes, device=device)
        ua = best.user_attrs
        result = WholeResult(
            run=run, sampler=plan.name, seed=seed, storage=storage_url, run_dir=str(paths.root), epochs=epochs,
            n_trials=plan.trials, kappa=_engine.kappa_name(kappa), best_lr=float(best.params["lr"]),
            best_params=dict(ua["params"]), best_trial_number=best.number, best_kappa=float(best.value),
            valid={k: ua[k] for k in ("accuracy", "loss", "sensitivity", "specificity", "mcc", "diverged")},
            test={k: test[k] for k in ("accuracy", "loss", "sensitivity", "specificity", "mcc", "confusion_matrix")},
            trials=[{"number": t.number, "params": t.user_attrs["params"], "kappa": float(t.value),
                     "accuracy": t.user_attrs["accuracy"]} for t in done],
            total_time=sum(float(t.user_attrs["train_time"]) + float(t.user_attrs["eval_time"]) for t in done),
            wall_time=time.perf_counter() - t_start, final_state=str(final), space=plan.space.to_dict(),
        )
        study.set_user_attr("test", result.test)
        result.save(paths.result)
        return result
