"""Fuzzing the model loader (``mp.load``) and the checkpoint loader: whatever the bytes, they
return a valid network (or checkpoint) or raise ValueError, within a time limit, allocating no
more than a small multiple of the file's size.

Random bytes, byte-level mutations of valid files, and random JSON values put anywhere in the
safetensors header or in the matrixprop metadata document; ``fuzz/`` has the coverage-guided
(atheris) targets for the same loaders.
"""

import copy
import json
import struct

import numpy as np
import pytest
from _fuzz import FUZZ, JSON, MIB, assert_only, mutate, mutations, observe
from hypothesis import given
from hypothesis import strategies as st

import matrixprop as mp
from matrixprop import io
from matrixprop.checkpoint import load_checkpoint, save_checkpoint

MEMORY_FACTOR = 32  # JSON becomes Python objects, tensors a network: a bounded multiple


def _model_bytes(tmp_path, dtype="float32") -> bytes:
    net = mp.MLP([3, 4, 2], ["tanh"], "softmax", seed=0, dtype=dtype, dropout=0.25)
    return mp.save(net, tmp_path / "seed.safetensors",
                    metadata={"loss": {"name": "cross_entropy"}}).read_bytes()


def _checkpoint_bytes(tmp_path, optimizer) -> bytes:
    net = mp.MLP([3, 4, 2], "relu", "softmax", seed=0, dtype="float64")
    rng = np.random.default_rng(0)
    history = mp.fit(net, rng.normal(size=(8, 3)), rng.integers(0, 2, 8), optimizer=optimizer,
                     epochs=2, batch_size=4, seed=0)
    path = save_checkpoint(tmp_path / "seed_checkpoint.safetensors", net, optimizer, epoch=2,
                           seed=0, history=history, metadata={"loss": {"name": "cross_entropy"}})
    return path.read_bytes()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seeds")
    return {"folder": folder,
            "models": [_model_bytes(folder), _model_bytes(folder, "float64")],
            "checkpoints": [_checkpoint_bytes(folder, mp.optimizers.Adam(lr=0.01)),
                            _checkpoint_bytes(folder, mp.optimizers.SGD(lr=0.1, momentum=0.9))]}


def _split(data: bytes) -> tuple[dict, bytes]:
    """The header of a safetensors file as JSON, and the tensor bytes after it."""
    (size,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + size]), data[8 + size:]


