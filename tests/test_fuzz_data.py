"""Fuzzing the IDX, CSV and NPZ readers: whatever the bytes, a reader returns valid arrays or
raises DataError, within a time limit, allocating no more than the file can hold.

Random bytes, structured headers with random fields, and byte-level mutations of valid files;
``fuzz/`` has the coverage-guided (atheris) targets for the same readers.
"""

import gzip
import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
from _fuzz import FUZZ, MIB, assert_only, mutate, mutations, observe
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from matrixprop.data import DataError, read_csv, read_idx, read_npz, write_idx

IDX_CODES = [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]
DIMENSIONS = st.one_of(st.integers(0, 4), st.sampled_from([2**31, 2**32 - 1, 60000, 784]))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _content(data: bytes) -> bytes:
    """The bytes an IDX file really holds: decompressed when it is gzip, else as they are."""
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error):
        return b""


def _check_idx(path, data: bytes) -> None:
    path.write_bytes(data)
    outcome = observe(read_idx, path)
    assert_only(outcome, DataError)
    held = len(_content(data))
    assert outcome.peak <= 2 * max(held, len(data)) + MIB, (outcome.peak, len(data))
    if outcome.error is None:
        array = outcome.value
        assert 1 <= array.ndim <= 4 and array.dtype.isnative
        assert array.nbytes == held - (4 + 4 * array.ndim)


# -- IDX --------------------------------------------------------------------------------------
@FUZZ
@given(data=st.binary(max_size=600), compress=st.booleans())
def test_idx_random_bytes(folder, data, compress):
    _check_idx(folder / "random.idx", gzip.compress(data) if compress else data)


@FUZZ
@given(code=st.one_of(st.sampled_from(IDX_CODES), st.integers(0, 255)),
       dims=st.lists(DIMENSIONS, max_size=6), payload=st.binary(max_size=200),
       compress=st.booleans())
def test_idx_headers_with_random_fields(folder, code, dims, payload, compress):
    header = bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", n) for n in dims)
    data = header + payload
    _check_idx(folder / "fields.idx", gzip.compress(data) if compress else data)


@FUZZ
@given(seed=st.integers(0, 3), compress=st.booleans(), edit=mutations(64))
def test_idx_mutated_valid_files(folder, seed, compress, edit):
    rng = np.random.default_rng(seed)
    array = [rng.integers(0, 255, (3, 4, 4)).astype(np.uint8), rng.normal(size=(5, 2)),
             rng.integers(-9, 9, 7).astype(np.int16), rng.normal(size=3).astype(np.float32)][seed]
    path = folder / ("valid.idx.gz" if compress else "valid.idx")
    write_idx(path, array)
    _check_idx(path, mutate(path.read_bytes(), edit))


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_idx_header_claiming_2_31_images_fails_at_once(tmp_path, compress):
    data = bytes([0, 0, 0x08, 3]) + struct.pack(">III", 2**31, 28, 28) + bytes(1000)
    path = tmp_path / "huge.idx"
    path.write_bytes(gzip.compress(data) if compress else data)
    outcome = observe(read_idx, path)
    assert isinstance(outcome.error, DataError)
    assert "2147483648x28x28" in str(outcome.error)
    assert outcome.peak < MIB and outcome.seconds < 0.5, (outcome.peak, outcome.seconds)


def test_idx_gzip_claim_beyond_what_deflate_can_expand_to(tmp_path):
    """1 KiB of gzip cannot hold 100 MB: refused before decompressing, however it ends."""
    data = bytes([0, 0, 0x08, 1]) + struct.pack(">I", 100 * 2**20) + bytes(10**4)
    path = tmp_path / "bomb.idx.gz"
    path.write_bytes(gzip.compress(data))
    outcome = observe(read_idx, path)
    assert isinstance(outcome.error, DataError)
    assert "cannot hold" in str(outcome.error)
    assert outcome.peak < MIB


