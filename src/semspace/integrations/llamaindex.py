"""LlamaIndex adapters (``semspace[llamaindex]``): ``SemspaceVectorStore``, a semspace collection — local or remote —
as a LlamaIndex vector store, and ``SemspaceEmbedding``, a :class:`semspace.Encoder` as a LlamaIndex embed model
(offline, the bundled MiniLM by default).

Example
-------
>>> from llama_index.core import VectorStoreIndex
>>> from semspace import Collection
>>> from semspace.integrations.llamaindex import SemspaceEmbedding, SemspaceVectorStore
>>> store = SemspaceVectorStore(Collection.open("docs"))  # doctest: +SKIP
>>> index = VectorStoreIndex.from_vector_store(store, embed_model=SemspaceEmbedding())  # doctest: +SKIP
>>> index.as_retriever(similarity_top_k=3).retrieve("what is whitening?")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from semspace._deps import require
from semspace.encode import Encoder
from semspace.errors import InvalidInputError, InvalidParameterError
from semspace.integrations import _vectorstores as ops
from semspace.search.filters import MAX_DEPTH

_WHAT = "semspace.integrations.llamaindex"
_pydantic = require("llama_index.core.bridge.pydantic", "llamaindex", _WHAT)
_schema = require("llama_index.core.schema", "llamaindex", _WHAT)
_types = require("llama_index.core.vector_stores.types", "llamaindex", _WHAT)
_utils = require("llama_index.core.vector_stores.utils", "llamaindex", _WHAT)
BaseEmbedding = require("llama_index.core.base.embeddings.base", "llamaindex", _WHAT).BaseEmbedding
BasePydanticVectorStore = _types.BasePydanticVectorStore
MetadataFilters = _types.MetadataFilters
VectorStoreQuery = _types.VectorStoreQuery
VectorStoreQueryResult = _types.VectorStoreQueryResult
PrivateAttr = _pydantic.PrivateAttr

# LlamaIndex operators with an exact semspace equivalent; the others (any, all, contains, text_match, is_empty)
# look inside lists or text, which semspace's filters do not.
_OPERATORS = {"==": "$eq", "!=": "$ne", ">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte", "in": "$in", "nin": "$nin"}
# LlamaIndex query modes → semspace search modes.
_MODES = {"default": "dense", "sparse": "bm25", "text_search": "bm25", "hybrid": "hybrid"}


class SemspaceEmbedding(BaseEmbedding):
    """LlamaIndex embed model over a :class:`semspace.Encoder`: queries through ``Encoder.encode_query``, texts
    through ``Encoder.encode_document`` (so a model's query/passage prompts apply, as in ``SemspaceEmbeddings``).

    Parameters
    ----------
    encoder:
        An :class:`~semspace.Encoder`, or anything ``Encoder(model)`` accepts (None: the bundled MiniLM, offline).
    normalize_embeddings:
        L2-normalise the vectors (None: the encoder's own setting and the model's own modules).
    embed_batch_size:
        Texts LlamaIndex hands over per call.
    **encoder_kwargs:
        Passed to ``Encoder`` when one is built here (pooling, max_length, device, …).
    """

    normalize_embeddings: bool | None = None
    _encoder: Any = PrivateAttr()

    def __init__(
        self,
        encoder: Any = None,
        *,
        normalize_embeddings: bool | None = None,
        embed_batch_size: int = 64,
        **encoder_kwargs: Any,
    ) -> None:
        if isinstance(encoder, Encoder):
            if encoder_kwargs:
                raise InvalidParameterError(
                    "Encoder settings go to Encoder(...), not to SemspaceEmbedding, for a built one."
                )
        else:
            encoder = Encoder(encoder, **encoder_kwargs)
        super().__init__(
            model_name=encoder.model_id, embed_batch_size=embed_batch_size, normalize_embeddings=normalize_embeddings
        )
        self._encoder = encoder

    @classmethod
    def class_name(cls) -> str:
        return "SemspaceEmbedding"

    @property
    def encoder(self) -> Encoder:
        return self._encoder

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encoder.encode_query(query, normalize_embeddings=self.normalize_embeddings).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encoder.encode_document(text, normalize_embeddings=self.normalize_embeddings).tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encoder.encode_document(list(texts), normalize_embeddings=self.normalize_embeddings).tolist()


class SemspaceVectorStore(BasePydanticVectorStore):
    """A semspace collection as a LlamaIndex vector store (``stores_text=True``): a local
    :class:`~semspace.Collection` or a remote one (``semspace.client.Client(url).get_collection(name)``).

    Parameters
    ----------
    collection:
        The collection to read and write.
    use_node_embeddings:
        False (the default): the collection embeds node texts and query strings with its own encoder, so what
        LlamaIndex adds is searchable from semspace's server, CLI and API alike; the vectors LlamaIndex's
        ``embed_model`` computed for the nodes are not used (the collection embeds each node's text alone, as
        semspace's own search does, where LlamaIndex embeds text and metadata), and queries are not embedded by
        LlamaIndex (``is_embedding_query=False``). True: the nodes' and queries' embeddings are stored and searched
        (``Collection.add(vectors=)``, ``search_vectors``) — a local collection whose encoder has the same dimension
        only, and they must come from the same model as every other vector in it; hybrid queries are then refused
        (their dense half would embed the query with the collection's encoder).

    Each node is stored under its node id with its text, and LlamaIndex's usual metadata (the node's own metadata
    at the top level, ``_node_content``, ``ref_doc_id``), so a query gives back the same node. Documents a semspace
    collection got from elsewhere come back as ``TextNode``s with their id, text and metadata.

    Queries: modes ``default`` (dense), ``sparse``/``text_search`` (BM25) and ``hybrid`` (``alpha`` given: weighted
    fusion, ``alpha`` × dense; else reciprocal-rank fusion); ``filters`` (``MetadataFilters``: ``== != > >= < <= in
    nin``, nested, AND/OR) and ``doc_ids`` become a semspace filter. Refused with a clear error: ``NOT``, the
    ``any/all/contains/text_match/is_empty`` operators, ``node_ids`` and the other query modes (MMR, SVM, …).
    Similarities are the collection's scores (cosines in dense mode).
    """

    stores_text: bool = True
    is_embedding_query: bool = False
    flat_metadata: bool = False
    use_node_embeddings: bool = False
    _collection: Any = PrivateAttr()
    _raw_dim: int | None = PrivateAttr(default=None)

    def __init__(self, collection: Any, *, use_node_embeddings: bool = False, **kwargs: Any) -> None:
        ops.check_collection(collection, "SemspaceVectorStore")
        raw_dim = ops.check_vectors(collection, None, "use_node_embeddings=True") if use_node_embeddings else None
        super().__init__(use_node_embeddings=use_node_embeddings, is_embedding_query=use_node_embeddings, **kwargs)
        self._collection = collection
        self._raw_dim = raw_dim

    @classmethod
    def class_name(cls) -> str:
        return "SemspaceVectorStore"

    @property
    def client(self) -> Any:
        """The semspace collection."""
        return self._collection

    # -- writes ----------------------------------------------------------------------------------------------
    def add(self, nodes: Sequence[Any], **add_kwargs: Any) -> list[str]:
        """Add (or replace, by node id) nodes; returns their ids."""
        _no_kwargs("add", add_kwargs)
        if not nodes:
            return []
        none = _schema.MetadataMode.NONE
        texts = [node.get_content(metadata_mode=none) for node in nodes]
        ids = [node.node_id for node in nodes]
        metadata = [
            _utils.node_to_metadata_dict(node, remove_text=True, flat_metadata=self.flat_metadata) for node in nodes
        ]
        extra: dict[str, Any] = {}
        if self.use_node_embeddings:
            missing = [node.node_id for node in nodes if node.embedding is None]
            if missing:
                raise InvalidInputError(f"use_node_embeddings=True, but node(s) {missing[:5]} have no embedding.")
            extra["vectors"] = ops.as_matrix([node.embedding for node in nodes], self._raw_dim, "The nodes")
        return list(self._collection.upsert(texts, ids, metadata=metadata, **extra))

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the source document `ref_doc_id`."""
        _no_kwargs("delete", delete_kwargs)
        ops.delete_where(self._collection, {"ref_doc_id": ref_doc_id})

    def delete_nodes(self, node_ids: list[str] | None = None, filters: Any = None, **delete_kwargs: Any) -> None:
        """Delete the nodes among `node_ids` (unknown ones are ignored) that match `filters`."""
        _no_kwargs("delete_nodes", delete_kwargs)
        where = filters_to_where(filters)
        if node_ids is None and where is None:
            raise InvalidParameterError("delete_nodes needs node_ids or filters; clear() deletes every node.")
        if node_ids is None:
            ops.delete_where(self._collection, where)
            return
        ids = list(node_ids) if where is None else _among(ops.matching_ids(self._collection, where), node_ids)
        for lo in range(0, len(ids), ops.PAGE):
            ops.delete_existing(self._collection, ids[lo : lo + ops.PAGE])

    def clear(self) -> None:
        """Delete every document of the collection."""
        ops.delete_where(self._collection, None)

    def get_nodes(self, node_ids: list[str] | None = None, filters: Any = None) -> list[Any]:
        """The stored nodes among `node_ids` (unknown ones are skipped) that match `filters` (None: all)."""
        where = filters_to_where(filters)
        if node_ids is None:
            docs = ops.matching_documents(self._collection, where)
        else:
            docs = ops.get_existing(self._collection, list(node_ids))
            if where is not None:
                keep = set(ops.matching_ids(self._collection, where))
                docs = [doc for doc in docs if doc["id"] in keep]
        return [_to_node(doc["id"], doc["text"], doc["metadata"]) for doc in docs]

    # -- query -----------------------------------------------------------------------------------------------
    def query(self, query: Any, **kwargs: Any) -> Any:
        """The top ``similarity_top_k`` nodes for a ``VectorStoreQuery`` (see the class for what is supported)."""
        _no_kwargs("query", kwargs)
        mode = _MODES.get(getattr(query.mode, "value", query.mode))
        if mode is None:
            raise InvalidParameterError(
                f"SemspaceVectorStore does not support the {query.mode!r} query mode; use default (dense), "
                "sparse/text_search (BM25) or hybrid."
            )
        if query.node_ids:
            raise InvalidParameterError(
                "SemspaceVectorStore cannot restrict a query to node_ids (semspace filters read metadata); "
                "filter on metadata or on doc_ids instead."
            )
        doc_filter = {"ref_doc_id": {"$in": list(query.doc_ids)}} if query.doc_ids else None
        where = ops.both(filters_to_where(query.filters), doc_filter)
        k = query.hybrid_top_k if mode == "hybrid" and query.hybrid_top_k else query.similarity_top_k
        if self.use_node_embeddings and mode == "hybrid":
            raise InvalidParameterError(
                "use_node_embeddings=True: a hybrid query would embed the query with the collection's own encoder; "
                "use the default (dense) or a sparse/text_search (BM25) query."
            )
        if self.use_node_embeddings and mode == "dense":
            if query.query_embedding is None:
                raise InvalidInputError("use_node_embeddings=True needs the query's embedding (query_embedding).")
            vector = ops.as_matrix([query.query_embedding], self._raw_dim, "The query embedding")
            result = self._collection.search_vectors(vector, k, where=where)[0]
        else:
            if not query.query_str:
                raise InvalidInputError(
                    "SemspaceVectorStore searches with the query's text (query_str), which the collection embeds; "
                    "this query has none (or pass use_node_embeddings=True on a local collection)."
                )
            extra = {}
            if mode == "hybrid" and query.alpha is not None:
                if not ops.accepts(self._collection.search, "alpha"):
                    raise InvalidParameterError(
                        "This collection's search takes no alpha (weighted fusion); leave alpha unset for "
                        "reciprocal-rank fusion."
                    )
                extra = {"fusion": "weighted", "alpha": query.alpha}
            result = self._collection.search(query.query_str, k=k, where=where, mode=mode, **extra)
        return VectorStoreQueryResult(
            nodes=[_to_node(i, t, m) for i, t, m in zip(result.ids, result.texts, result.metadata, strict=True)],
            similarities=[float(s) for s in result.scores],
            ids=list(result.ids),
        )


def filters_to_where(filters: Any, depth: int = 0) -> dict | None:
    """LlamaIndex ``MetadataFilters`` as a semspace `where` filter (None: no filter); InvalidParameterError for what
    has no exact equivalent (``NOT``; the ``any/all/contains/text_match/is_empty`` operators)."""
    if filters is None or not filters.filters:
        return None
    if depth > MAX_DEPTH:
        raise InvalidParameterError(f"MetadataFilters nested deeper than {MAX_DEPTH} levels.")
    condition = getattr(filters.condition, "value", filters.condition) or "and"
    if condition not in ("and", "or"):
        raise InvalidParameterError(
            f"semspace filters have no {condition.upper()} condition; use AND or OR (!= and nin negate one field)."
        )
    parts = []
    for flt in filters.filters:
        if isinstance(flt, MetadataFilters):
            sub = filters_to_where(flt, depth + 1)
            if sub is not None:
                parts.append(sub)
            continue
        op = _OPERATORS.get(getattr(flt.operator, "value", flt.operator))
        if op is None:
            raise InvalidParameterError(
                f"The filter operator {flt.operator.value!r} on {flt.key!r} has no equivalent in semspace's filters; "
                f"use one of {', '.join(_OPERATORS)}."
            )
        parts.append({flt.key: {op: flt.value}})
    if not parts:
        return None
    return ops.check_where(parts[0] if len(parts) == 1 else {f"${condition}": parts})


def _to_node(doc_id: str, text: str, metadata: dict) -> Any:
    """The node a document stands for: rebuilt from LlamaIndex's ``_node_content`` when it has one (the text put
    back), else a ``TextNode`` of its id, text and metadata."""
    if "_node_content" in metadata:
        try:
            return _utils.metadata_dict_to_node(metadata, text=text)
        except ValueError:  # not LlamaIndex's JSON after all: fall through to a plain node
            pass
    return _schema.TextNode(id_=doc_id, text=text, metadata=metadata)


def _among(ids: Sequence[str], wanted: Sequence[str]) -> list[str]:
    wanted = set(wanted)
    return [i for i in ids if i in wanted]


def _no_kwargs(method: str, kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise InvalidParameterError(f"SemspaceVectorStore.{method} takes no {', '.join(sorted(kwargs))}.")
