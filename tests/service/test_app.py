"""The app factory and its dependencies, in process (FastAPI's TestClient runs the lifespan inside `with`)."""

import numpy as np
import pytest
from fastapi.testclient import TestClient

from semspace import Encoder
from semspace.errors import InvalidParameterError
from semspace.search import Collection
from semspace.service import Limits, create_app
from semspace.service.deps import Target, get_encoder, get_limits, get_target

LOCAL = "http://localhost"  # TestClient's default host "testserver" is not an allowed Host


class TinyEncoder:
    """Deterministic stand-in for an Encoder: (length, number of spaces, 1) per text."""

    model_id = "tiny-deterministic"
    dim = 3

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts, normalize=False, show_progress_bar=None):
        self.seen.extend(texts)
        v = np.array([[len(t), t.count(" "), 1.0] for t in texts], dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True) if normalize else v


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir):
    return Encoder(str(tiny_bert_dir))


def test_encoder_override_is_used_by_the_routes(encoder):
    app = create_app(None, encoder=encoder)
    tiny = TinyEncoder()
    app.dependency_overrides[get_encoder] = lambda: tiny
    with TestClient(app, base_url=LOCAL) as client:
        emb = client.post("/embed", json={"texts": ["a dog", "a big cat"]}).json()
        assert emb == {"model": "tiny-deterministic", "dim": 3, "embeddings": [[5, 1, 1], [9, 2, 1]]}
        health = client.get("/health").json()
        assert health["model"] == "tiny-deterministic" and health["dim"] == 3 and health["documents"] is None
        sim = client.post("/similarity", json={"pairs": [["ab", "cd"], ["ab", "a b"]]}).json()["scores"]
        assert sim[0] == pytest.approx(1.0) and sim[1] < 1.0
        assert tiny.seen == ["a dog", "a big cat", "ab", "cd", "a b"]  # each distinct pair text encoded once
        app.dependency_overrides.clear()
        assert client.post("/embed", json={"texts": ["a dog"]}).json()["dim"] == 32


def test_limits_override_is_used_by_the_routes(encoder):
    app = create_app(None, encoder=encoder)
    app.dependency_overrides[get_limits] = lambda: Limits(max_batch=1, max_text_chars=5)
    with TestClient(app, base_url=LOCAL) as client:
        too_many = client.post("/embed", json={"texts": ["a", "b"]})
        assert too_many.status_code == 413
        assert too_many.json() == {"detail": "Too many texts: 2 > 1 per request."}
        too_long = client.post("/similarity", json={"pairs": [["a dog", "a big dog"]]})
        assert too_long.status_code == 413 and too_long.json()["detail"].startswith("Too many pair texts")
        assert client.post("/embed", json={"texts": ["a dog!"]}).json() == {
            "detail": "texts[0] has 6 characters; the limit is 5."
        }


def test_collection_override_serves_search_without_a_collection_folder(tmp_path, encoder):
    app = create_app(None, encoder=encoder)
    with TestClient(app, base_url=LOCAL) as client:
        missing = client.post("/search", json={"query": "a dog"})
        assert missing.status_code == 404 and "No collection" in missing.json()["detail"]
        with Collection.create(tmp_path / "c", encoder=encoder) as coll:
            coll.add(["a dog is running", "a plane is taking off"], ids=["d", "p"])
            app.dependency_overrides[get_target] = lambda: Target(coll, encoder, None)
            hits = client.post("/search", json={"query": "a dog is running", "k": 1}).json()["results"][0]["hits"]
            assert [h["id"] for h in hits] == ["d"]
            assert client.get("/documents/p").json()["text"] == "a plane is taking off"


def test_factory_builds_independent_apps(tiny_bert_dir, encoder):
    strict = create_app(None, encoder=encoder, limits=Limits(max_batch=1))
    loose = create_app(None, encoder=str(tiny_bert_dir))  # an encoder spec: loaded by this app's lifespan
    strict.dependency_overrides[get_encoder] = TinyEncoder
    assert strict is not loose and loose.dependency_overrides == {}
    with TestClient(strict, base_url=LOCAL) as a, TestClient(loose, base_url=LOCAL) as b:
        assert a.post("/embed", json={"texts": ["x", "y"]}).status_code == 413
        assert b.post("/embed", json={"texts": ["x", "y"]}).status_code == 200
        assert a.get("/health").json()["model"] == "tiny-deterministic"
        assert b.get("/health").json()["model"] == str(tiny_bert_dir)
        assert strict.state.semspace is not loose.state.semspace
        assert strict.state.semspace.encoder is encoder and loose.state.semspace.encoder is not encoder
    assert set(strict.openapi()["paths"]) == set(loose.openapi()["paths"])


def test_lifespan_opens_and_closes_the_collection(tmp_path, encoder):
    Collection.create(tmp_path / "c", encoder=encoder).close()
    app = create_app(tmp_path / "c", encoder=encoder)
    with TestClient(app, base_url=LOCAL) as client:
        assert client.post("/documents", json={"documents": [{"text": "a dog"}]}).json()["count"] == 1
        assert app.state.semspace.collection.path == tmp_path / "c"
    assert not hasattr(app.state, "semspace")  # state is dropped at shutdown
    with TestClient(app, base_url=LOCAL) as client:  # and loaded again at the next start
        assert client.get("/health").json()["documents"] == 1


def test_state_before_the_app_started_is_a_clear_error(encoder):
    app = create_app(None, encoder=encoder)
    with pytest.raises(RuntimeError, match="lifespan"):
        TestClient(app, base_url=LOCAL).get("/health")  # not entered: the lifespan did not run


def test_limits_are_validated():
    with pytest.raises(InvalidParameterError, match=r"The 'max_batch' parameter of Limits must be an int >= 1\. Got 0"):
        Limits(max_batch=0)


def test_an_old_manifests_last_avg_pooling_is_shown_as_mean(tmp_path, tiny_bert_dir):
    """/info, GET /collections and GET /collections/{name} name the pooling `mean` for a collection whose manifest
    was written before issue 27 (`last-avg`)."""
    import json

    Collection.create(tmp_path / "cat" / "old", encoder=str(tiny_bert_dir), pooling="mean").close()
    manifest_file = tmp_path / "cat" / "old" / "collection.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["encoder"]["pooling"] = "last-avg"
    manifest_file.write_text(json.dumps(manifest))
    with TestClient(create_app(tmp_path / "cat" / "old"), base_url=LOCAL) as client:
        assert client.get("/info").json()["model_type"]["embedding"]["pooling"] == "mean"
        assert client.get("/collections").json()["collections"][0]["encoder"]["pooling"] == "mean"
    with TestClient(create_app(tmp_path / "cat"), base_url=LOCAL) as client:
        assert client.get("/collections").json()["collections"][0]["encoder"]["pooling"] == "mean"
        assert client.get("/collections/old").json()["encoder"]["pooling"] == "mean"
