"""Named datasets (digits, MNIST, Fashion-MNIST) and datasets read from a path.

MNIST-style datasets are four IDX files, each raw or gzip-compressed. They are
looked for in the folder given as ``data_dir``, then in the folder named by the
``MATRIXPROP_DATA`` environment variable, then in the user cache folder
(``$XDG_CACHE_HOME/matrixprop`` or ``~/.cache/matrixprop``); in each of these the
files may lie in the folder itself or in a subfolder named after the dataset
(``DIR/mnist/``). Missing files are downloaded into the cache folder when allowed.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.request
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.typing import DTypeLike

from .errors import DataError
from .idx import idx_chunks, read_idx
from .preprocessing import train_validation_split
from .tabular import read_csv, read_npz

__all__ = ["DATASET_NAMES", "Dataset", "cache_dir", "load_dataset"]

DATASET_NAMES = ("digits", "mnist", "fashion-mnist")
_ALIASES = {name: name for name in DATASET_NAMES} | {"fashion_mnist": "fashion-mnist"}
_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_TIMEOUT_S = 20.0
_MAX_DOWNLOAD = 100 * 2**20
_CHUNK = 1 << 20

_Parts = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class _Source:
    """Where a named IDX dataset is published and how to recognise its files."""

    mirrors: tuple[str, ...]
    sha256: Mapping[str, str] = field(default_factory=dict)  # of the decompressed bytes
    md5_gz: Mapping[str, str] = field(default_factory=dict)  # of the published .gz files


_SOURCES = {
    "mnist": _Source(
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        sha256={
            "train-images-idx3-ubyte": (
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
            ),
            "train-labels-idx1-ubyte": (
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
            ),
            "t10k-images-idx3-ubyte": (
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
            ),
            "t10k-labels-idx1-ubyte": (
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
            ),
        },
    ),
    # Zalando publishes MD5 sums of its .gz files only: they check downloads.
    "fashion-mnist": _Source(
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        md5_gz={
            "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
}


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset split into training and test parts.

    Attributes
    ----------
    name : str
        The dataset's name, or the file or folder name it was read from.
    X_train, X_test : numpy.ndarray
        Features, one flattened sample per row: (n_train, n_features), (n_test, n_features).
    y_train, y_test : numpy.ndarray
        Targets: int64 class labels, or other targets as read, (n,) or (n, k).
    n_classes : int or None
        Number of classes (largest label plus one) when the targets are non-negative
        integer labels, None otherwise.
    feature_shape : tuple of int
        Shape of one sample before flattening, such as (28, 28) for MNIST.
    """

    name: str
    X_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    X_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    n_classes: int | None
    feature_shape: tuple[int, ...]

    @property
    def n_features(self) -> int:
        """Number of features of a flattened sample."""
        return self.X_train.shape[1]


