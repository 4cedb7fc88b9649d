"""The LangChain and LlamaIndex vector stores over a semspace collection: add, search, filter, delete, retrievers, a
RAG-style LangChain chain and a LlamaIndex VectorStoreIndex. Every test that takes `make_collection` runs over each
collection kind of conftest.py (a local Collection, the public methods alone, and a server's once added there)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from semspace.errors import InvalidInputError, InvalidParameterError

pytest.importorskip("langchain_core")

CORPUS = [
    ("pets-1", "A cat sleeps on the warm sofa all afternoon.", {"topic": "pets", "year": 2019, "lang": "en"}),
    ("pets-2", "The dog fetches the ball in the park.", {"topic": "pets", "year": 2021, "lang": "en"}),
    ("travel-1", "The plane takes off from the airport at dawn.", {"topic": "travel", "year": 2020, "lang": "en"}),
    ("travel-2", "Trains across Europe are fast and comfortable.", {"topic": "travel", "year": 2023, "lang": "en"}),
    ("food-1", "Fresh bread and cheese make a simple lunch.", {"topic": "food", "year": 2022, "lang": "fr"}),
    ("math-1", "Whitening makes the covariance of sentence vectors the identity.", {"topic": "math", "year": 2021}),
]
IDS = [i for i, _, _ in CORPUS]
TEXTS = [t for _, t, _ in CORPUS]
META = [m for _, _, m in CORPUS]


def _lc_store(collection, **kwargs):
    from semspace.integrations.langchain import SemspaceVectorStore

    store = SemspaceVectorStore(collection, **kwargs)
    assert store.add_texts(TEXTS, META, ids=IDS) == IDS
    return store


# -- LangChain -----------------------------------------------------------------------------------------------------
def test_langchain_search_scores_filters(make_collection):
    store = _lc_store(make_collection())
    docs = store.similarity_search("a kitten naps on the couch", k=2)
    assert docs[0].id == "pets-1" and len(docs) == 2
    assert docs[0].page_content == TEXTS[0] and docs[0].metadata == META[0]
    pairs = store.similarity_search_with_score("a kitten naps on the couch", k=6)
    scores = [s for _, s in pairs]
    assert len(pairs) == 6 and scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0 for s in scores)

    def ids(flt, query="animals", k=6):
        return sorted(d.id for d in store.similarity_search(query, k=k, filter=flt))

    assert ids({"topic": "travel"}) == ["travel-1", "travel-2"]
    assert ids({"topic": {"$in": ["food", "math"]}}) == ["food-1", "math-1"]
    assert ids({"year": {"$between": [2020, 2021]}}) == ["math-1", "pets-2", "travel-1"]
    assert ids({"$or": [{"lang": "fr"}, {"year": {"$lt": 2020}}]}) == ["food-1", "pets-1"]
    assert ids({"$and": [{"topic": "pets"}, {"year": {"$gte": 2020}}]}) == ["pets-2"]
    assert ids({"topic": {"$ne": "pets"}, "lang": "en"}) == ["travel-1", "travel-2"]
    assert ids({"topic": "travel"}, query="a plane at the airport", k=1) == ["travel-1"]  # the best k of the matches
    assert store.similarity_search("bread", k=1, filter={"topic": "nothing"}) == []


def test_langchain_relevance_scores_and_modes(make_collection):
    store = _lc_store(make_collection())
    pairs = store.similarity_search_with_relevance_scores("a kitten naps on the couch", k=6)
    assert all(0.0 <= s <= 1.0 for _, s in pairs)
    cosines = dict((d.id, s) for d, s in store.similarity_search_with_score("a kitten naps on the couch", k=6))
    assert all(s == min(max(cosines[d.id], 0.0), 1.0) for d, s in pairs)
    top = store.similarity_search_with_relevance_scores("a kitten naps on the couch", k=6, score_threshold=0.3)
    assert top and all(s >= 0.3 for _, s in top) and top[0][0].id == "pets-1"
    lexical = store.similarity_search("cheese bread lunch", k=1, mode="bm25")
    assert [d.id for d in lexical] == ["food-1"]
    assert store.similarity_search("cheese bread lunch", k=1, mode="hybrid")[0].id == "food-1"
    with pytest.raises(InvalidParameterError, match="only a dense search"):
        store.similarity_search_with_relevance_scores("cheese", k=1, mode="bm25")
    with pytest.raises(InvalidParameterError, match="mode"):
        store.similarity_search("cheese", mode="semantic")
    with pytest.raises(InvalidParameterError, match="fetch_k"):
        store.similarity_search("cheese", fetch_k=3)


def test_langchain_writes_get_and_delete(make_collection):
    collection = make_collection()
    store = _lc_store(collection)
    assert [d.id for d in store.get_by_ids(["math-1", "nope", "pets-1", "math-1"])] == ["math-1", "pets-1"]
    # ids given: add or replace (upsert); mixed: the missing ones are generated
    ids = store.add_texts(
        ["A cat sleeps on the sofa.", "A parrot talks."], [{"topic": "pets"}, {}], ids=["pets-1", None]
    )
    assert ids[0] == "pets-1" and isinstance(ids[1], str) and ids[1]
    assert store.get_by_ids(["pets-1"])[0].metadata == {"topic": "pets"}
    assert len(collection) == 7
    assert store.delete(["pets-1", "no-such-id"]) is True
    assert store.get_by_ids(["pets-1"]) == [] and len(collection) == 6
    store.delete(filter={"topic": "travel"})
    assert collection.count({"topic": "travel"}) == 0 and len(collection) == 4
    with pytest.raises(InvalidParameterError, match="needs ids"):
        store.delete()
    store.delete(filter={})
    assert len(collection) == 0 and store.similarity_search("anything", k=3) == []


def test_langchain_refuses_what_it_cannot_translate(make_collection):
    store = _lc_store(make_collection())
    for flt, match in [
        (lambda doc: True, "function"),
        ({"topic": {"$like": "pe%"}}, r"\$like"),
        ({"topic": {"$exists": True}}, r"\$exists"),
        ({"$not": {"topic": "pets"}}, r"\$not"),
        ({"year": {"$between": [2020]}}, "between"),
        ({"topic": {"$gt": [1, 2]}}, "Invalid where filter"),
    ]:
        with pytest.raises(InvalidParameterError, match=match):
            store.similarity_search("cat", k=1, filter=flt)
    with pytest.raises(InvalidParameterError, match="Collection"):
        from semspace.integrations.langchain import SemspaceVectorStore

        SemspaceVectorStore(object())


def test_langchain_rag_retriever(make_collection):
    from langchain_core.documents import Document
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnablePassthrough

    store = _lc_store(make_collection())
    retriever = store.as_retriever(search_kwargs={"k": 2})
    docs = retriever.invoke("Which animal naps on the couch?")
    assert isinstance(docs[0], Document) and docs[0].id == "pets-1" and len(docs) == 2
    assert asyncio.run(retriever.ainvoke("Which animal naps on the couch?")) == docs
    filtered = store.as_retriever(search_kwargs={"k": 3, "filter": {"topic": "travel"}})
    assert {d.id for d in filtered.invoke("animals")} == {"travel-1", "travel-2"}
    threshold = store.as_retriever(search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.3})
    assert threshold.invoke("Which animal naps on the couch?")[0].id == "pets-1"

    prompt = ChatPromptTemplate.from_template("Answer from the context.\nContext:\n{context}\nQuestion: {question}")
    chain = {
        "context": retriever | (lambda found: "\n".join(d.page_content for d in found)),
        "question": RunnablePassthrough(),
    } | prompt
    message = chain.invoke("Which animal naps on the couch?").to_messages()[0].content
    assert TEXTS[0] in message and "Question: Which animal naps on the couch?" in message


def test_langchain_from_texts_and_from_documents(tmp_path, bundled_encoder, make_collection):
    from langchain_core.documents import Document

    from semspace.integrations.langchain import SemspaceEmbeddings, SemspaceVectorStore

    store = SemspaceVectorStore.from_texts(TEXTS, None, META, ids=IDS, path=tmp_path / "new", encoder=bundled_encoder)
    assert store.similarity_search("kitten on a sofa", k=1)[0].id == "pets-1"
    again = SemspaceVectorStore.from_texts(["A horse runs."], path=tmp_path / "new")  # opens the existing one
    assert len(again.collection) == len(CORPUS) + 1
    store.collection.close()
    again.collection.close()
    over = SemspaceVectorStore.from_documents(
        [Document(page_content=t, metadata=m, id=i) for i, t, m in CORPUS], None, collection=make_collection()
    )
    assert over.get_by_ids(["food-1"])[0].page_content == TEXTS[4]
    with pytest.raises(InvalidParameterError, match="exactly one"):
        SemspaceVectorStore.from_texts(TEXTS, None)
    # a SemspaceEmbeddings given to from_texts: its encoder makes the collection, its vectors are stored
    embedded = SemspaceVectorStore.from_texts(TEXTS, SemspaceEmbeddings(bundled_encoder), path=tmp_path / "emb")
    assert (
        embedded.embeddings is not None
        and embedded.similarity_search("kitten on a sofa", k=1)[0].page_content == (TEXTS[0])
    )
    embedded.collection.close()


def test_langchain_external_embeddings_only_where_they_fit(make_collection, bundled_encoder):
    from langchain_core.embeddings import DeterministicFakeEmbedding

    from semspace.integrations.langchain import SemspaceVectorStore

    collection = make_collection()
    query = bundled_encoder.encode("a kitten naps on the couch").tolist()
    if not callable(getattr(collection, "search_vectors", None)):  # a collection that embeds by itself only
        with pytest.raises(InvalidParameterError, match="embeds texts with its own encoder"):
            SemspaceVectorStore(collection, embedding=DeterministicFakeEmbedding(size=384))
        with pytest.raises(InvalidParameterError, match="embeds texts with its own encoder"):
            _lc_store(collection).similarity_search_by_vector(query, k=1)
        return
    store = SemspaceVectorStore(collection, embedding=DeterministicFakeEmbedding(size=6))
    with pytest.raises(InvalidParameterError, match="own encoder"):
        store.similarity_search("a cat", mode="hybrid")
    with pytest.raises(InvalidInputError, match="6-d vectors; the collection stores 384-d"):
        store.add_texts(["a cat"])
    assert len(collection) == 0
    assert _lc_store(collection).similarity_search_by_vector(query, k=1)[0].id == "pets-1"
    with pytest.raises(InvalidInputError, match="5-d vectors"):
        SemspaceVectorStore(collection).similarity_search_by_vector([0.1] * 5)


# -- LlamaIndex ----------------------------------------------------------------------------------------------------
def _nodes():
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

    return [
        TextNode(
            id_=i,
            text=t,
            metadata=m,
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"doc-{m['topic']}")},
        )
        for i, t, m in CORPUS
    ]


def test_llamaindex_vector_store_contract(make_collection):
    pytest.importorskip("llama_index.core")
    from llama_index.core.vector_stores import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters
    from llama_index.core.vector_stores.types import VectorStoreQuery

    from semspace.integrations.llamaindex import SemspaceVectorStore

    collection = make_collection()
    store = SemspaceVectorStore(collection)
    assert store.stores_text and not store.is_embedding_query and store.client is collection
    assert store.add(_nodes()) == IDS
    result = store.query(VectorStoreQuery(query_str="a kitten naps on the couch", similarity_top_k=2))
    assert result.ids[0] == "pets-1" and len(result.nodes) == 2 and result.similarities[0] >= result.similarities[1]
    node = result.nodes[0]
    assert node.node_id == "pets-1" and node.get_content() == TEXTS[0] and node.metadata == META[0]
    assert node.ref_doc_id == "doc-pets"

    def ids(filters, **query):
        found = store.query(VectorStoreQuery(query_str="animals", similarity_top_k=6, filters=filters, **query))
        return sorted(found.ids)

    travel_or_old = MetadataFilters(
        filters=[MetadataFilter(key="topic", value="travel"), MetadataFilter(key="year", value=2020, operator="<")],
        condition=FilterCondition.OR,
    )
    assert ids(travel_or_old) == ["pets-1", "travel-1", "travel-2"]
    nested = MetadataFilters(
        filters=[travel_or_old, MetadataFilter(key="year", value=2020, operator=FilterOperator.GTE)]
    )
    assert ids(nested) == ["travel-1", "travel-2"]
    assert ids(MetadataFilters(filters=[MetadataFilter(key="topic", value=["food", "math"], operator="in")])) == [
        "food-1",
        "math-1",
    ]
    assert ids(None, doc_ids=["doc-pets"]) == ["pets-1", "pets-2"]
    bm25 = store.query(VectorStoreQuery(query_str="cheese bread lunch", similarity_top_k=1, mode="text_search"))
    assert bm25.ids == ["food-1"]
    hybrid = store.query(VectorStoreQuery(query_str="cheese bread lunch", similarity_top_k=1, mode="hybrid"))
    assert hybrid.ids == ["food-1"]
    assert asyncio.run(store.aquery(VectorStoreQuery(query_str="a kitten naps", similarity_top_k=1))).ids == ["pets-1"]

    pets = MetadataFilters(filters=[MetadataFilter(key="topic", value="pets")])
    assert sorted(n.node_id for n in store.get_nodes(filters=pets)) == ["pets-1", "pets-2"]
    assert [n.node_id for n in store.get_nodes(node_ids=["math-1", "gone", "pets-2"], filters=pets)] == ["pets-2"]
    store.delete("doc-travel")
    assert collection.count({"topic": "travel"}) == 0
    store.delete_nodes(node_ids=["pets-1", "food-1", "gone"], filters=pets)
    assert sorted(n.node_id for n in store.get_nodes()) == ["food-1", "math-1", "pets-2"]
    store.delete_nodes(filters=pets)
    assert len(collection) == 2
    store.clear()
    assert len(collection) == 0 and store.query(VectorStoreQuery(query_str="cat", similarity_top_k=3)).ids == []


def test_llamaindex_refuses_what_it_cannot_translate(make_collection):
    pytest.importorskip("llama_index.core")
    from llama_index.core.vector_stores import FilterCondition, MetadataFilter, MetadataFilters
    from llama_index.core.vector_stores.types import VectorStoreQuery

    from semspace.integrations.llamaindex import SemspaceVectorStore, filters_to_where

    store = SemspaceVectorStore(make_collection())
    store.add(_nodes())
    assert filters_to_where(MetadataFilters(filters=[])) is None
    assert filters_to_where(MetadataFilters(filters=[MetadataFilter(key="a", value=1, operator="!=")])) == {
        "a": {"$ne": 1}
    }
    for filters, match in [
        (MetadataFilters(filters=[MetadataFilter(key="a", value=1)], condition=FilterCondition.NOT), "NOT"),
        (MetadataFilters(filters=[MetadataFilter(key="tags", value="x", operator="contains")]), "contains"),
        (MetadataFilters(filters=[MetadataFilter(key="t", value="ca", operator="text_match")]), "text_match"),
        (MetadataFilters(filters=[MetadataFilter(key="bad key", value=1)]), "field names"),
    ]:
        with pytest.raises(InvalidParameterError, match=match):
            store.query(VectorStoreQuery(query_str="cat", filters=filters))
    with pytest.raises(InvalidParameterError, match="node_ids"):
        store.query(VectorStoreQuery(query_str="cat", node_ids=["pets-1"]))
    with pytest.raises(InvalidParameterError, match="mmr"):
        store.query(VectorStoreQuery(query_str="cat", mode="mmr"))
    with pytest.raises(InvalidInputError, match="query_str"):
        store.query(VectorStoreQuery(query_embedding=[0.0] * 384))
    with pytest.raises(InvalidParameterError, match="clear"):
        store.delete_nodes()


def test_llamaindex_index_retrieves_from_a_semspace_collection(make_collection, bundled_encoder):
    pytest.importorskip("llama_index.core")
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core.vector_stores import MetadataFilter, MetadataFilters

    from semspace.integrations.llamaindex import SemspaceEmbedding, SemspaceVectorStore

    collection = make_collection()
    collection.add(TEXTS, ids=IDS, metadata=META)  # filled by semspace itself, not through LlamaIndex
    index = VectorStoreIndex.from_vector_store(
        SemspaceVectorStore(collection), embed_model=SemspaceEmbedding(bundled_encoder)
    )
    hits = index.as_retriever(similarity_top_k=2).retrieve("Which animal naps on the couch?")
    assert len(hits) == 2 and hits[0].node.node_id == "pets-1" and hits[0].node.get_content() == TEXTS[0]
    assert hits[0].score == pytest.approx(collection.search("Which animal naps on the couch?", k=1).scores[0])
    travel = MetadataFilters(filters=[MetadataFilter(key="topic", value="travel")])
    assert {h.node.node_id for h in index.as_retriever(similarity_top_k=5, filters=travel).retrieve("cats")} == {
        "travel-1",
        "travel-2",
    }
    index.insert(Document(text="Penguins huddle together on the Antarctic ice.", id_="doc-penguins"))
    hit = index.as_retriever(similarity_top_k=1).retrieve("birds in the cold south")[0]
    assert hit.node.ref_doc_id == "doc-penguins" and "Penguins" in hit.node.get_content()
    assert len(collection) == len(CORPUS) + 1  # searchable from semspace too
    assert collection.search("penguins on ice", k=1).texts[0].startswith("Penguins")
    index.delete_ref_doc("doc-penguins")
    assert len(collection) == len(CORPUS)


def test_llamaindex_node_embeddings_on_a_local_collection(make_collection, bundled_encoder):
    pytest.importorskip("llama_index.core")
    from llama_index.core import VectorStoreIndex
    from llama_index.core.vector_stores.types import VectorStoreQuery

    from semspace.integrations.llamaindex import SemspaceEmbedding, SemspaceVectorStore

    collection = make_collection()
    if not callable(getattr(collection, "search_vectors", None)):
        with pytest.raises(InvalidParameterError, match="embeds texts with its own encoder"):
            SemspaceVectorStore(collection, use_node_embeddings=True)
        return
    embed = SemspaceEmbedding(bundled_encoder)
    store = SemspaceVectorStore(collection, use_node_embeddings=True)
    assert store.is_embedding_query
    index = VectorStoreIndex(_nodes(), storage_context=_storage(store), embed_model=embed)
    assert index.as_retriever(similarity_top_k=1).retrieve("a kitten naps on the couch")[0].node.node_id == "pets-1"
    vectors = {doc_id: vector for doc_id, _, _, vector in collection.iter_documents()}
    embedded_text = _nodes()[0].get_content(metadata_mode="embed")  # what LlamaIndex embeds: text and metadata
    np.testing.assert_allclose(vectors["pets-1"], embed.get_text_embedding(embedded_text), atol=1e-6)
    with pytest.raises(InvalidInputError, match="5-d"):
        store.query(VectorStoreQuery(query_embedding=[0.1] * 5))
    with pytest.raises(InvalidParameterError, match="own encoder"):
        store.query(VectorStoreQuery(query_str="a cat", mode="hybrid"))


def _storage(store):
    from llama_index.core import StorageContext

    return StorageContext.from_defaults(vector_store=store)


def test_semspace_embedding_matches_the_encoder(bundled_encoder):
    pytest.importorskip("llama_index.core")
    from llama_index.core.base.embeddings.base import BaseEmbedding

    from semspace.integrations.llamaindex import SemspaceEmbedding

    embed = SemspaceEmbedding(bundled_encoder)
    assert isinstance(embed, BaseEmbedding) and embed.model_name == bundled_encoder.model_id
    np.testing.assert_allclose(embed.get_query_embedding("a cat"), bundled_encoder.encode_query("a cat"), atol=1e-6)
    np.testing.assert_allclose(
        embed.get_text_embedding_batch(TEXTS[:3]), bundled_encoder.encode_document(TEXTS[:3]), atol=1e-6
    )
    assert asyncio.run(embed.aget_query_embedding("a cat")) == embed.get_query_embedding("a cat")
    with pytest.raises(InvalidParameterError, match="Encoder"):
        SemspaceEmbedding(bundled_encoder, pooling="cls")
