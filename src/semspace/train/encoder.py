"""Train a sentence encoder (the bundled all-MiniLM-L6-v2 or any Hugging Face encoder) on the user's data.

Objectives:

- ``simcse``: unsupervised SimCSE, each sentence twice with dropout on, InfoNCE with τ = 0.05 (Gao et al. 2021).
- ``pairs``: supervised InfoNCE over (anchor, positive[, hard negative]) rows with in-batch negatives.
- ``cosent``: CoSENT on the pair cosines, λ = 20 (Su, kexue.fm/archives/8847); labels 0/1 or graded.
- ``mse``: MSE of the cosine against label / max_label, the Sentence-BERT regression baseline.
- ``cosent-mse``: CoSENT + `mse_weight` · MSE on the same cosines (the ranking loss anchored to the label scale).
- ``angle``: AnglE (Li & Li 2023): CoSENT + in-batch negatives + the angle ranking term, see
  :mod:`semspace.train.losses.angle`.

Options: R-Drop (α > 0: every batch twice, mean task loss + α · symmetric KL of the two passes' softmax rows),
exact gradient-cached large batches (`chunk_size` examples per forward pass, see :mod:`semspace.train.cached`),
LoRA through peft (`lora_rank` > 0), a dev STS set evaluated every `eval_steps` with the best checkpoint exported,
and resumption from the last checkpoint after an interruption.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from semspace._deps import require
from semspace.data.sts import STSPairs
from semspace.encode.backends import HFBackend
from semspace.encode.pooling import Pooling, pool
from semspace.encode.st_format import ST_POOLING_MODES
from semspace.errors import InvalidParameterError, check_param
from semspace.metrics import spearman
from semspace.train.cached import cached_backward, chunked_backward
from semspace.train.checkpoint import export_model
from semspace.train.data import TrainingSet
from semspace.train.loop import TrainConfig, label_scale, run_training, seed_everything
from semspace.train.losses import (
    angle_loss,
    categorical_symmetric_kl,
    cosent_loss,
    cosine_mse_loss,
    info_nce_from_similarities,
    info_nce_similarities,
)
from semspace.train.model_card import write_model_card

logger = logging.getLogger(__name__)

OBJECTIVES = ("simcse", "pairs", "cosent", "mse", "cosent-mse", "angle")
FINAL_DIR = "final"  # train_encoder(keep_final=True) exports the final model here, inside the output folder
LABELLED_OBJECTIVES = ("cosent", "mse", "cosent-mse", "angle")


@dataclass
class EncoderTrainConfig(TrainConfig):
    """Hyper-parameters of :func:`train_encoder`; defaults follow the published recipes (SimCSE: Gao et al. 2021;
    CoSENT: kexue.fm 8847). The shared knobs (epochs, batch_size, lr, warmup_ratio, weight_decay, max_length,
    cosent_scale, max_label, rdrop_alpha, seed, eval_steps, max_steps, device) are documented on
    :class:`~semspace.train.loop.TrainConfig`."""

    OBJECTIVES: ClassVar[tuple[str, ...]] = OBJECTIVES

    objective: str = "cosent"
    chunk_size: int | None = None  # examples per forward pass; < batch_size turns on the exact cached step
    pooling: str | None = None  # None: the model's own (mean for the bundled MiniLM)
    temperature: float = 0.05
    symmetric: bool = False  # pairs: also the positive → anchor direction
    dropout: float | None = None  # None keeps the model's; SimCSE's Chinese recipe uses 0.3
    lora_rank: int = 0  # 0: full fine-tuning
    lora_alpha: float = 16.0
    mse_weight: float = 20.0  # cosent-mse: the MSE term's weight (20 ≈ CoSENT's λ, so both pull the cosines alike)
    ibn_weight: float = 1.0  # angle: w_ibn of the in-batch negatives (their scale is 1 / temperature)
    angle_weight: float = 1.0  # angle: w_angle of the angle term
    angle_scale: float = 1.0  # angle: τ_angle (the paper's 1; sentence-transformers' AnglELoss uses 20)

    def validate(self) -> None:
        super().validate()
        owner = "EncoderTrainConfig"
        value = self.chunk_size
        check_param(
            "chunk_size", owner, value is None or (isinstance(value, int) and value >= 1), "None or >= 1", value
        )
        check_param("batch_size", owner, self.batch_size >= 2, "at least 2 (in-batch comparisons)", self.batch_size)
        check_param("temperature", owner, self.temperature > 0, "> 0", self.temperature)
        check_param("dropout", owner, self.dropout is None or 0 <= self.dropout < 1, "None or in [0, 1)", self.dropout)
        check_param("lora_rank", owner, self.lora_rank >= 0, "an int >= 0", self.lora_rank)
        for name in ("mse_weight", "ibn_weight", "angle_weight"):
            check_param(name, owner, getattr(self, name) >= 0, ">= 0", getattr(self, name))
        check_param("angle_scale", owner, self.angle_scale > 0, "> 0", self.angle_scale)


def check_training_set(objective: str, data: TrainingSet) -> None:
    width = len(data.columns)
    if objective == "simcse" and width != 1:
        raise InvalidParameterError(f"simcse trains on single sentences; got {width} columns.")
    if objective == "pairs" and width not in (2, 3):
        raise InvalidParameterError(f"pairs needs (anchor, positive[, negative]) rows; got {width} columns.")
    if objective in LABELLED_OBJECTIVES and (width != 2 or data.labels is None):
        raise InvalidParameterError(f"{objective} needs labelled pairs (sentence1, sentence2, label).")


class _Step:
    """One batch → texts for the encoder and the loss on their embeddings (a pure function of the embeddings)."""

    def __init__(self, config: EncoderTrainConfig, data: TrainingSet) -> None:
        self.config = config
        self.data = data
        self.max_label = label_scale(config, data.labels)
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
        u, v = h[:n], h[n:]
        cosines = F.cosine_similarity(u, v, dim=-1)
        if config.objective == "cosent":
            loss = cosent_loss(cosines, labels, config.cosent_scale)
        elif config.objective == "mse":
            loss = cosine_mse_loss(cosines, labels, self.max_label)
        elif config.objective == "cosent-mse":
            loss = cosent_loss(cosines, labels, config.cosent_scale)
            loss = loss + config.mse_weight * cosine_mse_loss(cosines, labels, self.max_label)
        else:
            weights = (1.0, config.ibn_weight, config.angle_weight)
            scales = (config.cosent_scale, 1 / config.temperature, config.angle_scale)
            loss = angle_loss(u, v, labels, self.max_label, weights, scales)
        return loss, cosines[None, :] * config.cosent_scale


def train_encoder(
    train: TrainingSet | STSPairs,
    output_dir: str | Path,
    config: EncoderTrainConfig | None = None,
    init: Any = None,
    dev: STSPairs | None = None,
    resume: bool = True,
    on_step: Callable[[int, float], None] | None = None,
    data_name: str | None = None,
    keep_final: bool = False,
) -> dict:
    """Train, export the best-dev (or, without dev, the final) model to `output_dir`; returns the history.

    With `keep_final`, the final model is also exported to `output_dir/final` (to score final next to best-dev).

    `init` is anything :class:`~semspace.encode.Encoder` accepts for a Hugging Face model (None: the bundled
    MiniLM). With `resume`, a run whose `output_dir` holds a checkpoint continues from it. `on_step(step, loss)` is
    called after every optimizer step. The exported folder is a sentence-transformers model (keeping the starting
    model's Normalize and prompts) with a model card README.md naming the training data (`data_name`, e.g. the
    file it came from) and results.
    """
    config = config or EncoderTrainConfig()
    config.validate()
    data = TrainingSet.from_pairs(train) if isinstance(train, STSPairs) else train
    check_training_set(config.objective, data)
    output_dir = Path(output_dir)
    seed_everything(config.seed)
    backend = HFBackend(init, None, config.device)
    # Training truncates at config.max_length; the exported model keeps the starting model's inference length.
    tokenizer, inference_length = backend.tokenizer, backend.max_length
    pooling = Pooling.resolve(config.pooling, backend.default_pooling)
    if pooling not in ST_POOLING_MODES:
        raise InvalidParameterError(f"Training supports the poolings mean and cls; got {pooling.value!r}.")
    model = _prepare_model(backend.model, config)
    step = _Step(config, data)

    # The model's default prompt (e5's "query: ") is part of every text it sees at inference: train and select with it.
    prefix = backend.prompts.get(backend.default_prompt_name, "") if backend.default_prompt_name else ""
    embed = _embedder(model, tokenizer, pooling, config, prefix)

    def step_fn(index: np.ndarray) -> torch.Tensor:
        texts = step.texts(index)
        loss_fn = lambda h: step.loss(h, index)  # noqa: E731
        if config.chunk_size is not None and config.chunk_size < len(index):
            per_example = len(texts) // len(index)
            return cached_backward(embed, texts, loss_fn, config.chunk_size * per_example)
        return chunked_backward(embed, texts, loss_fn, None)

    history = run_training(
        model,
        config,
        len(data),
        step_fn,
        output_dir,
        export=_exporter(model, backend, pooling, inference_length, output_dir),
        export_final=_exporter(model, backend, pooling, inference_length, output_dir / FINAL_DIR)
        if keep_final
        else None,
        dev_score=None if dev is None else lambda: dev_spearman(model, embed, dev),
        evaluate_start=True,  # the starting model competes too, so training never exports something worse on dev
        resume=resume,
        on_step=on_step,
    )
    write_model_card(
        output_dir,
        history,
        base_model=backend.model_id,
        pooling=pooling,
        normalize=backend.st_normalize,
        dim=backend.dim,
        max_length=inference_length,
        data=data,
        dev=dev,
        data_name=data_name,
    )
    return history


def _embedder(
    model: torch.nn.Module, tokenizer: Any, pooling: Pooling, config: EncoderTrainConfig, prefix: str
) -> Callable[[list[str]], torch.Tensor]:
    """texts → pooled embeddings (with gradients) of `model`, each text after `prefix` and cut at the training
    length."""

    def embed(texts: list[str]) -> torch.Tensor:
        if prefix:
            texts = [prefix + text for text in texts]
        batch = tokenizer(texts, padding=True, truncation=True, max_length=config.max_length, return_tensors="pt")
        batch = batch.to(config.device)
        hidden = model(**batch).last_hidden_state
        return pool(pooling, (hidden,), batch["attention_mask"], None)

    return embed


def _exporter(
    model: torch.nn.Module, backend: HFBackend, pooling: Pooling, max_length: int, folder: Path
) -> Callable[[], None]:
    """A call that exports the model being trained to `folder`, with the starting model's tokenizer, inference
    length (`max_length`), Normalize and prompts (a sentence-transformers start model keeps them)."""
    st_settings = {
        "normalize": backend.st_normalize,
        "prompts": backend.prompts,
        "default_prompt_name": backend.default_prompt_name,
    }
    tokenizer = backend.tokenizer
    return lambda: export_model(model, tokenizer, pooling, max_length, folder, **st_settings)


def _prepare_model(model: torch.nn.Module, config: EncoderTrainConfig) -> torch.nn.Module:
    if config.dropout is not None:
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = config.dropout
    if config.lora_rank > 0:
        peft = require("peft", "train", "LoRA")
        lora = peft.LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.1)
        try:
            model = peft.get_peft_model(model, lora)
        except ValueError as exc:
            raise InvalidParameterError(f"LoRA cannot wrap this model: {exc}") from None
    return model.to(config.device)


def dev_spearman(model: torch.nn.Module, embed: Callable[[list[str]], torch.Tensor], dev: STSPairs) -> float:
    """Spearman × 1 of the pair cosines on a dev STS set, with dropout off (the model goes back to train mode).

    Each distinct sentence is embedded once, in batches of similar length (less padding)."""
    texts = list(dict.fromkeys([*dev.sentences1, *dev.sentences2]))
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    model.eval()
    try:
        with torch.no_grad():
            parts = [embed([texts[i] for i in order[j : j + 128]]) for j in range(0, len(order), 128)]
    finally:
        model.train()
    vectors = torch.empty_like(parts[0][:0]).new_empty((len(texts), parts[0].shape[-1]))
    vectors[torch.as_tensor(order)] = torch.cat(parts)
    row = {text: i for i, text in enumerate(texts)}
    u = vectors[[row[t] for t in dev.sentences1]]
    v = vectors[[row[t] for t in dev.sentences2]]
    cosines = F.cosine_similarity(u, v, dim=-1).double().cpu().numpy()
    return spearman(cosines, dev.scores)
