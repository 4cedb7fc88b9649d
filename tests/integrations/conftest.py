"""The collections the vector-store adapters are tested over, made by one parametrised factory.

`make_collection(name)` returns a new, empty collection that embeds with the bundled MiniLM, of the kind the test
is running with:

- "local": a `Collection` in tmp_path;
- "public-methods": the same collection seen only through the methods (and signatures) that a remote collection of
  `semspace.client` has too — what the adapters may use: nothing else (the index, the encoder, `add(vectors=)`,
  `search_vectors`) is touched;
- "remote": a collection of a live server (`create_app` on a folder of collections, uvicorn on 127.0.0.1) through
  `semspace.client.Client(url).create_collection(name)`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

COLLECTION_KINDS = ["local", "public-methods", "remote"]


class PublicMethodsOnly:
    """A collection's shared public API and nothing else: the methods, parameters and return types that
    `semspace.client`'s remote collection has as well (no `vectors=`, no `search_vectors`, no attributes)."""

    def __init__(self, collection) -> None:
        self.__collection = collection

    def add(self, texts, ids=None, metadata=None):
        return self.__collection.add(texts, ids=ids, metadata=metadata)

    def upsert(self, texts, ids, metadata=None):
        return self.__collection.upsert(texts, ids, metadata=metadata)

    def get(self, ids):
        return self.__collection.get(ids)

    def get_existing(self, ids):
        return self.__collection.get_existing(ids)

    def delete(self, ids):
        return self.__collection.delete(ids)

    def search(self, query_or_queries, k=10, where=None, mode="dense"):
        return self.__collection.search(query_or_queries, k=k, where=where, mode=mode)

    def count(self, where=None):
        return self.__collection.count(where)

    def __len__(self) -> int:
        return len(self.__collection)

    def list_documents(self, limit=100, offset=0, where=None, cursor=None):
        return self.__collection.list_documents(limit=limit, offset=offset, where=where, cursor=cursor)

    def info(self):
        return self.__collection.info()

    def close(self) -> None:
        self.__collection.close()


@pytest.fixture(scope="session")
def bundled_encoder():
    """The bundled all-MiniLM-L6-v2 (offline), loaded once for every collection of the session."""
    from semspace import Encoder

    return Encoder()


@pytest.fixture(params=COLLECTION_KINDS)
def make_collection(request, tmp_path, bundled_encoder, live_server) -> Iterator[Callable[[str], object]]:
    """A factory of new, empty collections of the kind under test (the test's parameter): a local Collection, its
    public methods alone, or a collection of a live `semspace serve` (on 127.0.0.1) through `semspace.client`."""
    from semspace import Collection

    made = []
    with contextlib.ExitStack() as stack:
        client = None
        if request.param == "remote":
            from semspace.client import Client
            from semspace.service import create_app

            server = stack.enter_context(live_server(create_app(tmp_path / "served", encoder=bundled_encoder)))
            client = stack.enter_context(Client(server.url))

        def make(name: str = "docs"):
            if client is not None:
                collection = client.create_collection(name)
            else:
                collection = Collection.create(tmp_path / name, encoder=bundled_encoder)
                if request.param == "public-methods":
                    collection = PublicMethodsOnly(collection)
            made.append(collection)
            return collection

        yield make
        for collection in made:
            close = getattr(collection, "close", None)
            if close is not None:
                close()
