"""`semspace index …`: create, add to, upsert into, delete from, list, inspect, export/import, whiten and search a
collection on disk.

`info`, `delete`, `get`, `list` and `export` load no model: the collection's encoder is made only when something
must be encoded. Several of these commands (and `semspace serve`) may run on one collection at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from semspace.cli.distributed import Actors, RayAddress, ShardSize
from semspace.cli.options import (
    AsJson,
    BackendName,
    CollectionPath,
    MaxLength,
    Model,
    PoolingName,
    TopK,
    echo,
    echo_json,
    note,
)
from semspace.errors import InvalidParameterError

Where = Annotated[
    str | None,
    typer.Option(help='Metadata filter as JSON: {"source": "faq"}, {"year": {"$gte": 2020}}, {"$or": [...]}, $in.'),
]


def parse_where(where: str | None) -> dict | None:
    """The --where JSON object (None when not given); a one-line error when it is not a JSON object."""
    if where is None:
        return None
    try:
        value = json.loads(where)
    except json.JSONDecodeError as exc:
        raise InvalidParameterError(f"--where is not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise InvalidParameterError(f'--where must be a JSON object, like {{"source": "faq"}}; got {where}')
    return value


app = typer.Typer(no_args_is_help=True, help="Persistent collections: SQLite documents + FAISS index.")

Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="A semspace server (`semspace serve DIR`): PATH is then the name of one of its collections, and nothing "
        "is loaded or encoded here.",
    ),
]
ApiKey = Annotated[
    str | None, typer.Option("--api-key", envvar="SEMSPACE_API_KEY", help="The server's key (with --url).")
]


@contextmanager
def opened(path: Path, url: str | None, api_key: str | None) -> Iterator[Any]:
    """The collection folder `path`, or with `url` the server's collection named `path` (same methods)."""
    if url is None:
        from semspace.search import Collection

        with Collection.open(path) as c:
            yield c
        return
    from semspace.client import Client

    with Client(url, api_key=api_key) as client:
        yield client.get_collection(str(path))


@app.command("create")
def create(
    path: Annotated[Path, typer.Argument(help="Folder to create.")],
    model: Model = None,
    pooling: PoolingName = "default",
    index: Annotated[
        str, typer.Option(help="FAISS factory string: Flat, IVF256,Flat, HNSW32, SQ8, PQ16, IVF256,PQ16, HNSW32,SQ8, …")
    ] = "Flat",
    max_length: MaxLength = None,
    backend: BackendName = None,
    url: Url = None,
    api_key: ApiKey = None,
    precision: Annotated[
        str,
        typer.Option(
            help="How the index keeps vectors: float32; int8 (FAISS SQ8, 4x smaller; with Flat, IVF<n>,Flat or "
            "HNSW<m>); binary (sign bits, Hamming search + float rescoring, 32x smaller; with Flat).",
        ),
    ] = "float32",
) -> None:
    """Create an empty collection (with --url: on the server, named PATH, with a model the server has)."""
    if url is not None:
        from semspace.client import Client

        with Client(url, api_key=api_key) as client:
            made = client.create_collection(
                str(path), model, index=index, pooling=pooling, max_length=max_length, precision=precision
            )
            echo_json(made.info(), indent=2)
        return
    from semspace.encode import Encoder
    from semspace.search import Collection

    # the engine is recorded in the collection's manifest: later commands re-open it with the same one
    encoder = Encoder(model, pooling=pooling, max_length=max_length, backend=backend)
    with Collection.create(
        path, encoder=encoder, index=index, pooling=pooling, max_length=max_length, precision=precision
    ) as c:
        echo_json(c.info(), indent=2)


IdsFrom = Annotated[
    str,
    typer.Option(
        "--ids",
        help="Where ids come from: 'column' (the --id-column of .jsonl/.csv, else generated), 'content' (a hash of "
        "the text: texts already stored are skipped, so re-running an import adds only what is new) or 'generated'.",
    ),
]


def _content_ids(c, docs) -> int:
    """Give `docs` content ids, drop texts repeated in the file or already stored; returns how many were dropped."""
    from semspace.search.documents import content_id

    ids = [content_id(t) for t in docs.texts]
    stored = {d["id"] for d in c.get_existing(ids)}
    seen: set[str] = set()
    keep = []
    for i, doc_id in enumerate(ids):
        if doc_id not in stored and doc_id not in seen:
            seen.add(doc_id)
            keep.append(i)
    docs.texts = [docs.texts[i] for i in keep]
    docs.metadata = [docs.metadata[i] for i in keep] if docs.metadata is not None else None
    docs.ids = [ids[i] for i in keep]
    return len(ids) - len(keep)


