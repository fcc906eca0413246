"""The playground in a real browser: Debian's Chromium driven by Playwright's Python package.

The browser comes from the system, never from Playwright's own download: ``/usr/bin/chromium``
(or ``$CHROMIUM``). When it is missing and the tests run as root, Debian's ``chromium`` package
is installed with apt-get; where no browser can be had, the tests FAIL with how to install one.

Screenshots of the main states are written to the test run's temporary folder (pytest prints
nothing; see ``tmp_path_factory``'s base folder, ``playground-screenshots``) and, with
``MATRIXPROP_SCREENSHOTS=docs``, to ``docs/img/`` as well.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

import matrixprop as mp
from matrixprop.data import read_npz
from tests._playground import running_server

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
INSTALL_TIMEOUT = 900  # seconds for apt-get update + install
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
HOW_TO_INSTALL = (
    "the playground's browser tests need Chromium: install Debian's package (as root: "
    "apt-get update && apt-get install -y chromium) or set CHROMIUM to a Chromium or Chrome "
    "executable; Playwright's own browser download is not used")
VIEWPORT = {"width": 1280, "height": 800}


def _install_chromium() -> str:
    """Install Debian's chromium with apt-get (root only); return what went wrong, if anything."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "not root, or no apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        for command in (["apt-get", "update", "-q"],
                        ["apt-get", "install", "-y", "-q", "chromium"]):
            done = subprocess.run(command, env=env, capture_output=True, text=True,
                                  timeout=INSTALL_TIMEOUT)
            if done.returncode:
                return f"{' '.join(command)} failed: {done.stderr.strip()[-300:]}"
    except subprocess.TimeoutExpired:
        return f"apt-get took longer than {INSTALL_TIMEOUT} s"
    return ""


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium executable, installed first when missing and possible."""
    if not CHROMIUM.exists() and "CHROMIUM" not in os.environ:
        problem = _install_chromium()
        if not CHROMIUM.exists():
            pytest.fail(f"{HOW_TO_INSTALL} ({problem or 'apt-get installed no /usr/bin/chromium'})")
    if not CHROMIUM.exists():
        pytest.fail(f"{HOW_TO_INSTALL} (CHROMIUM={CHROMIUM} does not exist)")
    return str(CHROMIUM)


@pytest.fixture(scope="module")
def browser(chromium):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser tests need Playwright's Python package: pip install -e "
                    "'.[test]' (or pip install playwright; no 'playwright install' needed)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def url():
    with running_server() as address:
        yield address


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    """Save a screenshot under the test run's folder (and in docs/img/ when asked)."""
    folder = tmp_path_factory.getbasetemp() / "playground-screenshots"
    folder.mkdir(exist_ok=True)
    to_docs = os.environ.get("MATRIXPROP_SCREENSHOTS") == "docs"

    def save(page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path))
        if to_docs:
            shutil.copyfile(path, ROOT / "docs" / "img" / path.name)
        return path

    return save


