"""Read and write IDX files, the format of the MNIST and Fashion-MNIST distributions.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian unsigned 32-bit integer per dimension, then the values in
C order, big-endian. Files may be gzip-compressed; compression is recognised by its
magic bytes, whatever the file is called.
"""

from __future__ import annotations

import gzip
import math
import os
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import DataError

__all__ = ["read_idx", "write_idx"]

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
_MAX_DIMS = 4
_DEFLATE_RATIO = 1032  # deflate expands at most 1032-fold: a gzip file's size bounds its content
_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype.name: code for code, dtype in _TYPES.items()}
_KNOWN = ", ".join(f"0x{code:02X} {dtype.name}" for code, dtype in _TYPES.items())


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed.

    Parameters
    ----------
    path : str or path-like
        The file. Gzip compression is detected from the file's first bytes.

    Returns
    -------
    numpy.ndarray
        The array, with the shape the header gives and the header's type in native
        byte order (uint8, int8, int16, int32, float32 or float64).

    Raises
    ------
    DataError
        If the file cannot be opened, is empty, has a bad magic number, an unknown
        type code, other than 1 to 4 dimensions, holds more or fewer bytes than its
        header claims, or is a corrupt gzip stream. Sizes are checked before the
        array is allocated (a gzip file cannot claim more than 1032 times its size,
        deflate's largest expansion), and no more than the claimed size plus one byte
        is ever decompressed, so a lying header fails fast.
    """
    path = Path(path)
    name = path.name
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise DataError(f"{name}: cannot open the file ({exc.strerror or exc})") from None
    with handle:
        try:
            start = handle.read(2)
            handle.seek(0)
            if not start:
                raise DataError(f"{name}: the file is empty")
            size = os.fstat(handle.fileno()).st_size
            if start != _GZIP_MAGIC:
                return _parse(handle, name, size)
        except OSError as exc:
            raise DataError(f"{name}: cannot read the file ({exc})") from None
        try:
            with gzip.GzipFile(fileobj=handle, mode="rb") as stream:
                return _parse(stream, name, None, _DEFLATE_RATIO * size)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{name}: corrupt or truncated gzip stream ({exc})") from None


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write an array as an IDX file, gzip-compressed when the name ends in ``.gz``.

    The file is written to a temporary name and renamed, so a failed write leaves
    nothing behind. Compressed output is reproducible (the gzip time stamp is 0).

    Parameters
    ----------
    path : str or path-like
        Destination file.
    array : numpy.ndarray
        One to four dimensions, each below 2**32, of type uint8, int8, int16, int32,
        float32 or float64.

    Raises
    ------
    TypeError
        If the array's type has no IDX type code.
    ValueError
        If the array has no dimension, more than four, or one of 2**32 or more.
    """
    array = np.asarray(array)
    if array.dtype.name not in _CODES:
        raise TypeError(f"array: IDX stores {', '.join(_CODES)}; got dtype {array.dtype}")
    if not 1 <= array.ndim <= _MAX_DIMS:
        raise ValueError(f"array: IDX holds 1 to {_MAX_DIMS} dimensions; got shape {array.shape}")
    if max(array.shape) >= 2**32:
        raise ValueError(f"array: IDX dimensions must be below 2**32; got shape {array.shape}")
    path = Path(path)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as raw:
            if path.suffix == ".gz":
                with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as stream:
                    stream.writelines(idx_chunks(array))
            else:
                raw.writelines(idx_chunks(array))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def idx_chunks(array: np.ndarray) -> Iterator[bytes | memoryview]:
    """Yield the bytes of the IDX encoding of `array`: the header, then the data.

    The array must have a type and shape that IDX can hold (`write_idx` checks).
    Hashing these chunks gives the checksum of the uncompressed file without
    reading it again.
    """
    code = _CODES[array.dtype.name]
    yield bytes([0, 0, code, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    data = np.ascontiguousarray(array, dtype=_TYPES[code])
    yield memoryview(data.reshape(-1).view(np.uint8))


def _parse(stream: BinaryIO, name: str, file_size: int | None,
           most: int | None = None) -> np.ndarray:
    """Parse an IDX stream; `file_size` is the raw file's size, None for gzip, whose content
    cannot exceed `most` bytes."""
    header = _read_up_to(stream, 4)
    if len(header) < 4:
        raise DataError(f"{name}: {len(header)} bytes is too short for an IDX header (4 or more)")
    if header[:2] != b"\0\0":
        raise DataError(
            f"{name}: not an IDX file (magic number 0x{header.hex().upper()} "
            "does not start with two zero bytes)"
        )
    code, ndim = header[2], header[3]
    if code not in _TYPES:
        raise DataError(f"{name}: unknown IDX type code 0x{code:02X} (known: {_KNOWN})")
    if not 1 <= ndim <= _MAX_DIMS:
        raise DataError(f"{name}: the IDX header gives {ndim} dimensions, not 1 to {_MAX_DIMS}")
    header_size = 4 + 4 * ndim
    dims = _read_up_to(stream, 4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(
            f"{name}: the file ends inside the IDX header "
            f"({4 + len(dims)} of its {header_size} bytes)"
        )
    shape = tuple(int.from_bytes(dims[i : i + 4], "big") for i in range(0, 4 * ndim, 4))
    dtype = _TYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    claim = f"header claims {'x'.join(map(str, shape))} {dtype.name} = {expected} bytes of data"
    if file_size is not None:
        held = file_size - header_size
        if held != expected:
            raise DataError(f"{name}: {claim} but the file holds {held}")
        buffer = np.empty(expected, dtype=np.uint8)
        if len(_read_into(stream, buffer)) != expected:
            raise DataError(f"{name}: {claim} but reading stopped early (was the file changed?)")
    else:
        if header_size + expected > most:
            raise DataError(f"{name}: {claim} but a gzip file of this size cannot hold more than "
                            f"{most} bytes")
        data = bytearray()
        while len(data) <= expected:
            chunk = stream.read(min(_CHUNK, expected + 1 - len(data)))
            if not chunk:
                break
            data += chunk
        if len(data) < expected:
            raise DataError(f"{name}: {claim} but the decompressed file holds {len(data)}")
        if len(data) > expected:
            raise DataError(f"{name}: {claim} but the decompressed file holds more (trailing data)")
        buffer = np.frombuffer(data, dtype=np.uint8)
    try:
        array = buffer.view(dtype).reshape(shape)
    except ValueError as exc:  # an empty array whose other dimensions overflow an index
        raise DataError(f"{name}: the shape {shape} of the IDX header is too large ({exc})"
                        ) from None
    if not dtype.isnative:
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return array


def _read_up_to(stream: BinaryIO, size: int) -> bytes:
    """Read `size` bytes, or fewer only at the end of the stream."""
    parts = []
    while size > 0:
        part = stream.read(size)
        if not part:
            break
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


def _read_into(stream: BinaryIO, buffer: np.ndarray) -> memoryview:
    """Fill the uint8 `buffer` from `stream`; return the part that was filled."""
    view = memoryview(buffer)
    filled = 0
    while filled < len(view):
        count = stream.readinto(view[filled:])
        if not count:
            break
        filled += count
    return view[:filled]
