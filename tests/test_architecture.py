"""The package's structure: layers that import only downward, no import circles, modules that
use each other's public names only, and one training loop."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "matrixprop"


def _run(*command):
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_import_linter_contracts_hold():
    """pyproject.toml's contracts: faces above training above the core, every module placed in
    a layer, and no circle between the modules of any package."""
    result = _run(str(Path(sys.executable).with_name("lint-imports")))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_the_layer_contract_catches_an_upward_import(tmp_path):
    """The same contracts over a copy of the package whose network imports the training loop
    (as ``Network.fit`` once did, inside a function) are broken."""
    copy = tmp_path / "matrixprop"
    subprocess.run(["cp", "-r", str(PACKAGE), str(copy)], check=True)
    network = copy / "network.py"
    network.write_text(network.read_text() + "\n\ndef fit():\n    from .training import fit\n")
    result = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--config",
                             str(ROOT / "pyproject.toml")], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode != 0
    assert "matrixprop.network is not allowed to import matrixprop.training" in result.stdout


def test_modules_use_each_others_public_names_only():
    result = _run(sys.executable, "-m", "ruff", "check", "--select", "SLF001", "matrixprop")
    assert result.returncode == 0, result.stdout
    noqa = [f"{path}:{n}" for path in PACKAGE.rglob("*.py")
            for n, line in enumerate(path.read_text().splitlines(), 1) if "SLF001" in line]
    assert noqa == []


@pytest.mark.parametrize("face", ["sklearn/_stochastic.py", "sklearn/_lbfgs.py",
                                  "playground/session.py"])
def test_the_faces_drive_the_one_training_loop(face):
    """The estimators and the playground build a Trainer and step no optimizer themselves;
    only the engines run training steps."""
    source = (PACKAGE / face).read_text()
    assert "Trainer(" in source
    assert ".step()" not in source and "forward(" not in source and "backward(" not in source
    steppers = [path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py")
                if "optimizer.step()" in path.read_text()]
    # explain shows the article's single update, on a copy of the network
    assert sorted(steppers) == ["engines.py", "explain/compute.py"]


def test_ruff_is_clean():
    result = _run(sys.executable, "-m", "ruff", "check", "matrixprop", "tests", "benchmarks",
                  "examples", "fuzz")
    assert result.returncode == 0, result.stdout
