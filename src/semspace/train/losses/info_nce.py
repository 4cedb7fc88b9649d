"""InfoNCE with in-batch negatives: SimCSE (Gao et al. 2021, "SimCSE: Simple Contrastive Learning of Sentence
Embeddings"; kexue.fm/archives/8348) and supervised pairs (MultipleNegativesRankingLoss in sentence-transformers).

    loss = −(1/n) Σ_i log( exp(cos(q_i, k_i)/τ) / Σ_j exp(cos(q_i, c_j)/τ) )

where the candidates c are the n keys of the batch followed by the optional hard negatives. Unsupervised SimCSE passes
the same sentences twice with dropout on (the two dropout views are each other's positive); supervised pairs pass
(anchor, positive[, hard negative]). τ = 0.05 as in the SimCSE paper.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce_similarities(
    queries: torch.Tensor, keys: torch.Tensor, hard_negatives: torch.Tensor | None = None, temperature: float = 0.05
) -> torch.Tensor:
    """The (n, n + m) matrix cos(q_i, c_j) / τ over candidates c = keys ++ hard_negatives; the target of row i is i."""
    candidates = keys if hard_negatives is None else torch.cat([keys, hard_negatives])
    return F.normalize(queries, dim=-1) @ F.normalize(candidates, dim=-1).T / temperature


def info_nce_loss(
    queries: torch.Tensor,
    keys: torch.Tensor,
    hard_negatives: torch.Tensor | None = None,
    temperature: float = 0.05,
    symmetric: bool = False,
) -> torch.Tensor:
    """Mean InfoNCE of queries (n, d) against keys (n, d) and hard negatives (m, d); row i's positive is key i.

    `symmetric` also averages in the keys → queries direction (hard negatives then only serve the first direction).

    >>> x = torch.eye(3)
    >>> bool(info_nce_loss(x, x) < info_nce_loss(x, x.roll(1, dims=0)))
    True
    """
    return info_nce_from_similarities(info_nce_similarities(queries, keys, hard_negatives, temperature), symmetric)


def info_nce_from_similarities(similarities: torch.Tensor, symmetric: bool = False) -> torch.Tensor:
    """InfoNCE on an (n, n + m) similarity matrix whose row i has its positive in column i."""
    n = len(similarities)
    target = torch.arange(n, device=similarities.device)
    loss = F.cross_entropy(similarities, target)
    if symmetric:
        loss = (loss + F.cross_entropy(similarities[:, :n].T, target)) / 2
    return loss
