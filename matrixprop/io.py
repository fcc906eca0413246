"""Model files: safetensors tensors plus the architecture and training setup as JSON metadata.

A model file holds the arrays of ``net.state_dict()`` under their names (``layers.0.weight``...)
and one metadata entry, ``matrixprop``: a JSON document with the format version, the library
version, the architecture (``net.config()``) and whatever the caller adds (the loss, the training
configuration). Any safetensors reader can open it, ``safetensors.torch.load_file`` included.

Writing refuses non-finite values, then goes to a temporary file in the target folder, which is
flushed, synced and then renamed over the target: a crash leaves either the old file or the new
one, never half of one. Reading never unpickles: the header is parsed as JSON (its size bounded),
every tensor's name, dtype, shape and byte range is checked against the file's size and the
metadata's architecture before the tensors are read, then safetensors decodes them and every value
is checked to be finite before a network is built.
"""

from __future__ import annotations

import errno
import json
import math
import os
import struct
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ._validation import check_finite
from ._version import __version__
from .network import Network

__all__ = ["FORMAT_VERSION", "METADATA_KEY", "OPTIMIZER_PREFIX", "save", "load", "read_model",
           "read_file", "write_file", "atomic_write", "atomic_path", "remove_temporaries",
           "to_json", "model_document", "network_from"]

FORMAT_VERSION = 1
METADATA_KEY = "matrixprop"
OPTIMIZER_PREFIX = "optimizer."  # names of a checkpoint's optimizer buffers
_RESERVED = ("format_version", "library_version", "architecture")
_MAX_HEADER = 16 * 2**20  # bytes of JSON header: far more than any network's metadata
_DTYPES = ("float32", "float64")
# safetensors' dtype names -> NumPy's (for messages); only float32 and float64 are accepted
_SAFETENSORS_DTYPES = {"F32": "float32", "F64": "float64", "F16": "float16", "BF16": "bfloat16",
                       "I8": "int8", "I16": "int16", "I32": "int32", "I64": "int64", "U8": "uint8",
                       "U16": "uint16", "U32": "uint32", "U64": "uint64", "BOOL": "bool"}
_TEMPORARY = ".tmp"  # a temporary file beside NAME is .NAME.<random>.tmp<NAME's suffix>


# -- writing ------------------------------------------------------------------------------------
def save(net: Network, path: str | os.PathLike[str], metadata: Mapping | None = None) -> Path:
    """Write ``net`` to a safetensors file at ``path``.

    Parameters
    ----------
    net : Network
        The network; its parameters are stored in its own dtype.
    path : str or path-like
        The file to write (conventionally ``*.safetensors``); replaced atomically if it exists.
    metadata : mapping, optional
        JSON-serializable entries stored beside the architecture, such as ``{"loss": ...,
        "training": {...}}``. The keys ``format_version``, ``library_version`` and
        ``architecture`` are reserved.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a matrixprop Network, got {type(net).__name__}")
    return write_file(path, net.state_dict(), model_document(net, metadata))


def model_document(net: Network, metadata: Mapping | None = None) -> dict:
    """The metadata document of a model file: versions, architecture, then ``metadata``."""
    extra = dict(metadata or {})
    clash = [key for key in _RESERVED if key in extra]
    if clash:
        raise ValueError(f"metadata may not set the reserved keys {clash}")
    return {"format_version": FORMAT_VERSION, "library_version": __version__,
            "architecture": net.config(), **extra}


def write_file(path: str | os.PathLike[str], tensors: Mapping[str, np.ndarray],
               document: Mapping) -> Path:
    """Write ``tensors`` and the JSON ``document`` as a safetensors file, atomically.

    Raises
    ------
    ValueError
        If a tensor holds NaN or an infinity (nothing is written then).
    """
    from safetensors.numpy import save as encode

    arrays = {name: np.ascontiguousarray(value) for name, value in tensors.items()}
    for name, value in arrays.items():
        check_finite(value, f"{path}: tensor {name}")
    payload = encode(arrays, metadata={METADATA_KEY: to_json(document)})
    return atomic_write(path, payload)


def atomic_write(path: str | os.PathLike[str], payload: bytes) -> Path:
    """Write ``payload`` to a temporary file beside ``path``, sync it, rename it to ``path``."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(payload)
    return Path(path)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; when the block ends without an error, the
    file is synced and renamed to ``path`` (which it replaces), otherwise it is removed.

    The temporary name keeps ``path``'s suffix, so writers that choose a format by the suffix
    (``savefig``) work unchanged.
    """
    path = Path(path)
    if not path.parent.is_dir():  # say so, rather than name the temporary file
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(path.parent))
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                suffix=f"{_TEMPORARY}{path.suffix}")
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        _sync_file(temporary)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def remove_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files that writes of ``path`` left behind when their process was
    killed before it could remove them; return them."""
    path = Path(path)
    pattern = f".{path.name}.*{_TEMPORARY}{path.suffix}"
    stale = sorted(path.parent.glob(pattern))
    for temporary in stale:
        temporary.unlink(missing_ok=True)
    return stale


