"""Coverage-guided fuzzing of matrixprop's file readers with atheris (libFuzzer for Python).

    python fuzz/run.py                                  # every target, 5 seconds each
    python fuzz/run.py model checkpoint --seconds 3600 --corpus fuzz/corpus

Each target (see ``fuzz/targets.py``) runs in a process of its own for ``--seconds``, starting
from a few valid files, with a 5-second limit per input (a hang is a finding) and a memory
limit. The summary table gives each target's executions and coverage; the exit code is 1 when a
target found an input that lets an undocumented exception escape (libFuzzer then writes it to
``--artifacts``, and ``python fuzz/run.py TARGET --reproduce FILE`` replays it).
"""

from __future__ import annotations

import argparse
import inspect
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = ("idx", "csv", "npz", "model", "checkpoint")
_PARSERS = ("zipfile", "gzip", "csv", "json")  # pure-Python parsers the readers rely on


def work(name: str, libfuzzer_args: list[str]) -> None:
    """In the child: instrument matrixprop, the standard library's parsers it uses and NumPy's
    ``.npy`` header parser (their branches are the coverage that guides the fuzzer), then fuzz
    target ``name``; never returns. The rest of NumPy is left alone: instrumenting all of it
    takes long and guides little."""
    import atheris
    import numpy as np

    sys.path.insert(0, str(HERE))
    for module in _PARSERS:
        sys.modules.pop(module, None)  # imported again below, instrumented
    with atheris.instrument_imports(include=["matrixprop", *_PARSERS]):
        import targets
    for function in vars(np.lib.format).values():
        if inspect.isfunction(function):
            atheris.instrument_func(function)
    atheris.Setup([sys.argv[0], *libfuzzer_args], targets.TARGETS[name])
    atheris.Fuzz()


def fuzz(name: str, seconds: int, corpus: Path, artifacts: Path, memory_mb: int) -> dict:
    """Run target ``name`` in a child process; return its figures from libFuzzer's output."""
    sys.path.insert(0, str(HERE))
    import targets

    folder = corpus / name
    folder.mkdir(parents=True, exist_ok=True)
    if not any(folder.iterdir()):
        for i, seed in enumerate(targets.seeds(name)):
            (folder / f"seed{i}").write_bytes(seed)
    artifacts.mkdir(parents=True, exist_ok=True)
    args = [str(folder), f"-max_total_time={seconds}", "-timeout=5",
            f"-rss_limit_mb={memory_mb}", "-max_len=8192", f"-artifact_prefix={artifacts}/{name}-",
            "-print_final_stats=1"]
    result = subprocess.run([sys.executable, __file__, name, "--work", "--", *args],
                            capture_output=True, text=True)
    output = result.stdout + result.stderr
    runs = re.findall(r"Done (\d+) runs in (\d+) second", output)
    coverage = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+)", output)
    return {"target": name, "ok": result.returncode == 0,
            "runs": int(runs[-1][0]) if runs else None,
            "seconds": int(runs[-1][1]) if runs else None,
            "coverage": int(coverage[-1][0]) if coverage else None,
            "corpus": int(coverage[-1][2]) if coverage else None,
            "output": output if result.returncode else ""}


def reproduce(name: str, path: Path) -> None:
    """Run target ``name`` once on the file ``path`` (an artifact), with a traceback."""
    sys.path.insert(0, str(HERE))
    import targets

    targets.TARGETS[name](path.read_bytes())
    print(f"{name}: {path} is handled")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="TARGET",
                        help=f"targets to run: {', '.join(NAMES)} (default: all)")
    parser.add_argument("--seconds", type=int, default=5, help="per target")
    parser.add_argument("--corpus", type=Path, help="kept between runs (default: temporary)")
    parser.add_argument("--artifacts", type=Path, default=Path("fuzz-artifacts"))
    parser.add_argument("--memory-mb", type=int, default=2048, help="RSS limit per target")
    parser.add_argument("--reproduce", type=Path, help="replay one input")
    parser.add_argument("--work", action="store_true", help=argparse.SUPPRESS)
    options, rest = parser.parse_known_args(argv)
    names = options.names or list(NAMES)
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; choose among {', '.join(NAMES)}")
    if options.work:
        work(names[0], [arg for arg in rest if arg != "--"])
    if options.reproduce:
        reproduce(names[0], options.reproduce)
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        corpus = options.corpus or Path(scratch)
        results = [fuzz(name, options.seconds, corpus, options.artifacts, options.memory_mb)
                   for name in names]
    if not any(options.artifacts.iterdir()):  # nothing found: leave no empty folder
        options.artifacts.rmdir()
    print("| target | result | executions | seconds | coverage (edges) | corpus |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['target']} | {'ok' if r['ok'] else 'FINDING'} | {r['runs']} | "
              f"{r['seconds']} | {r['coverage']} | {r['corpus']} |")
    for r in results:
        if not r["ok"]:
            print(f"\n--- {r['target']} ---\n{r['output'][-4000:]}", file=sys.stderr)
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
