"""Trained static models: a distilled token table fitted to the teacher's sentence vectors on a corpus.

The method is tokenlearn's (MinishLab, "Tokenlearn: learning static embeddings from a teacher's sentence vectors",
https://github.com/MinishLab/tokenlearn, release 0.2.1; the model2vec blog post that trained the potion models with
it, https://minish.ai/blog/2024-10-29-tokenlearn-blogpost/). The package itself cannot be installed beside our lock
(it pins model2vec[distill] and so transformers < 5.4), so its steps are done here:

1. featurize (:func:`featurize`): the teacher's sentence vector of every training text — semspace's Encoder on
   torch (exact, reproducible), through the embedding cache (``$SEMSPACE_CACHE/embeddings``), so a re-run encodes
   nothing;
2. the targets reduced by PCA to k dimensions (fitted on the training part);
3. start from the distilled model (:func:`semspace.encode.distill`: PCA to k, SIF): each token row split into a unit
   direction and a weight (its norm); the mean of weight × direction over a text's tokens, then a linear head
   k → k, trained with MSE to the targets (AdamW, lr 1e-3, batches of 256), validated every 1,000 steps and at each
   epoch's end on a held-out tenth of the texts (at most 10,000), stopped after 5 checks without improvement (by
   0.1 % of the loss: relative, where tokenlearn's 1e-4 is absolute), the best state kept;
4. the new table weight × direction with the trained head folded into it — for a mean whose weights sum to one,
   (1/n) Σ (eᵢW + b) = ((1/n) Σ eᵢ)W + b exactly, so the table gives what was fitted; tokenlearn drops the head
   (``keep_head=False``), which scored lower on STS-B dev (docs/results/static.md) — then tokenlearn's
   post-processing: PCA of the table to k dimensions and SIF weights a / (a + p(token)) (Arora et al.
   2017) with p counted on the training texts (add-one smoothed), a = 1e-3.

The tuned whitening is then folded in as for a distilled model (:func:`semspace.transform.whiten_static`).

What is semspace's own: the head folded in rather than dropped (above); the epochs are bounded (``max_epochs``);
the head starts at the least-squares fit of the
distilled table's mean vectors to the targets instead of at random, so the held-out loss *before* training is that of
the best linear read-out of the untrained table and "training lowered the held-out loss" is measured against the
strongest start; and the texts are tokenized exactly as at inference (:func:`semspace.encode.static.token_ids`).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from semspace.encode.cache import EmbeddingCache
from semspace.encode.encoder import Encoder
from semspace.encode.engine import cache_dir
from semspace.encode.static import distill, replace_table, token_ids
from semspace.errors import InvalidInputError, InvalidParameterError, check_param

if TYPE_CHECKING:
    from model2vec import StaticModel

logger = logging.getLogger(__name__)

# Fewer distinct texts than this cannot give a training part, a held-out part and a PCA of the targets worth a model.
MIN_TEXTS = 32
HELD_OUT_CAP = 10_000  # tokenlearn's cap on the held-out part
VALIDATE_EVERY = 1_000  # steps, besides each epoch's end (tokenlearn's)
# A held-out loss counts as better when it is this fraction below the best so far. tokenlearn's 1e-4 is absolute,
# fitted to its loss scale; the MSE to the PCA of unit-length teacher vectors is ~1/dim per coordinate (2e-4 for e5),
# where 1e-4 absolute stopped training at once.
MIN_IMPROVEMENT = 1e-3


@dataclass
class StaticTrainResult:
    """What :func:`train_static` made and measured. Losses are the mean squared error to the PCA-reduced teacher
    vectors of the held-out texts (the distilled table read out by its least-squares head; the trained table by
    its trained head)."""

    model: StaticModel
    held_out_loss_before: float
    held_out_loss_after: float
    epochs: float  # epochs run, fractional where a check inside an epoch stopped it
    n_train: int
    n_held_out: int
    target_variance_kept: float  # of the teacher vectors, by their PCA to k dims
    seconds: float

    def describe(self) -> str:
        return (
            f"held-out MSE {self.held_out_loss_before:.5f} -> {self.held_out_loss_after:.5f} in {self.epochs:.1f} "
            f"epochs ({self.n_train} training / {self.n_held_out} held-out texts, {self.seconds:.0f} s)"
        )


def default_cache_dir() -> Path:
    """The teacher vectors' cache: ``$SEMSPACE_CACHE/embeddings``, else ``~/.cache/semspace/embeddings``."""
    return cache_dir("embeddings")


