"""Shared plumbing of the thesis-reproduction benchmarks (``benchmarks/thesis/*.py``) and of
the tuner's comparison with its peers (``benchmarks/tuner/peers.py``).

Every experiment module writes, under ``benchmarks/thesis/results/`` (``peers``:
``benchmarks/tuner/results/peers/``; or ``--out``):

* ``<name>.jsonl``: one JSON object per finished cell (a cell is one (method, seed, ...) run);
  cells are appended as they finish and skipped on a restart, so every run is resumable;
* ``<name>.md``: the summary table(s), rebuilt from the JSON lines (``--summary-only`` rebuilds
  only these);
* ``<name>.html``: plotly figures; plotly.js is written once beside them (``plotly.min.js``,
  ``include_plotlyjs="directory"``), so the pages work offline without a 4.6 MB copy each;
* ``<name>.meta.json``: per invocation the command line, the machine, library versions and the
  git state.

Compute is counted in *training epochs*: one epoch of one model over the training split (a
per-epoch trial is 1 epoch, a whole-mode trial of ``E`` epochs is ``E``). Seconds of training
plus validation (the tuner's ``compute_time``) are reported beside it.

The tuner runs of a cell live in a scratch run directory (``runs/thesis/...`` by default,
git-ignored) that is deleted once the cell's record is written; an interrupted cell resumes from
it (the tuner's own resume).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
import json
import logging
import math
import os
from pathlib import Path
import platform
import shutil
import subprocess
import sys
import time
from typing import Any

import numpy as np

from benchmarks.machine import cpu_name


REPO = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPO / "benchmarks" / "thesis" / "results"
RUNS_DIR = REPO / "runs" / "thesis"

#: The thesis's learning-rate range (0, 0.5]: the grids are ``0.5 k / N``; the model-based
#: samplers search [THESIS_LR_LOW, 0.5] on a linear scale, whose lower end is the smallest point
#: of the largest grid (0.5 / 500).
THESIS_LR_HIGH = 0.5
THESIS_LR_LOW = 0.5 / 500

#: Objectives of the kappa experiments: the project's (unclipped, docs/design.md §3) and the
#: thesis's literal clipped kappas (``max(0, .)``), and accuracy alone (the thesis's "existing
#: system").
OBJECTIVES = ("accuracy", "kappa1-clipped", "kappa2-clipped", "kappa1", "kappa2")


# --------------------------------------------------------------------------------------------
# command line
def parse_seeds(text: str | Sequence[str]) -> list[int]:
    """``"0-4"``, ``"0,2,5"``, ``["0", "3-4"]`` -> sorted unique ints."""
    parts: list[str] = []
    for item in [text] if isinstance(text, str) else list(text):
        parts += [p for p in str(item).replace(",", " ").split() if p]
    seeds: set[int] = set()
    for p in parts:
        a, sep, b = p.partition("-")
        try:
            lo, hi = int(a), int(b) if sep else int(a)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bad seed list {text!r}: {p!r} is not N or N-M"
            ) from None
        if lo < 0 or hi < lo:
            raise argparse.ArgumentTypeError(f"bad seed range {p!r}")
        seeds.update(range(lo, hi + 1))
    if not seeds:
        raise argparse.ArgumentTypeError(f"no seeds in {text!r}")
    return sorted(seeds)


def common_parser(
    description: str, *, seeds: str, results: Path = RESULTS_DIR
) -> argparse.ArgumentParser:
    """An argument parser with the flags every thesis experiment has."""
    p = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seeds", default=seeds, help=f"seeds, e.g. 0-4 or 0,3 (default {seeds})")
    p.add_argument(
        "--data-root",
        default=None,
        help="dataset root (default $OPTUNA_GAMMA_DATA_ROOT; Fashion-MNIST is also found "
        "in the Debian package's folder)",
    )
    p.add_argument("--out", type=Path, default=results, help=f"results folder (default {results})")
    p.add_argument(
        "--runs-dir",
        type=Path,
        default=RUNS_DIR,
        help="scratch folder of the tuner runs (deleted cell by cell)",
    )
    p.add_argument(
        "--device", default="cpu", help="torch device of the training (cpu, cuda, cuda:K)"
    )
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument(
        "--full",
        action="store_true",
        help="the full-size (thesis-size) version of the experiment, meant for a GPU",
    )
    p.add_argument(
        "--summary-only", action="store_true", help="only rebuild the table and figures"
    )
    p.add_argument("--tag", default=None, help="name of the results files (default: the module's)")
    return p


def start(
    parser: argparse.ArgumentParser, argv: list[str] | None, name: str
) -> tuple[argparse.Namespace, str, Cells]:
    """Parse the command line, quiet the logs, set the threads; the results name and its cells."""
    args = parser.parse_args(argv)
    name = args.tag or name
    quiet()
    set_threads(args.threads)
    return args, name, Cells(args.out / f"{name}.jsonl")


def data_root(arg: str | None, *, required: bool = True) -> str | None:
    """The data root: ``arg``, else ``$OPTUNA_GAMMA_DATA_ROOT``; never a hard-coded path."""
    root = arg or os.environ.get("OPTUNA_GAMMA_DATA_ROOT")
    if root is None and required:
        raise SystemExit("error: no data root: pass --data-root or set OPTUNA_GAMMA_DATA_ROOT")
    return root


def quiet() -> None:
    """Silence Optuna's per-trial log lines and the tuner's info lines."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message=".*independent.*")
    try:
        from optuna_gamma.tuner import set_verbosity

        set_verbosity(logging.WARNING)
    except Exception:  # pragma: no cover - torch-free environment
        pass


