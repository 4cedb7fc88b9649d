"""Search: SQLite document store + FAISS index = a persistent, crash-safe Collection.

Names are imported on first use (PEP 562), so `from semspace.search import VectorIndex` does not load the collection
machinery, and opening a collection never loads the transform layer unless the collection has a transform.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Collection": "semspace.search.collection",
    "SearchResult": "semspace.search.collection",
    "VectorIndex": "semspace.search.index",
}

__all__ = ["Collection", "SearchResult", "VectorIndex"]

if TYPE_CHECKING:
    from semspace.search.collection import Collection, SearchResult
    from semspace.search.index import VectorIndex


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'semspace.search' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
