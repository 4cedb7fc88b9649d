"""Losses on scores (cosines for bi-encoders, logits for cross-encoders).

- CoSENT (Su Jianlin, kexue.fm 8847; for cross-encoders 9341): log(1 + Σ_{label(i,j) > label(k,l)}
  exp(λ(s_kl − s_ij))), computed as logsumexp over {0} ∪ the masked differences. λ = 20 for cosines in [−1, 1].
- R-Drop (kexue.fm 8496, Liang et al. 2021): the symmetric KL between two dropout passes' output distributions,
  here Bernoulli(sigmoid(score)) for a 1-output regressor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cosent_loss(scores: torch.Tensor, labels: torch.Tensor, scale: float = 20.0) -> torch.Tensor:
    """CoSENT over one batch of pair scores (n,) and labels (n,) (0/1 or graded, e.g. 0-5).

    >>> cosent_loss(torch.tensor([0.9, 0.1]), torch.tensor([1.0, 0.0])) < cosent_loss(
    ...     torch.tensor([0.1, 0.9]), torch.tensor([1.0, 0.0]))
    tensor(True)
    """
    scores = scores.reshape(-1) * scale
    labels = labels.reshape(-1)
    # differences[i, j] = s_j − s_i, kept where label_i > label_j (pair i should score higher than pair j).
    differences = scores[None, :] - scores[:, None]
    mask = labels[:, None] > labels[None, :]
    differences = differences.masked_fill(~mask, float("-inf")).reshape(-1)
    zero = torch.zeros(1, dtype=scores.dtype, device=scores.device)
    return torch.logsumexp(torch.cat([zero, differences]), dim=0)


def bernoulli_symmetric_kl(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """(KL(P_a‖P_b) + KL(P_b‖P_a)) / 2 for P = Bernoulli(sigmoid(logit)), averaged over the batch."""
    log_p_a, log_q_a = F.logsigmoid(logits_a), F.logsigmoid(-logits_a)
    log_p_b, log_q_b = F.logsigmoid(logits_b), F.logsigmoid(-logits_b)
    p_a, p_b = log_p_a.exp(), log_p_b.exp()
    kl_ab = p_a * (log_p_a - log_p_b) + (1 - p_a) * (log_q_a - log_q_b)
    kl_ba = p_b * (log_p_b - log_p_a) + (1 - p_b) * (log_q_b - log_q_a)
    return ((kl_ab + kl_ba) / 2).mean()
