"""The gradient-cached step gives the full-batch gradient, dropout included; naive accumulation does not."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from semspace.encode.pooling import masked_mean
from semspace.train import cached_backward, chunked_backward
from semspace.train.cached import RandomState
from semspace.train.losses import info_nce_loss


@pytest.fixture
def simcse_setup(tiny_bert_dir):
    model = AutoModel.from_pretrained(tiny_bert_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)

    def embed(texts):
        batch = tokenizer(texts, padding=True, return_tensors="pt")
        return masked_mean(model(**batch).last_hidden_state, batch["attention_mask"])

    words = (tiny_bert_dir / "vocab.txt").read_text(encoding="utf-8").split()[5:]
    generator = torch.Generator().manual_seed(0)
    sentences = [
        " ".join(words[i] for i in torch.randint(len(words), (int(n),), generator=generator))
        for n in torch.randint(3, 9, (64,), generator=generator)
    ]
    texts = sentences + sentences  # SimCSE: two dropout views of each of the 64 sentences

    def loss_fn(h):
        return info_nce_loss(h[:64], h[64:])

    return model, embed, texts, loss_fn


def gradient(model, run) -> tuple[torch.Tensor, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    torch.manual_seed(123)
    loss = run()
    flat = torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])
    return flat, loss


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_cached_gradient_equals_full_batch_gradient_with_dropout(simcse_setup):
    model, embed, texts, loss_fn = simcse_setup
    model.train()  # dropout on
    # The full batch: every chunk's graph kept, one backward, the same dropout draws (same seed, same chunks).
    full, full_loss = gradient(model, lambda: chunked_backward(embed, texts, loss_fn, 16))
    # Batch of 64 pairs in chunks of 8 examples (16 sequences).
    cached, cached_loss = gradient(model, lambda: cached_backward(embed, texts, loss_fn, 16))
    assert cached_loss.item() == pytest.approx(full_loss.item(), rel=1e-6)
    assert relative_error(cached, full) <= 1e-5

    def naive():
        # Naive accumulation: each chunk's own InfoNCE (negatives only inside the chunk), gradients summed.
        total = 0.0
        for start in range(0, 64, 8):
            h = embed(texts[start : start + 8] + texts[64 + start : 72 + start])
            loss = info_nce_loss(h[:8], h[8:]) / 8
            loss.backward()
            total += float(loss.detach())
        return torch.tensor(total)

    accumulated, _ = gradient(model, naive)
    assert relative_error(accumulated, full) > 0.05


def test_cached_step_without_rng_replay_is_not_exact(simcse_setup, monkeypatch):
    model, embed, texts, loss_fn = simcse_setup
    model.train()
    full, _ = gradient(model, lambda: chunked_backward(embed, texts, loss_fn, 16))
    monkeypatch.setattr(RandomState, "restore", lambda self: None)
    unreplayed, _ = gradient(model, lambda: cached_backward(embed, texts, loss_fn, 16))
    assert relative_error(unreplayed, full) > 1e-3


def test_cached_equals_one_forward_without_dropout(simcse_setup):
    model, embed, texts, loss_fn = simcse_setup
    model.eval()  # no dropout: the single 128-sequence forward is the reference
    single, single_loss = gradient(model, lambda: chunked_backward(embed, texts, loss_fn, None))
    cached, cached_loss = gradient(model, lambda: cached_backward(embed, texts, loss_fn, 16))
    assert cached_loss.item() == pytest.approx(single_loss.item(), rel=1e-5)
    assert relative_error(cached, single) <= 1e-5


def test_cached_step_leaves_the_random_stream_as_one_pass_would(simcse_setup):
    model, embed, texts, loss_fn = simcse_setup
    model.train()
    torch.manual_seed(5)
    chunked_backward(embed, texts, loss_fn, 16)
    after_plain = torch.rand(3)
    torch.manual_seed(5)
    cached_backward(embed, texts, loss_fn, 16)
    assert torch.equal(torch.rand(3), after_plain)
