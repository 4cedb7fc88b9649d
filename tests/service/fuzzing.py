"""Schemathesis over a live server, and the API-key probe: shared by `test_fuzz.py`, `test_fuzz_seeds.py` and
`benchmarks/fuzz_service.py` (which puts `tests/` and `tests/service/` on `sys.path`).

- :data:`CONFIG`: schemathesis' default checks with the statuses the service documents for what JSON Schema cannot
  state; :class:`Tally` counts statuses, server errors and failed checks; :func:`fuzz` runs every operation in the
  positive and negative generation modes (bounded, no shrinking; derandomized, or random from a `seed`).
- :func:`collection_app` and :func:`catalog_app`: the two servers fuzzed (a whitened collection with a tiny
  cross-encoder; a folder of collections).
- :func:`auth_probe`: every operation of a keyed server's OpenAPI schema called without a key, with a wrong one, with
  one differing only in its last character and with `Basic` credentials.
"""

from __future__ import annotations

import base64
import collections
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import (
    NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES,
    POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES,
)
from schemathesis.generation import GenerationMode

from semspace.service import Limits, create_app

MAX_EXAMPLES = 70  # per operation and mode (test_fuzz.py)
LIMITS = Limits(max_batch=16, max_text_chars=300, max_body_bytes=64_000, max_k=20, max_hits=100)
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


def collection_app(folder: Path, encoder, cross_encoder_dir: Path, api_key: str | None = None):
    """The app over a new collection at `folder` (3 documents, whitened to 2 components) with a tiny cross-encoder."""
    from semspace.search import Collection

    with Collection.create(folder, encoder=encoder) as coll:
        coll.add(["a man is playing a guitar", "a dog is running", "a cat eats food"], ids=["g", "d", "c"])
        coll.fit_whitening(n_components=2)
    return create_app(folder, encoder=encoder, limits=LIMITS, cross_encoder=cross_encoder_dir, api_key=api_key)


def catalog_app(folder: Path, encoder):
    """The app over a new folder of collections at `folder` (one made beforehand, `docs`)."""
    from semspace.search import Catalog

    with Catalog(folder, model=encoder) as catalog:
        catalog.create_collection("docs").add(["a man is playing a guitar", "a dog is running"], ids=["g", "d"])
    return create_app(folder, encoder=encoder, limits=LIMITS)


