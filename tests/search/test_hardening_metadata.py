"""Metadata validated at the door (issue 29): objects and arrays nested at most MAX_METADATA_DEPTH deep (the
metadata object itself included) are stored and read back exactly; one level deeper is an InvalidInputError with
nothing written, whatever the nesting (dicts, lists, a value that contains itself, 100,000 levels)."""

import numpy as np
import pytest

from semspace.errors import InvalidInputError
from semspace.search import Collection
from semspace.search.documents import MAX_METADATA_DEPTH, check_metadata, json_depth


def nested(depth: int, kind: str = "dict", leaf=1):
    """Metadata (a dict) whose objects/arrays nest `depth` deep, alternating dicts and lists with `kind="mixed"`."""
    value = leaf
    for level in range(depth - 1, 0, -1):
        value = {"k": value} if kind == "dict" or level % 2 else [value, "x"]
    return {"top": value}


@pytest.mark.parametrize(
    ("value", "depth"),
    [(1, 0), ("s", 0), ({}, 1), ([], 1), ({"a": [1, {"b": None}]}, 3), ([[[]]], 3), (nested(5), 5)],
)
def test_json_depth(value, depth):
    assert json_depth(value) == depth


def test_json_depth_gives_up_past_the_limit_without_recursion():
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert json_depth(deep, limit=32) == 33
    loop: dict = {}
    loop["self"] = loop
    assert json_depth(loop, limit=32) == 33


@pytest.mark.parametrize("kind", ["dict", "mixed"])
def test_check_metadata_allows_the_limit_and_refuses_one_more(kind):
    check_metadata(nested(MAX_METADATA_DEPTH, kind), 0)
    with pytest.raises(InvalidInputError, match=f"more than {MAX_METADATA_DEPTH} deep"):
        check_metadata(nested(MAX_METADATA_DEPTH + 1, kind), 3)


@pytest.mark.parametrize("value", [nested(900), nested(400, "mixed"), nested(50_000)])
def test_the_issues_deep_values_are_refused(value):
    with pytest.raises(InvalidInputError, match="deep"):
        check_metadata(value, 0)


def test_a_self_containing_value_is_refused():
    loop: dict = {}
    loop["self"] = loop
    with pytest.raises(InvalidInputError):
        check_metadata(loop, 0)


def test_collection_stores_and_reads_back_the_deepest_allowed(tmp_path, tiny_bert_dir):
    from semspace import Encoder

    deepest = nested(MAX_METADATA_DEPTH, "mixed", leaf="bottom")
    x = np.random.default_rng(0).normal(size=(3, 32)).astype(np.float32)
    with Collection.create(tmp_path / "c", encoder=Encoder(str(tiny_bert_dir))) as coll:
        coll.add(["a", "b"], ids=["a", "b"], metadata=[deepest, {}], vectors=x[:2])
        for write in (coll.add, coll.upsert):
            with pytest.raises(InvalidInputError, match="deep"):
                write(["c"], ids=["c"], metadata=[nested(MAX_METADATA_DEPTH + 1)], vectors=x[2:])
        assert len(coll) == 2 and coll.get_existing(["c"]) == []
        assert coll.get(["a"])[0]["metadata"] == deepest
        assert coll.search_vectors(x[:1], k=1)[0].metadata == [deepest]
        assert coll.list_documents().documents[0]["metadata"] == deepest
    with Collection.open(tmp_path / "c") as again:
        assert again.get(["a"])[0]["metadata"] == deepest
