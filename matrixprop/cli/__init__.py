"""The ``matrixprop`` command: train, evaluate, predict, gradcheck, info.

Every error a user can cause (a bad option, a missing or corrupt file, data that does not fit
the network) ends the command with one line ``error: ...`` on standard error and exit code 2
for usage errors, 1 for the others; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from . import evaluate, explain, export, gradcheck, info, playground, predict, train

__all__ = ["app", "main"]

app = typer.Typer(
    name="matrixprop",
    help="Feed-forward neural networks trained with backpropagation in matrix form, on NumPy.",
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=False,
)
app.command()(train.train)
app.command()(evaluate.evaluate)
app.command()(predict.predict)
app.command()(gradcheck.gradcheck)
app.command()(info.info)
app.command()(playground.playground)
app.command()(explain.explain)
app.command()(export.export)

_settings = {"debug": False}

# Exceptions that mean bad input (files, data, values): reported in one line, exit code 1.
# (MemoryError: the commands refuse what cannot fit beforehand; this is the last resort.)
_INPUT_ERRORS = (ValueError, TypeError, OSError, FloatingPointError, MemoryError)


@app.callback(invoke_without_command=True)
def _options(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    _settings["debug"] = debug
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    _settings["debug"] = False
    try:
        code = app(args=list(argv) if argv is not None else None, prog_name="matrixprop",
                   standalone_mode=False)
    except typer.TyperException as exc:  # usage errors (2) and click's own errors (1)
        return _fail(exc.format_message(), exc.exit_code)
    except typer.Abort:
        return _fail("aborted", 1)
    except _INPUT_ERRORS as exc:
        if _settings["debug"]:
            raise
        return _fail(_message(exc), 1)
    return code if isinstance(code, int) else 0


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def _fail(message: str, code: int) -> int:
    sys.stdout.flush()
    one_line = " ".join(message.split())
    sys.stderr.write(f"error: {one_line}\n")
    return code
