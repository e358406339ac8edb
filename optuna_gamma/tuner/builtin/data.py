"""Datasets of the thesis as normalized in-memory tensors.

:func:`load_dataset` returns a :class:`DatasetSplits` with three :class:`Split` s (train,
validation, test), each one whole tensor, so a training epoch only indexes tensors and never
decodes or transforms images one by one.

Sources (``root`` is a data root holding one folder per dataset, or the dataset's folder
itself; it is never written to):

``"mnist"``
    :class:`torchvision.datasets.MNIST`. Looked for in ``root/mnist/MNIST/raw``,
    ``root/MNIST/raw``, ``root/mnist`` and ``root``: the four ``*-idx?-ubyte`` files, gzipped or
    not. torchvision reads only the un-gzipped files, so gzipped ones are decompressed into the
    cache folder (see below) and torchvision is pointed there. When an ``MD5SUMS`` file lies
    beside the ``.gz`` files or in a parent folder up to ``root``, every listed file is checked
    against it first (:class:`ValueError` on a mismatch).
``"fashion-mnist"``
    :class:`torchvision.datasets.FashionMNIST`, same files and handling. Looked for in
    ``root/fashion-mnist/FashionMNIST/raw``, ``root/FashionMNIST/raw``, ``root/fashion-mnist``,
    ``root`` and finally the flat layout of the Debian package ``dataset-fashion-mnist``,
    :data:`DEBIAN_FASHION_MNIST_DIR`. (The Debian ``.gz`` files are recompressed, so their md5s
    differ from torchvision's table; only an ``MD5SUMS`` beside them is checked.)
``"cifar10"``
    The python-pickle layout of :class:`torchvision.datasets.CIFAR10` (which downloads it when
    allowed). Looked for as an extracted ``cifar-10-batches-py`` folder or a
    ``cifar-10-python.tar.gz`` in ``root/cifar10`` or ``root``; an archive is checked against an
    ``MD5SUMS`` beside it, if any, and extracted into the cache. The batches are *not* read with
    torchvision's loader, which calls :func:`pickle.load` on them (a crafted file under the data
    root would run code), but with a restricted unpickler that admits only the NumPy array
    types the format uses (:class:`_CifarUnpickler`). torchvision's md5 table is not used:
    pickles rebuilt from the original images, as in this project's offline copy, hold the same
    arrays but hash differently.
``"digits"``
    :func:`sklearn.datasets.load_digits` (1797 8x8 images, bundled with scikit-learn; ``root`` is
    ignored). Flattened to ``(N, 64)`` features. There is no official test set: a fixed,
    stratified 20% (360 images, ``random_state=0``, independent of ``seed``) is held out as the
    test split; train and validation come from the other 1437.

Normalization: pixel values are scaled to [0, 1] (``/255``; ``/16`` for digits) and then
standardized per channel, ``(x - mean_c) / std_c``, with the mean and standard deviation of
channel ``c`` over the *whole official training set* (all 60,000 / 50,000 images, or the 1437
digits of the training pool), computed exactly from pixel histograms. The same constants are
applied to validation and test data. (MNIST: 0.1307 / 0.3081, the usual constants.)

Splits: ``subset=None`` uses the whole training set; ``subset=n`` draws ``n`` images from it.
Either way the images are split into train and validation, stratified by class, with
``ceil(valid_fraction * n)`` validation images, by one
:func:`sklearn.model_selection.train_test_split` call with ``random_state=seed`` (so each class
count is within one of its proportional share, a seed reproduces the split and the subset is
drawn without the rest of the data influencing it beyond the class proportions).
``subset=500, valid_fraction=0.2`` gives the thesis's 400 / 100. The test split is the official
test set (optionally a stratified ``test_subset``), never mixed in.

Downloads are off by default. With ``download=True`` a dataset found nowhere under ``root`` is
fetched by torchvision's own download into ``cache_dir/downloads/<name>`` (and found there
later). Otherwise a missing dataset raises :class:`FileNotFoundError` naming every path that
was tried and the ``download=True`` flag (``--download`` on the command line).

Cache folder (``cache_dir``): ``$OPTUNA_GAMMA_CACHE`` if set, else
``$XDG_CACHE_HOME/optuna-gamma``, else ``~/.cache/optuna-gamma``. It holds decompressed MNIST
files and the extracted CIFAR-10 pickles (``extracted/<name>/``, refreshed when the source
file's size or mtime changes; written atomically, safe under concurrent processes) and
downloads. Decoded uint8 arrays are also memoized per process (:func:`load_raw`), so repeated
calls with other seeds or subsets cost only the indexing and normalization.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import functools
import gzip
import hashlib
import json
import math
import os
from pathlib import Path
import pickle
import shutil
import tarfile
import tempfile
from typing import Any
from typing import BinaryIO
from typing import TYPE_CHECKING
import zlib

import numpy as np

from optuna_gamma.tuner.persistence.runfiles import atomic_write


if TYPE_CHECKING:
    import torch


__all__ = [
    "CACHE_ENV",
    "DATASETS",
    "DEBIAN_FASHION_MNIST_DIR",
    "DatasetSplits",
    "RawDataset",
    "Split",
    "default_cache_dir",
    "load_dataset",
    "load_raw",
]

DATASETS = ("mnist", "fashion-mnist", "cifar10", "digits")
CACHE_ENV = "OPTUNA_GAMMA_CACHE"
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
_CIFAR_FILES = (
    "data_batch_1",
    "data_batch_2",
    "data_batch_3",
    "data_batch_4",
    "data_batch_5",
    "test_batch",
    "batches.meta",
)
_DIGITS_TEST_FRACTION = 0.2
_DIGITS_TEST_SEED = 0


@dataclass(frozen=True, eq=False)
class Split:
    """One part of a dataset, whole in memory (compared by identity, as it holds tensors).

    Attributes:
        x: float32 inputs, ``(N, C, H, W)`` for images, ``(N, 64)`` for digits, normalized.
        y: int64 class indices, ``(N,)``.
    """

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} rows but y has {self.y.shape[0]}")

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True, eq=False)
class DatasetSplits:
    """A dataset split into train / validation / test (compared by identity).

    Attributes:
        name: One of :data:`DATASETS`.
        train: Training split.
        valid: Validation split (from the official training set).
        test: The official test set (or a stratified subset of it).
        n_classes: Number of classes.
        input_shape: Per-sample shape, e.g. ``(1, 28, 28)``, ``(3, 32, 32)``, ``(64,)``.
        class_names: Names of the classes, by index.
        mean: Per-channel mean subtracted (in [0, 1] pixel units).
        std: Per-channel standard deviation divided by.
    """

    name: str
    train: Split
    valid: Split
    test: Split
    n_classes: int
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...]
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()


@dataclass(frozen=True, eq=False)
class RawDataset:
    """A dataset as decoded, before splitting and normalization (read-only numpy arrays).

    Attributes:
        name: One of :data:`DATASETS`.
        train_x: uint8 ``(N, C, H, W)`` training images (digits: ``(N, 1, 8, 8)``).
        train_y: int64 ``(N,)`` labels.
        test_x: uint8 test images.
        test_y: int64 test labels.
        class_names: Class names by index.
        max_value: Largest possible pixel value (255; 16 for digits).
        source: Where the data was read from.
        mean: Per-channel mean of ``train_x / max_value``.
        std: Per-channel standard deviation of ``train_x / max_value``.
    """

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    class_names: tuple[str, ...]
    max_value: int
    source: str
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()


def default_cache_dir() -> Path:
    """``$OPTUNA_GAMMA_CACHE``, else ``$XDG_CACHE_HOME/optuna-gamma``, else
    ``~/.cache/optuna-gamma``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "optuna-gamma"


