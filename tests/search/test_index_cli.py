"""`semspace index …` as a user runs it (subprocesses, tiny local model)."""

import json
import subprocess
import sys


def semspace(*args):
    return subprocess.run(
        [sys.executable, "-m", "semspace.cli", *map(str, args)], capture_output=True, text=True, timeout=300
    )


def test_index_lifecycle(tmp_path, tiny_bert_dir):
    coll = tmp_path / "c"
    assert semspace("index", "create", coll, "--model", tiny_bert_dir).returncode == 0
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text(
        "\n".join(
            json.dumps(d)
            for d in [
                {"id": "a", "text": "a man is playing a guitar", "lang": "en"},
                {"id": "b", "text": "a dog is running in the park"},
            ]
        )
        + "\n"
    )
    added = semspace("index", "add", coll, jsonl)
    assert added.returncode == 0, added.stderr
    csv_file = tmp_path / "docs.csv"
    csv_file.write_text("key,body\nc,the cat eats food\n")
    assert semspace("index", "add", coll, csv_file, "--text-column", "body", "--id-column", "key").returncode == 0
    txt = tmp_path / "docs.txt"
    txt.write_text("a plane is taking off\n")
    assert semspace("index", "add", coll, txt).returncode == 0
    info = json.loads(semspace("index", "info", coll).stdout)
    assert info["count"] == 4 and info["index"] == "Flat"
    found = semspace("index", "search", coll, "a man is playing a guitar", "-k", "4", "--json")
    hits = json.loads(found.stdout.splitlines()[0])["hits"]
    assert {h["id"] for h in hits} >= {"a", "b", "c"} and next(h for h in hits if h["id"] == "a")["metadata"] == {
        "lang": "en"
    }
    table = semspace("index", "search", coll, "guitar", "-k", "2")
    assert table.returncode == 0 and table.stdout.startswith("query: guitar")
    assert semspace("index", "delete", coll, "b").returncode == 0
    assert semspace("index", "whiten", coll, "--k", "3").returncode == 0
    info = json.loads(semspace("index", "info", coll).stdout)
    assert info["count"] == 3 and info["dim"] == 3
    pairs = tmp_path / "dev.tsv"
    pairs.write_text("a man plays guitar\ta man is playing a guitar\t5\na cat\ta plane\t0\na dog runs\ta dog\t4\n")
    tuned = semspace("index", "whiten", coll, "--dev-pairs", pairs)  # default rule: 3 pairs cannot beat raw
    assert tuned.returncode == 0, tuned.stderr
    assert (
        "tuned: raw (no transform; rule cv)" in tuned.stdout
        and json.loads(tuned.stdout.split("\n", 1)[1])["transform"] is None
    )
    old_rule = semspace("index", "whiten", coll, "--dev-pairs", pairs, "--rule", "bootstrap")
    assert old_rule.returncode == 0 and "rule bootstrap" in old_rule.stdout
    bad = semspace("index", "whiten", coll, "--dev-pairs", pairs, "--rule", "best")
    assert bad.returncode == 2 and "rule" in bad.stderr


