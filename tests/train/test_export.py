"""train → export → SentenceTransformer(out): the same vectors, the start model's Normalize and prompts kept, the
sentence-transformers config and a model card with the training data and results."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semspace.data.sts import STSPairs
from semspace.encode import Encoder
from semspace.errors import ModelLoadError
from semspace.train import EncoderTrainConfig, train_encoder

pytest.importorskip("sentence_transformers")

TEXTS = ["a man is playing a guitar", "a dog", "the cat eats food in the park", "a plane is taking off"]


def save_st(tiny_bert_dir, folder, mode="mean", dense=False, normalize=False, **model_kwargs):
    """A tiny sentence-transformers model written by sentence-transformers itself."""
    import torch
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers >= 6; `sentence_transformers.models` before
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:
        from sentence_transformers import models

    torch.manual_seed(1)
    modules = [models.Transformer(str(tiny_bert_dir)), models.Pooling(32, pooling_mode=mode)]
    if dense:
        modules.append(models.Dense(32, 8))
    if normalize:
        modules.append(models.Normalize())
    SentenceTransformer(modules=modules, device="cpu", **model_kwargs).save(str(folder))
    return folder


@pytest.fixture
def labelled(tiny_bert_dir) -> STSPairs:
    words = (tiny_bert_dir / "vocab.txt").read_text(encoding="utf-8").split()[5:]
    rng = np.random.default_rng(0)
    first = [" ".join(rng.choice(words, 5)) for _ in range(16)]
    second = [" ".join(rng.choice(words, 5)) for _ in range(16)]
    return STSPairs(first, second, rng.uniform(0, 5, 16), name="tiny-sts")


def config(**changes) -> EncoderTrainConfig:
    return EncoderTrainConfig(**({"batch_size": 8, "max_length": 16, "lr": 1e-3, "max_steps": 2} | changes))


@pytest.mark.parametrize(("pooling", "normalize"), [("mean", True), ("cls", False)])
def test_export_opens_in_sentence_transformers_with_identical_vectors(
    tiny_bert_dir, tmp_path, labelled, pooling, normalize
):
    from sentence_transformers import SentenceTransformer

    prompts = {"query": "query: ", "document": "passage: "}
    start = save_st(tiny_bert_dir, tmp_path / "start", mode=pooling, normalize=normalize, prompts=prompts)
    out = tmp_path / "out"
    train_encoder(labelled, out, config(), init=str(start))  # no dev set: the final (trained) model is exported
    model = SentenceTransformer(str(out), device="cpu")
    encoder = Encoder(str(out))
    np.testing.assert_allclose(encoder.encode(TEXTS), model.encode(TEXTS), atol=1e-6)
    np.testing.assert_allclose(encoder.encode_query(TEXTS), model.encode_query(TEXTS), atol=1e-6)
    assert [type(m).__name__ for m in model] == ["Transformer", "Pooling", *(["Normalize"] if normalize else [])]
    if normalize:
        np.testing.assert_allclose(np.linalg.norm(model.encode(TEXTS), axis=1), 1.0, atol=1e-6)
    assert model.prompts == prompts and model.max_seq_length == encoder.max_length == 64
    st_config = json.loads((out / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    assert st_config["similarity_fn_name"] == "cosine" and st_config["prompts"] == prompts
    # The weights changed: this is the trained model, not the start.
    assert not np.allclose(encoder.encode(TEXTS), Encoder(str(start)).encode(TEXTS), atol=1e-4)


def test_model_card_names_the_data_and_results(tiny_bert_dir, tmp_path, labelled):
    start = save_st(tiny_bert_dir, tmp_path / "start", normalize=True)
    history = train_encoder(labelled, tmp_path / "out", config(), init=str(start), dev=labelled, data_name="pairs.tsv")
    card = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\nlibrary_name: sentence-transformers")
    assert "pairs.tsv" in card and "16 training examples" in card and "tiny-sts (16 scored pairs)" in card
    assert "Transformer → Pooling(mean) → Normalize" in card and "`cosent`" in card
    assert f"{history['best_dev_spearman']:.4f}" in card and labelled.sentences1[0] in card
    assert f"Final dev Spearman: {history['final_dev_spearman']:.4f}" in card


def test_plain_start_model_exports_without_normalize(tiny_bert_dir, tmp_path, labelled):
    from sentence_transformers import SentenceTransformer

    train_encoder(labelled, tmp_path / "out", config(), init=tiny_bert_dir)
    model = SentenceTransformer(str(tmp_path / "out"), device="cpu")
    assert [type(m).__name__ for m in model] == ["Transformer", "Pooling"]
    np.testing.assert_allclose(Encoder(str(tmp_path / "out")).encode(TEXTS), model.encode(TEXTS), atol=1e-6)
    assert (tmp_path / "out" / "README.md").is_file()


@pytest.mark.parametrize("changes", [{"mode": "max"}, {"dense": True}])
def test_training_refuses_a_pipeline_it_cannot_keep(tiny_bert_dir, tmp_path, labelled, changes):
    start = save_st(tiny_bert_dir, tmp_path / "start", **changes)
    with pytest.raises(ModelLoadError, match="cannot reproduce"):
        train_encoder(labelled, tmp_path / "out", config(), init=str(start))


@pytest.mark.slow
def test_bundled_start_keeps_normalize(tmp_path):
    from semspace.encode.backends import HFBackend
    from semspace.train.checkpoint import export_model

    backend = HFBackend(None, None, "cpu")
    assert backend.st_normalize and backend.default_pooling.value == "mean"
    export_model(
        backend.model, backend.tokenizer, backend.default_pooling, backend.max_length, tmp_path, normalize=True
    )
    from sentence_transformers import SentenceTransformer

    texts = ["A plane is taking off.", "A man is playing a flute."]
    np.testing.assert_allclose(
        SentenceTransformer(str(tmp_path), device="cpu").encode(texts), Encoder().encode(texts), atol=1e-6
    )
