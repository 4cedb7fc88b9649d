"""Sentence-transformers models that semspace's poolings cannot reproduce, run through sentence-transformers itself.

A folder or `SentenceTransformer` whose module list is not ``Transformer → Pooling(cls|mean) [→ Normalize]``
(max / weighted-mean / last-token pooling, several concatenated modes, a ``Dense`` projection, prompts excluded from
pooling, lower-casing, …) is encoded by its own modules, so the vectors are the ones ``SentenceTransformer.encode``
gives — never silently different ones. Its own pipeline is pooling ``default``. When the module list is a plain
transformer followed by Pooling and at most Normalize, semspace's poolings over the transformer's hidden states are
offered too (e.g. ``first-last-avg`` for whitening experiments); they are the bare pooled hidden states, without
the model's Normalize. After a ``Dense`` (or any other module that changes the vector) another pooling has no
consistent meaning and is refused.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from semspace._deps import require
from semspace.encode.backends import HFBackend, resolve_source
from semspace.encode.models import default_prompts
from semspace.encode.pooling import HF_POOLINGS, Pooling
from semspace.encode.st_format import STPipeline, is_sentence_transformer, st_model_id
from semspace.errors import InvalidParameterError, ModelLoadError, UnknownPoolingError

logger = logging.getLogger(__name__)


class STBackend:
    """A `SentenceTransformer` run through its own module list (pooling ``default``), plus semspace's poolings
    over its transformer when its pipeline allows them (see the module docstring)."""

    default_pooling = Pooling.DEFAULT
    handles_prompts = True

    def __init__(
        self, model: Any, pipeline: STPipeline, max_length: int | None, device: str, allow_download: bool = False
    ) -> None:
        source, stable_id = resolve_source(model)
        self.pipeline = pipeline
        # A fast tokenizer's padding/truncation settings are state that each call sets: one call at a time
        # (the service encodes from several threads).
        self._lock = threading.Lock()
        if is_sentence_transformer(source):
            self.st = source
            self.model_id = st_model_id(source)
            if max_length is not None and max_length != source.max_seq_length:
                raise ModelLoadError(
                    f"max_length={max_length} differs from the loaded SentenceTransformer's max_seq_length "
                    f"({source.max_seq_length}); set model.max_seq_length instead (semspace does not change a "
                    "model object it was given)."
                )
        else:
            self.model_id = stable_id or str(source)
            self.st = _load_sentence_transformer(source, device, allow_download)
            if max_length is not None:
                self.st.max_seq_length = max_length
        self.st.eval()
        self.max_length = self.st.max_seq_length
        self.prompts, self.default_prompt_name = default_prompts(self.model_id, pipeline)
        # get_embedding_dimension since sentence-transformers 6; the older name before.
        dim_of = getattr(self.st, "get_embedding_dimension", None) or self.st.get_sentence_embedding_dimension
        dim = dim_of()
        if dim is None:  # a module list that does not declare its output size: measure it
            dim = self.st.encode(["a"], show_progress_bar=False).shape[-1]
        self.dim = int(dim)
        self._transformer: HFBackend | None = None
        if pipeline.transformer_then_pooling and set(pipeline.after_pooling) <= {"Normalize"}:
            transformer = HFBackend(self.st, self.max_length, device, transformer_only=True)
            if transformer.dim == self.dim:  # several concatenated pooling modes are wider than the transformer
                self._transformer = transformer
        self.poolings = (Pooling.DEFAULT, *(HF_POOLINGS if self._transformer is not None else ()))

    def check_pooling(self, pooling: Pooling) -> None:
        if pooling is Pooling.DEFAULT:
            return
        if self._transformer is None:
            raise UnknownPoolingError(
                f"Model {self.model_id!r} runs through its sentence-transformers pipeline "
                f"({self.pipeline.describe()}); its modules after pooling cannot follow another pooling, so only "
                f"pooling 'default' is available (got {pooling.value!r})."
            )
        self._transformer.check_pooling(pooling)

    def check_prompt(self, prompt: str | None) -> None:
        return None

    def token_lengths(self, texts: list[str], prompt: str | None = None) -> list[int]:
        tokenizer = self.st.tokenizer
        if tokenizer is None:
            return [0] * len(texts)
        prefix = prompt or ""
        with self._lock:
            encoded = tokenizer([prefix + t for t in texts], add_special_tokens=True, truncation=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def forward(
        self, texts: list[str], poolings: list[Pooling], prompt: str | None = None
    ) -> dict[Pooling, np.ndarray]:
        out: dict[Pooling, np.ndarray] = {}
        if Pooling.DEFAULT in poolings:
            # prompt="" (not None) so sentence-transformers does not add its default prompt a second time.
            with self._lock:
                vectors = self.st.encode(
                    texts, prompt=prompt or "", batch_size=len(texts), show_progress_bar=False, convert_to_numpy=True
                )
            out[Pooling.DEFAULT] = np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)
        others = [p for p in poolings if p is not Pooling.DEFAULT]
        if others:
            assert self._transformer is not None  # check_pooling refused them otherwise
            prefixed = [(prompt or "") + t for t in texts]
            out.update(self._transformer.forward(prefixed, others))
        return out

    def token_vectors(self, texts: list[str], prompt: str | None = None) -> list[np.ndarray]:
        """Its transformer's token vectors (see HFBackend.token_vectors) when its pipeline is a plain transformer
        then pooling; another pipeline (a Dense, several pooling modes) has no token vectors its vector comes from."""
        if self._transformer is None:
            raise InvalidParameterError(
                f"Model {self.model_id!r} runs through its sentence-transformers pipeline ({self.pipeline.describe()}),"
                " whose sentence vector is not a pooling of the transformer's token vectors: no token embeddings."
            )
        return self._transformer.token_vectors([(prompt or "") + t for t in texts])

    def finish(self, pooling: Pooling, vectors: np.ndarray) -> np.ndarray:
        return vectors

    def key_suffix(self, pooling: Pooling) -> str:
        return f"|st:{self.pipeline.describe()}" if pooling is Pooling.DEFAULT else ""


def _load_sentence_transformer(source: str | Path, device: str, allow_download: bool) -> Any:
    st = require("sentence_transformers", "sentence-transformers", f"Model {str(source)!r} (its own pipeline)")
    SentenceTransformer = st.SentenceTransformer
    local_only = not allow_download or Path(source).is_dir()
    try:
        return SentenceTransformer(str(source), device=device, local_files_only=local_only)
    except (OSError, ValueError, KeyError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = "" if allow_download else " (offline: pass allow_download=True to fetch it)"
        raise ModelLoadError(f"Cannot load sentence-transformers model {str(source)!r}: {first}{hint}") from None
