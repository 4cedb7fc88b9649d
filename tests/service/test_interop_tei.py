"""TEI's routes and bodies as its clients send them, over real HTTP on 127.0.0.1 (issue 27): huggingface_hub's
`InferenceClient` posting to the base URL, POST /invocations, POST /embeddings, GET /ping, `dimensions` and
`prompt_name` on /embed, any `model` name on /v1/embeddings, 415 for a body not sent as JSON, and error bodies that
name the fields of the body the client sent (never a dump of every member of a union)."""

from __future__ import annotations

import json

import httpx
import numpy as np
import openai
import pytest
from support import CLIENT_KEY, CLIENT_TEXTS

from semspace import Encoder
from semspace.search import Collection
from semspace.service import Limits, create_app


@pytest.fixture
def served(serve_keyed):
    with serve_keyed(Limits(max_batch=16), rerank=False) as srv:
        yield srv


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def test_huggingface_hub_inference_client(served, tiny_encoder):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    client = huggingface_hub.InferenceClient(base_url=served.url, api_key=CLIENT_KEY, timeout=30)
    vectors = client.feature_extraction(CLIENT_TEXTS)  # posts TEI's body to the base URL itself
    assert vectors.shape == (3, 32)
    np.testing.assert_allclose(vectors, tiny_encoder.encode(CLIENT_TEXTS, normalize=True), rtol=1e-5, atol=1e-6)
    raw = client.feature_extraction("a dog", normalize=False, truncate=True)
    np.testing.assert_allclose(raw, tiny_encoder.encode(["a dog"]), rtol=1e-5, atol=1e-6)


def test_tei_root_invocations_embeddings_and_ping(http, tiny_encoder):
    expected = tiny_encoder.encode(CLIENT_TEXTS, normalize=True)
    for path in ("/", "/invocations", "/embed"):
        np.testing.assert_allclose(
            http.post(path, json={"inputs": CLIENT_TEXTS}).json(), expected, rtol=1e-5, atol=1e-6
        )
    ours = http.post("/", json={"texts": ["a dog"]}).json()  # semspace's own body works there too
    assert ours["dim"] == 32
    openai_body = http.post("/embeddings", json={"input": CLIENT_TEXTS, "model": "anything"}).json()
    np.testing.assert_array_equal(
        np.array([d["embedding"] for d in openai_body["data"]], dtype=np.float32), tiny_encoder.encode(CLIENT_TEXTS)
    )
    assert openai_body["model"] == tiny_encoder.model_id
    ping = http.get("/ping")
    assert ping.status_code == 200 and ping.json()["status"] == "ok"
    assert http.get("/").headers["content-type"].startswith("text/html")  # GET / is still the search page
    errors = http.post("/embeddings", json={"input": 3})  # OpenAI's error shape, as on /v1/embeddings
    assert errors.status_code == 422 and errors.json()["error"]["param"] == "input"


