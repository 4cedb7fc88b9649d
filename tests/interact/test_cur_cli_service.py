"""`semspace cur build/search` and the service's rerank="cur" with a tiny cross-encoder."""

import json
import subprocess
import sys

import httpx

from semspace import Encoder
from semspace.search import Collection
from semspace.service import create_app

DOCS = [
    "a man is playing a guitar",
    "a dog is running in the park",
    "the cat eats food",
    "a plane is taking off",
    "a woman is playing a flute",
    "a small dog eats food",
    "the man plays a big guitar",
    "a cat in the park",
]


def semspace(*args):
    return subprocess.run(
        [sys.executable, "-m", "semspace.cli", *map(str, args)], capture_output=True, text=True, timeout=300
    )


def test_cur_build_search_cli(tmp_path, tiny_bert_dir):
    items, queries = tmp_path / "items.txt", tmp_path / "anchors.txt"
    items.write_text("\n".join(DOCS) + "\n")
    queries.write_text("a man\na dog\nthe park\nfood\na guitar\na cat\n")
    built = semspace(
        "cur",
        "build",
        tmp_path / "cur",
        "--cross-encoder",
        tiny_bert_dir,
        "--anchor-queries",
        queries,
        "--items",
        items,
        "--n-anchor-items",
        "3",
    )
    assert built.returncode == 0, built.stderr
    found = semspace("cur", "search", tmp_path / "cur", "a man playing guitar", "--budget", "5", "-k", "3", "--json")
    out = json.loads(found.stdout)
    assert out["calls"] == 5 and len(out["hits"]) == 3
    bad = semspace("cur", "search", tmp_path / "cur", "x", "--budget", "2")
    assert bad.returncode == 2 and "budget" in bad.stderr


def test_service_rerank_cur(tmp_path, tiny_bert_dir, live_server):
    from semspace.interact.cross_encoder import CrossEncoder
    from semspace.interact.searcher import CURSearcher

    encoder = Encoder(str(tiny_bert_dir))
    with Collection.create(tmp_path / "c", encoder=encoder) as c:
        c.add(DOCS, ids=[f"d{i}" for i in range(len(DOCS))])
        CURSearcher.build(
            CrossEncoder(tiny_bert_dir),
            ["a man", "a dog", "food", "a cat"],
            DOCS,
            [f"d{i}" for i in range(len(DOCS))],
            n_anchor_items=3,
        ).save(tmp_path / "c" / "cur")
        c.delete(["d7"])
    with live_server(create_app(tmp_path / "c", encoder=encoder)) as srv, httpx.Client(base_url=srv.url) as http:
        body = http.post("/search", json={"query": "a man", "k": 8, "rerank": "cur", "budget": 6}).json()
        result = body["results"][0]
        assert result["ce_calls"] == 6 and "d7" not in {h["id"] for h in result["hits"]}
        assert http.post("/search", json={"query": "a man", "rerank": "cur", "budget": 2}).status_code == 400
        assert http.post("/search", json={"query": "a man", "rerank": "bm25"}).status_code == 422


def test_cur_build_from_collection_cli(tmp_path, tiny_bert_dir):
    encoder = Encoder(str(tiny_bert_dir))
    with Collection.create(tmp_path / "c", encoder=encoder) as c:
        c.add(DOCS, ids=[f"d{i}" for i in range(len(DOCS))])
        ids, texts, vectors = c.export()
    assert ids == [f"d{i}" for i in range(len(DOCS))] and texts == DOCS and vectors.shape == (len(DOCS), 32)
    anchors = tmp_path / "anchors.txt"
    anchors.write_text("a man\na dog\nfood\n")
    built = semspace(
        "cur",
        "build",
        tmp_path / "c" / "cur",
        "--cross-encoder",
        tiny_bert_dir,
        "--anchor-queries",
        anchors,
        "--collection",
        tmp_path / "c",
        "--n-anchor-items",
        "3",
        "--anchor-items",
        "kmeans",
    )
    assert built.returncode == 0, built.stderr
    found = json.loads(
        semspace(
            "cur", "search", tmp_path / "c" / "cur", "a dog", "--budget", "4", "-k", "2", "--rounds", "2", "--json"
        ).stdout
    )
    assert found["calls"] == 4 and all(h["id"].startswith("d") for h in found["hits"])