# -- CSV --------------------------------------------------------------------------------------
CSV_CHARACTERS = st.sampled_from(list("0123456789.,;-+eE \t\n\r\"'nNaAiIfFx#"))
CSV_TEXT = st.text(alphabet=CSV_CHARACTERS | st.characters(codec="utf-8"), max_size=300)


def _check_csv(path, data: bytes) -> None:
    path.write_bytes(data)
    outcome = observe(read_csv, path)
    assert_only(outcome, DataError)
    assert outcome.peak <= 64 * len(data) + MIB, (outcome.peak, len(data))
    if outcome.error is None:
        X, y = outcome.value
        assert X.ndim == 2 and X.shape[0] == y.shape[0] >= 1 and X.shape[1] >= 1
        assert np.isfinite(X).all() and np.isfinite(y).all()
        assert y.dtype in (np.int64, np.float64) and X.dtype == np.float64


@FUZZ
@given(text=CSV_TEXT, bom=st.booleans())
def test_csv_random_text(folder, text, bom):
    _check_csv(folder / "random.csv", (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))


@FUZZ
@given(data=st.binary(max_size=300))
def test_csv_random_bytes(folder, data):
    _check_csv(folder / "bytes.csv", data)


@FUZZ
@given(rows=st.lists(st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.integers(),
                              min_size=1, max_size=5), min_size=1, max_size=8),
       edit=mutations(120))
def test_csv_mutated_tables(folder, rows, edit):
    text = "\n".join(",".join(map(str, row)) for row in rows).encode()
    _check_csv(folder / "table.csv", mutate(text, edit))


# -- NPZ --------------------------------------------------------------------------------------
def _npz_bytes(arrays: dict, compressed: bool) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def _held_bytes(data: bytes) -> int:
    """The file's size plus what its zip members really decompress to (a reader's fair share)."""
    total = len(data)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist()[:16]:
                with archive.open(info) as member:
                    total += len(member.read(64 * MIB))
    except Exception:  # a broken archive holds nothing more than its bytes
        pass
    return total


def _check_npz(path, data: bytes) -> None:
    path.write_bytes(data)
    outcome = observe(read_npz, path)
    assert_only(outcome, DataError)
    assert outcome.peak <= 3 * _held_bytes(data) + MIB, (outcome.peak, len(data))
    if outcome.error is None:
        arrays = outcome.value
        assert {"X", "y"} <= set(arrays) and len(arrays["X"]) == len(arrays["y"])
        assert all(a.dtype.kind in "biuf" and not a.dtype.hasobject for a in arrays.values())


@FUZZ
@given(data=st.binary(max_size=400))
def test_npz_random_bytes(folder, data):
    _check_npz(folder / "random.npz", b"PK" + data)


def _npy_member(shape, descr: str, payload: bytes, version: int) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    size = struct.pack("<H" if version == 1 else "<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + size + header + payload


@FUZZ
@given(members=st.lists(st.tuples(
           st.sampled_from(["X.npy", "y.npy", "X_test.npy", "y_test.npy", "z.npy", "X"]),
           st.lists(DIMENSIONS, max_size=3),
           st.sampled_from(["<f8", "<f4", "|u1", "<i8", "|O", "<U3", "|b1", ">f8", "zz"]),
           st.binary(max_size=64), st.sampled_from([1, 2]),
           st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])),
           max_size=4, unique_by=lambda member: member[0]))
