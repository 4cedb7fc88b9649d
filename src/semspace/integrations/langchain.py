"""LangChain adapters: ``SemspaceEmbeddings`` (a :class:`semspace.Encoder` as a LangChain ``Embeddings``) and
``SemspaceVectorStore`` (a semspace collection, local or remote, as a LangChain ``VectorStore``).

``SemspaceEmbeddings``: documents go through ``Encoder.encode_document`` and queries through
``Encoder.encode_query``, so a model with query/document prompts (its sentence-transformers prompts, e5's
``query: ``/``passage: ``) gets them, and the model's own output convention (e.g. all-MiniLM-L6-v2's Normalize) is kept
unless ``normalize_embeddings`` says otherwise.

``SemspaceVectorStore``: the collection embeds texts and queries with its own encoder (what its server, CLI and
Python API search with), or, given a LangChain ``embedding``, stores that model's vectors (a local collection of the
same dimension only; see the class).

Example
-------
>>> from langchain_core.vectorstores import InMemoryVectorStore
>>> from semspace.integrations.langchain import SemspaceEmbeddings
>>> store = InMemoryVectorStore.from_texts(["a cat", "a plane"], SemspaceEmbeddings())  # doctest: +SKIP
>>> store.similarity_search("kitten", k=1)  # doctest: +SKIP

>>> from semspace import Collection
>>> from semspace.integrations.langchain import SemspaceVectorStore
>>> store = SemspaceVectorStore(Collection.create("docs"))  # doctest: +SKIP
>>> store.add_texts(["a cat sleeps", "a plane"], metadatas=[{"topic": "pets"}, {"topic": "travel"}])  # doctest: +SKIP
>>> store.as_retriever(search_kwargs={"k": 1, "filter": {"topic": "pets"}}).invoke("kitten")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from semspace._deps import require
from semspace.encode import Encoder
from semspace.errors import InvalidParameterError, check_param
from semspace.integrations import _vectorstores as ops

_WHAT = "semspace.integrations.langchain"
Embeddings = require("langchain_core.embeddings", "langchain", _WHAT).Embeddings
Document = require("langchain_core.documents", "langchain", _WHAT).Document
VectorStore = require("langchain_core.vectorstores", "langchain", _WHAT).VectorStore

SEARCH_MODES = ("dense", "bm25", "hybrid")
_NO_HYBRID = (
    "Hybrid search embeds the query with the collection's own encoder, not with the store's external embedding; "
    "use mode='dense' or 'bm25'."
)


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


class SemspaceVectorStore(VectorStore):
    """A semspace collection as a LangChain ``VectorStore``: a local :class:`~semspace.Collection` or a remote one
    (``semspace.client.Client(url).get_collection(name)``), through the methods both have.

    Parameters
    ----------
    collection:
        The collection to read and write.
    embedding:
        None (the default and the advice): the collection embeds texts and queries with its own encoder, so what
        LangChain adds is searchable from semspace's server, CLI and API alike. A LangChain ``Embeddings``: its
        vectors are stored and searched instead (``Collection.add(vectors=)``, ``Collection.search_vectors``) —
        only on a local collection whose encoder has the same dimension, and they must come from the same model
        as every other vector in it (semspace cannot check that); anything else is refused with an error saying so.
        BM25 search still works on the texts; hybrid search is refused (its dense half would embed the query with
        the collection's encoder, not with this model).
    search_mode:
        The collection's search mode: ``"dense"`` (cosine), ``"bm25"`` or ``"hybrid"``; a search may override it
        with ``mode=``.

    Scores: ``similarity_search_with_score`` returns the collection's scores, higher is closer (cosines in dense
    mode). Relevance scores (``similarity_search_with_relevance_scores``, the retriever's
    ``similarity_score_threshold``) are those cosines clipped to [0, 1], dense mode only.

    Filters (``filter=``) are semspace's metadata filters, which are the Chroma-style dicts LangChain users know:
    ``{"source": "faq"}``, ``{"year": {"$gte": 2020}}``, ``$in``, ``$nin``, ``$ne``, ``$and``, ``$or``, and
    ``$between``; a function or an operator semspace has no equivalent for (``$like``, ``$exists``, ``$not``) is
    refused. ``add_documents``/``add_texts`` with ids add or replace (upsert); ``delete`` ignores unknown ids.
    Not supported: maximal marginal relevance search (it needs the stored vectors, which a remote collection does
    not return).
    """

    def __init__(self, collection: Any, embedding: Any = None, *, search_mode: str = "dense") -> None:
        self.collection = ops.check_collection(collection, "SemspaceVectorStore")
        check_param(
            "search_mode", "SemspaceVectorStore", search_mode in SEARCH_MODES, f"one of {SEARCH_MODES}", search_mode
        )
        self.search_mode = search_mode
        self._embedding = embedding
        self._raw_dim = ops.check_vectors(collection, None, "A LangChain embedding") if embedding is not None else None

    @property
    def embeddings(self) -> Any:
        """The LangChain embedding whose vectors are stored, or None when the collection embeds texts itself."""
        return self._embedding

    # -- writes ----------------------------------------------------------------------------------------------
    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict] | None = None,
        *,
        ids: list[str | None] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Add texts (with metadata); with ids, add or replace those documents. Returns the ids, in order."""
        if kwargs:
            raise InvalidParameterError(f"SemspaceVectorStore.add_texts takes no {', '.join(sorted(kwargs))}.")
        texts = list(texts)
        metadata = [dict(m or {}) for m in metadatas] if metadatas is not None else None
        ids = ops.fill_ids(ids, len(texts))
        extra: dict[str, Any] = {}
        if self._embedding is not None and texts:
            extra["vectors"] = ops.as_matrix(self._embedding.embed_documents(texts), self._raw_dim, "The embedding")
        if ids is None:
            return list(self.collection.add(texts, metadata=metadata, **extra))
        return list(self.collection.upsert(texts, ids, metadata=metadata, **extra))

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Delete documents by id (unknown ids are ignored), or with ``filter=`` every document it matches
        (``filter={}``: all). Without either it refuses rather than emptying the collection."""
        flt = kwargs.pop("filter", None)
        if kwargs:
            raise InvalidParameterError(f"SemspaceVectorStore.delete takes ids and filter, not {', '.join(kwargs)}.")
        if ids is None and flt is None:
            raise InvalidParameterError(
                "SemspaceVectorStore.delete needs ids, or filter= (filter={} deletes every document)."
            )
        if ids is not None:
            ops.delete_existing(self.collection, list(ids))
        if flt is not None:
            ops.delete_where(self.collection, ops.dict_filter_to_where(flt, "SemspaceVectorStore.delete"))
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents among `ids` that exist (unknown ids are skipped), each once."""
        return [
            Document(id=doc["id"], page_content=doc["text"], metadata=doc["metadata"])
            for doc in ops.get_existing(self.collection, list(ids))
        ]

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Any = None,
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        collection: Any = None,
        path: str | Path | None = None,
        encoder: Any = None,
        search_mode: str = "dense",
        **kwargs: Any,
    ) -> SemspaceVectorStore:
        """A store over `collection`, or over the local collection at `path` (opened, or created with `encoder`,
        by default the bundled MiniLM — or the encoder of a ``SemspaceEmbeddings`` given as `embedding`), with the
        texts added. `embedding` is as in the class: None lets the collection embed."""
        if kwargs:
            raise InvalidParameterError(f"SemspaceVectorStore.from_texts takes no {', '.join(sorted(kwargs))}.")
        if (collection is None) == (path is None):
            raise InvalidParameterError("SemspaceVectorStore.from_texts needs exactly one of collection= or path=.")
        if collection is None:
            collection = _open_or_create(Path(path), encoder, embedding)
        store = cls(collection, embedding, search_mode=search_mode)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    # -- search ----------------------------------------------------------------------------------------------
    def similarity_search(self, query: str, k: int = 4, filter: dict | None = None, **kwargs: Any) -> list[Document]:
        """The k documents closest to `query` (matching `filter`), best first."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter=filter, **kwargs)]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: dict | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """(document, score) of the k documents closest to `query`, best first; higher scores are closer
        (cosine similarity in dense mode). ``mode=`` overrides the store's search mode."""
        mode = self._mode(kwargs)
        where = ops.dict_filter_to_where(filter, "SemspaceVectorStore")
        if self._embedding is not None and mode == "dense":
            return self._by_vector(self._embedding.embed_query(query), k, where)
        if self._embedding is not None and mode == "hybrid":
            raise InvalidParameterError(_NO_HYBRID)
        return _pairs(self.collection.search(query, k=k, where=where, mode=mode))

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: dict | None = None, **kwargs: Any
    ) -> list[Document]:
        """The k documents closest to a query vector (a local collection only, of the vector's dimension)."""
        if kwargs:
            raise InvalidParameterError(f"similarity_search_by_vector takes no {', '.join(sorted(kwargs))}.")
        where = ops.dict_filter_to_where(filter, "SemspaceVectorStore")
        return [doc for doc, _ in self._by_vector(embedding, k, where)]

    def _by_vector(self, vector: Sequence[float], k: int, where: dict | None) -> list[tuple[Document, float]]:
        raw_dim = self._raw_dim
        if raw_dim is None or len(vector) != raw_dim:  # checked (and the collection asked) once per store
            raw_dim = ops.check_vectors(self.collection, len(vector), "The query vector")
        query = ops.as_matrix([vector], raw_dim, "The query vector")
        return _pairs(self.collection.search_vectors(query, k, where=where)[0])

    def _mode(self, kwargs: dict[str, Any]) -> str:
        mode = kwargs.pop("mode", self.search_mode)
        if kwargs:
            raise InvalidParameterError(
                f"SemspaceVectorStore searches take k, filter and mode; got {', '.join(sorted(kwargs))}."
            )
        check_param("mode", "SemspaceVectorStore", mode in SEARCH_MODES, f"one of {SEARCH_MODES}", mode)
        return mode

    def _similarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        if kwargs.get("mode", self.search_mode) != "dense":
            raise InvalidParameterError(
                "Relevance scores are cosines, so only a dense search has them; BM25 and hybrid scores are not on "
                "a [0, 1] scale."
            )
        pairs = self.similarity_search_with_score(query, k, **kwargs)
        return [(doc, min(max(score, 0.0), 1.0)) for doc, score in pairs]


def _pairs(result: Any) -> list[tuple[Document, float]]:
    return [
        (Document(id=doc_id, page_content=text, metadata=meta), float(score))
        for doc_id, score, text, meta in zip(result.ids, result.scores, result.texts, result.metadata, strict=True)
    ]


def _open_or_create(path: Path, encoder: Any, embedding: Any) -> Any:
    """The local collection at `path`: opened when the folder holds one, else created (see from_texts)."""
    from semspace.search.collection import Collection

    if path.is_dir() and any(path.iterdir()):
        return Collection.open(path, encoder=encoder if isinstance(encoder, Encoder) else None)
    if encoder is None and isinstance(embedding, SemspaceEmbeddings):
        encoder = embedding.encoder
    return Collection.create(path, encoder=encoder)