@pytest.fixture
def page(browser, url):
    """A fresh 1280x800 page on the playground; fails the test on any console error."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("console", lambda message: message.type == "error" and errors.append(message.text))
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.goto(url)
    tab.wait_for_function("document.querySelectorAll('button.node').length === 9")
    tab.wait_for_function("document.getElementById('epoch').textContent === '0'")
    yield tab
    context.close()
    assert errors == [], f"browser console errors: {errors}"


def value(page, selector: str) -> float:
    """The exact number behind a figure or a panel entry (its data-value)."""
    text = page.get_attribute(selector, "data-value")
    assert text not in (None, ""), selector
    return float(text)


def panel(page, key: str) -> float:
    return value(page, f'#inspector-body [data-key="{key}"]')


def set_field(page, selector: str, text: str) -> None:
    """Type into a field and leave it, as a user does (the page reacts to 'change')."""
    page.fill(selector, text)
    page.press(selector, "Tab")


def small_xor_network(page) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.select_option("#dataset", "xor")
    page.wait_for_function("document.querySelectorAll('.input-label').length === 2 && "
                           "document.getElementById('dataset').value === 'xor'")
    # the dataset's own reply rewrites the form, and may come after the field is typed (the
    # default dataset has two inputs too): type it until the network shows the one layer
    for _ in range(10):
        set_field(page, "#layers", "1")
        try:
            page.wait_for_function("document.querySelectorAll('button.node').length === 5",
                                   timeout=3000)
            break
        except PlaywrightTimeout:
            continue
    page.wait_for_function("document.querySelectorAll('button.node').length === 5")
    page.select_option("#speed", "")


def download(page, selector: str, folder: Path) -> Path:
    with page.expect_download() as info:
        page.click(selector)
    path = folder / info.value.suggested_filename
    info.value.save_as(path)
    return path


def test_xor_trains_and_the_panel_shows_the_engines_numbers(page, shots, tmp_path):
    shots(page, "playground-start")
    small_xor_network(page)
    start = value(page, "#test-loss")
    page.click("#play")
    deadline = time.monotonic() + 20
    while value(page, "#test-loss") > 0.15:
        assert time.monotonic() < deadline, f"test loss still {value(page, '#test-loss')}"
        page.wait_for_timeout(100)
    assert start > 0.5 and value(page, "#epoch") > 0
    assert page.get_attribute("#play", "aria-pressed") == "true"
    shots(page, "playground-training")
    page.click("#play")  # pause
    page.wait_for_function("document.getElementById('play').textContent === 'Play'")
    page.wait_for_timeout(300)  # frames already under way
    epoch = value(page, "#epoch")
    page.click('button.node[aria-label="Layer 1 neuron 2"]')
    page.wait_for_selector("#inspector:not([hidden])")
    page.wait_for_function("document.getElementById('inspector-title').textContent"
                           ".startsWith('Layer 1, neuron 2')")
    shots(page, "playground-neuron")
    assert value(page, "#epoch") == epoch
    assert page.get_attribute('[data-key="agrees"]', "data-value") == "true"

    net = mp.load(download(page, "#export-model", tmp_path))
    data = read_npz(download(page, "#export-data", tmp_path))
    x, y = data["X"][0].astype(np.float64), data["y"][0]
    assert [panel(page, "x.0"), panel(page, "x.1")] == data["X"][0].tolist()
    assert panel(page, "y") == y
    net64 = net.astype(np.float64)
    W1, b1, W2 = (net64.state_dict()[k] for k in ("layers.0.weight", "layers.0.bias",
                                                  "layers.1.weight"))
    loss, grads = net64.loss_and_gradients(x[None], np.array([y]), "binary_cross_entropy")
    z = W1[1] @ x + b1[1]
    delta = (1 - np.tanh(z) ** 2) * W2[0, 1] * grads["layers.1.bias"][0]
    close = {"rel": 1e-12, "abs": 1e-15}
    assert panel(page, "z") == pytest.approx(z, **close)
    assert panel(page, "a") == pytest.approx(np.tanh(z), **close)
    assert panel(page, "delta") == pytest.approx(delta, rel=1e-9)
    assert panel(page, "matrix_delta") == pytest.approx(grads["layers.0.bias"][1], **close)
    for i in range(2):
        assert panel(page, f"gradient.{i}") == pytest.approx(delta * x[i], rel=1e-9)
        assert panel(page, f"matrix_gradient.{i}") == pytest.approx(
            grads["layers.0.weight"][1, i], **close)
        assert panel(page, f"updated.{i}") == pytest.approx(
            W1[1, i] - 0.03 * grads["layers.0.weight"][1, i], rel=1e-9)
    assert panel(page, "loss") == pytest.approx(loss, **close)
    # the downloaded model predicts as the page shows
    assert panel(page, "output.0") == pytest.approx(float(net.predict(x[None])[0, 0]), rel=1e-6)
    assert value(page, "#test-loss") == pytest.approx(
        net.loss(data["X_test"], data["y_test"], "binary_cross_entropy"), rel=1e-6)
    accuracy = float(np.mean((net.predict(data["X_test"])[:, 0] > 0.5) == data["y_test"]))
    assert value(page, "#test-accuracy") == pytest.approx(accuracy)

    page.click('#edges line.hit >> nth=0')  # the weight W1[1, 1]
    page.wait_for_selector('[data-key="edge.w"]')
    assert panel(page, "edge.w") == pytest.approx(W1[0, 0], **close)
    page.click("#show-command")
    page.wait_for_selector("#command:not([hidden])")
    command = page.text_content("#command")
    assert "--dataset playground-xor.npz" in command and f"--epochs {int(epoch)}" in command
    assert "--layers 2,4,1" in command


def test_bad_input_gets_a_visible_message(page):
    set_field(page, "#lr", "fast")
    page.wait_for_selector("#message:not([hidden])")
    assert "lr must be a number, got 'fast'" in page.text_content("#message")
    assert page.get_attribute("#lr", "aria-invalid") == "true"
    set_field(page, '[data-role="neurons"][data-index="1"]', "0")
    page.wait_for_function("document.getElementById('message').textContent.includes('hidden[1]')")
    assert page.get_attribute('[data-role="neurons"][data-index="1"]', "aria-invalid") == "true"
    set_field(page, '[data-role="neurons"][data-index="1"]', "3")
    page.wait_for_function("document.getElementById('message').textContent.includes('lr')")
    set_field(page, "#lr", "0.1")
    page.wait_for_selector("#message", state="hidden")
    assert page.get_attribute("#lr", "aria-invalid") is None
    page.click("#step")
    page.wait_for_function("document.getElementById('epoch').textContent === '1'")


def test_keyboard_labels_and_the_1280x800_window(page, shots):
    unnamed = page.evaluate("""() => [...document.querySelectorAll('input, select, button, a')]
        .filter((el) => !el.closest('[hidden]'))
        .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                        && !el.textContent.trim())
        .map((el) => el.outerHTML.slice(0, 80))""")
    assert unnamed == []
    size = page.evaluate("[document.documentElement.scrollWidth, "
                         "document.documentElement.scrollHeight]")
    assert size[0] <= VIEWPORT["width"] and size[1] <= VIEWPORT["height"]
    for selector in ("#play", "#output", "#losses", "#export-model", "#show-command",
                     'button.node[aria-label="Layer 3 neuron 1 (output)"]'):
        box = page.locator(selector).bounding_box()
        assert box["x"] >= 0 and box["y"] >= 0
        assert box["x"] + box["width"] <= VIEWPORT["width"]
        assert box["y"] + box["height"] <= VIEWPORT["height"], selector
    page.focus("#play")
    page.keyboard.press("Enter")  # play
    page.wait_for_function("document.getElementById('play').getAttribute('aria-pressed') "
                           "=== 'true'")
    page.keyboard.press("Space")  # pause
    page.wait_for_function("document.getElementById('play').textContent === 'Play'")
    page.focus('button.node[aria-label="Layer 2 neuron 1"]')
    page.keyboard.press("Enter")
    page.wait_for_selector("#inspector:not([hidden])")
    page.keyboard.press("Escape")
    page.wait_for_selector("#inspector", state="hidden")


def test_regression_and_softmax_views(page, shots):
    page.select_option("#dataset", "curve")
    page.wait_for_selector("#message:not([hidden])")  # binary cross-entropy cannot fit a curve
    assert "regression set" in page.text_content("#message")
    page.select_option("#output_activation", "identity")
    page.select_option("#loss", "mse")
    page.wait_for_function("document.querySelectorAll('.input-label').length === 1")
    page.select_option("#speed", "")
    page.click("#play")
    page.wait_for_function("Number(document.getElementById('test-loss').dataset.value) < 0.05",
                           timeout=20_000)
    page.click("#play")
    assert page.is_hidden(".accuracy")
    shots(page, "playground-regression")
    page.select_option("#dataset", "spiral")
    page.select_option("#output_activation", "softmax")
    page.select_option("#loss", "cross_entropy")
    page.wait_for_function("document.querySelectorAll('button.node').length === 10")
    page.click('button.node[aria-label="Layer 3 neuron 2 (output)"]')
    page.wait_for_selector('[data-key="softmax_column.0"]')
    assert page.get_attribute('[data-key="agrees"]', "data-value") == "true"
    assert math.isfinite(panel(page, "delta"))
