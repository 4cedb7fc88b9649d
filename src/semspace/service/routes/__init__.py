"""The service's routers, one per resource; :func:`semspace.service.app.create_app` includes them in this order."""

from semspace.service.routes import documents, embed, meta, openai, search, tei

ROUTERS = (
    meta.router,
    embed.router,
    openai.router,
    openai.root_router,
    tei.router,
    search.router,
    documents.router,
)

__all__ = ["ROUTERS"]