def test_index_errors_are_one_line(tmp_path, tiny_bert_dir):
    def err(result):
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:")
        return lines[0]

    assert "not a semspace collection" in err(semspace("index", "info", tmp_path))
    coll = tmp_path / "c"
    semspace("index", "create", coll, "--model", tiny_bert_dir)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "text": "ok"}\n{broken\n')
    assert "bad.jsonl:2" in err(semspace("index", "add", coll, bad))
    assert "Unknown document id" in err(semspace("index", "delete", coll, "nope"))
    assert "factory" in err(semspace("index", "create", tmp_path / "d", "--model", tiny_bert_dir, "--index", "Nope"))
    other = tmp_path / "docs.xml"
    other.write_text("<x/>")
    assert "unsupported input" in err(semspace("index", "add", coll, other))


def test_index_vector_store_commands(tmp_path, tiny_bert_dir):
    coll = tmp_path / "c"
    created = semspace("index", "create", coll, "--model", tiny_bert_dir, "--index", "HNSW32,SQ8")
    assert created.returncode == 0, created.stderr
    docs = tmp_path / "docs.jsonl"
    rows = [
        {"id": "a", "text": "a man is playing a guitar", "metadata": {"source": "faq", "year": 2020}},
        {"id": "b", "text": "a dog is running in the park", "metadata": {"source": "blog", "year": 2021}},
        {"id": "c", "text": "the cat eats food", "source": "faq", "year": 2022},
    ]
    docs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert semspace("index", "add", coll, docs).returncode == 0
    found = semspace("index", "search", coll, "a man is playing a guitar", "--where", '{"source": "faq"}', "--json")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["hits"]
    assert {h["id"] for h in hits} == {"a", "c"} and hits[0]["metadata"] == {"source": "faq", "year": 2020}
    ranged = semspace(
        "index", "search", coll, "cat", "--where", '{"year": {"$gte": 2021}}', "--mode", "hybrid", "--json"
    )
    assert {h["id"] for h in json.loads(ranged.stdout)["hits"]} == {"b", "c"}
    bm25 = semspace("index", "search", coll, "guitar", "--mode", "bm25", "--json")
    assert [h["id"] for h in json.loads(bm25.stdout)["hits"]] == ["a"]
    update = tmp_path / "update.jsonl"
    update.write_text(json.dumps({"id": "b", "text": "a dog sleeps", "metadata": {"source": "faq"}}) + "\n")
    assert semspace("index", "upsert", coll, update).returncode == 0
    got = semspace("index", "get", coll, "b")
    assert json.loads(got.stdout) == {"id": "b", "text": "a dog sleeps", "metadata": {"source": "faq"}}
    page = json.loads(semspace("index", "list", coll, "--limit", "2").stdout)
    assert [d["id"] for d in page["documents"]] == ["a", "c"] and page["next_cursor"]
    rest = json.loads(semspace("index", "list", coll, "--limit", "2", "--cursor", page["next_cursor"]).stdout)
    assert [d["id"] for d in rest["documents"]] == ["b"] and rest["next_cursor"] is None
    out = tmp_path / "export.jsonl"
    assert semspace("index", "export", coll, out, "--vectors").returncode == 0
    copy = tmp_path / "copy"
    semspace("index", "create", copy, "--model", tiny_bert_dir)
    imported = semspace("index", "import", copy, out)
    assert imported.returncode == 0, imported.stderr
    again = tmp_path / "again.jsonl"
    assert semspace("index", "export", copy, again, "--vectors").returncode == 0
    assert again.read_text() == out.read_text()


def test_index_vector_store_errors_are_one_line(tmp_path, tiny_bert_dir):
    def err(result):
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
        return lines[0]

    coll = tmp_path / "c"
    assert "factory" in err(semspace("index", "create", coll, "--model", tiny_bert_dir, "--index", "PQ7"))
    assert not coll.exists()
    semspace("index", "create", coll, "--model", tiny_bert_dir)
    assert "'k'" in err(semspace("index", "search", coll, "x", "-k", "1000000000"))
    assert "--where" in err(semspace("index", "search", coll, "x", "--where", "{nope"))
    assert "$foo" in err(semspace("index", "list", coll, "--where", '{"a": {"$foo": 1}}'))


def test_an_open_collection_sees_cli_adds_and_deletes(tmp_path, tiny_bert_dir):
    """The issue's server scenario: a long-lived reader (as `semspace serve` holds) and CLI writes beside it."""
    from semspace.search import Collection

    coll = tmp_path / "c"
    assert semspace("index", "create", coll, "--model", tiny_bert_dir).returncode == 0
    reader = Collection.open(coll)
    assert reader.search("a dog is running", k=5).ids == []
    docs = tmp_path / "docs.jsonl"
    texts = {"a": "a man is playing a guitar", "b": "a dog is running in the park", "c": "the cat eats food"}
    docs.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in texts.items()))
    assert semspace("index", "add", coll, docs).returncode == 0
    assert [reader.search(t, k=1).ids[0] for t in texts.values()] == list(texts)
    assert semspace("index", "delete", coll, "b").returncode == 0
    assert "b" not in reader.search(texts["b"], k=3).ids and reader.index.ntotal == 2
    reader.close()