def _join(header: dict, rest: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + rest


def _replace_somewhere(draw, value, replacement):
    """``value`` with one part, chosen by ``draw`` (hypothesis' data.draw), replaced."""
    if not isinstance(value, (dict, list)) or not value or draw(st.booleans()):
        return replacement
    value = copy.copy(value)
    key = draw(st.sampled_from(sorted(value) if isinstance(value, dict) else range(len(value))))
    value[key] = _replace_somewhere(draw, value[key], replacement)
    return value


def _check(loader, path, data: bytes):
    path.write_bytes(data)
    outcome = observe(loader, path)
    assert_only(outcome, ValueError)
    assert outcome.peak <= MEMORY_FACTOR * len(data) + MIB, (outcome.peak, len(data))
    if outcome.error is None:
        net = outcome.value if isinstance(outcome.value, mp.Network) else outcome.value.network
        assert np.isfinite(net.params).all()
        assert mp.Network.from_config(net.config()).params.shape == net.params.shape
    else:
        assert str(path) in str(outcome.error)  # the message names the file
    return outcome


LOADERS = {"model": mp.load, "checkpoint": load_checkpoint}


def _seed(seeds, kind: str, index: int) -> bytes:
    return seeds["models" if kind == "model" else "checkpoints"][index]


# -- random and mutated bytes -----------------------------------------------------------------
@FUZZ
@given(data=st.binary(max_size=400), framed=st.booleans())
@pytest.mark.parametrize("kind", LOADERS)
def test_random_bytes(seeds, kind, data, framed):
    if framed:  # a header size that fits the file, so the parser gets further
        data = struct.pack("<Q", len(data)) + data
    _check(LOADERS[kind], seeds["folder"] / f"random_{kind}.safetensors", data)


@FUZZ
@given(index=st.integers(0, 1), edit=mutations(1200))
@pytest.mark.parametrize("kind", LOADERS)
def test_mutated_valid_files(seeds, kind, index, edit):
    data = mutate(_seed(seeds, kind, index), edit)
    _check(LOADERS[kind], seeds["folder"] / f"mutated_{kind}.safetensors", data)


# -- structured: random JSON anywhere in the header or the metadata -------------------------
@FUZZ
@given(index=st.integers(0, 1), value=JSON, data=st.data())
@pytest.mark.parametrize("kind", LOADERS)
def test_random_values_in_the_safetensors_header(seeds, kind, index, value, data):
    header, rest = _split(_seed(seeds, kind, index))
    header.pop("__metadata__")  # fuzzed by the next test
    spoiled = _replace_somewhere(data.draw, header, value)
    if not isinstance(spoiled, dict):
        spoiled = {"x": spoiled}
    spoiled["__metadata__"] = _split(_seed(seeds, kind, index))[0]["__metadata__"]
    _check(LOADERS[kind], seeds["folder"] / f"header_{kind}.safetensors", _join(spoiled, rest))


@FUZZ
@given(index=st.integers(0, 1), value=JSON, data=st.data())
@pytest.mark.parametrize("kind", LOADERS)
def test_random_values_in_the_metadata(seeds, kind, index, value, data):
    header, rest = _split(_seed(seeds, kind, index))
    document = json.loads(header["__metadata__"][io.METADATA_KEY])
    spoiled = _replace_somewhere(data.draw, document, value)
    header["__metadata__"][io.METADATA_KEY] = json.dumps(spoiled)
    _check(LOADERS[kind], seeds["folder"] / f"metadata_{kind}.safetensors", _join(header, rest))


# -- lying sizes ----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", LOADERS)
def test_header_claiming_a_2_31_by_784_tensor_fails_at_once(seeds, tmp_path, kind):
    header, rest = _split(_seed(seeds, kind, 0))
    header["layers.0.weight"]["shape"] = [2**31, 784]
    outcome = _check(LOADERS[kind], tmp_path / "huge.safetensors", _join(header, rest))
    assert "layers.0.weight claims shape (2147483648, 784)" in str(outcome.error)
    assert outcome.peak < MIB and outcome.seconds < 0.5


@pytest.mark.parametrize("kind", LOADERS)
def test_architecture_and_header_agreeing_on_a_huge_layer(seeds, tmp_path, kind):
    """Metadata and header both claim a 2^31 x 784 layer; the file holds a few bytes."""
    header, rest = _split(_seed(seeds, kind, 0))
    document = json.loads(header["__metadata__"][io.METADATA_KEY])
    document["architecture"]["layers"][0]["n_out"] = 2**31
    document["architecture"]["layers"][0]["n_in"] = 784
    header["__metadata__"][io.METADATA_KEY] = json.dumps(document)
    header["layers.0.weight"].update(shape=[2**31, 784], data_offsets=[0, 2**31 * 784 * 4])
    outcome = _check(LOADERS[kind], tmp_path / "huge.safetensors", _join(header, rest))
    assert isinstance(outcome.error, ValueError)
    assert outcome.peak < MIB and outcome.seconds < 0.5


# -- values a JSON parser accepts but the writer never produces ------------------------------
@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_metadata_with_non_finite_json_numbers(seeds, tmp_path, token):
    header, rest = _split(_seed(seeds, "checkpoint", 0))
    text = header["__metadata__"][io.METADATA_KEY]
    spoiled = text.replace('"lr_scale": 1.0', f'"lr_scale": {token}')
    header["__metadata__"][io.METADATA_KEY] = spoiled
    assert token in header["__metadata__"][io.METADATA_KEY]
    path = tmp_path / "c.safetensors"
    path.write_bytes(_join(header, rest))
    with pytest.raises(ValueError, match="metadata is not valid JSON"):
        load_checkpoint(path)


@pytest.mark.parametrize("scale", [0, -1.0, "1", True])
def test_checkpoint_learning_rate_scale_must_be_a_positive_number(seeds, tmp_path, scale):
    header, rest = _split(_seed(seeds, "checkpoint", 0))
    document = json.loads(header["__metadata__"][io.METADATA_KEY])
    document["checkpoint"]["lr_scale"] = scale
    header["__metadata__"][io.METADATA_KEY] = json.dumps(document)
    path = tmp_path / "c.safetensors"
    path.write_bytes(_join(header, rest))
    with pytest.raises(ValueError, match="lr_scale must be a finite number > 0"):
        load_checkpoint(path)


@pytest.mark.parametrize("kind", LOADERS)
def test_bytes_beyond_the_tensors_are_refused_before_reading_them(seeds, tmp_path, kind):
    data = _seed(seeds, kind, 0) + bytes(8 * MIB)
    outcome = _check(LOADERS[kind], tmp_path / "padded.safetensors", data)
    assert "but the file holds" in str(outcome.error)
    assert outcome.peak < MIB  # the 8 MiB were never read
