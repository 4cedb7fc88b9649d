"""The model card (``README.md``) of a model exported by `semspace train`: what it was trained from, on which data,
how, and with which results — in the Hugging Face model-card shape (YAML front matter that the Hub and
sentence-transformers read, then Markdown)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from semspace._io import atomic_write_bytes
from semspace._version import __version__
from semspace.data.sts import STSPairs
from semspace.encode.models import known_model
from semspace.encode.pooling import Pooling
from semspace.encode.st_format import ST_POOLING_MODES
from semspace.train.data import TrainingSet

# A Hugging Face id (organization/name): the card names it as `base_model`.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_COLUMNS = {1: ("sentence",), 2: ("sentence1", "sentence2"), 3: ("anchor", "positive", "negative")}


def _cell(text: str, limit: int = 60) -> str:
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|").replace("\n", " ")


def _data_section(data: TrainingSet, dev: STSPairs | None, data_name: str | None) -> list[str]:
    names = _COLUMNS.get(len(data.columns), tuple(f"column{i}" for i in range(len(data.columns))))
    lines = ["## Training data", ""]
    if data_name:
        lines.append(f"- Source: `{data_name}`")
    lines.append(f"- {len(data)} training examples; columns: {', '.join(names)}")
    if data.labels is not None and len(data.labels):
        labels = data.labels
        lines.append(f"- Labels: min {labels.min():.3g}, mean {labels.mean():.3g}, max {labels.max():.3g}")
    if dev is not None:
        lines.append(f"- Dev set: {dev.name or 'unnamed'} ({len(dev)} scored pairs), used to pick the exported step")
    header = [*names, *(["label"] if data.labels is not None else [])]
    lines += ["", "First examples:", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i in range(min(3, len(data))):
        row = [_cell(column[i]) for column in data.columns]
        if data.labels is not None:
            row.append(f"{data.labels[i]:.3g}")
        lines.append("| " + " | ".join(row) + " |")
    return [*lines, ""]


def _results_section(history: dict[str, Any]) -> list[str]:
    losses = history.get("losses") or []
    lines = ["## Results", ""]
    lines.append(f"- Optimizer steps: {history.get('steps', len(losses))}")
    if "train_seconds" in history:
        lines.append(f"- Training time: {history['train_seconds']:.1f} s")
    if losses:
        tail = losses[-10:]
        lines.append(f"- Training loss: first {losses[0]:.4f}, mean of the last {len(tail)} {np.mean(tail):.4f}")
    evals = history.get("evals") or []
    best = history.get("best_dev_spearman")
    if evals:
        lines.append(f"- Best dev Spearman: {best:.4f} at step {history.get('best_step')} (this is the exported model)")
        final = history.get("final_dev_spearman")
        if final is not None:
            lines.append(f"- Final dev Spearman: {final:.4f} at step {evals[-1]['step']} (the last step's model)")
        lines += ["", "| step | dev Spearman |", "|---:|---:|"]
        lines += [f"| {e['step']} | {e['dev_spearman']:.4f} |" for e in evals]
    else:
        lines.append("- No dev set: the final model is exported.")
    return [*lines, ""]


def model_card(
    history: dict[str, Any],
    *,
    base_model: str,
    pooling: Pooling,
    normalize: bool,
    dim: int,
    max_length: int,
    data: TrainingSet,
    dev: STSPairs | None = None,
    data_name: str | None = None,
) -> str:
    """The card's Markdown text."""
    config = history.get("config", {})
    known = known_model(base_model)
    hub_id = known.base_hub_id if known is not None else base_model
    front = ["---", "library_name: sentence-transformers", "pipeline_tag: sentence-similarity", "tags:"]
    front += [f"- {t}" for t in ("sentence-transformers", "sentence-similarity", "feature-extraction", "semspace")]
    if _HUB_ID.match(hub_id):
        front.append(f"base_model: {hub_id}")
    front.append("---")
    mode = ST_POOLING_MODES[pooling][0]
    pipeline = f"Transformer → Pooling({mode})" + (" → Normalize" if normalize else "")
    objective = config.get("objective", "?")
    lines = [
        *front,
        "",
        f"# Sentence encoder fine-tuned from `{base_model}`",
        "",
        f"Trained with semspace {__version__} (`semspace train {objective}`); a "
        "sentence-transformers folder that `semspace.Encoder(path)` and `SentenceTransformer(path)` load with the "
        "same vectors.",
        "",
        "## Model",
        "",
        f"- Base model: `{base_model}`",
        f"- Pipeline: {pipeline}",
        f"- Output dimension: {dim}; maximum sequence length: {max_length} tokens; similarity: cosine",
        "",
        *_data_section(data, dev, data_name),
        "## Training",
        "",
        f"- Objective: `{objective}`",
        "",
        "| setting | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in config.items() if v is not None],
        "",
        *_results_section(history),
        "## Usage",
        "",
        "```python",
        "from semspace import Encoder",
        "",
        'vectors = Encoder("path/to/this/folder").encode(["A man is playing a guitar.", "A dog runs."])',
        "",
        "from sentence_transformers import SentenceTransformer",
        "",
        'vectors = SentenceTransformer("path/to/this/folder").encode(["A man is playing a guitar.", "A dog runs."])',
        "```",
        "",
    ]
    return "\n".join(lines)


def write_model_card(folder: str | Path, history: dict[str, Any], **card: Any) -> Path:
    """Write ``README.md`` (atomically) into an exported model folder; `card` as for :func:`model_card`."""
    path = Path(folder) / "README.md"
    atomic_write_bytes(path, model_card(history, **card).encode("utf-8"))
    return path
