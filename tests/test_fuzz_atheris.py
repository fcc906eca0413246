"""The coverage-guided fuzz targets of ``fuzz/`` (atheris), briefly: every target runs for a few
seconds from valid seed files and finds nothing. Slow (about 30 s); the long run is in
``fuzz/README.md``."""

import subprocess
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"


@pytest.mark.slow
def test_every_target_runs_and_finds_nothing(tmp_path):
    pytest.importorskip("atheris")
    result = subprocess.run([sys.executable, str(FUZZ / "run.py"), "--seconds", "5",
                             "--artifacts", str(tmp_path / "artifacts")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    rows = [line.split("|")[1:-1] for line in result.stdout.splitlines()[2:]]
    assert [row[0].strip() for row in rows] == ["idx", "csv", "npz", "model", "checkpoint"]
    for target, verdict, runs, *_ in rows:
        assert verdict.strip() == "ok" and int(runs) > 1000, (target, runs)
    assert not (tmp_path / "artifacts").exists() or not any((tmp_path / "artifacts").iterdir())
