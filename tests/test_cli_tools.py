"""``gradcheck`` and ``info`` from the command line, and the top-level help."""

import json

import numpy as np
from _cli import call_main, run_cli

import matrixprop as mp


def test_help_lists_every_command():
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    for command in ("train", "evaluate", "predict", "gradcheck", "info"):
        assert command in result.stdout


def test_gradcheck_of_a_random_network_passes():
    result = run_cli("gradcheck", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert set(report["relative_errors"]) == {"layers.0.weight", "layers.0.bias",
                                              "layers.1.weight", "layers.1.bias"}
    assert max(report["relative_errors"].values()) < 1e-6
    assert report["checked"] == 4 * 5 + 5 + 5 * 3 + 3


def test_gradcheck_reports_failure_with_exit_code_1():
    result = call_main("gradcheck", "--layers", "3,4,2", "--loss", "half_sse",
                       "--tolerance", "1e-30")  # no finite difference is that exact
    assert result.returncode == 1
    assert "FAILED" in result.stdout and "layers.1.bias" in result.stdout


def test_gradcheck_of_a_model_file(tmp_path):
    path = mp.save(mp.MLP([3, 4, 2], "tanh", "sigmoid", seed=0),
        tmp_path / "m.safetensors",
        metadata={"loss": {"name": "binary_cross_entropy", "reduction": "sum"}})
    result = call_main("gradcheck", path, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["checked"] == 3 * 4 + 4 + 4 * 2 + 2


def test_info_shows_versions_blas_and_warns_about_pinned_kernels():
    result = run_cli("info", "--json", env={"OPENBLAS_CORETYPE": "Haswell"})
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert facts["matrixprop"] == mp.__version__ and facts["numpy"] == np.__version__
    assert facts["kernel_pins"]["OPENBLAS_CORETYPE"] == "Haswell"
    assert all(pool["num_threads"] >= 1 for pool in facts["blas"])
    assert "warning" in result.stderr and "OPENBLAS_CORETYPE" in result.stderr
    # the test environment has the fast extra: its engine and SciPy's BLAS are shown too
    assert facts["compiled_engine"]["available"] and facts["compiled_engine"]["numba"]
    assert any("scipy" in pool["filepath"] and "numpy" not in pool["filepath"]
               for pool in facts["blas"])
    table = run_cli("info")
    assert "compiled engine" in table.stdout and "numba" in table.stdout
