"""The playground without a browser: its settings, data, HTTP routes and WebSocket protocol.

A real server runs on a free loopback port (uvicorn, as ``matrixprop playground`` runs it);
the tests talk to it as the page does. Engine numbers are recomputed here independently from
the exported model file with NumPy and ``net.loss_and_gradients``.
"""

from __future__ import annotations

import base64
import http.client
import io
import shlex
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from websockets.exceptions import InvalidStatus

import matrixprop as mp
from matrixprop.data import read_npz
from matrixprop.playground import Config, Session
from matrixprop.playground.datasets import CLASSIFICATION, DATASETS, make_split
from matrixprop.playground.server import bind
from tests._cli import call_main
from tests._playground import TIMEOUT, Page, running_server

XOR = {"dataset": "xor", "hidden": [4], "activation": "tanh", "output_activation": "sigmoid",
       "loss": "binary_cross_entropy", "optimizer": "adam", "lr": 0.05, "batch_size": 8,
       "seed": 3}


@pytest.fixture(scope="module")
def url():
    with running_server() as address:
        yield address


@pytest.fixture
def page(url):
    connection = Page(url)
    yield connection
    connection.close()


def configure(page: Page, **settings) -> dict:
    page.send({"type": "configure", "config": settings})
    reset = page.expect("reset")
    page.frame = page.expect("frame")
    return reset


def download(url: str, page: Page, name: str) -> httpx.Response:
    response = httpx.get(f"{url}api/sessions/{page.hello['session']}/{name}")
    assert response.status_code == 200, response.text
    return response


def exported(url: str, page: Page, tmp_path, stem="run"):
    """The page's model (read by mp.load) and data (read by the CLI's reader)."""
    model = tmp_path / f"{stem}.safetensors"
    model.write_bytes(download(url, page, "model.safetensors").content)
    data = tmp_path / f"{stem}.npz"
    data.write_bytes(download(url, page, "data.npz").content)
    return mp.load(model), read_npz(data)


# -- datasets and settings -----------------------------------------------------------------
@pytest.mark.parametrize("name", list(DATASETS))
def test_datasets_are_seeded_split_and_noisy(name):
    split = make_split(name, 0.2, 0.25, seed=5)
    again = make_split(name, 0.2, 0.25, seed=5)
    other = make_split(name, 0.2, 0.25, seed=6)
    calm = make_split(name, 0.0, 0.25, seed=5)
    n = split.X_train.shape[0] + split.X_test.shape[0]
    assert split.X_test.shape[0] == int(np.ceil(0.25 * n))
    assert split.X_train.dtype == np.float32 and split.n_features == (1 if name == "curve" else 2)
    np.testing.assert_array_equal(split.X_train, again.X_train)
    assert not np.array_equal(split.X_train, other.X_train)
    moved = [not np.array_equal(a, b) for a, b in ((split.X_train, calm.X_train),
                                                    (split.y_train, calm.y_train))]
    assert moved == ([False, True] if name == "curve" else [True, False])  # what noise moves
    assert np.abs(calm.X_train).max() <= 1.2
    if name in CLASSIFICATION:
        assert set(np.unique(split.y_train)) == {0, 1}
        assert abs(np.mean(split.y_train) - 0.5) < 0.05  # balanced, and stratified


def test_xor_labels_follow_the_quadrants():
    split = make_split("xor", 0.0, 0.2, seed=0)
    np.testing.assert_array_equal(split.y_train, split.X_train[:, 0] * split.X_train[:, 1] > 0)


def test_config_converts_the_form_strings_and_fills_defaults():
    config = Config.from_dict({"lr": " 0.1 ", "hidden": ["3", 5, "2"], "batch_size": "all",
                               "seed": "7", "noise": "0.25"})
    assert config.lr == 0.1 and config.hidden == (3, 5, 2) and config.batch_size is None
    assert config.seed == 7 and config.noise == 0.25 and config.lr_multipliers == (1,) * 4
    assert Config.from_dict(config.to_dict()) == config
    assert Config.from_dict({}) == Config()
    rates = Config.from_dict({"hidden": [2], "lr": 0.5, "lr_multipliers": [2, "0.5"]}).lr_mapping()
    assert rates == {"layers.0.weight": 1.0, "layers.0.bias": 1.0, "layers.1.weight": 0.25,
                     "layers.1.bias": 0.25}


