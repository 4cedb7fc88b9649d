import dataclasses
import json

import numpy as np
import pytest
import torch

from semspace.data import STSPairs
from semspace.errors import InputTypeError, InvalidInputError, InvalidParameterError, ModelLoadError, NotFittedError
from semspace.interact.cross_encoder import CrossEncoder, CrossEncoderScorer
from semspace.train import (
    CrossEncoderTrainConfig,
    EncoderTrainConfig,
    TrainConfig,
    bernoulli_symmetric_kl,
    cosent_loss,
    train_cross_encoder,
)

PAIRS = [
    ("a man is playing a guitar", "a man plays a guitar"),
    ("a dog", "a cat eats food"),
    ("a plane is taking off", "a plane is taking off in the park"),
]


def test_predict_batches_by_token_count_and_keeps_input_order(tiny_bert_dir, monkeypatch):
    ce = CrossEncoder(tiny_bert_dir, batch_size=2)
    # characters and tokens disagree: one unknown long word is a single [UNK] token
    pairs = [("a man", "a dog"), ("supercalifragilisticexpialidocious", "x"), ("a man is playing", "a dog eats food")]
    lengths = ce.token_lengths(pairs)
    assert lengths[1] < lengths[0] < lengths[2]  # by characters, pair 1 would come before pair 0
    widths = []
    tokenize = ce.tokenize

    def spy(batch):
        widths.append(sorted(lengths[pairs.index(p)] for p in batch))
        return tokenize(batch)

    monkeypatch.setattr(ce, "tokenize", spy)
    scores = ce.predict(pairs)
    assert widths == [[lengths[0], lengths[2]], [lengths[1]]]  # the two longest by tokens together
    monkeypatch.undo()
    np.testing.assert_allclose(scores, [ce.predict([p])[0] for p in pairs], atol=1e-5)


def test_predict_order_counter_and_errors(tiny_bert_dir):
    ce = CrossEncoder(tiny_bert_dir, batch_size=2)
    scores = ce.predict(PAIRS)
    assert scores.shape == (3,) and scores.dtype == np.float32 and ce.n_calls == 3
    single = np.array([ce.predict([p])[0] for p in PAIRS])
    np.testing.assert_allclose(scores, single, atol=1e-5)
    with pytest.raises(InputTypeError):
        ce.predict([("only one",)])
    with pytest.raises(InvalidInputError):
        ce.predict([("", "x")])
    with pytest.raises(ModelLoadError):
        CrossEncoder("/no/such/folder")
    scorer = CrossEncoderScorer(ce, "a dog", ["a cat", "a plane", "a dog"])
    assert scorer(np.array([2, 0])).shape == (2,) and scorer.calls == 2


def test_cosent_values():
    # One ordered pair: loss = log(1 + exp(λ(s_low − s_high))).
    loss = cosent_loss(torch.tensor([0.8, 0.2], dtype=torch.float64), torch.tensor([1.0, 0.0]), scale=20.0)
    assert loss.item() == pytest.approx(np.log1p(np.exp(20 * (0.2 - 0.8))), rel=1e-5)
    assert cosent_loss(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 1.0])).item() == pytest.approx(0.0)
    graded = cosent_loss(torch.tensor([0.9, 0.5, 0.1]), torch.tensor([5.0, 3.0, 0.0]), scale=1.0)
    expected = np.log(1 + np.exp(0.5 - 0.9) + np.exp(0.1 - 0.9) + np.exp(0.1 - 0.5))
    assert graded.item() == pytest.approx(expected, rel=1e-5)


def test_rdrop_kl():
    z = torch.tensor([0.3, -1.2])
    assert bernoulli_symmetric_kl(z, z).item() == pytest.approx(0.0, abs=1e-7)
    assert bernoulli_symmetric_kl(z, -z).item() > 0


