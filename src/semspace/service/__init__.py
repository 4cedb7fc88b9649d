"""HTTP service (FastAPI): /embed, /similarity, /search, /documents, /health and a search page at /.

`app.py` is the factory (`create_app` + `lifespan`), `deps.py` the overridable dependencies, `routes/` one router per
resource, `schemas.py` the request/response models and the per-request `Limits`.
"""

from semspace.service.app import create_app
from semspace.service.schemas import Limits

__all__ = ["Limits", "create_app"]
