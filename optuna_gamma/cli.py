"""The ``optuna-gamma`` command (also ``python -m optuna_gamma``).

Subcommands:

``tune``
    Run the per-epoch learning-rate study (``--mode per-epoch``, thesis fig. 8) or the
    whole-training study (``--mode whole``, thesis tables 8-10) on a dataset, with a progress bar,
    a summary table at the end, an optional HTML report, and the optuna-dashboard command for the
    storage. Re-running the same command after an interruption resumes the run.
``report``
    Build the HTML report from an existing storage (every run in it, or ``--run`` ones).

Bad arguments (unknown dataset, model or sampler, a bad learning-rate range, missing data files)
print exactly one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import re
import sys
from typing import Any
from typing import NoReturn
from typing import Sequence


__all__ = ["main"]

DATASETS = ("mnist", "fashion-mnist", "cifar10", "digits")  # = optuna_gamma.data.DATASETS (no torch import)
MODELS = ("thesis-cnn", "keras-cifar-cnn", "mlp")  # = optuna_gamma.models.MODELS
_DEFAULT_MODEL = {"mnist": "thesis-cnn", "fashion-mnist": "thesis-cnn", "cifar10": "keras-cifar-cnn", "digits": "mlp"}


class _Parser(argparse.ArgumentParser):
    """``error`` writes one line (``prog: error: message``) and exits 2, without the usage block."""

    def error(self, message: str) -> NoReturn:
        one_line = " ".join(str(message).split())
        self.exit(2, f"{self.prog}: error: {one_line}\n")


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _build_parser() -> _Parser:
    from optuna_gamma.driver.samplers import SAMPLER_CHOICES

    parser = _Parser(prog="optuna-gamma", description="Per-epoch learning-rate studies with Optuna (GammaBOSampler and baselines).")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("tune", help="run a per-epoch or whole-training learning-rate study",
                       description="Tune the learning rate epoch by epoch (thesis fig. 8) or for a whole training.")
    d = t.add_argument_group("data and model")
    d.add_argument("--dataset", required=True, choices=DATASETS)
    d.add_argument("--data-root", default=None, help="folder holding the dataset files (not needed for digits)")
    d.add_argument("--subset", type=int, default=None, help="training images used (train + validation), e.g. 500")
    d.add_argument("--valid-fraction", type=float, default=0.2)
    d.add_argument("--download", action="store_true", help="let torchvision download a dataset not found locally")
    d.add_argument("--model", choices=MODELS, default=None,
                   help="default: thesis-cnn for (fashion-)mnist, keras-cifar-cnn for cifar10, mlp for digits")
    s = t.add_argument_group("study")
    s.add_argument("--mode", choices=("per-epoch", "whole"), default="per-epoch")
    s.add_argument("--sampler", default="gamma", help="one of: " + ", ".join(SAMPLER_CHOICES))
    s.add_argument("--epochs", type=int, default=1)
    s.add_argument("--trials-per-epoch", "--trials", dest="trials", type=int, default=None,
                   help="trials per epoch (whole mode: trainings); default 12, grid size for grid:N, 1 for fixed")
    s.add_argument("--n-startup-trials", type=int, default=2)
    s.add_argument("--kappa", choices=("kappa1", "kappa2"), default="kappa1")
    s.add_argument("--warm-start", action=argparse.BooleanOptionalAction, default=None,
                   help="enqueue the previous epoch's best lr first (default: the measured default)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--storage", default=None, help="Optuna storage URL (default sqlite:///<run-dir>/optuna.db)")
    s.add_argument("--run", default=None, help="run name (default <dataset>-<model>-<sampler>-s<seed>)")
    s.add_argument("--run-dir", default=None, help="states and result.json (default runs/<run>)")
    h = t.add_argument_group("search space")
    h.add_argument("--lr-low", type=float, default=1e-3)
    h.add_argument("--lr-high", type=float, default=0.5)
    h.add_argument("--lr-linear", action="store_true", help="linear instead of log scale (grid:N too)")
    h.add_argument("--batch-size", type=int, default=50)
    h.add_argument("--tune-batch-size", type=_ints, default=None, metavar="B1,B2,...", help="batch-size choices")
    h.add_argument("--weight-decay", type=float, default=1e-3)
    h.add_argument("--tune-weight-decay", type=_floats, default=None, metavar="LOW,HIGH")
    h.add_argument("--momentum", type=float, default=0.0)
    h.add_argument("--tune-momentum", type=_floats, default=None, metavar="LOW,HIGH")
    o = t.add_argument_group("output")
    o.add_argument("--report", default=None, help="write an HTML report here")
    o.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    o.add_argument("--keep-trial-states", action="store_true")
    o.add_argument("--no-progress", action="store_true")

    r = sub.add_parser("report", help="build the HTML report from an existing storage")
    r.add_argument("--storage", required=True)
    r.add_argument("--run", action="append", default=None, help="run to include (repeatable; default all)")
    r.add_argument("--output", "-o", required=True)
    parser.subparsers = {"tune": t, "report": r}  # type: ignore[attr-defined]
    return parser


def _space(args: argparse.Namespace) -> Any:
    from optuna_gamma.driver.space import SearchSpace

    def rng(name: str, v: list[float] | None) -> Any:
        if v is None:
            return None
        if len(v) != 2:
            raise ValueError(f"--tune-{name} needs LOW,HIGH, got {v!r}")
        return (v[0], v[1])

    return SearchSpace(
        lr_low=args.lr_low, lr_high=args.lr_high, lr_log=not args.lr_linear,
        batch_size=list(args.tune_batch_size) if args.tune_batch_size else args.batch_size,
        weight_decay=rng("weight-decay", args.tune_weight_decay) or args.weight_decay,
        momentum=rng("momentum", args.tune_momentum) or args.momentum,
    )


def _sampler_arg(args: argparse.Namespace) -> str:
    name = args.sampler
    if args.lr_linear and name.lower().startswith("grid:") and name.count(":") == 1:
        name += ":linear"
    return name


def _dashboard_command(storage_url: str) -> str:
    return f"optuna-dashboard {storage_url}"


def _summary(result: Any) -> str:
    lines = []
    if result.mode == "per-epoch":
        lines.append(f"{'epoch':>5}  {'lr':>10}  {'kappa':>8}  {'val acc':>8}  {'trial':>5}")
        for e in result.schedule:
            lines.append(f"{e.epoch:>5}  {e.lr:>10.4g}  {e.kappa:>8.4f}  {e.accuracy:>8.4f}  {e.trial_number:>5}")
    else:
        lines.append(f"best lr {result.best_lr:.4g}  kappa {result.best_kappa:.4f}  val acc {result.valid['accuracy']:.4f}")
    t = result.test
    lines.append(
        f"test: accuracy {t['accuracy']:.4f}  sensitivity {t['sensitivity']:.4f}  specificity {t['specificity']:.4f}"
        f"  MCC {t['mcc']:.4f}   compute {result.total_time:.1f} s, wall {result.wall_time:.1f} s"
    )
    return "\n".join(lines)


def _tune(parser: _Parser, args: argparse.Namespace) -> int:
    from optuna_gamma.driver.samplers import parse_sampler

    tune_parser = parser.subparsers["tune"]  # type: ignore[attr-defined]
    try:
        sampler = _sampler_arg(args)
        spec = parse_sampler(sampler)
        space = _space(args)
        for name in ("epochs",):
            if getattr(args, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
        if args.trials is not None and args.trials < 1:
            raise ValueError(f"--trials-per-epoch must be >= 1, got {args.trials}")
        if args.seed < 0:
            raise ValueError(f"--seed must be >= 0, got {args.seed}")
        if args.dataset != "digits" and args.data_root is None and not args.download:
            raise ValueError(f"--data-root is required for {args.dataset!r} (or pass --download)")
        if args.data_root is not None and not Path(args.data_root).is_dir():
            raise ValueError(f"--data-root {args.data_root!r} is not a directory")
    except ValueError as err:
        tune_parser.error(str(err))

    model = args.model or _DEFAULT_MODEL[args.dataset]
    run = args.run or re.sub(r"[^A-Za-z0-9_.:=-]", "_", f"{args.dataset}-{model}-{spec.name}-s{args.seed}")
    run_dir = args.run_dir or os.path.join("runs", run)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from optuna_gamma.data import load_dataset
    from optuna_gamma.driver import tune_per_epoch
    from optuna_gamma.driver import tune_whole
    from optuna_gamma.driver.checkpoint import RunLockedError
    from optuna_gamma.driver.checkpoint import RunPaths

    try:
        data = load_dataset(args.dataset, args.data_root, subset=args.subset, valid_fraction=args.valid_fraction,
                            seed=args.seed, download=args.download)
    except (ValueError, FileNotFoundError) as err:
        tune_parser.error(str(err))
    storage = args.storage or RunPaths(run_dir).default_storage
    common: dict[str, Any] = dict(
        space=space, sampler=sampler, epochs=args.epochs, kappa=args.kappa, storage=storage, run=run, seed=args.seed,
        run_dir=run_dir, n_startup_trials=args.n_startup_trials, device=args.device,
        keep_trial_states=args.keep_trial_states, progress=not args.no_progress,
    )
    print(f"run {run!r}: {args.mode}, sampler {spec.name}, {args.dataset} ({len(data.train)} train / "
          f"{len(data.valid)} valid / {len(data.test)} test), model {model}", file=sys.stderr)
    print(f"dashboard: {_dashboard_command(storage)}", file=sys.stderr)
    try:
        if args.mode == "per-epoch":
            result = tune_per_epoch(model, data, trials_per_epoch=args.trials, warm_start=args.warm_start, **common)
        else:
            result = tune_whole(model, data, n_trials=args.trials, **common)
    except (ValueError, RunLockedError) as err:
        tune_parser.error(str(err))
    print(_summary(result))
    print(f"result: {Path(run_dir) / 'result.json'}")
    if args.report:
        from optuna_gamma.driver.report import build_report

        path = build_report(storage, args.report, class_names=list(getattr(data, "class_names", []) or []) or None)
        print(f"report: {path}")
    print(f"dashboard: {_dashboard_command(storage)}")
    return 0


def _report(parser: _Parser, args: argparse.Namespace) -> int:
    from optuna_gamma.driver.report import build_report

    report_parser = parser.subparsers["report"]  # type: ignore[attr-defined]
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.storage.startswith("sqlite:///") and not Path(args.storage[len("sqlite:///"):]).is_file():
        report_parser.error(f"no SQLite file at {args.storage!r}")
    try:
        path = build_report(args.storage, args.output, runs=args.run)
    except ValueError as err:
        report_parser.error(str(err))
    print(f"report: {path}")
    print(f"dashboard: {_dashboard_command(args.storage)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``optuna-gamma``; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "tune":
        return _tune(parser, args)
    return _report(parser, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