def set_threads(n: int) -> None:
    """One torch intra-op thread (the tuner's default) also outside the tuner's runs."""
    os.environ.setdefault("OMP_NUM_THREADS", str(n))
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:  # pragma: no cover
        pass


# --------------------------------------------------------------------------------------------
# results files
class Cells:
    """Append-only JSON-lines store of finished cells, keyed by ``record["key"]``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.records: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            for n, line in enumerate(self.path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    print(
                        f"warning: {self.path}:{n} is not JSON (an interrupted write?); ignored",
                        file=sys.stderr,
                    )
                    continue
                self.records[str(rec["key"])] = rec

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)

    def add(self, record: dict[str, Any]) -> None:
        """Append ``record`` (which has a ``key``) durably."""
        key = str(record["key"])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(_jsonable(record), sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.records[key] = record

    def values(self) -> list[dict[str, Any]]:
        return list(self.records.values())


def run_once(cells: Cells, key: str, fn: Callable[[], dict[str, Any]], t0: float) -> int:
    """Run the cell ``key`` unless it is done: ``fn()`` makes its record. Returns 1 if it ran.

    The record gets ``code``: the git commit the cell ran on (``+dirty`` when tracked files
    differed from it), so that a table can say which code version each of its cells measured.
    """
    if key in cells:
        return 0
    cells.add({"key": key, **fn(), "code": code_version()})
    print(f"{key}: done ({elapsed(t0)})", flush=True)
    return 1


_CODE_VERSION: list[str] = []


def code_version() -> str:
    """Short git commit of the working tree, read once per process (first by :func:`write_meta`,
    i.e. when a run starts); ``+dirty`` if tracked code differs from it (results files do not
    count: they change while a run writes them)."""
    if not _CODE_VERSION:
        commit = _git("rev-parse", "--short=7", "HEAD") or "unknown"
        _CODE_VERSION.append(commit + ("+dirty" if _code_dirty() else ""))
    return _CODE_VERSION[0]


def code_note(
    cells: Iterable[Mapping[str, Any]], what: Callable[[Mapping[str, Any]], str] | None = None
) -> str:
    """One line naming the code versions of ``cells`` (``what(cell)`` labels groups of cells).

    Cells written before the version was recorded per cell count as ``"pre-a624f51"``: they
    come from the issue-10 branch before it met the final sampler (see ``<name>.meta.json``).
    """
    groups: dict[str, dict[str, int]] = {}
    for c in cells:
        label = what(c) if what else "cells"
        version = str(c.get("code") or "pre-a624f51")
        groups.setdefault(label, {}).setdefault(version, 0)
        groups[label][version] += 1
    parts = [
        f"{label}: " + ", ".join(f"{v} ({n})" for v, n in sorted(vs.items()))
        for label, vs in groups.items()
    ]
    return "Code version (git commit, number of cells): " + "; ".join(parts) + "."


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


def _code_dirty() -> bool:
    """Whether the code a run executes (the package, the benchmark modules, the project file)
    differs from the commit; results, tests and docs do not count."""
    return bool(
        _git(
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            "optuna_gamma",
            "benchmarks/*.py",
            "benchmarks/*/*.py",
            "pyproject.toml",
        )
    )


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except Exception:  # pragma: no cover
        return ""


def machine_info() -> dict[str, Any]:
    """CPU, cores, load, library versions and the git state (for ``<name>.meta.json``)."""
    cpu = cpu_name()
    versions: dict[str, str] = {"python": platform.python_version()}
    for mod in ("numpy", "scipy", "optuna", "torch", "ray", "GPy"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:
            pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": load,
        "versions": versions,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": _code_dirty(),
    }


def _command() -> str:
    """This invocation as ``python -m MODULE ARGS`` (the way the modules are run)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and sys.argv:
        return " ".join(["python -m " + spec.name, *sys.argv[1:]])
    return " ".join(sys.argv)