# --------------------------------------------------------------------------------------------
# Locating and materializing files


def _check_name(name: Any) -> str:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return name


def _missing(name: str, tried: Sequence[str], cache: Path) -> FileNotFoundError:
    lines = "\n  ".join(tried)
    return FileNotFoundError(
        f"dataset {name!r} not found; looked for:\n  {lines}\n"
        f"Point the data root at a folder holding these files, or pass download=True "
        f"(command line: --download) to let torchvision download it into "
        f"{cache / 'downloads' / name}."
    )


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _find_md5sums(start: Path, stop: Path | None) -> Path | None:
    """The nearest ``MD5SUMS`` in ``start`` or its parents, not going above ``stop``."""
    d = start.resolve()
    top = stop.resolve() if stop is not None else d
    while True:
        cand = d / "MD5SUMS"
        if cand.is_file():
            return cand
        if d == top or d.parent == d or top not in d.parents:
            return None
        d = d.parent


def _verify_md5sums(files: Sequence[Path], md5sums: Path | None) -> None:
    if md5sums is None:
        return
    table: dict[str, str] = {}
    for line in md5sums.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            table[parts[1].lstrip("*")] = parts[0].lower()
    for f in files:
        expected = table.get(f.name)
        if expected is None:
            continue
        got = _md5(f)
        if got != expected:
            raise ValueError(f"md5 of {str(f)!r} is {got}, but {str(md5sums)!r} lists {expected}")


