"""`semspace cur …` and `semspace train cross-encoder`: cross-encoder search under a budget of CE calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

cur_app = typer.Typer(no_args_is_help=True, help="Cross-encoder k-NN search with CUR (ANNCUR, adaptive rounds).")
train_app = typer.Typer(no_args_is_help=True, help="Train models.")


def register(app: typer.Typer) -> None:
    app.add_typer(cur_app, name="cur")
    app.add_typer(train_app, name="train")


def _lines(path: Path) -> list[str]:
    from semspace.errors import DatasetNotFoundError, InvalidInputError

    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: no such file")
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise InvalidInputError(f"{path}: no lines")
    return lines


@cur_app.command("build")
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
        texts = _lines(items)
    if anchor_items == "kmeans" and vectors is None:
        from semspace.encode import Encoder

        vectors = Encoder().encode(texts)
    searcher = CURSearcher.build(
        CrossEncoder(cross_encoder),
        _lines(anchor_queries),
        texts,
        ids,
        n_anchor_items=n_anchor_items,
        anchor_items=anchor_items,
        item_vectors=vectors,
    )
    searcher.save(out)
    typer.echo(f"CUR index over {len(texts)} items, {searcher.index.offline_calls_} offline CE calls → {out}", err=True)


@cur_app.command("search")
def search(
    index: Annotated[Path, typer.Argument(help="Folder written by `semspace cur build`.")],
    query: Annotated[str, typer.Argument(help="The query.")],
    budget: Annotated[int, typer.Option(min=1, help="CE calls to spend.")] = 100,
    rounds: Annotated[int, typer.Option(min=1, help="1 = ANNCUR; ≥ 2 = adaptive rounds.")] = 1,
    k: Annotated[int, typer.Option("-k", "--k", min=1)] = 10,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Top-k items by the exact CE score after at most `budget` CE calls."""
    from semspace.interact.searcher import CURSearcher

    hit = CURSearcher.load(index).search(query, k=k, budget=budget, rounds=rounds)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "query": query,
                    "calls": hit.calls,
                    "hits": [
                        {"id": i, "score": s, "text": t}
                        for i, s, t in zip(hit.ids, hit.exact_scores, hit.texts, strict=True)
                    ],
                },
                ensure_ascii=False,
            )
        )
        return
    typer.echo(f"query: {query}   ({hit.calls} CE calls)")
    for rank, (i, s, t) in enumerate(zip(hit.ids, hit.exact_scores, hit.texts, strict=True), start=1):
        typer.echo(f"  {rank:>3}  {s:8.4f}  {i}  {t[:100]}")


@train_app.command("cross-encoder")
def train_cross_encoder_cmd(
    out: Annotated[Path, typer.Argument(help="Folder for the best-dev checkpoint (HF format).")],
    train: Annotated[Path | None, typer.Option(help="TSV s1<TAB>s2<TAB>label (default: STS-B train).")] = None,
    dev: Annotated[Path | None, typer.Option(help="TSV dev pairs (default: STS-B dev).")] = None,
    loss: Annotated[str, typer.Option(help="bce | mse | cosent")] = "bce",
    epochs: Annotated[int, typer.Option(min=1)] = 1,
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    lr: float = 2e-5,
    rdrop_alpha: Annotated[float, typer.Option(help="R-Drop weight (0 = off).")] = 0.0,
    data_root: Annotated[Path | None, typer.Option(help="Folder laid out like ../shared/data.")] = None,
) -> None:
    """Train a cross-encoder from the bundled all-MiniLM-L6-v2 weights (no download)."""
    from semspace.data import load_sts_task, read_senteval_cn
    from semspace.train import CrossEncoderTrainConfig, train_cross_encoder

    if train is None or dev is None:
        task = load_sts_task("STS-B", data_root)
        train_pairs, dev_pairs = task.fit, task.dev
    if train is not None:
        train_pairs = read_senteval_cn(train)
    if dev is not None:
        dev_pairs = read_senteval_cn(dev)
    history = train_cross_encoder(
        train_pairs,
        dev_pairs,
        out,
        CrossEncoderTrainConfig(objective=loss, epochs=epochs, batch_size=batch_size, lr=lr, rdrop_alpha=rdrop_alpha),
    )
    typer.echo(f"best dev Spearman {history['best_dev_spearman']:.4f} at step {history.get('best_step')} → {out}")
