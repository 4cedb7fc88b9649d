"""Schemathesis over /openapi.json against a live server (tiny random BERT, a whitened collection, a tiny
cross-encoder): every generated request — valid and invalid (schemathesis' positive and negative modes) — must get
a response that is not a 5xx and passes schemathesis' default checks (documented status code and content type,
body matching the schema, valid data accepted, invalid data rejected). Bounded (`MAX_EXAMPLES` per operation and
mode, no shrinking) and derandomized. The machinery is in `fuzzing.py`; `test_fuzz_seeds.py` (slow) and
`benchmarks/fuzz_service.py` run it with random seeds and more examples.

Figures for docs/results/service.md:
`PYTHONPATH=src python -m pytest -q -s -p no:cacheprovider tests/service/test_fuzz.py`
"""

from __future__ import annotations

import pytest
from fuzzing import catalog_app, collection_app, fuzz


@pytest.fixture
def fuzz_url(tmp_path, tiny_encoder, tiny_cross_encoder_dir, live_server):
    with live_server(collection_app(tmp_path / "c", tiny_encoder, tiny_cross_encoder_dir)) as srv:
        yield srv.url


@pytest.fixture
def fuzz_catalog_url(tmp_path, tiny_encoder, live_server):
    """A server on a folder of collections (one made beforehand, `docs`)."""
    with live_server(catalog_app(tmp_path / "root", tiny_encoder)) as srv:
        yield srv.url


def test_fuzz_no_server_errors_and_schema_conformance(fuzz_url):
    check(fuzz(fuzz_url, lambda path: True))


def test_fuzz_the_collection_routes_of_a_folder_of_collections(fuzz_catalog_url):
    check(fuzz(fuzz_catalog_url, lambda path: path.startswith("/collections")))


def check(tally) -> None:
    print("\n" + tally.summary())
    assert not tally.server_errors, "\n".join(tally.server_errors[:10])
    assert not tally.failures, "\n".join(sorted(set(f[:160] for f in tally.failures))[:15])