def teacher_encoder(teacher: Any = None) -> Encoder:
    """`teacher` as an Encoder: an Encoder as given, anything else loaded on the torch backend (exact and
    reproducible, and what :func:`~semspace.encode.distill` needs)."""
    return teacher if isinstance(teacher, Encoder) else Encoder(teacher, backend="torch")


def featurize(
    teacher: Any,
    texts: Sequence[str],
    *,
    cache_dir: str | Path | None = None,
    show_progress_bar: bool | None = None,
) -> np.ndarray:
    """The teacher's sentence vectors of `texts` (float32, (n, d)), through the embedding cache: only texts it
    has not seen are encoded. A model with a query prompt (e5's ``query: ``) gets it, as when it compares texts."""
    encoder = teacher_encoder(teacher)
    prompt = encoder.resolve_prompt(role="query") or ""
    cache = EmbeddingCache(cache_dir if cache_dir is not None else default_cache_dir())
    found = cache.encode(encoder, [prompt + text for text in texts], show_progress_bar=show_progress_bar)
    return found[encoder.pooling]


def train_static(
    texts: Sequence[str],
    teacher: Any = None,
    *,
    start: StaticModel | None = None,
    k: int = 256,
    held_out: float = 0.1,
    max_epochs: int = 30,
    patience: int = 5,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    sif_alpha: float = 1e-3,
    keep_head: bool = True,
    seed: int = 42,
    cache_dir: str | Path | None = None,
    show_progress_bar: bool | None = None,
) -> StaticTrainResult:
    """Fit a static model's token table to `teacher`'s sentence vectors of `texts` (tokenlearn's method; see the
    module docstring) and return the trained model with its held-out losses.

    `teacher`: an Encoder or anything it loads (None: the bundled MiniLM), on torch. `start`: the distilled model
    to start from (default: ``distill(teacher, k=k)``). `k`: PCA dimensions of the targets and of the final table.
    `held_out`: the fraction of the distinct texts kept out of training for early stopping (at most 10,000).
    `keep_head`: fold the trained head into the table (False: drop it, as tokenlearn does).
    """
    _check_train_params(k, held_out, max_epochs, patience, batch_size, learning_rate, sif_alpha)
    started = time.perf_counter()
    distinct = training_texts(texts)
    encoder = teacher_encoder(teacher)
    model = start if start is not None else distill(encoder, k=k)
    if model.token_mapping is not None or model.weights is not None:
        raise InvalidParameterError(
            "train_static starts from a plain token table; this model has model2vec's vocabulary quantization."
        )
    ids, counts = token_ids(model, distinct)
    known = counts > 0  # a text without a known token has no vector to fit
    _require_enough(int(known.sum()), len(texts), " with a token the model knows")
    distinct = [text for text, keep in zip(distinct, known.tolist(), strict=True) if keep]
    counts = counts[known]  # the others have no ids: `ids` is the usable texts' already
    targets = featurize(encoder, distinct, cache_dir=cache_dir, show_progress_bar=show_progress_bar)
    train, held = _split(len(distinct), held_out, seed)
    reduced, kept = _reduce_targets(targets, train, k, seed)
    fitted = _fit_table(
        np.asarray(model.embedding, dtype=np.float32),
        _Tokens(ids, counts),
        reduced,
        (train, held),
        _Schedule(max_epochs, patience, batch_size, learning_rate, seed, show_progress_bar),
        keep_head,
    )
    table = _post_process(fitted.table, model, [distinct[i] for i in train], k, sif_alpha, seed)
    info = {
        "method": "tokenlearn (MinishLab) 0.2.1: MSE to the teacher's PCA-reduced vectors, then PCA and SIF",
        "texts": len(distinct),
        "held_out": len(held),
        "held_out_mse": [fitted.loss_before, fitted.loss_after],
        "epochs": round(fitted.epochs, 2),
        "head": "folded" if keep_head else "dropped",
        "sif_alpha": sif_alpha,
    }
    trained = replace_table(model, table, trained=info, k=int(table.shape[1]))
    seconds = time.perf_counter() - started
    result = StaticTrainResult(
        trained, fitted.loss_before, fitted.loss_after, fitted.epochs, len(train), len(held), kept, seconds
    )
    logger.info("train_static: %s", result.describe())
    return result


