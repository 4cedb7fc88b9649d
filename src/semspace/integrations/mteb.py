"""``MTEBEncoder``: a :class:`semspace.Encoder` that ``mteb.evaluate`` accepts (mteb's ``EncoderProtocol``).

mteb hands an encoder a ``DataLoader`` of batches (``batch["text"]``), the task's metadata and a prompt type
(``query``/``document`` for retrieval, None otherwise), and scores the returned vectors with the similarity its
``ModelMeta`` names (cosine here). Prompts follow mteb's sentence-transformers wrapper: a model prompt named after the
task or task type when the model has one, else the model's query/document prompt (e5's ``query: ``/``passage: ``
for e5 models), else none.

Example
-------
>>> import mteb
>>> from semspace.integrations.mteb import MTEBEncoder
>>> results = mteb.evaluate(MTEBEncoder(), mteb.get_tasks(tasks=["STSBenchmark"]))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from semspace._deps import require
from semspace._version import __version__
from semspace.encode import Encoder
from semspace.encode.models import known_model
from semspace.errors import InvalidParameterError

AbsEncoder = require("mteb.models.abs_encoder", "mteb", "semspace.integrations.mteb").AbsEncoder
_model_meta = require("mteb.models.model_meta", "mteb", "semspace.integrations.mteb")
ModelMeta, ScoringFunction = _model_meta.ModelMeta, _model_meta.ScoringFunction

logger = logging.getLogger(__name__)


def mteb_model_name(model_id: str) -> str:
    """An ``organization/model_name`` for mteb's results: the Hub id where there is one, else ``semspace/<name>``."""
    known = known_model(model_id)
    if known is not None:
        return known.results_name
    path = Path(model_id)
    if model_id.count("/") == 1 and not path.exists() and not model_id.startswith((".", "/")):
        return model_id
    return f"semspace/{path.name or 'model'}"


class MTEBEncoder(AbsEncoder):
    """mteb's encoder protocol over a :class:`semspace.Encoder`.

    Parameters
    ----------
    model:
        An :class:`~semspace.Encoder`, or anything ``Encoder(model)`` accepts (None: the bundled MiniLM).
    revision:
        The revision recorded in mteb's results (default ``semspace-<version>``).
    device:
        torch device when an Encoder is built here.
    name:
        The ``organization/model_name`` recorded in mteb's results (default: from the model id).
    **encoder_kwargs:
        Passed to ``Encoder`` when one is built here (pooling, max_length, normalize, …).
    """

    def __init__(
        self,
        model: Any = None,
        revision: str | None = None,
        *,
        device: str | None = None,
        name: str | None = None,
        **encoder_kwargs: Any,
    ) -> None:
        if isinstance(model, Encoder):
            if encoder_kwargs or device is not None:
                raise InvalidParameterError("Encoder settings go to Encoder(...), not to MTEBEncoder, for a built one.")
            self.model = model
        else:
            self.model = Encoder(model, device=device or "cpu", **encoder_kwargs)
        self.model_prompts = self.model.prompts or None
        self.mteb_model_meta = ModelMeta.create_empty(
            overwrites={
                "name": name or mteb_model_name(self.model.model_id),
                "revision": revision or f"semspace-{__version__}",
                "embed_dim": self.model.dim,
                "max_tokens": self.model.max_length,
                "similarity_fn_name": ScoringFunction.COSINE,
                "framework": ["PyTorch"],
                "use_instructions": bool(self.model.prompts),
                "open_weights": True,
            }
        )

    def encode(
        self,
        inputs: Any,
        *,
        task_metadata: Any,
        hf_split: str,
        hf_subset: str,
        prompt_type: Any = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """The vectors of every text in `inputs` (a DataLoader of ``{"text": [...]}`` batches), float32 (n, dim)."""
        precision = kwargs.pop("precision", None)
        if precision not in (None, "float32"):
            raise InvalidParameterError(f"MTEBEncoder returns float32 vectors; precision {precision!r} is not offered.")
        options = {k: kwargs.pop(k) for k in ("batch_size", "show_progress_bar") if k in kwargs}
        if kwargs:
            logger.debug("MTEBEncoder ignores mteb encode arguments %s", sorted(kwargs))
        texts = [text for batch in inputs for text in batch["text"]]
        prompt_name = self.get_prompt_name(task_metadata, prompt_type)
        role = getattr(prompt_type, "value", prompt_type)
        if prompt_name is not None:
            return self.model.encode(texts, prompt_name=prompt_name, **options)
        if role == "query":
            return self.model.encode_query(texts, **options)
        if role == "document":
            return self.model.encode_document(texts, **options)
        return self.model.encode(texts, **options)
