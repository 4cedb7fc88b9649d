"""The result types of a collection, local or remote: :class:`SearchResult` and :class:`DocumentPage` (plain data,
no NumPy: the HTTP client imports them without the search engine)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DocumentPage", "SearchResult"]


@dataclass
class SearchResult:
    """Hits for one query, best first (FAISS's −1 padding removed)."""

    ids: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    metadata: list[dict] = field(default_factory=list)

    def to_dicts(self) -> list[dict]:
        return [
            {"id": i, "score": s, "text": t, "metadata": m}
            for i, s, t, m in zip(self.ids, self.scores, self.texts, self.metadata, strict=True)
        ]


@dataclass
class DocumentPage:
    """One page of `Collection.list_documents`: documents (id, text, metadata) and the cursor of the next page
    (None on the last one)."""

    documents: list[dict] = field(default_factory=list)
    next_cursor: str | None = None