def _sync_file(path: Path) -> None:
    """Flush ``path``'s data to the disk."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(folder: Path) -> None:
    """Make the rename durable (where the platform lets a folder be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def to_json(document, **kwargs) -> str:
    """Strict JSON for ``document``: NumPy scalars and arrays become numbers and lists, and
    non-finite floats become ``null`` (JSON has no NaN or infinity)."""
    return json.dumps(_plain(document), allow_nan=False, **kwargs)


def _plain(value):
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- reading ------------------------------------------------------------------------------------
def load(path: str | os.PathLike[str]) -> Network:
    """Read a model file written by :func:`save` (or ``net.save``) and return the network.

    Raises
    ------
    ValueError
        Naming the file, if it is not a valid model file: not safetensors, truncated, a header
        that is too large or not JSON, metadata that is missing or unsupported, tensors whose
        names, shapes or dtypes disagree with the architecture, or non-finite values.
    OSError
        If the file cannot be opened (``FileNotFoundError`` when it does not exist).
    """
    return read_model(path)[0]


def read_model(path: str | os.PathLike[str]) -> tuple[Network, dict]:
    """Read a model file: the network and its metadata document (see :func:`load`)."""
    tensors, document = read_file(path)
    return network_from(path, document, tensors), document


def read_file(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict]:
    """Read a matrixprop safetensors file: its tensors and its metadata document.

    Before any tensor is read, the header is checked: its size, its JSON, every tensor's dtype,
    shape and byte range against the file, and the names, shapes and dtypes against the
    metadata's architecture (see :func:`network_from`). So a file can never make the reader
    allocate more than the file holds.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load as decode

    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        head = handle.read(8)
        if len(head) < 8:
            raise ValueError(f"{path}: not a safetensors file (only {size} bytes)")
        (header_size,) = struct.unpack("<Q", head)
        if header_size > min(_MAX_HEADER, size - 8):
            raise ValueError(
                f"{path}: not a safetensors file, or truncated: its header claims {header_size:,}"
                f" bytes of a file of {size:,} bytes"
            )
        header = _parse_json(path, handle.read(header_size), "header")
        if not isinstance(header, dict):
            raise ValueError(f"{path}: the safetensors header is not a JSON object")
        entries = header.pop("__metadata__", None)
        if not isinstance(entries, dict) or not isinstance(entries.get(METADATA_KEY), str):
            raise ValueError(f"{path}: not a matrixprop file (no {METADATA_KEY!r} metadata entry)")
        document = _parse_json(path, entries[METADATA_KEY].encode(), "metadata")
        _check_document(path, document)
        specs, claimed = _header_specs(path, header, size - 8 - header_size)
        check_tensors(path, document, specs)
        if claimed != size - 8 - header_size:  # safetensors indexes every byte after the header
            raise ValueError(f"{path}: the tensors claim {claimed:,} bytes, but the file holds "
                             f"{size - 8 - header_size:,} after its header")
        handle.seek(0)
        payload = handle.read()
    try:
        tensors = decode(payload)
    except SafetensorError as exc:
        raise ValueError(f"{path}: invalid or truncated safetensors data ({exc})") from None
    return tensors, document


def _parse_json(path, raw: bytes, what: str):
    """Strict JSON: no NaN or infinity (the writer never produces them), no huge nesting."""
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant,
                          parse_float=_finite_float)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # JSONDecodeError included
        raise ValueError(f"{path}: the {what} is not valid JSON ({exc})") from None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _check_document(path, document) -> None:
    if not isinstance(document, dict):
        raise ValueError(f"{path}: the {METADATA_KEY!r} metadata is not a JSON object")
    version = document.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{path}: the metadata has no valid format_version")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path}: format version {version} is newer than this matrixprop "
                         f"reads ({FORMAT_VERSION}); upgrade matrixprop")


def _header_specs(path, header: dict, data_size: int
                  ) -> tuple[dict[str, tuple[tuple[int, ...], str]], int]:
    """Name -> (shape, dtype name) of every tensor the header lists, after checking that each
    entry is well formed and that each float tensor's byte range lies in the ``data_size``
    bytes after the header and matches its shape; and the bytes the float tensors claim."""
    specs, covered = {}, 0
    for name, entry in header.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("dtype"), str)
                and _is_counts(entry.get("shape")) and _is_counts(entry.get("data_offsets"))
                and len(entry["data_offsets"]) == 2):
            raise ValueError(f"{path}: the header entry of tensor {name!r} is malformed")
        dtype = _SAFETENSORS_DTYPES.get(entry["dtype"], f"of unknown dtype {entry['dtype']!r}")
        begin, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        if dtype in _DTYPES:
            claimed = math.prod(shape) * np.dtype(dtype).itemsize
            if not begin <= end <= data_size or end - begin != claimed:
                raise ValueError(f"{path}: tensor {name} claims shape {shape} {dtype} = "
                                 f"{claimed:,} bytes at offsets {begin:,}..{end:,} of "
                                 f"{data_size:,} bytes of data")
            covered += claimed
        specs[name] = (shape, dtype)
    return specs, covered


def _is_counts(value) -> bool:
    """A JSON list of non-negative integers (shapes and offsets)."""
    return isinstance(value, list) and all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value)


def check_tensors(path, document: Mapping, specs: Mapping[str, tuple[tuple[int, ...], str]]
                  ) -> None:
    """Check tensors, given as name -> (shape, dtype name), against ``document["architecture"]``:
    exactly the parameters it implies, with their shapes and its dtype; a checkpoint (a document
    with a ``checkpoint`` entry) may add ``optimizer.*`` buffers of one value per parameter."""
    architecture = document.get("architecture")
    expected = _expected_shapes(path, architecture)
    dtype = _architecture_dtype(path, architecture).name
    state = "checkpoint" in document  # a checkpoint also holds the optimizer's buffers
    buffer = (sum(math.prod(shape) for shape in expected.values()),)
    params = {name for name in specs if not (state and name.startswith(OPTIMIZER_PREFIX))}
    missing = sorted(set(expected) - params)
    unexpected = sorted(params - set(expected))
    if missing or unexpected:
        raise ValueError(f"{path}: the tensors do not match the metadata's architecture "
                         f"(missing {missing}, unexpected {unexpected})")
    for name in [*expected, *sorted(set(specs) - set(expected))]:  # the architecture's order
        shape, kind = specs[name]
        wanted = expected.get(name, buffer)
        if tuple(shape) != wanted:
            raise ValueError(f"{path}: tensor {name} has shape {tuple(shape)}, but the "
                             f"architecture says {wanted}")
        if kind != dtype:
            raise ValueError(f"{path}: tensor {name} is {kind}, but the architecture "
                             f"says {dtype}")


def network_from(path, document: Mapping, tensors: Mapping[str, np.ndarray]) -> Network:
    """Build the network that ``document["architecture"]`` describes and load its parameters from
    ``tensors``, after checking them with :func:`check_tensors` (and every value for being
    finite)."""
    check_tensors(path, document, {name: (value.shape, value.dtype.name)
                                   for name, value in tensors.items()})
    architecture = document["architecture"]
    params = {name: value for name, value in tensors.items()
              if not name.startswith(OPTIMIZER_PREFIX)}
    try:
        net = Network.from_config(architecture)
        net.load_state_dict(params)
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    return net


def _expected_shapes(path, architecture) -> dict[str, tuple[int, ...]]:
    """Parameter name -> shape, from the architecture alone (before allocating anything)."""
    layers = architecture.get("layers") if isinstance(architecture, dict) else None
    if not isinstance(layers, list) or not layers or not all(isinstance(x, dict) for x in layers):
        raise ValueError(f"{path}: the metadata has no valid architecture (a list of layers)")
    shapes = {}
    for i, layer in enumerate(layers):
        n_in, n_out = layer.get("n_in"), layer.get("n_out")
        if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in (n_in, n_out)):
            raise ValueError(f"{path}: layer {i} of the architecture has no valid n_in/n_out")
        shapes[f"layers.{i}.weight"] = (n_out, n_in)
        if layer.get("bias", True):
            shapes[f"layers.{i}.bias"] = (n_out,)
    return shapes


def _architecture_dtype(path, architecture: dict) -> np.dtype:
    name = architecture.get("dtype", "float32")
    if name not in _DTYPES:
        raise ValueError(f"{path}: the architecture's dtype {name!r} is not float32 or float64")
    return np.dtype(name)
