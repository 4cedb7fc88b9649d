"""A fast lane for the hot routes (/embed, /v1/embeddings): their common request answered without FastAPI's
per-request dependency solving.

Under many single-text clients the event loop's share of a request is what the engine cannot use: FastAPI's
`solve_dependencies` (cache keys, scope checks, callable classification for every dependency, every request) cost
about a third of the app's CPU per /embed request, the body model's validation about 1 µs
(docs/results/engine_service.md). A :class:`FastJSONRoute` is declared like any route (its body model and response
model document it in the OpenAPI schema) and answers a request in one of two ways:

- the fast lane, when the body is JSON (`Content-Type: application/json`) that orjson reads and the route's own
  body field validates (the same pydantic validation FastAPI runs), and no `dependency_overrides` are set: the
  route's dependencies, async functions of the `Request` and of each other, are called in a precomputed order;
- otherwise the full path (:class:`~semspace.service.security.StrictJSONRoute`: the 415, the strict JSON parser,
  FastAPI's validation), so every malformed request gets exactly the error it got before, and a test's overrides
  are honoured.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import fastapi.routing
import orjson
from fastapi import Request
from fastapi.dependencies.models import Dependant
from starlette.responses import Response

from semspace.service.security import StrictJSONRequest, StrictJSONRoute

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


@dataclass(frozen=True)
class _Step:
    """One dependency: `call(**{param: value of dependency})`, plus the request under `request_param`."""

    call: Callable[..., Awaitable[Any]]
    request_param: str | None
    inputs: tuple[tuple[str, Callable[..., Any]], ...]  # (parameter, the dependency whose value it takes)


def _plain(dep: Dependant) -> bool:
    """No path, query, header or cookie parameters and no special parameter but the request."""
    special = (
        dep.websocket_param_name,
        dep.http_connection_param_name,
        dep.response_param_name,
        dep.background_tasks_param_name,
        dep.security_scopes_param_name,
    )
    params = dep.path_params or dep.query_params or dep.header_params or dep.cookie_params
    return not params and not any(special)


def plan_dependencies(dependant: Dependant) -> list[_Step] | None:
    """The steps that compute `dependant`'s dependencies, each after those it takes (each computed once, as
    FastAPI caches a dependency within a request); None when one is anything but an async function of the request
    and other such dependencies (path, query, header or cookie parameters, security scopes, `yield`, a plain
    `def` that FastAPI would run in its thread pool)."""
    steps: dict[Callable[..., Any], _Step] = {}

    def visit(dep: Dependant) -> bool:
        call = dep.call
        if call is None or call in steps:
            return call is not None
        if not _plain(dep) or dep.body_params or dep.own_oauth_scopes or not dep.use_cache:
            return False
        if not inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call):
            return False
        if not all(visit(sub) for sub in dep.dependencies):
            return False
        inputs = tuple((sub.name, sub.call) for sub in dep.dependencies if sub.name and sub.call)
        steps[call] = _Step(call, dep.request_param_name, inputs)
        return True

    if not all(visit(dep) for dep in dependant.dependencies):
        return None
    return list(steps.values())


async def solve(steps: list[_Step], request: Request) -> dict[Callable[..., Any], Any]:
    """Each step's value, keyed by its function."""
    values: dict[Callable[..., Any], Any] = {}
    for step in steps:
        kwargs = {name: values[call] for name, call in step.inputs}
        if step.request_param:
            kwargs[step.request_param] = request
        values[step.call] = await step.call(**kwargs)
    return values


def _returns_response(endpoint: Callable[..., Any]) -> bool:
    try:
        returned = typing.get_type_hints(endpoint).get("return")
    except (NameError, TypeError):
        return False
    return isinstance(returned, type) and issubclass(returned, Response)


def _is_json(content_type: str | None) -> bool:
    """`application/json`, with or without parameters: the common case the fast lane takes (every other JSON
    content type takes the full path, which accepts it)."""
    return content_type is not None and content_type.partition(";")[0].strip().lower() == "application/json"


class FastJSONRoute(StrictJSONRoute):
    """A :class:`StrictJSONRoute` with the fast lane above, for an async endpoint that returns a `Response` and
    takes one JSON body model plus dependencies :func:`plan_dependencies` can order; any other endpoint gets the
    full path only."""

    def get_route_handler(self) -> Handler:
        full = super().get_route_handler()
        # the route as FastAPI builds its handler: an included router's copy carries the include's dependencies
        route: Any = self
        context_var = getattr(fastapi.routing, "_effective_route_context_var", None)
        context = context_var.get() if context_var is not None else None
        if context is not None and getattr(context, "original_route", None) is self:
            route = context
        dependant, body_field = route.dependant, route.body_field
        try:
            steps = plan_dependencies(dependant)
            fits = (
                steps is not None
                and _plain(dependant)
                and not dependant.request_param_name
                and body_field is not None
                and len(dependant.body_params) == 1
                and not getattr(route, "_embed_body_fields", False)
                and inspect.iscoroutinefunction(dependant.call)
                and _returns_response(dependant.call)
            )
        except AttributeError:  # a FastAPI whose Dependant has other fields than the one this was written for
            return full
        return self._fast_handler(full, dependant, body_field, steps) if fits and steps is not None else full

    @staticmethod
    def _fast_handler(full: Handler, dependant: Dependant, body_field: Any, steps: list[_Step]) -> Handler:
        endpoint = dependant.call
        assert endpoint is not None
        body_name = dependant.body_params[0].name
        params = tuple((dep.name, dep.call) for dep in dependant.dependencies if dep.name)

        async def fast(request: Request) -> Response:
            request = StrictJSONRequest(request.scope, request.receive)  # the full path reads the same body
            if request.app.dependency_overrides or not _is_json(request.headers.get("content-type")):
                return await full(request)
            try:
                value = orjson.loads(await request.body())  # strict: no NaN/Infinity, no lone surrogates
            except orjson.JSONDecodeError:
                return await full(request)
            body, errors = body_field.validate(value, {}, loc=("body",))
            if errors:
                return await full(request)  # FastAPI's own 422, with its messages
            values = await solve(steps, request)
            return await endpoint(**{body_name: body}, **{name: values[call] for name, call in params})

        return fast
