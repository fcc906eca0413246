"""Read tabular data: numeric CSV files and NumPy ``.npz`` archives."""

from __future__ import annotations

import csv
import math
import os
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from .errors import DataError

__all__ = ["read_csv", "read_npz"]

_NPZ_KEYS = ("X", "y", "X_test", "y_test")
_NUMERIC_KINDS = "biuf"
_MAX_LISTED = 10
_DEFLATE_RATIO = 1032  # deflate expands at most 1032-fold
_CHUNK = 1 << 20


def read_csv(
    path: str | os.PathLike[str],
    target_column: int | str | None = -1,
    header: bool | Literal["auto"] = "auto",
    delimiter: str = ",",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a numeric CSV file into features and targets.

    Parameters
    ----------
    path : str or path-like
        A UTF-8 text file (a byte-order mark is allowed). Blank lines are skipped.
    target_column : int, str or None, default -1
        The column that holds the targets: an index (negative counts from the end)
        or a name from the header. None reads a file of features only.
    header : bool or "auto", default "auto"
        Whether the first row names the columns. "auto" takes it for a header when
        none of its cells is a number.
    delimiter : str, default ","
        The field separator (";" or "\\t" for other dialects).

    Returns
    -------
    X : numpy.ndarray
        float64 array of shape (n_rows, n_columns - 1): every column but the target
        (all n_columns when `target_column` is None).
    y : numpy.ndarray or None
        The target column, shape (n_rows,): int64 when every value is a whole number,
        float64 otherwise; None when `target_column` is None.

    Raises
    ------
    DataError
        Naming the file, line and column: an empty cell, text in a cell, NaN or
        infinity, a row with another number of columns, no data rows, fewer than two
        columns (one without a target), or a target column that does not exist.
    """
    path = Path(path)
    name = path.name
    try:
        handle = open(path, newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise DataError(f"{name}: cannot open the file ({exc.strerror or exc})") from None
    with handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            return _read_rows(name, _nonblank(reader), target_column, header)
        except csv.Error as exc:
            raise DataError(f"{name}, line {reader.line_num}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise DataError(f"{name}: not UTF-8 text ({exc.reason})") from None


def read_npz(path: str | os.PathLike[str], require_y: bool = True) -> dict[str, np.ndarray]:
    """Read a NumPy ``.npz`` archive of features and targets, without unpickling.

    Parameters
    ----------
    path : str or path-like
        An archive written by `numpy.savez` or `numpy.savez_compressed` that holds
        arrays ``X`` and ``y``, and optionally ``X_test`` and ``y_test`` (both or
        neither). Other arrays are ignored.
    require_y : bool, default True
        False accepts an archive of features only: ``X`` is still required, while
        ``y`` and ``y_test`` become optional (checked against their features when
        present; a ``y_test`` still needs its ``X_test``).

    Returns
    -------
    dict of str to numpy.ndarray
        The arrays found among ``X``, ``y``, ``X_test``, ``y_test``.

    Raises
    ------
    DataError
        If the file is not a readable archive, an array is missing, holds Python
        objects (they are never unpickled), is not numeric, holds NaN or infinity,
        or has the wrong number of dimensions or rows, or the test features have
        another shape than the training features.
    """
    path = Path(path)
    name = path.name
    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
            if not magic.startswith(b"PK"):  # an .npz is a zip archive; a pickle is refused
                kind = "a single .npy array" if magic == b"\x93NUMPY" else "not a zip file"
                raise DataError(f"{name}: {kind}, not an .npz archive of X and y")
            size = os.fstat(handle.fileno()).st_size
            handle.seek(0)
            with zipfile.ZipFile(handle) as archive:
                members = set(archive.namelist())
                arrays = {key: _npz_array(archive, key, name, size) for key in _NPZ_KEYS
                          if f"{key}.npy" in members}
    except DataError:
        raise
    except OSError as exc:
        raise DataError(f"{name}: cannot read the file ({exc.strerror or exc})") from None
    except (ValueError, EOFError, NotImplementedError, zipfile.BadZipFile) as exc:
        raise DataError(f"{name}: not a readable .npz archive ({exc})") from None
    _check_npz(arrays, name, require_y)
    return arrays


def _nonblank(reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, cells) for each row that is not a blank line."""
    for cells in reader:
        if cells:
            yield reader.line_num, cells


def _read_rows(
    name: str,
    rows: Iterator[tuple[int, list[str]]],
    target_column: int | str | None,
    header: bool | Literal["auto"],
) -> tuple[np.ndarray, np.ndarray | None]:
    """Parse the rows of a CSV file; see `read_csv`."""
    first = next(rows, None)
    if first is None:
        raise DataError(f"{name}: the file holds no rows")
    first_line, first_cells = first
    if target_column is not None and len(first_cells) < 2:
        raise DataError(f"{name}: line {first_line} has 1 column; features and a target need 2")
    if header == "auto":
        has_header = not any(_is_number(cell) for cell in first_cells)
        hint = f" (if line {first_line} is a header, pass header=True)"
    else:
        has_header, hint = bool(header), ""
    names = [cell.strip() for cell in first_cells] if has_header else None
    width = len(first_cells)
    target = None if target_column is None else _target_index(target_column, names, width, name)
    values = []
    if not has_header:
        values.append(_parse_row(first_cells, name, first_line, names, hint))
    for line, cells in rows:
        if len(cells) != width:
            raise DataError(
                f"{name}, line {line}: {len(cells)} columns where line {first_line} has {width}"
            )
        values.append(_parse_row(cells, name, line, names, ""))
    if not values:
        raise DataError(f"{name}: the file holds a header but no data rows")
    table = np.stack(values)
    if target is None:
        return table, None
    return np.delete(table, target, axis=1), _as_targets(table[:, target])


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _target_index(target: int | str, names: list[str] | None, width: int, name: str) -> int:
    """Resolve `target_column` to a non-negative column index."""
    if isinstance(target, str):
        if names is None:
            raise DataError(f"{name}: target column {target!r} is a name but there is no header")
        if names.count(target) != 1:
            problem = "appears twice in" if target in names else "is not in"
            raise DataError(f"{name}: target column {target!r} {problem} header {_list(names)}")
        return names.index(target)
    if isinstance(target, bool) or not isinstance(target, int | np.integer):
        raise DataError(f"{name}: target_column must be a column index or name, got {target!r}")
    if not -width <= target < width:
        raise DataError(f"{name}: target column {target} is out of range for {width} columns")
    return int(target) % width


def _parse_row(
    cells: list[str], name: str, line: int, names: list[str] | None, hint: str
) -> np.ndarray:
    """Convert one row to float64, or raise a DataError at the first bad cell."""
    try:
        row = np.array(cells, dtype=np.float64)
    except ValueError:
        pass
    else:
        if np.isfinite(row).all():
            return row
    values = []
    for column, cell in enumerate(cells):
        where = f"{name}, line {line}, column {column + 1}"
        if names is not None:
            where += f" ({names[column]!r})"
        text = cell.strip()
        if not text:
            raise DataError(f"{where}: empty cell{hint}")
        try:
            values.append(float(text))
        except ValueError:
            raise DataError(f"{where}: {text!r} is not a number{hint}") from None
        if not np.isfinite(values[-1]):
            raise DataError(f"{where}: {text!r} is not a finite number{hint}")
    return np.array(values)


def _as_targets(column: np.ndarray) -> np.ndarray:
    """int64 when every target is a whole number that int64 holds exactly, else float64."""
    if np.all(column == np.round(column)) and np.all(np.abs(column) <= 2.0**53):
        return column.astype(np.int64)
    return column


def _list(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_MAX_LISTED])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _MAX_LISTED else "")


