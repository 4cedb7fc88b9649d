"""Search: SQLite document store + FAISS index = a persistent, crash-safe Collection."""

from semspace.search.collection import Collection, SearchResult
from semspace.search.index import VectorIndex

__all__ = ["Collection", "SearchResult", "VectorIndex"]
