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
        "--encoder",
        tiny_bert_dir,
    )
    assert built.returncode == 0, built.stderr
    assert "calibration on 6 held-out anchor queries" in built.stderr
    found = semspace("cur", "search", tmp_path / "cur", "a man playing guitar", "--budget", "5", "-k", "3", "--json")
    out = json.loads(found.stdout)
    assert out["calls"] == 5 and len(out["hits"]) == 3
    assert out["method"] in ("rnr", "cur(rounds=1)", "adacur(rounds=5, first=bi-encoder)")
    assert out["reason"].startswith(out["method"].split("(")[0] + ": Top-")
    bad = semspace("cur", "search", tmp_path / "cur", "x", "--budget", "2", "--method", "cur")
    assert bad.returncode == 2 and "budget" in bad.stderr
    # below the 3 anchor items CUR cannot run, RnR can: `semspace rerank` is `cur search`
    rnr = semspace("rerank", tmp_path / "cur", "a dog", "--budget", "2", "-k", "1")
    assert rnr.returncode == 0, rnr.stderr
    assert "(2 CE calls, rnr)" in rnr.stdout and "why: rnr: the budget 2 is below the 3 anchor items" in rnr.stdout
    unknown = semspace("rerank", tmp_path / "cur", "a dog", "--method", "bm25")
    assert unknown.returncode == 2 and "'--method'" in unknown.stderr


def test_cur_search_method_without_a_bi_encoder_cli(tmp_path, tiny_bert_dir):
    items, queries = tmp_path / "items.txt", tmp_path / "anchors.txt"
    items.write_text("\n".join(DOCS) + "\n")
    queries.write_text("a man\na dog\nfood\n")
    args = ("--cross-encoder", tiny_bert_dir, "--anchor-queries", queries, "--items", items, "--n-anchor-items", "3")
    built = semspace("cur", "build", tmp_path / "cur", *args, "--no-bi-encoder")
    assert built.returncode == 0 and "no bi-encoder side" in built.stderr
    auto = json.loads(semspace("cur", "search", tmp_path / "cur", "a dog", "--budget", "4", "--json").stdout)
    assert auto["method"] == "cur(rounds=1)" and "no bi-encoder side" in auto["reason"] and auto["calls"] == 4
    rnr = semspace("cur", "search", tmp_path / "cur", "a dog", "--method", "rnr")
    assert rnr.returncode == 2 and rnr.stderr.startswith("error: ") and "rebuild it with one" in rnr.stderr


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
        assert result["method"] == "cur(rounds=1)" and result["reason"] == "cur: requested"
        assert http.post("/search", json={"query": "a man", "rerank": "cur", "budget": 2}).status_code == 400
        assert http.post("/search", json={"query": "a man", "rerank": "bm25"}).status_code == 422
        # this index has no bi-encoder side: "auto" runs CUR and says so, "rnr" is a 422 saying how to get one
        auto = http.post("/search", json={"query": "a man", "k": 3, "rerank": "auto", "budget": 5}).json()
        assert auto["results"][0]["method"] == "cur(rounds=1)" and "no bi-encoder" in auto["results"][0]["reason"]
        rnr = http.post("/search", json={"query": "a man", "rerank": "rnr"})
        assert rnr.status_code == 422 and "rebuild it with one" in rnr.json()["detail"]
        plain = http.post("/search", json={"query": "a man", "k": 2}).json()["results"][0]
        assert plain["method"] is None and plain["reason"] is None


def test_service_rerank_rnr_and_auto(tmp_path, tiny_bert_dir, live_server):
    from semspace.interact.cross_encoder import CrossEncoder
    from semspace.interact.searcher import CURSearcher

    encoder = Encoder(str(tiny_bert_dir))
    ids = [f"d{i}" for i in range(len(DOCS))]
    with Collection.create(tmp_path / "c", encoder=encoder) as c:
        c.add(DOCS, ids=ids)
        _, texts, vectors = c.export()
        searcher = CURSearcher.build(
            CrossEncoder(tiny_bert_dir),
            ["a man", "a dog", "food", "a cat", "the park"],
            texts,
            ids,
            n_anchor_items=3,
            item_vectors=vectors,
            encoder=encoder,
        )
        assert searcher.has_bi_encoder and searcher.calibration.n_queries == 5
        searcher.save(tmp_path / "c" / "cur")
    with live_server(create_app(tmp_path / "c", encoder=encoder)) as srv, httpx.Client(base_url=srv.url) as http:
        rnr = http.post("/search", json={"queries": ["a man", "food"], "k": 3, "rerank": "rnr", "budget": 4}).json()
        for result in rnr["results"]:
            assert result["method"] == "rnr" and result["reason"] == "rnr: requested"
            assert result["ce_calls"] == 4 and len(result["hits"]) == 3
        auto = http.post("/search", json={"query": "a dog", "k": 2, "rerank": "auto", "budget": 6}).json()
        result = auto["results"][0]
        assert result["ce_calls"] <= 6 and result["reason"].startswith(result["method"].split("(")[0] + ": Top-")
        assert "held-out anchor queries" in result["reason"]
        small = http.post("/search", json={"query": "a dog", "k": 1, "rerank": "auto", "budget": 2}).json()
        assert small["results"][0]["method"] == "rnr" and small["results"][0]["ce_calls"] == 2
        with_filter = http.post("/search", json={"query": "a dog", "rerank": "rnr", "filter": {"a": 1}})
        assert with_filter.status_code == 422


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