def training_texts(texts: Sequence[str]) -> list[str]:
    """The distinct non-blank texts of `texts`, in order; InvalidInputError when fewer than MIN_TEXTS."""
    distinct = list(dict.fromkeys(t for t in texts if isinstance(t, str) and t.strip()))
    _require_enough(len(distinct), len(texts))
    return distinct


def _require_enough(usable: int, given: int, which: str = "") -> None:
    if usable < MIN_TEXTS:
        raise InvalidInputError(
            f"train_static needs at least {MIN_TEXTS} distinct texts{which}; got {usable} (of {given} texts). "
            "Train on the corpus you will search, or more sentences of its kind."
        )


def _check_train_params(
    k: int, held_out: float, max_epochs: int, patience: int, batch_size: int, learning_rate: float, sif_alpha: float
) -> None:
    owner = "train_static"
    check_param("k", owner, isinstance(k, int) and k >= 1, "an int >= 1", k)
    check_param("held_out", owner, isinstance(held_out, float) and 0 < held_out < 1, "a float in (0, 1)", held_out)
    check_param("max_epochs", owner, isinstance(max_epochs, int) and max_epochs >= 1, "an int >= 1", max_epochs)
    check_param("patience", owner, isinstance(patience, int) and patience >= 1, "an int >= 1", patience)
    check_param("batch_size", owner, isinstance(batch_size, int) and batch_size >= 1, "an int >= 1", batch_size)
    check_param("learning_rate", owner, learning_rate > 0, "a float > 0", learning_rate)
    check_param("sif_alpha", owner, 0 < sif_alpha < 1, "a float in (0, 1)", sif_alpha)


