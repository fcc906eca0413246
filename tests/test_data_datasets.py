"""Tests of load_dataset (digits, MNIST, paths), its file search and downloads, and the
preprocessing helpers. No test uses the network: the downloader is replaced."""

from __future__ import annotations

import gzip
import hashlib
import urllib.error
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matrixprop.data import (
    DataError,
    Dataset,
    load_dataset,
    one_hot,
    train_validation_split,
    write_idx,
)
from matrixprop.data import datasets as datasets_module

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No user cache, no MATRIXPROP_DATA, and a downloader that fails the test if called."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("MATRIXPROP_DATA", raising=False)

    def no_network(url, out):
        pytest.fail(f"a test tried to download {url}")

    monkeypatch.setattr(datasets_module, "_fetch", no_network)


@pytest.fixture(scope="module")
def shared_datasets() -> Path:
    if not (SHARED / "mnist").is_dir():
        pytest.skip(f"the shared MNIST files are absent ({SHARED / 'mnist'} not found)")
    return SHARED


@pytest.fixture(scope="module")
def mnist(shared_datasets) -> Dataset:
    """Full MNIST, read once for the module; any checksum warning is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return load_dataset("mnist", shared_datasets, download=False)


def fake_idx_set(
    folder: Path, n_train: int = 12, n_test: int = 6, gz: bool = True, seed: int = 0
) -> dict[str, np.ndarray]:
    """Write four small MNIST-shaped IDX files; return their arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for stem, array in arrays.items():
        write_idx(folder / (f"{stem}.gz" if gz else stem), array)
    return arrays


def load_fake(*args, **kwargs) -> Dataset:
    """load_dataset on synthetic MNIST files, which must warn that checksums differ."""
    with pytest.warns(UserWarning, match="sha256 of the decompressed file") as record:
        dataset = load_dataset(*args, **kwargs)
    assert len(record) == 4
    return dataset


# ------------------------------------------------------------------------------ real MNIST


def test_mnist_shapes_types_and_scale(mnist):
    assert mnist.name == "mnist" and mnist.n_classes == 10 and mnist.feature_shape == (28, 28)
    assert mnist.X_train.shape == (60000, 784) and mnist.X_test.shape == (10000, 784)
    assert mnist.X_train.dtype == np.float32 and mnist.X_test.dtype == np.float32
    assert mnist.X_train.min() == 0.0 and mnist.X_train.max() == 1.0
    assert mnist.y_train.dtype == np.int64 and mnist.n_features == 784


def test_mnist_labels_match_the_published_counts(mnist):
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert np.bincount(mnist.y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(mnist.y_test).tolist() == MNIST_TEST_COUNTS


def test_mnist_through_the_environment_variable_unscaled(monkeypatch, shared_datasets, mnist):
    monkeypatch.setenv("MATRIXPROP_DATA", str(shared_datasets))
    raw = load_dataset("mnist", download=False, scale=False)
    assert raw.X_test.dtype == np.uint8 and raw.X_test.shape == (10000, 784)
    np.testing.assert_array_equal(raw.X_test.astype(np.float32) / 255, mnist.X_test)
    np.testing.assert_array_equal(raw.y_test, mnist.y_test)


# ------------------------------------------------------------------ search, layouts, formats


@pytest.mark.parametrize("subfolder", [False, True])
@pytest.mark.parametrize("gz", [False, True])
def test_both_layouts_raw_and_gzip_through_data_dir(tmp_path, subfolder, gz):
    arrays = fake_idx_set(tmp_path / "data" / ("mnist" if subfolder else ""), gz=gz)
    dataset = load_fake("mnist", tmp_path / "data", download=False)
    assert dataset.X_train.shape == (12, 784) and dataset.X_test.shape == (6, 784)
    expected = arrays["train-images-idx3-ubyte"].reshape(12, -1).astype(np.float32) / 255
    np.testing.assert_allclose(dataset.X_train, expected, rtol=1e-7)
    np.testing.assert_array_equal(dataset.y_test, arrays["t10k-labels-idx1-ubyte"])


def test_search_order_data_dir_then_environment_then_cache(tmp_path, monkeypatch):
    fake_idx_set(tmp_path / "xdg-cache" / "matrixprop" / "mnist", n_train=10)
    assert load_fake("mnist", download=False).X_train.shape[0] == 10
    fake_idx_set(tmp_path / "env", n_train=11)
    monkeypatch.setenv("MATRIXPROP_DATA", str(tmp_path / "env"))
    assert load_fake("mnist", download=False).X_train.shape[0] == 11
    fake_idx_set(tmp_path / "arg" / "mnist", n_train=13)
    assert load_fake("mnist", tmp_path / "arg", download=False).X_train.shape[0] == 13


def test_missing_files_say_which_where_and_how_to_fix(tmp_path, monkeypatch):
    fake_idx_set(tmp_path / "partial")
    (tmp_path / "partial" / "t10k-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setenv("MATRIXPROP_DATA", str(tmp_path / "env"))
    with pytest.raises(DataError) as info:
        load_dataset("mnist", tmp_path / "partial", download=False)
    message = str(info.value)
    for stem in IDX_FILES:
        assert stem in message
    for folder in ("partial", "partial/mnist", "env", "env/mnist", "xdg-cache/matrixprop/mnist"):
        assert str(tmp_path / folder) in message
    assert f"{tmp_path / 'partial'} lacks t10k-labels-idx1-ubyte" in message
    assert "MATRIXPROP_DATA" in message and "--data-dir" in message
    assert "downloading is off" in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"train-labels-idx1-ubyte": np.zeros(11, np.uint8)}, "holds 12 samples but"),
        (
            {"t10k-labels-idx1-ubyte": np.array([0, 1, 2, 3, 4, 10], np.uint8)},
            "label 10 at index 5",
        ),
        ({"t10k-images-idx3-ubyte": np.zeros((6, 28, 27), np.uint8)}, "expected 28x28 uint8"),
        ({"train-labels-idx1-ubyte": np.zeros((12, 1), np.uint8)}, "1-D array of integer labels"),
    ],
)
def test_inconsistent_mnist_files_are_refused(tmp_path, change, expected):
    fake_idx_set(tmp_path)
    for stem, array in change.items():
        write_idx(tmp_path / f"{stem}.gz", array)
    with pytest.raises(DataError, match=expected), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_dataset("mnist", tmp_path, download=False)


