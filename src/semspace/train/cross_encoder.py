"""Train a cross-encoder from the bundled all-MiniLM-L6-v2 weights (or any HF encoder folder) on labelled pairs.

Objectives on the CE score: `bce` (BCE-with-logits on label / max_label, as sentence-transformers' CrossEncoder),
`mse` (MSE of sigmoid(score) vs label / max_label), `cosent` (CoSENT on the raw score, λ = 1 by default for
logits); optional R-Drop (α > 0: two dropout passes, α/2 · symmetric KL; Liang et al. 2021); optional
both-orders augmentation (every (a, b) pair is also trained as (b, a) with the same label, since a CE reads its two
texts asymmetrically while a similarity label is symmetric). The best-dev
checkpoint (dev Spearman) is saved in Hugging Face format. The loop is :func:`semspace.train.loop.run_training`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from semspace.data.sts import STSPairs
from semspace.errors import check_param
from semspace.interact.cross_encoder import CrossEncoder
from semspace.metrics import spearman
from semspace.train.loop import TrainConfig, label_scale, run_training, seed_everything
from semspace.train.losses import bernoulli_symmetric_kl, cosent_loss

logger = logging.getLogger(__name__)

CROSS_ENCODER_OBJECTIVES = ("bce", "mse", "cosent")


@dataclass
class CrossEncoderTrainConfig(TrainConfig):
    """Hyper-parameters of :func:`train_cross_encoder`: the shared knobs of
    :class:`~semspace.train.loop.TrainConfig` with the cross-encoder recipe's defaults (2 epochs of 16 pairs, 128
    tokens for the pair, CoSENT λ = 1 on logits)."""

    OBJECTIVES: ClassVar[tuple[str, ...]] = CROSS_ENCODER_OBJECTIVES

    objective: str = "bce"
    epochs: int = 2
    batch_size: int = 16
    max_length: int = 128
    cosent_scale: float = 1.0
    both_orders: bool = False  # also train every pair as (b, a): doubles the examples of an epoch

    def validate(self) -> None:
        super().validate()
        both = self.both_orders
        check_param("both_orders", type(self).__name__, isinstance(both, bool), "True or False", both)


def train_cross_encoder(
    train: STSPairs,
    dev: STSPairs,
    output_dir: str | Path,
    config: CrossEncoderTrainConfig | None = None,
    init: str | Path | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> dict:
    """Train and save the best-dev checkpoint to `output_dir`; returns a history dict (also saved as JSON).

    `on_step(step, loss)` is called after every optimizer step. No resumable checkpoints are written (the output
    folder holds only the model and its history).
    """
    config = config or CrossEncoderTrainConfig()
    config.validate()
    seed_everything(config.seed)
    ce = CrossEncoder(init, max_length=config.max_length, device=config.device)
    model = ce.model
    max_label = label_scale(config, np.asarray(train.scores))
    pairs = list(zip(train.sentences1, train.sentences2, strict=True))
    scores = np.asarray(train.scores, dtype=np.float64) / max_label
    if config.both_orders:
        pairs += [(b, a) for a, b in pairs]
        scores = np.concatenate([scores, scores])
    labels = torch.tensor(scores, dtype=torch.float32, device=config.device)
    dev_pairs = list(zip(dev.sentences1, dev.sentences2, strict=True))
    # One generator drawing a permutation per epoch, as this trainer always shuffled (same batches for the same seed).
    rng, orders = np.random.default_rng(config.seed), []

    def order(epoch: int) -> np.ndarray:
        while len(orders) <= epoch:
            orders.append(rng.permutation(len(pairs)))
        return orders[epoch]

    def step_fn(index: np.ndarray) -> torch.Tensor:
        batch = ce.tokenize([pairs[i] for i in index])
        target = labels[index]
        logits = model(**batch).logits[:, 0]
        loss = _task_loss(logits, target, config)
        if config.rdrop_alpha > 0:
            logits_2 = model(**batch).logits[:, 0]
            # R-Drop: mean task loss of both passes + (α/2)(KL(P²‖P¹) + KL(P¹‖P²)) = α · symmetric mean.
            symmetric = bernoulli_symmetric_kl(logits, logits_2)
            loss = (loss + _task_loss(logits_2, target, config)) / 2 + config.rdrop_alpha * symmetric
        loss.backward()
        return loss.detach()

    return run_training(
        model,
        config,
        len(pairs),
        step_fn,
        Path(output_dir),
        export=lambda: ce.save(output_dir),
        dev_score=lambda: spearman(ce.predict(dev_pairs, show_progress_bar=False), dev.scores),
        order=order,
        history={"max_label": max_label},
        checkpoints=False,
        on_step=on_step,
    )


def _task_loss(logits: torch.Tensor, target: torch.Tensor, config: CrossEncoderTrainConfig) -> torch.Tensor:
    if config.objective == "bce":
        return F.binary_cross_entropy_with_logits(logits, target)
    if config.objective == "mse":
        return F.mse_loss(torch.sigmoid(logits), target)
    return cosent_loss(logits, target, config.cosent_scale)