def test_npz_archives_with_random_members(folder, members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, shape, descr, payload, version, method in members:
            archive.writestr(name, _npy_member(shape, descr, payload, version), method)
    _check_npz(folder / "members.npz", buffer.getvalue())


@FUZZ
@given(seed=st.integers(0, 3), compressed=st.booleans(), edit=mutations(700))
def test_npz_mutated_valid_archives(folder, seed, compressed, edit):
    rng = np.random.default_rng(seed)
    arrays = [{"X": rng.normal(size=(4, 3)), "y": rng.integers(0, 3, 4)},
              {"X": rng.integers(0, 255, (3, 2, 2)).astype(np.uint8), "y": np.arange(3.0),
               "X_test": rng.normal(size=(1, 2, 2)), "y_test": np.zeros(1)},
              {"X": np.array([[{"code": 1}]], dtype=object), "y": np.zeros(1)},  # a pickle
              {"X": np.array([["a", "b"]]), "y": np.zeros(1)}][seed]
    _check_npz(folder / "valid.npz", mutate(_npz_bytes(arrays, compressed), edit))


def test_npz_member_claiming_2_31_images_fails_at_once(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("X.npy", _npy_member((2**31, 28, 28), "|u1", bytes(100), 1))
        archive.writestr("y.npy", _npy_member((2**31,), "|u1", bytes(100), 1))
    path = tmp_path / "huge.npz"
    path.write_bytes(buffer.getvalue())
    outcome = observe(read_npz, path)
    assert isinstance(outcome.error, DataError) and "claims shape" in str(outcome.error)
    assert outcome.peak < MIB and outcome.seconds < 0.5


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_npz_zip_directory_lying_about_a_member_size(tmp_path, method):
    """The zip directory says a member unpacks to 1.6 GB; the npy header agrees; the data is
    a few bytes. Refused from the sizes alone, before NumPy allocates the array."""
    claimed = 2**31 * 784 // 1024  # bytes of X's data
    member = _npy_member((claimed,), "|u1", bytes(64), 1)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("X.npy", member, method)
        archive.writestr("y.npy", _npy_member((1,), "|u1", b"\0", 1))
    data = bytearray(buffer.getvalue())
    true_size, header = struct.pack("<I", len(member)), len(member) - 64
    lie = struct.pack("<I", header + claimed)
    for at in _find_all(data, true_size):  # the local header and the central directory
        data[at:at + 4] = lie
    path = tmp_path / "lying.npz"
    path.write_bytes(bytes(data))
    outcome = observe(read_npz, path)
    assert isinstance(outcome.error, DataError), outcome.error
    assert outcome.peak < MIB and outcome.seconds < 0.5, (outcome.peak, outcome.seconds)


def _find_all(data: bytes, pattern: bytes) -> list[int]:
    found, at = [], data.find(pattern)
    while at >= 0:
        found.append(at)
        at = data.find(pattern, at + 1)
    return found


@FUZZ
@given(X=hnp.arrays(st.sampled_from([np.float64, np.float32, np.uint8, np.int16, ">f8", "<i8"]),
                    hnp.array_shapes(min_dims=2, max_dims=3, max_side=4),
                    elements={"allow_nan": False, "allow_infinity": False}),
       fortran=st.booleans(), compressed=st.booleans())
def test_npz_round_trip_of_any_numeric_array(folder, X, fortran, compressed):
    """The reader reads members itself (not through np.load): every layout comes back equal."""
    X = np.asfortranarray(X) if fortran else X
    y = np.arange(len(X))
    path = folder / "round_trip.npz"
    path.write_bytes(_npz_bytes({"X": X, "y": y}, compressed))
    arrays = read_npz(path)
    assert np.array_equal(arrays["X"], X) and arrays["X"].dtype == X.dtype.newbyteorder("=")
    assert arrays["X"].dtype.isnative and np.array_equal(arrays["y"], y)


def test_idx_empty_array_whose_other_dimensions_overflow(tmp_path):
    """Found by the fuzzer: 0 x 2 x 2^31 x 2^31 holds no bytes, but NumPy cannot shape it."""
    path = tmp_path / "empty.idx"
    path.write_bytes(bytes([0, 0, 0x08, 4]) + struct.pack(">IIII", 0, 2, 2**31, 2**31))
    with pytest.raises(DataError, match="too large"):
        read_idx(path)


def test_npz_needing_a_newer_zip_version(tmp_path):
    """Found by the fuzzer: zipfile raises NotImplementedError for it."""
    data = bytearray(_npz_bytes({"X": np.zeros((2, 2)), "y": np.zeros(2)}, compressed=True))
    directory = data.find(b"PK\x01\x02")
    data[directory + 6] = 64  # "version needed to extract": 6.4
    path = tmp_path / "new.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="zip file version 6.4"):
        read_npz(path)
