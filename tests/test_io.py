"""Model files and checkpoints: round trips, atomic writes, and refusal of every bad file."""

import json
import os
import pickle
import struct

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import matrixprop as mp
from matrixprop import io
from matrixprop.checkpoint import CheckpointCallback, load_checkpoint, save_checkpoint


def _net(dtype="float32", **kwargs):
    return mp.MLP([5, 7, 4, 3], ["tanh", "relu"], "softmax", seed=1, dtype=dtype, **kwargs)


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5)), rng.integers(0, 3, size=n)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model.safetensors"
    mp.save(_net(), path, metadata={"loss": {"name": "cross_entropy", "reduction": "mean"}})
    return path


# -- round trips ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_predicts_identically(tmp_path, dtype):
    net = _net(dtype, dropout=0.25)
    path = mp.save(net, tmp_path / "m.safetensors", metadata={"note": [1, 2]})
    loaded, document = io.read_model(path)
    X, _ = _data()
    assert loaded.dtype == np.dtype(dtype)
    assert loaded.config() == net.config()
    assert np.array_equal(loaded.predict(X), net.predict(X))
    assert document["note"] == [1, 2]
    assert document["format_version"] == io.FORMAT_VERSION
    assert document["library_version"] == mp.__version__
    assert type(mp.load(path)) is mp.Network


def test_file_is_plain_safetensors_readable_by_torch(model_file):
    torch_file = pytest.importorskip("safetensors.torch")
    tensors = torch_file.load_file(model_file)
    net = mp.load(model_file)
    assert sorted(tensors) == sorted(net.state_dict())
    for name, value in net.state_dict().items():
        assert np.array_equal(tensors[name].numpy(), value)


def test_save_replaces_atomically_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    first = _net()
    mp.save(first, path)
    before = path.read_bytes()

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    second = mp.MLP([5, 2, 3], seed=9)
    with pytest.raises(OSError, match="disk full"):
        mp.save(second, path)
    assert path.read_bytes() == before  # the old model is intact
    assert os.listdir(tmp_path) == ["m.safetensors"]  # and no temporary file is left


def test_reserved_metadata_keys_are_refused(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        mp.save(_net(), tmp_path / "m.safetensors", metadata={"architecture": {}})
    assert not (tmp_path / "m.safetensors").exists()


def test_non_finite_metadata_becomes_null(tmp_path):
    path = mp.save(_net(), tmp_path / "m.safetensors", metadata={"x": float("inf")})
    assert io.read_model(path)[1]["x"] is None


# -- bad files ------------------------------------------------------------------------------
def _rewrite(path, tensors=None, document=None):
    """Write a safetensors file with arbitrary tensors and matrixprop metadata."""
    metadata = {io.METADATA_KEY: document if isinstance(document, str) else json.dumps(document)}
    save_file(tensors, str(path), metadata=metadata)


def _parts(path):
    tensors = load_file(path)
    _, document = io.read_file(path)
    return tensors, document


@pytest.mark.parametrize("keep", [0, 5, 8, 60, -1])
def test_truncated_file(model_file, keep):
    data = model_file.read_bytes()
    model_file.write_bytes(data[:keep] if keep >= 0 else data[:-7])
    with pytest.raises(ValueError, match="model.safetensors"):
        mp.load(model_file)


def test_garbage_file(tmp_path):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match="garbage.safetensors: not a safetensors file"):
        mp.load(path)


