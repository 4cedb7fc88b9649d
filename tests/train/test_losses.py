"""Each loss against a direct, slow reference computation on small tensors (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from semspace.train.losses import (
    angle_in_batch_negatives,
    angle_loss,
    angle_ranking_loss,
    angle_similarity,
    categorical_symmetric_kl,
    cosent_loss,
    cosine_mse_loss,
    info_nce_loss,
)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / math.sqrt((a @ a) * (b @ b)))


def slow_info_nce(q, k, negatives, tau, symmetric):
    candidates = list(k) + ([] if negatives is None else list(negatives))
    total = 0.0
    for i, qi in enumerate(q):
        logits = [_cos(qi, c) / tau for c in candidates]
        total += -(logits[i] - math.log(sum(math.exp(x) for x in logits)))
    loss = total / len(q)
    if symmetric:
        back = 0.0
        for i, ki in enumerate(k):
            logits = [_cos(ki, qj) / tau for qj in q]
            back += -(logits[i] - math.log(sum(math.exp(x) for x in logits)))
        loss = (loss + back / len(k)) / 2
    return loss


@pytest.mark.parametrize("with_negatives", [False, True])
@pytest.mark.parametrize("symmetric", [False, True])
def test_info_nce_matches_slow_reference(with_negatives, symmetric):
    rng = np.random.default_rng(0)
    q, k, neg = rng.normal(size=(5, 7)), rng.normal(size=(5, 7)), rng.normal(size=(3, 7))
    negatives = neg if with_negatives else None
    fast = info_nce_loss(
        torch.tensor(q), torch.tensor(k), None if negatives is None else torch.tensor(neg), 0.1, symmetric
    )
    assert fast.item() == pytest.approx(slow_info_nce(q, k, negatives, 0.1, symmetric), rel=1e-10)


def test_info_nce_default_temperature_is_simcse():
    x = torch.eye(4, dtype=torch.float64)
    # Identical views: each row's positive has cos 1, negatives cos 0 → log(1 + 3 e^{-20}) with τ = 0.05.
    assert info_nce_loss(x, x).item() == pytest.approx(math.log(1 + 3 * math.exp(-20)), rel=1e-9)


def slow_cosent(scores, labels, scale):
    total = 0.0
    for i in range(len(scores)):
        for j in range(len(scores)):
            if labels[i] > labels[j]:
                total += math.exp(scale * (scores[j] - scores[i]))
    return math.log(1 + total)


@pytest.mark.parametrize("labels", [[1, 0, 1, 0, 1, 1], [5.0, 3.2, 0.0, 4.8, 3.2, 1.0]])
def test_cosent_matches_slow_reference(labels):
    scores = np.random.default_rng(1).uniform(-1, 1, size=len(labels))
    fast = cosent_loss(torch.tensor(scores), torch.tensor(labels, dtype=torch.float64), 20.0)
    assert fast.item() == pytest.approx(slow_cosent(scores, labels, 20.0), rel=1e-10)


def test_cosent_is_stable_for_large_scale():
    loss = cosent_loss(torch.tensor([-1.0, 1.0]), torch.tensor([1.0, 0.0]), scale=1000.0)
    assert torch.isfinite(loss) and loss.item() == pytest.approx(2000.0)


def test_categorical_symmetric_kl_matches_slow_reference():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    expected = 0.0
    for row_a, row_b in zip(a, b, strict=True):
        p = np.exp(row_a) / np.exp(row_a).sum()
        q = np.exp(row_b) / np.exp(row_b).sum()
        expected += (sum(p * np.log(p / q)) + sum(q * np.log(q / p))) / 2
    fast = categorical_symmetric_kl(torch.tensor(a), torch.tensor(b))
    assert fast.item() == pytest.approx(expected / 3, rel=1e-10)
    assert categorical_symmetric_kl(torch.tensor(a), torch.tensor(a)).item() == pytest.approx(0.0, abs=1e-12)


def test_cosine_mse_scales_labels():
    cos = torch.tensor([1.0, 0.0, 0.5], dtype=torch.float64)
    labels = torch.tensor([5.0, 0.0, 5.0], dtype=torch.float64)
    assert cosine_mse_loss(cos, labels, 5.0).item() == pytest.approx(0.25 / 3)


def slow_angle_similarity(x: np.ndarray, y: np.ndarray) -> float:
    """The reference code's complex division written out: z = a + ib, w = c + id, Σ Re + Σ Im of z·w̄ / (‖z‖‖w‖)."""
    half = len(x) // 2
    z = x[:half] + 1j * x[half:]
    w = y[:half] + 1j * y[half:]
    quotient = z * np.conj(w) / (np.linalg.norm(x) * np.linalg.norm(y))
    return abs(quotient.real.sum() + quotient.imag.sum())


