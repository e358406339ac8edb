"""Shared test fixtures: where the offline datasets live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _data_root() -> Path | None:
    env = os.environ.get("OPTUNA_GAMMA_DATA_ROOT")
    if env:
        return Path(env).resolve()
    guess = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return guess if guess.is_dir() else None


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The offline data root (``$OPTUNA_GAMMA_DATA_ROOT``, else ``../shared/data``).

    In CI (``CI=true``) a missing data root is an error, never a skip.
    """
    root = _data_root()
    if root is None or not root.is_dir():
        msg = "offline data root not found; set OPTUNA_GAMMA_DATA_ROOT"
        if os.environ.get("CI"):
            raise RuntimeError(msg)
        pytest.skip(msg)
    return root
