"""Model files: safetensors tensors plus the architecture and training setup as JSON metadata.

A model file holds the arrays of ``net.state_dict()`` under their names (``layers.0.weight``...)
and one metadata entry, ``matrixprop``: a JSON document with the format version, the library
version, the architecture (``net.config()``) and whatever the caller adds (the loss, the training
configuration). Any safetensors reader can open it, ``safetensors.torch.load_file`` included.

Writing goes to a temporary file in the target folder, which is flushed, synced and then renamed
over the target: a crash leaves either the old file or the new one, never half of one. Reading
never unpickles: the header is parsed as JSON (its size bounded), the tensors by safetensors, and
every name, shape, dtype and value is checked against the metadata before a network is built.
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .network import Network

__all__ = ["FORMAT_VERSION", "METADATA_KEY", "OPTIMIZER_PREFIX", "save", "load", "read_model",
           "read_file", "write_file", "atomic_write", "to_json", "model_document",
           "network_from"]

FORMAT_VERSION = 1
METADATA_KEY = "matrixprop"
OPTIMIZER_PREFIX = "optimizer."  # names of a checkpoint's optimizer buffers
_RESERVED = ("format_version", "library_version", "architecture")
_MAX_HEADER = 16 * 2**20  # bytes of JSON header: far more than any network's metadata
_DTYPES = {np.dtype(np.float32), np.dtype(np.float64)}


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
    from . import __version__

    extra = dict(metadata or {})
    clash = [key for key in _RESERVED if key in extra]
    if clash:
        raise ValueError(f"metadata may not set the reserved keys {clash}")
    return {"format_version": FORMAT_VERSION, "library_version": __version__,
            "architecture": net.config(), **extra}


def write_file(path: str | os.PathLike[str], tensors: Mapping[str, np.ndarray],
               document: Mapping) -> Path:
    """Write ``tensors`` and the JSON ``document`` as a safetensors file, atomically."""
    from safetensors.numpy import save as encode

    arrays = {name: np.ascontiguousarray(value) for name, value in tensors.items()}
    payload = encode(arrays, metadata={METADATA_KEY: to_json(document)})
    return atomic_write(path, payload)


def atomic_write(path: str | os.PathLike[str], payload: bytes) -> Path:
    """Write ``payload`` to a temporary file beside ``path``, sync it, rename it to ``path``."""
    path = Path(path)
    folder = path.parent
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_folder(folder)
    return path


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
    """Read a matrixprop safetensors file: its tensors and its metadata document, checked for
    structure only (see :func:`network_from` for the model checks)."""
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
        raw_header = handle.read(header_size)
        header = _parse_json(path, raw_header, "header")
        payload = head + raw_header + handle.read()
    if not isinstance(header, dict):
        raise ValueError(f"{path}: the safetensors header is not a JSON object")
    entries = header.get("__metadata__")
    if not isinstance(entries, dict) or not isinstance(entries.get(METADATA_KEY), str):
        raise ValueError(f"{path}: not a matrixprop file (no {METADATA_KEY!r} metadata entry)")
    document = _parse_json(path, entries[METADATA_KEY].encode(), "metadata")
    _check_document(path, document)
    try:
        tensors = decode(payload)
    except SafetensorError as exc:
        raise ValueError(f"{path}: invalid or truncated safetensors data ({exc})") from None
    return tensors, document


def _parse_json(path, raw: bytes, what: str):
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{path}: the {what} is not valid JSON ({exc})") from None


def _check_document(path, document) -> None:
    if not isinstance(document, dict):
        raise ValueError(f"{path}: the {METADATA_KEY!r} metadata is not a JSON object")
    version = document.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{path}: the metadata has no valid format_version")
    if version > FORMAT_VERSION:
        raise ValueError(f"{path}: format version {version} is newer than this matrixprop "
                         f"reads ({FORMAT_VERSION}); upgrade matrixprop")


def network_from(path, document: Mapping, tensors: Mapping[str, np.ndarray]) -> Network:
    """Build the network that ``document["architecture"]`` describes and load its parameters from
    ``tensors``, after checking them against the architecture. Other tensors are refused, except
    the ``optimizer.*`` buffers of a checkpoint (a document with a ``checkpoint`` entry)."""
    architecture = document.get("architecture")
    expected = _expected_shapes(path, architecture)
    state = "checkpoint" in document  # a checkpoint also holds the optimizer's buffers
    params = {name: value for name, value in tensors.items()
              if not (state and name.startswith(OPTIMIZER_PREFIX))}
    missing = sorted(set(expected) - set(params))
    unexpected = sorted(set(params) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{path}: the tensors do not match the metadata's architecture "
                         f"(missing {missing}, unexpected {unexpected})")
    dtype = _architecture_dtype(path, architecture)
    for name, shape in expected.items():
        value = params[name]
        if value.shape != shape:
            raise ValueError(f"{path}: tensor {name} has shape {value.shape}, but the "
                             f"architecture says {shape}")
        if value.dtype != dtype:
            raise ValueError(f"{path}: tensor {name} is {value.dtype}, but the architecture "
                             f"says {dtype}")
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
    try:
        dtype = np.dtype(architecture.get("dtype", "float32"))
    except (TypeError, ValueError):
        dtype = None
    if dtype not in _DTYPES:
        raise ValueError(f"{path}: the architecture's dtype {architecture.get('dtype')!r} is not "
                         "float32 or float64")
    return dtype
