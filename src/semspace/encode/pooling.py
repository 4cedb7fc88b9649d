"""Sentence poolings over transformer hidden states, all attention-mask aware."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy and torch are imported when pooling runs: the CLI's --help reads only the enum
    import numpy as np
    import torch

from semspace.errors import UnknownPoolingError

LEGACY_MEAN = "last-avg"  # the name of Pooling.MEAN until issue 27 (the BERT-whitening paper's)


class Pooling(StrEnum):
    """How token vectors become one sentence vector.

    - ``cls``: last layer's [CLS] vector.
    - ``pooler``: the pretrained pooler Dense on [CLS] **without tanh** (the BERT-whitening "linear pooler").
    - ``mean``: masked mean of the last layer's tokens ([CLS]/[SEP] included, padding excluded) — the
      sentence-transformers and TEI name; ``last-avg`` (the BERT-whitening paper's name, and what artifacts written
      before semspace 0.x record) is accepted for it and gives the same vectors.
    - ``first-last-avg``: mean of the masked averages of ``hidden_states[1]`` (first transformer block) and
      ``hidden_states[-1]``.
    - ``last2-avg``: mean of the masked averages of the last two layers.
    - ``default``: the model's own pipeline — its sentence-transformers pooling (with the modules after it, e.g.
      Normalize) when it has one, else ``mean``. A sentence-transformers pipeline these poolings cannot
      express (max, weighted-mean, last-token, Dense, …) stays ``default`` and runs through sentence-transformers.
    """

    CLS = "cls"
    POOLER = "pooler"
    MEAN = "mean"
    LAST_AVG = "mean"  # the old name of MEAN (an Enum alias: the same member)
    FIRST_LAST_AVG = "first-last-avg"
    LAST2_AVG = "last2-avg"
    DEFAULT = "default"

    @classmethod
    def _missing_(cls, value: object) -> Pooling | None:
        # names recorded by older artifacts (manifests, caches, CUR searchers) keep loading, to the same pooling
        return cls.MEAN if value == LEGACY_MEAN else None

    @property
    def key_name(self) -> str:
        """The name on-disk cache keys use: the value, except ``last-avg`` for MEAN — the name the keys had when it
        was written, so caches made before the rename stay hits (the vectors are the same)."""
        return LEGACY_MEAN if self is Pooling.MEAN else self.value

    @classmethod
    def parse(cls, value: str | Pooling) -> Pooling:
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(p.value for p in cls)
            raise UnknownPoolingError(f"Unknown pooling {value!r}; choose one of {names}.") from None

    @classmethod
    def resolve(cls, value: str | Pooling | None, default: Pooling) -> Pooling:
        """`value` parsed, with ``default`` (or None) replaced by the model's own pooling `default`.

        The one place where :attr:`DEFAULT` becomes a concrete pooling; `Encoder.resolve_pooling` also checks that
        the model offers the result.
        """
        parsed = cls.DEFAULT if value is None else cls.parse(value)
        return default if parsed is cls.DEFAULT else parsed


HF_POOLINGS = tuple(p for p in Pooling if p is not Pooling.DEFAULT)


def with_current_pooling_name(spec: dict[str, Any]) -> dict[str, Any]:
    """An encoder spec (a manifest's, a CUR searcher's) with its pooling under its current name: an old artifact's
    ``last-avg`` shows as ``mean``, the name the encoder, ``/info`` and the sentence-transformers/TEI world use.
    A name no pooling has is left as written (opening the encoder says what is wrong with it)."""
    name = spec.get("pooling")
    try:
        return spec if name is None else {**spec, "pooling": Pooling(name).value}
    except ValueError:
        return spec


def masked_mean(hidden: torch.Tensor | np.ndarray, mask: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Mean over unmasked tokens; the denominator is clamped so an all-padding row gives 0, not NaN.

    NumPy arrays (the ONNX Runtime engines' outputs) are pooled in NumPy: torch's OpenMP threads, woken for a few
    microseconds of pooling, keep spinning on the cores ONNX Runtime needs next."""
    import numpy as np

    if isinstance(hidden, np.ndarray):
        weights = np.asarray(mask)[..., None].astype(hidden.dtype)
        return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


def pool(
    pooling: Pooling,
    hidden_states: tuple[Any, ...],
    attention_mask: torch.Tensor | np.ndarray,
    pooler_dense: torch.nn.Module | None,
) -> torch.Tensor | np.ndarray:
    """Apply one concrete pooling (not DEFAULT) to a model output (torch tensors, or NumPy arrays that stay NumPy);
    never writes into its inputs."""
    import numpy as np

    last = hidden_states[-1]
    if pooling is Pooling.CLS:
        return last[:, 0]
    if pooling is Pooling.POOLER:
        if pooler_dense is None:
            raise UnknownPoolingError("Pooling 'pooler' needs a model with a pretrained pooler; this one has none.")
        if isinstance(last, np.ndarray):
            import torch

            with torch.inference_mode():
                return pooler_dense(torch.from_numpy(np.ascontiguousarray(last[:, 0]))).numpy()
        return pooler_dense(last[:, 0])
    if pooling is Pooling.LAST_AVG:
        return masked_mean(last, attention_mask)
    if len(hidden_states) < 3:
        raise UnknownPoolingError(f"Pooling {pooling.value!r} needs a model with at least two layers.")
    if pooling is Pooling.FIRST_LAST_AVG:
        # hidden_states[0] is the embedding layer; [1] is the output of the first transformer block.
        return (masked_mean(hidden_states[1], attention_mask) + masked_mean(last, attention_mask)) / 2
    if pooling is Pooling.LAST2_AVG:
        return (masked_mean(hidden_states[-2], attention_mask) + masked_mean(last, attention_mask)) / 2
    raise UnknownPoolingError(f"Pooling {pooling.value!r} must be resolved to a concrete pooling first.")
