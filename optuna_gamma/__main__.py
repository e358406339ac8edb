"""``python -m optuna_gamma`` runs the ``optuna-gamma`` command."""

from __future__ import annotations

import sys

from optuna_gamma.tuner.cli import main


if __name__ == "__main__":
    sys.exit(main())