def _npz_array(archive: zipfile.ZipFile, key: str, name: str, size: int) -> np.ndarray:
    """Read member ``key.npy`` after checking its sizes and its header: numbers only (no Python
    objects, never unpickled), and a claimed shape that the member's bytes hold."""
    member = f"{key}.npy"
    try:
        info = archive.getinfo(member)
        _check_member(info, name, key, size)
        with archive.open(member) as stream:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
            header_size = stream.tell()
            if dtype.hasobject:
                raise DataError(f"{name}: array {key!r} holds Python objects (never unpickled)")
            if dtype.kind not in _NUMERIC_KINDS:
                raise DataError(f"{name}: array {key!r} has non-numeric dtype {dtype}")
            claimed = math.prod(shape) * dtype.itemsize
            if claimed != info.file_size - header_size:
                raise DataError(
                    f"{name}: array {key!r} claims shape {shape} {dtype} = {claimed} bytes "
                    f"but its member holds {info.file_size - header_size}"
                )
            data = np.frombuffer(_read_up_to(stream, claimed + 1), dtype=np.uint8)
        if data.size != claimed:
            raise DataError(f"{name}: array {key!r} holds {data.size} bytes of data where its "
                            f"header claims {claimed}")
        array = data.view(dtype).reshape(shape, order="F" if fortran else "C")
        return array.astype(dtype.newbyteorder("="), copy=False)
    except DataError:
        raise
    except (KeyError, OSError, ValueError, EOFError, NotImplementedError, zipfile.BadZipFile,
            zlib.error) as exc:  # NotImplementedError: a zip feature Python cannot read
        raise DataError(f"{name}: array {key!r} cannot be read ({exc or type(exc).__name__})"
                        ) from None


