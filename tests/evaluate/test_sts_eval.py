import csv
import shutil

import numpy as np
import pytest

from semspace.data import STSPairs, STSTask
from semspace.data.samples import sample_path
from semspace.evaluate import STSRun, run_sts, score_test, write_sts_report
from semspace.evaluate.report import target_check
from semspace.evaluate.sts import Vectors, evaluate_task
from semspace.metrics import spearman


def _pairs(name, n, seed):
    rng = np.random.default_rng(seed)
    s1 = [f"{name}-a{i}" for i in range(n)]
    s2 = [f"{name}-b{i}" for i in range(n)]
    return STSPairs(s1, s2, rng.uniform(0, 5, n), name)


def test_wmean_and_all_aggregations():
    subsets = {"x": _pairs("x", 30, 0), "y": _pairs("y", 90, 1)}
    task = STSTask("T", "en", subsets, _pairs("dev", 20, 2), None, "dev", "-", tuple(subsets.values()))
    rng = np.random.default_rng(5)
    cos = {name: p.scores + rng.normal(size=len(p)) * (1 if name == "x" else 3) for name, p in subsets.items()}
    scores = score_test(task, lambda p: cos[p.name])
    rx, ry = spearman(cos["x"], subsets["x"].scores), spearman(cos["y"], subsets["y"].scores)
    assert scores["wmean"] == pytest.approx(100 * (30 * rx + 90 * ry) / 120)
    together = spearman(
        np.concatenate([cos["x"], cos["y"]]), np.concatenate([subsets["x"].scores, subsets["y"].scores])
    )
    assert scores["all"] == pytest.approx(100 * together)


def test_evaluate_task_rows_and_raw_equivalence():
    test, dev, fit = _pairs("test", 80, 0), _pairs("dev", 60, 1), _pairs("fit", 100, 2)
    task = STSTask("T", "en", {"test": test}, dev, fit, "dev", "train", (fit, dev, test))
    sentences = list(dict.fromkeys(test.sentences() + dev.sentences() + fit.sentences()))
    vectors = Vectors(
        np.random.default_rng(0).normal(size=(len(sentences), 24)), {s: i for i, s in enumerate(sentences)}
    )
    rows = evaluate_task(task, vectors, ks=(16, 8), curve_ks=(4,), n_bootstrap=50)
    kinds = {(r["transform"], r["fit"]) for r in rows}
    assert {
        ("raw", "-"),
        ("whitening", "target"),
        ("whitening-16", "target"),
        ("whitening-8", "target"),
        ("curve-4", "target"),
        ("tuned", "target"),
        ("whitening", "train"),
        ("tuned", "train"),
    } <= kinds
    raw = next(r for r in rows if r["transform"] == "raw")
    for tuned in (r for r in rows if r["transform"] == "tuned"):
        if tuned["beta"] == 0 and tuned["gamma"] == 0 and tuned["k"] == 24:
            # keeping raw is the identity: the very same cosines, not a float32 rotation of them
            assert tuned["wmean"] == raw["wmean"] and tuned["all"] == raw["all"]
    checked, _failures = target_check([{**r, "model": "m", "pooling": "p"} for r in rows])
    assert checked == 4


@pytest.fixture
def mini_data_root(tmp_path, fixtures):
    root = tmp_path / "data"
    (root / "stsbenchmark_sbert").mkdir(parents=True)
    shutil.copy(sample_path(), root / "stsbenchmark_sbert" / "stsbenchmark.tsv.gz")
    shutil.copytree(fixtures / "STS12-en-test", root / "senteval_downstream" / "STS" / "STS12-en-test")
    sick = root / "senteval_downstream" / "SICK"
    sick.mkdir(parents=True)
    for name in ("SICK_train.txt", "SICK_trial.txt", "SICK_test_annotated.txt"):
        shutil.copy(fixtures / "SICK" / "SICK_test_sample.txt", sick / name)
    return root


def test_run_sts_end_to_end_writes_report(tiny_bert_dir, mini_data_root, tmp_path):
    runs = [STSRun(str(tiny_bert_dir), ["cls", "last-avg"], ["STS12", "STS-B", "SICK-R"])]
    rows = run_sts(
        runs,
        data_root=mini_data_root,
        cache_dir=tmp_path / "cache",
        ks=(16,),
        max_pairs=100,
        n_bootstrap=20,
        show_progress_bar=False,
    )
    assert {r["task"] for r in rows} == {"STS12", "STS-B", "SICK-R"}
    assert {r["pooling"] for r in rows} == {"cls", "mean"}
    md = write_sts_report(rows, tmp_path / "out", "semspace eval sts --test")
    text = md.read_text(encoding="utf-8")
    assert "semspace eval sts --test" in text and "## English" in text and "Machine:" in text
    assert (tmp_path / "out" / "sts_vs_k.png").stat().st_size > 1000
    with open(tmp_path / "out" / "sts.csv", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)
    # Second run is served from the cache and gives the same numbers.
    again = run_sts(
        runs,
        data_root=mini_data_root,
        cache_dir=tmp_path / "cache",
        ks=(16,),
        max_pairs=100,
        n_bootstrap=20,
        show_progress_bar=False,
    )
    assert [r["wmean"] for r in again] == [r["wmean"] for r in rows]
