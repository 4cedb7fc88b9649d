"""semspace: semantic similarity and semantic search (encoders, whitening, search, CUR, training, evaluation).

The names below are imported lazily (PEP 562), so `import semspace` costs nothing until one is used: the CLI's
`--help` and collection commands never pay for torch or transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from semspace._lazy import lazy_exports
from semspace._version import __version__

_EXPORTS = {
    "Encoder": "semspace.encode.encoder",
    "EmbeddingCache": "semspace.encode.cache",
    "Pooling": "semspace.encode.pooling",
    "Whitening": "semspace.transform.whitening",
    "WhiteningStats": "semspace.transform.stats",
    "TuneResult": "semspace.transform.tune",
    "tune_whitening": "semspace.transform.tune",
    "Collection": "semspace.search.collection",
    "SearchResult": "semspace.search.results",
    "CrossEncoder": "semspace.interact.cross_encoder",
    "CURIndex": "semspace.interact.cur",
    "CURSearcher": "semspace.interact.searcher",
}

__all__ = [
    "CURIndex",
    "CURSearcher",
    "Collection",
    "CrossEncoder",
    "EmbeddingCache",
    "Encoder",
    "Pooling",
    "SearchResult",
    "TuneResult",
    "Whitening",
    "WhiteningStats",
    "__version__",
    "tune_whitening",
]

if TYPE_CHECKING:
    from semspace.encode.cache import EmbeddingCache
    from semspace.encode.encoder import Encoder
    from semspace.encode.pooling import Pooling
    from semspace.interact.cross_encoder import CrossEncoder
    from semspace.interact.cur import CURIndex
    from semspace.interact.searcher import CURSearcher
    from semspace.search.collection import Collection
    from semspace.search.results import SearchResult
    from semspace.transform.stats import WhiteningStats
    from semspace.transform.tune import TuneResult, tune_whitening
    from semspace.transform.whitening import Whitening


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