def test_idx_folder_path_is_a_generic_dataset(tmp_path):
    folder = tmp_path / "my-digits"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte", np.full((4, 3, 2), 51, np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.array([0, 1, 2, 1], np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((2, 3, 2), np.uint8))
    with pytest.raises(DataError, match="lacks t10k-labels-idx1-ubyte"):
        load_dataset(folder)
    write_idx(folder / "t10k-labels-idx1-ubyte", np.array([2, 0], np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no checksums for folders of unknown origin
        dataset = load_dataset(str(folder), dtype="float64")
    assert dataset.name == "my-digits" and dataset.n_classes == 3
    assert dataset.feature_shape == (3, 2) and dataset.X_train.shape == (4, 6)
    assert dataset.X_train.dtype == np.float64 and np.all(dataset.X_train == 0.2)


# ---------------------------------------------------------------------------------- download


def gz_bytes(array: np.ndarray, folder: Path) -> bytes:
    write_idx(folder / "tmp.gz", array)
    return (folder / "tmp.gz").read_bytes()


@pytest.fixture
def served(tmp_path, monkeypatch):
    """Files that a fake mirror serves for 'mnist', with their checksums made official."""
    arrays = fake_idx_set(tmp_path / "origin", gz=True)
    payloads = {stem: (tmp_path / "origin" / f"{stem}.gz").read_bytes() for stem in IDX_FILES}
    sha256 = {
        stem: hashlib.sha256(gzip.decompress(data)).hexdigest() for stem, data in payloads.items()
    }
    source = datasets_module._Source(mirrors=("https://one/", "https://two/"), sha256=sha256)
    monkeypatch.setitem(datasets_module._SOURCES, "mnist", source)
    return arrays, payloads


def cache_folder(tmp_path: Path) -> Path:
    return tmp_path / "xdg-cache" / "matrixprop" / "mnist"


def test_download_fills_the_cache_and_is_verified(tmp_path, monkeypatch, served):
    arrays, payloads = served
    requested = []

    def mirror(url, out):
        requested.append(url)
        out.write(payloads[url.rsplit("/", 1)[1].removesuffix(".gz")])

    monkeypatch.setattr(datasets_module, "_fetch", mirror)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset = load_dataset("mnist")
    assert requested == [f"https://one/{stem}.gz" for stem in IDX_FILES]
    assert sorted(p.name for p in cache_folder(tmp_path).iterdir()) == sorted(
        f"{stem}.gz" for stem in IDX_FILES
    )
    np.testing.assert_array_equal(dataset.y_train, arrays["train-labels-idx1-ubyte"])
    monkeypatch.setattr(datasets_module, "_fetch", lambda url, out: pytest.fail("downloaded twice"))
    load_dataset("mnist")


def test_download_with_a_bad_checksum_tries_the_next_mirror(tmp_path, monkeypatch, served):
    arrays, payloads = served
    corrupt = gz_bytes(np.zeros(12, np.uint8), tmp_path)

    def mirrors(url, out):
        stem = url.rsplit("/", 1)[1].removesuffix(".gz")
        out.write(
            corrupt if url.startswith("https://one/") and "labels" in stem else payloads[stem]
        )

    monkeypatch.setattr(datasets_module, "_fetch", mirrors)
    dataset = load_dataset("mnist")
    np.testing.assert_array_equal(dataset.y_train, arrays["train-labels-idx1-ubyte"])


def test_failed_download_leaves_nothing_and_explains(tmp_path, monkeypatch, served):
    corrupt = gz_bytes(np.zeros(12, np.uint8), tmp_path)
    monkeypatch.setattr(datasets_module, "_fetch", lambda url, out: out.write(corrupt))
    with pytest.raises(DataError) as info:
        load_dataset("mnist")
    message = str(info.value)
    assert "https://one/train-images-idx3-ubyte.gz: checksum" in message
    assert "https://two/train-images-idx3-ubyte.gz: checksum" in message
    assert "MATRIXPROP_DATA" in message and "--data-dir" in message
    assert list(cache_folder(tmp_path).iterdir()) == []


def test_unreachable_network_is_a_clear_error(tmp_path, monkeypatch, served):
    def offline(url, out):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(datasets_module, "_fetch", offline)
    with pytest.raises(DataError) as info:
        load_dataset("mnist", tmp_path / "nowhere")
    message = str(info.value)
    assert "Name or service not known" in message and "train-images-idx3-ubyte" in message
    assert str(tmp_path / "nowhere") in message and "MATRIXPROP_DATA" in message
    assert list(cache_folder(tmp_path).iterdir()) == []


def test_fashion_mnist_downloads_are_checked_by_md5_of_the_gz(tmp_path, monkeypatch):
    fake_idx_set(tmp_path / "origin")
    payloads = {s: (tmp_path / "origin" / f"{s}.gz").read_bytes() for s in IDX_FILES}
    md5 = {stem: hashlib.md5(data).hexdigest() for stem, data in payloads.items()}
    md5["t10k-labels-idx1-ubyte"] = "0" * 32
    source = datasets_module._Source(mirrors=("https://z/",), md5_gz=md5)
    monkeypatch.setitem(datasets_module._SOURCES, "fashion-mnist", source)
    fetch = lambda url, out: out.write(payloads[url[10:-3]])  # noqa: E731
    monkeypatch.setattr(datasets_module, "_fetch", fetch)
    with pytest.raises(
        DataError,
        match="t10k-labels-idx1-ubyte.gz: checksum [0-9a-f]{32} differs from the published 0{32}",
    ):
        load_dataset("fashion-mnist")
    kept = sorted(
        p.name for p in (tmp_path / "xdg-cache" / "matrixprop" / "fashion-mnist").iterdir()
    )
    assert kept == sorted(f"{stem}.gz" for stem in IDX_FILES[:3])


# ------------------------------------------------------------------------- digits and paths


def test_digits_split_scale_and_determinism():
    dataset = load_dataset("digits")
    assert dataset.X_train.shape == (1437, 64) and dataset.X_test.shape == (360, 64)
    assert dataset.feature_shape == (8, 8) and dataset.n_classes == 10
    assert dataset.X_train.dtype == np.float32
    assert dataset.X_train.min() == 0.0 and dataset.X_train.max() == 1.0
    counts = np.bincount(dataset.y_train) + np.bincount(dataset.y_test)
    assert counts.tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert np.all(np.abs(np.bincount(dataset.y_test) - counts * 0.2) < 1)  # stratified
    again = load_dataset("digits")
    np.testing.assert_array_equal(again.X_test, dataset.X_test)
    other = load_dataset("digits", seed=1)
    assert not np.array_equal(other.y_test, dataset.y_test)
    raw = load_dataset("digits", scale=False)
    assert raw.X_train.dtype == np.uint8 and raw.X_train.max() == 16
    np.testing.assert_array_equal(raw.X_train / np.float32(16), dataset.X_train)


def test_csv_path_is_split_with_the_seed(tmp_path):
    rows = "\n".join(f"{i},{i * 0.5},{i % 3}" for i in range(20))
    (tmp_path / "points.csv").write_text("a,b,label\n" + rows + "\n")
    dataset = load_dataset(tmp_path / "points.csv", dtype="float64", test_fraction=0.25)
    assert dataset.name == "points.csv" and dataset.n_classes == 3
    assert dataset.X_train.shape == (15, 2) and dataset.X_test.shape == (5, 2)
    assert dataset.X_train.dtype == np.float64 and dataset.feature_shape == (2,)
    joined = np.concatenate([dataset.X_train[:, 0], dataset.X_test[:, 0]])
    assert sorted(joined.tolist()) == list(range(20))


def test_npz_path_with_and_without_test_split(tmp_path):
    X = np.arange(40, dtype=np.uint8).reshape(10, 2, 2)
    np.savez(tmp_path / "given.npz", X=X, y=np.arange(10) % 2, X_test=X[:3], y_test=[1, 0, 1])
    given = load_dataset(tmp_path / "given.npz")
    assert given.X_test.shape == (3, 4) and given.feature_shape == (2, 2)
    np.testing.assert_allclose(given.X_train, X.reshape(10, 4) / 255, rtol=1e-6)
    assert given.y_test.tolist() == [1, 0, 1] and given.n_classes == 2
    np.savez(tmp_path / "regression.npz", X=np.ones((10, 3)), y=np.linspace(0, 1, 10))
    split = load_dataset(tmp_path / "regression.npz", test_fraction=0.3)
    assert split.X_train.shape == (7, 3) and split.n_classes is None
    assert split.X_train.dtype == np.float32 and split.y_train.dtype == np.float64


def test_unknown_names_and_files(tmp_path):
    with pytest.raises(DataError, match="neither one of digits, mnist, fashion-mnist"):
        load_dataset("cifar-10")
    (tmp_path / "data.txt").write_text("1,2\n")
    with pytest.raises(DataError, match="data.txt: unknown file type"):
        load_dataset(tmp_path / "data.txt")
    with pytest.raises(ValueError, match="dtype: expected a floating type"):
        load_dataset("digits", dtype="int32")


# ----------------------------------------------------------------------------- preprocessing


def test_one_hot():
    encoded = one_hot(np.array([2, 0, 1]), 4, dtype="float64")
    np.testing.assert_array_equal(encoded, [[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]])
    assert encoded.dtype == np.float64
    assert one_hot([1.0, 3.0]).shape == (2, 4) and one_hot([1, 3]).dtype == np.float32
    with pytest.raises(ValueError, match="labels: 4 is outside 0 .. 3"):
        one_hot([0, 4], 4)
    with pytest.raises(ValueError, match="labels: -1 is outside"):
        one_hot([-1, 2])
    with pytest.raises(ValueError, match="integer class indices"):
        one_hot([0.5])
    with pytest.raises(ValueError, match="1-D"):
        one_hot([[1]])


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(0, 4), min_size=2, max_size=80),
    fraction=st.floats(0.05, 0.95),
    seed=st.integers(0, 2**32 - 1),
)
def test_split_is_a_seeded_stratified_partition(labels, fraction, seed):
    y = np.array(labels)
    X = np.arange(len(y))
    n_held = int(np.ceil(round(fraction * len(y), 9)))
    if not 0 < n_held < len(y):
        with pytest.raises(ValueError, match="leaves one part of the split empty"):
            train_validation_split(X, y, fraction, seed)
        return
    X_train, X_held, y_train, y_held = train_validation_split(X, y, fraction, seed)
    assert len(X_held) == n_held
    assert sorted(np.concatenate([X_train, X_held]).tolist()) == X.tolist()
    np.testing.assert_array_equal(y[X_train], y_train)
    np.testing.assert_array_equal(y[X_held], y_held)
    assert np.all(np.diff(X_train) > 0) and np.all(np.diff(X_held) > 0)
    share = np.bincount(y, minlength=5) * n_held / len(y)
    assert np.all(np.abs(np.bincount(y_held, minlength=5) - share) < 1)
    again = train_validation_split(X, y, fraction, seed)
    np.testing.assert_array_equal(again[1], X_held)


def test_split_without_labels_and_bad_arguments():
    X_train, X_held, y_train, y_held = train_validation_split(np.zeros((10, 2)), None, 0.3, 1)
    assert X_train.shape == (7, 2) and X_held.shape == (3, 2) and y_train is None
    assert len(train_validation_split(np.arange(30), None, 0.1)[1]) == 3  # not 4: 0.1 * 30
    with pytest.raises(ValueError, match="fraction: expected a number strictly between"):
        train_validation_split(np.zeros(5), None, 1.0)
    with pytest.raises(ValueError, match="y: expected 5 targets"):
        train_validation_split(np.zeros(5), np.zeros(4), 0.2)
