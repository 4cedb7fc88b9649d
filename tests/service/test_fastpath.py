"""The hot routes' fast lane (semspace.service.fastpath): the same answers as FastAPI's full path, which still
takes every request the lane does not (malformed bodies, other content types, dependency overrides)."""

from __future__ import annotations

from typing import Annotated

import fastapi.routing
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from semspace import Encoder
from semspace.service import create_app
from semspace.service.deps import get_limits
from semspace.service.fastpath import FastJSONRoute, plan_dependencies

LOCAL = "http://localhost"  # TestClient's default host "testserver" is not an allowed Host

# (route, body) pairs the fast lane answers
REQUESTS = [
    ("/embed", {"texts": ["a dog", "a man is playing a guitar"]}),
    ("/embed", {"texts": ["a dog"], "normalize": True}),
    ("/embed", {"inputs": "a dog", "truncate": True}),
    ("/", {"inputs": ["a dog", "a cat"], "normalize": False, "truncate": True}),
    ("/v1/embeddings", {"input": "a dog", "model": "text-embedding-3-small"}),
    ("/v1/embeddings", {"input": ["a dog", "a cat"], "encoding_format": "base64"}),
    ("/embeddings", {"input": ["a dog"]}),
]


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir):
    return Encoder(str(tiny_bert_dir))


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts FastAPI's dependency solving (the full path) per request."""
    calls: list[int] = []
    original = fastapi.routing.solve_dependencies

    async def counted(*args, **kwargs):
        calls.append(1)
        return await original(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    return calls


def test_fast_lane_answers_as_the_full_path(encoder, solved):
    app = create_app(None, encoder=encoder)
    with TestClient(app, base_url=LOCAL) as client:
        fast = [client.post(route, json=body) for route, body in REQUESTS]
        assert [r.status_code for r in fast] == [200] * len(REQUESTS)
        assert solved == []  # none of them went through FastAPI's dependency solving
        limits = app.state.semspace.limits
        app.dependency_overrides[get_limits] = lambda: limits  # any override sends every request the full way
        full = [client.post(route, json=body) for route, body in REQUESTS]
        assert len(solved) == len(REQUESTS)
    for a, b in zip(fast, full, strict=True):
        assert a.json() == b.json() and a.headers["content-type"] == b.headers["content-type"]


@pytest.mark.parametrize(
    ("route", "content", "headers", "status"),
    [
        ("/embed", b'{"texts": ["a", NaN]}', {}, 422),  # orjson refuses it: the full path says why
        ("/embed", b'{"texts": ["\\ud800"]}', {}, 422),
        ("/embed", b'{"texts": []}', {}, 422),
        ("/embed", b'{"texts": ["a"], "nomalize": true}', {}, 422),
        ("/embed", b'{"texts": ["a"]}', {"content-type": "text/plain"}, 415),
        ("/embed", b'{"texts": ["a"]}', {"content-type": "application/vnd.api+json"}, 200),
        ("/v1/embeddings", b'{"input": [[1, 2]]}', {}, 400),
        ("/v1/embeddings", b'{"input": "a", "dimensions": 0}', {}, 422),
    ],
)
def test_other_requests_get_the_full_paths_answer(encoder, route, content, headers, status):
    app = create_app(None, encoder=encoder)
    headers = {"content-type": "application/json", **headers}
    with TestClient(app, base_url=LOCAL) as client:
        first = client.post(route, content=content, headers=headers)
        limits = app.state.semspace.limits
        app.dependency_overrides[get_limits] = lambda: limits  # the full path for every request
        full = client.post(route, content=content, headers=headers)
    assert first.status_code == full.status_code == status, first.text
    assert first.json() == full.json()


class Body(BaseModel):
    text: str


async def get_request_path(request: Request) -> str:
    return request.url.path


async def get_greeting(path: Annotated[str, Depends(get_request_path)]) -> str:
    return f"hello from {path}"


async def deny() -> None:
    raise HTTPException(403, "denied")


async def greet(body: Body, greeting: Annotated[str, Depends(get_greeting)]) -> Response:
    return JSONResponse({"greeting": greeting, "text": body.text})


def test_dependencies_of_the_route_and_of_its_include_run_on_the_fast_lane(solved):
    router = APIRouter(route_class=FastJSONRoute)
    router.add_api_route("/greet", greet, methods=["POST"])
    app = FastAPI()
    app.include_router(router, prefix="/open")
    app.include_router(router, prefix="/closed", dependencies=[Depends(deny)])
    with TestClient(app) as client:
        opened = client.post("/open/greet", json={"text": "hi"}).json()
        closed = client.post("/closed/greet", json={"text": "hi"})
    assert opened == {"greeting": "hello from /open/greet", "text": "hi"}
    assert closed.status_code == 403 and closed.json() == {"detail": "denied"}
    assert solved == []


def sync_dependency() -> int:  # FastAPI runs a plain def in its thread pool: the lane leaves it to FastAPI
    return 1


async def with_query(q: int) -> int:
    return q


async def takes_sync(a: Annotated[int, Depends(sync_dependency)]) -> None: ...


async def takes_query(a: Annotated[int, Depends(with_query)]) -> None: ...


async def takes_greeting(g: Annotated[str, Depends(get_greeting)]) -> None: ...


def test_only_async_dependencies_of_the_request_are_planned():
    assert plan_dependencies(fastapi.routing.APIRoute("/a", takes_sync).dependant) is None
    assert plan_dependencies(fastapi.routing.APIRoute("/b", takes_query).dependant) is None
    steps = plan_dependencies(fastapi.routing.APIRoute("/c", takes_greeting).dependant)
    assert steps is not None and [s.call for s in steps] == [get_request_path, get_greeting]