@pytest.mark.parametrize("settings, words", [
    ({"hidden": [4, 0]}, "hidden[1] (neurons of hidden layer 2) must be a whole number in [1, 16]"),
    ({"hidden": [17]}, "in [1, 16], got 17"),
    ({"hidden": [2] * 7}, "at most 6 layer widths"),
    ({"hidden": "4,4"}, "hidden must be a list"),
    ({"lr": "abc"}, "lr must be a number, got 'abc'"),
    ({"lr": 0}, "lr must be a number in (0, 10]"),
    ({"lr": "nan"}, "lr must be a number in (0, 10]"),
    ({"lr": True}, "lr must be a number"),
    ({"l2": -1}, "l2 must be a number in [0, 100]"),
    ({"seed": 1.5}, "seed must be a whole number"),
    ({"batch_size": 0}, "batch_size must be a whole number in [1,"),
    ({"noise": 2}, "noise must be a number in [0, 1]"),
    ({"dataset": "mnist"}, "dataset must be one of circles, xor"),
    ({"activation": "softmax"}, "activation must be one of"),
    ({"lr_multipliers": [1, 1]}, "one factor per layer (3"),
    ({"lr_multipliers": [1, -1, 1]}, "lr_multipliers[1] (layer 2) must be a number in [0, 100]"),
    ({"loss": "cross_entropy"}, "needs a 'softmax' output layer"),
    ({"dataset": "curve"}, "'curve' is a regression set"),
    ({"colour": "red"}, "unknown setting(s) 'colour'"),
])
def test_config_refuses_bad_values_naming_them(settings, words):
    with pytest.raises(ValueError) as error:
        Config.from_dict(settings)
    assert words in str(error.value)


def test_config_must_be_an_object():
    with pytest.raises(ValueError, match="must be a JSON object"):
        Config.from_dict([1, 2])


def test_session_trains_like_fit():
    """A session's epochs are Trainer.run_epoch: the same updates as mp.fit (up to float32
    rounding: fit may run its epochs in compiled code)."""
    config = Config.from_dict({**XOR, "lr_multipliers": [0.5, 2.0], "l2": 0.01})
    session = Session(config)
    for _ in range(3):
        session.step()
    split = session.split
    net = mp.MLP([2, 4, 1], "tanh", "sigmoid", seed=3)
    mp.fit(net, split.X_train, split.y_train, loss="binary_cross_entropy",
           optimizer=mp.optimizers.Adam(lr=config.lr_mapping()), batch_size=8, epochs=3,
           seed=3, l2=0.01)
    assert session.epoch == 3
    np.testing.assert_allclose(session.net.params, net.params, rtol=1e-5, atol=1e-6)
    assert not np.allclose(session.net.params, mp.MLP([2, 4, 1], "tanh", "sigmoid", seed=3).params,
                           rtol=1e-3)


