"""`semspace index …`: create, add to, delete from, inspect, whiten and search a collection on disk.

`info` and `delete` load no model: the collection's encoder is made only when something must be encoded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semspace.cli.distributed import Actors, RayAddress, ShardSize
from semspace.cli.options import AsJson, CollectionPath, MaxLength, Model, PoolingName, TopK, echo, echo_json, note

app = typer.Typer(no_args_is_help=True, help="Persistent collections: SQLite documents + FAISS index.")


@app.command("create")
def create(
    path: Annotated[Path, typer.Argument(help="Folder to create.")],
    model: Model = None,
    pooling: PoolingName = "default",
    index: Annotated[str, typer.Option(help="FAISS factory string: Flat, IVF256,Flat, HNSW32, …")] = "Flat",
    max_length: MaxLength = None,
) -> None:
    """Create an empty collection."""
    from semspace.search import Collection

    with Collection.create(path, encoder=model, index=index, pooling=pooling, max_length=max_length) as c:
        echo_json(c.info(), indent=2)


@app.command("add")
def add(
    path: CollectionPath,
    source: Annotated[Path, typer.Argument(help=".txt (one per line), .jsonl or .csv")],
    text_column: Annotated[str, typer.Option(help="Text field of .jsonl/.csv.")] = "text",
    id_column: Annotated[str, typer.Option(help="Id field of .jsonl/.csv (absent: generated ids).")] = "id",
    ray: RayAddress = None,
    actors: Actors = 2,
    shard_size: ShardSize = 4096,
) -> None:
    """Add documents (encoded with the collection's encoder, on Ray with --ray; one transaction)."""
    from semspace.data.files import read_documents
    from semspace.search import Collection

    docs = read_documents(source, text_column, id_column)
    with Collection.open(path) as c:
        if ray is not None:
            from semspace.distributed import add_documents, ray_session

            with ray_session(ray):
                ids, _ = add_documents(c, docs.texts, docs.ids, docs.metadata, n_actors=actors, shard_size=shard_size)
        else:
            ids = c.add(docs.texts, ids=docs.ids, metadata=docs.metadata)
        note(f"added {len(ids)} documents; the collection holds {len(c)}")


@app.command("delete")
def delete(
    path: CollectionPath,
    ids: Annotated[list[str], typer.Argument(help="Document ids.")],
) -> None:
    """Delete documents by id (all or nothing)."""
    from semspace.search import Collection

    with Collection.open(path) as c:
        removed = c.delete(ids)
        note(f"deleted {removed}; the collection holds {len(c)}")


@app.command("info")
def info(path: CollectionPath) -> None:
    """Settings and counts as JSON."""
    from semspace.search import Collection

    with Collection.open(path) as c:
        echo_json(c.info(), indent=2)


@app.command("whiten")
def whiten(
    path: CollectionPath,
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
            echo(
                f"tuned: {result.describe()} (dev Spearman {result.dev_spearman:.4f}, raw "
                f"{result.raw_dev_spearman:.4f})"
            )
        else:
            c.fit_whitening(sample_size=sample_size, n_components=k, beta=beta, gamma=gamma)
        echo_json(c.info(), indent=2)


@app.command("search")
def search(
    path: CollectionPath,
    queries: Annotated[list[str], typer.Argument(help="One or more queries.")],
    k: TopK = 10,
    as_json: AsJson = False,
) -> None:
    """Top-k documents per query."""
    from semspace.search import Collection

    with Collection.open(path) as c:
        results = c.search(list(queries), k=k)
    for query, result in zip(queries, results, strict=True):
        if as_json:
            echo_json({"query": query, "hits": result.to_dicts()})
            continue
        echo(f"query: {query}")
        for rank, hit in enumerate(result.to_dicts(), start=1):
            text = hit["text"] if len(hit["text"]) <= 100 else hit["text"][:97] + "..."
            echo(f"  {rank:>3}  {hit['score']:.4f}  {hit['id']}  {text}")
