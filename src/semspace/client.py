"""`Client(url)`: a semspace server's collections with the methods and return types of the local ones.

``Catalog(path)`` (:mod:`semspace.search.catalog`) ≡ ``Client(url)``, and a :class:`RemoteCollection` answers like a
:class:`~semspace.search.Collection` — ``add``, ``upsert``, ``get``, ``get_existing``, ``delete``, ``search`` (with
``where``, ``mode``), ``count``, ``len()``, ``list_documents``, ``info`` — returning the same
:class:`~semspace.search.SearchResult` and :class:`~semspace.search.DocumentPage`, and raising the same exception
classes (the server names the library's exception in each error body). So a script changes one line to move from a
folder to a server::

    client = Catalog("./collections")                 # local
    client = Client("http://127.0.0.1:8000")          # the same collections, served by `semspace serve ./collections`
    docs = client.get_or_create_collection("faq")
    docs.add(["How do I reset my password?"], ids=["q1"], metadata=[{"topic": "account"}])
    docs.search("forgot password", k=3, where={"topic": "account"})

Built on httpx: one connection pool per client, a timeout on every call, and retries with backoff when the server
says it is busy (429, 503: nothing was written) or could not be reached (nothing was sent). Documents are encoded by
the server; an `add` larger than the server's batch limit is sent in several requests (each one a transaction).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

from semspace import errors
from semspace._deps import require
from semspace.errors import InvalidParameterError, SemspaceError, ServiceError
from semspace.search.names import check_name
from semspace.search.results import DocumentPage, SearchResult

logger = logging.getLogger(__name__)

RETRY_STATUS = (429, 503)
# a 4xx without a library exception behind it (a limit, a shape error) is bad input, as in the library
_STATUS_ERROR: dict[int, type[SemspaceError]] = {
    404: errors.DocumentNotFoundError,
    409: errors.DuplicateIdError,
    413: errors.InvalidInputError,
    422: errors.InvalidInputError,
    429: errors.EncoderBusyError,
    503: errors.CollectionBusyError,
}


class Client:
    """The collections of the semspace server at `url` (``semspace serve DIR``).

    api_key: sent as ``Authorization: Bearer <api_key>`` (a server started with ``--api-key``).
    timeout: seconds for each HTTP call (connect, read, write). retries: extra tries when the server is busy or
    unreachable, with exponential backoff from `backoff` seconds (a ``Retry-After`` header is honoured).
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        httpx = require("httpx", "client", "semspace.client.Client")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidParameterError(f"url must start with http:// or https://; got {url!r}")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        self.retries, self.backoff = retries, backoff
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self._batch: int | None = None

    # -- the catalog API -------------------------------------------------------------------------------------
    def list_collections(self) -> list[str]:
        """Names of the server's collections, sorted."""
        return sorted(c["name"] for c in self.request("GET", "/collections")["collections"])

    def create_collection(
        self,
        name: str,
        model: str | None = None,
        *,
        index: str = "Flat",
        pooling: str = "default",
        max_length: int | None = None,
        precision: str = "float32",
        get_or_create: bool = False,
    ) -> RemoteCollection:
        """A new empty collection on the server (CollectionExistsError when the name is taken, unless
        `get_or_create`); `model` must be one the server has (default: its own); `index` and `precision` as for
        :meth:`semspace.search.Collection.create`."""
        body = {
            "name": check_name(name),
            "model": model,
            "index": index,
            "pooling": pooling,
            "max_length": max_length,
            "precision": precision,
            "get_or_create": get_or_create,
        }
        self.request("POST", "/collections", json=body)
        return RemoteCollection(self, name)

    def get_or_create_collection(self, name: str, model: str | None = None, **kwargs: Any) -> RemoteCollection:
        return self.create_collection(name, model, get_or_create=True, **kwargs)

    def get_collection(self, name: str) -> RemoteCollection:
        """The server's collection `name` (CollectionNotFoundError when there is none)."""
        self.request("GET", f"/collections/{check_name(name)}")
        return RemoteCollection(self, name)

    def delete_collection(self, name: str) -> None:
        """Drop the collection `name` and its files on the server."""
        self.request("DELETE", f"/collections/{check_name(name)}")

    def health(self) -> dict[str, Any]:
        return self.request("GET", "/health")

    @property
    def max_batch(self) -> int:
        """Texts (or ids) per request the server accepts (its /info), read once."""
        if self._batch is None:
            self._batch = int(self.request("GET", "/info")["max_client_batch_size"])
        return self._batch

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------------------------------
    def request(self, method: str, path: str, json: Any = None, params: dict | None = None) -> Any:
        """One call, retried while the server is busy or unreachable; an error answer raises the library's
        exception class it names (else one chosen by status, else :class:`ServiceError`)."""
        httpx = require("httpx", "client", "semspace.client.Client")
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._http.request(method, path, json=json, params=params)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nothing reached the server: safe to retry
                if last:
                    raise ServiceError(f"Cannot reach the semspace server at {self.url}: {exc}", status=None) from None
                self._sleep(attempt, None)
                continue
            except httpx.TimeoutException as exc:
                raise ServiceError(f"{method} {path}: no answer within the timeout ({exc})", status=None) from None
            if response.status_code in RETRY_STATUS and not last:
                self._sleep(attempt, response.headers.get("retry-after"))
                continue
            if response.is_success:
                return response.json()
            raise error_from(response.status_code, _body(response), f"{method} {path}")
        raise AssertionError("unreachable")

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * 2**attempt
        if retry_after is not None and retry_after.isdigit():
            delay = max(delay, float(retry_after))
        logger.info("semspace server busy or unreachable; retrying in %.1f s", delay)
        time.sleep(delay)