def _stamp(sources: Sequence[Path]) -> str:
    return json.dumps(
        [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in sources],
        sort_keys=True,
    )


def _copy_decompressed(src: Path, out: BinaryIO) -> None:
    """Copy ``src`` into ``out``, gunzipping it if its name ends in ``.gz``."""
    opener = gzip.open if src.suffix == ".gz" else open
    try:
        with opener(src, "rb") as fin:
            shutil.copyfileobj(fin, out, 1 << 20)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:  # truncated or not gzip
        raise ValueError(
            f"{str(src)!r} is damaged ({type(err).__name__}: {err or 'truncated'}); "
            "replace it with a complete copy"
        ) from None


def _idx_dir_candidates(name: str, root: Path | None, cache: Path) -> list[Path]:
    cls_dir = "MNIST" if name == "mnist" else "FashionMNIST"
    out: list[Path] = []
    if root is not None:
        out += [root / name / cls_dir / "raw", root / cls_dir / "raw", root / name, root]
    if name == "fashion-mnist":
        out.append(DEBIAN_FASHION_MNIST_DIR)
    out.append(cache / "downloads" / name / cls_dir / "raw")
    return out


def _idx_files_in(d: Path) -> list[Path] | None:
    """The four idx files in ``d`` (each gzipped or not), or None if one is missing."""
    found = []
    for f in _IDX_FILES:
        if (d / f).is_file():
            found.append(d / f)
        elif (d / f"{f}.gz").is_file():
            found.append(d / f"{f}.gz")
        else:
            return None
    return found


def _prepare_idx(name: str, root: Path | None, cache: Path, download: bool) -> tuple[Path, str]:
    """A torchvision root for (Fashion)MNIST holding the un-gzipped raw files, and the source."""
    cls_dir = "MNIST" if name == "mnist" else "FashionMNIST"
    candidates = _idx_dir_candidates(name, root, cache)
    for d in candidates:
        files = _idx_files_in(d)
        if files is None:
            continue
        md5_stop = root if root is not None and root in d.parents else d
        _verify_md5sums([f for f in files if f.suffix == ".gz"], _find_md5sums(d, md5_stop))
        if d.name == "raw" and d.parent.name == cls_dir and all(f.suffix != ".gz" for f in files):
            return d.parent.parent, str(d)
        target_root = cache / "extracted" / name
        raw = target_root / cls_dir / "raw"
        stamp_file = raw / "SOURCE.json"
        stamp = _stamp(files)
        if not (stamp_file.is_file() and stamp_file.read_text() == stamp and _idx_files_in(raw)):
            for src, base in zip(files, _IDX_FILES):
                atomic_write(raw / base, functools.partial(_copy_decompressed, src))
            atomic_write(stamp_file, lambda out: out.write(stamp.encode()))
        return target_root, str(d)
    if download:
        dl_root = cache / "downloads" / name
        dl_root.mkdir(parents=True, exist_ok=True)
        _torchvision_class(name)(root=str(dl_root), train=True, download=True)
        return dl_root, f"torchvision download into {dl_root}"
    tried = [f"{d}/{{{','.join(f + '[.gz]' for f in _IDX_FILES)}}}" for d in candidates]
    raise _missing(name, tried, cache)