def _split(n: int, held_out: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training, held-out) indices: a seeded shuffle, the held-out part a fraction of n (at least 1, at most
    10,000 as tokenlearn's)."""
    order = np.random.default_rng(seed).permutation(n)
    n_held = min(HELD_OUT_CAP, max(1, round(held_out * n)))
    return np.sort(order[n_held:]), np.sort(order[:n_held])


def _reduce_targets(targets: np.ndarray, train: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, float]:
    """(the targets in the PCA basis of the training part's, at most k dims; the variance share kept)."""
    from sklearn.decomposition import PCA

    dims = min(k, targets.shape[1], len(train))
    pca = PCA(n_components=dims, random_state=seed).fit(targets[train].astype(np.float64))
    return pca.transform(targets.astype(np.float64)).astype(np.float32), float(pca.explained_variance_ratio_.sum())


# ---------------------------------------------------------------------------------------------- the torch fit ---
@dataclass
class _Tokens:
    """Every text's token ids one after the other, and each text's count."""

    ids: np.ndarray
    counts: np.ndarray

    def __post_init__(self) -> None:
        self.starts = np.concatenate(([0], np.cumsum(self.counts)[:-1]))

    def batch(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(the ids of `rows`' texts, each text's offset into them, each text's count) as EmbeddingBag takes them."""
        counts = self.counts[rows]
        ids = np.concatenate([self.ids[s : s + n] for s, n in zip(self.starts[rows], counts, strict=True)])
        offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
        return torch.from_numpy(ids), torch.from_numpy(offsets), torch.from_numpy(counts)


@dataclass
class _Schedule:
    max_epochs: int
    patience: int
    batch_size: int
    learning_rate: float
    seed: int
    show_progress_bar: bool | None


@dataclass
class _Fitted:
    table: np.ndarray
    loss_before: float
    loss_after: float
    epochs: float


class _TokenLearner(torch.nn.Module):
    """tokenlearn's trainable model: token rows as unit directions times learned weights (their norms at the
    start), the weighted rows' mean over a text's tokens, a linear head."""

    def __init__(self, table: np.ndarray, out_dim: int) -> None:
        super().__init__()
        norms = np.linalg.norm(table, axis=1)
        directions = table / np.maximum(norms, 1e-12)[:, None]
        self.rows = torch.nn.EmbeddingBag.from_pretrained(torch.from_numpy(directions), freeze=False, mode="sum")
        self.weights = torch.nn.Parameter(torch.from_numpy(norms.astype(np.float32)))
        self.head = torch.nn.Linear(table.shape[1], out_dim)

    def mean(self, ids: torch.Tensor, offsets: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        summed = self.rows(ids, offsets, per_sample_weights=self.weights[ids])
        return summed / counts.clamp(min=1).to(summed.dtype)[:, None]

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        return self.head(self.mean(ids, offsets, counts))

    @torch.no_grad()
    def table(self, keep_head: bool) -> np.ndarray:
        rows = self.weights[:, None] * self.rows.weight
        return (self.head(rows) if keep_head else rows).numpy().astype(np.float32)


def _fit_table(
    table: np.ndarray,
    tokens: _Tokens,
    targets: np.ndarray,
    parts: tuple[np.ndarray, np.ndarray],
    schedule: _Schedule,
    keep_head: bool,
) -> _Fitted:
    """Train a _TokenLearner from `table` to `targets` (tokenlearn's loop; see the module docstring)."""
    train, held = parts
    torch.manual_seed(schedule.seed)
    learner = _TokenLearner(table, targets.shape[1])
    y = torch.from_numpy(targets)
    _least_squares_head(learner, tokens, y, train, schedule.batch_size)
    optimizer = torch.optim.AdamW(learner.parameters(), lr=schedule.learning_rate)
    loss_before = best = _held_out_loss(learner, tokens, y, held, schedule.batch_size)
    best_state, checks_without_gain, steps = copy.deepcopy(learner.state_dict()), 0, 0
    rng = np.random.default_rng(schedule.seed)
    steps_per_epoch = -(-len(train) // schedule.batch_size)
    for epoch in range(schedule.max_epochs):
        bar = tqdm(
            _batches(rng.permutation(train), schedule.batch_size),
            total=steps_per_epoch,
            desc=f"train_static epoch {epoch + 1}",
            disable=None if schedule.show_progress_bar is None else not schedule.show_progress_bar,  # None: a TTY
            leave=False,
        )
        for step, rows in enumerate(bar, start=1):
            learner.train()
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(learner(*tokens.batch(rows)), y[rows])
            loss.backward()
            optimizer.step()
            steps += 1
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if step % VALIDATE_EVERY and step != steps_per_epoch:
                continue
            loss_now = _held_out_loss(learner, tokens, y, held, schedule.batch_size)
            if loss_now < best * (1 - MIN_IMPROVEMENT):
                best, best_state, checks_without_gain = loss_now, copy.deepcopy(learner.state_dict()), 0
            else:
                checks_without_gain += 1
            if checks_without_gain >= schedule.patience:
                break
        bar.close()
        if checks_without_gain >= schedule.patience:
            break
    learner.load_state_dict(best_state)
    return _Fitted(learner.table(keep_head), float(loss_before), float(best), steps / steps_per_epoch)


def _batches(rows: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


@torch.no_grad()
def _held_out_loss(learner: _TokenLearner, tokens: _Tokens, y: torch.Tensor, rows: np.ndarray, size: int) -> float:
    learner.eval()
    total = sum(
        torch.nn.functional.mse_loss(learner(*tokens.batch(part)), y[part], reduction="sum").item()
        for part in _batches(rows, size)
    )
    return total / (len(rows) * y.shape[1])


@torch.no_grad()
def _least_squares_head(learner: _TokenLearner, tokens: _Tokens, y: torch.Tensor, rows: np.ndarray, size: int) -> None:
    """Set the head to the least-squares map (with bias) from the start table's mean vectors to the targets."""
    means = torch.cat([learner.mean(*tokens.batch(part)) for part in _batches(rows, size)]).double()
    design = torch.cat([means, torch.ones(len(rows), 1, dtype=torch.float64)], dim=1)
    solution = torch.linalg.lstsq(design, y[rows].double(), driver="gelsd").solution
    learner.head.weight.copy_(solution[:-1].T.float())
    learner.head.bias.copy_(solution[-1].float())


# ---------------------------------------------------------------------------------------------- post-processing --
def _post_process(
    table: np.ndarray, model: StaticModel, texts: list[str], k: int, alpha: float, seed: int
) -> np.ndarray:
    """tokenlearn's weighting: the table's PCA to k dims, each row times a / (a + p(token)), p the token's
    add-one-smoothed frequency in `texts`."""
    from sklearn.decomposition import PCA

    dims = min(k, table.shape[1], table.shape[0])
    reduced = PCA(n_components=dims, random_state=seed).fit_transform(np.nan_to_num(table).astype(np.float64))
    ids, _ = token_ids(model, texts)
    counts = np.bincount(ids, minlength=len(table)).astype(np.float64) + 1.0
    probability = counts / counts.sum()
    return (reduced * (alpha / (alpha + probability))[:, None]).astype(np.float32)
