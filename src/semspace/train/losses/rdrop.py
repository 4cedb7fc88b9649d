"""R-Drop (Liang et al. 2021, "R-Drop: Regularized Dropout for Neural Networks"; kexue.fm/archives/8496).

Two dropout passes of the same inputs give two output distributions P¹, P²; the regulariser is
(α/2)(KL(P²‖P¹) + KL(P¹‖P²)). The functions here return the symmetric mean (KL(P¹‖P²) + KL(P²‖P¹)) / 2, so the
trainer adds `α · symmetric` to the mean task loss of both passes.

- `categorical_symmetric_kl`: P = softmax(logits) over the last axis, averaged over rows. Used for contrastive
  similarity rows (InfoNCE) and for λ·cos over a batch of pairs (CoSENT), whose softmax is the loss's own ranking.
- `bernoulli_symmetric_kl`: P = Bernoulli(sigmoid(logit)), for a 1-output regressor such as a cross-encoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def categorical_symmetric_kl(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """(KL(P_a‖P_b) + KL(P_b‖P_a)) / 2 with P = softmax over the last axis, averaged over the other axes."""
    log_a = F.log_softmax(logits_a, dim=-1)
    log_b = F.log_softmax(logits_b, dim=-1)
    kl_ab = (log_a.exp() * (log_a - log_b)).sum(dim=-1)
    kl_ba = (log_b.exp() * (log_b - log_a)).sum(dim=-1)
    return ((kl_ab + kl_ba) / 2).mean()


def bernoulli_symmetric_kl(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """(KL(P_a‖P_b) + KL(P_b‖P_a)) / 2 for P = Bernoulli(sigmoid(logit)), averaged over the batch."""
    log_p_a, log_q_a = F.logsigmoid(logits_a), F.logsigmoid(-logits_a)
    log_p_b, log_q_b = F.logsigmoid(logits_b), F.logsigmoid(-logits_b)
    p_a, p_b = log_p_a.exp(), log_p_b.exp()
    kl_ab = p_a * (log_p_a - log_p_b) + (1 - p_a) * (log_q_a - log_q_b)
    kl_ba = p_b * (log_p_b - log_p_a) + (1 - p_b) * (log_q_b - log_q_a)
    return ((kl_ab + kl_ba) / 2).mean()
