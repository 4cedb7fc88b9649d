"""Many collections per server: the Catalog (a folder of collections), the /collections routes, and the Python
client — one scenario run against a local folder and against a live server must give the same results."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient
from support import CORPUS

from semspace.client import Client, RemoteCollection
from semspace.errors import (
    CollectionError,
    CollectionExistsError,
    CollectionNotFoundError,
    DocumentNotFoundError,
    DuplicateIdError,
    InvalidParameterError,
    ServiceError,
)
from semspace.search import Collection
from semspace.search.catalog import Catalog
from semspace.service import Limits, create_app

LOCAL = "http://localhost"
TEXTS = CORPUS[:6]
META = [{"kind": "music"}, {"kind": "music"}, {"kind": "animal"}, {"kind": "animal"}, {"kind": "plane"}, {}]


# -- the catalog -----------------------------------------------------------------------------------------------
def test_catalog_creates_lists_opens_and_drops(tmp_path, tiny_encoder):
    catalog = Catalog(tmp_path / "root")
    assert catalog.list_collections() == []
    a = catalog.create_collection("a", tiny_encoder)
    b = catalog.create_collection("b.v2", tiny_encoder, index="HNSW16")
    assert catalog.list_collections() == ["a", "b.v2"]
    assert catalog.get_collection("a") is a  # opened once per catalog
    assert a.encoder is b.encoder is tiny_encoder  # one encoder for one spec
    a.add(["a dog"], ids=["d"])
    with pytest.raises(CollectionExistsError, match="already exists"):
        catalog.create_collection("a", tiny_encoder)
    assert catalog.get_or_create_collection("a", tiny_encoder) is a
    catalog.delete_collection("a")
    assert catalog.list_collections() == ["b.v2"]
    assert not [p for p in (tmp_path / "root").iterdir() if p.name.startswith(".")]  # nothing left behind
    with pytest.raises(CollectionNotFoundError, match="No collection named 'a'"):
        catalog.get_collection("a")
    with pytest.raises(CollectionNotFoundError):
        catalog.delete_collection("a")
    catalog.close()


def test_catalog_shares_the_encoder_of_reopened_collections(tmp_path, tiny_encoder):
    with Catalog(tmp_path) as catalog:
        catalog.create_collection("a", tiny_encoder).add(["a dog"], ids=["d"])
        catalog.create_collection("b", tiny_encoder)
    with Catalog(tmp_path) as listing:  # listing reads manifests and counts: no index is loaded
        assert [(c["name"], c["count"], c["dim"]) for c in listing.describe_collections()] == [
            ("a", 1, 32),
            ("b", 0, 32),
        ]
        assert listing._open == {}
    with Catalog(tmp_path) as again:  # a new process: each collection loads the encoder lazily, through the pool
        a, b = again.get_collection("a"), again.get_collection("b")
        assert a.search("a dog", k=1).ids == ["d"]
        assert a.encoder is b.encoder and a.encoder is not tiny_encoder


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", ".hidden", "x" * 64, "a b", "é"])
def test_catalog_refuses_names_that_are_not_one_folder(tmp_path, name):
    catalog = Catalog(tmp_path)
    with pytest.raises(InvalidParameterError, match="Invalid collection name"):
        catalog.get_collection(name)


def test_catalog_refuses_a_collection_folder(tmp_path, tiny_encoder):
    Collection.create(tmp_path / "c", encoder=tiny_encoder).close()
    with pytest.raises(CollectionError, match="is a collection, not a folder of collections"):
        Catalog(tmp_path / "c")


# -- one scenario, local and remote ------------------------------------------------------------------------------
def scenario(client) -> list:
    """A script written for the local API; returns what it saw (compared across the two clients)."""
    seen: list = []
    docs = client.create_collection("docs")
    seen.append(docs.add(TEXTS, ids=[f"t{i}" for i in range(len(TEXTS))], metadata=META))
    seen.append(client.list_collections())
    seen.append((len(docs), docs.count({"kind": "music"})))
    hit = docs.search("a dog runs in a park", k=3)
    seen.append((hit.ids, [round(s, 5) for s in hit.scores], hit.texts, hit.metadata))
    many = docs.search(["a guitar", "an airplane"], k=2, where={"kind": {"$ne": "animal"}})
    seen.append([(r.ids, [round(s, 5) for s in r.scores]) for r in many])
    seen.append(docs.search("dog food", k=2, mode="bm25").ids)
    seen.append(docs.search("dog food", k=3, mode="hybrid").ids)
    seen.append(docs.get(["t3", "t0"]))
    seen.append(docs.get_existing(["t3", "nope"]))
    docs.upsert(["a cat sleeps"], ids=["t3"], metadata=[{"kind": "animal", "v": 2}])
    seen.append(docs.get(["t3"]))
    seen.append(docs.delete(["t0", "t1"]))
    page = docs.list_documents(limit=2)
    seen.append((page.documents, page.next_cursor is not None))
    seen.append(docs.list_documents(limit=10, cursor=page.next_cursor).documents)
    seen.append(docs.list_documents(where={"kind": "animal"}).documents)
    for call, kind in (
        (lambda: docs.add(["again"], ids=["t2"]), DuplicateIdError),
        (lambda: docs.get(["t0"]), DocumentNotFoundError),
        (lambda: docs.delete(["nope"]), DocumentNotFoundError),
        (lambda: client.get_collection("nope"), CollectionNotFoundError),
        (lambda: client.create_collection("docs"), CollectionExistsError),
        (lambda: docs.search("x", k=2, where={"kind": {"$regex": "a"}}), InvalidParameterError),
    ):
        with pytest.raises(kind) as caught:
            call()
        seen.append((kind.__name__, type(caught.value).__name__))
    info = docs.info()
    seen.append({key: info[key] for key in ("name", "count", "index", "dim", "raw_dim", "encoder", "tombstones")})
    other = client.get_or_create_collection("other", index="HNSW16", precision="int8")
    seen.append((other.info()["index"], client.get_or_create_collection("other").info()["index"]))
    client.delete_collection("other")
    seen.append(client.list_collections())
    return seen


def test_the_same_script_runs_on_a_folder_and_on_a_server(tmp_path, tiny_encoder, live_server):
    with Catalog(tmp_path / "local", model=tiny_encoder) as local:  # the server's default model is its encoder
        local_seen = scenario(local)
    app = create_app(tmp_path / "served", encoder=tiny_encoder, limits=Limits(max_batch=4))
    with live_server(app) as server, Client(server.url) as client:
        remote_seen = scenario(client)
        assert isinstance(client.get_collection("docs"), RemoteCollection)
    assert remote_seen == local_seen


# -- the routes ------------------------------------------------------------------------------------------------
def test_a_folder_of_collections_over_http(tmp_path, tiny_encoder):
    app = create_app(tmp_path / "root", encoder=tiny_encoder)
    with TestClient(app, base_url=LOCAL) as http:
        assert http.get("/collections").json() == {"collections": []}
        made = http.post("/collections", json={"name": "faq"})
        assert made.status_code == 201 and made.json()["count"] == 0 and "path" not in made.json()
        assert http.post("/collections", json={"name": "faq"}).json()["type"] == "CollectionExistsError"
        docs = [{"id": "a/b", "text": "a dog runs"}, {"id": "%2F", "text": "a cat"}, {"id": "..", "text": "a plane"}]
        assert http.post("/collections/faq/documents", json={"documents": docs}).status_code == 200
        # ids a URL path can carry, as they are or percent-encoded; "." and ".." only through POST …/documents/get
        assert http.get("/collections/faq/documents/a/b").json() == {"id": "a/b", "text": "a dog runs", "metadata": {}}
        assert http.get("/collections/faq/documents/a%2Fb").json()["id"] == "a/b"
        encoded = http.get("/collections/faq/documents/%252F")
        assert encoded.json().get("id") == "%2F", (encoded.status_code, encoded.json(), encoded.url)
        got = http.post("/collections/faq/documents/get", json={"ids": ["..", "a/b"]}).json()["documents"]
        assert [d["id"] for d in got] == ["..", "a/b"]
        assert "score" not in http.get("/collections/faq/documents/a/b").json()  # a document, not a hit
        hits = http.post("/collections/faq/search", json={"query": "a dog runs", "k": 1}).json()["results"][0]
        assert hits["hits"][0]["id"] == "a/b"
        # the top-level routes need a single collection: this server has a folder of them
        top = http.post("/search", json={"query": "a dog"})
        assert top.status_code == 404 and "/collections/{name}/search" in top.json()["detail"]
        missing = http.get("/collections/nope")
        assert missing.status_code == 404 and missing.json()["type"] == "CollectionNotFoundError"
        assert http.post("/collections/nope/search", json={"query": "x"}).status_code == 404
        for bad in (".x", "a%20b", "x" * 64, "%2E%2E"):
            assert http.get(f"/collections/{bad}").status_code in (404, 422)
        assert http.post("/collections", json={"name": "../up"}).status_code == 422
        other_model = http.post("/collections", json={"name": "x", "model": "/etc"})
        assert other_model.status_code == 404 and "not served here" in other_model.json()["detail"]
        assert http.post("/collections", json={"name": "x", "index": "NotAFactory"}).status_code in (400, 422)
        quantized = http.post("/collections", json={"name": "q", "precision": "binary"})
        assert quantized.status_code == 201 and quantized.json()["index"] == "BFlat"
        assert http.delete("/collections/q").json() == {"deleted": "q"}
        refused = http.post("/collections", json={"name": "x", "index": "HNSW32", "precision": "binary"})
        assert refused.status_code == 400 and "not available with index='HNSW32'" in refused.json()["detail"]
        assert [c["name"] for c in http.get("/collections").json()["collections"]] == ["faq"]
        assert http.delete("/collections/faq").json() == {"deleted": "faq"}
        assert http.get("/collections").json() == {"collections": []}
    assert [p.name for p in (tmp_path / "root").iterdir()] == []


def test_a_single_collection_server_lists_it_and_refuses_to_create(tmp_path, tiny_encoder):
    Collection.create(tmp_path / "only", encoder=tiny_encoder).close()
    app = create_app(tmp_path / "only", encoder=tiny_encoder)
    with TestClient(app, base_url=LOCAL) as http:
        assert [c["name"] for c in http.get("/collections").json()["collections"]] == ["only"]
        http.post("/documents", json={"documents": [{"id": "d", "text": "a dog"}]})
        assert http.get("/collections/only/documents/d").json()["text"] == "a dog"  # the same collection
        assert http.post("/collections", json={"name": "x"}).status_code == 403
        assert http.delete("/collections/only").status_code == 403
        assert http.delete("/collections/other").status_code == 404


def test_a_page_stops_at_the_response_limit_and_the_cursor_goes_on(tmp_path, tiny_encoder):
    Collection.create(tmp_path / "c", encoder=tiny_encoder).close()
    app = create_app(tmp_path / "c", encoder=tiny_encoder, limits=Limits(max_response_bytes=2_000))
    texts = [f"document number {i} " + "x" * 400 for i in range(12)]
    with TestClient(app, base_url=LOCAL) as http:
        for lo in range(0, 12, 4):
            docs = [{"id": f"d{i}", "text": texts[i]} for i in range(lo, lo + 4)]
            assert http.post("/documents", json={"documents": docs}).status_code == 200
        seen, cursor = [], None
        for _ in range(12):  # bounded: at least one document per page
            params = {"limit": 100} | ({"cursor": cursor} if cursor else {})
            page = http.get("/documents", params=params).json()
            assert 1 <= len(page["documents"]) <= 5  # 2,000 bytes hold 4 of these, the 5th crosses the line
            seen += [d["id"] for d in page["documents"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [f"d{i}" for i in range(12)]
        filtered = http.post("/documents/list", json={"filter": {}, "limit": 100}).json()
        assert len(filtered["documents"]) < 12 and filtered["next_cursor"] is not None


def test_the_client_retries_a_busy_server_and_maps_errors(tmp_path, tiny_encoder, live_server):
    with pytest.raises(InvalidParameterError, match="http"):
        Client("localhost:8000")
    with Client("http://127.0.0.1:9", retries=1, backoff=0.01) as nowhere, pytest.raises(ServiceError, match="reach"):
        nowhere.list_collections()
    app = create_app(tmp_path / "root", encoder=tiny_encoder, api_key="s3cret")
    with live_server(app) as server:
        with Client(server.url) as anonymous, pytest.raises(ServiceError) as denied:
            anonymous.list_collections()
        assert denied.value.status == 401
        with Client(server.url, api_key="s3cret") as client:
            docs = client.create_collection("docs")
            calls = {"n": 0}
            original = client._http.request

            def busy_once(method, path, **kwargs):  # the server's 503 answer, once, as a busy collection gives
                calls["n"] += 1
                if calls["n"] == 1:
                    return httpx.Response(503, json={"detail": "busy", "type": "CollectionBusyError"})
                return original(method, path, **kwargs)

            client._http.request = busy_once
            client.backoff = 0.01
            assert docs.add(["a dog"], ids=["d"]) == ["d"] and calls["n"] >= 2
            with pytest.raises(InvalidParameterError, match="encoded by the server"):
                docs.add(["a cat"], vectors=[[0.0] * 32])
