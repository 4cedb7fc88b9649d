"""HTTP service (FastAPI): /embed, /similarity, /search, /documents, /health, a search page at /; OpenAI-compatible
/v1/embeddings and /v1/models; TEI-compatible /embed (`inputs`), /rerank and /info; Prometheus /metrics; offline /docs.

`app.py` is the factory (`create_app` + `lifespan`), `deps.py` the overridable dependencies, `routes/` one router per
resource, `schemas.py` the request/response models and the per-request `Limits`, `security.py` the API key, Host
check, body limit and strict JSON, `errors.py` the JSON error bodies, `metrics.py` the per-app Prometheus registry,
`encoding.py` token counts and the `dimensions` projection, `batcher.py` the dynamic batching, `workers.py` the
processes of `semspace serve --workers N`.
"""

from semspace.service.app import create_app
from semspace.service.schemas import Limits

__all__ = ["Limits", "create_app"]