@app.command("add")
def add(
    path: CollectionPath,
    source: Annotated[Path, typer.Argument(help=".txt (one per line), .jsonl or .csv")],
    text_column: Annotated[str, typer.Option(help="Text field of .jsonl/.csv.")] = "text",
    id_column: Annotated[str, typer.Option(help="Id field of .jsonl/.csv (absent: generated ids).")] = "id",
    ids_from: IdsFrom = "column",
    ray: RayAddress = None,
    actors: Actors = 2,
    shard_size: ShardSize = 4096,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Add documents (encoded with the collection's encoder, on Ray with --ray; one transaction). An id already
    there is an error; with --ids content, a text already stored is skipped."""
    from semspace.data.files import read_documents

    if ids_from not in ("column", "content", "generated"):
        raise InvalidParameterError(f"--ids must be column, content or generated; got {ids_from!r}")
    docs = read_documents(source, text_column, id_column)
    if url is not None and ray is not None:
        raise InvalidParameterError("--ray encodes here; with --url the server encodes: use one of them")
    with opened(path, url, api_key) as c:
        skipped = 0
        if ids_from == "content":
            skipped = _content_ids(c, docs)
        else:
            if ids_from == "generated":
                docs.ids = None
            again = c.store.stored_texts(docs.texts) if url is None else set()
            if again:
                note(
                    f"warning: {sum(t in again for t in docs.texts)} of these texts were already in the collection "
                    "and are added again (use --ids content to skip texts already stored)"
                )
        if not docs.texts:
            note(f"nothing new to add ({skipped} already stored); the collection holds {len(c)}")
            return
        if ray is not None:
            from semspace.distributed import add_documents, ray_session

            with ray_session(ray):
                ids, _ = add_documents(c, docs.texts, docs.ids, docs.metadata, n_actors=actors, shard_size=shard_size)
        else:
            ids = c.add(docs.texts, ids=docs.ids, metadata=docs.metadata)
        skipped_note = f" ({skipped} already stored, skipped)" if skipped else ""
        note(f"added {len(ids)} documents{skipped_note}; the collection holds {len(c)}")


@app.command("upsert")
def upsert(
    path: CollectionPath,
    source: Annotated[Path, typer.Argument(help=".jsonl or .csv with ids")],
    text_column: Annotated[str, typer.Option(help="Text field.")] = "text",
    id_column: Annotated[str, typer.Option(help="Id field (required).")] = "id",
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Add or replace documents by id (one transaction)."""
    from semspace.data.files import read_documents

    docs = read_documents(source, text_column, id_column)
    if docs.ids is None:
        raise InvalidParameterError(f"{source}: upsert needs an {id_column!r} for every document")
    with opened(path, url, api_key) as c:
        ids = c.upsert(docs.texts, ids=docs.ids, metadata=docs.metadata)
        note(f"upserted {len(ids)} documents; the collection holds {len(c)}")


@app.command("delete")
def delete(
    path: CollectionPath,
    ids: Annotated[list[str], typer.Argument(help="Document ids.")],
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Delete documents by id (all or nothing)."""
    with opened(path, url, api_key) as c:
        removed = c.delete(ids)
        note(f"deleted {removed}; the collection holds {len(c)}")


@app.command("info")
def info(path: CollectionPath, url: Url = None, api_key: ApiKey = None) -> None:
    """Settings and counts as JSON."""
    with opened(path, url, api_key) as c:
        echo_json(c.info(), indent=2)


@app.command("compact")
def compact(path: CollectionPath) -> None:
    """Write an index checkpoint now: deleted vectors removed, a trained index (IVF/PQ) retrained when the collection
    has grown 4x past its training set. Writes do this by themselves when the tail grows; prints info as JSON."""
    from semspace.search import Collection

    with Collection.open(path) as c:
        echo_json(c.compact(), indent=2)


@app.command("whiten")
def whiten(
    path: CollectionPath,
    k: Annotated[int | None, typer.Option(help="Output dimensions (default: all).")] = None,
    beta: float = 1.0,
    gamma: float = 1.0,
    dev_pairs: Annotated[Path | None, typer.Option(help="TSV s1<TAB>s2<TAB>score: tune β, γ, k on it instead.")] = None,
    sample_size: int = 10_000,
    rule: Annotated[
        str, typer.Option(help="Tuning rule with --dev-pairs: cv (default), bootstrap (the former) or argmax.")
    ] = "cv",
) -> None:
    """Fit (or tune) whitening on the stored raw vectors and re-project the index (no re-encoding)."""
    from semspace.data import read_senteval_cn
    from semspace.search import Collection

    with Collection.open(path) as c:
        if dev_pairs is not None:
            pairs = read_senteval_cn(dev_pairs)
            result = c.fit_whitening(
                sample_size=sample_size,
                dev_pairs=(pairs.sentences1, pairs.sentences2, pairs.scores),
                tune_rule=rule,
            )
            echo(
                f"tuned: {result.describe()} (dev Spearman {result.dev_spearman:.4f}, raw "
                f"{result.raw_dev_spearman:.4f})"
            )
        else:
            c.fit_whitening(sample_size=sample_size, n_components=k, beta=beta, gamma=gamma)
        echo_json(c.info(), indent=2)


@app.command("get")
def get(
    path: CollectionPath,
    ids: Annotated[list[str], typer.Argument(help="Document ids.")],
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Documents by id, one JSON line each (an unknown id is an error)."""
    with opened(path, url, api_key) as c:
        for doc in c.get(ids):
            echo_json(doc)


@app.command("list")
def list_(
    path: CollectionPath,
    limit: Annotated[int, typer.Option(min=1, help="Documents per page.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many (matching) documents.")] = 0,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of the previous page.")] = None,
    where: Where = None,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """One page of documents in insertion order, as JSON {"documents": [...], "next_cursor": ...}."""
    with opened(path, url, api_key) as c:
        page = c.list_documents(limit=limit, offset=offset, where=parse_where(where), cursor=cursor)
    echo_json({"documents": page.documents, "next_cursor": page.next_cursor})


@app.command("export")
def export(
    path: CollectionPath,
    out: Annotated[Path, typer.Argument(help="JSONL file to write.")],
    vectors: Annotated[bool, typer.Option("--vectors", help="Include the raw vectors (exact).")] = False,
) -> None:
    """Write every document as JSONL {"id", "text", "metadata"[, "vector"]}."""
    from semspace.search import Collection

    with Collection.open(path) as c:
        n = c.export_jsonl(out, vectors=vectors)
    note(f"exported {n} documents to {out}")


@app.command("import")
def import_(
    path: CollectionPath,
    source: Annotated[Path, typer.Argument(help="JSONL written by `index export`.")],
    upsert: Annotated[bool, typer.Option("--upsert", help="Replace documents whose id is already there.")] = False,
) -> None:
    """Add the documents of an export (one transaction; lines with "vector" are not re-encoded)."""
    from semspace.search import Collection

    with Collection.open(path) as c:
        n = c.import_jsonl(source, upsert=upsert)
        note(f"imported {n} documents; the collection holds {len(c)}")


@app.command("search")
def search(
    path: CollectionPath,
    queries: Annotated[list[str], typer.Argument(help="One or more queries.")],
    k: TopK = 10,
    where: Where = None,
    mode: Annotated[str, typer.Option(help="dense, bm25 or hybrid (BM25 + dense).")] = "dense",
    fusion: Annotated[str, typer.Option(help="Hybrid fusion: rrf (reciprocal rank) or weighted.")] = "rrf",
    alpha: Annotated[float, typer.Option(help="Weighted fusion: weight of the dense score in [0, 1].")] = 0.5,
    as_json: AsJson = False,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Top-k documents per query (optionally only those whose metadata match --where)."""
    where_filter = parse_where(where)
    with opened(path, url, api_key) as c:
        results = c.search(list(queries), k=k, where=where_filter, mode=mode, fusion=fusion, alpha=alpha)
    for query, result in zip(queries, results, strict=True):
        if as_json:
            echo_json({"query": query, "hits": result.to_dicts()})
            continue
        echo(f"query: {query}")
        for rank, hit in enumerate(result.to_dicts(), start=1):
            text = hit["text"] if len(hit["text"]) <= 100 else hit["text"][:97] + "..."
            echo(f"  {rank:>3}  {hit['score']:.4f}  {hit['id']}  {text}")
