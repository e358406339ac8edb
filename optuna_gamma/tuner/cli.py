"""The ``optuna-gamma`` command (also ``python -m optuna_gamma``).

Subcommands:

``tune``
    Tune per epoch (``--mode per-epoch``, thesis fig. 8) or for a whole training (``--mode
    whole``, thesis tables 8-10), with the built-in thesis trainer (``--dataset``, ``--model``)
    or your own (``--trainer module:factory`` or ``--trainer path/to/file.py:factory``). Shows a
    progress bar on a terminal and one log line per adopted epoch, prints a summary and the
    optuna-dashboard command. Re-running the same command resumes the run.
``worker``
    Join a run (``--storage``, ``--artifacts``, ``--run``) from any machine and train its trials
    until it is done; the trainer (``--trainer``) and the artifact store come from the worker's
    own command line and are only checked against the run's record (the same trainer; a store
    holding the run's marker file); the other settings are read from the storage as data
    (docs/cluster.md, "Trust model").
``report``
    Build the HTML report from an existing storage (every run in it, or ``--run`` ones).

Every bad argument or unusable environment (unknown dataset, model, sampler or device; a bad
learning-rate range; missing data; a storage that cannot be opened; a run directory that is a
file, read-only or full) prints exactly one line on stderr and exits with status 2, before any
trial starts where it can be known then. Storage passwords are never printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
from pathlib import Path
import re
import sys
from typing import Any
from typing import NoReturn
from typing import Sequence

import optuna
from optuna.distributions import FloatDistribution

from optuna_gamma import __version__
from optuna_gamma.tuner import tune_per_epoch
from optuna_gamma.tuner import tune_whole
from optuna_gamma.tuner._logging import quiet_reported_trial_failures
from optuna_gamma.tuner._logging import set_verbosity
from optuna_gamma.tuner.builtin import ThesisTrainer
from optuna_gamma.tuner.config import AVERAGE_WINDOW
from optuna_gamma.tuner.config import DEFAULT_NUM_THREADS
from optuna_gamma.tuner.config import FINAL_MODEL_CHOICES
from optuna_gamma.tuner.config import SettingError
from optuna_gamma.tuner.config import TunerConfig
from optuna_gamma.tuner.errors import MissingExtraError
from optuna_gamma.tuner.errors import require_extra
from optuna_gamma.tuner.errors import TunerError
from optuna_gamma.tuner.execution.failures import cli_exit_status
from optuna_gamma.tuner.execution.failures import is_reported_failure
from optuna_gamma.tuner.execution.worker_setup import wait_for_run
from optuna_gamma.tuner.execution.worker_setup import worker_setup
from optuna_gamma.tuner.execution.workers import run_worker
from optuna_gamma.tuner.frontend import cli_flag
from optuna_gamma.tuner.persistence.runfiles import default_run_dir
from optuna_gamma.tuner.persistence.storage import dashboard_command
from optuna_gamma.tuner.persistence.storage import mask_url
from optuna_gamma.tuner.persistence.storage import open_storage
from optuna_gamma.tuner.reporting.report import build_report
from optuna_gamma.tuner.reporting.report import collect_runs
from optuna_gamma.tuner.results import summary_text
from optuna_gamma.tuner.search.samplers import SAMPLER_CHOICES
from optuna_gamma.tuner.search.space import SearchSpace
from optuna_gamma.tuner.trainer_ref import load_trainer
from optuna_gamma.tuner.trainer_ref import TrainerRef


__all__ = ["DATA_ROOT_ENV", "main"]

#: The environment variable naming the dataset folder when ``--data-root`` is not given.
DATA_ROOT_ENV = "OPTUNA_GAMMA_DATA_ROOT"

DATASETS = (
    "mnist",
    "fashion-mnist",
    "cifar10",
    "digits",
)  # = builtin.data.DATASETS (no torch import)
MODELS = ("thesis-cnn", "keras-cifar-cnn", "mlp")  # = builtin.models.MODELS
OBJECTIVES = ("kappa1", "kappa2", "accuracy", "loss")


class _Parser(argparse.ArgumentParser):
    """``error`` writes one line (``prog: error: message``) and exits 2, without the usage
    block."""

    def error(self, message: str) -> NoReturn:
        one_line = " ".join(str(message).split())
        self.exit(2, f"{self.prog}: error: {one_line}\n")


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None


def _average_window(text: str) -> int | None:
    if text.strip().lower() == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 or 'all', got {text!r}")
    return value


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def _build_parser() -> _Parser:
    parser = _Parser(
        prog="optuna-gamma",
        description="Per-epoch hyperparameter tuning with Optuna (GammaBOSampler and baselines).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser(
        "tune",
        help="tune per epoch or for a whole training",
        description="Tune hyperparameters epoch by epoch (thesis fig. 8) or for a whole training.",
    )
    d = t.add_argument_group("training (built-in thesis trainer, or your own)")
    d.add_argument(
        "--trainer",
        default=None,
        metavar="MODULE:FACTORY",
        help="your trainer: module:attr or path/to/file.py:attr (a Trainer, or a callable "
        "returning one)",
    )
    d.add_argument(
        "--trainer-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keyword argument for the trainer factory (VALUE read as JSON when it parses); "
        "repeatable",
    )
    d.add_argument(
        "--dataset", choices=DATASETS, default=None, help="built-in trainer: the dataset"
    )
    d.add_argument(
        "--data-root",
        default=os.environ.get(DATA_ROOT_ENV) or None,
        help=f"folder holding the dataset files (not needed for digits; default "
        f"${DATA_ROOT_ENV} when set)",
    )
    d.add_argument(
        "--subset",
        type=int,
        default=None,
        help="training images used (train + validation), e.g. 500",
    )
    d.add_argument(
        "--valid-fraction",
        type=float,
        default=0.2,
        help="share of the training images held out for validation (default %(default)s)",
    )
    d.add_argument(
        "--download",
        action="store_true",
        help="let torchvision download a dataset not found locally",
    )
    d.add_argument(
        "--model",
        choices=MODELS,
        default=None,
        help="default: thesis-cnn for (fashion-)mnist, keras-cifar-cnn for cifar10, mlp for "
        "digits",
    )
    s = t.add_argument_group("study")
    s.add_argument(
        "--mode",
        choices=("per-epoch", "whole"),
        default="per-epoch",
        help="per-epoch: one study per epoch, adopting the best trial's state (thesis fig. 8); "
        "whole: constant settings for a whole training (default %(default)s)",
    )
    s.add_argument(
        "--sampler",
        default="gamma",
        help="one of: " + ", ".join(SAMPLER_CHOICES) + " (default %(default)s)",
    )
    s.add_argument(
        "--policy",
        choices=("population", "thesis"),
        default=None,
        help="how the run spends its compute: 'population' (default; settings that race, "
        "commit, and sampled explorers) or 'thesis' (the thesis's T trials per epoch, best "
        "adopted; the default for grid:N and fixed:LR)",
    )
    s.add_argument(
        "--budget",
        type=int,
        default=None,
        help="compute in training epochs (one epoch of one model), spent exactly (--policy "
        "thesis: whole epochs of T trials, budget // T of them); the policy derives the epochs "
        "from it (give --budget or --epochs)",
    )
    s.add_argument(
        "--final-model",
        choices=FINAL_MODEL_CHOICES,
        default="auto",
        help="which state the run returns and tests: 'auto' (default: 'average' where the "
        "default policy races settings serially, with 1-3 workers; 'last' otherwise), 'last', "
        "'best' (the peak of the validation curve, when it stands clearly above the curve's "
        "end) or 'average' (the last state averaged with earlier states of its lineage, where "
        "that validates as well)",
    )
    s.add_argument(
        "--average-window",
        type=_average_window,
        default=AVERAGE_WINDOW,
        metavar="N|all",
        help="with --final-model average (or auto where it means that): how many of the final "
        f"lineage's last states the average tries (default {AVERAGE_WINDOW}); 'all' tries every "
        "one, which pays where the model overfits early (docs/when-it-pays.md)",
    )
    s.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs E (per-epoch: E studies; whole: each trial trains E) (default 1); or give "
        "--budget and the policy derives them",
    )
    s.add_argument(
        "--trials-per-epoch",
        "--trials",
        dest="trials_per_epoch",
        type=int,
        default=None,
        help="trials per epoch: thesis policy and whole mode (trainings): default 12, grid "
        "size for grid:N, 1 for fixed; population policy: trials at once (default: --workers, "
        "at least 1)",
    )
    s.add_argument(
        "--n-startup-trials",
        type=int,
        default=2,
        help="random start-up trials of the model-based samplers (default %(default)s)",
    )
    s.add_argument(
        "--objective",
        "--kappa",
        dest="objective",
        type=_objective_flag,
        default="kappa1",
        metavar="{kappa1,kappa2,accuracy,loss,min:NAME,max:NAME}",
        help="what each trial returns (unclipped kappa, the clipped one recorded too; "
        "min:NAME / max:NAME: a metric of your trainer's evaluate(), e.g. min:mse)",
    )
    s.add_argument(
        "--kappa-lambda", type=float, default=None, help="lambda of kappa1/kappa2 (default 0.5)"
    )
    s.add_argument(
        "--warm-start",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="enqueue the previous epoch's best parameters first (off: it did not help)",
    )
    s.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seeds the initial model, the batches and the samplers (default %(default)s)",
    )
    s.add_argument(
        "--storage",
        default=None,
        help="RDB URL (sqlite:///runs.db, postgresql://...) or journal file path (default "
        "<run-dir>/journal.log)",
    )
    s.add_argument(
        "--artifacts", default=None, help="where training states go (default <run-dir>/artifacts)"
    )
    s.add_argument(
        "--run", default=None, help="run name (default <dataset>-<model>-<sampler>-s<seed>)"
    )
    s.add_argument(
        "--run-dir",
        default=None,
        help="default storage, artifacts and result.json (default runs/<run>)",
    )
    h = t.add_argument_group(
        "search space (built-in trainer; --lr-* also override a trainer's lr range)"
    )
    h.add_argument("--lr-low", type=float, default=None, help="default 1e-3")
    h.add_argument("--lr-high", type=float, default=None, help="default 0.5")
    h.add_argument(
        "--lr-linear", action="store_true", help="linear instead of log scale (grid:N too)"
    )
    h.add_argument(
        "--batch-size", type=int, default=50, help="mini-batch size (default %(default)s)"
    )
    h.add_argument(
        "--tune-batch-size",
        type=_ints,
        default=None,
        metavar="B1,B2,...",
        help="batch-size choices",
    )
    h.add_argument(
        "--weight-decay", type=float, default=1e-3, help="SGD weight decay (default %(default)s)"
    )
    h.add_argument(
        "--tune-weight-decay",
        type=_floats,
        default=None,
        metavar="LOW,HIGH",
        help="tune the weight decay in this range (log scale when LOW > 0) instead of fixing it",
    )
    h.add_argument(
        "--momentum", type=float, default=0.0, help="SGD momentum (default %(default)s)"
    )
    h.add_argument(
        "--tune-momentum",
        type=_floats,
        default=None,
        metavar="LOW,HIGH",
        help="tune the momentum in this range instead of fixing it",
    )
    o = t.add_argument_group("execution and output")
    o.add_argument(
        "--device",
        default=None,
        help="torch device (default: cuda if available, else cpu; with --workers N and several "
        "GPUs, one GPU per worker; cuda:K puts every worker on GPU K)",
    )
    o.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_NUM_THREADS,
        help=f"torch threads (default {DEFAULT_NUM_THREADS}; results depend on it)",
    )
    o.add_argument(
        "--workers",
        type=int,
        default=0,
        help="worker processes training an epoch's trials at once (default 0: one after the "
        "other, "
        "bit-identical resume); more can join with 'optuna-gamma worker'",
    )
    o.add_argument(
        "--coordinate",
        action="store_true",
        help="coordinate the run (prepare, wait, write the result) even without local workers: "
        "a cluster's head node",
    )
    o.add_argument(
        "--heartbeat-interval",
        type=int,
        default=10,
        help="seconds between workers' heartbeats on an RDB storage (a dead worker's trial is "
        "retried)",
    )
    o.add_argument(
        "--grace-period",
        type=int,
        default=None,
        help="seconds without a heartbeat before that (default 3x)",
    )
    o.add_argument("--report", default=None, help="write an HTML report here")
    o.add_argument(
        "--keep-trial-states",
        action="store_true",
        help="keep every trial's training state (default: only the adopted ones)",
    )
    o.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the run's studies, states and result.json first and start again (a run "
        "made with other settings is refused otherwise)",
    )
    o.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (default: a bar on a terminal, none otherwise)",
    )

    w = sub.add_parser(
        "worker",
        help="join a run and train its trials (on any machine)",
        description="Join a run started by 'optuna-gamma tune' and train its trials until it is "
        "done.",
    )
    w.add_argument(
        "--storage", required=True, help="the run's storage (postgresql://... for many machines)"
    )
    w.add_argument(
        "--artifacts",
        default=None,
        help="the run's artifact store: a shared directory (mounted at any path) or "
        "s3://bucket/prefix (required; it must hold the marker file the run wrote there)",
    )
    w.add_argument("--run", required=True, help="the run's name")
    w.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to SECONDS for the run to appear in the storage (a worker started "
        "together with its head; default 0: stop at once)",
    )
    w.add_argument("--device", default=None, help="torch device of this worker, e.g. cuda:1")
    w.add_argument(
        "--data-root",
        default=os.environ.get(DATA_ROOT_ENV) or None,
        help=f"this machine's dataset folder (built-in trainer; default ${DATA_ROOT_ENV} when "
        "set)",
    )
    w.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_NUM_THREADS,
        help=f"torch threads (default {DEFAULT_NUM_THREADS})",
    )
    w.add_argument(
        "--trainer",
        default=None,
        metavar="MODULE:FACTORY",
        help="the run's --trainer (required for such runs; compared with the run's record, "
        "never taken from the storage)",
    )
    w.add_argument("--trainer-arg", action="append", default=[], metavar="KEY=VALUE")

    r = sub.add_parser("report", help="build the HTML report from an existing storage")
    r.add_argument("--storage", required=True)
    r.add_argument(
        "--run", action="append", default=None, help="run to include (repeatable; default all)"
    )
    r.add_argument("--output", "-o", required=True)
    parser.subparsers = {"tune": t, "worker": w, "report": r}  # type: ignore[attr-defined]
    return parser


#: Flags of the built-in thesis trainer (its data, model and search space): with --trainer
#: they did nothing, silently.
_BUILTIN_ONLY = (
    "dataset",
    "subset",
    "valid_fraction",
    "download",
    "model",
    "batch_size",
    "tune_batch_size",
    "weight_decay",
    "tune_weight_decay",
    "momentum",
    "tune_momentum",
)


def _check_args(args: argparse.Namespace, tune_parser: argparse.ArgumentParser) -> None:
    """Checks of the flags that are not settings of TunerConfig (which checks its own:
    :func:`_config`), naming the flag (ValueError), before anything is loaded."""
    if args.trainer is None and args.dataset is None:
        raise ValueError("give --dataset (built-in thesis trainer) or --trainer MODULE:FACTORY")
    if args.trainer is not None:
        given = [
            "--" + dest.replace("_", "-")
            for dest in _BUILTIN_ONLY
            if getattr(args, dest) != tune_parser.get_default(dest)
        ]
        if given:
            raise ValueError(
                f"{', '.join(given)} belong{'s' if len(given) == 1 else ''} to the built-in "
                "trainer (--dataset) and would do nothing with --trainer: your trainer's "
                "search_space() says what is tuned, and what its factory takes is given as "
                "--trainer-arg KEY=VALUE"
            )
    elif args.trainer_arg:
        raise ValueError(
            "--trainer-arg passes arguments to the factory of --trainer MODULE:FACTORY; the "
            "built-in trainer takes its flags (--dataset, --subset, --model, ...)"
        )
    if args.lr_low is not None and args.lr_low <= 0:
        raise ValueError(
            f"--lr-low must be > 0 (a learning rate of 0 does not train), got {args.lr_low:g}"
        )
    lo = 1e-3 if args.lr_low is None else args.lr_low
    hi = 0.5 if args.lr_high is None else args.lr_high
    if lo >= hi:
        raise ValueError(f"--lr-low must be < --lr-high, got {lo:g} >= {hi:g}")
    if args.kappa_lambda is not None and not 0 < args.kappa_lambda <= 1:
        raise ValueError(f"--kappa-lambda must be in (0, 1], got {args.kappa_lambda:g}")
    if args.report and (Path(args.report).is_dir() or args.report.endswith(("/", os.sep))):
        # before, the run trained first and then stopped here, in build_report
        raise ValueError(
            f"--report {args.report!r} is a directory; give a file name such as "
            f"{str(Path(args.report) / 'report.html')!r}"
        )
    if args.kappa_lambda is not None and not args.objective.startswith("kappa"):
        raise ValueError(
            f"--kappa-lambda weighs the loss in kappa1 and kappa2; --objective {args.objective} "
            "has no lambda"
        )
    if args.trainer is None:
        if args.dataset != "digits" and args.data_root is None and not args.download:
            raise ValueError(
                f"--data-root is required for {args.dataset!r} (or set ${DATA_ROOT_ENV}, or pass "
                "--download)"
            )
        # (digits ship with scikit-learn: no data root is read for them)
        if (
            args.dataset != "digits"
            and args.data_root is not None
            and not Path(args.data_root).is_dir()
        ):
            raise ValueError(f"--data-root {args.data_root!r} is not a directory")


def _space(args: argparse.Namespace, trainer: Any) -> Any:
    lo = 1e-3 if args.lr_low is None else args.lr_low
    hi = 0.5 if args.lr_high is None else args.lr_high
    if args.trainer is None:

        def rng(name: str, v: list[float] | None) -> Any:
            if v is None:
                return None
            if len(v) != 2:
                raise ValueError(f"--tune-{name} needs LOW,HIGH, got {v!r}")
            return (v[0], v[1])

        return SearchSpace(
            lr_low=lo,
            lr_high=hi,
            lr_log=not args.lr_linear,
            batch_size=list(args.tune_batch_size) if args.tune_batch_size else args.batch_size,
            weight_decay=rng("weight-decay", args.tune_weight_decay) or args.weight_decay,
            momentum=rng("momentum", args.tune_momentum) or args.momentum,
        )
    get_space = getattr(trainer, "search_space", None)
    space = dict(get_space() or {}) if callable(get_space) else {}
    if not space:
        raise ValueError(f"trainer {args.trainer!r} has no search_space(); give it one")
    if args.lr_low is not None or args.lr_high is not None or args.lr_linear:
        old = space.get("lr")
        if not isinstance(old, FloatDistribution):
            raise ValueError(
                "--lr-low/--lr-high/--lr-linear need a float 'lr' in the trainer's search space"
            )
        space["lr"] = FloatDistribution(
            old.low if args.lr_low is None else lo,
            old.high if args.lr_high is None else hi,
            log=old.log and not args.lr_linear,
        )
    return space


def _trainer_args(items: list[str]) -> dict[str, Any]:
    kwargs = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValueError(f"--trainer-arg needs KEY=VALUE, got {item!r}")
        kwargs[key] = _json_or_text(value)
    return kwargs


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _setup_logging() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    set_verbosity(logging.INFO)
    quiet_reported_trial_failures()


def _objective_flag(value: str) -> str:
    """``--objective``: a name of :data:`OBJECTIVES`, or ``min:NAME`` / ``max:NAME``."""
    from optuna_gamma.tuner.search.objectives import resolve_objective

    if value in OBJECTIVES or value[:4].lower() in ("min:", "max:"):
        try:
            resolve_objective(value)  # the one parser of objective names
            return value
        except ValueError:
            pass
    raise argparse.ArgumentTypeError(
        f"invalid choice: {value!r} (choose from {', '.join(OBJECTIVES)}, or min:NAME / "
        "max:NAME for a metric your evaluate() returns)"
    )


def _config(args: argparse.Namespace) -> TunerConfig:
    """The run's settings from the flags (run name, run directory and trainer reference are
    filled in once the trainer is loaded). A bad value is TunerConfig's ValueError."""
    sampler = args.sampler
    if args.lr_linear and sampler.lower().startswith("grid:") and sampler.count(":") == 1:
        sampler += ":linear"  # --lr-linear also spaces a grid's learning rates linearly
    objective: Any = args.objective
    if args.kappa_lambda is not None and objective.startswith("kappa"):
        objective = f"{objective}:{args.kappa_lambda}"
    return TunerConfig(
        run=args.run,
        run_dir=args.run_dir,
        storage=args.storage,
        artifacts=args.artifacts,
        sampler=sampler,
        policy=args.policy,
        budget=args.budget,
        final_model=args.final_model,
        average_window=args.average_window,
        trials_per_epoch=args.trials_per_epoch,
        epochs=args.epochs,
        objective=objective,
        seed=args.seed,
        n_startup_trials=args.n_startup_trials,
        warm_start=args.warm_start,
        device=args.device,
        num_threads=args.threads,
        keep_trial_states=args.keep_trial_states,
        overwrite=args.overwrite,
        progress=False if args.no_progress else None,
        workers=args.workers,
        coordinate=args.coordinate,
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
    )


