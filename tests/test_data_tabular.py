"""Tests of the CSV and NPZ readers."""

from __future__ import annotations

import csv
import io
import pickle
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from matrixprop.data import DataError, read_csv, read_npz


def write(tmp_path: Path, text: str, name: str = "table.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def csv_error(path: Path, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        read_csv(path, **kwargs)
    message = str(info.value)
    assert message.startswith(path.name) and "\n" not in message
    return message


# ---------------------------------------------------------------------------------------- CSV


def test_csv_without_header_takes_the_last_column_as_integer_targets(tmp_path):
    X, y = read_csv(write(tmp_path, "0.5,1,2\n1.5,-3,0\n\n2.5,4e2,1\n"))
    np.testing.assert_array_equal(X, [[0.5, 1], [1.5, -3], [2.5, 400]])
    assert X.dtype == np.float64
    np.testing.assert_array_equal(y, [2, 0, 1])
    assert y.dtype == np.int64


def test_csv_fractional_targets_stay_float(tmp_path):
    _, y = read_csv(write(tmp_path, "1,0.25\n2,3\n"))
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, [0.25, 3.0])


def test_csv_header_is_detected_and_target_chosen_by_name(tmp_path):
    path = write(tmp_path, "\ufeffa, label ,b\n1,7,2\n3,8,4\n")  # with a byte-order mark
    X, y = read_csv(path, target_column="label")
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(y, [7, 8])


@pytest.mark.parametrize(("target", "expected_y"), [(0, [1, 4]), (-2, [2, 5]), (2, [3, 6])])
def test_csv_target_by_index_negative_allowed(tmp_path, target, expected_y):
    X, y = read_csv(write(tmp_path, "1,2,3\n4,5,6\n"), target_column=target)
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_array_equal(X, np.delete([[1, 2, 3], [4, 5, 6]], target, axis=1))


def test_csv_explicit_header_flag(tmp_path):
    path = write(tmp_path, "10,20,30\n1,2,3\n")
    X, y = read_csv(path, header=True)
    np.testing.assert_array_equal(X, [[1, 2]])
    X, y = read_csv(path, target_column="20", header=True)
    np.testing.assert_array_equal(y, [2])
    assert "line 1, column 1: 'a' is not a number" in csv_error(
        write(tmp_path, "a,b\n1,2\n"), header=False
    )


def test_csv_semicolon_delimiter(tmp_path):
    X, y = read_csv(write(tmp_path, "x;y\n1.5;2\n"), delimiter=";")
    assert X.tolist() == [[1.5]] and y.tolist() == [2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b,c\n1,2,3\n4,nan,6\n", "line 3, column 2 ('b'): 'nan' is not a finite number"),
        ("1,2,3\n4,5,-inf\n", "line 2, column 3: '-inf' is not a finite number"),
        ("1,2,3\n4,,6\n", "line 2, column 2: empty cell"),
        ("1,2,3\n4,five,6\n", "line 2, column 2: 'five' is not a number"),
        ("a,b\n1,2\n3,4,5\n", "line 3: 3 columns where line 1 has 2"),
        ("1,2\n3\n", "line 2: 1 columns where line 1 has 2"),
        ("", "holds no rows"),
        ("\n\n", "holds no rows"),
        ("a,b\n", "holds a header but no data rows"),
        ("5\n6\n", "line 1 has 1 column"),
        ("1,abc,3\n", "line 1, column 2: 'abc' is not a number (if line 1 is a header, pass"),
    ],
)
def test_csv_bad_input_names_line_and_column(tmp_path, text, expected):
    assert expected in csv_error(write(tmp_path, text))


def test_csv_quoted_newline_reports_the_physical_line(tmp_path):
    message = csv_error(write(tmp_path, 'a,b\n1,2\n"3\n",x\n'))
    assert "line 4, column 2 ('b'): 'x' is not a number" in message


