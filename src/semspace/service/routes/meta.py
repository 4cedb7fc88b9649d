"""GET /health (model, dimension, document count, index) and the search page at GET /."""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from semspace.service.deps import EncoderDep, ServiceState, get_state
from semspace.service.schemas import Health

router = APIRouter()


@router.get("/health", response_model=Health, tags=["meta"])
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