# -- HTTP ----------------------------------------------------------------------------------
def test_page_and_static_files(url):
    page = httpx.get(url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "matrixprop playground" in page.text and "/static/app.js" in page.text
    script = httpx.get(url + "static/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "new WebSocket" in script.text
    assert httpx.get(url + "static/style.css").headers["content-type"].startswith("text/css")


def test_options_list_the_menus_and_valid_defaults(url):
    options = httpx.get(url + "api/options").json()
    assert options["datasets"] == ["circles", "xor", "gaussians", "spiral", "moons", "curve"]
    assert options["max_layers"] == 6 and options["max_neurons"] == 16
    assert "softmax" not in options["activations"] and "softmax" in options["output_activations"]
    assert set(options["optimizers"]) == set(mp.optimizers.names())
    assert Config.from_dict(options["defaults"]) == Config()


@pytest.mark.parametrize("target", [
    "/static/../pyproject.toml",
    "/static/../../pyproject.toml",
    "/static/%2e%2e/%2e%2e/pyproject.toml",
    "/static/..%2f..%2fpyproject.toml",
    "/static/..%2fapp.py",
    "/static/%2e%2e%2fapp.py",
    "/static/....//app.py",
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
    "/static/..\\app.py",
    "/../../../etc/passwd",
    "/static/",
])
def test_never_serves_files_outside_the_static_folder(url, target):
    """Raw request targets, sent exactly as written (no client-side normalization)."""
    address = urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=TIMEOUT)
    connection.putrequest("GET", target, skip_accept_encoding=True)
    connection.endheaders()
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert 400 <= response.status < 500
    for secret in (b"[project]", b"root:", b"create_app", b"Starlette"):
        assert secret not in body


def test_unknown_routes_sessions_and_methods_are_4xx(url):
    assert httpx.get(url + "api/nothing").status_code == 404
    missing = httpx.get(url + "api/sessions/not-a-session/model.safetensors")
    assert missing.status_code == 404 and "session" in missing.json()["error"]
    for name in ("data.npz", "command"):
        assert httpx.get(f"{url}api/sessions/nope/{name}").status_code == 404
    assert httpx.post(url + "api/options").status_code == 405
    assert httpx.delete(url).status_code == 405


# -- the stream ----------------------------------------------------------------------------
def test_first_messages_describe_the_run(page):
    reset, frame = page.reset, page.frame
    assert reset["config"] == Config().to_dict() and reset["sizes"] == [2, 4, 4, 1]
    assert len(reset["train"]["x"]) == reset["n_train"] == 168 and len(reset["test"]["x"]) == 72
    assert frame["epoch"] == 0 and frame["playing"] is False and frame["inspection"] is None
    assert 0.5 < frame["test_loss"] < 1.0 and 0 <= frame["test_accuracy"] <= 1
    assert len(base64.b64decode(frame["output"]["values"])) == 48 * 48
    assert [len(layer) for layer in frame["neurons"]] == [4, 4, 1]
    assert all(len(base64.b64decode(m["values"])) == 16 * 16 for m in frame["neurons"][0])
    assert [np.shape(w) for w in frame["weights"]] == [(4, 2), (4, 4), (1, 4)]


def test_play_streams_frames_at_a_steady_rate_and_pause_stops(page):
    page.send({"type": "speed", "epochs_per_frame": None})
    assert page.expect("state")["epochs_per_frame"] is None
    page.send({"type": "play"})
    assert page.expect("state")["playing"] is True
    started = time.monotonic()
    frames = [page.expect("frame") for _ in range(12)]
    seconds = time.monotonic() - started
    epochs = [frame["epoch"] for frame in frames]
    assert epochs == sorted(epochs) and epochs[-1] > epochs[0]
    assert 12 / seconds < 25 and seconds < 4  # about 15 frames a second
    assert frames[-1]["epochs_per_second"] > 0
    page.send({"type": "pause"})
    assert page.expect("state")["playing"] is False
    page.drain()  # frames sent before the pause
    page.send({"type": "step"})
    stepped = page.expect("frame")
    page.send({"type": "step"})
    assert page.expect("frame")["epoch"] == stepped["epoch"] + 1


def test_speed_caps_the_epochs_per_frame(page):
    page.send({"type": "speed", "epochs_per_frame": 1})
    page.expect("state")
    page.send({"type": "play"})
    frames = [page.expect("frame") for _ in range(6)]
    page.send({"type": "pause"})
    steps = np.diff([frame["epoch"] for frame in frames])
    assert steps.max() <= 1 and steps.sum() >= 3


def test_step_reset_and_configure(url, page, tmp_path):
    page.send({"type": "step"})
    assert page.expect("frame")["epoch"] == 1
    page.send({"type": "reset"})
    assert page.expect("reset")["config"] == Config().to_dict()
    assert page.expect("frame")["epoch"] == 0
    reset = configure(page, **{**XOR, "hidden": [3, 2], "output_activation": "softmax",
                               "loss": "cross_entropy", "batch_size": "all"})
    assert reset["sizes"] == [2, 3, 2, 2] and reset["config"]["batch_size"] == "all"
    assert [len(layer) for layer in page.frame["neurons"]] == [3, 2, 2]
    curve = configure(page, dataset="curve", loss="mse", output_activation="identity")
    assert curve["regression"] and curve["sizes"] == [1, 4, 4, 1]
    assert len(page.frame["output"]["x"]) == 101 and "test_accuracy" not in page.frame


@pytest.mark.parametrize("settings, words", [
    ({"hidden": [0]}, "hidden[0] (neurons of hidden layer 1) must be a whole number"),
    ({"lr": "fast"}, "lr must be a number, got 'fast'"),
    ({"lr_multipliers": ["x", 1, 1]}, "lr_multipliers[0] (layer 1) must be a number"),
    ({"loss": "cross_entropy"}, "needs a 'softmax' output layer"),
])
def test_bad_settings_get_an_error_and_the_run_goes_on(page, settings, words):
    page.send({"type": "configure", "config": settings})
    error = page.expect("error")
    assert words in error["message"] and error["request"] == "configure"
    page.send({"type": "step"})
    assert page.expect("frame")["epoch"] == 1  # the same run, still usable
    assert configure(page, **XOR)["config"]["dataset"] == "xor"


@pytest.mark.parametrize("message, words", [
    ("this is not json", "malformed message, not JSON"),
    ("[1, 2]", "expected a JSON object with a 'type'"),
    ('{"config": {}}', "expected a JSON object with a 'type'"),
    ('{"type": 7}', "expected a JSON object with a 'type'"),
    ('{"type": "fly"}', "unknown message type 'fly'"),
    (b"\x00\x01binary", "messages must be JSON text"),
    ('{"type": "configure"}', "the settings must be a JSON object"),
    ('{"type": "configure", "config": "xor"}', "the settings must be a JSON object"),
    ('{"type": "speed", "epochs_per_frame": 0}', "epochs_per_frame must be a whole number"),
    ('{"type": "speed", "epochs_per_frame": "fast"}', "epochs_per_frame must be a whole number"),
    ('{"type": "inspect", "target": "neuron 1"}', "target must be an object"),
    ('{"type": "inspect", "target": {"layer": 9, "neuron": 1}}', "no such neuron"),
    ('{"type": "inspect", "target": {"layer": 1, "neuron": 0}}', "no such neuron"),
    ('{"type": "inspect", "target": {"layer": 1, "neuron": 1, "weight": 3}}', "no such neuron"),
    ('{"type": "inspect", "target": {"layer": 1, "neuron": "1"}}', "no such neuron"),
    ('{"type": "inspect", "target": {"layer": 1, "neuron": 1, "sample": 168}}',
     "no such neuron"),
    ('{"type": "inspect", "target": {"layer": 1, "neuron": 1, "sample": -1}}', "no such neuron"),
])
def test_malformed_messages_get_an_error_and_the_connection_stays_usable(page, message, words):
    page.send(message)
    assert words in page.expect("error")["message"]
    page.send({"type": "step"})
    assert page.expect("frame")["epoch"] == 1


def test_an_overlong_message_is_refused(page):
    page.send('{"type": "step", "padding": "' + "x" * 70_000 + '"}')
    assert "message too long" in page.expect("error")["message"]
    page.send({"type": "step"})
    assert page.expect("frame")["epoch"] == 1


def test_divergence_is_reported_and_reset_recovers(page):
    configure(page, dataset="curve", loss="mse", output_activation="identity",
              activation="relu", optimizer="sgd", lr=10, batch_size=1, hidden=[16, 16])
    page.send({"type": "step"})
    error = page.expect("error")
    assert "loss became" in error["message"] and error["request"] == "step"
    page.send({"type": "reset"})
    assert page.expect("frame")["epoch"] == 0


def test_inspected_numbers_equal_the_engines(url, page, tmp_path):
    """The panel's numbers against an independent recomputation from the exported model."""
    configure(page, **XOR, lr_multipliers=[0.5, 2.0])
    for _ in range(5):
        page.send({"type": "step"})
        page.expect("frame")
    page.send({"type": "inspect", "target": {"layer": 1, "neuron": 3, "weight": 2,
                                              "sample": 11}})
    hidden = page.expect("frame")["inspection"]
    page.send({"type": "inspect", "target": {"layer": 2, "neuron": 1, "sample": 11}})
    frame = page.expect("frame")
    out = frame["inspection"]
    net, data = exported(url, page, tmp_path)
    net = net.astype(np.float64)
    x, y = data["X"][11].astype(np.float64), data["y"][11]
    W1, b1, W2, b2 = (net.state_dict()[name] for name in
                      ("layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"))
    z1 = W1 @ x + b1
    a1 = np.tanh(z1)
    z2 = W2 @ a1 + b2
    a2 = 1 / (1 + np.exp(-z2))
    loss, grads = net.loss_and_gradients(x[None], np.array([y]), "binary_cross_entropy")
    d2 = a2 - y  # sigmoid + binary cross-entropy, one sample
    d1 = (1 - a1**2) * (W2.T @ d2)
    close = {"rtol": 1e-12, "atol": 1e-15}
    np.testing.assert_allclose(hidden["z"], z1[2], **close)
    np.testing.assert_allclose(hidden["a"], a1[2], **close)
    np.testing.assert_allclose(hidden["f_prime"], 1 - a1[2] ** 2, **close)
    np.testing.assert_allclose(hidden["delta"], d1[2], rtol=1e-9)
    np.testing.assert_allclose(hidden["matrix_delta"], grads["layers.0.bias"][2], **close)
    np.testing.assert_allclose(hidden["weights"], W2[:, 2], **close)
    np.testing.assert_allclose(hidden["downstream_deltas"], grads["layers.1.bias"], **close)
    np.testing.assert_allclose(hidden["matrix_weight_gradient"], grads["layers.0.weight"][2],
                               **close)
    np.testing.assert_allclose(hidden["weight_gradient"], d1[2] * x, rtol=1e-9)
    np.testing.assert_allclose(hidden["W_updated"], W1[2] - 0.05 * 0.5 * d1[2] * x, rtol=1e-9)
    assert hidden["alpha"] == 0.05 * 0.5 and hidden["agrees"] is True
    edge = hidden["edge"]
    assert edge["input"] == 2 and edge["w"] == W1[2, 1] and edge["a_in"] == x[1]
    np.testing.assert_allclose(edge["gradient"], d1[2] * x[1], rtol=1e-9)
    np.testing.assert_allclose(out["delta"], d2[0], rtol=1e-9)
    np.testing.assert_allclose(out["matrix_delta"], d2[0], rtol=1e-9)
    np.testing.assert_allclose(out["output"], a2, **close)
    np.testing.assert_allclose(out["loss"], loss, **close)
    np.testing.assert_allclose(out["b_updated"], b2[0] - 0.05 * 2.0 * d2[0], rtol=1e-9)
    assert out["agrees"] is True and out["sample"] == 11 and out["x"] == data["X"][11].tolist()
    page.send({"type": "inspect", "target": None})
    assert page.expect("frame")["inspection"] is None


def test_softmax_output_chain_rule_goes_through_the_jacobian(page):
    configure(page, **{**XOR, "output_activation": "softmax", "loss": "cross_entropy"})
    page.send({"type": "step"})
    page.expect("frame")
    page.send({"type": "inspect", "target": {"layer": 2, "neuron": 2, "sample": 0}})
    n = page.expect("frame")["inspection"]
    s = np.array(n["output"])
    np.testing.assert_allclose(n["softmax_column"], s * ((np.arange(2) == 1) - s[1]),
                               rtol=1e-12)
    assert n["f_prime"] is None and n["agrees"] is True
    np.testing.assert_allclose(n["delta"], s[1] - (n["y"] == 1), rtol=1e-9)


def test_exports_load_predict_and_repeat_on_the_command_line(url, page, tmp_path, monkeypatch):
    configure(page, **XOR)
    for _ in range(4):
        page.send({"type": "step"})
    frame = [page.expect("frame") for _ in range(4)][-1]
    net, data = exported(url, page, tmp_path, "playground-xor")
    assert frame["epoch"] == 4 and set(data) == {"X", "y", "X_test", "y_test"}
    np.testing.assert_array_equal(np.concatenate([np.ravel(w) for w in frame["weights"]]),
                                  net.params[:net.n_weights])
    assert net.loss(data["X_test"], data["y_test"], "binary_cross_entropy") == pytest.approx(
        frame["test_loss"], rel=1e-6)
    response = download(url, page, "model.safetensors")
    assert 'filename="playground-xor.safetensors"' in response.headers["content-disposition"]
    command = download(url, page, "command").json()
    assert command["exact"] is True and command["command"].startswith("matrixprop train ")
    args = shlex.split(command["command"])[1:]
    assert args[args.index("--epochs") + 1] == "4"
    monkeypatch.chdir(tmp_path)
    result = call_main(*args)
    assert result.returncode == 0, result.stderr
    cli_net = mp.load(tmp_path / "runs" / "playground-xor" / "model.safetensors")
    np.testing.assert_allclose(cli_net.params, net.params, rtol=1e-5, atol=1e-6)  # the same run
    predicted = call_main("predict", "playground-xor.safetensors", "playground-xor.npz")
    rows = np.loadtxt(io.StringIO(predicted.stdout), delimiter=",", skiprows=1)
    np.testing.assert_allclose(rows, net.predict(data["X"])[:, 0], rtol=1e-6)


def test_the_command_says_when_multipliers_cannot_be_expressed(url, page):
    configure(page, **XOR, lr_multipliers=[1, 3])
    command = download(url, page, "command").json()
    assert command["exact"] is False and "multipliers" in command["note"]


def test_pages_of_other_origins_are_refused(url):
    with pytest.raises(InvalidStatus):
        Page(url, origin="http://evil.example")
    host = urlsplit(url).netloc
    assert Page(url, origin=f"http://{host}").hello["session"]


def test_closing_the_page_ends_its_session(url):
    page = Page(url)
    session = page.hello["session"]
    assert httpx.get(f"{url}api/sessions/{session}/command").status_code == 200
    page.close()
    deadline = time.monotonic() + TIMEOUT
    while httpx.get(f"{url}api/sessions/{session}/command").status_code != 404:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_too_many_pages_get_a_message(url, monkeypatch):
    from matrixprop.playground import stream

    first = Page(url)
    monkeypatch.setattr(stream, "MAX_SESSIONS", 1)
    from websockets.sync.client import connect

    with connect(url.replace("http", "ws", 1) + "ws") as second:
        message = second.recv(timeout=TIMEOUT)
        assert "too many open pages" in message
    first.close()


# -- the command ---------------------------------------------------------------------------
def test_command_serves_on_loopback_and_reports_a_busy_port(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "matrixprop", "playground", "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("matrixprop playground: http://127.0.0.1:"), line
        address = line.split()[2]
        assert "matrixprop playground" in httpx.get(address, timeout=TIMEOUT).text
    finally:
        process.terminate()
        process.wait(TIMEOUT)
    busy = bind("127.0.0.1", 0)
    busy.listen()
    try:
        result = call_main("playground", "--port", str(busy.getsockname()[1]), "--no-browser")
    finally:
        busy.close()
    assert result.returncode == 1 and result.stderr.startswith("error: ")
    assert "address already in use" in result.stderr.lower()


def test_bind_defaults_to_loopback():
    sock = bind(port=0)
    try:
        assert sock.getsockname()[0] == "127.0.0.1" and sock.family == socket.AF_INET
    finally:
        sock.close()
