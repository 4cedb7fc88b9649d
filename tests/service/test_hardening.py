"""Safe to expose (issue 16): API key, allowed Host names, body limit on the bytes received, size caps, strict JSON,
offline /docs and an OpenAPI schema that describes the real errors and limits — over real HTTP on 127.0.0.1."""

from __future__ import annotations

import re
import sys

import httpx
import numpy as np
import pytest

from semspace.service import Limits, create_app
from semspace.service.deps import get_encoder

KEY = "s3cret-key"
LIMITS = Limits(max_batch=8, max_text_chars=200, max_body_bytes=50_000, max_k=50, max_hits=60, max_metadata_bytes=300)


class CountingEncoder:
    """Deterministic stand-in that counts its calls (to see that refused requests do no work)."""

    model_id, dim, max_length = "counting", 3, None

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts, normalize=False, show_progress_bar=None):
        self.calls += 1
        return np.array([[len(t), t.count(" "), 1.0] for t in texts], dtype=np.float32)


@pytest.fixture
def app(whitened_collection, tiny_encoder):
    return create_app(whitened_collection, encoder=tiny_encoder, limits=LIMITS)


@pytest.fixture
def server(app, live_server):
    with live_server(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        yield client


# -- API key ---------------------------------------------------------------------------------------------------
def test_api_key_on_every_route_but_health_and_the_page(tiny_encoder, live_server):
    with live_server(create_app(None, encoder=tiny_encoder, api_key=KEY)) as srv, httpx.Client(base_url=srv.url) as c:
        assert c.get("/health").status_code == 200
        page = c.get("/")  # static HTML holding no data: it asks for the key (test_page_browser.py)
        assert page.status_code == 200 and "semspace-key" in page.text
        for method, path in [
            ("POST", "/embed"),
            ("GET", "/docs"),
            ("GET", "/openapi.json"),
            ("GET", "/metrics"),
            ("GET", "/info"),
            ("GET", "/collections"),
            ("GET", "/no/such/path"),
            ("POST", "/search"),
            ("POST", "/"),  # TEI's /embed: only GET / (the page) is open (found by benchmarks/fuzz_service.py)
            ("POST", "/health"),
        ]:
            refused = c.request(method, path, json={"texts": ["a"]})
            assert refused.status_code == 401, path
            assert refused.headers["www-authenticate"] == "Bearer" and "Bearer" in refused.json()["detail"]
        for header in (f"Bearer {KEY}x", f"Basic {KEY}", KEY, "Bearer", f"bearer  {KEY[:-1]}"):
            assert c.post("/embed", json={"texts": ["a"]}, headers={"Authorization": header}).status_code == 401
        ok = c.post("/embed", json={"texts": ["a"]}, headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200
        v1 = c.get("/v1/models")
        assert v1.status_code == 401 and v1.json()["error"]["code"] == "invalid_api_key"
        assert c.get("/metrics", headers={"Authorization": f"bearer {KEY}"}).status_code == 200


def test_api_key_must_not_be_empty(tiny_encoder):
    with pytest.raises(ValueError, match="api_key"):
        create_app(None, encoder=tiny_encoder, api_key="")


# -- Host ------------------------------------------------------------------------------------------------------
def test_host_header_checked(server):
    port = server.base_url.port
    for host in ("localhost", f"localhost:{port}", "127.0.0.1", f"[::1]:{port}"):
        assert server.get("/health", headers={"Host": host}).status_code == 200, host
    for host in ("evil.example", f"attacker.test:{port}", "localhost.evil.example"):
        refused = server.get("/health", headers={"Host": host})
        assert refused.status_code == 400 and "Host header not allowed" in refused.json()["detail"], host


def test_allowed_hosts_argument_and_bound_host(tiny_encoder, live_server):
    app = create_app(None, encoder=tiny_encoder, allowed_hosts=["api.example.com", "*.internal"])
    with live_server(app) as srv, httpx.Client(base_url=srv.url) as c:
        assert c.get("/health", headers={"Host": "api.example.com"}).status_code == 200
        assert c.get("/health", headers={"Host": "a.b.internal"}).status_code == 200
        assert c.get("/health", headers={"Host": "localhost"}).status_code == 400
    from semspace.service.security import default_allowed_hosts

    assert default_allowed_hosts("10.1.2.3") == ["localhost", "127.0.0.1", "::1", "[::1]", "10.1.2.3"]
    assert default_allowed_hosts("0.0.0.0") == ["localhost", "127.0.0.1", "::1", "[::1]"]


# -- body size -------------------------------------------------------------------------------------------------
def test_chunked_body_over_the_limit_is_413(server):
    sent = 0

    def chunks():  # no Content-Length: Transfer-Encoding: chunked
        nonlocal sent
        yield b'{"texts": ["'
        for _ in range(64):
            sent += 4096
            yield b"a" * 4096
        yield b'"]}'

    response = server.post("/embed", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json() == {"detail": "Request body over 50000 bytes."}


def test_chunked_body_under_the_limit_is_read(server):
    def chunks():
        yield b'{"texts": '
        yield b'["a dog", "a cat"]}'

    response = server.post("/embed", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 200 and len(response.json()["embeddings"]) == 2


def test_content_length_over_the_limit_is_413(server):
    response = server.post("/v1/embeddings", content=b" " * 60_000, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "50000" in response.json()["error"]["message"]


# -- caps ------------------------------------------------------------------------------------------------------
def test_metadata_cap(server):
    doc = {"id": "big", "text": "a dog", "metadata": {"note": "x" * 400}}
    refused = server.post("/documents", json={"documents": [doc]})
    assert refused.status_code == 413 and "documents[0].metadata is 411 bytes" in refused.json()["detail"]
    assert server.get("/documents/big").status_code == 404


def test_hits_cap_refuses_before_any_work(app, live_server):
    counting = CountingEncoder()
    app.dependency_overrides[get_encoder] = lambda: counting
    with live_server(app) as srv:
        refused = httpx.post(f"{srv.url}/search", json={"queries": ["a", "b"], "k": 31})
        assert refused.status_code == 413 and "2 queries × k=31 = 62 hits; the limit is 60" in refused.json()["detail"]
        assert counting.calls == 0
        app.dependency_overrides.clear()
        assert httpx.post(f"{srv.url}/search", json={"queries": ["a", "b"], "k": 30}).status_code == 200


def test_response_bytes_cap(whitened_collection, tiny_encoder, live_server):
    small = Limits(max_response_bytes=1000)
    with live_server(create_app(whitened_collection, encoder=tiny_encoder, limits=small)) as srv:
        ok = httpx.post(f"{srv.url}/search", json={"query": "a dog", "k": 2})
        assert ok.status_code == 200
        refused = httpx.post(f"{srv.url}/search", json={"queries": ["a dog", "a cat", "a man"], "k": 12})
        assert refused.status_code == 413 and "limit is 1000" in refused.json()["detail"]


# -- every bad input a 4xx JSON error --------------------------------------------------------------------------
RAW_BAD = [
    ("POST", "/embed", b'{"texts": ["\\ud800"]}'),
    ("POST", "/embed", b'{"texts": ["ok \\udfff ok"]}'),
    ("POST", "/embed", b'{"inputs": "\\ud83d"}'),
    ("POST", "/embed", b'{"texts": ["a"], "normalize": NaN}'),
    ("POST", "/embed", b'{"texts": [NaN]}'),
    ("POST", "/embed", b'{"texts": ["a"], "x": Infinity}'),
    ("POST", "/embed", b'{"texts": ["a"], "x": -Infinity}'),
    ("POST", "/embed", b'{"texts": ["a"'),
    ("POST", "/embed", b"\xff\xfe\x00"),
    ("POST", "/embed", b"[" * 100_00 + b"]" * 100_00),
    ("POST", "/embed", b"null"),
    ("POST", "/embed", b'"texts"'),
    ("POST", "/search", b'{"query": "\\ud800"}'),
    ("POST", "/search", b'{"query": "a", "k": NaN}'),
    ("POST", "/search", b'{"query": "a", "k": 1e400}'),
    ("POST", "/search", b'{"query": "a", "k": 99999999999999999999999999}'),
    ("POST", "/search", b'{"queries": "a dog"}'),
    ("POST", "/documents", b'{"documents": [{"id": "\\udc00", "text": "a"}]}'),
    ("POST", "/documents", b'{"documents": [{"text": "a", "metadata": {"k": "\\ud800"}}]}'),
    ("POST", "/documents", b'{"documents": [{"text": "a", "metadata": {"\\ud800": 1}}]}'),
    ("POST", "/documents", b'{"documents": [{"text": "a", "metadata": {"k": NaN}}]}'),
    ("POST", "/documents", b'{"documents": [{"text": "a", "metadata": [1, 2]}]}'),
    ("POST", "/documents", b'{"documents": [{"text": 5}]}'),
    ("POST", "/documents", b'{"documents": [{"id": "", "text": "a"}]}'),
    ("DELETE", "/documents", b'{"ids": ["\\ud800"]}'),
    ("DELETE", "/documents", b'{"ids": [1, 2]}'),
    ("POST", "/similarity", b'{"pairs": [["a", "\\ud800"]]}'),
    ("POST", "/similarity", b'{"pairs": [["a", "b", "c"]]}'),
    ("POST", "/v1/embeddings", b'{"model": "m", "input": "\\ud800"}'),
    ("POST", "/v1/embeddings", b'{"model": "m", "input": NaN}'),
    ("POST", "/v1/embeddings", b'{"model": 5, "input": "a"}'),
    ("POST", "/v1/embeddings", b'{"model": "m", "input": [1.5]}'),
    ("POST", "/v1/embeddings", b'{"model": "m", "input": "a", "dimensions": 0}'),
    ("POST", "/rerank", b'{"query": "\\ud800", "texts": ["a"]}'),
    ("POST", "/rerank", b'{"query": "a", "texts": []}'),
    ("GET", "/documents/%ED%A0%80", b""),  # a UTF-8-encoded lone surrogate in the path
    ("GET", "/documents/%FF", b""),
    ("GET", "/v1/models/%ED%A0%80", b""),
]


@pytest.mark.parametrize(("method", "path", "body"), RAW_BAD, ids=[f"{m} {p} {b[:40]!r}" for m, p, b in RAW_BAD])
def test_bad_input_is_a_4xx_json_error(server, method, path, body):
    response = server.request(method, path, content=body, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    payload = response.json()
    assert ("error" in payload) if path.startswith("/v1/") else ("detail" in payload)


def test_surrogates_and_nan_name_the_problem(server):
    surrogate = server.post("/embed", content=b'{"texts": ["\\ud800"]}', headers={"content-type": "application/json"})
    assert surrogate.status_code == 422 and "lone UTF-16 surrogate" in surrogate.json()["detail"][0]["msg"]
    nan = server.post(
        "/embed", content=b'{"texts": ["a"], "normalize": NaN}', headers={"content-type": "application/json"}
    )
    assert nan.status_code == 422 and "NaN is not valid JSON" in nan.json()["detail"][0]["msg"]
    assert sys.getrecursionlimit() > 0  # the deep-nesting case above did not break the interpreter


# -- docs and schema -------------------------------------------------------------------------------------------
URL = re.compile(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)


def test_docs_work_offline(server):
    page = server.get("/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    assert not URL.findall(page.text), URL.findall(page.text)


def test_docs_serve_swagger_from_an_installed_package(server, tmp_path, monkeypatch):
    bundle = tmp_path / "swagger_ui_bundle"
    assets = bundle / "vendor" / "swagger-ui-test"
    assets.mkdir(parents=True)
    (bundle / "__init__.py").write_text(f"from pathlib import Path\nswagger_ui_path = Path({str(assets)!r})\n")
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        (assets / name).write_text(f"/* {name} */")
    monkeypatch.syspath_prepend(str(tmp_path))
    page = server.get("/docs").text
    assert "/docs/assets/swagger-ui-bundle.js" in page and "SwaggerUIBundle" in page
    assert not URL.findall(page), URL.findall(page)
    assert server.get("/docs/assets/swagger-ui.css").text == "/* swagger-ui.css */"
    assert server.get("/docs/assets/..%2Fsecret").status_code == 404


def test_openapi_describes_errors_and_limits(server):
    spec = server.get("/openapi.json").json()
    comps = spec["components"]["schemas"]
    embed = spec["paths"]["/embed"]["post"]["responses"]
    assert {"400", "413", "422"} <= set(embed)
    assert embed["422"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/ErrorDetail"
    v1 = spec["paths"]["/v1/embeddings"]["post"]["responses"]
    assert v1["422"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/OpenAIError"
    texts = comps["EmbedRequest"]["properties"]["texts"]
    assert texts["maxItems"] == 8 and texts["items"]["maxLength"] == 200
    assert comps["SearchRequest"]["properties"]["k"]["maximum"] == 50
    assert "300 bytes" in comps["DocumentIn"]["properties"]["metadata"]["description"]
    assert "securitySchemes" not in spec["components"]


def test_openapi_declares_the_bearer_scheme_with_an_api_key(tiny_encoder, live_server):
    with live_server(create_app(None, encoder=tiny_encoder, api_key=KEY)) as srv:
        spec = httpx.get(f"{srv.url}/openapi.json", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert spec["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
    assert spec["paths"]["/embed"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in spec["paths"]["/health"]["get"] and "401" in spec["paths"]["/embed"]["post"]["responses"]


# -- issue 29: deep metadata, writes that report the truth, disk errors, read-only collections -----------------
def nested(depth: int, leaf="bottom") -> dict:
    """Metadata whose objects/arrays nest `depth` deep (itself included), dicts and lists alternating."""
    value = leaf
    for level in range(depth - 1, 0, -1):
        value = {"k": value} if level % 2 else [value]
    return {"top": value}


@pytest.fixture
def served(tmp_path, tiny_encoder):
    """(client, collection): a TestClient over an app serving an empty collection this test holds."""
    from fastapi.testclient import TestClient

    from semspace.search import Collection

    with (
        Collection.create(tmp_path / "c", encoder=tiny_encoder) as coll,
        TestClient(create_app(coll, encoder=tiny_encoder), base_url="http://localhost") as client,
    ):
        yield client, coll


@pytest.fixture
def store_client(served):
    return served[0]


def test_metadata_depth_limit_at_the_door(store_client):
    from semspace.search.documents import MAX_METADATA_DEPTH

    deepest = nested(MAX_METADATA_DEPTH)
    stored = store_client.post("/documents", json={"documents": [{"id": "deep", "text": "a dog", "metadata": deepest}]})
    assert stored.status_code == 200, stored.text
    assert store_client.get("/documents/deep").json()["metadata"] == deepest
    for too_deep in (nested(MAX_METADATA_DEPTH + 1), nested(400), nested(900)):
        for method in ("POST", "PUT"):
            doc = {"id": "deeper", "text": "a cat", "metadata": too_deep}
            refused = store_client.request(method, "/documents", json={"documents": [doc]})
            assert refused.status_code == 422 and "more than 32 deep" in refused.json()["detail"], refused.text
    assert store_client.get("/documents/deeper").status_code == 404
    found = store_client.post("/search", json={"query": "a dog", "k": 5})
    assert found.status_code == 200 and found.json()["results"][0]["hits"][0]["metadata"] == deepest
    listed = store_client.post("/documents/list", json={"filter": {"top.k": {"$ne": 1}}})
    assert listed.status_code == 200 and listed.json()["documents"][0]["metadata"] == deepest


def test_a_write_stored_despite_its_index_step_is_200_with_a_warning(store_client, faults, monkeypatch):
    import errno

    from semspace.search import index_state

    monkeypatch.setattr(index_state, "CHECKPOINT_MIN_ROWS", 1)  # every write checkpoints
    faults.inject("checkpoint_file", errno.ENOSPC)
    docs = [{"id": f"w{i}", "text": t} for i, t in enumerate(["a dog eats food", "a cat", "the plane is small"])]
    added = store_client.post("/documents", json={"documents": docs})
    assert added.status_code == 200 and added.json()["count"] == 3
    assert "do not retry" in added.json()["warning"] and "No space left" in added.json()["warning"]
    again = store_client.post("/documents", json={"documents": docs})
    assert again.status_code == 409  # the retry is refused because they are stored
    hits = store_client.post("/search", json={"query": "a dog eats food", "k": 3}).json()["results"][0]["hits"]
    assert {h["id"] for h in hits} == {"w0", "w1", "w2"}
    deleted = store_client.request("DELETE", "/documents", json={"ids": ["w1"]})
    assert deleted.status_code == 200 and deleted.json()["deleted"] == 1 and deleted.json()["warning"]
    faults.clear()
    clean = store_client.post("/documents", json={"documents": [{"id": "w9", "text": "a man"}]})
    assert clean.status_code == 200 and "warning" not in clean.json()


@pytest.mark.parametrize(
    ("step", "number", "status"),
    [("store_insert", 28, 507), ("store_insert", 5, 503), ("store_insert", 30, 503), ("store_commit", 28, 507),
     ("store_commit", 5, 503)],
)  # fmt: skip
def test_a_disk_that_refuses_a_write_is_507_or_503(served, faults, step, number, status):
    store_client, coll = served
    faults.inject(step, number, coll=coll)
    refused = store_client.post("/documents", json={"documents": [{"id": "x", "text": "a dog"}]})
    assert refused.status_code == status, refused.text
    assert isinstance(refused.json()["detail"], str)
    faults.clear()
    assert store_client.get("/documents/x").status_code == 404  # nothing stored
    assert store_client.post("/documents", json={"documents": [{"id": "x", "text": "a dog"}]}).status_code == 200


def test_a_read_only_collection_is_served_and_refuses_writes(whitened_collection, tiny_encoder):
    from fastapi.testclient import TestClient

    from semspace.search import Collection

    with (
        Collection.open(whitened_collection, read_only=True) as coll,
        TestClient(create_app(coll, encoder=tiny_encoder), base_url="http://localhost") as client,
    ):
        assert client.post("/search", json={"query": "a dog", "k": 3}).status_code == 200
        assert client.get("/documents/d1").status_code == 200
        refused = client.post("/documents", json={"documents": [{"id": "n", "text": "a dog"}]})
        assert refused.status_code == 503 and "read-only collection" in refused.json()["detail"]
        assert client.request("DELETE", "/documents", json={"ids": ["d1"]}).status_code == 503
        assert client.get("/documents/d1").status_code == 200
