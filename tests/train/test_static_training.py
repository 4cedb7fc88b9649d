"""Trained static models (issue 26, item 3): tokenlearn's method on a tiny corpus and a tiny random BERT teacher —
training lowers the held-out loss, the saved folder reads alike in model2vec and semspace, the teacher vectors come
from the cache on a re-run, and a corpus too small is refused (library and CLI)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("model2vec")
pytest.importorskip("sklearn")

from model2vec import StaticModel
from support import WORDS, save_tiny_bert

from semspace.encode import Encoder, distill, save_static
from semspace.encode.static import static_info
from semspace.errors import InvalidInputError, InvalidParameterError
from semspace.train.static import MIN_TEXTS, featurize, train_static


def _sentences(n: int, seed: int = 0) -> list[str]:
    """n distinct seeded sentences of 3–9 of the teacher's words."""
    rng = np.random.default_rng(seed)
    found: dict[str, None] = {}
    while len(found) < n:
        found[" ".join(rng.choice(WORDS, size=int(rng.integers(3, 10))))] = None
    return list(found)


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("teacher"))


@pytest.fixture(scope="module")
def corpus():
    return _sentences(240)


@pytest.fixture(scope="module")
def trained(teacher_dir, corpus, tmp_path_factory):
    cache = tmp_path_factory.mktemp("embeddings")
    return train_static(corpus, str(teacher_dir), k=16, max_epochs=40, cache_dir=cache, show_progress_bar=False), cache


def test_training_lowers_the_held_out_loss(trained):
    result, _ = trained
    assert result.n_held_out == 24 and result.n_train == 216
    assert result.held_out_loss_after < result.held_out_loss_before
    assert 0 < result.epochs <= 40
    assert result.model.dim == 16
    assert result.model.config["semspace"]["trained"]["held_out_mse"] == [
        result.held_out_loss_before,
        result.held_out_loss_after,
    ]


def test_trained_folder_loads_identically_in_model2vec_and_encoder(trained, tmp_path):
    result, _ = trained
    folder = save_static(result.model, tmp_path / "trained")
    texts = _sentences(50, seed=7)
    ours = Encoder(str(folder)).encode(texts)
    theirs = StaticModel.from_pretrained(folder).encode(texts)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    assert static_info(folder)["trained"]["head"] == "folded"


def test_dropping_the_head_as_tokenlearn_gives_another_table(teacher_dir, corpus, trained):
    result, cache = trained
    dropped = train_static(corpus, str(teacher_dir), k=16, max_epochs=40, keep_head=False, cache_dir=cache)
    assert dropped.model.config["semspace"]["trained"]["head"] == "dropped"
    assert dropped.held_out_loss_after == result.held_out_loss_after  # the same training; only the table differs
    assert not np.allclose(dropped.model.embedding, result.model.embedding)


def test_featurize_reads_the_cache_on_a_re_run(teacher_dir, corpus, trained, monkeypatch):
    _, cache = trained

    def refuse(*args, **kwargs):
        raise AssertionError("the teacher ran although every text is in the cache")

    teacher = Encoder(str(teacher_dir), backend="torch")
    expected = teacher.encode(corpus[:5])
    monkeypatch.setattr(Encoder, "encode_poolings", refuse)
    np.testing.assert_allclose(featurize(teacher, corpus[:5], cache_dir=cache), expected, atol=1e-6)


def test_a_corpus_too_small_or_without_known_tokens_is_refused(teacher_dir, tmp_path):
    start = distill(str(teacher_dir), k=8)
    with pytest.raises(InvalidInputError, match=f"at least {MIN_TEXTS} distinct texts"):
        train_static([], str(teacher_dir), start=start, k=8, cache_dir=tmp_path)
    with pytest.raises(InvalidInputError, match="with a token the model knows"):
        train_static(
            [f"zzz qqq{i}" for i in range(100)] + _sentences(5), str(teacher_dir), start=start, k=8, cache_dir=tmp_path
        )
    with pytest.raises(InvalidParameterError, match="'held_out' parameter"):
        train_static(_sentences(40), str(teacher_dir), start=start, k=8, held_out=1.5, cache_dir=tmp_path)


def test_cli_distill_train(teacher_dir, corpus, tmp_path, monkeypatch, capsys):
    from semspace.cli.app import main

    monkeypatch.setenv("SEMSPACE_CACHE", str(tmp_path / "cache"))
    texts = tmp_path / "corpus.jsonl"
    texts.write_text("\n".join(json.dumps({"text": t}) for t in corpus[:80]) + "\n", encoding="utf-8")
    out = tmp_path / "static"
    args = ["distill", "-o", str(out), "--model", str(teacher_dir), "--k", "8", "--train", str(texts)]
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--max-epochs", "3"])
    assert exit_.value.code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["dim"] == 8 and summary["training"]["texts"] == 80
    assert (tmp_path / "cache" / "embeddings").is_dir()
    np.testing.assert_allclose(
        Encoder(str(out)).encode(corpus[:3]), StaticModel.from_pretrained(out).encode(corpus[:3]), atol=1e-6
    )
    small = tmp_path / "small.txt"
    small.write_text("a man is running\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["distill", "-o", str(tmp_path / "x"), "--model", str(teacher_dir), "--train", str(small)])
    assert exit_.value.code == 2
    assert f"at least {MIN_TEXTS} distinct texts" in capsys.readouterr().err
