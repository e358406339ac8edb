"""Held-out dataset: thesis table 6's per-epoch comparison on Fashion-MNIST (not in the thesis).

The thesis tunes and reports on MNIST and CIFAR-10 only; this runs the comparison of its table 6
(per-epoch tuning, 3 epochs, grid vs Gaussian vs Gamma vs Gamma with kappa_2; arms as in
:mod:`benchmarks.thesis.perepoch`) on Fashion-MNIST, a dataset the project's defaults were not
tuned on, so that a conclusion drawn from MNIST can be checked elsewhere. Thesis CNN, SGD with
mini-batch 50 and weight decay 0.001; the adopted model is tested on the official 10,000-image
Fashion-MNIST test set after epochs 1, 2 and 3.

CPU plan (reduced): a 10,000-image subset of the 60,000 training images (8,000 train / 2,000
validation, stratified, drawn with the seed), seeds 0-2, a 12-point grid per epoch (the same 12
trainings per epoch as the model-based arms). ``--full`` (for a GPU): all 60,000 images (50,000
/ 10,000, as table 6), grid 100, seeds 0-2.

Fashion-MNIST is read from the data root or from the Debian package ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist``); nothing is downloaded.

    python -m benchmarks.thesis.fashion               # ~20 min on one core
    python -m benchmarks.thesis.fashion --full --device cuda
"""

from __future__ import annotations

from benchmarks.thesis import common as tc
from benchmarks.thesis import perepoch as pe


NAME = "thesis_fashion"


def experiment(args) -> pe.Experiment:
    full = args.full
    seeds = tc.parse_seeds(args.seeds) if args.seeds else [0, 1, 2]
    subset = None if full else args.subset
    grid = args.grid_size or (100 if full else 12)
    if subset is None:
        what = "all 60,000 training images (50,000 train / 10,000 validation)"
        valid_fraction = 1 / 6
    else:
        valid_fraction = 0.2
        n_valid = -(-subset // 5)
        what = f"{subset:,} training images ({subset - n_valid:,} train / {n_valid:,} validation)"
    return pe.Experiment(
        name=args.tag or NAME,
        title="Held-out dataset: Fashion-MNIST, per-epoch tuning (thesis table 6's comparison)",
        dataset="fashion-mnist",
        model="thesis-cnn",
        subset=subset,
        valid_fraction=valid_fraction,
        epochs=args.epochs,
        test_after=tuple(range(1, args.epochs + 1)),
        grid_size=grid,
        seeds=seeds,
        notes=(
            f"Not in the thesis. Thesis CNN on {what}, {args.epochs} epochs, seeds {seeds}, "
            f"grid {grid} per epoch"
            + ("" if grid == 100 else " (reduced from the thesis's 100)")
            + "; test on the official 10,000 Fashion-MNIST test images."
            + (
                ""
                if full
                else " Reduced from the full training set to fit the CPU budget (--full runs it)."
            )
        ),
    )


def _add_args(p) -> None:
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument(
        "--subset", type=int, default=10000, help="training images on a CPU (train + validation)"
    )


def main(argv: list[str] | None = None) -> int:
    return pe.main(__doc__ or "", experiment, _add_args, argv)


if __name__ == "__main__":
    raise SystemExit(main())
