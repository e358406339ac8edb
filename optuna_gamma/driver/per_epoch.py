"""The per-epoch learning-rate study of the thesis (fig. 8; DESIGN.md §4).

For epoch ``e = 1..E`` the driver opens study ``"{run}/epoch-{e:03d}"`` (maximize) and runs
``T`` trials. A trial restores the current model and optimizer state, takes the trial's
learning rate (and the other tuned SGD settings), trains one epoch over mini-batches drawn from
the seed ``derive_seed(seed, "batches", e)`` -- the same order for every trial of the epoch --,
evaluates on the validation split and returns kappa. Its resulting state is saved to
``run_dir/states/epoch-EEE/trial-NNNN.pt`` and linked from the trial's user attributes. After
the ``T`` trials the best trial's model **and optimizer** state is adopted (the thesis's
"Determinant"), copied to ``adopted.pt`` and recorded in the study's user attributes; its
learning rate is the epoch's schedule entry.

Resume (kill -9 at any instant, then the same call again): finished epochs are skipped (their
adopted state is read from disk); in the current epoch, completed trials are kept and RUNNING
trials of the dead process are failed and retried with the same parameters; new trials get a
sampler built for that trial from ``derive_seed(seed, "sampler", e, n_completed)``. Every step is
a function of stored data and the seed, so the schedule and the final weights equal those of an
uninterrupted run (trial numbers may differ: a failed trial keeps its number).
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
from optuna_gamma.driver.checkpoint import crash_point
from optuna_gamma.driver.checkpoint import derive_seed
from optuna_gamma.driver.checkpoint import run_lock
from optuna_gamma.driver.results import PerEpochResult
from optuna_gamma.driver.results import ScheduleEntry
from optuna_gamma.driver.samplers import SamplerFactory
from optuna_gamma.driver.space import SearchSpace


if TYPE_CHECKING:
    import torch

    from optuna_gamma.data import DatasetSplits


__all__ = ["DEFAULT_WARM_START", "WARM_START_MEASUREMENT", "tune_per_epoch"]

#: Whether the previous epoch's best lr is enqueued as the first trial of the next epoch, by
#: default. Decided by ``benchmarks/driver_warm_start.py`` (see :data:`WARM_START_MEASUREMENT`).
DEFAULT_WARM_START = False

#: The measurement behind :data:`DEFAULT_WARM_START` (written into every result's ``notes``).
WARM_START_MEASUREMENT = (
    "benchmarks/driver_warm_start.py, digits + MLP, gamma sampler, 4 epochs, paired seeds: warm start changed "
    "the final adopted validation kappa by mean -0.0105 (median -0.0057; warm better in 2 of 6 seeds) with "
    "12 trials per epoch and by mean -0.0036 (median -0.0026; 2 of 8 better, 1 tie) with 6 trials; test "
    "accuracy -0.0009 and -0.0003. No benefit, so off by default."
)


def study_name(run: str, epoch: int) -> str:
    """``"{run}/epoch-{epoch:03d}"``."""
    return f"{run}/epoch-{epoch:03d}"


def tune_per_epoch(
    model: Union[str, torch.nn.Module],
    data: Union[str, DatasetSplits],
    *,
    space: SearchSpace | None = None,
    sampler: Union[str, SamplerFactory] = "gamma",
    trials_per_epoch: int | None = None,
    epochs: int = 1,
    kappa: Union[str, Callable[[float, float], float]] = "kappa1",
    storage: Any = None,
    run: str = "run",
    seed: int = 0,
    run_dir: str | None = None,
    warm_start: bool | None = None,
    n_startup_trials: int = 2,
    device: Any = None,
    data_root: Any = None,
    subset: int | None = None,
    download: bool = False,
    keep_trial_states: bool = False,
    progress: bool = False,
) -> PerEpochResult:
    """Tune the learning rate epoch by epoch and return the schedule (thesis fig. 8).

    Args:
        model: A model name of :data:`optuna_gamma.models.MODELS` (built with a seed derived
            from ``seed``) or a ``torch.nn.Module`` (its current weights are the start; it ends
            holding the final adopted weights).
        data: A :class:`~optuna_gamma.data.DatasetSplits` or a dataset name (then loaded from
            ``data_root`` with ``subset``, ``seed`` and ``download``).
        space: The search space (default: lr log-uniform in [1e-3, 0.5], batch 50, weight decay
            1e-3, no momentum).
        sampler: A registry name (:mod:`optuna_gamma.driver.samplers`) or a callable
            ``seed -> sampler`` (called before every trial; see there why).
        trials_per_epoch: Trials per epoch; default 12 (2 start-up + 10 BO, the thesis), the
            grid size for ``grid:N``, 1 for ``fixed``.
        epochs: Number of epochs ``E``.
        kappa: ``"kappa1"``, ``"kappa2"`` or a callable ``(accuracy, loss) -> float``.
        storage: Optuna storage URL or object; default ``sqlite:///<run_dir>/optuna.db``.
        run: Run name, the prefix of the study names.
        seed: Seeds the model's initialisation, the batch orders and the samplers.
        run_dir: Run directory (states, default storage, ``result.json``); default ``./runs/<run>``.
        warm_start: Enqueue the previous epoch's best lr as the next epoch's first trial;
            default :data:`DEFAULT_WARM_START`.
        n_startup_trials: Start-up trials of the model-based samplers.
        device: Torch device (default: CUDA if available, else CPU; bit-exact resume is
            guaranteed on CPU).
        data_root, subset, download: Used when ``data`` is a name.
        keep_trial_states: Keep every trial's state file (default: only the adopted ones).
        progress: Show a progress bar (tqdm, on a terminal only) over the trials of all epochs.

    Returns:
        The :class:`~optuna_gamma.driver.results.PerEpochResult`, also written to
        ``run_dir/result.json``.

    Raises:
        ValueError: Bad arguments (the message names the value), or an existing study of the
            same run that was made with other settings.
    """
    import torch  # noqa: F401  (fail early, with torch's own message, if the extra is missing)

    from optuna_gamma.metrics import evaluate
    from optuna_gamma.training import capture_state
    from optuna_gamma.training import load_state
    from optuna_gamma.training import restore_state
    from optuna_gamma.training import set_hyperparameters
    from optuna_gamma.training import train_one_epoch

    t_start = time.perf_counter()
    _engine.check_common(epochs, seed, run, kappa)
    space = space or SearchSpace()
    plan = _engine.SamplerPlan(sampler, space, trials_per_epoch, n_startup_trials)
    warm = DEFAULT_WARM_START if warm_start is None else bool(warm_start)
    paths = RunPaths(run_dir if run_dir is not None else f"runs/{run}")

    with run_lock(paths):
        storage_obj, storage_url = _engine.resolve_storage(storage, paths)
        splits = _engine.resolve_data(data, data_root=data_root, subset=subset, seed=seed, download=download)
        net, optimizer, current = _engine.prepare_model(model, splits, plan.space, seed, paths)
        n_classes = int(splits.n_classes)
        config = {
            "mode": "per-epoch", "run": run, "run_dir": str(paths.root), "sampler": plan.name, "seed": seed, "trials": plan.trials,
            "kappa": _engine.kappa_name(kappa), "space": plan.space.to_dict(), "warm_start": warm,
            "dataset": getattr(splits, "name", None), "model": model if isinstance(model, str) else type(model).__name__,
        }

        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=epochs * plan.trials, unit="trial", dynamic_ncols=True, disable=None)
        schedule: list[ScheduleEntry] = []
        total_time = 0.0
        try:
            for epoch in range(1, epochs + 1):
                name = study_name(run, epoch)
                study = _engine.open_study(storage_obj, name)
                _engine.check_config(study, {**config, "epoch": epoch})
                adopted = study.user_attrs.get("adopted")
                if adopted is None or not paths.resolve(adopted["state"]).is_file():
                    _engine.fail_stale_trials(study, plan.space.tuned())
                    if plan.grid:
                        _engine.enqueue_once(study, plan.grid_queue(derive_seed(seed, "grid", epoch)))
                    elif warm and schedule:
                        _engine.enqueue_once(study, [{"lr": schedule[-1].lr}])
                    batch_seed = derive_seed(seed, "batches", epoch)
                    start = current

                    def train(params: dict[str, Any], number: int) -> tuple[Any, dict[str, Any]]:
                        restore_state(net, optimizer, start)
                        set_hyperparameters(
                            optimizer, lr=params["lr"], momentum=params["momentum"], weight_decay=params["weight_decay"]
                        )
                        t0 = time.perf_counter()
                        loss = train_one_epoch(
                            net, optimizer, splits.train, batch_size=params["batch_size"], seed=batch_seed, device=device
                        )
                        t_train = time.perf_counter() - t0
                        ev = evaluate(net, splits.valid, n_classes=n_classes, device=device)
                        return capture_state(net, optimizer), {**ev, "train_loss": loss, "train_time": t_train}

                    while True:
                        done = _engine.complete_trials(study)
                        if bar is not None:
                            bar.n = (epoch - 1) * plan.trials + min(len(done), plan.trials)
                            bar.set_description(f"epoch {epoch}/{epochs}")
                            bar.refresh()
                        if len(done) >= plan.trials:
                            break
                        _engine.run_trial(
                            storage=storage_obj, study_name=name, plan=plan,
                            sampler_seed=derive_seed(seed, "sampler", epoch, len(done)), slot=len(done),
                            train=train, paths=paths, epoch=epoch, kappa=kappa,
                        )
                    adopted = _adopt(study, paths, epoch, keep_trial_states)
                done = _engine.complete_trials(study)
                total_time += sum(float(t.user_attrs.get("train_time", 0.0)) + float(t.user_attrs.get("eval_time", 0.0)) for t in done)
                current = load_state(paths.resolve(adopted["state"]))
                schedule.append(ScheduleEntry(
                    epoch=epoch, lr=float(adopted["lr"]), kappa=float(adopted["kappa"]),
                    accuracy=float(adopted["accuracy"]), loss=adopted["loss"], trial_number=int(adopted["trial"]),
                    params=dict(adopted["params"]), metrics=dict(adopted["metrics"]),
                ))
                if bar is not None:
                    bar.set_postfix(lr=f"{schedule[-1].lr:.3g}", kappa=f"{schedule[-1].kappa:.3f}")
        finally:
            if bar is not None:
                bar.close()

        restore_state(net, optimizer, current)
        test = evaluate(net, splits.test, n_classes=n_classes, device=device)
        test_metrics = {k: test[k] for k in ("accuracy", "loss", "sensitivity", "specificity", "mcc", "confusion_matrix")}
        result = PerEpochResult(
            run=run, sampler=plan.name, seed=seed, storage=storage_url, run_dir=str(paths.root), epochs=epochs,
            trials_per_epoch=plan.trials, kappa=_engine.kappa_name(kappa), warm_start=warm, schedule=schedule,
            test=test_metrics, total_time=total_time, wall_time=time.perf_counter() - t_start,
            final_state=str(paths.adopted_state(epochs)), space=plan.space.to_dict(),
            notes={"warm_start_default": DEFAULT_WARM_START, "warm_start_measurement": WARM_START_MEASUREMENT},
        )
        study.set_user_attr("test", test_metrics)  # the last epoch's study carries the run's test metrics
        result.save(paths.result)
        return result


def _adopt(study: Any, paths: RunPaths, epoch: int, keep_trial_states: bool) -> dict[str, Any]:
    """The Determinant: copy the best trial's state to ``adopted.pt``, then mark the study."""
    trials = _engine.complete_trials(study)
    best = _engine.best_trial(trials)
    src = paths.resolve(best.user_attrs["state"])
    dst = paths.adopted_state(epoch)
    atomic_copy(src, dst)
    crash_point("after_adopt_copy")
    ua = best.user_attrs
    adopted = {
        "trial": best.number, "lr": float(best.params["lr"]), "kappa": float(best.value),
        "accuracy": ua["accuracy"], "loss": ua["loss"], "params": ua["params"],
        "metrics": {k: ua[k] for k in ("sensitivity", "specificity", "mcc", "train_loss", "diverged")},
        "state": paths.relative(dst), "trial_state": ua["state"],
    }
    study.set_user_attr("adopted", adopted)
    if not keep_trial_states:
        for t in trials:
            _engine.remove_quietly(paths.resolve(t.user_attrs["state"]))
        for stale in paths.epoch_dir(epoch).glob("trial-*.pt"):
            _engine.remove_quietly(stale)
    return adopted