def _cifar_candidates(root: Path | None, cache: Path) -> list[Path]:
    out: list[Path] = []
    if root is not None:
        out += [root / "cifar10", root]
    out.append(cache / "downloads" / "cifar10")
    return out


def _safe_extract(archive: Path, dest: Path) -> None:
    """Extract ``archive`` into ``dest``; a member that would land outside it (``../``, an
    absolute path or link), a damaged or truncated archive: :class:`ValueError` naming both."""
    try:
        _extract(archive, dest)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        if isinstance(err, getattr(tarfile, "FilterError", ())):  # filter="data" refused it
            member = getattr(getattr(err, "tarinfo", None), "name", "?")
            raise ValueError(
                f"refusing to extract {member!r} from {str(archive)!r}: {err}"
            ) from None
        raise ValueError(f"{str(archive)!r} is not a readable .tar.gz archive ({err})") from None


def _extract(archive: Path, dest: Path) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        try:
            tar.extractall(dest, filter="data")
        except TypeError:  # Python < 3.11.4 has no extraction filters
            for member in tar.getmembers():
                p = (dest / member.name).resolve()
                if dest.resolve() not in p.parents or not (member.isfile() or member.isdir()):
                    raise ValueError(
                        f"refusing to extract {member.name!r} from {str(archive)!r}"
                    ) from None
            tar.extractall(dest)