def _body(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"detail": response.text[:500]}
    return body if isinstance(body, dict) else {"detail": body}


def error_from(status: int, body: dict[str, Any], what: str) -> SemspaceError:
    """The exception an error answer stands for: the library class the server named, else one by status."""
    detail = body.get("detail")
    if isinstance(detail, list):  # pydantic's field errors
        detail = "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in detail)
    message = str(detail) if detail is not None else f"{what}: HTTP {status}"
    named = getattr(errors, str(body.get("type")), None)
    if isinstance(named, type) and issubclass(named, SemspaceError) and named is not ServiceError:
        return named(message)
    kind = _STATUS_ERROR.get(status)
    if kind is not None:
        return kind(message)
    return ServiceError(message, status=status)


class RemoteCollection:
    """A collection on a semspace server, with :class:`~semspace.search.Collection`'s methods (see the module)."""

    def __init__(self, client: Client, name: str) -> None:
        self.client, self.name = client, name
        self._path = f"/collections/{name}"

    def __repr__(self) -> str:
        return f"RemoteCollection({self.client.url!r}, {self.name!r})"

    # -- documents -------------------------------------------------------------------------------------------
    def add(
        self,
        texts: Sequence[str],
        ids: Sequence[str] | None = None,
        metadata: Sequence[dict] | None = None,
        vectors: Any = None,
        show_progress_bar: bool | None = None,
    ) -> list[str]:
        """Add documents (encoded by the server); returns their ids. Ids are made here when not given, so a retried
        request cannot add a document twice. DuplicateIdError when an id is already there."""
        texts, ids, metadata = self._documents(texts, ids, metadata, vectors)
        return self._write("POST", texts, ids, metadata, show_progress_bar)

    def upsert(
        self,
        texts: Sequence[str],
        ids: Sequence[str],
        metadata: Sequence[dict] | None = None,
        vectors: Any = None,
        show_progress_bar: bool | None = None,
    ) -> list[str]:
        """Add or replace documents by id."""
        if ids is None:
            raise errors.InvalidInputError("upsert needs ids (the documents to add or replace).")
        texts, ids, metadata = self._documents(texts, ids, metadata, vectors)
        return self._write("PUT", texts, ids, metadata, show_progress_bar)

    def get(self, ids: Sequence[str]) -> list[dict]:
        """Documents by id (id, text, metadata), in order; DocumentNotFoundError for an unknown id."""
        return self._get(ids, "error")

    def get_existing(self, ids: Sequence[str]) -> list[dict]:
        """Like `get`, leaving out ids that are not in the collection."""
        return self._get(ids, "skip")

    def delete(self, ids: Sequence[str]) -> int:
        """Remove documents by id; DocumentNotFoundError (and nothing removed) when an id is unknown."""
        ids = list(ids)
        if len(ids) > self.client.max_batch:  # one request keeps the delete atomic; more would not be
            raise errors.InvalidInputError(f"{len(ids)} ids in one delete; the server takes {self.client.max_batch}.")
        if not ids:
            return 0
        return int(self.client.request("DELETE", f"{self._path}/documents", json={"ids": ids})["deleted"])

    def count(self, where: dict | None = None) -> int:
        """Number of documents, or of those matching a metadata filter."""
        if where is None:
            return int(self.info()["count"])
        body = {"filter": where, "limit": 1}
        return int(self.client.request("POST", f"{self._path}/documents/list", json=body)["count"])

    def __len__(self) -> int:
        return self.count()

    def list_documents(
        self, limit: int = 100, offset: int = 0, where: dict | None = None, cursor: str | None = None
    ) -> DocumentPage:
        """One page of documents in insertion order (optionally filtered); page on with `next_cursor` (the server
        may cut a page at its response limit: always continue from `next_cursor`)."""
        body = {"filter": where, "limit": limit, "offset": offset, "cursor": cursor}
        page = self.client.request("POST", f"{self._path}/documents/list", json=body)
        return DocumentPage(documents=page["documents"], next_cursor=page["next_cursor"])

    def info(self) -> dict[str, Any]:
        """Counts, settings and the state of the index, as the server's `Collection.info()` (without its path)."""
        return self.client.request("GET", self._path)

    # -- search ----------------------------------------------------------------------------------------------
    def search(
        self,
        query_or_queries: str | Sequence[str],
        k: int = 10,
        where: dict | None = None,
        mode: str = "dense",
        fusion: str = "rrf",
        alpha: float = 0.5,
    ) -> SearchResult | list[SearchResult]:
        """Top-k for one query (→ SearchResult) or a list (→ list of SearchResult), as `Collection.search`."""
        single = isinstance(query_or_queries, str)
        queries = [query_or_queries] if single else list(query_or_queries)
        if not queries:
            return []
        body = {"queries": queries, "k": k, "filter": where, "mode": mode, "fusion": fusion, "alpha": float(alpha)}
        found = self.client.request("POST", f"{self._path}/search", json=body)["results"]
        results = [
            SearchResult(
                ids=[h["id"] for h in q["hits"]],
                scores=[float(h["score"]) for h in q["hits"]],
                texts=[h["text"] for h in q["hits"]],
                metadata=[h["metadata"] for h in q["hits"]],
            )
            for q in found
        ]
        return results[0] if single else results

    # -- helpers ---------------------------------------------------------------------------------------------
    def _documents(
        self, texts: Sequence[str], ids: Sequence[str] | None, metadata: Sequence[dict] | None, vectors: Any
    ) -> tuple[list[str], list[str], list[dict]]:
        if vectors is not None:
            raise InvalidParameterError(
                "vectors: a remote collection's documents are encoded by the server (send texts only)."
            )
        if isinstance(texts, str):
            raise errors.InputTypeError("texts must be a list of strings, not one string.")
        texts = list(texts)
        ids = [uuid.uuid4().hex for _ in texts] if ids is None else list(ids)
        metadata = [{} for _ in texts] if metadata is None else list(metadata)
        if not len(texts) == len(ids) == len(metadata):
            raise errors.InvalidInputError(f"{len(texts)} texts, {len(ids)} ids and {len(metadata)} metadata entries.")
        return texts, ids, metadata

    def _write(
        self, method: str, texts: list[str], ids: list[str], metadata: list[dict], progress: bool | None
    ) -> list[str]:
        from tqdm.auto import tqdm

        step = self.client.max_batch
        chunks = range(0, len(texts), step)
        for lo in tqdm(chunks, desc="Sending", unit="batch", disable=None if progress else True):
            documents = [
                {"id": i, "text": t, "metadata": m}
                for i, t, m in zip(ids[lo : lo + step], texts[lo : lo + step], metadata[lo : lo + step], strict=True)
            ]
            self.client.request(method, f"{self._path}/documents", json={"documents": documents})
        return ids

    def _get(self, ids: Sequence[str], missing: str) -> list[dict]:
        ids = list(ids)
        found: list[dict] = []
        step = self.client.max_batch
        for lo in range(0, len(ids), step):
            body = {"ids": ids[lo : lo + step], "missing": missing}
            found += self.client.request("POST", f"{self._path}/documents/get", json=body)["documents"]
        return found
