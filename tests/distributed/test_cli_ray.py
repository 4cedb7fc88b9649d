"""`semspace encode --ray`, `index add --ray` and `whiten-stats` on the local Ray runtime of the fixture (the CLI
reuses a runtime that is up), compared with the single-process commands."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semspace.cli import main
from semspace.encode import Encoder
from semspace.search import Collection
from semspace.transform import Whitening

TEXTS = [f"{a} {b} is {c}" for a in ("a", "the") for b in ("man", "woman", "dog", "cat") for c in ("running", "eats")]


def run(*args: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    assert exit_info.value.code == 0


def test_encode_on_ray_writes_the_vectors_encode_writes(ray_runtime, tiny_bert_dir, tmp_path, capsys):
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    model = str(tiny_bert_dir)
    run("encode", str(source), "-o", str(tmp_path / "ray.npy"), "--model", model, "--normalize", "--ray", "local",
        "--actors", "2", "--shard-size", "5")  # fmt: skip
    run("encode", str(source), "-o", str(tmp_path / "plain.npy"), "--model", model, "--normalize")
    np.testing.assert_allclose(np.load(tmp_path / "ray.npy"), np.load(tmp_path / "plain.npy"), rtol=1e-5, atol=1e-5)
    assert "2 Ray actor(s)" in capsys.readouterr().err


def test_whiten_stats_fits_from_the_shards(tmp_path, capsys):
    from semspace._io import write_artifact_json
    from semspace.distributed.shards import FORMAT, MANIFEST, ShardFolder, write_shard

    folder = tmp_path / "shards"
    x = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32)
    for number, lo in enumerate(range(0, 50, 20)):  # the files the actors write, without running a job
        write_shard(folder, number, [str(i) for i in range(lo, min(lo + 20, 50))], x[lo : lo + 20])
    shards = [{"name": f"shard-{n:05d}", "first": lo, "count": min(20, 50 - lo)} for n, lo in enumerate((0, 20, 40))]
    write_artifact_json(folder / MANIFEST, FORMAT, {"count": 50, "dim": 6, "encoder": "random", "shards": shards})
    run("whiten-stats", str(folder), "-o", str(tmp_path / "w"), "--k", "4")
    report = json.loads(capsys.readouterr().out)
    assert (report["count"], report["shards"], report["dim"]) == (50, 3, 6)
    saved = Whitening.load(tmp_path / "w")
    np.testing.assert_allclose(saved.kernel_, Whitening(n_components=4).fit(x).kernel_, rtol=1e-7, atol=1e-7)
    assert ShardFolder(folder).all_ids() == [str(i) for i in range(50)]


def test_index_add_on_ray_searches_like_index_add(ray_runtime, tiny_bert_dir, tmp_path, capsys):
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": f"d{i}", "text": t, "n": i}) + "\n" for i, t in enumerate(TEXTS)))
    for name, extra in (("plain", ()), ("ray", ("--ray", "local", "--shard-size", "7"))):
        with Collection.create(tmp_path / name, encoder=Encoder(str(tiny_bert_dir))):
            pass
        run("index", "add", str(tmp_path / name), str(docs), *extra)
    with Collection.open(tmp_path / "plain") as plain, Collection.open(tmp_path / "ray") as ray_collection:
        assert len(ray_collection) == len(TEXTS) and ray_collection.get(["d3"])[0]["metadata"] == {"n": 3}
        expected = plain.search(["a dog is running", "the cat eats"], k=5)
        got = ray_collection.search(["a dog is running", "the cat eats"], k=5)
    for e, g in zip(expected, got, strict=True):
        assert g.ids == e.ids
        np.testing.assert_allclose(g.scores, e.scores, rtol=1e-5, atol=1e-5)


def test_ray_session_reuses_a_running_runtime_and_leaves_it_up(ray_runtime):
    import ray

    from semspace.distributed import ray_session

    with ray_session("auto"):
        assert ray.is_initialized()
    assert ray.is_initialized()  # the fixture's runtime: not ours to stop
