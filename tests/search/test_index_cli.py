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