@dataclass
class Tally:
    max_examples: int = MAX_EXAMPLES
    seed: int | None = None  # None: derandomized (the examples follow from the test)
    statuses: collections.Counter = field(default_factory=collections.Counter)
    server_errors: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    operations: int = 0
    seconds: float = 0.0

    @property
    def cases(self) -> int:
        return sum(self.statuses.values())

    def summary(self) -> str:
        return (
            f"schemathesis {schemathesis.__version__}: {self.operations} operations, {self.cases} cases "
            f"in {self.seconds:.0f} s; by status {dict(sorted(self.statuses.items()))}; "
            f"server errors (5xx): {len(self.server_errors)}; failed checks: {len(self.failures)}"
        )

    def runner(self, operation, mode: GenerationMode) -> Callable[[], None]:
        """A bounded Hypothesis test of one operation in one generation mode."""

        @settings(
            max_examples=self.max_examples,
            derandomize=self.seed is None,
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
                self.server_errors.append(f"{request} body={case.body!r:.200} ({mode.value}): {exc!r}"[:600])
                return
            self.statuses[response.status_code] += 1
            label = f"{case.method} {case.formatted_path} ({mode.value}) → {response.status_code}"
            if response.status_code >= 500:
                request = f"query={case.query!r:.200} body={case.body!r:.300}"
                self.server_errors.append(f"{label}: {request}: {response.text[:300]}")
            try:
                case.validate_response(response)
            except BaseExceptionGroup as group:  # schemathesis' FailureGroup: one entry per failed check
                sent = f"{label}: query={case.query!r:.100} body={case.body!r:.200}"
                self.failures += [f"{sent}: {type(e).__name__}: {response.text[:200]}" for e in group.exceptions]

        return run if self.seed is None else seed(self.seed)(run)


def fuzz(url: str, include: Callable[[str], bool], max_examples: int = MAX_EXAMPLES, seed: int | None = None) -> Tally:
    """Every operation of `url`'s schema whose path passes `include`, in both generation modes."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=CONFIG)
    tally = Tally(max_examples=max_examples, seed=seed)
    operations = [op for op in (result.ok() for result in schema.get_all_operations()) if include(op.path)]
    start = time.perf_counter()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                tally.runner(operation, mode)()
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body): negative mode has no cases
                assert mode is GenerationMode.NEGATIVE, operation.label
    tally.operations, tally.seconds = len(operations), time.perf_counter() - start
    return tally


# -- the API key -----------------------------------------------------------------------------------------------------
# Reachable without the key, by design: liveness (/health) and the search page, static HTML that holds no data and asks
# for the key in the browser (issue 25).
OPEN = {("GET", "/health"), ("GET", "/")}
# not in the schema but served: checked too
PATH_VALUES = {"collection": "c", "doc_id": "g", "model_id": "m"}  # an existing collection and document
UNDOCUMENTED = [("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/assets/swagger-ui.css")]


def wrong_keys(key: str) -> dict[str, dict[str, str]]:
    """The credentials that must be refused, by name → headers."""
    last = chr(ord(key[-1]) ^ 1)
    basic = base64.b64encode(f"user:{key}".encode()).decode()
    return {
        "none": {},
        "wrong": {"Authorization": "Bearer not-the-key"},
        "last char": {"Authorization": f"Bearer {key[:-1]}{last}"},
        "Basic": {"Authorization": f"Basic {basic}"},
    }


@dataclass
class AuthProbe:
    routes: list[tuple[str, str]] = field(default_factory=list)  # (method, path) called
    refused: collections.Counter = field(default_factory=collections.Counter)  # credential name → 401s + Bearer
    open_statuses: dict[str, int] = field(default_factory=dict)  # "GET /health (none)" → status
    with_key: collections.Counter = field(default_factory=collections.Counter)  # status with the right key
    problems: list[str] = field(default_factory=list)


def auth_probe(url: str, key: str, secrets: list[str]) -> AuthProbe:
    """Call every path+method of the schema (fetched with the key) and :data:`UNDOCUMENTED` with each of
    :func:`wrong_keys` and with the key. Each must be a 401 with `WWW-Authenticate: Bearer` without the key but for
    :data:`OPEN`; with the key none may be a 401; the open `GET /` must be the packaged page, the same with and
    without the key, and hold none of `secrets` (stored texts and ids)."""
    from importlib import resources

    good = {"Authorization": f"Bearer {key}"}
    schema = requests.get(f"{url}/openapi.json", headers=good, timeout=30).json()
    probe = AuthProbe()
    for path, item in schema["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                probe.routes.append((method.upper(), path))
    probe.routes += UNDOCUMENTED
    page = (resources.files("semspace.service") / "page.html").read_text(encoding="utf-8")
    for method, path in probe.routes:
        concrete = re.sub(r"\{(\w+)(:path)?\}", lambda m: PATH_VALUES.get(m[1], m[1]), path)
        for name, headers in [*wrong_keys(key).items(), ("key", good)]:
            response = requests.request(method, url + concrete, headers=headers, timeout=30)
            route = f"{method} {path} ({name})"
            if name == "key":
                probe.with_key[response.status_code] += 1
                if response.status_code == 401:
                    probe.problems.append(f"{route}: 401 with the right key")
            elif (method, path) in OPEN:
                probe.open_statuses[route] = response.status_code
            elif response.status_code == 401 and response.headers.get("www-authenticate") == "Bearer":
                probe.refused[name] += 1
            else:
                probe.problems.append(f"{route}: {response.status_code} {response.text[:120]!r}")
            if (method, path) == ("GET", "/"):
                if response.status_code != 200 or response.text != page:
                    probe.problems.append(f"{route}: {response.status_code}, not the packaged page")
                leaked = [s for s in secrets if s in response.text]
                if leaked:
                    probe.problems.append(f"{route}: the page holds {leaked}")
    return probe
