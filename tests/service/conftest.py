"""Fixtures for the service tests: the tiny random BERT as an Encoder, a tiny random cross-encoder, and a small
collection with a whitening (so `dimensions` has something to pick)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from support import CLIENT_KEY, CORPUS, save_tiny_cross_encoder

from semspace import Encoder
from semspace.search import Collection
from semspace.service import Limits, create_app


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


@pytest.fixture
def serve_keyed(whitened_collection, tiny_encoder, tiny_cross_encoder_dir, live_server) -> Callable:
    """Start a live server on 127.0.0.1 with the API key :data:`CLIENT_KEY` over the whitened collection, with the
    `limits` a test file needs (and the tiny cross-encoder for /rerank unless `rerank=False`)."""

    @contextlib.contextmanager
    def start(limits: Limits, rerank: bool = True) -> Iterator:
        cross_encoder = tiny_cross_encoder_dir if rerank else None
        app = create_app(
            whitened_collection, encoder=tiny_encoder, limits=limits, cross_encoder=cross_encoder, api_key=CLIENT_KEY
        )
        with live_server(app) as srv:
            yield srv

    return start


@pytest.fixture
def http(served) -> Iterator[httpx.Client]:
    """An httpx client of the test file's `served` server, sending the key."""
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {CLIENT_KEY}"}, timeout=30) as client:
        yield client
