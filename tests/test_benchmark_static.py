"""benchmarks/static.py's helpers (issue 26): the trained rows' training texts hold no test sentence, and the paired
bootstrap of ours against model2vec."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from support import load_benchmark

from semspace.data.sts import STSPairs


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("static")


def test_the_benchmark_trains_on_no_test_sentence(bench):
    """A training text that a test set holds in another casing, tokenization, punctuation or spacing (SentEval's
    lower-cased, tokenized copy of an STS-B sentence; a Chinese sentence with or without its punctuation) is dropped;
    the others are kept, duplicates once."""
    texts = [
        "A man is playing a guitar.",
        "Kids play football",
        "怎么提高？借呗额度",
        "我的蚂蚁花呗找不到了",
        "我想借钱吗",
        "ＡＢＣ full width",
        "Kids play football",
    ]
    tests = ["a man is playing a guitar .", "怎么提高借呗额度", "我的蚂蚁花呗 找不到了", "abc full width"]
    assert bench.without_test_sentences(texts, tests) == (["Kids play football", "我想借钱吗"], 4)


def test_the_benchmarks_paired_bootstrap(bench):
    """`paired_difference`: a model against itself differs by 0 on every resample; a model with noise added to
    its vectors scores lower, its interval around the difference."""
    rng = np.random.default_rng(0)
    a, b = [f"a{i}" for i in range(300)], [f"b{i}" for i in range(300)]
    vectors = {s: rng.normal(size=8) for s in a + b}
    cosines = [float(vectors[x] @ vectors[y]) for x, y in zip(a, b, strict=True)]
    task = SimpleNamespace(test_all=STSPairs(a, b, np.array(cosines) + rng.normal(scale=0.5, size=300)))
    exact = SimpleNamespace(encode=lambda texts: np.array([vectors[t] for t in texts]))
    noisy = SimpleNamespace(encode=lambda texts: np.array([vectors[t] + rng.normal(size=8) for t in texts]))
    assert bench.paired_difference(task, exact, exact, resamples=50) == (0.0, 0.0, 0.0)
    diff, low, high = bench.paired_difference(task, noisy, exact, resamples=200)
    assert low <= diff <= high < 0


def test_the_paired_section_is_dropped_by_the_modes_that_change_its_models(bench):
    lines = ["# report", "## Goals", "- a goal", "", bench.PAIRED, "- how", "| table |", ""]
    assert bench.without_paired(lines) == ["# report", "## Goals", "- a goal"]
    assert bench.without_paired(lines[:3]) == lines[:3]