def test_any_model_name_is_the_served_model(served, tiny_encoder):
    """Most tools send `text-embedding-3-small` unless told; TEI ignores `model`, and so does semspace."""
    c = openai.OpenAI(base_url=f"{served.url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=30)
    for name in ("text-embedding-3-small", tiny_encoder.model_id, "sentence-transformers/all-MiniLM-L6-v2"):
        got = c.embeddings.create(model=name, input=CLIENT_TEXTS, encoding_format="float")
        assert got.model == tiny_encoder.model_id
        np.testing.assert_array_equal(
            np.array([d.embedding for d in got.data], dtype=np.float32), tiny_encoder.encode(CLIENT_TEXTS)
        )
    no_model = httpx.post(
        f"{served.url}/v1/embeddings", json={"input": "a dog"}, headers={"Authorization": f"Bearer {CLIENT_KEY}"}
    )
    assert no_model.status_code == 200


def test_embed_dimensions_are_the_whitened_components(http, tiny_encoder, whitened_collection):
    with Collection.open(whitened_collection, encoder=tiny_encoder) as coll:
        whitened = coll.transform.transform(tiny_encoder.encode(CLIENT_TEXTS))
    four = np.array(http.post("/embed", json={"inputs": CLIENT_TEXTS, "dimensions": 4}).json())
    assert four.shape == (3, 4)
    np.testing.assert_allclose(four, unit(whitened[:, :4]), rtol=1e-4, atol=1e-5)  # normalised after, as TEI
    raw = http.post("/embed", json={"inputs": CLIENT_TEXTS, "dimensions": 4, "normalize": False}).json()
    np.testing.assert_allclose(raw, whitened[:, :4], rtol=1e-4, atol=1e-5)
    native = http.post("/embed", json={"inputs": CLIENT_TEXTS, "dimensions": 32}).json()
    np.testing.assert_allclose(native, tiny_encoder.encode(CLIENT_TEXTS, normalize=True), rtol=1e-5, atol=1e-6)
    refused = http.post("/embed", json={"inputs": CLIENT_TEXTS, "dimensions": 12})
    assert refused.status_code == 422 and "dimensions=12 is not available: use 32" in refused.json()["detail"]


def test_prompt_name_uses_the_models_prompts(tiny_bert_dir, tmp_path, live_server):
    st = pytest.importorskip("sentence_transformers")
    try:  # sentence-transformers >= 6; `sentence_transformers.models` before
        from sentence_transformers.sentence_transformer import modules
    except ImportError:
        from sentence_transformers import models as modules
    parts = [modules.Transformer(str(tiny_bert_dir)), modules.Pooling(32, pooling_mode="mean")]
    st.SentenceTransformer(modules=parts, device="cpu", prompts={"query": "a man "}).save(str(tmp_path / "st"))
    encoder = Encoder(str(tmp_path / "st"))
    with live_server(create_app(None, encoder=encoder)) as srv:
        body = {"inputs": CLIENT_TEXTS, "prompt_name": "query", "normalize": False}
        got = httpx.post(f"{srv.url}/embed", json=body).json()
        np.testing.assert_allclose(got, encoder.encode(CLIENT_TEXTS, prompt_name="query"), rtol=1e-5, atol=1e-6)
        assert not np.allclose(got, encoder.encode(CLIENT_TEXTS), atol=1e-3)
        missing = httpx.post(f"{srv.url}/embed", json={"inputs": "a dog", "prompt_name": "passage"})
        detail = missing.json()["detail"]
        assert missing.status_code == 400 and detail.startswith("prompt_name='passage' is not available; use one of")
        assert "'query'" in detail


def test_prompt_name_without_prompts_is_a_clear_400(http):
    """Valid JSON asking for what the model does not have: a 400, as an unavailable `dimensions` on /v1."""
    refused = http.post("/embed", json={"inputs": "a dog", "prompt_name": "query"})
    assert refused.status_code == 400
    assert refused.json()["detail"] == "prompt_name='query' is not available; use null: this model has no prompts."


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/embed", "text/plain"), ("/embed", None), ("/", "application/x-www-form-urlencoded"), ("/v1/embeddings", None)],
)
def test_a_body_not_sent_as_json_is_415(http, path, content_type):
    headers = {} if content_type is None else {"content-type": content_type}
    body = json.dumps({"inputs": "a dog", "input": "a dog", "model": "m"}).encode()
    response = http.post(path, content=body, headers=headers)
    assert response.status_code == 415
    message = response.json()["error"]["message"] if path.startswith("/v1/") else response.json()["detail"]
    assert "Content-Type: application/json" in message


MALFORMED = [
    ("/embed", {"inputs": []}, [["body", "inputs"]]),  # issue 29: the schema's minItems
    ("/embed", {"inputs": 3}, [["body", "inputs"]]),
    ("/embed", {"inputs": "a", "prompt_name": 3}, [["body", "prompt_name"]]),
    ("/embed", {"inputs": "a", "dimensions": 0}, [["body", "dimensions"]]),
    ("/embed", {"texts": []}, [["body", "texts"]]),
    ("/embed", {"texts": ["a"], "inputs_": 1}, [["body", "inputs_"]]),
    ("/embed", [1, 2], [["body"]]),
    ("/", {"inputs": [], "normalize": "yes"}, [["body", "inputs"], ["body", "normalize"]]),
    ("/v1/embeddings", {"input": {"a": 1}}, None),
]


