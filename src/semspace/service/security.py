"""What makes the service safe to expose: a Bearer API key, allowed Host names, a body limit on the bytes actually
received, and a strict JSON parser (no NaN/Infinity literals, no lone surrogates).

All four answer with the same JSON error bodies as the routes (:mod:`semspace.service.errors`).
"""

from __future__ import annotations

import email.message
import hmac
import json
import re
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from semspace.service.errors import error_response

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
# reachable without the API key: the liveness probe, and the search page, which holds no data and asks for the key —
# by method too: `POST /` is TEI's /embed, which needs the key
OPEN_ROUTES = frozenset({("GET", "/health"), ("HEAD", "/health"), ("GET", "/"), ("HEAD", "/")})
ANY_INTERFACE = {"0.0.0.0", "::", ""}


def default_allowed_hosts(host: str | None) -> list[str]:
    """localhost, 127.0.0.1, ::1 and the host the server is bound to (unless it is every interface)."""
    hosts = list(LOCAL_HOSTS)
    if host and host not in ANY_INTERFACE and host not in hosts:
        hosts.append(f"[{host}]" if ":" in host and not host.startswith("[") else host)
    return hosts


# -- body limit ------------------------------------------------------------------------------------------------
class BodyTooLarge(HTTPException):
    """Raised from the receive stream; FastAPI re-raises HTTPExceptions met while reading a body."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(status_code=413, detail=f"Request body over {max_bytes} bytes.")


class BodySizeLimit:
    """ASGI middleware: a 413 JSON error once more than `max_bytes` of body have arrived — counted on the receive
    stream, so a chunked body (no Content-Length) or a lying Content-Length is stopped too; a Content-Length over
    the limit is refused before anything is read."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await error_response(scope["path"], 413, BodyTooLarge(self.max_bytes).detail)(scope, receive, send)
            return
        received, started = 0, False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as exc:  # read outside a route (a route's own handler answers it otherwise)
            if started:
                raise
            await error_response(scope["path"], 413, exc.detail)(scope, receive, send)


# -- API key ---------------------------------------------------------------------------------------------------
class APIKeyAuth:
    """ASGI middleware: every route but :data:`OPEN_ROUTES` needs `Authorization: Bearer <api_key>` (compared in
    constant time); a 401 JSON error otherwise."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app, self.api_key = app, api_key.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) in OPEN_ROUTES:
            await self.app(scope, receive, send)
            return
        header = Headers(scope=scope).get("authorization", "")
        scheme, _, token = header.partition(" ")
        given = token.strip().encode("utf-8", "surrogateescape")
        if scheme.lower() == "bearer" and hmac.compare_digest(given, self.api_key):
            await self.app(scope, receive, send)
            return
        detail = "Missing or wrong API key: send the header 'Authorization: Bearer <key>'."
        response = error_response(scope["path"], 401, detail, {"WWW-Authenticate": "Bearer"}, "invalid_api_key")
        await response(scope, receive, send)


# -- Host header -----------------------------------------------------------------------------------------------
HOST_OK = "semspace.host_ok"


class TrustedHosts(TrustedHostMiddleware):
    """Starlette's TrustedHostMiddleware (no www-redirect) answering a bad Host with our 400 JSON error instead of
    plain text — the defence against DNS rebinding of a server on localhost."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]) -> None:
        async def passed(scope: Scope, receive: Receive, send: Send) -> None:
            scope[HOST_OK] = True
            await app(scope, receive, send)

        super().__init__(passed, allowed_hosts=list(allowed_hosts), www_redirect=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        replaced = False

        async def json_errors(message: Message) -> None:
            nonlocal replaced
            if scope.get(HOST_OK):
                await send(message)
            elif not replaced:  # the middleware's own plain-text refusal: send ours instead, drop its messages
                replaced = True
                detail = "Host header not allowed (start the service with --allowed-host NAME to accept it)."
                await error_response(scope["path"], 400, detail)(scope, receive, send)

        await super().__call__(scope, receive, json_errors)


# -- strict JSON -----------------------------------------------------------------------------------------------
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]", re.ASCII)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def strict_json(body: bytes) -> Any:
    """`json.loads` that refuses what JSON does not allow but Python accepts: NaN/Infinity literals and strings
    with lone surrogates (`"\\ud800"`, which cannot be encoded, stored or tokenized); too deep nesting too. Every
    refusal is a `json.JSONDecodeError`, which FastAPI turns into a 422."""
    raw = bytes(body) if isinstance(body, bytes | bytearray) else str(body).encode("utf-8", "surrogatepass")
    text = ""
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise json.JSONDecodeError(reason, text, 0) from None
    if _SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(value):
        raise json.JSONDecodeError("a string holds a lone UTF-16 surrogate (\\ud800-\\udfff)", text, 0)
    return value


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_json(await self.body())
        return self._json


NOT_JSON = "The request body must be JSON, sent with the header 'Content-Type: application/json' (got {})."


def is_json(content_type: str | None) -> bool:
    """`application/json` or `application/*+json`, with any parameters — the content types FastAPI parses."""
    message = email.message.Message()
    message["content-type"] = content_type or ""
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


class StrictJSONRoute(APIRoute):
    """An APIRoute whose request bodies are parsed by :func:`strict_json` (FastAPI's custom-route pattern), and
    whose JSON bodies sent without a JSON content type are a 415 saying so, as TEI answers (FastAPI would pass the
    bytes on to validation and answer a 422 that does not say what is wrong)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_body = self.body_field is not None

        async def strict(request: Request) -> Response:
            if not isinstance(request, StrictJSONRequest):  # a FastJSONRoute passes its own, body read
                request = StrictJSONRequest(request.scope, request.receive)
            content_type = request.headers.get("content-type")
            if takes_body and not is_json(content_type) and await request.body():
                given = repr(content_type) if content_type else "no Content-Type"
                return error_response(request.url.path, 415, NOT_JSON.format(given))
            return await handler(request)

        return strict
