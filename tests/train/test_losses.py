"""Each loss against a direct, slow reference computation on small tensors (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from semspace.train.losses import (
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
