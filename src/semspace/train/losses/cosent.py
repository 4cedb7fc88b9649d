"""CoSENT (Su Jianlin, kexue.fm/archives/8847; for cross-encoders kexue.fm/archives/9341).

    loss = log(1 + Σ_{label(i,j) > label(k,l)} exp(λ (s_kl − s_ij)))

computed as logsumexp over {0} ∪ the masked score differences, so it is stable for any λ. `s` is the cosine of a
pair's two sentence vectors (bi-encoder, λ = 20) or a cross-encoder's logit (λ ≈ 1). Labels may be 0/1 or graded
(e.g. 0-5): only their order inside the batch matters.
"""

from __future__ import annotations

import torch


def cosent_loss(scores: torch.Tensor, labels: torch.Tensor, scale: float = 20.0) -> torch.Tensor:
    """CoSENT over one batch of pair scores (n,) and labels (n,).

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