def write_meta(out: Path, name: str, extra: Mapping[str, Any]) -> None:
    """Append this invocation (command, machine, settings) to ``<name>.meta.json``."""
    path = Path(out) / f"{name}.meta.json"
    runs = json.loads(path.read_text()) if path.exists() else []
    code_version()  # fixed now, at the start of the run, for every cell it writes
    runs.append(
        {
            "command": _command(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            **machine_info(),
            **_jsonable(dict(extra)),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(runs, indent=1) + "\n")


def finish_meta(out: Path, name: str, **fields: Any) -> None:
    """Record the end of the last invocation in ``<name>.meta.json`` (wall time, cells run)."""
    path = Path(out) / f"{name}.meta.json"
    if not path.exists():
        return
    runs = json.loads(path.read_text())
    if runs:
        runs[-1].update(_jsonable({"finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"), **fields}))
        path.write_text(json.dumps(runs, indent=1) + "\n")


# --------------------------------------------------------------------------------------------
# objectives and spaces
def thesis_space(low: float = THESIS_LR_LOW, high: float = THESIS_LR_HIGH) -> Any:
    """The thesis's SGD space: ``lr`` linear in ``[low, high]``; batch 50, weight decay 1e-3."""
    from optuna_gamma.tuner import SearchSpace

    return SearchSpace(lr_low=low, lr_high=high, lr_log=False)


def objective(name: str) -> Any:
    """A tuner objective by name (:data:`OBJECTIVES`).

    ``kappa1``/``kappa2`` are the project's unclipped kappas (docs/design.md §3); the ``-clipped``
    ones return the thesis's ``max(0, .)`` value to the study itself, so that a flat region
    reaches the sampler exactly as in the thesis.
    """
    from optuna_gamma.tuner import Objective
    from optuna_gamma.tuner.search.objectives import kappa_1
    from optuna_gamma.tuner.search.objectives import kappa_2

    if name in ("accuracy", "kappa1", "kappa2"):
        return name
    fns = {"kappa1-clipped": kappa_1, "kappa2-clipped": kappa_2}
    if name not in fns:
        raise ValueError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}")
    fn = fns[name]
    # worst = 0: a clipped kappa is never below 0, so a diverged trial is told a value just
    # below 0 and ranks under every healthy one (without a bound the tuner would keep the
    # diverged trial's own clipped 0, tying it with the healthy trials of a flat epoch).
    return Objective(
        name=name,
        fn=lambda m: fn(m["accuracy"], m["loss"]),
        metric_name="kappa",
        requires=("accuracy", "loss"),
        clipped=lambda m: fn(m["accuracy"], m["loss"]),
        worst=lambda start: 0.0,
    )


