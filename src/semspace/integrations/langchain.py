"""``SemspaceEmbeddings``: a :class:`semspace.Encoder` as a LangChain ``Embeddings`` (vector stores, retrievers).

Documents go through ``Encoder.encode_document`` and queries through ``Encoder.encode_query``, so a model with
query/document prompts (its sentence-transformers prompts, e5's ``query: ``/``passage: ``) gets them, and the
model's own output convention (e.g. all-MiniLM-L6-v2's Normalize) is kept unless ``normalize_embeddings`` says
otherwise.

Example
-------
>>> from langchain_core.vectorstores import InMemoryVectorStore
>>> from semspace.integrations.langchain import SemspaceEmbeddings
>>> store = InMemoryVectorStore.from_texts(["a cat", "a plane"], SemspaceEmbeddings())  # doctest: +SKIP
>>> store.similarity_search("kitten", k=1)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from semspace._deps import require
from semspace.encode import Encoder
from semspace.errors import InvalidParameterError

Embeddings = require("langchain_core.embeddings", "langchain", "semspace.integrations.langchain").Embeddings


class SemspaceEmbeddings(Embeddings):
    """LangChain ``Embeddings`` over a :class:`semspace.Encoder`.

    Parameters
    ----------
    encoder:
        An :class:`~semspace.Encoder`, or anything ``Encoder(model)`` accepts (None: the bundled MiniLM).
    normalize_embeddings:
        L2-normalise the vectors (None: the encoder's own setting and the model's own modules).
    batch_size:
        Texts per forward pass (None: the encoder's).
    **encoder_kwargs:
        Passed to ``Encoder`` when one is built here (pooling, max_length, device, …).
    """

    def __init__(
        self,
        encoder: Any = None,
        *,
        normalize_embeddings: bool | None = None,
        batch_size: int | None = None,
        **encoder_kwargs: Any,
    ) -> None:
        if isinstance(encoder, Encoder):
            if encoder_kwargs:
                raise InvalidParameterError(
                    "Encoder settings go to Encoder(...), not to SemspaceEmbeddings, for a built one."
                )
            self.encoder = encoder
        else:
            self.encoder = Encoder(encoder, **encoder_kwargs)
        self.normalize_embeddings = normalize_embeddings
        self.batch_size = batch_size

    def _options(self) -> dict[str, Any]:
        return {"normalize_embeddings": self.normalize_embeddings, "batch_size": self.batch_size}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector (a list of floats) per document, in order."""
        return self.encoder.encode_document(list(texts), **self._options()).tolist()

    def embed_query(self, text: str) -> list[float]:
        """The query's vector."""
        return self.encoder.encode_query(text, **self._options()).tolist()
