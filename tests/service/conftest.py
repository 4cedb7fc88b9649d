"""Fixtures for the service tests: the tiny random BERT as an Encoder, a tiny random cross-encoder, and a small
collection with a whitening (so `dimensions` has something to pick)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import save_tiny_cross_encoder

from semspace import Encoder
from semspace.search import Collection

CORPUS = [
    "a man is playing a guitar",
    "a woman is playing a flute",
    "a dog is running in the park",
    "a cat eats food",
    "a big plane is taking off",
    "a small dog eats food in the park",
    "the man is running",
    "a woman eats",
    "a big cat is playing",
    "the plane is small",
    "a dog is playing a guitar in the park",
    "the woman is taking the cat",
]


@pytest.fixture(scope="session")
def tiny_encoder(tiny_bert_dir: Path) -> Encoder:
    return Encoder(str(tiny_bert_dir))


@pytest.fixture(scope="session")
def tiny_cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> Path:
    """A 1-output BertForSequenceClassification over the tiny BERT's vocabulary (random weights)."""
    return save_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-ce"), tiny_bert_dir)


@pytest.fixture
def whitened_collection(tmp_path: Path, tiny_encoder: Encoder) -> Path:
    """A collection of :data:`CORPUS` whitened to 8 components."""
    with Collection.create(tmp_path / "c", encoder=tiny_encoder) as coll:
        coll.add(CORPUS, ids=[f"d{i}" for i in range(len(CORPUS))], metadata=[{"n": i} for i in range(len(CORPUS))])
        coll.fit_whitening(n_components=8)
    return tmp_path / "c"
