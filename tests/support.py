"""Test helpers that are not fixtures, so a benchmark can use them too (`benchmarks/fuzz_service.py`): the tiny
random BERT and cross-encoder saved to a folder, and a live uvicorn server. `conftest.py` wraps them as fixtures."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

WORDS = [
    "a",
    "man",
    "woman",
    "dog",
    "cat",
    "is",
    "playing",
    "guitar",
    "running",
    "the",
    "park",
    "in",
    "eats",
    "food",
    "plane",
    "taking",
    "off",
    "flute",
    "big",
    "small",
]


def save_tiny_bert(folder: Path) -> Path:
    """A 2-layer, hidden-32 random BERT with a word-level vocab (:data:`WORDS`), saved in `folder`."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_tiny_cross_encoder(folder: Path, bert_dir: Path) -> Path:
    """A 1-output BertForSequenceClassification over the tiny BERT's vocabulary (random weights), saved in `folder`."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(1)
    config = BertConfig.from_pretrained(bert_dir, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(folder)
    BertTokenizerFast.from_pretrained(bert_dir).save_pretrained(folder)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """A real uvicorn server on 127.0.0.1 in a background thread."""

    def __init__(self, app) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