def union_grid(
    sizes: Iterable[int], high: float = THESIS_LR_HIGH
) -> tuple[list[float], dict[int, list[float]]]:
    """The points of the linear grids ``high * k / N`` (``k = 1..N``) for every ``N``, and their
    union.

    A point shared by two grids (e.g. 0.25 in every even grid) is trained once; each grid's
    result is then read off the union. Points are matched on 12 significant digits.

    Returns:
        (sorted union, ``{N: the points of grid N as they appear in the union}``)
    """
    union: dict[str, float] = {}
    grids: dict[int, list[float]] = {}
    for n in sizes:
        pts = []
        for k in range(1, int(n) + 1):
            v = high * k / n
            key = f"{v:.12g}"
            union.setdefault(key, v)
            pts.append(union[key])
        grids[int(n)] = pts
    return sorted(union.values()), grids


def fixed_points_sampler(
    points: Sequence[float], name: str = "lr", order_seed: int = 0
) -> Callable[[int], Any]:
    """A sampler factory (``seed -> GridSampler``) that visits exactly ``points`` of ``name``.

    Used to train a set of learning rates (a union of grids, one chosen value) through the
    tuner's own engine, i.e. with the same initial state and batch order as any other sampler.
    """
    values = [float(p) for p in points]
    return grid_sampler({name: values}, label=f"points{len(values)}", order_seed=order_seed)


def grid_sampler(
    grid: Mapping[str, Sequence[float]], *, label: str, order_seed: int = 0
) -> Callable[[int], Any]:
    """A sampler factory (``seed -> GridSampler``) over ``grid``, named ``label`` (the name the
    storage records for the sampler).

    The factory ignores the seed the tuner passes: the tuner builds a new sampler for every
    trial with a new seed (``ReseededSampler``), and ``GridSampler`` shuffles its grid with its
    seed, so a seeded factory would map the same grid id to other points in every trial and
    train some points twice and others never. With one fixed ``order_seed`` the order is fixed.
    """
    import optuna

    search_space = {k: list(v) for k, v in grid.items()}

    def factory(seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.GridSampler(search_space, seed=order_seed)

    factory.__name__ = label
    return factory


def run_storage(run_dir: Path) -> Any:
    """The Optuna storage of a run directory whose config names none: the tuner's default, the
    journal file ``journal.log`` in it (:func:`optuna_gamma.tuner.get_storage` opens it)."""
    from optuna_gamma.tuner import get_storage

    path = Path(run_dir) / "journal.log"
    if not path.exists():
        raise FileNotFoundError(f"no tuner storage in {str(run_dir)!r} (expected {path.name})")
    return get_storage(str(path))


def load_trials(run_dir: Path, study_name: str) -> list[Any]:
    """The COMPLETE trials of a study in a run's default storage (public Optuna API)."""
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name=study_name, storage=run_storage(run_dir))
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def trial_seconds(trial: Any) -> float:
    """Training plus validation seconds of one trial (0 for a reused trial)."""
    if "reused_from" in trial.user_attrs:
        return 0.0
    t = trial.user_attrs.get("time") or {}
    return float(t.get("train", 0.0)) + float(t.get("eval", 0.0))


def fresh_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def test_metrics(test: Mapping[str, Any]) -> dict[str, Any]:
    """The test metrics a table reports (the confusion matrix kept as a list)."""
    keys = ("accuracy", "loss", "sensitivity", "specificity", "mcc", "confusion_matrix")
    return {k: test.get(k) for k in keys if k in test}


# --------------------------------------------------------------------------------------------
# statistics and tables
def median(values: Iterable[float | None]) -> float:
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    return float(np.median(v)) if v else math.nan


def quartiles(values: Iterable[float | None]) -> tuple[float, float, float]:
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return (math.nan, math.nan, math.nan)
    q = np.percentile(v, [25, 50, 75])
    return float(q[0]), float(q[1]), float(q[2])


def fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "-"
        return f"{v:.{digits}f}"
    return str(v)


