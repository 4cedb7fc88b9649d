"""`semspace train simcse|cosent|pairs` as a user runs it: real subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from semspace.encode import Encoder


def semspace(*args):
    return subprocess.run([sys.executable, "-m", "semspace.cli", *args], capture_output=True, text=True, timeout=600)


def one_line_error(result) -> str:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture
def files(tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(
        "".join(f"a man {w}\tthe {w} dog\t{i % 5}\n" for i, w in enumerate(["eats", "plays", "runs", "is"] * 3)),
        encoding="utf-8",
    )
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("\n".join(f"a {w} in the park" for w in ["man", "dog", "cat", "woman"] * 3), encoding="utf-8")
    triples = tmp_path / "triples.jsonl"
    triples.write_text(
        "\n".join(json.dumps({"anchor": f"a {w}", "positive": f"the {w}", "negative": "a plane"}) for w in "abcdef"),
        encoding="utf-8",
    )
    return {"pairs": pairs, "sentences": sentences, "triples": triples}


def test_train_cosent_with_dev_file(tmp_path, tiny_bert_dir, files):
    out = tmp_path / "model"
    result = semspace(
        "train", "cosent", str(files["pairs"]), str(out), "--model", str(tiny_bert_dir),
        "--dev-pairs", str(files["pairs"]), "--batch-size", "4", "--max-steps", "2", "--max-length", "16",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "2 steps on 12 examples; best dev Spearman" in result.stdout
    assert Encoder(str(out)).encode(["a man"]).shape == (1, 32)


@pytest.mark.parametrize("loss", ["angle", "cosent-mse"])
def test_train_angle_and_cosent_mse_keep_the_final_model(tmp_path, tiny_bert_dir, files, loss):
    out = tmp_path / "model"
    result = semspace(
        "train", "cosent", str(files["pairs"]), str(out), "--model", str(tiny_bert_dir), "--dev", str(files["pairs"]),
        "--loss", loss, "--batch-size", "4", "--max-steps", "2", "--max-length", "16", "--keep-final",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "best dev Spearman" in result.stdout and "final dev Spearman" in result.stdout
    assert json.loads((out / "semspace_training.json").read_text(encoding="utf-8"))["config"]["objective"] == loss
    assert Encoder(str(out / "final")).encode(["a man"]).shape == (1, 32)


@pytest.mark.parametrize(("command", "data"), [("simcse", "sentences"), ("pairs", "triples")])
def test_train_simcse_and_pairs(tmp_path, tiny_bert_dir, files, command, data):
    out = tmp_path / "model"
    result = semspace(
        "train", command, str(files[data]), str(out), "--model", str(tiny_bert_dir), "--batch-size", "4",
        "--chunk-size", "2", "--epochs", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "final model" in result.stdout and (out / "modules.json").is_file()


def test_train_errors_are_one_line(tmp_path, tiny_bert_dir, files):
    model = ["--model", str(tiny_bert_dir)]
    assert "--loss applies to 'train cosent' only" in one_line_error(
        semspace("train", "simcse", str(files["sentences"]), str(tmp_path / "o"), "--loss", "mse", *model)
    )
    assert "no such file" in one_line_error(semspace("train", "cosent", str(tmp_path / "none.tsv"), str(tmp_path)))
    broken = tmp_path / "broken.tsv"
    broken.write_text("anchor\tpositive\nonly one field\n", encoding="utf-8")
    assert "broken.tsv:2: expected anchor, positive[, negative]; got 1 fields" in one_line_error(
        semspace("train", "pairs", str(broken), str(tmp_path / "o"), *model)
    )
    assert "Unknown model" in one_line_error(
        semspace("train", "cosent", str(files["pairs"]), str(tmp_path / "o"), "--model", "./no-such-model")
    )
    assert "'lr' parameter" in one_line_error(
        semspace("train", "cosent", str(files["pairs"]), str(tmp_path / "o"), "--lr", "5", *model)
    )


def test_cross_encoder_both_orders_from_the_cli(tmp_path, files):
    """The recipe's flags reach the trainer: both orders double the steps; dev is evaluated every --eval-steps."""
    out = tmp_path / "ce"
    args = ["--train", str(files["pairs"]), "--dev", str(files["pairs"]), "--batch-size", "6", "--eval-steps", "2"]
    result = semspace("train", "cross-encoder", str(out), *args, "--both-orders")
    assert result.returncode == 0, result.stderr
    history = json.loads((out / "semspace_training.json").read_text(encoding="utf-8"))
    # 12 pairs × 2 orders / batch 6 = 4 steps; evaluations at 1 (early halving), 2 and 4.
    assert history["steps"] == 4 and history["config"]["both_orders"] is True
    assert [e["step"] for e in history["evals"]] == [1, 2, 4]
