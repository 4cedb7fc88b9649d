"""`semspace train …`: every training command in one group — `cross-encoder` (a CE from the bundled MiniLM weights)
and `simcse`, `cosent`, `pairs` (fine-tune a sentence encoder: the bundled MiniLM or any HF encoder)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from semspace.cli.options import DataRoot, DevPairsAlias, dev_pairs_path, echo

if TYPE_CHECKING:
    from semspace.data.sts import STSPairs

app = typer.Typer(no_args_is_help=True, help="Train models.")

ENCODER_HELP = {
    "simcse": "Unsupervised SimCSE on a file of sentences (.txt one per line, .jsonl 'text', .csv 'text').",
    "cosent": (
        "CoSENT (or --loss mse|cosent-mse|angle) on labelled pairs: .tsv s1<TAB>s2<TAB>label or .jsonl"
        " sentence1/sentence2/label."
    ),
    "pairs": "InfoNCE with in-batch negatives on .tsv anchor<TAB>positive[<TAB>negative] or .jsonl rows.",
}

# The encoder commands' longer options, named once here so the command's signature stays one line per option.
StartModel = Annotated[str | None, typer.Option(help="HF id or folder to start from (default: bundled MiniLM).")]
DevFile = Annotated[
    Path | None, typer.Option("--dev-pairs", help="Labelled dev pairs (.tsv/.jsonl) evaluated every --eval-steps.")
]
CosentLoss = Annotated[
    str | None, typer.Option(help="cosent only: cosent (default) | mse | cosent-mse | angle (AnglE).")
]
ChunkSize = Annotated[int | None, typer.Option(min=1, help="Examples per forward pass (exact cached step).")]
EvalEarly = Annotated[
    int, typer.Option(min=0, help="Also evaluate at eval-steps/2, /4, … (this many halvings) early on.")
]


@app.command("cross-encoder")
def cross_encoder(
    out: Annotated[Path, typer.Argument(help="Folder for the best-dev checkpoint (HF format).")],
    train: Annotated[Path | None, typer.Option(help="TSV s1<TAB>s2<TAB>label (default: STS-B train).")] = None,
    dev: Annotated[Path | None, typer.Option("--dev-pairs", help="TSV dev pairs (default: STS-B dev).")] = None,
    dev_alias: DevPairsAlias = None,
    loss: Annotated[str, typer.Option(help="bce | mse | cosent")] = "bce",
    epochs: Annotated[int, typer.Option(min=1)] = 1,
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    lr: float = 2e-5,
    rdrop_alpha: Annotated[float, typer.Option(help="R-Drop weight (0 = off).")] = 0.0,
    both_orders: Annotated[
        bool, typer.Option("--both-orders/--one-order", help="Also train every pair as (b, a) (symmetric labels).")
    ] = False,
    eval_steps: Annotated[
        int | None, typer.Option(min=1, help="Evaluate dev every N steps (default: per epoch).")
    ] = None,
    data_root: DataRoot = None,
) -> None:
    """Train a cross-encoder from the bundled all-MiniLM-L6-v2 weights (no download).

    The recipe of docs/results/ce.md: --epochs 4 --both-orders --eval-steps 360 (BCE on label / 5, lr 2e-5,
    batch 16)."""
    from semspace.data import load_sts_task, read_senteval_cn
    from semspace.train import CrossEncoderTrainConfig, train_cross_encoder

    dev = dev_pairs_path(dev, dev_alias)
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
        CrossEncoderTrainConfig(
            objective=loss,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            rdrop_alpha=rdrop_alpha,
            both_orders=both_orders,
            eval_steps=eval_steps,
        ),
    )
    echo(f"best dev Spearman {history['best_dev_spearman']:.4f} at step {history.get('best_step')} → {out}")


def _encoder_command(command: str):
    """The `train simcse|cosent|pairs` command: the same options, a different objective and default batch."""

    def train_encoder_command(
        data: Annotated[Path, typer.Argument(help="Training file.")],
        out: Annotated[Path, typer.Argument(help="Output folder: the best model (loadable by Encoder) + checkpoints.")],
        model: StartModel = None,
        dev: DevFile = None,
        dev_alias: DevPairsAlias = None,
        dev_task: Annotated[str | None, typer.Option(help="Use an STS task's dev split instead, e.g. STS-B.")] = None,
        data_root: DataRoot = None,
        loss: CosentLoss = None,
        scale: Annotated[float, typer.Option(help="CoSENT's λ (cosent, cosent-mse, angle).")] = 20.0,
        mse_weight: Annotated[float, typer.Option(help="cosent-mse: weight of the MSE term.")] = 20.0,
        ibn_weight: Annotated[float, typer.Option(help="angle: weight of the in-batch negatives.")] = 1.0,
        angle_weight: Annotated[float, typer.Option(help="angle: weight of the angle term.")] = 1.0,
        angle_scale: Annotated[float, typer.Option(help="angle: scale of the angle term.")] = 1.0,
        epochs: Annotated[int, typer.Option(min=1)] = 1,
        batch_size: Annotated[int, typer.Option(min=2)] = 32 if command == "cosent" else 64,
        chunk_size: ChunkSize = None,
        lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 2e-5,
        warmup: Annotated[float, typer.Option(help="Warm-up fraction of the steps.")] = 0.1,
        max_length: Annotated[int, typer.Option(min=4)] = 64,
        pooling: Annotated[str | None, typer.Option(help="mean or cls (default: the model's own).")] = None,
        temperature: Annotated[float, typer.Option(help="InfoNCE τ (simcse, pairs).")] = 0.05,
        rdrop_alpha: Annotated[float, typer.Option(help="R-Drop weight α (0 = off).")] = 0.0,
        dropout: Annotated[float | None, typer.Option(help="Override the model's dropout rate.")] = None,
        lora_rank: Annotated[int, typer.Option(min=0, help="LoRA rank through peft (0 = full fine-tuning).")] = 0,
        eval_steps: Annotated[int | None, typer.Option(min=1, help="Evaluate/checkpoint every N steps.")] = None,
        eval_early: EvalEarly = 4,
        keep_final: Annotated[bool, typer.Option(help="Also export the final model to OUT/final.")] = False,
        max_steps: Annotated[int | None, typer.Option(min=1)] = None,
        symmetric: Annotated[bool, typer.Option(help="pairs: also the positive → anchor direction.")] = False,
        device: Annotated[str, typer.Option(help="torch device, e.g. cpu or cuda.")] = "cpu",
        seed: int = 0,
        resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint in OUT.")] = True,
    ) -> None:
        from semspace.errors import InvalidParameterError
        from semspace.train import EncoderTrainConfig, read_pairs, read_sentences, train_encoder

        config = EncoderTrainConfig(
            objective=_encoder_objective(command, loss),
            epochs=epochs,
            batch_size=batch_size,
            chunk_size=chunk_size,
            lr=lr,
            warmup_ratio=warmup,
            max_length=max_length,
            pooling=pooling,
            temperature=temperature,
            rdrop_alpha=rdrop_alpha,
            dropout=dropout,
            lora_rank=lora_rank,
            seed=seed,
            eval_steps=eval_steps,
            eval_early=eval_early,
            max_steps=max_steps,
            symmetric=symmetric,
            cosent_scale=scale,
            mse_weight=mse_weight,
            ibn_weight=ibn_weight,
            angle_weight=angle_weight,
            angle_scale=angle_scale,
            device=device,
        )
        config.validate()  # before any file is read or model loaded
        dev = dev_pairs_path(dev, dev_alias)
        if dev is not None and dev_task is not None:
            raise InvalidParameterError("Pass --dev-pairs or --dev-task, not both.")
        train = read_sentences(data) if command == "simcse" else read_pairs(data, labelled=command == "cosent")
        dev_pairs = _read_dev_pairs(dev, dev_task, data_root)
        history = train_encoder(
            train, out, config, init=model, dev=dev_pairs, resume=resume, data_name=str(data), keep_final=keep_final
        )
        echo(_training_summary(history, len(train), out))

    train_encoder_command.__doc__ = ENCODER_HELP[command]
    return train_encoder_command


def _encoder_objective(command: str, loss: str | None) -> str:
    """The training objective of `train <command> [--loss loss]`: --loss picks among CoSENT's variants only."""
    from semspace.errors import InvalidParameterError

    if loss is not None and command != "cosent":
        raise InvalidParameterError(f"--loss applies to 'train cosent' only, not 'train {command}'.")
    objective = loss or command if command == "cosent" else command
    if objective not in ("cosent", "mse", "cosent-mse", "angle", "simcse", "pairs"):
        raise InvalidParameterError(f"--loss must be cosent, mse, cosent-mse or angle; got {loss!r}.")
    return objective


def _read_dev_pairs(dev: Path | None, dev_task: str | None, data_root: Path | None) -> STSPairs | None:
    """The dev pairs selection scores: a labelled pairs file, an STS task's dev split, or None (no dev)."""
    from semspace.data import load_sts_task
    from semspace.data.sts import STSPairs
    from semspace.train import read_pairs

    if dev is not None:
        dev_set = read_pairs(dev, labelled=True)
        return STSPairs(dev_set.columns[0], dev_set.columns[1], dev_set.labels, name=dev.name)
    if dev_task is not None:
        return load_sts_task(dev_task, data_root).dev
    return None


def _training_summary(history: dict[str, Any], n_examples: int, out: Path) -> str:
    """One line on a finished run: steps, examples, the best (and final) dev score or "final model", the folder."""
    best = history["best_dev_spearman"]
    where = f"best dev Spearman {best:.4f} at step {history.get('best_step')}" if best is not None else "final model"
    final = history.get("final_dev_spearman")
    if best is not None and final is not None:
        where += f"; final dev Spearman {final:.4f}"
    return f"{history['steps']} steps on {n_examples} examples; {where} → {out}"


for _name in ENCODER_HELP:
    app.command(_name)(_encoder_command(_name))