@pytest.mark.parametrize(("path", "body", "locs"), MALFORMED)
def test_malformed_bodies_name_the_fields_sent(http, path, body, locs):
    """One error per wrong field of the body the client sent, never one per member of a union."""
    response = http.post(path, json=body)
    assert response.status_code == 422
    if locs is None:  # OpenAI's shape: one message
        error = response.json()["error"]
        assert error["param"] == "input" and error["message"] == "input: Input should be a string or a list of strings"
        return
    detail = response.json()["detail"]
    assert [e["loc"] for e in detail] == locs
    assert not any(tag in json.dumps(detail) for tag in ("EmbedRequest", "list[str]", "function-after"))


def test_tokenize_and_decode_like_tei(http, tiny_bert_dir):
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(str(tiny_bert_dir))
    tokens = http.post("/tokenize", json={"inputs": ["a dog", "the big plane"]}).json()
    assert [[t["id"] for t in row] for row in tokens] == [reference(t)["input_ids"] for t in ("a dog", "the big plane")]
    first = tokens[0]
    assert first[0] == {"id": reference.cls_token_id, "text": "[CLS]", "special": True, "start": None, "stop": None}
    assert first[2] == {
        "id": reference.convert_tokens_to_ids("dog"),
        "text": "dog",
        "special": False,
        "start": 2,
        "stop": 5,
    }
    bare = http.post("/tokenize", json={"inputs": "a dog", "add_special_tokens": False}).json()
    assert [t["text"] for t in bare[0]] == ["a", "dog"]
    ids = [t["id"] for t in first]
    assert http.post("/decode", json={"ids": ids}).json() == [reference.decode(ids, skip_special_tokens=True)]
    both = http.post("/decode", json={"ids": [ids, ids], "skip_special_tokens": False}).json()
    assert both == [reference.decode(ids)] * 2 and both[0].startswith("[CLS]")
    unknown = http.post("/decode", json={"ids": [*ids, 10**6], "skip_special_tokens": False}).json()
    assert unknown == both[:1]  # ids the tokenizer does not know are skipped, as TEI's tokenizer does
    too_big = http.post("/decode", json={"ids": [2**32]})
    assert too_big.status_code == 422 and [e["loc"] for e in too_big.json()["detail"]] == [["body", "ids", 0, 0]]
    empty = http.post("/tokenize", json={"inputs": []})
    assert empty.status_code == 422 and [e["loc"] for e in empty.json()["detail"]] == [["body", "inputs"]]


def test_strict_model_refuses_a_model_not_served(tiny_encoder, live_server):
    """`create_app(strict_model=True)` (`serve --strict-model`): the old behaviour — a `model` that is not the served
    one is a 404 naming it, in OpenAI's error shape; the served id and a body without `model` still answer."""
    app = create_app(None, encoder=tiny_encoder, strict_model=True)
    with live_server(app) as srv:
        c = openai.OpenAI(base_url=f"{srv.url}/v1", api_key="unused", max_retries=0, timeout=30)
        with pytest.raises(openai.NotFoundError) as missing:
            c.embeddings.create(model="text-embedding-3-small", input=CLIENT_TEXTS)
        error = missing.value.body
        assert error["code"] == "model_not_found" and "text-embedding-3-small" in error["message"]
        assert repr(tiny_encoder.model_id) in error["message"]
        got = c.embeddings.create(model=tiny_encoder.model_id, input=CLIENT_TEXTS, encoding_format="float")
        np.testing.assert_array_equal(
            np.array([d.embedding for d in got.data], dtype=np.float32), tiny_encoder.encode(CLIENT_TEXTS)
        )
        assert httpx.post(f"{srv.url}/embeddings", json={"input": "a dog", "model": "other"}).status_code == 404
        assert httpx.post(f"{srv.url}/v1/embeddings", json={"input": "a dog"}).status_code == 200
        schema = httpx.get(f"{srv.url}/openapi.json").json()
        model = schema["components"]["schemas"]["OpenAIEmbeddingsRequest"]["properties"]["model"]
        assert "another name is a 404" in model["description"]


