"""`semspace cur build|search` (and `semspace rerank`, the same as `cur search`): cross-encoder k-NN search under a
budget of CE calls by CUR (ANNCUR, adaptive) or retrieve-and-rerank, whichever measured better."""

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
    encoder: Annotated[
        str | None,
        typer.Option(help="Bi-encoder for --items (default: bundled MiniLM); --collection uses its own encoder."),
    ] = None,
    bi_encoder: Annotated[
        bool,
        typer.Option(help="Keep a bi-encoder side (item vectors + query encoder) for RnR and measure RnR vs CUR."),
    ] = True,
) -> None:
    """Score the anchor queries against every item (k_q·|I| CE calls) and save the index.

    With the bi-encoder side (the default) the index also holds the items' bi-encoder vectors, and a table of
    Top-k-Recall@B of RnR-DE, CUR and adaCUR measured by cross-validation over the anchor queries (no further CE
    calls), from which `semspace cur search --method auto` chooses."""
    from semspace.data.files import read_lines
    from semspace.errors import InvalidParameterError
    from semspace.interact.cross_encoder import CrossEncoder
    from semspace.interact.searcher import CURSearcher

    if (items is None) == (collection is None):
        raise InvalidParameterError("Give exactly one of --items or --collection.")
    if collection is not None and encoder is not None:
        raise InvalidParameterError("--encoder is for --items: a collection's vectors come from its own encoder.")
    if not bi_encoder and encoder is not None:
        raise InvalidParameterError("--encoder and --no-bi-encoder contradict each other.")
    ids, vectors, query_encoder = None, None, None
    if collection is not None:
        from semspace.search import Collection

        with Collection.open(collection) as c:
            ids, texts, vectors = c.export()
            query_encoder = c.encoder if bi_encoder else None
    else:
        texts = read_lines(items)
    if vectors is None and (bi_encoder or anchor_items == "kmeans"):
        from semspace.encode import Encoder

        query_encoder = Encoder(encoder)
        vectors = query_encoder.encode(texts)
        query_encoder = query_encoder if bi_encoder else None
    searcher = CURSearcher.build(
        CrossEncoder(cross_encoder),
        read_lines(anchor_queries),
        texts,
        ids,
        n_anchor_items=n_anchor_items,
        anchor_items=anchor_items,
        item_vectors=vectors,
        encoder=query_encoder,
    )
    searcher.save(out)
    note(f"CUR index over {len(texts)} items, {searcher.index.offline_calls_} offline CE calls → {out}")
    if searcher.calibration is not None:
        note(searcher.calibration.summary())
    elif searcher.has_bi_encoder:
        note("no calibration (fewer than 2 anchor queries): --method auto will run CUR")
    else:
        note("no bi-encoder side: only --method cur is available")


@app.command("search")
def search(
    index: Annotated[Path, typer.Argument(help="Folder written by `semspace cur build`.")],
    query: Annotated[str, typer.Argument(help="The query.")],
    budget: Annotated[int, typer.Option(min=1, help="CE calls to spend.")] = 100,
    rounds: Annotated[int, typer.Option(min=1, help="With --method cur: 1 = ANNCUR; ≥ 2 = adaptive rounds.")] = 1,
    method: Annotated[
        str,
        typer.Option(
            help="auto (RnR or CUR, whichever measured better at this budget when the index was built) | cur | rnr "
            "(the bi-encoder's top-budget items re-ranked)."
        ),
    ] = "auto",
    k: TopK = 10,
    as_json: AsJson = False,
) -> None:
    """Top-k items by the exact CE score after at most `budget` CE calls, by RnR or CUR; says which ran and why."""
    from semspace.errors import check_param
    from semspace.interact.searcher import SEARCH_METHODS, CURSearcher

    check_param("--method", "semspace cur search", method in SEARCH_METHODS, "auto, cur or rnr", method)
    hit = CURSearcher.load(index).search(query, k=k, budget=budget, rounds=rounds, method=method)
    rows = list(zip(hit.ids, hit.exact_scores, hit.texts, strict=True))
    if as_json:
        hits = [{"id": i, "score": s, "text": t} for i, s, t in rows]
        echo_json({"query": query, "calls": hit.calls, "method": hit.method, "reason": hit.reason, "hits": hits})
        return
    echo(f"query: {query}   ({hit.calls} CE calls, {hit.method})")
    echo(f"  why: {hit.reason}")
    for rank, (i, s, t) in enumerate(rows, start=1):
        echo(f"  {rank:>3}  {s:8.4f}  {i}  {t[:100]}")
