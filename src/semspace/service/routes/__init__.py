"""The service's routers, one per resource; :func:`semspace.service.app.create_app` includes them in this order.

The documents and search routes exist twice: on the server's single collection (/documents, /search) and on each
named collection (/collections/{collection}/documents, /collections/{collection}/search).
"""

from semspace.service.routes import collections, documents, embed, meta, openai, search, tei

NAMED_PREFIX = "/collections/{collection}"

ROUTERS = (
    (meta.router, ""),
    (embed.router, ""),
    (openai.router, ""),
    (openai.root_router, ""),  # TEI's POST /embeddings
    (tei.router, ""),
    (search.router, ""),
    (documents.router, ""),
    (collections.router, ""),
    (search.named_router, NAMED_PREFIX),
    (documents.named_router, NAMED_PREFIX),
)

__all__ = ["NAMED_PREFIX", "ROUTERS"]