def pct(v: Any, digits: int = 1) -> str:
    """A fraction as a percentage (``0.4712`` -> ``47.1``)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{100 * float(v):.{digits}f}"


def med_iqr(values: Iterable[float | None], scale: float = 100.0, digits: int = 1) -> str:
    """``median [Q1, Q3]`` of ``values * scale``."""
    q1, q2, q3 = quartiles(values)
    if not math.isfinite(q2):
        return "-"
    return f"{q2 * scale:.{digits}f} [{q1 * scale:.{digits}f}, {q3 * scale:.{digits}f}]"


def md_table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None
) -> str:
    """A GitHub Markdown table.

    ``align``: one of ``l``/``r`` per column; default first l, rest r.
    """
    headers = list(headers)
    align = align or ("l" + "r" * (len(headers) - 1))
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(sep) + " |"]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines)


def write_text(out: Path, name: str, suffix: str, text: str) -> Path:
    path = Path(out) / f"{name}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_figures(
    out: Path, name: str, figures: Sequence[Any], title: str, plotly_js: Path | None = None
) -> Path:
    """All ``figures`` in one HTML page; plotly.js once per folder (``plotly.min.js``), or at
    ``plotly_js``, which the page then references by its relative path (one copy for several
    results folders)."""
    path = Path(out) / f"{name}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    js = path.parent / "plotly.min.js" if plotly_js is None else Path(plotly_js)
    include: Any = (
        "directory"
        if plotly_js is None
        else os.path.relpath(js.resolve(), path.parent.resolve()).replace(os.sep, "/")
    )
    parts = [
        f"<html><head><meta charset='utf-8'><title>{title}</title></head><body>",
        f"<h2>{title}</h2>",
    ]
    for i, fig in enumerate(figures):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=include if i == 0 else False))
    parts.append("</body></html>")
    path.write_text("\n".join(parts))
    if not js.exists():  # to_html only references it
        from plotly.offline import get_plotlyjs

        js.parent.mkdir(parents=True, exist_ok=True)
        js.write_text(get_plotlyjs())
    return path


def elapsed(t0: float) -> str:
    s = time.perf_counter() - t0
    return f"{s / 60:.1f} min" if s >= 120 else f"{s:.0f} s"


# --------------------------------------------------------------------------------------------
# running the tuner
def tuner_config(args: Any, run: str, run_dir: Path, **kw: Any) -> Any:
    """A :class:`~optuna_gamma.tuner.TunerConfig` with the command line's device and threads."""
    from optuna_gamma.tuner import TunerConfig

    # The thesis's benchmarks pin its policy (docs/design.md §7), so their tables reproduce.
    return TunerConfig(
        run=run,
        run_dir=run_dir,
        device=args.device,
        num_threads=args.threads,
        progress=False,
        **{"policy": "thesis", **kw},
    )