def _flag_message(err: ValueError) -> str:
    """``err`` as a command-line user reads it: a bad setting under its flag's name
    (``--trials-per-epoch: must be an int >= 1, got 0``)."""
    if isinstance(err, SettingError):
        requirement = err.requirement.removesuffix(" or None")  # "not given" is no flag value
        return f"{cli_flag(err.setting)}: must be {requirement}, got {err.value!r}"
    return str(err)


def _tune(parser: _Parser, args: argparse.Namespace) -> int:
    tune_parser = parser.subparsers["tune"]  # type: ignore[attr-defined]
    try:
        _check_args(args, tune_parser)
        config = _config(args)  # every setting checked once, by TunerConfig
        trainer_ref = None
        if args.trainer is not None:
            trainer_ref = TrainerRef(args.trainer, _trainer_args(args.trainer_arg))
            trainer = load_trainer(trainer_ref)
            trainer_ref = trainer_ref.resolved()  # local workers in another folder find it too
            label = f"{Path(args.trainer.rpartition(':')[0]).stem}"
        else:
            trainer = ThesisTrainer(
                args.dataset,
                args.data_root,
                model=args.model,
                subset=args.subset,
                valid_fraction=args.valid_fraction,
                data_seed=args.seed,
                download=args.download,
                batch_size=args.batch_size,
                weight_decay=args.weight_decay,
                momentum=args.momentum,
            )
            label = f"{args.dataset}-{trainer.model}"
        space = _space(args, trainer)
    except ValueError as err:
        tune_parser.error(_flag_message(err))

    sampler = str(config.sampler)  # its canonical name
    run = args.run or re.sub(r"[^A-Za-z0-9_.:=-]", "_", f"{label}-{sampler}-s{args.seed}")
    run_dir = args.run_dir or str(default_run_dir(run))
    _setup_logging()

    try:
        config = dataclasses.replace(config, run=run, run_dir=run_dir, trainer_ref=trainer_ref)
        if args.trainer is None:
            data = trainer.data  # load now: a missing file is an argument error
            print(
                f"run {run!r}: {args.mode}, sampler {sampler}, {args.dataset} "
                f"({len(data.train)} train / "
                f"{len(data.valid)} valid / {len(data.test)} test), model {trainer.model}",
                file=sys.stderr,
            )
        else:
            print(
                f"run {run!r}: {args.mode}, sampler {sampler}, trainer {args.trainer}",
                file=sys.stderr,
            )
        tune = tune_per_epoch if args.mode == "per-epoch" else tune_whole
        result = tune(trainer, space, config)
    except (ValueError, FileNotFoundError, TunerError, OSError) as err:
        if is_reported_failure(err):  # a trainer's error: its traceback (cli_exit_status)
            raise
        tune_parser.error(_one_line(err, where=_writing(args, run_dir)))
    print(summary_text(result, cli=True))
    print(f"result: {Path(result.run_dir) / 'result.json'}")
    if args.report:
        try:
            class_names = (
                list(getattr(trainer.data, "class_names", []) or [])
                if args.trainer is None
                else None
            )
            path = build_report(
                _storage_arg(args.storage, result.run_dir),
                args.report,
                class_names=class_names or None,
            )
        except (ValueError, OSError) as err:
            tune_parser.error(_one_line(err))
        print(f"report: {path}")
    print(f"dashboard: {dashboard_command(result.storage, result.artifacts)}")
    return 0


