"""`CURSearcher`: a CURIndex bound to its items and its cross-encoder, saved as one folder (npz + JSON).

With a bi-encoder side (L2-normalised item vectors and a query encoder) it also runs retrieve-and-rerank (RnR-DE:
the bi-encoder's top-B items re-ranked by the cross-encoder) and adaCUR starting from the bi-encoder's top items,
and :meth:`CURSearcher.search` with ``method="auto"`` runs whichever measured better at the requested budget
(:mod:`semspace.interact.calibration`: cross-validated Top-k-Recall@B over the anchor queries, at build time).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semspace._io import atomic_write_npz, read_artifact_json, read_artifact_npz, write_artifact_json
from semspace.errors import ArtifactError, InvalidInputError, NoBiEncoderError, check_param
from semspace.interact.calibration import (
    CALIBRATION,
    DEFAULT_BUDGETS,
    DEFAULT_FOLDS,
    DEFAULT_KS,
    RerankCalibration,
    RerankChoice,
    calibrate_rerank,
    rnr_below_anchor_items,
    run_method,
)
from semspace.interact.cross_encoder import CrossEncoder, CrossEncoderScorer
from semspace.interact.cur import DEFAULT_RCOND, CURIndex
from semspace.search.index import normalize_rows

logger = logging.getLogger(__name__)

ITEMS = "items.json"
BI_ENCODER = "bi_encoder.npz"  # the item vectors of the bi-encoder side (its encoder's spec is in items.json)
_ITEMS_FORMAT = "semspace.cur_items"
SEARCH_METHODS = ("auto", "cur", "rnr")
NO_BI_ENCODER = (
    "This CUR index has no bi-encoder side (item vectors and a query encoder), so it cannot retrieve-and-rerank: "
    "rebuild it with one (`semspace cur build … --collection C`, or `--items F` with the bi-encoder on, the default; "
    "in Python CURSearcher.build(..., encoder=Encoder(...))), or load it with encoder=… if only the encoder is missing."
)


@dataclass
class CURHit:
    """Top-k of one query: ids, texts, exact CE scores, CE calls spent, what ran (`method`, e.g. "rnr",
    "cur(rounds=1)", "adacur(rounds=5, first=bi-encoder)") and one line saying why (`reason`)."""

    ids: list[str]
    texts: list[str]
    exact_scores: list[float]
    calls: int
    method: str = "cur(rounds=1)"
    reason: str = ""


class CURSearcher:
    """Build offline (k_q·|I| CE calls) with :meth:`build`; search online with a budget of CE calls.

    The bi-encoder side is optional: `item_vectors` (|I|, d), stored L2-normalised float32, and `encoder` (anything
    with ``encode(list[str]) -> (n, d)``, e.g. :class:`semspace.encode.Encoder`) for the queries — or
    `encoder_spec` ({"model", "pooling", "max_length"}) from which an :class:`~semspace.encode.Encoder` is opened the
    first time one is needed. `calibration` is the table ``method="auto"`` chooses from."""

    def __init__(
        self,
        index: CURIndex,
        item_ids: list[str],
        item_texts: list[str],
        cross_encoder: CrossEncoder,
        *,
        item_vectors: np.ndarray | None = None,
        encoder: Any = None,
        encoder_spec: dict | None = None,
        calibration: RerankCalibration | None = None,
    ):
        self.index, self.item_ids, self.item_texts, self.cross_encoder = index, item_ids, item_texts, cross_encoder
        if item_vectors is not None:
            item_vectors = normalize_rows(item_vectors)
            if len(item_vectors) != len(item_ids):
                raise InvalidInputError(f"{len(item_vectors)} item vectors for {len(item_ids)} items.")
        self.item_vectors = item_vectors
        self._encoder = encoder
        self.encoder_spec = encoder_spec if encoder_spec is not None else getattr(encoder, "spec", None)
        self.calibration = calibration
        self._encoder_lock = threading.Lock()

    # -- the bi-encoder side ---------------------------------------------------------------------------------
    @property
    def has_bi_encoder(self) -> bool:
        """Item vectors and a query encoder (given, or a saved spec to open one from)."""
        return self.item_vectors is not None and (self._encoder is not None or self.encoder_spec is not None)

    @property
    def encoder(self) -> Any:
        """The query encoder of the bi-encoder side (opened from `encoder_spec` on first use); NoBiEncoderError
        without one."""
        if not self.has_bi_encoder:
            raise NoBiEncoderError(NO_BI_ENCODER)
        with self._encoder_lock:
            if self._encoder is None:
                from semspace.encode import Encoder

                self._encoder = Encoder.from_spec(self.encoder_spec or {})
        return self._encoder

    def bi_encoder_scores(self, query: str) -> np.ndarray:
        """Cosine of the query's bi-encoder vector with every item vector (|I|,)."""
        q = normalize_rows(np.asarray(self.encoder.encode([query]), dtype=np.float32))
        assert self.item_vectors is not None
        if q.shape[1] != self.item_vectors.shape[1]:
            raise InvalidInputError(
                f"the query encoder gives {q.shape[1]}-d vectors; the item vectors are {self.item_vectors.shape[1]}-d"
            )
        return (self.item_vectors.astype(np.float64) @ q[0].astype(np.float64)).ravel()

    # -- building --------------------------------------------------------------------------------------------
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
        *,
        encoder: Any = None,
        calibrate: bool = True,
        budgets: tuple[int, ...] = DEFAULT_BUDGETS,
        ks: tuple[int, ...] = DEFAULT_KS,
        n_folds: int = DEFAULT_FOLDS,
    ) -> CURSearcher:
        """Score every anchor query against every item (k_q·|I| CE calls) and fit the CUR index.

        With `encoder` (the bi-encoder for queries; it also encodes the items when `item_vectors` is None) the
        searcher gets its bi-encoder side and, with `calibrate`, the table ``search(method="auto")`` chooses from:
        RnR-DE, CUR and adaCUR measured by cross-validation over the anchor queries on R_anc, the scores already
        computed here (no further CE call; :func:`semspace.interact.calibration.calibrate_rerank`). Without
        `encoder`, `item_vectors` only serve k-means anchor items, as before."""
        if not anchor_queries:
            raise InvalidInputError("At least one anchor query is needed to build a CUR index.")
        if not item_texts:
            raise InvalidInputError("No items to index.")
        items, queries = list(item_texts), list(anchor_queries)
        if encoder is not None and item_vectors is None:
            item_vectors = np.asarray(encoder.encode(items), dtype=np.float32)
        # the bar counts cross-encoder calls as they are made: the long part of a build
        index = CURIndex(n_anchor_items, anchor_items, rcond=rcond, seed=seed).fit(
            queries, items, cross_encoder, item_vectors
        )
        ids = [str(i) for i in range(len(items))] if item_ids is None else list(item_ids)
        calibration = None
        if encoder is not None and calibrate:
            assert item_vectors is not None
            query_vectors = np.asarray(encoder.encode(queries), dtype=np.float32)
            calibration = calibrate_rerank(
                index.anchor_scores_, query_vectors, item_vectors, index, budgets, ks, n_folds, seed=seed
            )
        return cls(
            index,
            ids,
            items,
            cross_encoder,
            item_vectors=item_vectors if encoder is not None else None,
            encoder=encoder,
            calibration=calibration,
        )

    # -- search ----------------------------------------------------------------------------------------------
    def choose(self, k: int, budget: int) -> RerankChoice:
        """What ``search(method="auto")`` runs for this k and budget, and why (see :meth:`search`)."""
        k_i = self.index.n_anchor_items
        if not self.has_bi_encoder:
            return RerankChoice("cur", 1, "cur: this index has no bi-encoder side, so RnR is not available")
        if self.calibration is None:
            if budget < k_i:
                return rnr_below_anchor_items(budget, k_i)
            return RerankChoice(
                "cur", 1, "cur: this index has no calibration table (calibrate=False, or under 2 anchor queries)"
            )
        choice = self.calibration.choose(k, budget)
        return choice if choice is not None else RerankChoice("cur", 1, "cur: the calibration table has no entry")

    def search(self, query: str, k: int = 10, budget: int = 100, rounds: int = 1, method: str = "auto") -> CURHit:
        """Top-k items by the exact CE score after at most `budget` CE calls.

        method="cur": CUR as configured (`rounds` 1 = ANNCUR, ≥ 2 adaCUR, first round from the fitted anchors).
        method="rnr": the bi-encoder's top-`budget` items re-ranked by the CE (at most `budget` hits); needs the
        bi-encoder side (NoBiEncoderError otherwise).
        method="auto": the method with the higher measured Top-k-Recall@B in the calibration table at the
        measured budget and k nearest to the requested ones — RnR-DE, CUR (rounds=1) or adaCUR (the table's rounds,
        first round from the bi-encoder's top items), as measured; `rounds` is not used. RnR when the budget is
        below the anchor items CUR needs; CUR (rounds=1) without a bi-encoder side or without a table.
        The hit says what ran (`method`) and why (`reason`)."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("The query is empty.")
        check_param("method", "CURSearcher.search", method in SEARCH_METHODS, "'auto', 'cur' or 'rnr'", method)
        k = min(k, len(self.item_ids)) if isinstance(k, int) and not isinstance(k, bool) else k
        if method == "rnr" and not self.has_bi_encoder:
            raise NoBiEncoderError(NO_BI_ENCODER)
        if method == "auto":
            choice = self.choose(k, budget)
        elif method == "rnr":
            choice = RerankChoice("rnr", 1, "rnr: requested")
        else:
            choice = RerankChoice("cur", rounds, "cur: requested")
        scorer = CrossEncoderScorer(self.cross_encoder, query, self.item_texts)
        if choice.method == "rnr":
            check_param("budget", "CURSearcher.search", isinstance(budget, int) and budget >= 1, "an int >= 1", budget)
            check_param("k", "CURSearcher.search", isinstance(k, int) and k >= 1, "an int >= 1", k)
        first = self.bi_encoder_scores(query) if choice.method in ("rnr", "adacur") else None
        result = run_method(choice.method, choice.rounds, self.index, scorer, first, k, budget)
        name = {
            "rnr": "rnr",
            "adacur": f"adacur(rounds={choice.rounds}, first=bi-encoder)",
            "cur": f"cur(rounds={choice.rounds})",
        }[choice.method]
        return CURHit(
            [self.item_ids[i] for i in result.ids],
            [self.item_texts[i] for i in result.ids],
            result.exact_scores.astype(float).tolist(),
            scorer.calls,
            name,
            choice.reason,
        )

    # -- persistence -----------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """The index (cur.npz, cur.json), items.json (ids, texts, cross-encoder id, bi-encoder spec), and when
        present bi_encoder.npz (item vectors) and calibration.json; stale optional files are removed."""
        folder = Path(path)
        self.index.save(folder)
        write_artifact_json(
            folder / ITEMS,
            _ITEMS_FORMAT,
            {
                "ids": self.item_ids,
                "texts": self.item_texts,
                "cross_encoder": self.cross_encoder.model_id,
                "encoder": self.encoder_spec if self.item_vectors is not None else None,
            },
        )
        if self.item_vectors is not None:
            atomic_write_npz(folder / BI_ENCODER, item_vectors=self.item_vectors)
        else:
            (folder / BI_ENCODER).unlink(missing_ok=True)
        if self.calibration is not None:
            self.calibration.save(folder)
        else:
            (folder / CALIBRATION).unlink(missing_ok=True)
        return folder

    @classmethod
    def load(cls, path: str | Path, cross_encoder: CrossEncoder | None = None, encoder: Any = None) -> CURSearcher:
        """Load what :meth:`save` wrote; a folder from before the bi-encoder side loads without it. `encoder` (e.g.
        the service's collection encoder, already open) is used for queries when the saved bi-encoder spec names the
        same model or there is none; otherwise the saved spec wins (logged), since the item vectors came from it."""
        folder = Path(path)
        index = CURIndex.load(folder)
        items = read_artifact_json(folder / ITEMS, _ITEMS_FORMAT)
        if not all(isinstance(items.get(key), list) for key in ("ids", "texts")) or len(items["texts"]) != len(
            items["ids"]
        ):
            raise ArtifactError(f"{folder / ITEMS}: corrupt (ids and texts must be two lists of one length)")
        if len(items["ids"]) != index.n_items_:
            raise ArtifactError(f"{folder}: {len(items['ids'])} items but the index has {index.n_items_}")
        vectors = None
        if (folder / BI_ENCODER).exists():
            vectors = read_artifact_npz(folder / BI_ENCODER, ("item_vectors",), "CURSearcher")["item_vectors"]
            if vectors.ndim != 2 or len(vectors) != index.n_items_:
                raise ArtifactError(f"{folder / BI_ENCODER}: {vectors.shape} vectors for {index.n_items_} items")
        spec = items.get("encoder")
        if spec is not None and not (isinstance(spec, dict) and isinstance(spec.get("model"), str)):
            raise ArtifactError(f"{folder / ITEMS}: corrupt bi-encoder spec {spec!r}")
        if encoder is not None and spec is not None and getattr(encoder, "model_id", None) != spec["model"]:
            logger.warning(
                "%s: its item vectors come from %r, not the given encoder %r; queries will use %r",
                folder,
                spec["model"],
                getattr(encoder, "model_id", None),
                spec["model"],
            )
            encoder = None
        calibration = RerankCalibration.load(folder) if (folder / CALIBRATION).exists() else None
        return cls(
            index,
            items["ids"],
            items["texts"],
            cross_encoder or CrossEncoder(items["cross_encoder"]),
            item_vectors=vectors,
            encoder=encoder if vectors is not None else None,
            encoder_spec=spec,
            calibration=calibration,
        )
