"""Fixtures for the service tests: the tiny random BERT as an Encoder, a tiny random cross-encoder, and a small
collection with a whitening (so `dimensions` has something to pick)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import CORPUS, save_tiny_cross_encoder

from semspace import Encoder
from semspace.search import Collection


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