def cache_dir() -> Path:
    """The user cache folder: ``$XDG_CACHE_HOME/matrixprop`` or ``~/.cache/matrixprop``."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "matrixprop"


def load_dataset(
    name_or_path: str | os.PathLike[str],
    data_dir: str | os.PathLike[str] | None = None,
    *,
    dtype: DTypeLike = "float32",
    scale: bool = True,
    download: bool = True,
    test_fraction: float = 0.2,
    seed: int | None = 0,
) -> Dataset:
    """Load a named dataset, or one from a CSV file, an NPZ archive or an IDX folder.

    Parameters
    ----------
    name_or_path : str or path-like
        ``"digits"`` (scikit-learn's 8x8 digits, no download), ``"mnist"``,
        ``"fashion-mnist"``; or a path: a ``.csv`` file (see `read_csv`; the target
        is its last column), a ``.npz`` archive (see `read_npz`), or a folder that
        holds the four IDX files ``train-images-idx3-ubyte``,
        ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
        ``t10k-labels-idx1-ubyte``, each raw or ``.gz``.
    data_dir : str or path-like, optional
        Folder searched first for MNIST-style files (see the module docstring).
    dtype : data-type, default "float32"
        Floating type of the features.
    scale : bool, default True
        Map pixel values to [0, 1]: the digits' 0..16 and the 0..255 of uint8 images
        (IDX images, and uint8 features of an NPZ archive). With False these pixels
        stay uint8. Other features are only converted to `dtype`.
    download : bool, default True
        Download missing MNIST or Fashion-MNIST files into the cache folder,
        checked against the published checksums.
    test_fraction : float, default 0.2
        Share held out as the test part for sources without a test split (digits,
        CSV, NPZ without ``X_test``); stratified for integer labels.
    seed : int or None, default 0
        Seed of that split.

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        For an unknown name, missing or invalid files, or a failed download. For
        missing files the message says which, where they were looked for and
        where to put them.
    ValueError
        If `dtype` is not a floating type or `test_fraction` not in (0, 1).

    Warns
    -----
    UserWarning
        When MNIST files are valid IDX files but differ from the published ones.
    """
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype: expected a floating type such as float32, got {dtype}")
    key = _ALIASES.get(name_or_path.lower()) if isinstance(name_or_path, str) else None
    if key == "digits":
        return _load_digits(dtype, scale, test_fraction, seed)
    if key is not None:
        return _load_named_idx(key, data_dir, dtype, scale, download)
    path = Path(name_or_path)
    suffix = path.suffix.lower()
    if path.is_dir():
        files = _find_files(path)
        if len(files) < len(_IDX_FILES):
            missing = ", ".join(f"{stem}[.gz]" for stem in _IDX_FILES if stem not in files)
            raise DataError(f"{path}: this IDX folder lacks {missing}")
        return _from_idx(path.name, files, dtype, scale, known=None)
    if path.is_file() and suffix == ".csv":
        X, y = read_csv(path)
        X_train, X_test, y_train, y_test = train_validation_split(X, y, test_fraction, seed)
        return _dataset(path.name, (X_train, y_train, X_test, y_test), dtype, scale)
    if path.is_file() and suffix == ".npz":
        arrays = read_npz(path)
        if "X_test" in arrays:
            parts = (arrays["X"], arrays["y"], arrays["X_test"], arrays["y_test"])
        else:
            X_train, X_test, y_train, y_test = train_validation_split(
                arrays["X"], arrays["y"], test_fraction, seed
            )
            parts = (X_train, y_train, X_test, y_test)
        return _dataset(path.name, parts, dtype, scale)
    if path.is_file():
        raise DataError(
            f"{path.name}: unknown file type; expected .csv, .npz or a folder of IDX files"
        )
    raise DataError(
        f"unknown dataset {str(name_or_path)!r}: neither one of {', '.join(DATASET_NAMES)} "
        "nor an existing .csv file, .npz file or folder of IDX files"
    )


def _load_digits(dtype: np.dtype, scale: bool, test_fraction: float, seed: int | None) -> Dataset:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError(
            "the 'digits' dataset needs scikit-learn: pip install scikit-learn"
        ) from None
    bunch = load_digits()
    images = bunch.images.astype(np.uint8)  # whole numbers 0..16
    X_train, X_test, y_train, y_test = train_validation_split(
        images, bunch.target, test_fraction, seed
    )
    return _dataset("digits", (X_train, y_train, X_test, y_test), dtype, scale, pixel_max=16)


def _dataset(
    name: str,
    parts: _Parts,
    dtype: np.dtype,
    scale: bool,
    *,
    pixel_max: int | None = None,
    n_classes: int | None = None,
) -> Dataset:
    """Flatten and convert the features, make labels int64, build the Dataset.

    uint8 features are pixels of maximum `pixel_max` (255 unless given).
    """
    X_train, y_train, X_test, y_test = parts
    if X_train.dtype == np.uint8 and pixel_max is None:
        pixel_max = 255
    y_train, y_test = _targets(y_train), _targets(y_test)
    if n_classes is None and y_train.ndim == 1 and y_train.dtype == np.int64:
        labels = np.concatenate([y_train, y_test])
        if labels.size and labels.min() >= 0:
            n_classes = int(labels.max()) + 1
    return Dataset(
        name=name,
        X_train=_features(X_train, dtype, scale, pixel_max),
        y_train=y_train,
        X_test=_features(X_test, dtype, scale, pixel_max),
        y_test=y_test,
        n_classes=n_classes,
        feature_shape=tuple(X_train.shape[1:]),
    )


def _features(X: np.ndarray, dtype: np.dtype, scale: bool, pixel_max: int | None) -> np.ndarray:
    """(n, ...) samples as (n, n_features): pixels scaled or kept uint8, others cast."""
    X = X.reshape(len(X), -1)
    if X.dtype != np.uint8 or pixel_max is None:
        return X.astype(dtype, copy=False)
    if not scale:
        return X
    scaled = X.astype(dtype)
    scaled /= pixel_max
    return scaled


def _targets(y: np.ndarray) -> np.ndarray:
    """Integer labels as int64; other targets unchanged."""
    return y.astype(np.int64) if y.dtype.kind in "biu" else y


def _load_named_idx(
    name: str, data_dir: str | os.PathLike[str] | None, dtype: np.dtype, scale: bool, download: bool
) -> Dataset:
    found = [(folder, _find_files(folder)) for folder in _search_folders(name, data_dir)]
    files = next((f for _, f in found if len(f) == len(_IDX_FILES)), None)
    if files is None and not download:
        raise DataError(_missing_message(name, found, "downloading is off"))
    if files is None:
        files = _download(name, found)
    return _from_idx(name, files, dtype, scale, known=_SOURCES[name])


def _search_folders(name: str, data_dir: str | os.PathLike[str] | None) -> list[Path]:
    """The folders to search in order, each root followed by its subfolder `name`."""
    roots = [Path(data_dir)] if data_dir is not None else []
    if os.environ.get("MATRIXPROP_DATA"):
        roots.append(Path(os.environ["MATRIXPROP_DATA"]))
    roots.append(cache_dir())
    folders: list[Path] = []
    for root in roots:
        for folder in (root.expanduser(), root.expanduser() / name):
            if folder not in folders:
                folders.append(folder)
    return folders


def _find_files(folder: Path) -> dict[str, Path]:
    """The IDX files present in `folder`, by stem; a raw file is preferred to its .gz."""
    found = {}
    for stem in _IDX_FILES:
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                found[stem] = candidate
                break
    return found


def _missing_message(name: str, found: list[tuple[Path, dict[str, Path]]], why: str) -> str:
    partial = [
        f"{folder} lacks {', '.join(stem for stem in _IDX_FILES if stem not in files)}"
        for folder, files in found
        if files
    ]
    return (
        f"{name}: the files {', '.join(_IDX_FILES)} (each raw or .gz) were not found together "
        f"in any of {', '.join(str(folder) for folder, _ in found)}"
        + (f" ({'; '.join(partial)})" if partial else "")
        + f"; {why}. Put the four files in one of these folders, or point --data-dir "
        "(data_dir=) or the MATRIXPROP_DATA environment variable at the folder that holds them"
    )


def _from_idx(
    name: str, files: Mapping[str, Path], dtype: np.dtype, scale: bool, known: _Source | None
) -> Dataset:
    """Read and validate the four IDX files; warn when a known dataset's checksum differs."""
    arrays = {stem: read_idx(path) for stem, path in files.items()}
    for stem, array in arrays.items():
        expected = known.sha256.get(stem) if known is not None else None
        digest = _digest("sha256", idx_chunks(array)) if expected else None
        if digest != expected:
            warnings.warn(
                f"{files[stem]}: sha256 of the decompressed file is {digest}, not the published "
                f"{name} file's {expected}; the file is used as it is",
                stacklevel=4,
            )
    parts = []
    for prefix in ("train", "t10k"):
        images, labels = f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"
        _check_pair(
            arrays[images],
            arrays[labels],
            files[images].name,
            files[labels].name,
            known is not None,
        )
        parts += [arrays[images], arrays[labels]]
    if parts[0].shape[1:] != parts[2].shape[1:]:
        raise DataError(
            f"{name}: training samples have shape {parts[0].shape[1:]} "
            f"but test samples {parts[2].shape[1:]}"
        )
    return _dataset(name, tuple(parts), dtype, scale, n_classes=10 if known else None)


def _check_pair(
    images: np.ndarray, labels: np.ndarray, images_name: str, labels_name: str, mnist: bool
) -> None:
    """Validate an images/labels pair; `mnist` adds the 28x28 pixels and 10 classes."""
    if images.ndim < 2:
        raise DataError(f"{images_name}: expected samples (n, ...), got shape {images.shape}")
    if mnist and (images.shape[1:] != (28, 28) or images.dtype != np.uint8):
        raise DataError(
            f"{images_name}: expected 28x28 uint8 images, got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(
            f"{labels_name}: expected a 1-D array of integer labels, "
            f"got {labels.dtype} of shape {labels.shape}"
        )
    if len(images) != len(labels):
        raise DataError(
            f"{images_name} holds {len(images)} samples but {labels_name} "
            f"holds {len(labels)} labels"
        )
    bad = np.flatnonzero((labels < 0) | (labels >= 10)) if mnist else np.flatnonzero(labels < 0)
    if bad.size:
        allowed = "outside 0..9" if mnist else "negative"
        raise DataError(f"{labels_name}: label {labels[bad[0]]} at index {bad[0]} is {allowed}")


def _digest(algorithm: str, chunks: Iterable[bytes | memoryview]) -> str:
    """Hex digest of the concatenated chunks."""
    hasher = hashlib.new(algorithm, usedforsecurity=False)
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.hexdigest()


def _download(name: str, found: list[tuple[Path, dict[str, Path]]]) -> dict[str, Path]:
    """Download the files missing from the cache folder; raise DataError when it fails."""
    folder = cache_dir() / name
    files = _find_files(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for stem in _IDX_FILES:
            if stem not in files:
                files[stem] = _download_file(_SOURCES[name], stem, folder / f"{stem}.gz")
    except (DataError, OSError) as exc:
        why = f"downloading into {folder} failed: {exc}"
        raise DataError(_missing_message(name, found, why)) from None
    return files


def _download_file(source: _Source, stem: str, destination: Path) -> Path:
    """Fetch one file from the first mirror that serves it with the right checksum."""
    failures = []
    for mirror in source.mirrors:
        url = f"{mirror}{stem}.gz"
        fd, name = tempfile.mkstemp(dir=destination.parent, prefix=f".{stem}.", suffix=".part")
        temporary = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                _fetch(url, out)
            _verify(temporary, source, stem)
            os.replace(temporary, destination)
            return destination
        except (OSError, DataError, http.client.HTTPException) as exc:
            failures.append(f"{url}: {exc}")
        finally:
            temporary.unlink(missing_ok=True)
    raise DataError("; ".join(failures))


def _verify(path: Path, source: _Source, stem: str) -> None:
    """Check a downloaded file's structure and its published checksum."""
    array = read_idx(path)
    if stem in source.sha256:
        digest, expected = _digest("sha256", idx_chunks(array)), source.sha256[stem]
    else:
        with path.open("rb") as stream:
            digest = _digest("md5", iter(lambda: stream.read(_CHUNK), b""))
        expected = source.md5_gz[stem]
    if digest != expected:
        raise DataError(f"checksum {digest} differs from the published {expected}")


def _fetch(url: str, out: BinaryIO) -> None:
    """Copy the resource at `url` into `out`: the only function that uses the network."""
    request = urllib.request.Request(url, headers={"User-Agent": "matrixprop"})
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
        total = 0
        while chunk := response.read(_CHUNK):
            total += len(chunk)
            if total > _MAX_DOWNLOAD:
                raise DataError(f"larger than {_MAX_DOWNLOAD} bytes, so not this dataset's file")
            out.write(chunk)
