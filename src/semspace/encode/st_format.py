"""The sentence-transformers folder format, read and written in one place.

A sentence-transformers model is a module list (``modules.json``): usually ``Transformer → Pooling [→ Dense]
[→ Normalize]``, with the transformer's settings in ``sentence_bert_config.json``, the Pooling module's mode in
``1_Pooling/config.json`` (a ``pooling_mode`` string in 6.x, boolean ``pooling_mode_*`` flags before) and prompts in
``config_sentence_transformers.json``. Reading: :class:`STPipeline` is that description, from a folder, a hub id
or a loaded `SentenceTransformer`; the loaders use it to decide whether semspace's own tokenization +
:class:`~semspace.encode.pooling.Pooling` reproduce the model exactly (:attr:`STPipeline.native`) or whether the model
must run through sentence-transformers itself (:class:`~semspace.encode.st_backend.STBackend`). Writing:
:func:`write_st_files` writes the files of a ``Transformer → Pooling(cls|mean) [→ Normalize]`` folder, for the e5
converter and the trainer's export. Nothing here imports torch or sentence-transformers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semspace._io import atomic_write_json
from semspace.encode.pooling import Pooling
from semspace.errors import UnknownPoolingError

logger = logging.getLogger(__name__)

# sentence_bert_config.json entries semspace's HF backend reproduces, with the values it reproduces (None: any value).
_PLAIN_TRANSFORMER_CONFIG: dict[str, Any] = {
    "max_seq_length": None,
    "do_lower_case": False,
    "transformer_task": "feature-extraction",
    "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
    "module_output_name": "token_embeddings",
}
# Modules after pooling that leave the vector unchanged in inference (Normalize is applied by semspace).
_NO_OP_MODULES = ("Dropout",)


# The poolings a sentence-transformers `Pooling` module can express, as (its `pooling_mode` string, the older boolean
# `pooling_mode_*` flag). Read by the loaders, written by the converter and the trainer's export; order decides ties.
ST_POOLING_MODES: dict[Pooling, tuple[str, str]] = {
    Pooling.LAST_AVG: ("mean", "pooling_mode_mean_tokens"),
    Pooling.CLS: ("cls", "pooling_mode_cls_token"),
}
# Every legacy boolean flag of sentence-transformers' Pooling, in its concatenation order, with the mode it means.
_ST_LEGACY_FLAGS: dict[str, str] = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
# The module folders of a folder semspace writes (the module type names are the legacy `sentence_transformers.models.*`
# ones: every sentence-transformers version >= 2 reads them).
_MODULE_PATHS = {"Transformer": "", "Pooling": "1_Pooling", "Normalize": "2_Normalize"}


def st_pooling_modes(config: dict[str, Any]) -> tuple[str, ...]:
    """The mode(s) of a sentence-transformers `1_Pooling/config.json`, read as sentence-transformers 6 reads it:
    the ``pooling_mode`` string or list when present, else the true legacy ``pooling_mode_*`` flags, else mean."""
    mode = config.get("pooling_mode")
    if mode is not None:
        return (mode,) if isinstance(mode, str) else tuple(str(m) for m in mode)
    active = tuple(name for flag, name in _ST_LEGACY_FLAGS.items() if config.get(flag))
    return active or ("mean",)


def pooling_from_st_config(config: dict[str, Any]) -> Pooling:
    """The pooling of a sentence-transformers `1_Pooling/config.json` (or `Pooling.get_config_dict()`).

    Older sentence-transformers write boolean ``pooling_mode_*`` flags, newer ones one ``pooling_mode`` string;
    both are read. A mode semspace does not implement (max, weightedmean, lasttoken, several concatenated, …) raises
    UnknownPoolingError; :class:`semspace.Encoder` runs such models through sentence-transformers itself.
    """
    modes = st_pooling_modes(config)
    for pooling, (name, _flag) in ST_POOLING_MODES.items():
        if modes == (name,):
            return pooling
    raise UnknownPoolingError(
        f"The model's sentence-transformers pooling {'+'.join(modes)!r} is not supported by semspace's poolings; "
        "pass pooling= explicitly."
    )


def st_pooling_config(pooling: Pooling, dim: int) -> dict[str, Any]:
    """The `1_Pooling/config.json` semspace writes: every boolean ``pooling_mode_*`` flag (what every
    sentence-transformers version reads; 6.x converts them to ``pooling_mode`` on load) and ``include_prompt``."""
    if pooling not in ST_POOLING_MODES:
        supported = " and ".join(p.value for p in ST_POOLING_MODES)
        raise UnknownPoolingError(
            f"sentence-transformers folders hold the poolings {supported}; got {pooling.value!r}."
        )
    flag = ST_POOLING_MODES[pooling][1]
    return {"word_embedding_dimension": int(dim)} | {f: f == flag for f in _ST_LEGACY_FLAGS} | {"include_prompt": True}


def write_st_files(
    folder: Path,
    *,
    pooling: Pooling,
    dim: int,
    max_seq_length: int,
    normalize: bool,
    prompts: dict[str, str] | None = None,
    default_prompt_name: str | None = None,
    similarity_fn_name: str = "cosine",
    versions: dict[str, str] | None = None,
) -> None:
    """Write the sentence-transformers files of a ``Transformer → Pooling [→ Normalize]`` folder whose transformer
    (weights, ``config.json``, tokenizer) is in `folder`'s root: ``modules.json``, ``sentence_bert_config.json``,
    ``1_Pooling/config.json``, the (empty) ``2_Normalize`` folder and ``config_sentence_transformers.json`` (with
    the library `versions` under ``__version__`` when given, as sentence-transformers writes them). Each file is
    written atomically; `Encoder(folder)` and `SentenceTransformer(folder)` then give the same vectors."""
    folder = Path(folder)
    names = ["Transformer", "Pooling", *(["Normalize"] if normalize else [])]
    modules = [
        {"idx": i, "name": str(i), "path": _MODULE_PATHS[name], "type": f"sentence_transformers.models.{name}"}
        for i, name in enumerate(names)
    ]
    atomic_write_json(folder / "modules.json", modules)
    atomic_write_json(folder / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False})
    atomic_write_json(folder / _MODULE_PATHS["Pooling"] / "config.json", st_pooling_config(pooling, dim))
    if normalize:
        (folder / _MODULE_PATHS["Normalize"]).mkdir(exist_ok=True)  # Normalize has no parameters: an empty folder
    config: dict[str, Any] = {
        "prompts": dict(prompts or {}),
        "default_prompt_name": default_prompt_name,
        "similarity_fn_name": similarity_fn_name,
    }
    if versions is not None:
        config = {"__version__": dict(versions), "model_type": "SentenceTransformer"} | config
    atomic_write_json(folder / "config_sentence_transformers.json", config)


@dataclass(frozen=True)
class STPipeline:
    """The module list of a sentence-transformers model, as far as semspace needs it.

    ``modules`` are the class names in order (``("Transformer", "Pooling", "Normalize")`` for all-MiniLM-L6-v2);
    ``pooling_modes`` the Pooling module's mode(s) (``("mean",)``); ``plain_transformer`` says that module 0 is a
    Hugging Face transformer in the model folder's root whose tokenization semspace reproduces (no lower-casing,
    no extra model/tokenizer arguments, torch backend).
    """

    modules: tuple[str, ...]
    pooling_modes: tuple[str, ...] = ()
    include_prompt: bool = True
    plain_transformer: bool = False
    max_seq_length: int | None = None
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    similarity_fn_name: str | None = None

    @property
    def pooling(self) -> Pooling | None:
        """The semspace pooling equal to the Pooling module, or None when it is not one of ours (max, …)."""
        if len(self.pooling_modes) != 1:
            return None
        return {"mean": Pooling.LAST_AVG, "cls": Pooling.CLS}.get(self.pooling_modes[0])

    @property
    def normalize(self) -> bool:
        return "Normalize" in self.modules[2:]

    @property
    def after_pooling(self) -> tuple[str, ...]:
        """The modules after Pooling that change the vector (Normalize included)."""
        return tuple(m for m in self.modules[2:] if m not in _NO_OP_MODULES)

    @property
    def transformer_then_pooling(self) -> bool:
        """Module 0 is a plain transformer and module 1 a Pooling: another pooling over its hidden states is defined."""
        return self.modules[:2] == ("Transformer", "Pooling") and self.plain_transformer

    @property
    def native(self) -> bool:
        """semspace's tokenization + pooling (+ L2 norm) give exactly this model's vectors."""
        return (
            self.transformer_then_pooling
            and self.pooling is not None
            and self.after_pooling in ((), ("Normalize",))
            and (self.include_prompt or not self.prompts)
        )

    def describe(self) -> str:
        """``Transformer → Pooling(max) → Dense → Normalize``."""
        modes = "+".join(self.pooling_modes)
        return " → ".join(f"Pooling({modes})" if m == "Pooling" else m for m in self.modules)


def _class_name(type_path: str) -> str:
    return type_path.rsplit(".", 1)[-1]


def _plain_transformer_config(config: dict[str, Any] | None) -> bool:
    for key, value in (config or {}).items():
        if key not in _PLAIN_TRANSFORMER_CONFIG:
            return False
        wanted = _PLAIN_TRANSFORMER_CONFIG[key]
        if wanted is not None and value != wanted and not (key == "do_lower_case" and not value):
            return False
    return True


def _folder_reader(folder: Path) -> Callable[[str], Any]:
    def read(name: str) -> Any:
        path = folder / name
        if not path.is_file():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    return read


def _hub_reader(repo_id: str, local_only: bool) -> Callable[[str], Any]:
    def read(name: str) -> Any:
        try:
            from huggingface_hub import hf_hub_download

            path = hf_hub_download(repo_id, name, local_files_only=local_only)
        except Exception:  # any hub/cache miss means "no such file" here; the model load reports real errors
            return None
        return json.loads(Path(path).read_text(encoding="utf-8"))

    return read


def read_st_pipeline(source: str | Path, *, local_only: bool = True) -> STPipeline | None:
    """The pipeline of a sentence-transformers folder or hub id (its cached files unless `local_only` is False);
    None when it has no ``modules.json`` (a plain transformers model)."""
    folder = Path(source)
    read = _folder_reader(folder) if folder.is_dir() else _hub_reader(str(source), local_only)
    try:
        entries = read("modules.json")
        if not entries:
            return None
        entries = sorted(entries, key=lambda e: int(e.get("idx", 0)))
        modules = tuple(_class_name(str(e.get("type", ""))) for e in entries)
        paths = [str(e.get("path", "")) for e in entries]
        pooling_config: dict[str, Any] = {}
        if "Pooling" in modules:
            pooling_config = read(f"{paths[modules.index('Pooling')]}/config.json") or {}
        transformer_config = None
        plain = False
        if modules and modules[0] == "Transformer":
            prefix = f"{paths[0]}/" if paths[0] else ""
            transformer_config = read(f"{prefix}sentence_bert_config.json")
            plain = paths[0] in ("", ".") and _plain_transformer_config(transformer_config)
        st_config = read("config_sentence_transformers.json") or {}
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        logger.warning(
            "Cannot read the sentence-transformers files of %s (%s); reading it as a plain model.", source, exc
        )
        return None
    max_seq_length = (transformer_config or {}).get("max_seq_length")
    return STPipeline(
        modules=modules,
        pooling_modes=st_pooling_modes(pooling_config),
        include_prompt=bool(pooling_config.get("include_prompt", True)),
        plain_transformer=plain,
        max_seq_length=int(max_seq_length) if max_seq_length else None,
        prompts=dict(st_config.get("prompts") or {}),
        default_prompt_name=st_config.get("default_prompt_name"),
        similarity_fn_name=st_config.get("similarity_fn_name"),
    )


def st_pipeline_of(model: Any) -> STPipeline:
    """The pipeline of an already-loaded `SentenceTransformer` object."""
    modules = tuple(type(m).__name__ for m in model)
    pooling_config: dict[str, Any] = {}
    for module in model:
        if type(module).__name__ == "Pooling":
            pooling_config = module.get_config_dict()
            break
    first = model[0] if len(modules) else None
    plain = (
        modules[:1] == ("Transformer",)
        and not getattr(first, "do_lower_case", False)
        and getattr(first, "transformer_task", "feature-extraction") == "feature-extraction"
        and (not hasattr(model, "get_backend") or model.get_backend() == "torch")
        and getattr(first, "tokenizer", None) is not None
    )
    include_prompt = bool(pooling_config.get("include_prompt", True))
    similarity = getattr(model, "similarity_fn_name", None)
    return STPipeline(
        modules=modules,
        pooling_modes=st_pooling_modes(pooling_config),
        include_prompt=include_prompt,
        plain_transformer=plain,
        max_seq_length=getattr(model, "max_seq_length", None),
        prompts=dict(getattr(model, "prompts", None) or {}),
        default_prompt_name=getattr(model, "default_prompt_name", None),
        similarity_fn_name=str(getattr(similarity, "value", similarity)) if similarity else None,
    )


def is_sentence_transformer(model: Any) -> bool:
    """An already-loaded sentence-transformers `SentenceTransformer` (checked without importing the package)."""
    return any(cls.__name__ == "SentenceTransformer" for cls in type(model).__mro__)


def st_model_id(model: Any) -> str:
    """A name for a loaded `SentenceTransformer`: its transformer's path, else its model card name."""
    try:
        name = getattr(model[0].auto_model.config, "_name_or_path", "")
    except (AttributeError, IndexError, TypeError):
        name = ""
    card = getattr(model, "model_card_data", None)
    return name or getattr(card, "model_name", None) or getattr(card, "base_model", None) or "SentenceTransformer"
