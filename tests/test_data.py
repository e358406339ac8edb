"""optuna_gamma.tuner.builtin.data on the real offline datasets."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path
import shutil
from typing import Any
from typing import TYPE_CHECKING

import numpy as np
import pytest


if TYPE_CHECKING:
    import torch
else:
    torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from optuna_gamma.tuner.builtin.data import DATASETS  # noqa: E402
from optuna_gamma.tuner.builtin.data import DEBIAN_FASHION_MNIST_DIR  # noqa: E402
from optuna_gamma.tuner.builtin.data import load_dataset  # noqa: E402
from optuna_gamma.tuner.builtin.data import load_raw  # noqa: E402


IDX = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private cache folder, so the tests neither read nor write the user's cache."""
    return tmp_path_factory.mktemp("og-cache")


@pytest.fixture(scope="session")
def fashion_root() -> Path:
    if all((DEBIAN_FASHION_MNIST_DIR / f"{f}.gz").is_file() for f in IDX):
        return DEBIAN_FASHION_MNIST_DIR
    msg = (
        f"Fashion-MNIST not installed in {DEBIAN_FASHION_MNIST_DIR} (apt-get install "
        "dataset-fashion-mnist)"
    )
    if os.environ.get("CI"):
        raise RuntimeError(msg)
    pytest.skip(msg)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _class_counts(y: torch.Tensor, n: int = 10) -> np.ndarray:
    return np.bincount(y.numpy(), minlength=n)


# ---------------------------------------------------------------------------------- MNIST


def test_mnist_raw_files_match_md5sums(data_root: Path) -> None:
    table = dict(
        line.split()[::-1]
        for line in (data_root / "mnist" / "MD5SUMS").read_text().splitlines()
        if line.strip()
    )
    raw = data_root / "mnist" / "MNIST" / "raw"
    assert sorted(table) == sorted(f"{f}.gz" for f in IDX)
    for fname, md5 in table.items():
        assert _md5(raw / fname) == md5


def test_mnist_full(data_root: Path, cache_dir: Path) -> None:
    raw = load_raw("mnist", data_root, cache_dir=cache_dir)
    assert raw.train_x.shape == (60000, 1, 28, 28) and raw.test_x.shape == (10000, 1, 28, 28)
    assert raw.train_x.dtype == np.uint8 and raw.train_y.dtype == np.int64
    # Class counts of the original MNIST.
    assert np.bincount(raw.train_y).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    assert np.bincount(raw.test_y).tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]
    # The usual MNIST normalization constants come out of the exact histogram statistics.
    assert raw.mean[0] == pytest.approx(0.1307, abs=1e-4)
    assert raw.std[0] == pytest.approx(0.3081, abs=1e-4)

    d = load_dataset("mnist", data_root, cache_dir=cache_dir)
    assert (len(d.train), len(d.valid), len(d.test)) == (48000, 12000, 10000)
    assert d.input_shape == (1, 28, 28) and d.n_classes == 10 and len(d.class_names) == 10
    assert d.train.x.dtype == torch.float32 and d.train.y.dtype == torch.int64
    assert d.train.x.shape == (48000, 1, 28, 28)
    # The test set is the official one, in order, normalized with the training constants.
    np.testing.assert_array_equal(d.test.y.numpy(), raw.test_y)
    expected = (raw.test_x[:7].astype(np.float32) / 255 - np.float32(raw.mean[0])) / np.float32(
        raw.std[0]
    )
    np.testing.assert_allclose(d.test.x[:7].numpy(), expected, rtol=1e-6, atol=1e-6)
    # Train + validation together are the whole training set, once each.
    all_counts = _class_counts(d.train.y) + _class_counts(d.valid.y)
    assert all_counts.tolist() == np.bincount(raw.train_y).tolist()
    # Standardized over the training pool: mean 0, std 1 (float64 accumulations).
    n = len(d.train) + len(d.valid)
    s1 = float(d.train.x.sum(dtype=torch.float64) + d.valid.x.sum(dtype=torch.float64))
    s2 = float(
        d.train.x.square().sum(dtype=torch.float64) + d.valid.x.square().sum(dtype=torch.float64)
    )
    mean = s1 / (n * 784)
    assert mean == pytest.approx(0.0, abs=1e-5)
    assert s2 / (n * 784) - mean**2 == pytest.approx(1.0, abs=1e-4)


