"""GET /health (also GET /ping, as TEI and SageMaker probe it), the search page at GET /, offline API docs at
GET /docs, and Prometheus GET /metrics."""

from __future__ import annotations

import importlib
from importlib import resources
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from semspace.service.deps import EncoderDep, MetricsDep, ServiceState, get_state
from semspace.service.schemas import Health, error_responses, http_error
from semspace.service.security import StrictJSONRoute

router = APIRouter(route_class=StrictJSONRoute)

SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")


def swagger_assets() -> Path | None:
    """Swagger UI's files from the installed `swagger-ui-bundle` package, when there is one (no CDN needed)."""
    try:
        module = importlib.import_module("swagger_ui_bundle")
    except ImportError:
        return None
    folder = Path(str(getattr(module, "swagger_ui_path", "")))
    return folder if all((folder / f).is_file() for f in SWAGGER_FILES) else None


@router.get("/health", response_model=Health, tags=["meta"])
@router.get("/ping", response_model=Health, tags=["meta"], summary="Health (TEI's and SageMaker's GET /ping)")
def health(state: Annotated[ServiceState, Depends(get_state)], encoder: EncoderDep) -> Health:
    """Liveness plus what is loaded; `documents` and `index` are null without a collection."""
    c = state.collection
    return Health(
        status="ok",
        model=encoder.model_id,
        dim=encoder.dim,
        documents=None if c is None else len(c),
        index=None if c is None else c.index.factory,
    )


@router.get("/", response_class=HTMLResponse, tags=["meta"])
def page() -> str:
    """The search page (`service/page.html`)."""
    return (resources.files("semspace.service") / "page.html").read_text(encoding="utf-8")


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
def docs() -> HTMLResponse:
    """API docs that work offline: Swagger UI from the installed `swagger-ui-bundle` package when present, else a
    small built-in page (`service/docs.html`) that renders /openapi.json. Neither loads anything from the web."""
    if swagger_assets() is not None:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="semspace – API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )
    return HTMLResponse((resources.files("semspace.service") / "docs.html").read_text(encoding="utf-8"))


@router.get("/docs/assets/{name}", include_in_schema=False)
def docs_asset(name: str) -> FileResponse:
    """One of Swagger UI's files (only those the page uses); a 404 otherwise or without the package."""
    folder = swagger_assets()
    if folder is None or name not in SWAGGER_FILES:
        raise http_error(404, f"No docs asset {name!r}.")
    return FileResponse(folder / name)


@router.get(
    "/metrics",
    tags=["meta"],
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}} | error_responses(),
)
def metrics_text(metrics: MetricsDep) -> Response:
    """Prometheus metrics of this app: requests by route and status, latency histograms, batch sizes."""
    body, content_type = metrics.exposition()
    return Response(content=body, media_type=content_type)
