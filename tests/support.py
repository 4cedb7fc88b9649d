"""Test helpers that are not fixtures, so a benchmark can use them too (`benchmarks/fuzz_service.py`): the tiny
random BERT and cross-encoder saved to a folder, and a live uvicorn server. `conftest.py` wraps them as fixtures."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

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


# Sentences over WORDS: the service tests' corpus.
CORPUS = [
    "a man is playing a guitar",
    "a woman is playing a flute",
    "a dog is running in the park",
    "a cat eats food",
    "a big plane is taking off",
    "a small dog eats food in the park",
    "the man is running",
    "a woman eats",
    "a big cat is playing",
    "the plane is small",
    "a dog is playing a guitar in the park",
    "the woman is taking the cat",
]

# The client tests (openai, LangChain, LlamaIndex, huggingface_hub) drive one keyed server (conftest's serve_keyed).
CLIENT_KEY = "test-key-123"
CLIENT_TEXTS = ["a man is playing a guitar", "a dog", "the big plane is taking off in the park"]


def save_tiny_bert(
    folder: Path,
    words: list[str] | None = None,
    hidden_size: int = 32,
    num_hidden_layers: int = 2,
    intermediate_size: int = 64,
) -> Path:
    """A random BERT (2 layers, hidden 32 by default) with a word-level WordPiece vocab (:data:`WORDS`), saved in
    `folder`. The tokenizer is built with `tokenizers` and handed over as an object: transformers 5 ignores
    `BertTokenizerFast(vocab_file=...)`, which left only the special tokens (every test word was `[UNK]`)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(WORDS if words is None else words)]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    word_pieces = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    word_pieces.normalizer = normalizers.BertNormalizer(lowercase=True)
    word_pieces.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    word_pieces.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer = BertTokenizerFast(
        tokenizer_object=word_pieces,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=2,
        intermediate_size=intermediate_size,
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


def load_benchmark(name: str) -> ModuleType:
    """benchmarks/<name>.py as a module, registered in sys.modules as ``benchmark_<name>`` (its dataclasses resolve
    their annotations through it), with the process environment restored after its import (a benchmark sets its
    thread counts at import)."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    environment = dict(os.environ)
    try:
        spec.loader.exec_module(module)
    finally:
        os.environ.clear()
        os.environ.update(environment)
    return module
