"""`CrossEncoder`: score (query, item) pairs jointly with a Hugging Face sequence-classification model (1 output).

Every scored pair is counted in `n_calls`, so CUR and retrieve-and-rerank budgets are exact.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from semspace.encode import engine as eng
from semspace.encode.calibration import CALIBRATION
from semspace.errors import InputTypeError, InvalidInputError, ModelLoadError, check_param

logger = logging.getLogger(__name__)


class CrossEncoder(eng.RunsOnEngine):
    """A cross-encoder over a local folder (HF sequence classification or a sentence-transformers CrossEncoder
    folder, which is the same format) or an already-loaded model. ``model=None`` starts from the bundled
    all-MiniLM-L6-v2 weights with a new, untrained 1-output head — train it before trusting its scores.

    ``backend`` is how the model runs, as for :class:`~semspace.encode.Encoder`: ``torch`` (exact, default),
    ``torch-bf16``, ``onnx``, ``onnx-int8`` or ``auto`` (:mod:`semspace.encode.engine`; the ONNX export is checked
    against PyTorch's scores: its ``min_cosine`` is the correlation of the calibration pairs' scores).
    """

    def __init__(
        self,
        model: Any = None,
        max_length: int = 256,
        batch_size: int = 64,
        device: str = "cpu",
        backend: str = "torch",
    ) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

        check_param(
            "batch_size", "CrossEncoder", isinstance(batch_size, int) and batch_size >= 1, "an int >= 1", batch_size
        )
        self._torch = torch
        if isinstance(model, PreTrainedModel):
            self.model = model
            name = getattr(model.config, "_name_or_path", "")
            self.tokenizer = AutoTokenizer.from_pretrained(name)
            self.model_id = name
        else:
            if model is None:
                from semspace.encode.models import bundled_model_path

                model = bundled_model_path()
            folder = Path(model)
            if not folder.is_dir():
                raise ModelLoadError(
                    f"Cross-encoder {str(model)!r}: no such folder (train one with `semspace train cross-encoder`)."
                )
            try:
                self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
                self.model = AutoModelForSequenceClassification.from_pretrained(str(folder), num_labels=1)
            except (OSError, ValueError) as exc:
                raise ModelLoadError(f"Cannot load cross-encoder {str(model)!r}: {str(exc).splitlines()[0]}") from None
            self.model_id = str(folder)
        if self.model.config.num_labels != 1:
            raise ModelLoadError(
                f"A cross-encoder needs 1 output; {self.model_id!r} has {self.model.config.num_labels}."
            )
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device
        self.model.to(device)
        self.model.eval()
        self.n_calls = 0
        # A fast tokenizer's __call__ re-configures its shared Rust state (padding, truncation) on every call, so
        # two threads tokenizing at once race; tokenizing is cheap next to the model, so calls take turns.
        self._tokenizer_lock = threading.Lock()
        self._runner = eng.EngineRunner(self.model, "cross-encoder", device, self.model_id)
        eng.check_backend(backend, "CrossEncoder")
        if backend != "torch":
            eng.use_engine(self, backend)

    @property
    def backend(self) -> str:
        return self.engine

    def _logits(self, batch: Any) -> np.ndarray:
        logits = self._runner.outputs(batch)
        if isinstance(logits, np.ndarray):  # an ONNX session's
            return logits[:, 0].astype(np.float32)
        return logits[:, 0].float().cpu().numpy()

    def set_engine(self, engine: str, cache: Path | None = None) -> None:
        """Run the model with `engine`; the ONNX graph is exported once (cached) and checked against PyTorch."""
        c = CALIBRATION
        # example inputs of different lengths: padding and the attention mask are traced, not a shortcut for none
        self._runner.set_engine(engine, lambda: dict(self.tokenize([(c[10], c[11]), (c[5], c[8])])), self._check, cache)

    def _check(self, session: Any) -> dict[str, Any]:
        """Scores of calibration pairs from `session` (None: bf16 autocast) against fp32 PyTorch: their
        correlation (reported as ``min_cosine``) and the largest absolute difference."""
        from scipy.stats import spearmanr

        texts = list(CALIBRATION[:10])  # short sentences: pairs fit a small model's positions
        pairs = [(texts[i], texts[j]) for i in range(len(texts)) for j in (i, (i + 3) % len(texts))]
        batch = self.tokenize(pairs)
        runner = self._runner
        with self._torch.inference_mode():
            ref = runner.torch_outputs(batch)[:, 0].float().numpy()
            if session is None:
                got = runner.torch_outputs(batch, bf16=True)[:, 0].numpy()
            else:
                got = runner.session_outputs(session, dict(batch))[:, 0]
        a, b = ref - ref.mean(), got - got.mean()
        diff = float(np.abs(ref - got).max())
        if ref.std() < 1e-2:  # (near) constant scores, e.g. an untrained head: correlation is noise, compare values
            agreement = 1.0 - diff
        else:
            agreement = float((a * b).sum() / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
        # the task loss `auto` decides by: Spearman points lost in the ranking of the pairs' scores
        rho = float(spearmanr(got, ref).statistic) if ref.std() >= 1e-2 else 1.0 - diff
        rho = rho if np.isfinite(rho) else 0.0
        return {
            "min_cosine": agreement,
            "task_loss": round(float(100.0 * (1.0 - rho)), 4),
            "max_abs_diff": diff,
            "score_std": float(ref.std()),
            "n_pairs": len(pairs),
        }

    def tokenize(self, pairs: Sequence[tuple[str, str]]) -> Any:
        with self._tokenizer_lock:
            batch = self.tokenizer(
                [p[0] for p in pairs],
                [p[1] for p in pairs],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
        return batch.to(self.device)

    def token_lengths(self, pairs: Sequence[tuple[str, str]]) -> list[int]:
        """Tokens the model reads per pair (both texts, special tokens, cut at `max_length`)."""
        with self._tokenizer_lock:
            ids = self.tokenizer(
                [p[0] for p in pairs], [p[1] for p in pairs], truncation=True, max_length=self.max_length
            )["input_ids"]
        return [len(row) for row in ids]

    def predict(
        self, pairs: Sequence[tuple[str, str]], batch_size: int | None = None, show_progress_bar: bool | None = None
    ) -> np.ndarray:
        """Raw scores (logits) as float32 (n,), in input order; batches sorted by token count, longest first."""
        pairs = _validate_pairs(pairs)
        out = np.empty(len(pairs), dtype=np.float32)
        if not pairs:
            return out
        size = batch_size or self.batch_size
        # by tokens, not characters (sentence-transformers' order): on STS-B test pairs in batches of 32, character
        # order pads to 1.28× the real tokens, token order to 1.05×; the extra tokenizer pass costs ~2 % of a pass
        order = np.argsort([-n for n in self.token_lengths(pairs)], kind="stable")
        disable = (None if len(pairs) >= 512 else True) if show_progress_bar is None else not show_progress_bar
        self.model.eval()
        with self._torch.inference_mode():
            for start in tqdm(range(0, len(pairs), size), desc="Cross-encoding", unit="batch", disable=disable):
                index = order[start : start + size]
                out[index] = self._logits(self.tokenize([pairs[i] for i in index]))
        self.n_calls += len(pairs)
        return out

    def save(self, path: str | Path) -> Path:
        folder = Path(path)
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        return folder


def _validate_pairs(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise InputTypeError(f"Pair at index {i} must be a (text, text) pair.")
        a, b = pair
        if not isinstance(a, str) or not isinstance(b, str):
            raise InputTypeError(f"Pair at index {i} holds a non-string.")
        if not a.strip() or not b.strip():
            raise InvalidInputError(f"Pair at index {i} has an empty text.")
        out.append((a, b))
    return out


class CrossEncoderScorer:
    """One query against a fixed item list, as the `ItemScorer` CUR and retrieve-and-rerank take; counts calls."""

    def __init__(self, cross_encoder: CrossEncoder, query: str, items: Sequence[str]) -> None:
        self.cross_encoder, self.query, self.items = cross_encoder, query, items
        self.calls = 0

    def __call__(self, item_ids: np.ndarray) -> np.ndarray:
        self.calls += len(item_ids)
        return self.cross_encoder.predict([(self.query, self.items[int(i)]) for i in item_ids], show_progress_bar=False)