def test_mnist_subset_is_stratified_and_seeded(data_root: Path, cache_dir: Path) -> None:
    raw = load_raw("mnist", data_root, cache_dir=cache_dir)
    prop = np.bincount(raw.train_y) / len(raw.train_y)
    a = load_dataset(
        "mnist", data_root, subset=500, valid_fraction=0.2, seed=3, cache_dir=cache_dir
    )
    assert (len(a.train), len(a.valid), len(a.test)) == (400, 100, 10000)
    assert np.all(np.abs(_class_counts(a.train.y) - 400 * prop) <= 1)
    assert np.all(np.abs(_class_counts(a.valid.y) - 100 * prop) <= 1)
    # Train and validation images are distinct images of the training set.
    rows = {bytes(r) for r in a.train.x.reshape(400, -1).numpy()}
    assert not rows.intersection(bytes(r) for r in a.valid.x.reshape(100, -1).numpy())

    b = load_dataset("mnist", data_root, subset=500, seed=3, cache_dir=cache_dir)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.valid.y, b.valid.y)
    c = load_dataset("mnist", data_root, subset=500, seed=4, cache_dir=cache_dir)
    assert not torch.equal(a.train.y, c.train.y) or not torch.equal(a.train.x, c.train.x)
    assert torch.equal(a.test.x, c.test.x)  # the test set does not depend on the seed

    t = load_dataset("mnist", data_root, subset=500, test_subset=1000, cache_dir=cache_dir)
    assert len(t.test) == 1000
    test_prop = np.bincount(raw.test_y) / len(raw.test_y)
    assert np.all(np.abs(_class_counts(t.test.y) - 1000 * test_prop) <= 1)


def test_mnist_md5_mismatch_is_reported(data_root: Path, tmp_path: Path) -> None:
    src = data_root / "mnist"
    dst = tmp_path / "mnist" / "MNIST" / "raw"
    dst.mkdir(parents=True)
    shutil.copy(src / "MD5SUMS", tmp_path / "mnist" / "MD5SUMS")
    for f in IDX[:3]:
        shutil.copy(src / "MNIST" / "raw" / f"{f}.gz", dst / f"{f}.gz")
    labels = bytearray(gzip.decompress((src / "MNIST" / "raw" / f"{IDX[3]}.gz").read_bytes()))
    labels[-1] = (labels[-1] + 1) % 10  # one flipped test label
    (dst / f"{IDX[3]}.gz").write_bytes(gzip.compress(bytes(labels)))
    with pytest.raises(ValueError, match=f"md5 of .*{IDX[3]}.gz"):
        load_raw("mnist", tmp_path, cache_dir=tmp_path / "cache")


def test_mnist_flat_layout_without_md5sums(data_root: Path, tmp_path: Path) -> None:
    """The four .gz files directly in the root are found too; the decoded data is the same."""
    for f in IDX:
        os.symlink(data_root / "mnist" / "MNIST" / "raw" / f"{f}.gz", tmp_path / f"{f}.gz")
    raw = load_raw("mnist", tmp_path, cache_dir=tmp_path / "cache")
    ref = load_raw("mnist", data_root, cache_dir=tmp_path / "cache2")
    assert raw.source == str(tmp_path.resolve())
    np.testing.assert_array_equal(raw.test_x, ref.test_x)
    np.testing.assert_array_equal(raw.train_y, ref.train_y)


# ---------------------------------------------------------------------------------- CIFAR-10


