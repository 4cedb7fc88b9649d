"""Every missing dependency is one MissingExtraError (an ImportError) naming the `pip install` that fixes it."""

from __future__ import annotations

import sys

import pytest

from semspace._deps import install_hint, require
from semspace.errors import MissingExtraError


def test_require_returns_the_module():
    import json

    assert require("json", "serve") is json


def test_missing_extra_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(MissingExtraError, match=r"^LoRA needs peft: pip install 'semspace\[train\]'$"):
        require("peft", "train", "LoRA")


def test_missing_core_dependency_names_its_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match=r"^Search needs faiss, a dependency of semspace: pip install faiss-cpu$"):
        require("faiss", "faiss-cpu", "Search")
    assert install_hint("onnx") == "pip install 'semspace[onnx]'"


def test_a_submodule_of_a_missing_package_names_the_package(monkeypatch):
    for name in ["mteb", *(n for n in sys.modules if n.startswith("mteb."))]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingExtraError, match=r"needs mteb: pip install 'semspace\[mteb\]'$"):
        require("mteb.models.abs_encoder", "mteb", "semspace.integrations.mteb")


def test_a_broken_package_quotes_its_own_failure(monkeypatch, tmp_path):
    (tmp_path / "semspace_broken_pkg.py").write_text("import semspace_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MissingExtraError, match=r"needs semspace_broken_pkg \(No module named 'semspace_no_such"):
        require("semspace_broken_pkg", "zh", "It")


def test_the_core_dependencies_fail_the_same_way(monkeypatch):
    from semspace.interact.cur import BM25FirstStage
    from semspace.search.hybrid import BM25Index
    from semspace.search.index import _faiss

    monkeypatch.setitem(sys.modules, "bm25s", None)
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(MissingExtraError, match="pip install bm25s"):
        BM25FirstStage(["a text"])
    with pytest.raises(MissingExtraError, match="pip install bm25s"):
        BM25Index(None, ["a text"], 0)  # type: ignore[arg-type]
    with pytest.raises(MissingExtraError, match="pip install faiss-cpu"):
        _faiss()
