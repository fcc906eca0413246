"""Tests of the IDX reader and writer: formats, byte order, and hostile input."""

from __future__ import annotations

import gzip
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matrixprop.data import DataError, read_idx, write_idx

DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]


def idx_bytes(code: int, shape: tuple[int, ...], data: bytes) -> bytes:
    """An IDX file built by hand, independently of write_idx."""
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + data


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def put(tmp_path: Path, data: bytes, name: str = "sample-idx3-ubyte") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read_error(path: Path) -> str:
    with pytest.raises(DataError) as info:
        read_idx(path)
    message = str(info.value)
    assert path.name in message
    assert "\n" not in message
    return message


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_write_then_read_round_trips_every_type(tmp_path, dtype, compress):
    values = (np.arange(-30, 30) * 7).astype(dtype).reshape(3, 4, 5)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    write_idx(path, values)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    result = read_idx(path)
    assert result.dtype == np.dtype(dtype) and result.dtype.isnative
    np.testing.assert_array_equal(result, values)


def test_multi_byte_values_are_big_endian(tmp_path):
    raw = idx_bytes(0x0B, (2,), b"\x01\x02\xff\xfe")
    np.testing.assert_array_equal(read_idx(put(tmp_path, raw)), [258, -2])
    floats = idx_bytes(0x0D, (1,), struct.pack(">f", 1.5))
    assert read_idx(put(tmp_path, floats, "f")).tolist() == [1.5]


def test_writer_emits_the_documented_layout(tmp_path):
    write_idx(tmp_path / "w", np.array([[1, 2, 3], [4, 5, 6]], dtype=">i4"))
    expected = idx_bytes(0x0C, (2, 3), struct.pack(">6i", 1, 2, 3, 4, 5, 6))
    assert (tmp_path / "w").read_bytes() == expected
    write_idx(tmp_path / "a.gz", np.ones(3, np.uint8))
    write_idx(tmp_path / "b.gz", np.ones(3, np.uint8))
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def test_gzip_is_detected_by_content_not_name(tmp_path):
    payload = idx_bytes(0x08, (2, 2), bytes([1, 2, 3, 4]))
    compressed_without_suffix = put(tmp_path, gz(payload), "plain-name")
    raw_with_gz_suffix = put(tmp_path, payload, "lying-name.gz")
    for path in (compressed_without_suffix, raw_with_gz_suffix):
        np.testing.assert_array_equal(read_idx(path), [[1, 2], [3, 4]])


def test_zero_items_give_an_empty_array(tmp_path):
    result = read_idx(put(tmp_path, idx_bytes(0x08, (0, 28, 28), b"")))
    assert result.shape == (0, 28, 28)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "empty"),
        (b"\0\0", "too short"),
        (b"\x01\x00\x08\x01" + bytes(5), "magic number 0x01000801"),
        (b"\0\0\x0a\x01" + bytes(5), "unknown IDX type code 0x0A"),
        (b"\0\0\x08\x00", "gives 0 dimensions"),
        (b"\0\0\x08\x05" + bytes(20), "gives 5 dimensions"),
        (b"\0\0\x08\x03\0\0\0\x01\0\0", "ends inside the IDX header (10 of its 16 bytes)"),
    ],
)
@pytest.mark.parametrize("compress", [False, True])
def test_bad_headers_are_refused(tmp_path, data, expected, compress):
    if compress:  # the gzip of an empty file decompresses to 0 bytes
        data, expected = gz(data), expected if data else "0 bytes is too short"
    assert expected in read_error(put(tmp_path, data))


def test_lying_header_names_claimed_and_held_sizes(tmp_path):
    claims_more = idx_bytes(0x08, (5, 2, 2), bytes(12))
    message = read_error(put(tmp_path, claims_more))
    assert "header claims 5x2x2 uint8 = 20 bytes of data but the file holds 12" in message
    message = read_error(put(tmp_path, gz(claims_more), "c.gz"))
    assert "5x2x2 uint8 = 20 bytes of data but the decompressed file holds 12" in message


def test_header_claiming_fewer_items_is_trailing_data(tmp_path):
    claims_fewer = idx_bytes(0x0B, (2,), bytes(6))
    assert "2 int16 = 4 bytes of data but the file holds 6" in read_error(
        put(tmp_path, claims_fewer)
    )
    assert "holds more (trailing data)" in read_error(put(tmp_path, gz(claims_fewer), "g"))


@pytest.mark.parametrize("compress", [False, True])
def test_claim_of_two_billion_images_fails_fast_without_allocating(tmp_path, compress):
    data = idx_bytes(0x08, (2**31, 28, 28), bytes(28 * 28 * 3))
    path = put(tmp_path, gz(data) if compress else data)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        message = read_error(path)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "2147483648x28x28 uint8 = 1683627180032 bytes" in message
    assert peak < 4 * 2**20, f"peak allocation {peak} bytes"
    assert elapsed < 5.0, "a lying header must fail at once"


def test_truncated_gzip_stream(tmp_path):
    compressed = gz(idx_bytes(0x08, (50, 10), np.arange(500, dtype=np.uint8).tobytes()))
    message = read_error(put(tmp_path, compressed[: len(compressed) // 2]))
    assert "corrupt or truncated gzip" in message


def test_corrupt_gzip_payload_and_checksum(tmp_path):
    compressed = bytearray(gz(idx_bytes(0x08, (50, 10), bytes(range(250)) * 2)))
    bad_crc = bytearray(compressed)
    bad_crc[-8] ^= 0xFF  # the CRC32 of the gzip trailer
    assert "gzip" in read_error(put(tmp_path, bytes(bad_crc), "crc"))
    bad_payload = bytearray(compressed)
    bad_payload[12:20] = b"\xff" * 8
    assert "gzip" in read_error(put(tmp_path, bytes(bad_payload), "payload"))


def test_garbage_after_the_gzip_stream(tmp_path):
    compressed = gz(idx_bytes(0x08, (3,), b"abc")) + b"not gzip at all"
    assert "gzip" in read_error(put(tmp_path, compressed))


def test_missing_file_is_a_data_error(tmp_path):
    assert "cannot open" in read_error(tmp_path / "absent-idx1-ubyte")


@pytest.mark.parametrize(
    ("array", "error"),
    [
        (np.zeros(3, np.int64), TypeError),
        (np.array(5, np.uint8), ValueError),
        (np.zeros((1,) * 5, np.uint8), ValueError),
    ],
)
def test_write_idx_refuses_what_idx_cannot_hold(tmp_path, array, error):
    with pytest.raises(error):
        write_idx(tmp_path / "x", array)
    assert list(tmp_path.iterdir()) == []


VALID = idx_bytes(0x0B, (3, 2), struct.pack(">6h", 1, -2, 300, 4, 5, 6))


@st.composite
def mutated(draw) -> bytes:
    """A valid small IDX file, raw or gzip, with bytes replaced, cut or appended."""
    data = bytearray(gz(VALID) if draw(st.booleans()) else VALID)
    for _ in range(draw(st.integers(0, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    data = data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data
    return bytes(data) + draw(st.binary(max_size=8))


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(st.binary(max_size=64), mutated()))
def test_fuzzed_files_raise_only_data_error(tmp_path_factory, data):
    path = tmp_path_factory.getbasetemp() / "fuzz-idx"
    path.write_bytes(data)
    try:
        result = read_idx(path)
    except DataError as exc:
        assert "fuzz-idx" in str(exc)
    else:
        assert isinstance(result, np.ndarray) and 1 <= result.ndim <= 4
