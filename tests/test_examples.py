"""The scripts in examples/ run as a user would run them (each in a subprocess) and say what
they should."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from matplotlib import image as mpimg

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run_example(name: str, *args, cwd: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "MPLBACKEND": "Agg"}
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), environment.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)], cwd=cwd,
                            env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_every_example_is_tested():
    assert sorted(path.name for path in EXAMPLES.glob("*.py")) == [
        "article_step_by_step.py", "vanishing_gradient.py"]


def test_article_step_by_step(tmp_path):
    result = run_example("article_step_by_step.py", "--markdown", "worked.md", cwd=tmp_path)
    for step in range(1, 8):
        assert f"\n== {step}. " in result.stdout
    assert "the vector form is right" in result.stdout
    assert "every hand computation agrees with the engine" in result.stdout
    assert (tmp_path / "worked.md").read_text().startswith("### Backpropagation")


def test_vanishing_gradient(tmp_path):
    result = run_example("vanishing_gradient.py", "--out", tmp_path / "out", "--epochs", "3",
                         cwd=tmp_path)
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()
            if line.strip().startswith(("sigmoid", "relu"))}
    sigmoid = np.array(rows["sigmoid"][1:7], dtype=float)
    relu = np.array(rows["relu"][1:7], dtype=float)
    assert sigmoid[0] < relu[0] / 10 and sigmoid[0] < sigmoid[-1] / 10
    for activation in ("sigmoid", "relu"):
        pixels = mpimg.imread(tmp_path / "out" / f"diagnostics_{activation}.png")
        assert pixels.shape[0] > 300 and pixels[..., :3].std() > 0.05
        assert (tmp_path / "out" / f"history_{activation}.csv").read_text().count("\n") == 4
