"""A missing extra fails where the adapter is imported, naming the pip install that fixes it; nothing else
imports the adapters."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "package", "extra"),
    [
        ("semspace.integrations.mteb", "mteb", "mteb"),
        ("semspace.integrations.langchain", "langchain_core", "langchain"),
        ("semspace.integrations.llamaindex", "llama_index", "llamaindex"),
    ],
)
def test_missing_extra_names_the_install(monkeypatch, module, package, extra):
    monkeypatch.setitem(sys.modules, package, None)  # `import package` now raises ImportError
    for name in [n for n in sys.modules if n == package or n.startswith(f"{package}.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(ImportError, match=rf"pip install 'semspace\[{extra}\]'"):
        importlib.import_module(module)


def test_semspace_imports_no_adapter():
    code = (
        "import sys, semspace, semspace.encode, semspace.integrations; "
        "print(sorted(m for m in sys.modules "
        "if m.startswith(('mteb', 'langchain', 'llama_index', 'semspace.integrations.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