def _read_up_to(stream, size: int) -> bytearray:
    """At most ``size`` bytes of ``stream``, read in chunks (one read of a claimed size would
    allocate the claim)."""
    data = bytearray()
    while len(data) < size:
        chunk = stream.read(min(_CHUNK, size - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def _check_member(info: zipfile.ZipInfo, name: str, key: str, size: int) -> None:
    """Refuse a member that NumPy could not have written, or whose sizes (claims of the zip
    directory) the archive of ``size`` bytes cannot back."""
    if info.compress_size > size:
        raise DataError(f"{name}: array {key!r} claims {info.compress_size} stored bytes in an "
                        f"archive of {size}")
    if info.flag_bits & 0x1:
        raise DataError(f"{name}: array {key!r} is encrypted")
    if info.compress_type == zipfile.ZIP_STORED:
        most = info.compress_size
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        most = _DEFLATE_RATIO * info.compress_size
    else:
        raise DataError(f"{name}: array {key!r} uses zip compression method "
                        f"{info.compress_type}; NumPy writes only stored or deflated members")
    if info.file_size > most:
        raise DataError(f"{name}: array {key!r} claims {info.file_size} bytes, more than its "
                        f"{info.compress_size} stored bytes can hold")


def _check_npz(arrays: dict[str, np.ndarray], name: str, require_y: bool) -> None:
    """Validate presence, types, dimensions, row counts and finiteness of the arrays."""
    missing = [key for key in ("X", "y") if key not in arrays and (key == "X" or require_y)]
    if "y_test" in arrays and "X_test" not in arrays:
        missing.append("X_test")
    elif require_y and "X_test" in arrays and "y_test" not in arrays:
        missing.append("y_test")
    if missing:
        needs = "X and y" if require_y else "X, optionally y"
        raise DataError(
            f"{name}: missing array(s) {', '.join(missing)} "
            f"(needs {needs}, optionally X_test and y_test; found {sorted(arrays) or 'none'})"
        )
    for key, array in arrays.items():
        if key.startswith("X") and array.ndim < 2:
            raise DataError(f"{name}: array {key!r} must be 2-D or more; got shape {array.shape}")
        if key.startswith("y") and array.ndim not in (1, 2):
            raise DataError(f"{name}: array {key!r} must be 1-D or 2-D; got shape {array.shape}")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            index = np.unravel_index(np.flatnonzero(~np.isfinite(array))[0], array.shape)
            where = tuple(map(int, index))
            raise DataError(f"{name}: array {key!r} holds NaN or inf (first at index {where})")
    for features, targets in (("X", "y"), ("X_test", "y_test")):
        if {features, targets} <= arrays.keys() and len(arrays[features]) != len(arrays[targets]):
            raise DataError(
                f"{name}: {features} has {len(arrays[features])} rows but {targets} has "
                f"{len(arrays[targets])}"
            )
    if "X_test" in arrays and arrays["X_test"].shape[1:] != arrays["X"].shape[1:]:
        raise DataError(
            f"{name}: X_test samples have shape {arrays['X_test'].shape[1:]} but X samples have "
            f"{arrays['X'].shape[1:]}"
        )