def run_policy(
    args: Any,
    trainer: Any,
    space: Any,
    run_dir: Path,
    *,
    policy: Any,
    objective: Any,
    seed: int,
) -> dict[str, Any]:
    """A per-epoch run under ``policy`` (a :class:`~optuna_gamma.tuner.policies.Policy`), tested
    at its end. The record: the schedule (the final model's lineage), the adopted state of
    each epoch, the test metrics keyed by the epochs of the final
    model (``test``: the last adopted state), of the peak of the validation curve
    (``test_best``: ``final_model="best"``) and of the average of the final lineage's last
    states (``test_average``, ``averaged_epochs``: ``final_model="average"``) and of the
    average over all of them (``test_average_all``, ``averaged_epochs_all``:
    ``average_window=None``), the compute spent (training epochs and seconds), the plan and the
    wall time."""
    from optuna_gamma.tuner import AllTrialsDivergedError
    from optuna_gamma.tuner import tune_per_epoch

    def config(**final: Any) -> Any:
        return tuner_config(
            args, "pe", run_dir, policy=policy, objective=objective, seed=seed, **final
        )

    t0 = time.perf_counter()
    plan = policy.plan
    try:
        # the last state as ``test`` (what every stored cell holds there, whatever the
        # default final model is); the other final models below
        res = tune_per_epoch(trainer, space, config(final_model="last"))
    except AllTrialsDivergedError as err:
        return failed_run(
            run_dir, str(err), seed=seed, trials=None, wall=time.perf_counter() - t0, tests={}
        )
    schedule = [
        {
            "epoch": e.epoch,
            "lr": e.lr,
            "params": dict(e.params),
            "value": e.value,
            "valid_accuracy": e.metrics.get("accuracy"),
            "valid_loss": e.metrics.get("loss"),
        }
        for e in res.schedule
    ]
    # the best state of each epoch (with a population, not the final model's lineage, which
    # is the schedule; cells recorded before results had it hold these as their schedule)
    adopted = [
        {"epoch": e.epoch, "trial": e.trial_number, "lr": e.lr, "value": e.value}
        for e in res.adopted
    ]
    # the peak of the validation curve as the final model too, and the average of the final
    # lineage's last states: the run again, nothing trained
    best = tune_per_epoch(trainer, space, config(final_model="best"))
    average = tune_per_epoch(trainer, space, config(final_model="average"))
    whole = tune_per_epoch(trainer, space, config(final_model="average", average_window=None))
    return {
        "mode": "per-epoch",
        "policy": res.policy,
        "final_model": res.final_model,
        "test_best": {str(best.final_epochs): test_metrics(best.test)},
        "test_average": {str(average.final_epochs): test_metrics(average.test)},
        "averaged_epochs": average.averaged_epochs,
        "test_average_all": {str(whole.final_epochs): test_metrics(whole.test)},
        "averaged_epochs_all": whole.averaged_epochs,
        "sampler": res.sampler,
        "objective": res.objective,
        "seed": seed,
        "epochs": res.epochs,
        "final_epochs": res.final_epochs,
        "rounds": plan.epochs,
        "trials_per_study": res.trials_per_epoch,
        "schedule": schedule,
        "adopted": adopted,
        "test": {str(res.final_epochs): test_metrics(res.test)},
        "compute_epochs": res.compute_epochs,
        "compute_time": res.compute_time,
        "trials_reused": res.trials_reused,
        "wall_time": time.perf_counter() - t0,
    }


def run_per_epoch(
    args: Any,
    trainer: Any,
    space: Any,
    run_dir: Path,
    *,
    sampler: Any,
    objective: Any,
    seed: int,
    trials: int | None,
    test_after: Sequence[int],
    fresh: bool = False,
) -> dict[str, Any]:
    """A per-epoch run, tested after each epoch in ``test_after`` (the run is extended in steps;
    ``fresh``: each is a run of its own, as for a trainer whose ``build`` sizes a schedule by the
    run's epochs, where a training of ``e`` epochs is not the start of a longer one).

    Returns a record: the schedule (lr, validation accuracy/loss, objective value and the
    thesis's clipped kappa of the adopted trial, epoch by epoch), the test metrics at every
    checkpoint, compute (epochs and seconds) and the wall time.
    """
    from optuna_gamma.tuner import AllTrialsDivergedError
    from optuna_gamma.tuner import tune_per_epoch

    t0 = time.perf_counter()
    tests: dict[str, Any] = {}
    res = None
    final_dir = run_dir
    for e in sorted(set(test_after)):
        if fresh:
            final_dir = run_dir / f"epochs-{e}"
        try:
            res = tune_per_epoch(
                trainer,
                space,
                tuner_config(
                    args,
                    "pe",
                    final_dir,
                    sampler=sampler,
                    objective=objective,
                    trials_per_epoch=trials,
                    epochs=e,
                    seed=seed,
                ),
            )
        except AllTrialsDivergedError as err:
            # The run stops as it would for a user; the cell records the failure and its cost.
            return failed_run(
                final_dir,
                str(err),
                seed=seed,
                trials=trials,
                wall=time.perf_counter() - t0,
                tests=tests,
            )
        tests[str(e)] = test_metrics(res.test)
    assert res is not None
    return {
        "mode": "per-epoch",
        "sampler": res.sampler,
        "objective": res.objective,
        "seed": seed,
        "epochs": res.epochs,
        "trials_per_study": res.trials_per_epoch,
        "schedule": _schedule(res, final_dir),
        "test": tests,
        "compute_epochs": res.trials_trained,
        "compute_time": res.compute_time,
        "trials_reused": res.trials_reused,
        "wall_time": time.perf_counter() - t0,
    }