def test_serve_strict_model_flag_reaches_the_app(monkeypatch, tiny_bert_dir):
    """`semspace serve --strict-model` builds the app with strict_model=True (default off); uvicorn is not run."""
    import uvicorn
    from typer.testing import CliRunner

    from semspace.cli.app import app as cli

    started = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: started.append(app.state.config.strict_model))
    for args, strict in (([], False), (["--strict-model"], True)):
        result = CliRunner().invoke(cli, ["serve", "--model", str(tiny_bert_dir), "--workers", "1", *args])
        assert result.exit_code == 0, result.output
        assert started.pop() is strict


def test_embed_all_gives_each_inputs_token_vectors(http, tiny_encoder):
    """TEI's /embed_all: `[[[float]]]`, one list of token vectors per input (as many as /tokenize counts, special
    tokens included), whose mean is the mean-pooled vector /embed gives with normalize=false."""
    got = http.post("/embed_all", json={"inputs": CLIENT_TEXTS})
    assert got.status_code == 200
    tokens = [np.array(rows, dtype=np.float32) for rows in got.json()]
    counts = [len(t) for t in http.post("/tokenize", json={"inputs": CLIENT_TEXTS}).json()]
    assert [t.shape for t in tokens] == [(n, 32) for n in counts]
    pooled = np.array(http.post("/embed", json={"inputs": CLIENT_TEXTS, "normalize": False}).json())
    np.testing.assert_allclose(np.stack([t.mean(axis=0) for t in tokens]), pooled, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pooled, tiny_encoder.encode(CLIENT_TEXTS), rtol=1e-5, atol=1e-6)
    single = http.post("/embed_all", json={"inputs": "a dog", "truncate": True}).json()
    assert len(single) == 1 and np.allclose(single[0], tokens[1], rtol=1e-5, atol=1e-6)
    long = " ".join(["dog"] * 100)  # 102 tokens > the tiny model's 64
    refused = http.post("/embed_all", json={"inputs": [long]})
    assert refused.status_code == 413 and "102 tokens; the limit is 64" in refused.json()["detail"]
    assert np.array(http.post("/embed_all", json={"inputs": [long], "truncate": True}).json()).shape == (1, 64, 32)


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"inputs": []}, 422, "inputs"),
        ({"texts": ["a dog"]}, 422, "inputs"),
        ({"inputs": [1, 2]}, 422, "inputs"),
        ({"inputs": ["a dog"], "truncation_direction": "left"}, 422, "truncation_direction"),
        ({"inputs": ["a dog"], "prompt_name": "query"}, 400, "this model has no prompts"),
        ({"inputs": ["  "]}, 422, "inputs[0] is empty"),
        ({"inputs": ["a dog"] * 17}, 413, "Too many inputs"),
    ],
)
def test_embed_all_errors_are_4xx_json_naming_the_field(http, body, status, says):
    answer = http.post("/embed_all", json=body)
    assert answer.status_code == status and answer.headers["content-type"] == "application/json"
    assert says in json.dumps(answer.json()) and "TEIEmbedRequest" not in answer.text


def test_embed_all_refuses_a_response_over_the_limit_and_a_model_without_tokens(tiny_encoder):
    from fastapi.testclient import TestClient

    from semspace.service.deps import get_encoder

    app = create_app(None, encoder=tiny_encoder, limits=Limits(max_response_bytes=10_000))
    with TestClient(app, base_url="http://localhost") as client:
        too_big = client.post("/embed_all", json={"inputs": ["a dog is running in the park"] * 3})
        assert too_big.status_code == 413 and "token vectors of 32 numbers" in too_big.json()["detail"]

        class PooledOnly:
            model_id, dim, max_length = "pooled-only", 3, None

        app.dependency_overrides[get_encoder] = PooledOnly
        refused = client.post("/embed_all", json={"inputs": ["a dog"]})
        assert refused.status_code == 422 and "pooled vectors only" in refused.json()["detail"]
