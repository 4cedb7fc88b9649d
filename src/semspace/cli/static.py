"""`semspace distill`: a static embedding model (model2vec's folder) distilled from an encoder, optionally trained
on a corpus to the encoder's vectors (tokenlearn's method) and with a whitening tuned on dev pairs and folded into
its token table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semspace.cli.options import Model, PoolingName, echo_json, note


def distill(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write the static model to.")],
    model: Model = None,
    pooling: PoolingName = "default",
    k: Annotated[int, typer.Option("--k", min=0, help="PCA dimensions of the token table (0: no PCA).")] = 256,
    sif: Annotated[float, typer.Option("--sif", min=0.0, help="SIF coefficient a (0: no token weights).")] = 1e-4,
    corpus: Annotated[
        Path | None,
        typer.Option(help="Text file (one text per line): keep only the vocabulary tokens these texts use."),
    ] = None,
    whiten_fit: Annotated[
        Path | None,
        typer.Option(help="Text file (one text per line): fit the whitening's mean and covariance on these texts."),
    ] = None,
    dev_pairs: Annotated[
        Path | None,
        typer.Option(help="TSV s1<TAB>s2<TAB>score: tune β, γ, k on it and fold the choice into the table."),
    ] = None,
    train: Annotated[
        Path | None,
        typer.Option(
            help="Texts (.txt one per line, .jsonl or .csv with a text field): fit the table to the teacher's "
            "vectors of them (tokenlearn's method), e.g. the corpus you will search."
        ),
    ] = None,
    max_epochs: Annotated[int, typer.Option(min=1, help="With --train: at most this many epochs.")] = 30,
    rule: Annotated[str, typer.Option(help="Tuning rule: cv (default), bootstrap or argmax.")] = "cv",
    normalize: Annotated[bool, typer.Option(help="The saved model L2-normalises its vectors.")] = True,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing, non-empty output folder.")] = False,
) -> None:
    """Distil a static model from an encoder (model2vec's method) into a folder that `--model FOLDER`,
    model2vec's StaticModel and sentence-transformers load; prints a summary as one JSON line."""
    from semspace.data.files import read_lines
    from semspace.encode.static import distill as distill_model
    from semspace.encode.static import save_static
    from semspace.errors import InvalidParameterError

    if (whiten_fit is None) != (dev_pairs is None):
        raise InvalidParameterError("--whiten-fit and --dev-pairs go together (fit texts and dev pairs to tune on).")
    teacher, train_texts = model, None
    if train is not None:
        from semspace.data.files import read_documents
        from semspace.train.static import teacher_encoder, training_texts

        train_texts = training_texts(read_documents(train).texts)  # a corpus too small fails before distilling
        teacher = teacher_encoder(model)  # on torch: the vectors it is trained to are exact and reproducible
    static = distill_model(
        teacher,
        k=k or None,
        sif_coefficient=sif or None,
        corpus=read_lines(corpus) if corpus is not None else None,
        normalize=normalize,
        pooling=pooling,
    )
    summary: dict = {}
    if train_texts is not None:
        from semspace.train.static import train_static

        trained = train_static(train_texts, teacher, start=static, k=k or teacher.dim, max_epochs=max_epochs)
        static = trained.model
        summary["training"] = {
            "held_out_mse": [trained.held_out_loss_before, trained.held_out_loss_after],
            "epochs": trained.epochs,
            "texts": trained.n_train + trained.n_held_out,
        }
        note(f"trained: {trained.describe()}")
    if whiten_fit is not None and dev_pairs is not None:
        from semspace.data import read_senteval_cn
        from semspace.transform.static import whiten_static

        pairs = read_senteval_cn(dev_pairs)
        static, result = whiten_static(
            static, read_lines(whiten_fit), pairs.sentences1, pairs.sentences2, pairs.scores, rule=rule
        )
        summary["whitening"] = result.describe()
        summary["dev_spearman"] = {"whitened": result.dev_spearman, "raw": result.raw_dev_spearman}
        note(f"tuned: {result.describe()} (dev Spearman {result.dev_spearman:.4f}, raw {result.raw_dev_spearman:.4f})")
    folder = save_static(static, output, overwrite=overwrite)
    note(f"wrote a static model ({len(static.tokens)} tokens x {static.dim}) to {folder}")
    echo_json({"path": str(folder), "tokens": len(static.tokens), "dim": int(static.dim), **summary})