def _one_line(err: BaseException, where: str = "") -> str:
    """``err`` in one line; an OSError that names no file (a full disk met inside Optuna's
    storage or artifact code) is followed by ``where`` (the paths the run writes)."""
    text = (
        str(err)
        if not isinstance(err, OSError) or not err.filename
        else f"{err.strerror}: {err.filename!r}"
    )
    if isinstance(err, OSError) and not err.filename and where:
        text = f"{text} ({where})"
    return " ".join(text.split()) or type(err).__name__


def _writing(args: argparse.Namespace, run_dir: str) -> str:
    storage = mask_url(_storage_arg(args.storage, run_dir))
    artifacts = args.artifacts or str(Path(run_dir) / "artifacts")
    return (
        f"while writing storage {storage!r}, artifacts {artifacts!r} or run directory {run_dir!r}"
    )


def _storage_arg(storage: str | None, run_dir: str) -> str:
    return storage if storage is not None else str(Path(run_dir) / "journal.log")


def _worker(parser: _Parser, args: argparse.Namespace) -> int:
    """``optuna-gamma worker``: the trainer and the artifact store from this command line, the
    run's settings from its storage (compared, never executed: :mod:`.worker_setup`)."""
    worker_parser = parser.subparsers["worker"]  # type: ignore[attr-defined]
    _setup_logging()
    try:
        if args.threads < 1:
            raise ValueError(f"--threads: must be an int >= 1, got {args.threads}")
        ref = None
        if args.trainer is not None:
            ref = TrainerRef(args.trainer, _trainer_args(args.trainer_arg))
        if args.wait < 0:
            raise ValueError(f"--wait: must be a number of seconds >= 0, got {args.wait:g}")
        storage, shown = wait_for_run(args.storage, args.run, args.wait)
        setup = worker_setup(
            storage,
            shown,
            run=args.run,
            storage_arg=args.storage,
            trainer_ref=ref,
            artifacts=args.artifacts,
            data_root=args.data_root,
            device=args.device,
            threads=args.threads,
        )
        summary = run_worker(setup["trainer"], setup["space"], setup["config"], setup["mode"])
    except (ValueError, FileNotFoundError, TunerError, OSError) as err:
        worker_parser.error(_one_line(err))
    if summary["trials"] == 0:
        print(f"worker {summary['worker']}: nothing to do: {summary['reason']}")
    else:
        print(
            f"worker {summary['worker']}: {summary['reason']}; it completed {summary['trials']} "
            f"trials"
        )
    return 0


