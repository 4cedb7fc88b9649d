"""Train a sentence encoder (the bundled all-MiniLM-L6-v2 or any Hugging Face encoder) on the user's data.

Objectives (REFERENCE §3):

- ``simcse``: unsupervised SimCSE, each sentence twice with dropout on, InfoNCE with τ = 0.05 (Gao et al. 2021).
- ``pairs``: supervised InfoNCE over (anchor, positive[, hard negative]) rows with in-batch negatives.
- ``cosent``: CoSENT on the pair cosines, λ = 20 (Su, kexue.fm/archives/8847); labels 0/1 or graded.
- ``mse``: MSE of the cosine against label / max_label, the Sentence-BERT regression baseline.

Options: R-Drop (α > 0: every batch twice, mean task loss + α · symmetric KL of the two passes' softmax rows),
exact gradient-cached large batches (`chunk_size` examples per forward pass, see :mod:`semspace.train.cached`),
LoRA through peft (`lora_rank` > 0), a dev STS set evaluated every `eval_steps` with the best checkpoint exported,
and resumption from the last checkpoint after an interruption.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from semspace._io import atomic_write_json
from semspace.data.sts import STSPairs
from semspace.encode.backends import HFBackend
from semspace.encode.pooling import Pooling, pool
from semspace.errors import InvalidParameterError, check_param
from semspace.metrics import spearman
from semspace.train.cached import cached_backward, chunked_backward
from semspace.train.checkpoint import ST_POOLING_MODES, export_model, load_checkpoint, save_checkpoint
from semspace.train.data import TrainingSet
from semspace.train.losses import (
    categorical_symmetric_kl,
    cosent_loss,
    cosine_mse_loss,
    info_nce_from_similarities,
    info_nce_similarities,
)

logger = logging.getLogger(__name__)

OBJECTIVES = ("simcse", "pairs", "cosent", "mse")
# Fields that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = {"eval_steps", "device"}


@dataclass
class EncoderTrainConfig:
    """Hyper-parameters of :func:`train_encoder`; defaults follow the recipes in REFERENCE §3."""

    objective: str = "cosent"
    epochs: int = 1
    batch_size: int = 32
    chunk_size: int | None = None  # examples per forward pass; < batch_size turns on the exact cached step
    lr: float = 2e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_length: int = 64
    pooling: str | None = None  # None: the model's own (mean for the bundled MiniLM)
    temperature: float = 0.05
    cosent_scale: float = 20.0
    max_label: float | None = None  # mse: labels are divided by this (default: the largest training label)
    symmetric: bool = False  # pairs: also the positive → anchor direction
    rdrop_alpha: float = 0.0
    dropout: float | None = None  # None keeps the model's; SimCSE's Chinese recipe uses 0.3
    lora_rank: int = 0  # 0: full fine-tuning
    lora_alpha: float = 16.0
    seed: int = 0
    eval_steps: int | None = None  # None: once per epoch
    max_steps: int | None = None  # cap on optimizer steps (the schedule is sized to it)
    device: str = "cpu"

    def validate(self) -> None:
        owner = "EncoderTrainConfig"
        check_param("objective", owner, self.objective in OBJECTIVES, f"one of {OBJECTIVES}", self.objective)
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            check_param(name, owner, isinstance(value, int) and value >= 1, "an int >= 1", value)
        for name in ("chunk_size", "eval_steps", "max_steps"):
            value = getattr(self, name)
            check_param(name, owner, value is None or (isinstance(value, int) and value >= 1), "None or >= 1", value)
        check_param("batch_size", owner, self.batch_size >= 2, "at least 2 (in-batch comparisons)", self.batch_size)
        check_param("lr", owner, 0 < self.lr < 1, "in (0, 1)", self.lr)
        check_param("warmup_ratio", owner, 0 <= self.warmup_ratio < 1, "in [0, 1)", self.warmup_ratio)
        check_param("max_length", owner, self.max_length >= 4, "an int >= 4", self.max_length)
        check_param("temperature", owner, self.temperature > 0, "> 0", self.temperature)
        check_param("rdrop_alpha", owner, self.rdrop_alpha >= 0, ">= 0", self.rdrop_alpha)
        check_param("dropout", owner, self.dropout is None or 0 <= self.dropout < 1, "None or in [0, 1)", self.dropout)
        check_param("lora_rank", owner, self.lora_rank >= 0, "an int >= 0", self.lora_rank)
        check_param("max_label", owner, self.max_label is None or self.max_label > 0, "None or > 0", self.max_label)


def check_training_set(objective: str, data: TrainingSet) -> None:
    width = len(data.columns)
    if objective == "simcse" and width != 1:
        raise InvalidParameterError(f"simcse trains on single sentences; got {width} columns.")
    if objective == "pairs" and width not in (2, 3):
        raise InvalidParameterError(f"pairs needs (anchor, positive[, negative]) rows; got {width} columns.")
    if objective in ("cosent", "mse") and (width != 2 or data.labels is None):
        raise InvalidParameterError(f"{objective} needs labelled pairs (sentence1, sentence2, label).")


class _Step:
    """One batch → texts for the encoder and the loss on their embeddings (a pure function of the embeddings)."""

    def __init__(self, config: EncoderTrainConfig, data: TrainingSet) -> None:
        self.config = config
        self.data = data
        self.max_label = config.max_label or (float(max(data.labels.max(), 1.0)) if data.labels is not None else 1.0)
        self.passes = 2 if config.rdrop_alpha > 0 else 1

    def texts(self, index: np.ndarray) -> list[str]:
        columns = [[column[i] for i in index] for column in self.data.columns]
        if self.config.objective == "simcse":
            columns = columns * 2  # two dropout views of every sentence
        one_pass = [text for column in columns for text in column]
        return one_pass * self.passes

    def loss(self, embeddings: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        passes = embeddings.chunk(self.passes)
        results = [self._task(h, index) for h in passes]
        loss = torch.stack([r[0] for r in results]).mean()
        if self.passes == 2:
            loss = loss + self.config.rdrop_alpha * categorical_symmetric_kl(results[0][1], results[1][1])
        return loss

    def _task(self, h: torch.Tensor, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(task loss, the logits R-Drop compares) for one pass."""
        n, config = len(index), self.config
        if config.objective in ("simcse", "pairs"):
            negatives = h[2 * n :] if len(h) > 2 * n else None
            logits = info_nce_similarities(h[:n], h[n : 2 * n], negatives, config.temperature)
            return info_nce_from_similarities(logits, config.symmetric), logits
        assert self.data.labels is not None
        labels = torch.as_tensor(self.data.labels[index], dtype=h.dtype, device=h.device)
        cosines = F.cosine_similarity(h[:n], h[n:], dim=-1)
        if config.objective == "cosent":
            loss = cosent_loss(cosines, labels, config.cosent_scale)
        else:
            loss = cosine_mse_loss(cosines, labels, self.max_label)
        return loss, cosines[None, :] * config.cosent_scale


