"""`CURSearcher`: a CURIndex bound to its items and its cross-encoder, saved as one folder (npz + JSON)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from semspace._io import read_artifact_json, write_artifact_json
from semspace.errors import ArtifactError, InvalidInputError
from semspace.interact.cross_encoder import CrossEncoder, CrossEncoderScorer
from semspace.interact.cur import DEFAULT_RCOND, CURIndex

ITEMS = "items.json"
_ITEMS_FORMAT = "semspace.cur_items"


@dataclass
class CURHit:
    ids: list[str]
    texts: list[str]
    exact_scores: list[float]
    calls: int


class CURSearcher:
    """Build offline (k_q·|I| CE calls) with :meth:`build`; search online with a budget of CE calls."""

    def __init__(self, index: CURIndex, item_ids: list[str], item_texts: list[str], cross_encoder: CrossEncoder):
        self.index, self.item_ids, self.item_texts, self.cross_encoder = index, item_ids, item_texts, cross_encoder

    @classmethod
    def build(
        cls,
        cross_encoder: CrossEncoder,
        anchor_queries: Sequence[str],
        item_texts: Sequence[str],
        item_ids: Sequence[str] | None = None,
        n_anchor_items: int = 50,
        anchor_items: str = "random",
        item_vectors: np.ndarray | None = None,
        rcond: float = DEFAULT_RCOND,
        seed: int = 0,
    ) -> CURSearcher:
        if not anchor_queries:
            raise InvalidInputError("At least one anchor query is needed to build a CUR index.")
        if not item_texts:
            raise InvalidInputError("No items to index.")
        items = list(item_texts)
        index = CURIndex(n_anchor_items, anchor_items, rcond=rcond, seed=seed).fit(
            list(tqdm(anchor_queries, desc="Scoring anchor queries", unit="query")), items, cross_encoder, item_vectors
        )
        ids = [str(i) for i in range(len(items))] if item_ids is None else list(item_ids)
        return cls(index, ids, items, cross_encoder)

    def search(self, query: str, k: int = 10, budget: int = 100, rounds: int = 1) -> CURHit:
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("The query is empty.")
        scorer = CrossEncoderScorer(self.cross_encoder, query, self.item_texts)
        result = self.index.search(scorer, k=min(k, len(self.item_ids)), budget=budget, rounds=rounds)
        return CURHit(
            [self.item_ids[i] for i in result.ids],
            [self.item_texts[i] for i in result.ids],
            result.exact_scores.astype(float).tolist(),
            scorer.calls,
        )

    def save(self, path: str | Path) -> Path:
        folder = Path(path)
        self.index.save(folder)
        write_artifact_json(
            folder / ITEMS,
            _ITEMS_FORMAT,
            {"ids": self.item_ids, "texts": self.item_texts, "cross_encoder": self.cross_encoder.model_id},
        )
        return folder

    @classmethod
    def load(cls, path: str | Path, cross_encoder: CrossEncoder | None = None) -> CURSearcher:
        folder = Path(path)
        index = CURIndex.load(folder)
        items = read_artifact_json(folder / ITEMS, _ITEMS_FORMAT)
        if not all(isinstance(items.get(key), list) for key in ("ids", "texts")) or len(items["texts"]) != len(
            items["ids"]
        ):
            raise ArtifactError(f"{folder / ITEMS}: corrupt (ids and texts must be two lists of one length)")
        if len(items["ids"]) != index.n_items_:
            raise ArtifactError(f"{folder}: {len(items['ids'])} items but the index has {index.n_items_}")
        return cls(index, items["ids"], items["texts"], cross_encoder or CrossEncoder(items["cross_encoder"]))