class _Trap:
    """Unpickling this object creates a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_renamed_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"layers.0.weight": _Trap(marker)}))
    with pytest.raises(ValueError, match="evil.safetensors"):
        mp.load(path)
    assert not marker.exists()
    pickle.loads(path.read_bytes())  # the trap works: loading it as a pickle would run code
    assert marker.exists()


def test_torch_checkpoint_renamed_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "torch.safetensors"
    torch.save({"layers.0.weight": torch.zeros(7, 5)}, path)
    with pytest.raises(ValueError, match="not a safetensors file"):
        mp.load(path)


def test_header_size_is_bounded(tmp_path):
    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", 2**62) + b"{}")
    with pytest.raises(ValueError, match="header claims"):
        mp.load(path)


def test_header_that_is_not_json(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", 4) + b"{{{{")
    with pytest.raises(ValueError, match="header is not valid JSON"):
        mp.load(path)


def test_deeply_nested_header(tmp_path):
    path = tmp_path / "m.safetensors"
    header = b"[" * 100_000 + b"]" * 100_000
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(ValueError, match="header is not valid JSON"):
        mp.load(path)


def test_plain_safetensors_without_metadata(tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file({"layers.0.weight": np.zeros((3, 5), np.float32)}, str(path))
    with pytest.raises(ValueError, match="not a matrixprop file"):
        mp.load(path)


@pytest.mark.parametrize("document", ["{not json", json.dumps([1, 2]),
                                      json.dumps({"architecture": {}}),
                                      json.dumps({"format_version": 99, "architecture": {}})])
def test_bad_metadata_document(model_file, document):
    tensors, _ = _parts(model_file)
    _rewrite(model_file, tensors, document)
    with pytest.raises(ValueError, match="model.safetensors"):
        mp.load(model_file)


def _edit_architecture(model_file, edit):
    tensors, document = _parts(model_file)
    edit(document["architecture"])
    _rewrite(model_file, tensors, document)


def test_metadata_that_disagrees_with_the_tensors(model_file):
    _edit_architecture(model_file, lambda a: a["layers"][1].update(n_out=6))
    with pytest.raises(ValueError, match=r"layers.1.weight has shape \(4, 7\).*\(6, 7\)"):
        mp.load(model_file)


def test_metadata_claiming_a_huge_layer_allocates_nothing(model_file):
    _edit_architecture(model_file, lambda a: a["layers"][0].update(n_out=10**12))
    with pytest.raises(ValueError, match="has shape"):
        mp.load(model_file)


def test_metadata_dtype_that_disagrees_with_the_tensors(model_file):
    _edit_architecture(model_file, lambda a: a.update(dtype="float64"))
    with pytest.raises(ValueError, match="is float32, but the architecture says float64"):
        mp.load(model_file)


def test_metadata_with_an_unknown_activation(model_file):
    _edit_architecture(model_file, lambda a: a["layers"][0].update(activation={"name": "nope"}))
    with pytest.raises(ValueError, match="model.safetensors: .*nope"):
        mp.load(model_file)


def test_missing_and_unexpected_tensors(model_file):
    tensors, document = _parts(model_file)
    tensors["layers.9.weight"] = tensors.pop("layers.2.weight")
    _rewrite(model_file, tensors, document)
    with pytest.raises(ValueError, match=r"missing \['layers.2.weight'\].*unexpected"):
        mp.load(model_file)


def test_tensors_beyond_the_parameters(model_file):
    tensors, document = _parts(model_file)
    tensors["optimizer.exp_avg"] = np.zeros(3, np.float32)  # only a checkpoint may hold these
    _rewrite(model_file, tensors, document)
    with pytest.raises(ValueError, match=r"unexpected \['optimizer.exp_avg'\]"):
        mp.load(model_file)


def test_non_finite_parameters(model_file):
    tensors, document = _parts(model_file)
    tensors["layers.1.bias"][2] = np.nan
    _rewrite(model_file, tensors, document)
    with pytest.raises(ValueError, match="layers.1.bias contains NaN"):
        mp.load(model_file)


def test_integer_tensors(model_file):
    tensors, document = _parts(model_file)
    tensors["layers.0.bias"] = tensors["layers.0.bias"].astype(np.int32)
    _rewrite(model_file, tensors, document)
    with pytest.raises(ValueError, match="layers.0.bias is int32"):
        mp.load(model_file)


# -- checkpoints ----------------------------------------------------------------------------
def _train(net, optimizer, epochs, initial_epoch=0, callbacks=None):
    X, y = _data(96)
    return mp.fit(net, X, y, loss="cross_entropy", optimizer=optimizer, batch_size=16,
                  epochs=epochs, initial_epoch=initial_epoch, seed=11, callbacks=callbacks,
                  validation_data=_data(20, seed=1))


@pytest.mark.parametrize("optimizer", [
    lambda: mp.optimizers.Adam(lr=0.01),
    lambda: mp.optimizers.SGD(lr=0.1, momentum=0.9, nesterov=True),
])
def test_resumed_training_is_bit_identical(tmp_path, optimizer):
    straight = _net("float64", dropout=0.3)
    _train(straight, optimizer(), epochs=5)

    path = tmp_path / "checkpoint.safetensors"
    first = CheckpointCallback(path, seed=11)
    _train(_net("float64", dropout=0.3), optimizer(), epochs=2, callbacks=[first])
    checkpoint = load_checkpoint(path)
    assert checkpoint.epoch == 2 and checkpoint.seed == 11
    second = CheckpointCallback(path, seed=11, history=checkpoint.history)
    _train(checkpoint.network, checkpoint.optimizer, epochs=5,
           initial_epoch=checkpoint.epoch, callbacks=[second])

    assert np.array_equal(checkpoint.network.params, straight.params)
    assert second.history.epochs == [0, 1, 2, 3, 4]
    assert load_checkpoint(path).epoch == 5


def test_checkpoint_restores_optimizer_and_rng(tmp_path):
    net = _net("float64", dropout=0.5)
    optimizer = mp.optimizers.Adam(lr=0.01)
    history = _train(net, optimizer, epochs=2)
    path = save_checkpoint(tmp_path / "c.safetensors", net, optimizer, epoch=2, seed=11,
                           history=history, metadata={"loss": {"name": "cross_entropy"}})
    checkpoint = load_checkpoint(path)
    restored = checkpoint.optimizer.state_dict()
    for name, value in optimizer.state_dict().items():
        assert np.array_equal(restored[name], value)
    assert checkpoint.network.rng.bit_generator.state == net.rng.bit_generator.state
    assert checkpoint.history["loss"] == history["loss"]
    assert checkpoint.metadata["loss"] == {"name": "cross_entropy"}
    assert mp.load(path).config() == net.config()  # a checkpoint is a model file too


def test_model_file_is_not_a_checkpoint(model_file):
    with pytest.raises(ValueError, match="not a checkpoint"):
        load_checkpoint(model_file)


def test_checkpoint_with_foreign_optimizer_buffers(tmp_path):
    net = _net("float64")
    optimizer = mp.optimizers.Adam()
    optimizer.setup(net)
    path = save_checkpoint(tmp_path / "c.safetensors", net, optimizer, epoch=0, seed=0,
                           history=mp.History())
    tensors, document = _parts(path)
    document["checkpoint"]["optimizer"] = {"name": "rmsprop"}
    _rewrite(path, tensors, document)
    with pytest.raises(ValueError, match="optimizer buffers .* do not fit 'rmsprop'"):
        load_checkpoint(path)
