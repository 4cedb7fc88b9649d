"""Dependencies imported where they are first needed: one place that turns a missing package into
:class:`~semspace.errors.MissingExtraError` naming the ``pip install`` that fixes it.

>>> onnxruntime = require("onnxruntime", "onnx", "backend='onnx'")  # doctest: +SKIP
MissingExtraError: backend='onnx' needs onnxruntime: pip install 'semspace[onnx]'
"""

from __future__ import annotations

import importlib
from types import ModuleType

from semspace.errors import MissingExtraError

# The extras of pyproject.toml's [project.optional-dependencies] that install an optional part of semspace.
EXTRAS = frozenset({"serve", "train", "zh", "onnx", "mteb", "langchain", "llamaindex", "ray", "static", "all"})


def install_hint(extra: str) -> str:
    """``pip install 'semspace[extra]'`` for an extra; for a core dependency (`extra` is then its pip package, e.g.
    ``faiss-cpu``), ``pip install <package>``."""
    return f"pip install 'semspace[{extra}]'" if extra in EXTRAS else f"pip install {extra}"


def require(module: str, extra: str, what: str | None = None) -> ModuleType:
    """`module` imported, or MissingExtraError saying that `what` needs it and how to install it.

    `extra` is one of :data:`EXTRAS` (an optional part: ``"LoRA needs peft: pip install 'semspace[train]'"``) or,
    for a core dependency missing from a broken install, the pip package that provides `module`
    (``"Search needs faiss, a dependency of semspace: pip install faiss-cpu"``). When the package is there but one of
    its own imports fails, that failure is quoted too.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        subject = what or "This part of semspace"
        core = "" if extra in EXTRAS else ", a dependency of semspace"
        missing = getattr(exc, "name", None)
        cause = "" if missing is not None and (missing == module or module.startswith(f"{missing}.")) else f" ({exc})"
        raise MissingExtraError(f"{subject} needs {package}{core}{cause}: {install_hint(extra)}") from None