def _prepare_cifar(root: Path | None, cache: Path, download: bool) -> tuple[Path, str]:
    """A torchvision root holding ``cifar-10-batches-py``, and the source."""
    candidates = _cifar_candidates(root, cache)
    for d in candidates:
        if all((d / _CIFAR_DIR / f).is_file() for f in _CIFAR_FILES):
            return d, str(d / _CIFAR_DIR)
        archive = d / _CIFAR_ARCHIVE
        if not archive.is_file():
            continue
        target_root = cache / "extracted" / "cifar10"
        final = target_root / _CIFAR_DIR
        stamp = _stamp([archive])
        stamp_file = final / "SOURCE.json"  # inside the folder: data and stamp appear together
        ok = stamp_file.is_file() and stamp_file.read_text() == stamp
        if not (ok and all((final / f).is_file() for f in _CIFAR_FILES)):
            _verify_md5sums([archive], _find_md5sums(d, d))
            target_root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".extract.", dir=target_root))
            try:
                _safe_extract(archive, tmp)
                if not all((tmp / _CIFAR_DIR / f).is_file() for f in _CIFAR_FILES):
                    raise ValueError(
                        f"{str(archive)!r} does not hold {_CIFAR_DIR}/{{{','.join(_CIFAR_FILES)}}}"
                    )
                (tmp / _CIFAR_DIR / "SOURCE.json").write_text(stamp)
                if final.exists():  # stale (another source): move it aside, removed with tmp
                    try:
                        os.replace(final, tmp / "stale")
                    except FileNotFoundError:  # another process moved it first
                        pass
                try:
                    os.replace(tmp / _CIFAR_DIR, final)
                except OSError:  # another process got there first; fine if it is complete
                    if not all((final / f).is_file() for f in _CIFAR_FILES):
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return target_root, str(archive)
    if download:
        dl_root = cache / "downloads" / "cifar10"
        dl_root.mkdir(parents=True, exist_ok=True)
        _torchvision_class("cifar10")(root=str(dl_root), train=True, download=True)
        return dl_root, f"torchvision download into {dl_root}"
    tried = []
    for d in candidates:
        tried += [f"{d / _CIFAR_DIR}/{{{','.join(_CIFAR_FILES)}}}", str(d / _CIFAR_ARCHIVE)]
    raise _missing("cifar10", tried, cache)


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only what the CIFAR-10 python batches hold: dicts, lists, strings, numbers and
    NumPy arrays (``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``).
    Any other global -- the way a crafted pickle runs code -- is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR-10 batch")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> dict[str, Any]:
    """One CIFAR-10 python batch through :class:`_CifarUnpickler` (keys decoded to str)."""
    try:
        with open(path, "rb") as f:
            obj = _CifarUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"{str(path)!r} is not a CIFAR-10 python batch: {err}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{str(path)!r} is not a CIFAR-10 python batch (a {type(obj).__name__})")
    return {k.decode() if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _load_cifar(
    folder: Path,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], tuple[str, ...]]:
    """((train x, y), (test x, y), class names) from a ``cifar-10-batches-py`` folder; ``x`` as
    uint8 ``(N, 3, 32, 32)``."""

    def batch(name: str) -> tuple[np.ndarray, np.ndarray]:
        d = _read_cifar_batch(folder / name)
        x, y = d.get("data"), d.get("labels")
        if (
            not isinstance(x, np.ndarray)
            or x.dtype != np.uint8
            or x.ndim != 2
            or x.shape[1] != 3072
        ):
            raise ValueError(f"{str(folder / name)!r}: 'data' is not a uint8 (N, 3072) array")
        labels = np.asarray(y, dtype=np.int64) if isinstance(y, list) else None
        if labels is None or labels.shape != (x.shape[0],) or labels.min() < 0 or labels.max() > 9:
            raise ValueError(f"{str(folder / name)!r}: 'labels' is not a list of N classes 0..9")
        return x.reshape(-1, 3, 32, 32), labels

    train = [batch(f"data_batch_{i}") for i in range(1, 6)]
    test = batch("test_batch")
    meta = _read_cifar_batch(folder / "batches.meta")
    names = meta.get("label_names")
    if not isinstance(names, list) or len(names) != 10:
        raise ValueError(f"{str(folder / 'batches.meta')!r} has no 10 label_names")
    classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    return (
        (np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])),
        test,
        classes,
    )


def _torchvision_class(name: str) -> type:
    from torchvision import datasets

    return {
        "mnist": datasets.MNIST,
        "fashion-mnist": datasets.FashionMNIST,
        "cifar10": datasets.CIFAR10,
    }[name]


# --------------------------------------------------------------------------------------------
# Decoding


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@functools.lru_cache(maxsize=4)
def _load_raw_cached(name: str, root: str | None, cache: str, download: bool) -> RawDataset:
    root_p = Path(root) if root is not None else None
    cache_p = Path(cache)
    if name == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        bunch = load_digits()
        images = bunch.images.astype(np.uint8)[:, None, :, :]
        target = bunch.target.astype(np.int64)
        tr, te = train_test_split(
            np.arange(len(target)),
            test_size=_DIGITS_TEST_FRACTION,
            stratify=target,
            random_state=_DIGITS_TEST_SEED,
        )
        tr.sort()
        te.sort()
        return RawDataset(
            name,
            _readonly(images[tr]),
            _readonly(target[tr]),
            _readonly(images[te]),
            _readonly(target[te]),
            tuple(str(c) for c in bunch.target_names),
            16,
            "sklearn.datasets.load_digits",
            *_channel_stats(images[tr], 16),
        )
    if name == "cifar10":
        tv_root, source = _prepare_cifar(root_p, cache_p, download)
        (trx, trY), (tex, teY), classes = _load_cifar(tv_root / _CIFAR_DIR)
    else:
        tv_root, source = _prepare_idx(name, root_p, cache_p, download)
        cls = _torchvision_class(name)
        parts = []
        for train in (True, False):
            ds = cls(root=str(tv_root), train=train, download=False)
            data = np.asarray(ds.data)[:, None, :, :]  # uint8 (N, H, W) -> (N, 1, H, W)
            parts.append((data, np.asarray(ds.targets, dtype=np.int64)))
            classes = tuple(ds.classes)
        (trx, trY), (tex, teY) = parts
    trx, tex = np.ascontiguousarray(trx, dtype=np.uint8), np.ascontiguousarray(tex, dtype=np.uint8)
    return RawDataset(
        name,
        _readonly(trx),
        _readonly(trY),
        _readonly(tex),
        _readonly(teY),
        classes,
        255,
        source,
        *_channel_stats(trx, 255),
    )


