"""The collection's vector-store features over HTTP: metadata filters and modes on /search, upsert (PUT),
paging (GET /documents), unknown fields refused, a busy collection is a 503."""

import pytest
from fastapi.testclient import TestClient

from semspace import Encoder
from semspace.errors import CollectionBusyError
from semspace.search import Collection
from semspace.service import create_app

LOCAL = "http://localhost"  # TestClient's default host "testserver" is not an allowed Host
DOCS = [
    {"id": "d1", "text": "a man is playing a guitar", "metadata": {"source": "faq", "year": 2020}},
    {"id": "d2", "text": "a dog is running in the park", "metadata": {"source": "blog", "year": 2022}},
    {"id": "d3", "text": "a cat eats food", "metadata": {"source": "faq", "year": 2024}},
    {"id": "d4", "text": "a plane is taking off", "metadata": {"source": "news", "year": 2024}},
]


@pytest.fixture
def client(tmp_path, tiny_bert_dir):
    path = tmp_path / "c"
    Collection.create(path, encoder=Encoder(str(tiny_bert_dir))).close()
    with TestClient(create_app(path), base_url=LOCAL) as client:
        assert client.post("/documents", json={"documents": DOCS}).status_code == 200
        yield client


def ids(response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    return [[h["id"] for h in r["hits"]] for r in response.json()["results"]]


def test_search_filter_returns_only_matches_and_k_of_them(client):
    (found,) = ids(client.post("/search", json={"query": "a cat", "k": 2, "filter": {"source": "faq"}}))
    assert sorted(found) == ["d1", "d3"]
    (found,) = ids(client.post("/search", json={"query": "a cat", "k": 5, "filter": {"year": {"$gte": 2022}}}))
    assert sorted(found) == ["d2", "d3", "d4"]
    either = {"$or": [{"source": "news"}, {"year": {"$lt": 2021}}]}
    (found,) = ids(client.post("/search", json={"query": "a cat", "k": 5, "filter": either}))
    assert sorted(found) == ["d1", "d4"]
    bad = client.post("/search", json={"query": "a cat", "filter": {"year": {"$near": 1}}})
    assert 400 <= bad.status_code < 500 and "detail" in bad.json()


def test_search_modes_and_unknown_fields(client):
    (bm25,) = ids(client.post("/search", json={"query": "guitar", "k": 1, "mode": "bm25"}))
    assert bm25 == ["d1"]
    (hybrid,) = ids(
        client.post("/search", json={"query": "guitar", "k": 4, "mode": "hybrid", "filter": {"source": "faq"}})
    )
    assert hybrid[0] == "d1" and set(hybrid) <= {"d1", "d3"}
    for body in ({"query": "a", "filtr": {"source": "faq"}}, {"query": "a", "mode": "sparse"}):
        assert client.post("/search", json=body).status_code == 422
    assert client.post("/documents", json={"documents": [{"text": "x", "meta": {}}]}).status_code == 422


def test_upsert_and_paging(client):
    replaced = client.put("/documents", json={"documents": [{"id": "d2", "text": "a dog sleeps", "metadata": {}}]})
    assert replaced.status_code == 200 and replaced.json() == {"ids": ["d2"], "count": 4}
    assert client.get("/documents/d2").json()["text"] == "a dog sleeps"
    assert client.put("/documents", json={"documents": [{"text": "no id"}]}).status_code == 422
    first = client.get("/documents", params={"limit": 3}).json()
    assert len(first["documents"]) == 3 and first["count"] == 4 and first["next_cursor"]
    rest = client.get("/documents", params={"limit": 3, "cursor": first["next_cursor"]}).json()
    seen = [d["id"] for d in first["documents"] + rest["documents"]]
    assert sorted(seen) == ["d1", "d2", "d3", "d4"] and rest["next_cursor"] is None
    faq = client.post("/documents/list", json={"filter": {"source": "faq"}, "limit": 1}).json()
    assert faq["count"] == 2 and [d["id"] for d in faq["documents"]] == ["d1"] and faq["next_cursor"]
    assert client.post("/documents/list", json={"filter": [1]}).status_code == 422


def test_busy_collection_is_a_503(client, monkeypatch):
    def busy(*args, **kwargs):
        raise CollectionBusyError("another process kept the collection's write lock for more than 60 s")

    monkeypatch.setattr(Collection, "delete", busy)
    response = client.request("DELETE", "/documents", json={"ids": ["d1"]})
    assert response.status_code == 503 and "write lock" in response.json()["detail"]


def test_a_blank_text_is_refused_by_the_schema_exactly_as_the_library_refuses_it(client):
    import re

    pattern = client.get("/openapi.json").json()["components"]["schemas"]["DocumentIn"]["properties"]["text"]["pattern"]
    # \x1c-\x1f are blank to str.isspace() (the library) but not to regex \s: the fuzz run's PUT /documents cases
    for i, text in enumerate(("\x1c\x1d", " \x1f ", "\u3000", "\x1cx", "\ufeff")):
        assert bool(re.search(pattern, text)) == bool(text.strip()), repr(text)
        for method in (client.post, client.put):
            answer = method("/documents", json={"documents": [{"id": f"{method.__name__}-{i}", "text": text}]})
            assert answer.status_code == (200 if text.strip() else 422), (repr(text), answer.text)
