import gzip

import numpy as np
import pytest

from semspace.data import load_sample, read_senteval_cn, read_senteval_sts, read_sick, read_stsbenchmark
from semspace.data.tasks import load_sts_task
from semspace.errors import DatasetFormatError, DatasetNotFoundError, InvalidParameterError


def test_senteval_cn_fixture(fixtures):
    pairs = read_senteval_cn(fixtures / "STS-B-zh.sample.data")
    assert len(pairs) == 200
    assert pairs.scores.dtype == np.float64
    assert set(np.unique(pairs.scores)) <= set(range(6))
    assert pairs.sentences1[0] and pairs.sentences2[0]


def test_senteval_cn_malformed_line_names_file_and_line(tmp_path):
    bad = tmp_path / "X.test.data"
    bad.write_text("a\tb\t1\nonly two\tfields\n", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match=r"X\.test\.data:2: expected 3"):
        read_senteval_cn(bad)
    bad.write_text("a\tb\tnot-a-number\n", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match=r":1: score"):
        read_senteval_cn(bad)


def test_non_utf8_and_missing_files(tmp_path):
    bad = tmp_path / "latin.data"
    bad.write_bytes("caf\xe9\tb\t1\n".encode("latin-1"))
    with pytest.raises(DatasetFormatError, match="UTF-8"):
        read_senteval_cn(bad)
    with pytest.raises(DatasetNotFoundError):
        read_senteval_cn(tmp_path / "missing.data")


def test_stsbenchmark_sample_splits():
    splits = load_sample()
    assert {k: len(v) for k, v in splits.items()} == {"train": 300, "dev": 200, "test": 300}
    assert splits["test"].scores.min() >= 0 and splits["test"].scores.max() <= 5


def test_stsbenchmark_errors(tmp_path):
    not_gz = tmp_path / "x.tsv.gz"
    not_gz.write_text("plain text", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match="gzip"):
        read_stsbenchmark(not_gz)
    short = tmp_path / "short.tsv.gz"
    header = "split\tgenre\tdataset\tyear\tsid\tscore\tsentence1\tsentence2\n"
    with gzip.open(short, "wt", encoding="utf-8") as handle:
        handle.write(header + "test\tg\td\ty\t1\t2.5\tonly one sentence\n")
    with pytest.raises(DatasetFormatError, match=r"short\.tsv\.gz:2"):
        read_stsbenchmark(short)


def test_senteval_sts_subsets_kept_apart(fixtures):
    subsets = read_senteval_sts(fixtures / "STS12-en-test")
    assert set(subsets) == {"MSRvid", "surprise.OnWN"}
    assert all(len(p) == 60 for p in subsets.values())


def test_senteval_sts_skips_blank_gold_lines(fixtures):
    gold = (fixtures / "STS16-en-test" / "STS.gs.postediting.txt").read_text(encoding="utf-8").splitlines()
    subsets = read_senteval_sts(fixtures / "STS16-en-test")
    assert len(subsets["postediting"]) == sum(1 for g in gold if g.strip()) < len(gold)


def test_senteval_sts_length_mismatch(tmp_path):
    (tmp_path / "STS.input.x.txt").write_text("a\tb\nc\td\n", encoding="utf-8")
    (tmp_path / "STS.gs.x.txt").write_text("1\n", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match="has 1 lines"):
        read_senteval_sts(tmp_path)


def test_sick_crlf_fixture(fixtures):
    pairs = read_sick(fixtures / "SICK" / "SICK_test_sample.txt")
    assert len(pairs) == 100
    assert not any(s.endswith("\r") for s in pairs.sentences2)
    assert pairs.scores.min() >= 1 and pairs.scores.max() <= 5


def test_subsample_is_seeded_and_capped(fixtures):
    pairs = read_senteval_cn(fixtures / "STS-B-zh.sample.data")
    a, b = pairs.subsample(50, seed=1), pairs.subsample(50, seed=1)
    assert len(a) == 50 and a.sentences1 == b.sentences1
    assert pairs.subsample(None) is pairs


def test_unknown_task():
    with pytest.raises(InvalidParameterError, match="Unknown STS task"):
        load_sts_task("STS99")


@pytest.mark.slow
def test_real_tasks_have_published_sizes(shared_data):
    sizes = {
        "STS12": 3108,
        "STS13": 1500,
        "STS14": 3750,
        "STS15": 3000,
        "STS16": 1186,
        "STS-B": 1379,
        "SICK-R": 4927,
        "ATEC": 20000,
        "BQ": 10000,
        "LCQMC": 12500,
        "PAWSX": 2000,
        "STS-B-zh": 1361,
    }
    for name, n in sizes.items():
        task = load_sts_task(name, shared_data)
        assert sum(len(p) for p in task.test.values()) == n, name