def _schedule(res: Any, run_dir: Path) -> list[dict[str, Any]]:
    """The adopted trial of every epoch of a per-epoch run, with what its study's trials saw:
    lr, validation accuracy and loss, objective value, the thesis's clipped kappa."""
    schedule = []
    for entry in res.schedule:
        trials_e = load_trials(run_dir, f"pe/epoch-{entry.epoch:03d}")
        adopted = next(t for t in trials_e if t.number == entry.trial_number)
        schedule.append(
            {
                "epoch": entry.epoch,
                "lr": entry.lr,
                "value": entry.value,
                "valid_accuracy": entry.metrics.get("accuracy"),
                "valid_loss": entry.metrics.get("loss"),
                "kappa_clipped": adopted.user_attrs.get("kappa_clipped"),
                "trial_lrs": [float(t.params.get("lr", entry.lr)) for t in trials_e],
                "trial_accuracy": [t.user_attrs.get("accuracy") for t in trials_e],
                "n_zero_clipped": sum(
                    1 for t in trials_e if t.user_attrs.get("kappa_clipped") == 0.0
                ),
                "n_diverged": sum(1 for t in trials_e if t.user_attrs.get("diverged")),
            }
        )
    return schedule


def failed_run(
    run_dir: Path,
    why: str,
    *,
    seed: int,
    trials: int | None,
    wall: float,
    tests: Mapping[str, Any],
) -> dict[str, Any]:
    """The record of a per-epoch run that stopped because every trial of an epoch diverged."""
    import optuna
    from optuna.trial import TrialState

    storage = run_storage(run_dir)
    n_epochs = epochs_done = 0
    seconds = 0.0
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        n_epochs += sum(1 for t in done if "reused_from" not in t.user_attrs)
        seconds += sum(trial_seconds(t) for t in done)
        epochs_done += int("adopted" in study.user_attrs)
    return {
        "mode": "per-epoch",
        "failed": why,
        "seed": seed,
        "trials_per_study": trials,
        "epochs_adopted": epochs_done,
        "schedule": [],
        "test": dict(tests),
        "compute_epochs": n_epochs,
        "compute_time": seconds,
        "trials_reused": 0,
        "wall_time": wall,
    }


def run_whole(
    args: Any,
    trainer: Any,
    space: Any,
    run_dir: Path,
    *,
    sampler: Any,
    objective: Any,
    seed: int,
    trials: int | None,
    epochs: int,
) -> dict[str, Any]:
    """A whole-training search (each trial trains ``epochs`` epochs at constant settings)."""
    from optuna_gamma.tuner import tune_whole

    t0 = time.perf_counter()
    res = tune_whole(
        trainer,
        space,
        tuner_config(
            args,
            "wh",
            run_dir,
            sampler=sampler,
            objective=objective,
            trials_per_epoch=trials,
            epochs=epochs,
            seed=seed,
        ),
    )
    assert res.best is not None
    return {
        "mode": "whole",
        "sampler": res.sampler,
        "objective": res.objective,
        "seed": seed,
        "epochs": epochs,
        "trials_per_study": res.trials_per_epoch,
        "lr": res.best.lr,
        "valid_accuracy": res.best.metrics.get("accuracy"),
        "valid_loss": res.best.metrics.get("loss"),
        "value": res.best.value,
        "trial_lrs": [t["params"]["lr"] for t in res.trials],
        "trial_accuracy": [t["metrics"].get("accuracy") for t in res.trials],
        "test": {str(epochs): test_metrics(res.test)},
        "compute_epochs": res.trials_trained * epochs,
        "compute_time": res.compute_time,
        "trials_reused": res.trials_reused,
        "wall_time": time.perf_counter() - t0,
    }


def final_test(rec: Mapping[str, Any], key: str = "accuracy") -> float | None:
    """The test metric at the record's last checkpoint."""
    tests = rec.get("test") or {}
    if not tests:
        return None
    last = max(tests, key=int)
    return tests[last].get(key)
