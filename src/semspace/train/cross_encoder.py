"""Train a cross-encoder from the bundled all-MiniLM-L6-v2 weights (or any HF encoder folder) on labelled pairs.

Losses on the CE score: `bce` (BCE-with-logits on label / max_label, as sentence-transformers' CrossEncoder),
`mse` (MSE of sigmoid(score) vs label / max_label), `cosent` (CoSENT on the raw score, λ = 1 by default for
logits); optional R-Drop (α > 0: two dropout passes, α/2 · symmetric KL). The best-dev checkpoint (dev Spearman) is
saved in Hugging Face format.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from semspace.data.sts import STSPairs
from semspace.errors import check_param
from semspace.interact.cross_encoder import CrossEncoder
from semspace.metrics import spearman
from semspace.train.losses import bernoulli_symmetric_kl, cosent_loss

logger = logging.getLogger(__name__)


@dataclass
class CrossEncoderTrainConfig:
    loss: str = "bce"
    epochs: int = 2
    batch_size: int = 16
    lr: float = 2e-5
    warmup_ratio: float = 0.1
    rdrop_alpha: float = 0.0
    cosent_scale: float = 1.0
    max_length: int = 128
    max_label: float | None = None
    seed: int = 0
    eval_every: int | None = None  # steps; None = once per epoch


def train_cross_encoder(
    train: STSPairs,
    dev: STSPairs,
    output_dir: str | Path,
    config: CrossEncoderTrainConfig | None = None,
    init: str | Path | None = None,
) -> dict:
    """Train and save the best-dev checkpoint to `output_dir`; returns a history dict (also saved as JSON)."""
    config = config or CrossEncoderTrainConfig()
    check_param(
        "loss", "train_cross_encoder", config.loss in ("bce", "mse", "cosent"), "'bce', 'mse' or 'cosent'", config.loss
    )
    torch.manual_seed(config.seed)
    ce = CrossEncoder(init, max_length=config.max_length)
    model = ce.model
    max_label = config.max_label or float(max(train.scores.max(), 1.0))
    pairs = list(zip(train.sentences1, train.sentences2, strict=True))
    labels = torch.tensor(train.scores / max_label, dtype=torch.float32)
    steps_per_epoch = math.ceil(len(pairs) / config.batch_size)
    total = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
    warmup = max(1, int(config.warmup_ratio * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * max(0.0, (total - step) / max(1, total - warmup))
    )
    dev_pairs = list(zip(dev.sentences1, dev.sentences2, strict=True))
    eval_every = config.eval_every or steps_per_epoch
    history: dict = {"config": asdict(config), "evals": [], "best_dev_spearman": -1.0}
    rng = np.random.default_rng(config.seed)
    step = 0
    started = time.perf_counter()

    def evaluate() -> None:
        score = spearman(ce.predict(dev_pairs, show_progress_bar=False), dev.scores)
        history["evals"].append({"step": step, "dev_spearman": score})
        logger.info("step %d dev Spearman %.4f", step, score)
        if score > history["best_dev_spearman"]:
            history["best_dev_spearman"], history["best_step"] = score, step
            ce.save(output_dir)
        model.train()

    model.train()
    for _epoch in range(config.epochs):
        order = rng.permutation(len(pairs))
        for start in tqdm(range(0, len(pairs), config.batch_size), desc=f"epoch {_epoch + 1}", unit="batch"):
            index = order[start : start + config.batch_size]
            batch = ce.tokenize([pairs[i][:2] for i in index])
            target = labels[index]
            logits = model(**batch).logits[:, 0]
            loss = _task_loss(logits, target, config)
            if config.rdrop_alpha > 0:
                logits_2 = model(**batch).logits[:, 0]
                # R-Drop: mean task loss of both passes + (α/2)(KL(P²‖P¹) + KL(P¹‖P²)) = α · symmetric mean.
                symmetric = bernoulli_symmetric_kl(logits, logits_2)
                loss = (loss + _task_loss(logits_2, target, config)) / 2 + config.rdrop_alpha * symmetric
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            if step % eval_every == 0:
                evaluate()
    if step % eval_every:
        evaluate()
    history["train_seconds"] = time.perf_counter() - started
    history["max_label"] = max_label
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    (Path(output_dir) / "semspace_training.json").write_text(json.dumps(history, indent=2), encoding="utf-8")
    return history


def _task_loss(logits: torch.Tensor, target: torch.Tensor, config: CrossEncoderTrainConfig) -> torch.Tensor:
    if config.loss == "bce":
        return F.binary_cross_entropy_with_logits(logits, target)
    if config.loss == "mse":
        return F.mse_loss(torch.sigmoid(logits), target)
    return cosent_loss(logits, target, config.cosent_scale)
