"""SemspaceEmbeddings: a LangChain Embeddings that a LangChain vector store can use."""

from __future__ import annotations

import numpy as np
import pytest

from semspace import Encoder

pytest.importorskip("langchain_core")

DOCS = ["a man is playing a guitar", "a dog is running in the park", "a plane is taking off"]


def test_embeddings_interface(tiny_bert_dir):
    from langchain_core.embeddings import Embeddings

    from semspace.integrations.langchain import SemspaceEmbeddings

    encoder = Encoder(str(tiny_bert_dir))
    embeddings = SemspaceEmbeddings(encoder)
    assert isinstance(embeddings, Embeddings)
    vectors = embeddings.embed_documents(DOCS)
    assert isinstance(vectors, list) and len(vectors) == 3 and all(isinstance(x, float) for x in vectors[0])
    np.testing.assert_allclose(vectors, encoder.encode(DOCS), atol=1e-6)
    query = embeddings.embed_query("a dog")
    assert isinstance(query, list) and len(query) == 32
    np.testing.assert_allclose(query, encoder.encode("a dog"), atol=1e-6)
    assert embeddings.embed_documents([]) == []
    unit = SemspaceEmbeddings(encoder, normalize_embeddings=True).embed_documents(DOCS)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)


def test_e5_models_get_query_and_passage_prefixes(tiny_bert_dir, tmp_path):
    import shutil

    from semspace.integrations.langchain import SemspaceEmbeddings

    folder = tmp_path / "tiny-e5-small"
    shutil.copytree(tiny_bert_dir, folder)
    embeddings = SemspaceEmbeddings(str(folder))
    np.testing.assert_allclose(embeddings.embed_query("a dog"), embeddings.encoder.encode("query: a dog"), atol=1e-6)
    np.testing.assert_allclose(
        embeddings.embed_documents(DOCS), embeddings.encoder.encode(["passage: " + d for d in DOCS]), atol=1e-6
    )


def test_in_memory_vector_store_finds_the_document(tiny_bert_dir):
    import asyncio

    from langchain_core.vectorstores import InMemoryVectorStore

    from semspace.integrations.langchain import SemspaceEmbeddings

    embeddings = SemspaceEmbeddings(str(tiny_bert_dir))
    store = InMemoryVectorStore.from_texts(DOCS, embeddings)
    assert store.similarity_search(DOCS[1], k=1)[0].page_content == DOCS[1]
    assert asyncio.run(embeddings.aembed_query("a dog")) == embeddings.embed_query("a dog")
