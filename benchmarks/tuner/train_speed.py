"""Training speed: images per second for one epoch, this project's epoch against a plain loop.

For each model (thesis-cnn on MNIST, keras-cifar-cnn on a CIFAR-10 subset, mlp on digits) the
same epoch (same tensors, batch size 50, same initial state) is timed two ways:

* ``plain``: a hand-written PyTorch loop (no DataLoader): ``randperm`` from a seeded generator,
  index the in-memory tensors, forward through the bare ``nn.Sequential`` body (no input-shape
  check), cross-entropy, ``zero_grad``/``backward``/``step``, ``loss.item()`` per batch;
* ``project``: :func:`optuna_gamma.tuner.builtin.training.train_one_epoch` on the full model
  (input-shape check, seeded dropout RNG inside ``fork_rng``, non-finite check, loss bookkeeping).

Before every timed run the model and optimizer are restored to the same captured state, so
both variants do exactly the same arithmetic. The two variants alternate within each
repetition (ABBA...) to spread machine-load drift evenly. Time is measured as this process's CPU
time (``time.process_time``; one torch thread by default), since the benchmark machine's cores
are shared with other processes and wall time then mostly measures their load; wall-clock
figures are recorded too. Images per second come from the median over repetitions, the
overhead from the median of the per-repetition time ratios. Results go to
``benchmarks/tuner/results/train_speed/train_speed.{json,md}``.

Usage::

    OPTUNA_GAMMA_DATA_ROOT=../shared/data .venv/bin/python -m benchmarks.tuner.train_speed
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
from pathlib import Path
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from benchmarks.machine import cpu_name
from optuna_gamma.tuner.builtin.data import load_dataset
from optuna_gamma.tuner.builtin.models import build_model
from optuna_gamma.tuner.builtin.models import ShapeCheckedModel
from optuna_gamma.tuner.builtin.training import make_optimizer
from optuna_gamma.tuner.builtin.training import train_one_epoch
from optuna_gamma.tuner.trainer import capture
from optuna_gamma.tuner.trainer import restore
from optuna_gamma.tuner.trainer import TrainingState


def plain_epoch(
    body: torch.nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    seed: int,
) -> float:
    """The reference: the simplest correct mini-batch SGD epoch over in-memory tensors."""
    body.train()
    n = len(y)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    total = 0.0
    for start in range(0, n, batch_size):
        idx = perm[start : start + batch_size]
        loss = F.cross_entropy(body(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
    return total / n


def bench(
    name: str,
    dataset: str,
    root: str | None,
    subset: int | None,
    epochs_per_run: int,
    repeats: int,
    batch_size: int,
    cache_dir: Path | None = None,
) -> dict:
    d = load_dataset(dataset, root, subset=subset, seed=0, cache_dir=cache_dir)
    model = build_model(name, d.input_shape, d.n_classes, seed=0)
    assert isinstance(model, ShapeCheckedModel), f"build_model returned {type(model).__name__}"
    body = model.body
    opt = make_optimizer(model, lr=0.01, momentum=0.9, weight_decay=1e-3)
    initial = capture(TrainingState(model=model, optimizer=opt))
    cpu = torch.device("cpu")
    x, y = d.train.x, d.train.y
    n_images = len(y) * epochs_per_run

    def run(variant: str) -> tuple[float, float]:
        restore(TrainingState(model=model, optimizer=opt), initial)
        c0, t0 = time.process_time(), time.perf_counter()
        for e in range(epochs_per_run):
            if variant == "plain":
                plain_epoch(body, opt, x, y, batch_size, e)
            else:
                train_one_epoch(model, opt, d.train, batch_size=batch_size, seed=e, device=cpu)
        return time.process_time() - c0, time.perf_counter() - t0

    run("plain")  # warm-up (allocator, kernels)
    run("project")
    times: dict[str, list[float]] = {"plain": [], "project": []}
    walls: dict[str, list[float]] = {"plain": [], "project": []}
    for r in range(repeats):
        order = ("plain", "project") if r % 2 == 0 else ("project", "plain")
        for variant in order:
            cpu_s, wall_s = run(variant)
            times[variant].append(cpu_s)
            walls[variant].append(wall_s)
    med = {k: statistics.median(v) for k, v in times.items()}
    med_wall = {k: statistics.median(v) for k, v in walls.items()}
    return {
        "model": name,
        "dataset": dataset,
        "train_images": len(y),
        "epochs_per_run": epochs_per_run,
        "batch_size": batch_size,
        "repeats": repeats,
        "cpu_seconds_plain": times["plain"],
        "cpu_seconds_project": times["project"],
        "wall_seconds_plain": walls["plain"],
        "wall_seconds_project": walls["project"],
        "images_per_cpu_s_plain": n_images / med["plain"],
        "images_per_cpu_s_project": n_images / med["project"],
        "images_per_wall_s_plain": n_images / med_wall["plain"],
        "images_per_wall_s_project": n_images / med_wall["project"],
        # Median of the per-repetition ratios: the two runs of a pair are adjacent in time, so
        # the ratio is less sensitive to the load of other processes than a ratio of medians.
        "overhead_percent": 100.0
        * (statistics.median(a / b for a, b in zip(times["project"], times["plain"])) - 1.0),
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--data-root",
        default=os.environ.get("OPTUNA_GAMMA_DATA_ROOT"),
        help="offline data root (default: $OPTUNA_GAMMA_DATA_ROOT)",
    )
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    p.add_argument("--mnist-subset", type=int, default=1250, help="MNIST images (80%% trained on)")
    p.add_argument(
        "--cifar-subset", type=int, default=1250, help="CIFAR-10 images (80%% trained on)"
    )
    p.add_argument(
        "--digits-epochs",
        type=int,
        default=10,
        help="digits epochs per timed run (an epoch takes ms)",
    )
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="dataset cache (default: $OPTUNA_GAMMA_CACHE or ~/.cache/optuna-gamma)",
    )
    p.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "results" / "train_speed"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    if args.data_root is None:
        p.error("give --data-root or set OPTUNA_GAMMA_DATA_ROOT")
    torch.set_num_threads(args.threads)

    cases = [
        ("thesis-cnn", "mnist", args.mnist_subset, 1),
        ("keras-cifar-cnn", "cifar10", args.cifar_subset, 1),
        ("mlp", "digits", None, args.digits_epochs),
    ]
    t_start = time.perf_counter()
    rows = []
    for model, dataset, subset, epochs in cases:
        row = bench(
            model,
            dataset,
            args.data_root,
            subset,
            epochs,
            args.repeats,
            args.batch_size,
            args.cache_dir,
        )
        rows.append(row)
        print(
            f"{model:16s} {dataset:8s} plain {row['images_per_cpu_s_plain']:9.0f} img/CPU-s  "
            f"project "
            f"{row['images_per_cpu_s_project']:9.0f} img/CPU-s  overhead "
            f"{row['overhead_percent']:+.1f}%",
            flush=True,
        )
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    result = {
        "benchmark": "train_speed",
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "machine": {
            "cpu": cpu_name(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "loadavg_1_5_15": load,
        },
        "torch": torch.__version__,
        "python": platform.python_version(),
        "wall_seconds": time.perf_counter() - t_start,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "train_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "train_speed.md").write_text(to_markdown(result))
    print(to_markdown(result))
    return 0


def to_markdown(result: dict) -> str:
    m = result["machine"]
    load = m["loadavg_1_5_15"]
    lines = [
        f"Measured {result['date_utc']} UTC, torch {result['torch']}, CPU only ({m['cpu']}), "
        f"{m['torch_threads']} torch thread(s) on a {m['cpu_count']}-core machine shared with "
        f"other processes (load average "
        f"{'/'.join(f'{v:.1f}' for v in load) if load else 'n/a'}); batch size "
        f"{result['rows'][0]['batch_size']}, "
        f"median of {result['rows'][0]['repeats']} repetitions. Speeds are images per CPU-second "
        f"of this "
        f"process (`time.process_time`), which other processes on the shared cores disturb far "
        f"less than "
        f"wall time; overhead = median over repetitions of (project time / plain time) - 1, CPU "
        f"time.",
        "",
        "| model | data (training images) | plain loop, img/CPU-s | `train_one_epoch`, img/CPU-s "
        "| overhead | plain / project, img/wall-s |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['model']} | {r['dataset']} ({r['train_images']}) | "
            f"{r['images_per_cpu_s_plain']:,.0f} | "
            f"{r['images_per_cpu_s_project']:,.0f} | {r['overhead_percent']:+.1f}% | "
            f"{r['images_per_wall_s_plain']:,.0f} / {r['images_per_wall_s_project']:,.0f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
