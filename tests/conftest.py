"""Shared test fixtures: where the offline datasets live."""

from __future__ import annotations

from collections.abc import Iterator
import os
from pathlib import Path

import pytest


# The README's test command gives the data root relative to the repository; the tests also
# run the CLI in subprocesses from other folders, which read the same variable.
if os.environ.get("OPTUNA_GAMMA_DATA_ROOT"):
    os.environ["OPTUNA_GAMMA_DATA_ROOT"] = str(
        Path(os.environ["OPTUNA_GAMMA_DATA_ROOT"]).resolve()
    )


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


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _optuna_verbosity() -> Iterator[None]:
    """Every test starts at Optuna's WARNING verbosity and leaves it as it found it.

    Test modules set the verbosity when imported, before this, so the level a test ran at was
    that of the last module collected (and a test that changed it changed it for the tests
    after it): a tuner message that depended on the verbosity passed or failed with the order
    of collection (stop 42).
    """
    import optuna

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield
    optuna.logging.set_verbosity(before)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server URL: ``$OPTUNA_GAMMA_TEST_POSTGRES`` (``.ci/run`` starts a throwaway
    cluster and sets it), else a cluster started here with ``.ci/postgres.sh`` when Debian's
    PostgreSQL packages are installed. In CI a missing server is an error, never a skip."""
    import shutil
    import subprocess
    import tempfile

    url = os.environ.get("OPTUNA_GAMMA_TEST_POSTGRES")
    if url:
        yield url
        return
    if (
        not list(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        or shutil.which("runuser") is None
    ):
        msg = (
            "PostgreSQL is not installed (apt-get install postgresql) and "
            "OPTUNA_GAMMA_TEST_POSTGRES is unset"
        )
        if os.environ.get("CI"):
            raise RuntimeError(msg)
        pytest.skip(msg)
    folder = tempfile.mkdtemp(prefix="optuna-gamma-pg-", dir="/tmp")
    script = str(REPO / ".ci" / "postgres.sh")
    out = subprocess.run(
        ["bash", script, "start", folder], capture_output=True, text=True, check=True
    ).stdout
    url = out.strip().split("=", 1)[1]
    try:
        yield url
    finally:
        subprocess.run(["bash", script, "stop", folder], capture_output=True, text=True)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, str]]:
    """A local S3-compatible server (moto's server mode on 127.0.0.1, a free port) and the
    environment a boto3 client needs to use it."""
    import socket

    moto_server = pytest.importorskip("moto.server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        yield env
    finally:
        server.stop()