def test_add_with_content_ids_skips_what_is_stored_and_compact(tmp_path, tiny_bert_dir):
    coll = tmp_path / "c"
    assert semspace("index", "create", coll, "--model", tiny_bert_dir).returncode == 0
    txt = tmp_path / "docs.txt"
    txt.write_text("a man is playing a guitar\na dog is running\na man is playing a guitar\n")
    first = semspace("index", "add", coll, txt, "--ids", "content")
    assert first.returncode == 0 and "added 2 documents (1 already stored, skipped)" in first.stderr, first.stderr
    txt.write_text("a man is playing a guitar\na dog is running\na plane is taking off\n")
    again = semspace("index", "add", coll, txt, "--ids", "content")
    assert "added 1 documents (2 already stored, skipped)" in again.stderr, again.stderr
    plain = semspace("index", "add", coll, txt)  # generated ids: added again, and said so
    assert plain.returncode == 0 and "warning: 3 of these texts were already in the collection" in plain.stderr
    assert json.loads(semspace("index", "info", coll).stdout)["count"] == 6
    bad = semspace("index", "add", coll, txt, "--ids", "sha")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    compacted = semspace("index", "compact", coll)
    assert compacted.returncode == 0, compacted.stderr
    info = json.loads(compacted.stdout)
    assert info["tail_rows"] == 0 and info["index_vectors"] == 6


def test_index_commands_through_a_server(tmp_path, tiny_bert_dir, live_server):
    """`index … --url`: the same commands against a server's collection (the CLI loads no model); errors are one
    line and exit code 2."""
    from semspace import Encoder
    from semspace.service import create_app

    app = create_app(tmp_path / "root", encoder=Encoder(str(tiny_bert_dir)))
    jsonl = tmp_path / "docs.jsonl"
    rows = [{"id": "a", "text": "a man is playing a guitar", "kind": "music"}, {"id": "b", "text": "a dog runs"}]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with live_server(app) as server:
        url = ("--url", server.url)
        made = semspace("index", "create", "docs", *url)
        assert made.returncode == 0, made.stderr
        assert json.loads(made.stdout)["count"] == 0
        assert semspace("index", "add", "docs", jsonl, *url).returncode == 0
        found = semspace("index", "search", "docs", "a man is playing a guitar", "-k", "1", "--json", *url)
        assert json.loads(found.stdout)["hits"][0]["id"] == "a", found.stderr
        filtered = semspace("index", "search", "docs", "guitar", "--where", '{"kind": "music"}', "--json", *url)
        assert [h["id"] for h in json.loads(filtered.stdout)["hits"]] == ["a"]
        assert json.loads(semspace("index", "get", "docs", "b", *url).stdout)["text"] == "a dog runs"
        page = json.loads(semspace("index", "list", "docs", "--limit", "1", *url).stdout)
        assert [d["id"] for d in page["documents"]] == ["a"] and page["next_cursor"]
        assert json.loads(semspace("index", "info", "docs", *url).stdout)["count"] == 2
        assert semspace("index", "delete", "docs", "a", *url).returncode == 0
        missing = semspace("index", "get", "docs", "a", *url)
        assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
        assert "Unknown document id" in missing.stderr
        nowhere = semspace("index", "info", "nope", *url)
        assert nowhere.returncode == 2 and "No collection named 'nope'" in nowhere.stderr
        assert semspace("index", "create", "docs", *url).returncode == 2  # the name is taken
        small = semspace("index", "create", "small", "--precision", "int8", *url)
        assert small.returncode == 0 and json.loads(small.stdout)["index"] == "SQ8", small.stderr
        refused = semspace("index", "create", "x", "--precision", "binary", "--index", "HNSW32", *url)
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1


def test_info_names_an_old_manifests_last_avg_pooling_mean(tmp_path, tiny_bert_dir):
    """Collections made before issue 27 record `last-avg`; `index info` shows the name everything else uses."""
    from semspace.search import Collection

    coll = tmp_path / "old"
    Collection.create(coll, encoder=str(tiny_bert_dir), pooling="mean").close()
    manifest_file = coll / "collection.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["encoder"]["pooling"] = "last-avg"  # as semspace wrote it before the rename
    manifest_file.write_text(json.dumps(manifest))
    shown = semspace("index", "info", coll)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["encoder"]["pooling"] == "mean"
    assert json.loads(manifest_file.read_text())["encoder"]["pooling"] == "last-avg"  # info never rewrites the file
