"""`semspace cur build|search`: cross-encoder k-NN search with CUR under a budget of CE calls (ANNCUR, adaptive)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semspace.cli.options import AsJson, TopK, echo, echo_json, note

app = typer.Typer(no_args_is_help=True, help="Cross-encoder k-NN search with CUR (ANNCUR, adaptive rounds).")


@app.command("build")
def build(
    out: Annotated[Path, typer.Argument(help="Folder to write the CUR index to.")],
    cross_encoder: Annotated[Path, typer.Option(help="Cross-encoder folder (HF sequence classification).")],
    anchor_queries: Annotated[Path, typer.Option(help="Text file, one anchor (training) query per line.")],
    items: Annotated[Path | None, typer.Option(help="Text file, one item per line.")] = None,
    collection: Annotated[Path | None, typer.Option(help="Or: every document of a collection.")] = None,
    n_anchor_items: Annotated[int, typer.Option(min=1)] = 50,
    anchor_items: Annotated[str, typer.Option(help="random | kmeans (k-means of bi-encoder vectors)")] = "random",
) -> None:
    """Score the anchor queries against every item (k_q·|I| CE calls) and save the index."""
    from semspace.data.files import read_lines
    from semspace.errors import InvalidParameterError
    from semspace.interact.cross_encoder import CrossEncoder
    from semspace.interact.searcher import CURSearcher

    if (items is None) == (collection is None):
        raise InvalidParameterError("Give exactly one of --items or --collection.")
    ids, vectors = None, None
    if collection is not None:
        from semspace.search import Collection

        with Collection.open(collection) as c:
            ids, texts, vectors = c.export()
    else:
        texts = read_lines(items)
    if anchor_items == "kmeans" and vectors is None:
        from semspace.encode import Encoder

        vectors = Encoder().encode(texts)
    searcher = CURSearcher.build(
        CrossEncoder(cross_encoder),
        read_lines(anchor_queries),
        texts,
        ids,
        n_anchor_items=n_anchor_items,
        anchor_items=anchor_items,
        item_vectors=vectors,
    )
    searcher.save(out)
    note(f"CUR index over {len(texts)} items, {searcher.index.offline_calls_} offline CE calls → {out}")


@app.command("search")
def search(
    index: Annotated[Path, typer.Argument(help="Folder written by `semspace cur build`.")],
    query: Annotated[str, typer.Argument(help="The query.")],
    budget: Annotated[int, typer.Option(min=1, help="CE calls to spend.")] = 100,
    rounds: Annotated[int, typer.Option(min=1, help="1 = ANNCUR; ≥ 2 = adaptive rounds.")] = 1,
    k: TopK = 10,
    as_json: AsJson = False,
) -> None:
    """Top-k items by the exact CE score after at most `budget` CE calls."""
    from semspace.interact.searcher import CURSearcher

    hit = CURSearcher.load(index).search(query, k=k, budget=budget, rounds=rounds)
    rows = list(zip(hit.ids, hit.exact_scores, hit.texts, strict=True))
    if as_json:
        echo_json({"query": query, "calls": hit.calls, "hits": [{"id": i, "score": s, "text": t} for i, s, t in rows]})
        return
    echo(f"query: {query}   ({hit.calls} CE calls)")
    for rank, (i, s, t) in enumerate(rows, start=1):
        echo(f"  {rank:>3}  {s:8.4f}  {i}  {t[:100]}")