def test_angle_similarity_matches_slow_reference():
    rng = np.random.default_rng(3)
    u, v = rng.normal(size=(6, 8)), rng.normal(size=(6, 8))
    fast = angle_similarity(torch.tensor(u), torch.tensor(v)).numpy()
    assert np.allclose(fast, [slow_angle_similarity(a, b) for a, b in zip(u, v, strict=True)], rtol=1e-12)
    # An odd dimension is padded with a zero coordinate.
    odd = angle_similarity(torch.tensor(u[:, :7]), torch.tensor(v[:, :7])).numpy()
    padded = np.pad(u[:, :7], ((0, 0), (0, 1))), np.pad(v[:, :7], ((0, 0), (0, 1)))
    assert np.allclose(odd, [slow_angle_similarity(a, b) for a, b in zip(*padded, strict=True)], rtol=1e-12)


def slow_in_batch_negatives(u, v, positive, scale):
    h = [x / np.linalg.norm(x) for x in [*u, *v]]
    n, total = len(u), 0.0
    for i in range(2 * n):
        if not positive[i % n]:
            continue
        logits = [scale * float(h[i] @ h[j]) for j in range(2 * n) if j != i]
        partner = (i + n) % (2 * n)
        target = scale * float(h[i] @ h[partner])
        total += -(target - math.log(sum(math.exp(x) for x in logits)))
    return total / (2 * n)


def test_angle_in_batch_negatives_matches_slow_reference():
    rng = np.random.default_rng(4)
    u, v = rng.normal(size=(5, 6)), rng.normal(size=(5, 6))
    positive = np.array([True, False, True, True, False])
    fast = angle_in_batch_negatives(torch.tensor(u), torch.tensor(v), torch.tensor(positive), 20.0)
    assert fast.item() == pytest.approx(slow_in_batch_negatives(u, v, positive, 20.0), rel=1e-10)


def test_angle_loss_is_the_weighted_sum_of_its_three_terms():
    rng = np.random.default_rng(5)
    u, v = torch.tensor(rng.normal(size=(6, 8))), torch.tensor(rng.normal(size=(6, 8)))
    labels = torch.tensor([5.0, 0.5, 3.0, 1.0, 4.2, 0.0], dtype=torch.float64)
    cos = torch.nn.functional.cosine_similarity(u, v, dim=-1)
    positive = labels / 5.0 >= 0.2  # the reference's int(label) != 0 on a 0-5 scale
    expected = (
        0.5 * cosent_loss(cos, labels, 20.0)
        + 2.0 * angle_in_batch_negatives(u, v, positive, 10.0)
        + 3.0 * angle_ranking_loss(u, v, labels, 1.5)
    )
    fast = angle_loss(u, v, labels, 5.0, weights=(0.5, 2.0, 3.0), scales=(20.0, 10.0, 1.5))
    assert fast.item() == pytest.approx(expected.item(), rel=1e-12)
    only_cosent = angle_loss(u, v, labels, 5.0, weights=(1.0, 0.0, 0.0))
    assert only_cosent.item() == pytest.approx(cosent_loss(cos, labels, 20.0).item(), rel=1e-12)


@pytest.mark.parametrize("scale", [1.0, 20.0])
def test_angle_term_equals_sentence_transformers_angle_loss(scale):
    """Our L_angle on random embeddings equals sentence-transformers' AnglELoss (loss and gradients)."""
    st_losses = pytest.importorskip("sentence_transformers.losses")
    rng = np.random.default_rng(6)
    u = torch.tensor(rng.normal(size=(16, 12)), requires_grad=True)
    v = torch.tensor(rng.normal(size=(16, 12)), requires_grad=True)
    labels = torch.tensor(rng.uniform(0, 5, 16))
    ours = angle_ranking_loss(u, v, labels, scale)
    (ours_u, ours_v) = torch.autograd.grad(ours, (u, v))
    theirs = st_losses.AnglELoss(None, scale=scale).compute_loss_from_embeddings([u, v], labels)
    (theirs_u, theirs_v) = torch.autograd.grad(theirs, (u, v))
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-9)
    assert torch.allclose(ours_u, theirs_u, rtol=1e-7, atol=1e-10) and torch.allclose(ours_v, theirs_v, rtol=1e-7)
