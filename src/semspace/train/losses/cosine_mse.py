"""Regression of the cosine on the gold score: mean (cos(u, v) − label / max_label)², the plain baseline of
Sentence-BERT's STS fine-tuning (Reimers & Gurevych 2019, CosineSimilarityLoss). CoSENT is compared against it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cosine_mse_loss(cosines: torch.Tensor, labels: torch.Tensor, max_label: float = 5.0) -> torch.Tensor:
    """MSE between pair cosines (n,) and labels (n,) scaled into [0, 1] by `max_label`."""
    return F.mse_loss(cosines.reshape(-1), labels.reshape(-1).to(cosines.dtype) / max_label)
