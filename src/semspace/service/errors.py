"""Error bodies: `{"detail": ...}`, or OpenAI's `{"error": {...}}` on /v1 — always JSON, never a 500 for bad input.

The handlers never echo raw input: a validation error keeps pydantic's `loc`/`msg`/`type` but not `input`/`ctx`
(which may hold NaN, lone surrogates or megabytes of text), and every string is made encodable first.
"""

from __future__ import annotations

import errno
import logging
import math
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from semspace.errors import (
    CollectionBusyError,
    CollectionError,
    CollectionExistsError,
    CollectionNotFoundError,
    DocumentNotFoundError,
    DuplicateIdError,
    EncoderBusyError,
    EncoderTimeoutError,
    NoBiEncoderError,
    SemspaceError,
    StorageError,
)
from semspace.service.schemas import BODY_TAGS

logger = logging.getLogger(__name__)

# library errors → HTTP status, first match wins (DuplicateIdError is an InvalidInputError, so it comes first)
ERROR_STATUS: tuple[tuple[type[SemspaceError], int], ...] = (
    (DocumentNotFoundError, 404),
    (CollectionNotFoundError, 404),
    (DuplicateIdError, 409),
    (CollectionExistsError, 409),
    (NoBiEncoderError, 422),  # rerank="rnr" on a CUR index without a bi-encoder side: valid JSON, not servable
    (CollectionBusyError, 503),
    (StorageError, 503),  # 507 when the disk is full (see storage_status)
    (EncoderBusyError, 429),
    (EncoderTimeoutError, 503),
    (CollectionError, 500),
    (SemspaceError, 400),
)

OPENAI_PREFIX = "/v1/"
# a disk that refuses a write: 507 Insufficient Storage when it is full, 503 when it is read-only or failing
_FULL = (errno.ENOSPC, errno.EDQUOT)
_UNAVAILABLE = (errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO)


def storage_status(exc: BaseException) -> int | None:
    """507 or 503 for an OSError whose errno says the disk refused (see above); None for any other error."""
    number = getattr(exc, "errno", None) if isinstance(exc, OSError) else None
    return 507 if number in _FULL else 503 if number in _UNAVAILABLE else None


OPENAI_PATHS = frozenset({"/embeddings"})  # TEI's copy of /v1/embeddings at the root


def safe(value: Any) -> Any:
    """A JSON-encodable copy: lone surrogates backslash-escaped, NaN/Infinity as strings, unknown objects as str."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(safe(k)): safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [safe(v) for v in value]
    return safe(str(value))


def is_openai(request_or_path: Request | str) -> bool:
    path = request_or_path if isinstance(request_or_path, str) else request_or_path.url.path
    return path.startswith(OPENAI_PREFIX) or path in OPENAI_PATHS


def error_response(
    path: str,
    status: int,
    detail: Any,
    headers: dict[str, str] | None = None,
    code: str | None = None,
    error_type: str | None = None,
) -> JSONResponse:
    """The JSON error for `path`: OpenAI's shape on /v1, `{"detail": ...}` elsewhere (with `"type"`, the library's
    exception class, when one caused it: the Python client raises the same class)."""
    detail = safe(detail)
    if is_openai(path):
        message = detail if isinstance(detail, str) else "; ".join(_describe(e) for e in detail)
        kind = "server_error" if status >= 500 else "invalid_request_error"  # OpenAI's type for client errors
        param = _param(detail)
        body: dict[str, Any] = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    else:
        body = {"detail": detail} if error_type is None else {"detail": detail, "type": error_type}
    return JSONResponse(status_code=status, content=body, headers=headers)


def _describe(error: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
    return f"{loc}: {error.get('msg', 'invalid')}" if loc else str(error.get("msg", "invalid"))


def _param(detail: Any) -> str | None:
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        loc = [str(p) for p in detail[0].get("loc", ()) if p != "body"]
        return loc[0] if loc else None
    return None


async def http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = "model_not_found" if exc.status_code == 404 and is_openai(request) and "model" in str(exc.detail) else None
    return error_response(request.url.path, exc.status_code, exc.detail, getattr(exc, "headers", None), code)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for e in exc.errors():
        msg = e.get("msg", "")
        if e.get("type") == "json_invalid" and isinstance(e.get("ctx"), dict) and "error" in e["ctx"]:
            msg = f"{msg}: {e['ctx']['error']}"
        errors.append({"loc": _location(e.get("loc", ())), "msg": msg, "type": e.get("type", "")})
    return error_response(request.url.path, 422, errors)


def _location(loc: Sequence[Any]) -> list[Any]:
    """pydantic's `loc` without the tag a discriminated body adds (["body", "TEIEmbedRequest", "inputs"] →
    ["body", "inputs"]): the client sent a body, not a member of our union."""
    loc = list(loc)
    return [loc[0], *loc[2:]] if len(loc) > 1 and loc[0] == "body" and loc[1] in BODY_TAGS else loc


async def semspace_error(request: Request, exc: Exception) -> JSONResponse:
    """A library error with the status from :data:`ERROR_STATUS`."""
    status = storage_status(exc) or next(code for kind, code in ERROR_STATUS if isinstance(exc, kind))
    return error_response(request.url.path, status, str(exc), error_type=type(exc).__name__)


async def os_error(request: Request, exc: Exception) -> JSONResponse:
    """An OSError the library did not wrap: 507/503 with its reason when the disk refused, else the last resort."""
    status = storage_status(exc)
    if status is None:
        return await unexpected_error(request, exc)
    assert isinstance(exc, OSError)
    logger.warning("%s %s: the disk refused (%s)", request.method, request.url.path, exc)
    return error_response(request.url.path, status, f"The server's disk refused: {exc.strerror or exc}.")


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """The last resort: a JSON 500 (logged with its traceback); no bad input should ever get here."""
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request.url.path, 500, "Internal server error.")


HANDLERS = (
    (StarletteHTTPException, http_exception),
    (RequestValidationError, validation_error),
    (SemspaceError, semspace_error),
    (OSError, os_error),
    (Exception, unexpected_error),
)