def train_encoder(
    train: TrainingSet | STSPairs,
    output_dir: str | Path,
    config: EncoderTrainConfig | None = None,
    init: Any = None,
    dev: STSPairs | None = None,
    resume: bool = True,
    on_step: Callable[[int, float], None] | None = None,
) -> dict:
    """Train, export the best-dev (or, without dev, the final) model to `output_dir`; returns the history.

    `init` is anything :class:`~semspace.encode.Encoder` accepts for a Hugging Face model (None: the bundled
    MiniLM). With `resume`, a run whose `output_dir` holds a checkpoint continues from it. `on_step(step, loss)` is
    called after every optimizer step.
    """
    config = config or EncoderTrainConfig()
    config.validate()
    data = TrainingSet.from_pairs(train) if isinstance(train, STSPairs) else train
    check_training_set(config.objective, data)
    output_dir = Path(output_dir)
    torch.manual_seed(config.seed)
    backend = HFBackend(init, None, config.device)
    # Training truncates at config.max_length; the exported model keeps the starting model's inference length.
    tokenizer, pooling, inference_length = backend.tokenizer, backend.default_pooling, backend.max_length
    if config.pooling is not None:
        pooling = Pooling.parse(config.pooling)
    if pooling not in ST_POOLING_MODES:
        raise InvalidParameterError(f"Training supports the poolings last-avg and cls; got {pooling.value!r}.")
    model = _prepare_model(backend.model, config)
    step_fn = _Step(config, data)

    def embed(texts: list[str]) -> torch.Tensor:
        batch = tokenizer(texts, padding=True, truncation=True, max_length=config.max_length, return_tensors="pt")
        batch = batch.to(config.device)
        hidden = model(**batch).last_hidden_state
        return pool(pooling, (hidden,), batch["attention_mask"], None)

    steps_per_epoch = math.ceil(len(data) / config.batch_size)
    total = min(steps_per_epoch * config.epochs, config.max_steps or math.inf)
    warmup = max(1, int(config.warmup_ratio * total))
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.lr, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total - s) / max(1, total - warmup))
    )
    history: dict[str, Any] = {"config": asdict(config), "evals": [], "losses": [], "best_dev_spearman": None}
    history["train_examples"] = len(data)
    step, seconds = 0, 0.0
    restored = load_checkpoint(output_dir, model, optimizer, scheduler) if resume else None
    if restored is not None:
        _check_same_config(restored["history"]["config"], history["config"], output_dir)
        history, step, seconds = restored["history"], restored["step"], restored["seconds"]
    eval_every = config.eval_steps or steps_per_epoch
    started = time.perf_counter() - seconds

    def state() -> dict[str, Any]:
        return {"history": history, "step": step, "seconds": time.perf_counter() - started}

    def evaluate() -> None:
        if dev is None:
            return
        score = dev_spearman(model, embed, dev)
        history["evals"].append({"step": step, "dev_spearman": score})
        logger.info("step %d: dev Spearman %.4f", step, score)
        best = history["best_dev_spearman"]
        if best is None or score > best:
            history["best_dev_spearman"], history["best_step"] = score, step
            export_model(model, tokenizer, pooling, inference_length, output_dir)

    model.train()
    if step == 0:
        evaluate()  # the starting model competes too, so training never exports something worse on dev
    bar = tqdm(total=total, initial=step, desc=f"train {config.objective}", unit="step")
    try:
        while step < total:
            epoch, position = divmod(step, steps_per_epoch)
            order = np.random.default_rng([config.seed, epoch]).permutation(len(data))
            index = order[position * config.batch_size : (position + 1) * config.batch_size]
            texts = step_fn.texts(index)
            loss_fn = lambda h, index=index: step_fn.loss(h, index)  # noqa: E731
            per_example = len(texts) // len(index)
            if config.chunk_size is not None and config.chunk_size < len(index):
                loss = cached_backward(embed, texts, loss_fn, config.chunk_size * per_example)
            else:
                loss = chunked_backward(embed, texts, loss_fn, None)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            history["losses"].append(float(loss))
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss):.4f}", dev=history["best_dev_spearman"])
            if step % eval_every == 0 or step == total:
                evaluate()
                save_checkpoint(output_dir, step, model, optimizer, scheduler, state())
            if on_step is not None:
                on_step(step, float(loss))
    except KeyboardInterrupt:
        save_checkpoint(output_dir, step, model, optimizer, scheduler, state())
        logger.warning("interrupted at step %d; run again with the same output folder to resume", step)
        raise
    finally:
        bar.close()
    if dev is None or history["best_dev_spearman"] is None:
        export_model(model, tokenizer, pooling, inference_length, output_dir)
    history["steps"] = step
    history["train_seconds"] = time.perf_counter() - started
    atomic_write_json(output_dir / "semspace_training.json", history)
    return history


