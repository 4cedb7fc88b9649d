"""HTTP service (FastAPI): /embed, /similarity, /search, /documents, /health and a search page at /."""

from semspace.service.app import Limits, create_app

__all__ = ["Limits", "create_app"]