def _resolve(
    root: str | os.PathLike[str] | None, cache_dir: str | os.PathLike[str] | None
) -> tuple[str | None, str]:
    r = None if root is None else str(Path(root).expanduser().resolve())
    c = (
        str(Path(cache_dir).expanduser().resolve())
        if cache_dir is not None
        else str(default_cache_dir().resolve())
    )
    return r, c


def load_raw(
    name: str,
    root: str | os.PathLike[str] | None,
    *,
    download: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
) -> RawDataset:
    """Decode a dataset into uint8 arrays (memoized per process; see the module docstring).

    Args:
        name: One of :data:`DATASETS`.
        root: Data root (see the module docstring); ignored for ``"digits"``.
        download: Let torchvision download a dataset found nowhere under ``root``.
        cache_dir: Cache folder; ``None`` means :func:`default_cache_dir`.

    Raises:
        ValueError: Unknown ``name``, or a file fails its ``MD5SUMS`` check.
        FileNotFoundError: The dataset is not found and ``download`` is False.
    """
    _check_name(name)
    if name != "digits" and root is None and not download:
        raise ValueError(
            f"dataset {name!r} needs a data root (or download=True, command line: --download)"
        )
    r, c = _resolve(root, cache_dir)
    if name == "digits":  # bundled with scikit-learn: no root, no cache, no download
        return _load_raw_cached(name, None, "", False)
    return _load_raw_cached(name, r, c, bool(download))


# --------------------------------------------------------------------------------------------
# Splitting and normalization


def _channel_stats(x: np.ndarray, max_value: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std of ``x / max_value`` (x uint8, (N, C, ...)), by
    histograms."""
    means, stds = [], []
    values = np.arange(256, dtype=np.float64) / max_value
    for c in range(x.shape[1]):
        hist = np.bincount(x[:, c].reshape(-1), minlength=256).astype(np.float64)
        n = hist.sum()
        mean = float(hist @ values / n)
        var = float(hist @ (values - mean) ** 2 / n)
        means.append(mean)
        stds.append(math.sqrt(var))
    return tuple(means), tuple(stds)


def _to_split(
    x: np.ndarray,
    y: np.ndarray,
    idx: np.ndarray,
    max_value: int,
    mean: Sequence[float],
    std: Sequence[float],
    flatten: bool,
) -> Split:
    import torch

    xt = torch.from_numpy(np.ascontiguousarray(x[idx])).to(torch.float32).div_(max_value)
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, *([1] * (xt.ndim - 2)))
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, *([1] * (xt.ndim - 2)))
    xt.sub_(m).div_(s)
    if flatten:
        xt = xt.reshape(xt.shape[0], -1)
    return Split(x=xt, y=torch.from_numpy(np.array(y[idx], dtype=np.int64)))


def _check_count(label: str, value: Any, limit: int) -> int | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or not 1 <= value <= limit
    ):
        raise ValueError(f"{label} must be None or an int in [1, {limit}], got {value!r}")
    return int(value)


def _stratified_pick(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` indices of ``y`` drawn stratified by class (all of them, in order, if
    ``n == len(y)``)."""
    if n == len(y):
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split

    picked, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)
    return np.sort(picked)