def _report(parser: _Parser, args: argparse.Namespace) -> int:
    report_parser = parser.subparsers["report"]  # type: ignore[attr-defined]
    _setup_logging()
    try:
        storage, shown = open_storage(args.storage, read_only=True)
        path = build_report(storage, args.output, runs=args.run)
    except (ValueError, TunerError, OSError) as err:
        report_parser.error(_one_line(err))
    print(f"report: {path}")
    dirs: list[str | None] = list(_artifact_dirs(storage, args.run)) or [None]
    for artifacts in dirs:
        print(f"dashboard: {dashboard_command(shown, artifacts)}")
    return 0


def _artifact_dirs(storage: Any, runs: list[str] | None) -> list[str]:
    """The artifact directories the runs in ``storage`` recorded (``runs``: only those), so
    that the printed dashboard command can download their states (one command per folder)."""
    found = collect_runs(storage)
    dirs = {
        str(info["config"].get("artifacts"))
        for run, info in found.items()
        if (runs is None or run.split("/")[0] in runs)
        and info["config"].get("artifacts")
        and "://" not in str(info["config"].get("artifacts"))
    }
    return sorted(dirs)


def _require_extras(parser: _Parser, args: argparse.Namespace) -> None:
    """The packages the command will need, before it starts (one line, exit 2, if missing):
    training needs torch, the built-in trainer scikit-learn for its splits (torchvision to
    download), a report plotly."""
    command = args.command
    if command == "tune":
        needs = ["torch"]
        if args.trainer is None:
            needs += ["sklearn", *(["torchvision"] if args.download else [])]
        needs += ["plotly"] if args.report else []
    else:
        needs = ["torch"] if command == "worker" else ["plotly"]
    try:
        require_extra("this command", *needs)
    except MissingExtraError as err:
        parser.subparsers[command].error(str(err))  # type: ignore[attr-defined]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``optuna-gamma``; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    _require_extras(parser, args)
    if args.command == "tune":
        return cli_exit_status(lambda: _tune(parser, args))
    if args.command == "worker":
        return cli_exit_status(lambda: _worker(parser, args))
    return _report(parser, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
