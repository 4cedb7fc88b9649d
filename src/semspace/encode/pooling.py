"""Sentence poolings over transformer hidden states (REFERENCE §1), all attention-mask aware."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

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
    - ``default``: the model's own sentence-transformers pooling when it has one, else ``last-avg``.
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


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over unmasked tokens; the denominator is clamped so an all-padding row gives 0, not NaN."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


def pool(
    pooling: Pooling,
    hidden_states: tuple[torch.Tensor, ...],
    attention_mask: torch.Tensor,
    pooler_dense: torch.nn.Module | None,
) -> torch.Tensor:
    """Apply one concrete pooling (not DEFAULT) to a model output; never writes into its inputs."""
    last = hidden_states[-1]
    if pooling is Pooling.CLS:
        return last[:, 0]
    if pooling is Pooling.POOLER:
        if pooler_dense is None:
            raise UnknownPoolingError("Pooling 'pooler' needs a model with a pretrained pooler; this one has none.")
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


def pooling_from_st_config(config: dict[str, Any]) -> Pooling:
    """The pooling of a sentence-transformers `1_Pooling/config.json` (or `Pooling.get_config_dict()`).

    Older sentence-transformers write boolean ``pooling_mode_*`` flags, newer ones one ``pooling_mode`` string;
    both are read. A mode semspace does not implement (max, weightedmean, lasttoken, …) raises UnknownPoolingError.
    """
    mode = config.get("pooling_mode")
    for pooling, (name, flag) in ST_POOLING_MODES.items():
        if config.get(flag) or mode == name:
            return pooling
    modes = [f"{k}={v}" for k, v in config.items() if k.startswith("pooling_mode") and v]
    raise UnknownPoolingError(
        f"The model's sentence-transformers pooling {modes} is not supported; pass pooling= explicitly."
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
