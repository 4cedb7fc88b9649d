"""Row-wise cosine of paired vectors: :func:`semspace.metrics.paired_cosine`, kept importable from here (the
scores live in :mod:`semspace.metrics`, which every layer may import)."""

from __future__ import annotations

from semspace.metrics import paired_cosine

__all__ = ["paired_cosine"]