def test_cifar10_full(data_root: Path, cache_dir: Path) -> None:
    raw = load_raw("cifar10", data_root, cache_dir=cache_dir)
    assert raw.train_x.shape == (50000, 3, 32, 32) and raw.test_x.shape == (10000, 3, 32, 32)
    assert np.bincount(raw.train_y).tolist() == [5000] * 10
    assert np.bincount(raw.test_y).tolist() == [1000] * 10
    assert raw.class_names[:3] == ("airplane", "automobile", "bird")
    # Well-known CIFAR-10 channel statistics.
    np.testing.assert_allclose(raw.mean, (0.4914, 0.4822, 0.4465), atol=1e-4)
    np.testing.assert_allclose(raw.std, (0.2470, 0.2435, 0.2616), atol=1e-4)

    d = load_dataset("cifar10", data_root, subset=1000, seed=0, cache_dir=cache_dir)
    assert (len(d.train), len(d.valid), len(d.test)) == (800, 200, 10000)
    assert d.input_shape == (3, 32, 32)
    assert _class_counts(d.train.y).tolist() == [80] * 10
    assert _class_counts(d.valid.y).tolist() == [20] * 10
    expected = (
        raw.test_x[:3].astype(np.float32) / 255
        - np.asarray(raw.mean, dtype=np.float32).reshape(1, 3, 1, 1)
    ) / np.asarray(raw.std, dtype=np.float32).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(d.test.x[:3].numpy(), expected, rtol=1e-6, atol=1e-6)


def test_cifar10_restricted_reader_equals_torchvision(data_root: Path, cache_dir: Path) -> None:
    """The batches are read by a restricted unpickler; it gives exactly torchvision's arrays.
    (torchvision's own class rejects the rebuilt pickles by its md5 table, so its check is
    switched off here for the comparison only.)"""
    from torchvision.datasets import CIFAR10

    raw = load_raw("cifar10", data_root, cache_dir=cache_dir)
    extracted = cache_dir / "extracted" / "cifar10"
    with pytest.raises(RuntimeError, match="corrupted"):
        CIFAR10(root=str(extracted), train=False, download=False)

    class Unchecked(CIFAR10):
        train_list = [[f, None] for f, _ in CIFAR10.train_list]
        test_list = [[f, None] for f, _ in CIFAR10.test_list]
        meta = {**CIFAR10.meta, "md5": None}

    tv = Unchecked(root=str(extracted), train=False, download=False)
    np.testing.assert_array_equal(raw.test_x, np.asarray(tv.data).transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(raw.test_y, np.asarray(tv.targets))
    assert raw.class_names == tuple(tv.classes)


def test_cifar10_crafted_pickle_does_not_run_code(tmp_path: Path) -> None:
    """A batch that would run code under plain pickle.load is refused, and the code never runs."""
    import pickle

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    folder = tmp_path / "root" / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in (
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
        "batches.meta",
    ):
        (folder / name).write_bytes(pickle.dumps({"data": Evil(), "labels": [0]}, protocol=2))
    with pytest.raises(
        ValueError, match="refusing to load posix.system|refusing to load os.system"
    ):
        load_raw("cifar10", tmp_path / "root", cache_dir=tmp_path / "cache")
    assert not marker.exists()


def test_cifar10_extracted_layout(data_root: Path, cache_dir: Path, tmp_path: Path) -> None:
    """An already extracted ``cifar-10-batches-py`` under the root is read in place."""
    ref = load_raw("cifar10", data_root, cache_dir=cache_dir)
    (tmp_path / "cifar10").mkdir()
    os.symlink(
        cache_dir / "extracted" / "cifar10" / "cifar-10-batches-py",
        tmp_path / "cifar10" / "cifar-10-batches-py",
    )
    other = load_raw("cifar10", tmp_path, cache_dir=tmp_path / "cache")
    assert other.source == str(tmp_path.resolve() / "cifar10" / "cifar-10-batches-py")
    assert not (tmp_path / "cache" / "extracted").exists()  # nothing copied
    np.testing.assert_array_equal(other.test_x, ref.test_x)
    np.testing.assert_array_equal(other.train_y, ref.train_y)


# ---------------------------------------------------------------------------------- Fashion-MNIST


def test_fashion_mnist_debian_layout(fashion_root: Path, cache_dir: Path, tmp_path: Path) -> None:
    raw = load_raw("fashion-mnist", fashion_root, cache_dir=cache_dir)
    assert raw.train_x.shape == (60000, 1, 28, 28) and raw.test_x.shape == (10000, 1, 28, 28)
    assert np.bincount(raw.train_y).tolist() == [6000] * 10
    assert np.bincount(raw.test_y).tolist() == [1000] * 10
    assert raw.class_names[0] == "T-shirt/top"
    # torchvision's layout (root/FashionMNIST/raw) is accepted too, and gives the same arrays.
    tv = tmp_path / "FashionMNIST" / "raw"
    tv.mkdir(parents=True)
    for f in IDX:
        os.symlink(fashion_root / f"{f}.gz", tv / f"{f}.gz")
    other = load_raw("fashion-mnist", tmp_path, cache_dir=tmp_path / "cache")
    assert other.source == str(tv.resolve())
    np.testing.assert_array_equal(other.test_x, raw.test_x)
    d = load_dataset("fashion-mnist", fashion_root, subset=500, cache_dir=cache_dir)
    assert (len(d.train), len(d.valid)) == (400, 100)
    assert _class_counts(d.train.y).tolist() == [40] * 10


# ---------------------------------------------------------------------------------- digits


def test_digits() -> None:
    a = load_dataset("digits", None, seed=0)
    assert a.input_shape == (64,) and a.n_classes == 10
    assert (len(a.train), len(a.valid), len(a.test)) == (1149, 288, 360)
    assert a.train.x.shape == (1149, 64) and a.train.x.dtype == torch.float32
    b = load_dataset("digits", None, seed=1)
    assert torch.equal(a.test.x, b.test.x)  # fixed hold-out test set
    assert not torch.equal(a.train.y, b.train.y)
    assert _class_counts(a.test.y).min() >= 35


# ---------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "name, expected", [("mnist", "train-images-idx3-ubyte"), ("cifar10", "cifar-10-python.tar.gz")]
)
def test_missing_files_name_paths_and_flag(tmp_path: Path, name: str, expected: str) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(FileNotFoundError) as info:
        load_dataset(name, root, cache_dir=tmp_path / "cache")
    msg = str(info.value)
    assert str(root) in msg and expected in msg
    assert "download=True" in msg and "--download" in msg