@pytest.mark.parametrize(
    ("text", "target", "expected"),
    [
        ("a,b\n1,2\n", "c", "target column 'c' is not in header 'a', 'b'"),
        ("a,a,b\n1,2,3\n", "a", "target column 'a' appears twice in header"),
        ("1,2\n3,4\n", "b", "target column 'b' is a name but there is no header"),
        ("1,2\n3,4\n", 2, "target column 2 is out of range for 2 columns"),
        ("1,2\n3,4\n", -3, "target column -3 is out of range for 2 columns"),
        ("1,2\n3,4\n", True, "target_column must be a column index or name"),
    ],
)
def test_csv_unknown_target_column(tmp_path, text, target, expected):
    assert expected in csv_error(write(tmp_path, text), target_column=target)


@pytest.mark.parametrize(
    ("text", "expected_X"),
    [
        ("0.5,1,2\n1.5,-3,0\n", [[0.5, 1, 2], [1.5, -3, 0]]),  # no header
        ("a,b\n1,2\n3,4\n", [[1, 2], [3, 4]]),  # a header, detected
        ("7\n8\n", [[7], [8]]),  # one column is enough without a target
    ],
)
def test_csv_features_only(tmp_path, text, expected_X):
    X, y = read_csv(write(tmp_path, text), target_column=None)
    assert y is None
    np.testing.assert_array_equal(X, expected_X)
    assert X.dtype == np.float64


def test_csv_features_only_still_checks_every_cell(tmp_path):
    message = csv_error(write(tmp_path, "1,2\n3,x\n"), target_column=None)
    assert "line 2, column 2: 'x' is not a number" in message
    message = csv_error(write(tmp_path, "1,2\n3\n"), target_column=None)
    assert "line 2: 1 columns where line 1 has 2" in message


def test_csv_not_text_or_absent(tmp_path):
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81,1\n")
    assert "not UTF-8 text" in csv_error(binary)
    assert "cannot open" in csv_error(tmp_path / "absent.csv")


@settings(max_examples=40, deadline=None)
@given(
    table=arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.integers(2, 5)),
        elements=st.floats(allow_nan=False, allow_infinity=False, width=64),
    )
)
def test_csv_round_trips_any_finite_table(tmp_path_factory, table):
    path = tmp_path_factory.getbasetemp() / "round-trip.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([[repr(float(v)) for v in row] for row in table])
    X, y = read_csv(path, header=False)
    np.testing.assert_array_equal(X, table[:, :-1])
    np.testing.assert_array_equal(y, table[:, -1])
    target = table[:, -1]
    exact_integers = np.all(target == np.round(target)) and np.all(np.abs(target) <= 2**53)
    assert y.dtype == (np.int64 if exact_integers else np.float64)


# ---------------------------------------------------------------------------------------- NPZ


def npz_error(path: Path, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        read_npz(path, **kwargs)
    message = str(info.value)
    assert message.startswith(path.name) and "\n" not in message
    return message


def test_npz_with_and_without_test_arrays(tmp_path):
    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    np.savez(tmp_path / "a.npz", X=X, y=np.arange(6), note=np.array("ignored"))
    arrays = read_npz(tmp_path / "a.npz")
    assert sorted(arrays) == ["X", "y"]
    np.testing.assert_array_equal(arrays["X"], X)
    np.savez_compressed(tmp_path / "b.npz", X=X, y=np.arange(6), X_test=X[:2], y_test=[0, 1])
    assert sorted(read_npz(tmp_path / "b.npz")) == ["X", "X_test", "y", "y_test"]


def test_npz_features_only_when_y_is_not_required(tmp_path):
    X = np.arange(6.0).reshape(3, 2)
    np.savez(tmp_path / "x.npz", X=X)
    assert "missing array(s) y (needs X and y" in npz_error(tmp_path / "x.npz")
    arrays = read_npz(tmp_path / "x.npz", require_y=False)
    assert sorted(arrays) == ["X"]
    np.testing.assert_array_equal(arrays["X"], X)
    np.savez(tmp_path / "xt.npz", X=X, X_test=X[:1])
    assert sorted(read_npz(tmp_path / "xt.npz", require_y=False)) == ["X", "X_test"]


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        ({"y": np.ones(3)}, "missing array(s) X (needs X, optionally y"),
        ({"X": np.ones((3, 2)), "y_test": np.ones(1)}, "missing array(s) X_test"),
        ({"X": np.ones((3, 2)), "y": np.ones(4)}, "X has 3 rows but y has 4"),
        ({"X": np.array([[1.0, np.inf]])}, "array 'X' holds NaN or inf"),
    ],
)
def test_npz_features_only_still_checks_what_is_there(tmp_path, arrays, expected):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    assert expected in npz_error(path, require_y=False)


