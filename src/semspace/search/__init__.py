"""Search: SQLite document store + FAISS index = a persistent, crash-safe Collection.

Importing it is cheap (NumPy, SQLite): the transform layer (scikit-learn, SciPy) is imported only by a collection
that has or fits a transform, and torch/transformers only when the encoder first encodes.
"""

from semspace.search.collection import Collection, DocumentPage, SearchResult
from semspace.search.index import VectorIndex

__all__ = ["Collection", "DocumentPage", "SearchResult", "VectorIndex"]
