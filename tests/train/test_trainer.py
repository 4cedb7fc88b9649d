"""The encoder trainer on a tiny random BERT: export, dev selection, resumption, LoRA, R-Drop, cached batches."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from semspace.data.sts import STSPairs
from semspace.encode import Encoder
from semspace.errors import ArtifactError, InvalidParameterError
from semspace.train import EncoderTrainConfig, TrainingSet, train_encoder
from semspace.train.loop import eval_schedule


@pytest.fixture
def words(tiny_bert_dir):
    return (tiny_bert_dir / "vocab.txt").read_text(encoding="utf-8").split()[5:]


@pytest.fixture
def labelled(words) -> STSPairs:
    rng = np.random.default_rng(0)
    first = [" ".join(rng.choice(words, 5)) for _ in range(24)]
    second = [" ".join(rng.choice(words, 5)) for _ in range(24)]
    return STSPairs(first, second, rng.uniform(0, 5, 24), name="tiny")


def weights(folder) -> dict[str, np.ndarray]:
    return load_file(str(folder / "model.safetensors"))


def config(**changes) -> EncoderTrainConfig:
    return EncoderTrainConfig(**({"batch_size": 8, "max_length": 16, "lr": 1e-3} | changes))


def test_cosent_training_exports_a_model_encoder_loads(tmp_path, tiny_bert_dir, labelled):
    history = train_encoder(labelled, tmp_path / "out", config(epochs=2), init=tiny_bert_dir, dev=labelled)
    assert history["steps"] == 6
    # The starting model is evaluated too, and step 1 (= eval interval 3 halved: the geometric early schedule).
    assert [e["step"] for e in history["evals"]] == [0, 1, 3, 6]
    best = max(e["dev_spearman"] for e in history["evals"])
    assert history["best_dev_spearman"] == best
    encoder = Encoder(str(tmp_path / "out"))
    assert encoder.pooling.value == "mean" and encoder.encode(["a man"]).shape == (1, 32)
    assert encoder.max_length == 64  # the starting model's inference length, not the training max_length of 16
    saved = json.loads((tmp_path / "out" / "semspace_training.json").read_text(encoding="utf-8"))
    assert saved["config"]["objective"] == "cosent" and len(saved["losses"]) == 6


def test_training_changes_the_weights_and_cls_pooling_is_recorded(tmp_path, tiny_bert_dir, labelled):
    train_encoder(labelled, tmp_path / "out", config(pooling="cls", max_steps=2), init=tiny_bert_dir)
    after, before = weights(tmp_path / "out"), weights(tiny_bert_dir)
    assert any(not np.allclose(after[k], before[k]) for k in before)
    assert Encoder(str(tmp_path / "out")).pooling.value == "cls"


@pytest.mark.parametrize(
    "changes",
    [
        {"objective": "simcse"},
        {"objective": "simcse", "chunk_size": 3, "rdrop_alpha": 1.0},
        {"objective": "pairs", "symmetric": True},
        {"objective": "mse", "rdrop_alpha": 4.0},
        {"objective": "cosent", "chunk_size": 2, "dropout": 0.3},
        {"objective": "angle"},
        {"objective": "angle", "chunk_size": 3, "rdrop_alpha": 1.0, "angle_scale": 20.0},
        {"objective": "cosent-mse", "mse_weight": 5.0},
    ],
)
def test_every_objective_and_option_trains(tmp_path, tiny_bert_dir, labelled, changes):
    if changes["objective"] == "simcse":
        data = TrainingSet([labelled.sentences1])
    elif changes["objective"] == "pairs":
        data = TrainingSet([labelled.sentences1, labelled.sentences2, labelled.sentences2[::-1]])
    else:
        data = TrainingSet.from_pairs(labelled)
    history = train_encoder(data, tmp_path / "out", config(max_steps=2, **changes), init=tiny_bert_dir)
    assert history["steps"] == 2 and all(np.isfinite(history["losses"]))


def test_final_model_is_kept_next_to_the_best_and_early_steps_are_evaluated(tmp_path, tiny_bert_dir, labelled):
    settings = config(epochs=4, eval_steps=8, eval_early=2)  # 12 steps: early evaluations at 2 and 4
    history = train_encoder(labelled, tmp_path / "out", settings, init=tiny_bert_dir, dev=labelled, keep_final=True)
    assert [e["step"] for e in history["evals"]] == [0, 2, 4, 8, 12]
    assert history["final_dev_spearman"] == history["evals"][-1]["dev_spearman"]
    final, best = tmp_path / "out" / "final", tmp_path / "out"
    vector = Encoder(str(final)).encode(["a man"])
    if history["best_step"] == 12:
        assert np.allclose(vector, Encoder(str(best)).encode(["a man"]), atol=1e-6)
    else:
        assert not np.allclose(vector, Encoder(str(best)).encode(["a man"]), atol=1e-6)


def test_interrupted_run_resumes_to_the_same_weights(tmp_path, tiny_bert_dir, labelled):
    settings = config(epochs=2, objective="simcse", eval_steps=2)
    data = TrainingSet([labelled.sentences1])
    train_encoder(data, tmp_path / "straight", settings, init=tiny_bert_dir)

    def stop_at_step_4(step, loss):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_encoder(data, tmp_path / "resumed", settings, init=tiny_bert_dir, on_step=stop_at_step_4)
    assert json.loads((tmp_path / "resumed" / "checkpoints" / "last.json").read_text())["step"] == 4
    assert len(list((tmp_path / "resumed" / "checkpoints").glob("step-*"))) == 1  # older checkpoints removed
    state = json.loads(next((tmp_path / "resumed" / "checkpoints").glob("step-*/state.json")).read_text())
    assert state["format"] == "semspace-train-checkpoint" and state["step"] == 4 and state["semspace_version"]
    history = train_encoder(data, tmp_path / "resumed", settings, init=tiny_bert_dir)
    assert history["steps"] == 6 and len(history["losses"]) == 6
    straight, resumed = weights(tmp_path / "straight"), weights(tmp_path / "resumed")
    assert all(np.allclose(straight[k], resumed[k], atol=1e-6) for k in straight)


def test_resume_with_other_settings_is_refused(tmp_path, tiny_bert_dir, labelled):
    train_encoder(labelled, tmp_path / "out", config(max_steps=1), init=tiny_bert_dir)
    with pytest.raises(InvalidParameterError, match=r"other settings.*lr"):
        train_encoder(labelled, tmp_path / "out", config(max_steps=1, lr=5e-4), init=tiny_bert_dir)
    train_encoder(labelled, tmp_path / "out", config(max_steps=1, lr=5e-4), init=tiny_bert_dir, resume=False)


def test_lora_trains_adapters_and_exports_a_plain_merged_model(tmp_path, tiny_bert_dir, labelled):
    pytest.importorskip("peft")
    train_encoder(labelled, tmp_path / "out", config(max_steps=2, lora_rank=4), init=tiny_bert_dir)
    after, before = weights(tmp_path / "out"), weights(tiny_bert_dir)
    assert set(after) == set(before)  # merged: no lora_A / lora_B keys
    changed = [k for k in before if not np.allclose(after[k], before[k])]
    assert changed and all("query" in k or "value" in k for k in changed)
    Encoder(str(tmp_path / "out")).encode(["a dog"])


@pytest.mark.parametrize(
    ("data_columns", "changes", "message"),
    [
        (2, {"objective": "simcse"}, "single sentences"),
        (1, {"objective": "cosent"}, "labelled pairs"),
        (2, {"objective": "nope"}, "objective"),
        (2, {"batch_size": 1}, "batch_size"),
        (2, {"pooling": "first-last-avg"}, "mean and cls"),
        (1, {"objective": "angle"}, "labelled pairs"),
        (2, {"eval_early": -1}, "eval_early"),
        (2, {"angle_scale": 0.0}, "angle_scale"),
    ],
)
def test_bad_settings_raise(tmp_path, tiny_bert_dir, labelled, data_columns, changes, message):
    data = TrainingSet.from_pairs(labelled) if data_columns == 2 else TrainingSet([labelled.sentences1])
    with pytest.raises(InvalidParameterError, match=message):
        train_encoder(data, tmp_path / "out", config(**changes), init=tiny_bert_dir)


def test_damaged_checkpoint_is_a_clear_error(tmp_path, tiny_bert_dir, labelled):
    train_encoder(labelled, tmp_path / "out", config(max_steps=1), init=tiny_bert_dir)
    folder = next((tmp_path / "out" / "checkpoints").glob("step-*"))
    (folder / "optimizer.safetensors").write_bytes(b"truncated")
    with pytest.raises(ArtifactError, match="Cannot resume"):
        train_encoder(labelled, tmp_path / "out", config(max_steps=1), init=tiny_bert_dir)


@pytest.mark.parametrize(
    ("every", "early", "total", "expected"),
    [
        (90, 3, 360, [11, 22, 45, 90, 180, 270, 360]),
        (3, 0, 7, [3, 6, 7]),
        (8, 4, 5, [1, 2, 4, 5]),  # early points past the end are dropped; the last step is always evaluated
        (1, 4, 3, [1, 2, 3]),
    ],
)
def test_eval_schedule_is_geometric_near_the_start(every, early, total, expected):
    assert eval_schedule(every, early, total) == expected
