"""The `semspace` root app: logging, every command group registered here (explicitly, in one place), and `main`.

`main` runs the click command itself (standalone mode off) so that every way a command can fail ends the same on
every typer version the pins allow: results on stdout, one line `error: …` on stderr and exit code 2 for a usage
error (missing argument, unknown option, value out of range), a bad input (any SemspaceError) or a file system
that refuses (an OSError: full, read-only, no permission, failing disk); `--help` prints the help and exits 0, and so
does a group called without a command.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
from typing import Annotated, NoReturn

import typer

from semspace.cli import analysis, cur, demo, distributed, encode, evaluate, index, serve, static, train
from semspace.errors import SemspaceError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

app = typer.Typer(
    add_completion=False,
    # click's plain help: typer's rich panels (0.2x) show every flag with a value type (`--json <bool>`), which
    # reads as if the flag took a value; the plain help writes flags as click always has (`--json`)
    rich_markup_mode=None,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Semantic similarity and semantic search.",
)
app.command("encode")(encode.encode)
app.command("convert-e5")(encode.convert_e5)
app.command("info")(encode.info)
app.command("distill")(static.distill)
app.add_typer(evaluate.app, name="eval")
app.add_typer(index.app, name="index")
app.add_typer(cur.app, name="cur")
app.command("rerank", help="The same as `semspace cur search`: RnR or CUR, whichever measured better.")(cur.search)
app.add_typer(train.app, name="train")
app.command("dims")(analysis.dims)
app.command("drift")(analysis.drift)
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.command("whiten-stats")(distributed.whiten_stats)


def _print_version(value: bool) -> None:
    if value:
        from semspace._version import __version__

        typer.echo(f"semspace {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Semantic similarity and semantic search."""
    _configure_logging(verbose)


def _configure_logging(verbose: bool) -> None:
    """Our log level; transformers and the hub quiet (set through their environment variables when they are not
    imported yet, so that commands which never encode do not import them just to silence them)."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()


def _is_a(exc: BaseException, name: str) -> bool:
    """Whether `exc` derives from click's exception class `name`, wherever that click lives: the `click` package
    (typer < 0.26) or the copy newer typer vendors as `typer._click`, which is not a public name to import."""
    return any(
        cls.__name__ == name and (cls.__module__.endswith("click.exceptions") or cls.__module__ == "typer.exceptions")
        for cls in type(exc).__mro__
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


# what to do about a file system that refuses, by errno
_OS_HINTS = {
    errno.ENOSPC: "free some space and run it again",
    errno.EDQUOT: "free some space (or raise the quota) and run it again",
    errno.EROFS: "the file system is mounted read-only",
    errno.EACCES: "check the permissions",
    errno.EPERM: "check the permissions",
    errno.EIO: "the disk reports an I/O error",
}


def describe_os_error(exc: OSError) -> str:
    """One line for an OSError: its reason, the file, and what to do ("No space left on device: out.npy (free some
    space and run it again)")."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    where = f": {exc.filename}" if exc.filename else ""
    hint = _OS_HINTS.get(exc.errno) if exc.errno is not None else None
    return f"{reason}{where}" + (f" ({hint})" if hint else "")


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    typer.echo(f"error: {_one_line(message)}", err=True)
    sys.exit(code)


def main(args: list[str] | None = None) -> NoReturn:
    """Entry point (`semspace`, `python -m semspace`): errors are one line on stderr and exit 2, never a traceback."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="semspace", standalone_mode=False)
    except SemspaceError as exc:
        _fail(str(exc))
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise  # `semspace … | head`: Python's own handling
        _fail(describe_os_error(exc))
    except (KeyboardInterrupt, Exception) as exc:
        if isinstance(exc, KeyboardInterrupt | typer.Abort) or _is_a(exc, "Abort"):
            typer.echo("aborted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        if not _is_a(exc, "ClickException"):
            raise  # a bug: keep the traceback
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            typer.echo(ctx.get_help())  # a group without a command: its help, as older click does
            sys.exit(0)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        _fail(exc.format_message() + hint)
    sys.exit(code if isinstance(code, int) else 0)
