"""Fast start-up: `--help`, `index info` and `index delete` import none of the heavy libraries (which modules are
imported is asserted here; how long start-up takes is measured by benchmarks/bench_startup.py, never in a test)."""

import json
import subprocess
import sys

import numpy as np
import pytest

HEAVY = ("torch", "transformers", "sklearn", "sentence_transformers", "matplotlib", "fastapi", "scipy")

RUN_AND_LIST_MODULES = """
import json, sys
from semspace.cli import main
try:
    main(sys.argv[2:])
except SystemExit:
    pass
with open(sys.argv[1], "w") as handle:
    json.dump(sorted(sys.modules), handle)
"""


def imported_modules(tmp_path, *args: str, full: bool = False) -> set[str]:
    out = tmp_path / "modules.json"
    result = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST_MODULES, str(out), *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return {name if full else name.split(".")[0] for name in json.loads(out.read_text())}


@pytest.fixture
def collection(tmp_path, tiny_bert_dir):
    from semspace.encode import Encoder
    from semspace.search import Collection

    path = tmp_path / "c"
    with Collection.create(path, encoder=Encoder(str(tiny_bert_dir))) as c:
        c.add(["a dog", "a cat", "a plane"], ids=["a", "b", "c"], vectors=np.eye(3, 32, dtype=np.float32))
    return path


@pytest.mark.parametrize("args", [["--help"], ["index", "--help"]])
def test_help_imports_no_heavy_library(tmp_path, args):
    assert not imported_modules(tmp_path, *args) & set(HEAVY)


def test_help_imports_only_the_pooling_names_of_semspace_encode(tmp_path):
    # semspace.encode is lazy like the top package: the options' Pooling enum loads neither the encoder nor numpy.
    modules = imported_modules(tmp_path, "--help", full=True)
    assert "semspace.encode.pooling" in modules and "numpy" not in modules
    assert not {m for m in modules if m.startswith("semspace.encode.") and m != "semspace.encode.pooling"}


def test_index_info_and_delete_import_no_heavy_library(tmp_path, collection):
    assert not imported_modules(tmp_path, "index", "info", str(collection)) & set(HEAVY)
    assert not imported_modules(tmp_path, "index", "delete", str(collection), "b") & set(HEAVY)
    from semspace.search import Collection

    with Collection.open(collection) as c:
        assert len(c) == 2 and c.get_existing(["a", "b"])[0]["id"] == "a"


def test_whitened_collection_info_and_delete_do_not_load_the_transform(tmp_path, collection):
    from semspace.search import Collection
    from semspace.transform import Whitening

    rng = np.random.default_rng(0)
    with Collection.open(collection) as c:
        c.add([f"doc {i}" for i in range(40)], vectors=rng.normal(size=(40, 32)).astype(np.float32))
        c.set_transform(Whitening(n_components=8).fit(rng.normal(size=(200, 32))))
        before = c.info()
    assert before["dim"] == 8 and before["transform"]["n_components"] == 8
    assert not imported_modules(tmp_path, "index", "info", str(collection)) & set(HEAVY)
    assert not imported_modules(tmp_path, "index", "delete", str(collection), "b") & set(HEAVY)
    with Collection.open(collection) as c:
        info = c.info()
        assert info["transform"] == before["transform"] and info["dim"] == 8 and len(c) == before["count"] - 1
        hits = c.search_vectors(rng.normal(size=(1, 32)).astype(np.float32), 3)  # loads the transform on use
        assert len(hits[0].ids) == 3 and c.transform is not None and c.transform.n_components_ == 8
