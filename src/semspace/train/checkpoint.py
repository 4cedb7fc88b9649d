"""Saving a trained encoder (Hugging Face + sentence-transformers folder) and resumable training checkpoints.

Everything is safetensors + JSON (no pickle). A checkpoint is a new folder `checkpoints/step-N-*` made complete before
the pointer `checkpoints/last.json` is atomically switched to it, so a crash at any moment leaves the previous
checkpoint usable; the exported model's files are replaced one by one with atomic renames.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from semspace._io import atomic_write_bytes, atomic_write_json, read_artifact_json, write_artifact_json
from semspace.encode.pooling import Pooling
from semspace.encode.st_format import write_st_files
from semspace.errors import ArtifactError

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "semspace-train-checkpoint"


def base_model(model: torch.nn.Module) -> torch.nn.Module:
    """The plain transformers model: a LoRA (peft) model is merged into a copy, the training model is untouched."""
    if hasattr(model, "merge_and_unload"):
        return copy.deepcopy(model).merge_and_unload()
    return model


def library_versions() -> dict[str, str]:
    """The ``__version__`` of an exported model's `config_sentence_transformers.json`, as sentence-transformers
    writes it."""
    import transformers

    try:
        from importlib.metadata import version

        st_version = version("sentence-transformers")
    except Exception:  # not installed: the folder is still valid, the version is informative only
        st_version = "unknown"
    return {"sentence_transformers": st_version, "transformers": transformers.__version__, "pytorch": torch.__version__}


def export_model(
    model: torch.nn.Module,
    tokenizer: Any,
    pooling: Pooling,
    max_length: int,
    folder: Path,
    *,
    normalize: bool = False,
    prompts: dict[str, str] | None = None,
    default_prompt_name: str | None = None,
) -> None:
    """Write a folder that `Encoder(folder)` and `SentenceTransformer(folder)` load with the same vectors:
    the transformers weights and tokenizer, ``modules.json`` (Transformer → Pooling [→ Normalize]),
    ``sentence_bert_config.json``, ``1_Pooling/config.json`` and ``config_sentence_transformers.json`` (prompts,
    cosine similarity). `normalize` keeps the starting model's Normalize module (training with cosine losses does
    not depend on the vector norm, so the trained model keeps its start's output convention)."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=folder) as tmp:
        staging = Path(tmp)
        base_model(model).save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        write_st_files(
            staging,
            pooling=pooling,
            dim=model.config.hidden_size,
            max_seq_length=max_length,
            normalize=normalize,
            prompts=prompts,
            default_prompt_name=default_prompt_name,
            versions=library_versions(),
        )
        (folder / "1_Pooling").mkdir(exist_ok=True)
        if normalize:
            (folder / "2_Normalize").mkdir(exist_ok=True)  # Normalize has no parameters; its folder stays empty
        # Weights last: until they are replaced, the folder still holds the previous complete model.
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        files.sort(key=lambda p: p.suffix == ".safetensors")
        for source in files:
            os.replace(source, folder / source.relative_to(staging))


def _tensor_dict(module_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # clone(): safetensors refuses tensors that share storage.
    return {k: v.detach().cpu().clone().contiguous() for k, v in module_state.items()}


def save_checkpoint(
    output_dir: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: dict[str, Any],
) -> Path:
    """Write checkpoint `step`, point `checkpoints/last.json` at it and delete older ones; returns its folder."""
    root = output_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    # A fresh folder every time: the one last.json points at is never written into.
    folder = Path(tempfile.mkdtemp(prefix=f"step-{step}-", dir=root))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    weights = {k: v for k, v in model.state_dict().items() if k in trainable}
    atomic_write_bytes(folder / "model.safetensors", save_tensors(_tensor_dict(weights)))
    optim = optimizer.state_dict()
    tensors = {f"{i}.{k}": v for i, entry in optim["state"].items() for k, v in entry.items() if torch.is_tensor(v)}
    tensors["rng.cpu"] = torch.get_rng_state()
    atomic_write_bytes(folder / "optimizer.safetensors", save_tensors(_tensor_dict(tensors)))
    meta = {
        "step": step,
        "param_groups": optim["param_groups"],
        "optimizer_state_keys": {
            str(i): sorted(k for k, v in entry.items() if torch.is_tensor(v)) for i, entry in optim["state"].items()
        },
        "scheduler": {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"},
        "trainer": state,
    }
    write_artifact_json(folder / "state.json", CHECKPOINT_FORMAT, meta)
    atomic_write_json(root / "last.json", {"checkpoint": folder.name, "step": step})
    for old in root.glob("step-*"):
        if old != folder:
            shutil.rmtree(old, ignore_errors=True)
    return folder


def load_checkpoint(
    output_dir: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> dict[str, Any] | None:
    """Restore the last checkpoint into model/optimizer/scheduler and the random state; returns the trainer state
    (or None when there is no checkpoint). A damaged checkpoint raises ArtifactError naming the file."""
    pointer = output_dir / "checkpoints" / "last.json"
    if not pointer.is_file():
        return None
    try:
        folder = output_dir / "checkpoints" / json.loads(pointer.read_text(encoding="utf-8"))["checkpoint"]
        meta = read_artifact_json(folder / "state.json", CHECKPOINT_FORMAT)
        weights = load_tensors((folder / "model.safetensors").read_bytes())
        tensors = load_tensors((folder / "optimizer.safetensors").read_bytes())
    except (OSError, ValueError, KeyError, TypeError, SafetensorError, ArtifactError) as exc:
        raise ArtifactError(f"Cannot resume from {pointer.parent}: {exc}") from None
    _missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected:
        raise ArtifactError(f"{folder} does not match this model: unexpected weights {unexpected[:3]}")
    optimizer_state = {
        "state": {int(i): {k: tensors[f"{i}.{k}"] for k in keys} for i, keys in meta["optimizer_state_keys"].items()},
        "param_groups": meta["param_groups"],
    }
    optimizer.load_state_dict(optimizer_state)
    scheduler.load_state_dict(meta["scheduler"] | {"lr_lambdas": [None] * len(optimizer.param_groups)})
    torch.set_rng_state(tensors["rng.cpu"])
    logger.info("resumed from %s (step %d)", folder, meta["step"])
    return meta["trainer"]
