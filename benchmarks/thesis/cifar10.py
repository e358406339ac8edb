"""Thesis table 7: CIFAR-10 with the Keras example CNN, per-epoch tuning.

The thesis tunes the Keras CIFAR-10 example CNN per epoch for 50 epochs on the full data and
reports test sensitivity, specificity, accuracy, MCC and loss at epochs 1, 10, 20 and 50. One
epoch of 45,000 images through this CNN takes about a minute of one CPU core, so 50 epochs x
12 trials x 4 arms is out of reach here.

CPU plan (reduced, about an hour of one core): 5,000 training images (4,000 train / 1,000
validation, stratified, seeded), 10 epochs, tested on the full official 10,000-image test set
after epochs 1, 5 and 10; seed 0; a 12-point grid per epoch instead of 100. ``--full`` runs the
thesis's version (all 50,000 images split 45,000 / 5,000, 50 epochs, tests after 1, 10, 20, 50,
grid 100, seeds 0-2) and is meant for a GPU (``--device cuda``). Arms: see
:mod:`benchmarks.thesis.perepoch`.

    python -m benchmarks.thesis.cifar10
    python -m benchmarks.thesis.cifar10 --full --device cuda
"""

from __future__ import annotations

from benchmarks.thesis import common as tc
from benchmarks.thesis import perepoch as pe


NAME = "thesis_cifar10"

#: Thesis table 7: (sensitivity, specificity, accuracy, MCC in %, loss).
THESIS = {
    1: {
        "grid": (48.76, 94.41, 49.09, 42.69, 1.4160),
        "gaussian": (32.37, 92.37, 29.95, 21.83, 1.8700),
        "gamma": (46.69, 94.03, 45.79, 39.25, 1.4728),
        "gamma-kappa2": (45.64, 92.41, 44.74, 40.21, 1.3701),
    },
    10: {
        "grid": (73.36, 96.80, 70.72, 68.19, 0.8619),
        "gaussian": (56.64, 95.20, 56.30, 51.14, 1.2100),
        "gamma": (74.35, 97.06, 73.07, 95.12, 0.7942),
        "gamma-kappa2": (76.41, 96.54, 75.42, 79.23, 0.7421),
    },
    20: {
        "grid": (76.32, 97.29, 75.30, 72.73, 0.7133),
        "gaussian": (65.43, 96.18, 65.30, 95.25, 0.9930),
        "gamma": (76.71, 97.36, 76.06, 73.48, 0.6998),
        "gamma-kappa2": (78.05, 97.92, 78.21, 77.64, 0.6214),
    },
    50: {
        "grid": (76.76, 97.31, 75.55, 73.15, 0.7362),
        "gaussian": (63.84, 95.98, 63.45, 59.19, 1.0278),
        "gamma": (83.22, 98.10, 82.78, 80.92, 0.5169),
        "gamma-kappa2": (84.01, 95.25, 83.04, 82.20, 0.4951),
    },
}


def experiment(args) -> pe.Experiment:
    full = args.full
    seeds = tc.parse_seeds(args.seeds) if args.seeds else ([0, 1, 2] if full else [0])
    epochs = args.epochs or (50 if full else 10)
    subset = None if full else args.subset
    grid = args.grid_size or (100 if full else 12)
    test_after = (1, 10, 20, 50) if full else (1, 5, 10)
    if subset is None:
        images = "All 50,000 training images (45,000 / 5,000)"
    else:
        n_train = int(subset * 0.8)
        images = f"{subset} training images ({n_train} train / {subset - n_train} validation)"
    return pe.Experiment(
        name=args.tag or NAME,
        title="Thesis table 7: CIFAR-10, Keras example CNN, per-epoch tuning",
        dataset="cifar10",
        model="keras-cifar-cnn",
        subset=subset,
        valid_fraction=0.1 if subset is None else 0.2,
        epochs=epochs,
        test_after=tuple(sorted({e for e in test_after if e <= epochs} | {epochs})),
        grid_size=grid,
        seeds=seeds,
        thesis=THESIS,
        thesis_columns=("Sens", "Spec", "Acc", "MCC", "Loss"),
        notes=(
            f"{images}, {epochs} epochs, seeds {seeds}, grid {grid} per epoch; test on the "
            "official 10,000 images. "
            + (
                ""
                if full
                else "Reduced from the thesis (all images, 50 epochs, grid 100) to about an hour "
                "of one CPU core; the thesis's epochs 10-50 columns are not comparable to ours in "
                "absolute terms. "
            )
            + "The thesis reports one run per arm."
        ),
    )


def _add_args(p) -> None:
    p.add_argument("--epochs", type=int, default=None, help="epochs (10; --full 50)")
    p.add_argument(
        "--subset", type=int, default=5000, help="training images on a CPU (train + validation)"
    )


def main(argv: list[str] | None = None) -> int:
    return pe.main(__doc__ or "", experiment, _add_args, argv)


if __name__ == "__main__":
    raise SystemExit(main())
