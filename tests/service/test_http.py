"""The service over real HTTP on 127.0.0.1 (uvicorn in a thread, httpx client)."""

import httpx
import numpy as np
import pytest

from semspace import Encoder
from semspace.search import Collection
from semspace.service import Limits, create_app

DOCS = [
    {"id": "g", "text": "a man is playing a guitar", "metadata": {"lang": "en"}},
    {"id": "d", "text": "a dog is running in the park"},
    {"id": "p", "text": "a plane is taking off"},
]


@pytest.fixture
def server(tmp_path, tiny_bert_dir, live_server):
    encoder = Encoder(str(tiny_bert_dir))
    Collection.create(tmp_path / "c", encoder=encoder).close()
    app = create_app(
        tmp_path / "c", encoder=encoder, limits=Limits(max_batch=8, max_text_chars=200, max_body_bytes=50_000)
    )
    with live_server(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        yield client


def test_health_and_openapi(server):
    health = server.get("/health").json()
    assert health["status"] == "ok" and health["documents"] == 0 and health["dim"] == 32
    schema = server.get("/openapi.json").json()
    assert {"/embed", "/similarity", "/search", "/documents", "/health"} <= set(schema["paths"])


def test_add_search_get_delete_round_trip(server):
    added = server.post("/documents", json={"documents": DOCS})
    assert added.status_code == 200 and added.json() == {"ids": ["g", "d", "p"], "count": 3}
    found = server.post("/search", json={"query": "a man is playing a guitar", "k": 3}).json()
    hits = found["results"][0]["hits"]
    assert hits[0]["id"] == "g" and hits[0]["metadata"] == {"lang": "en"}
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert server.get("/documents/d").json()["text"] == DOCS[1]["text"]
    deleted = server.request("DELETE", "/documents", json={"ids": ["d"]})
    assert deleted.json() == {"deleted": 1, "count": 2}
    assert server.get("/documents/d").status_code == 404
    many = server.post("/search", json={"queries": ["guitar", "plane"], "k": 1}).json()["results"]
    assert len(many) == 2 and all(len(r["hits"]) == 1 for r in many)


def test_embed_and_similarity(server):
    emb = server.post("/embed", json={"texts": ["a dog", "a cat"], "normalize": True}).json()
    assert emb["dim"] == 32 and np.allclose(np.linalg.norm(emb["embeddings"], axis=1), 1, atol=1e-5)
    sim = server.post("/similarity", json={"pairs": [["a dog", "a dog"], ["a dog", "a plane"]]}).json()
    assert sim["scores"][0] == pytest.approx(1.0, abs=1e-5) and len(sim["scores"]) == 2


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/embed", {"texts": []}, 422),
        ("POST", "/embed", {"texts": [""]}, 422),
        ("POST", "/embed", {"texts": ["x"] * 9}, 413),
        ("POST", "/embed", {"texts": ["x" * 201]}, 413),
        ("POST", "/embed", {"texts": "not a list"}, 422),
        ("POST", "/search", {"query": "  "}, 422),
        ("POST", "/search", {"query": "x", "queries": ["y"]}, 422),
        ("POST", "/search", {"query": "x", "k": 0}, 422),
        ("POST", "/documents", {"documents": [{"id": "a", "text": "x"}, {"text": "y"}]}, 422),
        ("DELETE", "/documents", {"ids": ["missing"]}, 404),
        ("POST", "/similarity", {"pairs": [["only one"]]}, 422),
    ],
)
def test_bad_requests_are_4xx_json(server, method, path, body, status):
    response = server.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert "detail" in response.json()


def test_duplicate_id_is_409_and_writes_nothing(server):
    server.post("/documents", json={"documents": DOCS[:1]})
    response = server.post("/documents", json={"documents": [DOCS[1], DOCS[0]]})
    assert response.status_code == 409 and "already" in response.json()["detail"]
    assert server.get("/health").json()["documents"] == 1


def test_body_size_limit(server):
    response = server.post("/embed", content=b"{" + b" " * 60_000 + b"}", headers={"content-type": "application/json"})
    assert response.status_code == 413 and "detail" in response.json()


def test_page_served(server):
    page = server.get("/")
    assert page.status_code == 200 and "<form" in page.text and "/search" in page.text


def test_no_collection_means_404_for_search(tiny_bert_dir, live_server):
    app = create_app(None, encoder=Encoder(str(tiny_bert_dir)))
    with live_server(app) as srv, httpx.Client(base_url=srv.url) as client:
        assert client.post("/search", json={"query": "x"}).status_code == 404
        assert client.post("/embed", json={"texts": ["x"]}).status_code == 200