def load_dataset(
    name: str,
    root: str | os.PathLike[str] | None,
    *,
    subset: int | None = None,
    valid_fraction: float = 0.2,
    seed: int = 0,
    download: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    test_subset: int | None = None,
) -> DatasetSplits:
    """Load a dataset as normalized train / validation / test tensors.

    Args:
        name: One of :data:`DATASETS`.
        root: Data root (see the module docstring); ignored for ``"digits"``.
        subset: Number of training images to use (train + validation), drawn stratified by
            class; ``None`` uses the whole training set. The thesis uses 500.
        valid_fraction: Fraction of those images held out for validation, in (0, 1);
            ``ceil(valid_fraction * n)`` of them.
        seed: Non-negative int; fixes the subset and the train/validation split.
        download: Let torchvision download a dataset found nowhere under ``root``
            (command line: ``--download``).
        cache_dir: Cache folder; ``None`` means :func:`default_cache_dir`.
        test_subset: Number of test images (stratified, drawn with ``seed``); ``None`` keeps the
            whole official test set.

    Returns:
        The splits; inputs float32 ``(N, C, H, W)`` (digits: ``(N, 64)``), labels int64.

    Raises:
        ValueError: Unknown ``name`` (the message lists :data:`DATASETS`), out-of-range
            ``subset``/``valid_fraction``/``seed``/``test_subset``, too few images for a
            stratified split, or a file failing its ``MD5SUMS`` check.
        FileNotFoundError: The dataset is not found and ``download`` is False.
    """
    _check_name(name)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an int in [0, 2**32), got {seed!r}")
    if (
        isinstance(valid_fraction, bool)
        or not isinstance(valid_fraction, (int, float, np.floating))
        or not 0.0 < float(valid_fraction) < 1.0
    ):
        raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction!r}")
    raw = load_raw(name, root, download=download, cache_dir=cache_dir)
    n_total = len(raw.train_y)
    subset = _check_count("subset", subset, n_total)
    test_subset = _check_count("test_subset", test_subset, len(raw.test_y))
    classes = np.unique(raw.train_y)
    n_classes = len(raw.class_names)

    n_pool = n_total if subset is None else subset
    n_valid = math.ceil(float(valid_fraction) * n_pool - 1e-9)
    n_train = n_pool - n_valid
    if min(n_train, n_valid) < len(classes):
        raise ValueError(
            f"subset={subset!r}, valid_fraction={valid_fraction!r} gives {n_train} training and "
            f"{n_valid} validation images; a stratified split needs at least {len(classes)} in "
            f"each"
        )
    from sklearn.model_selection import train_test_split

    tr_idx, va_idx = train_test_split(
        np.arange(n_total),
        train_size=n_train,
        test_size=n_valid,
        stratify=raw.train_y,
        random_state=int(seed),
    )
    tr_idx.sort()
    va_idx.sort()
    if test_subset is None:
        te_idx = np.arange(len(raw.test_y))
    else:
        if test_subset < len(np.unique(raw.test_y)):
            raise ValueError(f"test_subset={test_subset!r} is smaller than the number of classes")
        te_idx = _stratified_pick(raw.test_y, test_subset, int(seed))

    mean, std = raw.mean, raw.std
    flatten = name == "digits"
    train = _to_split(raw.train_x, raw.train_y, tr_idx, raw.max_value, mean, std, flatten)
    valid = _to_split(raw.train_x, raw.train_y, va_idx, raw.max_value, mean, std, flatten)
    test = _to_split(raw.test_x, raw.test_y, te_idx, raw.max_value, mean, std, flatten)
    return DatasetSplits(
        name=name,
        train=train,
        valid=valid,
        test=test,
        n_classes=n_classes,
        input_shape=tuple(int(s) for s in train.x.shape[1:]),
        class_names=raw.class_names,
        mean=mean,
        std=std,
    )
