"""LlamaIndex's clients of an embeddings server against a live `semspace serve` on 127.0.0.1, each set up as its
docs say for a server that is not OpenAI's (issue 27): `OpenAIEmbedding` and `OpenAILikeEmbedding` (/v1/embeddings),
`TextEmbeddingsInference` (TEI's /embed) and the TEI rerank postprocessor (/rerank). Each test skips when its
package is missing (they are in the dev extra)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from support import CLIENT_KEY, CLIENT_TEXTS

from semspace.interact.cross_encoder import CrossEncoder
from semspace.service import Limits


@pytest.fixture
def served(serve_keyed):
    with serve_keyed(Limits(max_batch=16)) as srv:
        yield srv


def importorskip(module: str, package: str):
    return pytest.importorskip(module, reason=f"{package} is not installed (pip install -e '.[dev]')")


def test_openai_embedding_with_its_default_model_name(served, tiny_encoder):
    """`OpenAIEmbedding(api_base=..., api_key=...)` sends its default `text-embedding-ada-002`: the served model
    answers."""
    openai_embeddings = importorskip("llama_index.embeddings.openai", "llama-index-embeddings-openai")
    embed = openai_embeddings.OpenAIEmbedding(api_base=f"{served.url}/v1", api_key=CLIENT_KEY, max_retries=0)
    expected = tiny_encoder.encode(CLIENT_TEXTS)
    np.testing.assert_allclose(embed.get_text_embedding_batch(CLIENT_TEXTS), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(embed.get_query_embedding(CLIENT_TEXTS[1]), expected[1], rtol=1e-5, atol=1e-6)


def test_openai_like_embedding_sync_and_async(served, tiny_encoder):
    openai_like = importorskip("llama_index.embeddings.openai_like", "llama-index-embeddings-openai-like")
    embed = openai_like.OpenAILikeEmbedding(
        model_name=tiny_encoder.model_id, api_base=f"{served.url}/v1", api_key=CLIENT_KEY, embed_batch_size=2
    )
    expected = tiny_encoder.encode(CLIENT_TEXTS)
    np.testing.assert_allclose(embed.get_text_embedding_batch(CLIENT_TEXTS), expected, rtol=1e-5, atol=1e-6)
    got = asyncio.run(embed.aget_text_embedding_batch(CLIENT_TEXTS))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_text_embeddings_inference_embedding(served, tiny_encoder):
    """`TextEmbeddingsInference(model_name, base_url, auth_token)` posts TEI's body to /embed (`truncate`: true):
    the vectors come back normalised, TEI's default."""
    tei = importorskip(
        "llama_index.embeddings.text_embeddings_inference", "llama-index-embeddings-text-embeddings-inference"
    )
    embed = tei.TextEmbeddingsInference(model_name=tiny_encoder.model_id, base_url=served.url, auth_token=CLIENT_KEY)
    expected = tiny_encoder.encode(CLIENT_TEXTS, normalize=True)
    np.testing.assert_allclose(embed.get_text_embedding_batch(CLIENT_TEXTS), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(embed.get_query_embedding(CLIENT_TEXTS[0]), expected[0], rtol=1e-5, atol=1e-6)
    got = asyncio.run(embed.aget_text_embedding_batch(CLIENT_TEXTS))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_tei_rerank_postprocessor(served, tiny_cross_encoder_dir):
    """The TEI rerank postprocessor posts `{"query", "texts"}` to /rerank and reads `index`/`score`; it sends
    `auth_token` as the whole Authorization header, so a key goes in as "Bearer CLIENT_KEY"."""
    rerank = importorskip("llama_index.postprocessor.tei_rerank", "llama-index-postprocessor-tei-rerank")
    from llama_index.core.schema import NodeWithScore, TextNode

    nodes = [NodeWithScore(node=TextNode(text=t), score=0.0) for t in CLIENT_TEXTS]
    reranker = rerank.TextEmbeddingInference(base_url=served.url, top_n=2, auth_token=f"Bearer {CLIENT_KEY}")
    kept = reranker.postprocess_nodes(nodes, query_str="a dog is running")
    logits = CrossEncoder(str(tiny_cross_encoder_dir)).predict([("a dog is running", t) for t in CLIENT_TEXTS])
    expected = 1 / (1 + np.exp(-logits.astype(np.float64)))
    best = np.argsort(-expected, kind="stable")[:2]
    assert [n.node.text for n in kept] == [CLIENT_TEXTS[i] for i in best]
    np.testing.assert_allclose([n.score for n in kept], expected[best], rtol=1e-5, atol=1e-6)
