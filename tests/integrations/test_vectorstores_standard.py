"""LangChain's own standard vector-store tests (langchain-tests' VectorStoreIntegrationTests) over
SemspaceVectorStore, both ways the adapter embeds:

- TestCollectionEmbeds: the collection embeds texts and queries with its own encoder (the bundled MiniLM), over every
  collection kind of `make_collection` (local, its public methods alone, and a live server's through the client). The
  suite's fake embedding (`get_embeddings`) is not used: the adapter's point is that the collection embeds.
- TestLangChainEmbedding: the suite's own DeterministicFakeEmbedding (6-d) is stored and searched, over a local
  collection whose encoder is 6-d too (a tiny random BERT: only its dimension matters, it never encodes here).

The suite's async tests run through pytest-asyncio, marked here: the suite expects `asyncio_mode = "auto"`, which
would apply to every test of the project. The mark on its sync tests only draws a warning, silenced here.
"""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_tests")
pytest.importorskip("pytest_asyncio")

from langchain_tests.integration_tests.vectorstores import EMBEDDING_SIZE, VectorStoreIntegrationTests
from support import save_tiny_bert

from semspace import Collection, Encoder
from semspace.integrations.langchain import SemspaceVectorStore

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings(
        "ignore:The test <Function .*> is marked with '@pytest.mark.asyncio' but it is not an async function"
    ),
]


@pytest.fixture(scope="module")
def encoder_of_the_fake_dimension(tmp_path_factory) -> Encoder:
    """An Encoder whose vectors have the fake embedding's dimension (a 1-layer random BERT, hidden EMBEDDING_SIZE)."""
    folder = save_tiny_bert(
        tmp_path_factory.mktemp("bert-6d"),
        words=["foo", "bar"],
        hidden_size=EMBEDDING_SIZE,
        num_hidden_layers=1,
        intermediate_size=12,
    )
    return Encoder(str(folder))


class TestCollectionEmbeds(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, make_collection) -> SemspaceVectorStore:
        return SemspaceVectorStore(make_collection("standard"))


class TestLangChainEmbedding(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tmp_path, encoder_of_the_fake_dimension):
        with Collection.create(tmp_path / "fake-6d", encoder=encoder_of_the_fake_dimension) as collection:
            yield SemspaceVectorStore(collection, embedding=self.get_embeddings())