def _touch(path: str) -> None:
    Path(path).touch()


class Trap:
    """Unpickling this object creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (_touch, (self.marker,))


def test_npz_never_unpickles_object_arrays(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "objects.npz"
    np.savez(path, X=np.array([[Trap(marker)]], dtype=object), y=np.array([1]))
    assert "array 'X' holds Python objects (never unpickled)" in npz_error(path)
    assert not marker.exists()
    pickled = tmp_path / "pickle.npz"
    pickled.write_bytes(pickle.dumps({"X": Trap(marker)}))
    assert "not a zip file" in npz_error(pickled)
    assert not marker.exists()
    np.load(path, allow_pickle=True)["X"]  # the trap is armed: unpickling would spring it
    assert marker.exists()


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        ({"X": np.ones((3, 2))}, "missing array(s) y"),
        ({"y": np.ones(3)}, "missing array(s) X"),
        (
            {"X": np.ones((3, 2)), "y": np.ones(3), "X_test": np.ones((1, 2))},
            "missing array(s) y_test",
        ),
        ({"X": np.ones((3, 2)), "y": np.ones(4)}, "X has 3 rows but y has 4"),
        (
            {"X": np.ones((3, 2)), "y": np.ones(3), "X_test": np.ones((2, 2)), "y_test": [1]},
            "X_test has 2 rows but y_test has 1",
        ),
        (
            {"X": np.ones((3, 2)), "y": np.ones(3), "X_test": np.ones((1, 3)), "y_test": [1]},
            "X_test samples have shape (3,) but X samples have (2,)",
        ),
        (
            {"X": np.array([[1.0, np.nan]]), "y": [1]},
            "array 'X' holds NaN or inf (first at index (0, 1))",
        ),
        ({"X": np.ones((1, 1)), "y": [np.inf]}, "array 'y' holds NaN or inf"),
        ({"X": np.array([["a"]]), "y": [1]}, "array 'X' has non-numeric dtype <U1"),
        ({"X": np.ones(3), "y": np.ones(3)}, "array 'X' must be 2-D or more; got shape (3,)"),
        ({"X": np.ones((1, 1)), "y": np.ones((1, 1, 1))}, "array 'y' must be 1-D or 2-D"),
    ],
)
def test_npz_invalid_contents(tmp_path, arrays, expected):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    assert expected in npz_error(path)


def test_npz_that_is_not_an_archive(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    assert "not a zip file, not an .npz archive" in npz_error(tmp_path / "empty.npz")
    (tmp_path / "text.npz").write_text("X,y\n1,2\n")
    assert "not a zip file, not an .npz archive" in npz_error(tmp_path / "text.npz")
    np.save(tmp_path / "single.npy", np.ones(3))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    assert "a single .npy array" in npz_error(tmp_path / "single.npz")
    np.savez(tmp_path / "cut.npz", X=np.ones((50, 4)), y=np.ones(50))
    data = (tmp_path / "cut.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    assert "not a readable .npz archive" in npz_error(tmp_path / "cut.npz")
    assert "cannot read the file" in npz_error(tmp_path / "absent.npz")


def test_npz_lying_array_header_fails_before_allocating(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (2**31, 784)}
    )
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("X.npy", header.getvalue() + bytes(64))
        y = io.BytesIO()
        np.save(y, np.ones(2))
        archive.writestr("y.npy", y.getvalue())
    tracemalloc.start()
    try:
        message = npz_error(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "array 'X' claims shape (2147483648, 784)" in message
    assert "but its member holds 64" in message
    assert peak < 4 * 2**20


def test_npz_member_with_a_bad_crc(tmp_path):
    path = tmp_path / "crc.npz"
    np.savez(path, X=np.full((4, 4), 1.5), y=np.ones(4))
    data = bytearray(path.read_bytes())
    at = data.index(np.float64(1.5).tobytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    assert "array 'X' cannot be read (Bad CRC-32" in npz_error(path)