def test_download_flag_uses_torchvision_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torchvision.datasets import MNIST

    calls = []

    def fake_download(self: MNIST) -> None:
        calls.append(self.root)
        raise ConnectionError("no network in tests")

    monkeypatch.setattr(MNIST, "download", fake_download)
    with pytest.raises(ConnectionError):
        load_dataset("mnist", tmp_path, download=True, cache_dir=tmp_path / "cache")
    assert calls == [str((tmp_path / "cache" / "downloads" / "mnist").resolve())]


def test_bad_arguments(data_root: Path, cache_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"'imagenet'.*mnist, fashion-mnist, cifar10, digits"):
        load_dataset("imagenet", data_root)
    assert DATASETS == ("mnist", "fashion-mnist", "cifar10", "digits")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"subset": 0}, "subset"),
        ({"subset": 10**6}, "subset"),
        ({"subset": 2.5}, "subset"),
        ({"valid_fraction": 0.0}, "valid_fraction"),
        ({"valid_fraction": 1.0}, "valid_fraction"),
        ({"seed": -1}, "seed"),
        ({"subset": 20}, "stratified"),
        ({"test_subset": 5}, "test_subset"),
    ]
    for kwargs, word in cases:
        with pytest.raises(ValueError, match=word):
            load_dataset("digits", None, **kwargs)
    with pytest.raises(ValueError, match="data root"):
        load_dataset("mnist", None, cache_dir=cache_dir)