def _prepare_model(model: torch.nn.Module, config: EncoderTrainConfig) -> torch.nn.Module:
    if config.dropout is not None:
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = config.dropout
    if config.lora_rank > 0:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise InvalidParameterError("LoRA needs peft: pip install 'semspace[train]'") from None
        lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.1)
        try:
            model = get_peft_model(model, lora)
        except ValueError as exc:
            raise InvalidParameterError(f"LoRA cannot wrap this model: {exc}") from None
    return model.to(config.device)


def dev_spearman(model: torch.nn.Module, embed: Callable[[list[str]], torch.Tensor], dev: STSPairs) -> float:
    """Spearman × 1 of the pair cosines on a dev STS set, with dropout off (the model goes back to train mode)."""
    model.eval()
    try:
        with torch.no_grad():
            vectors = []
            for texts in (dev.sentences1, dev.sentences2):
                vectors.append(torch.cat([embed(list(texts[i : i + 128])) for i in range(0, len(texts), 128)]))
            cosines = F.cosine_similarity(vectors[0], vectors[1], dim=-1).double().cpu().numpy()
    finally:
        model.train()
    return spearman(cosines, dev.scores)


def _check_same_config(saved: dict, current: dict, output_dir: Path) -> None:
    names = [f.name for f in fields(EncoderTrainConfig) if f.name not in RESUMABLE_CHANGES]
    changed = [n for n in names if saved.get(n) != current.get(n)]
    if changed:
        raise InvalidParameterError(
            f"{output_dir} holds a checkpoint trained with other settings ({', '.join(changed)}); "
            "use a new output folder or resume=False (CLI: --no-resume)."
        )
