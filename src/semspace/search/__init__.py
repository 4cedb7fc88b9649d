"""Search: SQLite document store + FAISS index = a persistent, crash-safe Collection; a Catalog is a folder of them.

The names below are imported lazily (PEP 562): the HTTP client reads the result types and name rules without
loading FAISS or NumPy; a collection imports the transform layer (scikit-learn, SciPy) only when it uses one, and
torch/transformers only when its encoder first encodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from semspace._lazy import lazy_exports

_EXPORTS = {
    "Collection": "semspace.search.collection",
    "Catalog": "semspace.search.catalog",
    "DocumentPage": "semspace.search.results",
    "SearchResult": "semspace.search.results",
    "VectorIndex": "semspace.search.index",
}

__all__ = ["Catalog", "Collection", "DocumentPage", "SearchResult", "VectorIndex"]

if TYPE_CHECKING:
    from semspace.search.catalog import Catalog
    from semspace.search.collection import Collection
    from semspace.search.index import VectorIndex
    from semspace.search.results import DocumentPage, SearchResult

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
