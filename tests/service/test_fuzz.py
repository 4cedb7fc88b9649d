"""Schemathesis over /openapi.json against a live server (tiny random BERT, a whitened collection, a tiny
cross-encoder): every generated request — valid and invalid (schemathesis' positive and negative modes) — must get
a response that is not a 5xx and passes schemathesis' default checks (documented status code and content type,
body matching the schema, valid data accepted, invalid data rejected). Bounded (`MAX_EXAMPLES` per operation and
mode, no shrinking) and derandomized.

Figures for docs/results/service.md:
`PYTHONPATH=src python -m pytest -q -s -p no:cacheprovider tests/service/test_fuzz.py`
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import (
    NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES,
    POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES,
)
from schemathesis.generation import GenerationMode

from semspace.search import Collection
from semspace.service import Limits, create_app

MAX_EXAMPLES = 70  # per operation and mode
# 413 is how the service refuses what JSON Schema cannot say (tokens over the model's limit, metadata or response
# bytes, queries × k hits) and what it can (too many items, too long texts): an expected answer to valid and to
# invalid data alike.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            # 413: limits the schema cannot state (tokens, bytes, hits); 400: a metadata filter's operators and field
            # names, which the schema describes only as an object
            "positive_data_acceptance": {
                "expected-statuses": [*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, "413", "400"]
            },
            "negative_data_rejection": {"expected-statuses": [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]},
        }
    }
)


@pytest.fixture
def fuzz_url(tmp_path, tiny_encoder, tiny_cross_encoder_dir, live_server):
    with Collection.create(tmp_path / "c", encoder=tiny_encoder) as coll:
        coll.add(["a man is playing a guitar", "a dog is running", "a cat eats food"], ids=["g", "d", "c"])
        coll.fit_whitening(n_components=2)
    limits = Limits(max_batch=16, max_text_chars=300, max_body_bytes=64_000, max_k=20, max_hits=100)
    app = create_app(tmp_path / "c", encoder=tiny_encoder, limits=limits, cross_encoder=tiny_cross_encoder_dir)
    with live_server(app) as srv:
        yield srv.url


class Tally:
    def __init__(self) -> None:
        self.statuses: collections.Counter = collections.Counter()
        self.server_errors: list[str] = []
        self.failures: list[str] = []

    def runner(self, operation, mode: GenerationMode) -> Callable[[], None]:
        """A derandomized, bounded Hypothesis test of one operation in one generation mode."""

        @settings(
            max_examples=MAX_EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case) -> None:
            try:
                response = case.call(timeout=30)
            except requests.RequestException as exc:  # a dropped connection is a server error too
                request = f"{case.method} {case.formatted_path} query={case.query!r} headers={case.headers!r}"
                self.server_errors.append(f"{request} ({mode.value}): {exc!r}"[:400])
                return
            self.statuses[response.status_code] += 1
            label = f"{case.method} {case.formatted_path} ({mode.value}) → {response.status_code}"
            if response.status_code >= 500:
                self.server_errors.append(f"{label}: {response.text[:300]}")
            try:
                case.validate_response(response)
            except BaseExceptionGroup as group:  # schemathesis' FailureGroup: one entry per failed check
                self.failures.extend(f"{label}: {type(e).__name__}: {response.text[:200]}" for e in group.exceptions)

        return run


@pytest.fixture
def fuzz_catalog_url(tmp_path, tiny_encoder, live_server):
    """A server on a folder of collections (one made beforehand, `docs`)."""
    from semspace.search import Catalog

    with Catalog(tmp_path / "root", model=tiny_encoder) as catalog:
        catalog.create_collection("docs").add(["a man is playing a guitar", "a dog is running"], ids=["g", "d"])
    limits = Limits(max_batch=16, max_text_chars=300, max_body_bytes=64_000, max_k=20, max_hits=100)
    with live_server(create_app(tmp_path / "root", encoder=tiny_encoder, limits=limits)) as srv:
        yield srv.url


def test_fuzz_no_server_errors_and_schema_conformance(fuzz_url):
    fuzz(fuzz_url, lambda path: True)


def test_fuzz_the_collection_routes_of_a_folder_of_collections(fuzz_catalog_url):
    fuzz(fuzz_catalog_url, lambda path: path.startswith("/collections"))


def fuzz(url: str, include: Callable[[str], bool]) -> None:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=CONFIG)
    tally = Tally()
    operations = [op for op in (result.ok() for result in schema.get_all_operations()) if include(op.path)]
    start = time.perf_counter()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                tally.runner(operation, mode)()
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body): negative mode has no cases
                assert mode is GenerationMode.NEGATIVE, operation.label
    cases = sum(tally.statuses.values())
    print(
        f"\nschemathesis {schemathesis.__version__}: {len(operations)} operations, {cases} cases "
        f"in {time.perf_counter() - start:.0f} s; by status {dict(sorted(tally.statuses.items()))}; "
        f"server errors (5xx): {len(tally.server_errors)}; failed checks: {len(tally.failures)}"
    )
    assert not tally.server_errors, "\n".join(tally.server_errors[:10])
    assert not tally.failures, "\n".join(sorted(set(f[:160] for f in tally.failures))[:15])
