"""Exact large contrastive batches on small memory: the gradient-cached step (kexue.fm/archives/8471;
Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup", i.e. GradCache; the same
scheme as sentence-transformers' CachedMultipleNegativesRankingLoss).

Accumulating the gradients of per-chunk losses is *not* the gradient of the big batch: the softmax denominator of a
contrastive loss couples every example with every other. The cached step is exact:

1. embed the whole batch without gradient, chunk by chunk, saving the random state before each chunk;
2. compute the full-batch loss on those (detached) embeddings and its gradient g_i = ∂L/∂h_i for every embedding;
3. per chunk, restore its random state (so dropout draws the same masks), re-embed with gradient and back-propagate
   the surrogate Σ_i ⟨h_i, stopgrad(g_i)⟩, whose parameter gradient is exactly the chunk's share of ∂L/∂θ;
4. the caller takes one optimizer step.

Peak activation memory is that of one chunk; the cost is one extra forward pass per example.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

EmbedFn = Callable[[list[str]], torch.Tensor]
LossFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class RandomState:
    """The CPU and (when used) CUDA generator states, so a forward pass can be replayed with the same dropout."""

    cpu: torch.Tensor
    cuda: tuple[torch.Tensor, ...] | None

    @classmethod
    def capture(cls) -> RandomState:
        cuda = tuple(torch.cuda.get_rng_state_all()) if torch.cuda.is_initialized() else None
        return cls(torch.get_rng_state(), cuda)

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(list(self.cuda))


def chunks(texts: Sequence[str], chunk_size: int) -> list[list[str]]:
    return [list(texts[i : i + chunk_size]) for i in range(0, len(texts), chunk_size)]


def cached_backward(embed: EmbedFn, texts: Sequence[str], loss_fn: LossFn, chunk_size: int) -> torch.Tensor:
    """Accumulate into `.grad` the exact gradient of `loss_fn(embed(texts))`, holding one chunk's graph at a time.

    `embed` maps a list of texts to (n, d) embeddings (with dropout active in train mode); `loss_fn` maps the (N, d)
    embeddings of every text, in order, to a scalar. Returns the detached loss. The global random state afterwards
    is the one a single pass over the chunks would leave.
    """
    parts = chunks(texts, chunk_size)
    # Step 1: embed without gradient, remembering each chunk's random state.
    states: list[RandomState] = []
    detached: list[torch.Tensor] = []
    with torch.no_grad():
        for part in parts:
            states.append(RandomState.capture())
            detached.append(embed(part))
    after_first_pass = RandomState.capture()
    # Step 2: full-batch loss and its gradient with respect to every embedding.
    embeddings = torch.cat(detached).requires_grad_(True)
    loss = loss_fn(embeddings)
    loss.backward()
    assert embeddings.grad is not None
    gradients = embeddings.grad.split([len(d) for d in detached])
    # Step 3: replay each chunk with gradient under its saved random state; back-propagate the surrogate.
    for part, state, gradient in zip(parts, states, gradients, strict=True):
        state.restore()
        surrogate = (embed(part) * gradient).sum()
        surrogate.backward()
    after_first_pass.restore()
    return loss.detach()


def chunked_backward(embed: EmbedFn, texts: Sequence[str], loss_fn: LossFn, chunk_size: int | None) -> torch.Tensor:
    """The plain full-batch gradient: every chunk's graph is kept until one backward (memory grows with the batch)."""
    parts = chunks(texts, chunk_size or len(texts))
    loss = loss_fn(torch.cat([embed(part) for part in parts]))
    loss.backward()
    return loss.detach()