@pytest.mark.parametrize("loss", ["bce", "cosent"])
def test_training_saves_best_checkpoint(tmp_path, tiny_bert_dir, loss):
    rng = np.random.default_rng(0)
    texts = ["a man", "a dog", "a cat", "the park", "a plane", "food", "a guitar", "a flute"]
    s1 = [texts[i] for i in rng.integers(0, 8, 24)]
    s2 = [texts[i] for i in rng.integers(0, 8, 24)]
    data = STSPairs(s1, s2, rng.uniform(0, 5, 24))
    history = train_cross_encoder(
        data,
        data,
        tmp_path / "ce",
        CrossEncoderTrainConfig(
            objective=loss, epochs=1, batch_size=8, rdrop_alpha=1.0 if loss == "bce" else 0.0, max_label=5.0
        ),
        init=tiny_bert_dir,
    )
    # 3 steps: evaluated at step 1 (the early, halved interval) and at the end.
    assert (tmp_path / "ce" / "config.json").exists() and [e["step"] for e in history["evals"]] == [1, 3]
    saved = json.loads((tmp_path / "ce" / "semspace_training.json").read_text(encoding="utf-8"))
    assert saved["format"] == "semspace-training-history" and saved["semspace_version"]
    assert saved["config"]["objective"] == loss and saved["max_label"] == 5.0 and len(saved["losses"]) == 3
    assert not (tmp_path / "ce" / "checkpoints").exists()
    reloaded = CrossEncoder(tmp_path / "ce")
    assert reloaded.predict(PAIRS[:1]).shape == (1,)


def test_both_orders_trains_each_pair_both_ways(tmp_path, tiny_bert_dir):
    data = STSPairs(["a man", "a dog", "a cat", "the park"], ["a guitar", "food", "a plane", "a flute"], [5, 1, 0, 3])
    config = CrossEncoderTrainConfig(epochs=1, batch_size=2, max_label=5.0, both_orders=True, eval_early=0)
    history = train_cross_encoder(data, data, tmp_path / "ce", config, init=tiny_bert_dir)
    # 8 examples (4 pairs, each in both orders) in batches of 2: 4 steps, not 2.
    assert history["steps"] == 4 and history["config"]["both_orders"] is True
    with pytest.raises(InvalidParameterError, match="both_orders"):
        train_cross_encoder(data, data, tmp_path / "x", CrossEncoderTrainConfig(both_orders="yes"))


def test_not_fitted_cur_is_specific():
    from semspace.interact import CURIndex

    with pytest.raises(NotFittedError):
        CURIndex().search(lambda ids: np.zeros(len(ids)), k=1, budget=5)


def test_both_trainers_share_one_name_per_knob():
    shared = {f.name for f in dataclasses.fields(TrainConfig)}
    for config in (CrossEncoderTrainConfig, EncoderTrainConfig):
        names = {f.name for f in dataclasses.fields(config)}
        assert shared <= names and not names & {"loss", "eval_every"}
    with pytest.raises(InvalidParameterError, match="objective"):
        train_cross_encoder(None, None, "unused", CrossEncoderTrainConfig(objective="nope"))
    with pytest.raises(InvalidParameterError, match="eval_steps"):
        train_cross_encoder(None, None, "unused", CrossEncoderTrainConfig(eval_steps=0))


def test_concurrent_predict_matches_serial(tiny_bert_dir):
    """Request threads share one CrossEncoder (the service's /rerank): its tokenizer must not race."""
    import random
    import threading

    ce = CrossEncoder(tiny_bert_dir, batch_size=3, max_length=16)
    rng = random.Random(0)
    words = ["a", "man", "dog", "cat", "is", "playing", "guitar", "running", "the", "park", "in", "food"]
    batches = [
        [(" ".join(rng.choices(words, k=rng.choice([1, 4, 30]))), "a dog") for _ in range(rng.randint(1, 6))]
        for _ in range(48)
    ]
    expected = [ce.predict(b, show_progress_bar=False) for b in batches]
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def worker(w: int) -> None:
        start.wait()
        for i in range(w, len(batches), 6):
            try:
                results[i] = ce.predict(batches[i], show_progress_bar=False)
            except BaseException as exc:  # any failure is the bug
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, repr(errors[0])
    for i, scores in results.items():
        np.testing.assert_allclose(scores, expected[i], atol=1e-5)
    assert len(results) == len(batches)
