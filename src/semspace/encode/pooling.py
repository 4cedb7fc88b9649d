"""Sentence poolings over transformer hidden states (REFERENCE §1), all attention-mask aware."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is imported by the backend that needs it, not at `import semspace`
    import torch

from semspace.errors import UnknownPoolingError


class Pooling(StrEnum):
    """How token vectors become one sentence vector.

    - ``cls``: last layer's [CLS] vector.
    - ``pooler``: the pretrained pooler Dense on [CLS] **without tanh** (the BERT-whitening "linear pooler").
    - ``last-avg``: masked mean of the last layer's tokens ([CLS]/[SEP] included, padding excluded).
    - ``first-last-avg``: mean of the masked averages of ``hidden_states[1]`` (first transformer block) and
      ``hidden_states[-1]``.
    - ``last2-avg``: mean of the masked averages of the last two layers.
    - ``default``: the model's own pipeline — its sentence-transformers pooling (with the modules after it, e.g.
      Normalize) when it has one, else ``last-avg``. A sentence-transformers pipeline these poolings cannot
      express (max, weighted-mean, last-token, Dense, …) stays ``default`` and runs through sentence-transformers.
    """

    CLS = "cls"
    POOLER = "pooler"
    LAST_AVG = "last-avg"
    FIRST_LAST_AVG = "first-last-avg"
    LAST2_AVG = "last2-avg"
    DEFAULT = "default"

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


def masked_mean(hidden: torch.Tensor | np.ndarray, mask: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Mean over unmasked tokens; the denominator is clamped so an all-padding row gives 0, not NaN.

    NumPy arrays (the ONNX Runtime engines' outputs) are pooled in NumPy: torch's OpenMP threads, woken for a few
    microseconds of pooling, keep spinning on the cores ONNX Runtime needs next."""
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


# The poolings a sentence-transformers `Pooling` module can express, as (its `pooling_mode` string, the older boolean
# `pooling_mode_*` flag). Read by the backends, written by the trainer's export; order decides ties.
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
    """The `1_Pooling/config.json` of an exported model: the boolean flags every sentence-transformers version
    reads (6.x converts them to ``pooling_mode`` on load)."""
    if pooling not in ST_POOLING_MODES:
        supported = " and ".join(p.value for p in ST_POOLING_MODES)
        raise UnknownPoolingError(
            f"sentence-transformers folders hold the poolings {supported}; got {pooling.value!r}."
        )
    flags = {flag: pooling is key for key, (_, flag) in ST_POOLING_MODES.items()}
    return {"word_embedding_dimension": int(dim)} | flags
