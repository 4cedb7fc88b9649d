"""AnglE (Li & Li 2023, "AnglE-optimized Text Embeddings", arXiv 2309.12871; ACL 2024 as "AoE: Angle-optimized
Embeddings for Semantic Textual Similarity"): CoSENT's successor for labelled pairs,

    loss = w_cos · L_cos + w_ibn · L_ibn + w_angle · L_angle

- L_cos: CoSENT on the pair cosines with scale τ_cos = 20 (:func:`~semspace.train.losses.cosent.cosent_loss`);
- L_ibn: in-batch negatives: every sentence of a positive pair must pick its partner among the other 2n − 1
  sentences of the batch (both columns), softmax over cos · τ_ibn with τ_ibn = 20; a pair is positive when its label
  is at least `positive_threshold` of the largest label (the reference code casts labels to int and treats every
  non-zero label as positive, i.e. label >= 1 on STS-B's 0-5 scale = 0.2 of the maximum). Rows of non-positive
  pairs contribute 0 but count in the mean, as in the reference;
- L_angle: CoSENT's ranking form on the "angle" score of :func:`angle_similarity` with scale τ_angle.

Weights and scales: the paper's and its first public code's w_cos = w_ibn = w_angle = 1, τ_cos = τ_ibn = 20,
τ_angle = 1 (github.com/SeanLee97/AnglE, angle.py at the paper's release; later releases default to other weights).
sentence-transformers' ``AnglELoss`` is L_angle alone with scale 20; :func:`angle_ranking_loss` equals it (tested).

The angle score splits each vector into a real and an imaginary half, z = a + ib, w = c + id, and takes the
conjugate product normalised by the global norms, as the reference code does:

    s(z, w) = | Σ_k (a_k c_k + b_k d_k) + Σ_k (b_k c_k − a_k d_k) | / (‖z‖ ‖w‖) = | cos(z, w) + Im-part |

It is not a geometric angle (see sentence-transformers issue #3368); its ranking is what the loss optimises.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from semspace.train.losses.cosent import cosent_loss

# The paper's weights (w_cos, w_ibn, w_angle) and scales (τ_cos, τ_ibn, τ_angle).
ANGLE_WEIGHTS = (1.0, 1.0, 1.0)
ANGLE_SCALES = (20.0, 20.0, 1.0)
POSITIVE_THRESHOLD = 0.2


def angle_similarity(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The AnglE pair score (n,) of rows u (n, d) and v (n, d) (an odd d is padded with a zero)."""
    if u.shape[-1] % 2:
        u, v = F.pad(u, (0, 1)), F.pad(v, (0, 1))
    a, b = u.chunk(2, dim=-1)
    c, d = v.chunk(2, dim=-1)
    real = (a * c + b * d).sum(dim=-1)
    imaginary = (b * c - a * d).sum(dim=-1)
    return (real + imaginary).abs() / (u.norm(dim=-1) * v.norm(dim=-1))


def angle_ranking_loss(u: torch.Tensor, v: torch.Tensor, labels: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """L_angle: CoSENT's log(1 + Σ_{label_i > label_j} exp(scale (s_j − s_i))) on :func:`angle_similarity`."""
    return cosent_loss(angle_similarity(u, v), labels, scale)


def angle_in_batch_negatives(
    u: torch.Tensor, v: torch.Tensor, positive: torch.Tensor, scale: float = 20.0
) -> torch.Tensor:
    """L_ibn: mean over the 2n sentences [u; v] of −log softmax(scale · cos)[partner], the sentence itself masked out,
    counting only rows whose pair is `positive` (n,) bool (the others add 0 to the sum, as in the reference)."""
    n = len(u)
    h = F.normalize(torch.cat([u, v]), dim=-1)
    logits = (h @ h.T) * scale
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=h.device), float("-inf"))
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(h.device)
    rows = -F.log_softmax(logits, dim=-1).gather(1, partner[:, None]).squeeze(1)
    return (rows * torch.cat([positive, positive]).to(rows.dtype)).sum() / (2 * n)


def angle_loss(
    u: torch.Tensor,
    v: torch.Tensor,
    labels: torch.Tensor,
    max_label: float = 1.0,
    weights: tuple[float, float, float] = ANGLE_WEIGHTS,
    scales: tuple[float, float, float] = ANGLE_SCALES,
    positive_threshold: float = POSITIVE_THRESHOLD,
) -> torch.Tensor:
    """The AnglE objective on the embeddings u (n, d), v (n, d) of n labelled pairs (labels (n,), graded or 0/1).

    >>> u = torch.eye(4)
    >>> bool(angle_loss(u, u, torch.tensor([1.0, 1, 0, 0])) < angle_loss(u, u.roll(1, 0), torch.tensor([1.0, 1, 0, 0])))
    True
    """
    labels = labels.reshape(-1).to(u.dtype)
    w_cos, w_ibn, w_angle = weights
    tau_cos, tau_ibn, tau_angle = scales
    loss = u.new_zeros(())
    if w_cos:
        loss = loss + w_cos * cosent_loss(F.cosine_similarity(u, v, dim=-1), labels, tau_cos)
    if w_ibn:
        positive = labels / max_label >= positive_threshold
        loss = loss + w_ibn * angle_in_batch_negatives(u, v, positive, tau_ibn)
    if w_angle:
        loss = loss + w_angle * angle_ranking_loss(u, v, labels, tau_angle)
    return loss
