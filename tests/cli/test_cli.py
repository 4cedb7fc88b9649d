"""The CLI as a user runs it: real subprocesses, exit codes, one-line errors on stderr."""

import json
import subprocess
import sys

import numpy as np
import pytest


def semspace(*args, stdin=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "semspace", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def one_line_error(result):
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_missing_input_file(tmp_path):
    line = one_line_error(semspace("encode", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "o.npy")))
    assert "nope.txt" in line


def test_bad_output_suffix(tmp_path):
    src = tmp_path / "t.txt"
    src.write_text("hello\n", encoding="utf-8")
    assert ".npy or .jsonl" in one_line_error(semspace("encode", str(src), "-o", str(tmp_path / "o.csv")))


def test_unknown_model_and_pooling(tmp_path, tiny_bert_dir):
    src = tmp_path / "t.txt"
    src.write_text("hello\n", encoding="utf-8")
    assert "Unknown model" in one_line_error(
        semspace("encode", str(src), "-o", str(tmp_path / "o.npy"), "--model", "no_such_model")
    )
    assert "Unknown pooling" in one_line_error(
        semspace(
            "encode",
            str(src),
            "-o",
            str(tmp_path / "o.npy"),
            "--model",
            str(tiny_bert_dir),
            "--pooling",
            "max",
        )
    )


def test_empty_line_in_input(tmp_path, tiny_bert_dir):
    src = tmp_path / "t.txt"
    src.write_text("a dog\n\na cat\n", encoding="utf-8")
    assert ":2: empty line" in one_line_error(
        semspace("encode", str(src), "-o", str(tmp_path / "o.npy"), "--model", str(tiny_bert_dir))
    )


def test_encode_stdin_to_npy_and_jsonl(tmp_path, tiny_bert_dir):
    out = tmp_path / "v.npy"
    result = semspace("encode", "-", "-o", str(out), "--model", str(tiny_bert_dir), stdin="a dog\na cat\n")
    assert result.returncode == 0, result.stderr
    assert np.load(out).shape == (2, 32)
    out_jsonl = tmp_path / "v.jsonl"
    result = semspace("encode", "-", "-o", str(out_jsonl), "--model", str(tiny_bert_dir), stdin="a dog\n")
    rows = [json.loads(line) for line in out_jsonl.read_text(encoding="utf-8").splitlines()]
    assert rows[0]["text"] == "a dog" and len(rows[0]["embedding"]) == 32


def test_encode_without_output_writes_json_lines_to_stdout(tiny_bert_dir):
    result = semspace("encode", "-", "--model", str(tiny_bert_dir), stdin="a dog\na cat\n")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["a dog", "a cat"] and len(rows[0]["embedding"]) == 32


@pytest.mark.parametrize("args", [["index", "search", "--help"], ["encode", "--help"], ["train", "cosent", "--help"]])
def test_help_writes_flags_without_a_value_type(args):
    """`--json` is a flag: the help must not read `--json <bool>` as if it took a value (typer 0.2x rich panels)."""
    result = semspace(*args)
    assert result.returncode == 0 and "<bool>" not in result.stdout
    assert "--dev " not in result.stdout  # train's former --dev is a hidden alias of --dev-pairs


def test_eval_sts_malformed_dataset(tmp_path):
    root = tmp_path / "data" / "senteval_cn" / "PAWSX"
    root.mkdir(parents=True)
    (root / "PAWSX.valid.data").write_text("a\tb\t1\n", encoding="utf-8")
    (root / "PAWSX.test.data").write_text("a\tb\n", encoding="utf-8")
    line = one_line_error(
        semspace(
            "eval",
            "sts",
            "--tasks",
            "PAWSX",
            "--data-root",
            str(tmp_path / "data"),
            "--cache-dir",
            str(tmp_path / "c"),
            "--out",
            str(tmp_path / "o"),
        )
    )
    assert "PAWSX.test.data:1" in line


def test_unknown_task_and_preset(tmp_path):
    assert "Unknown STS task" in one_line_error(
        semspace("eval", "sts", "--tasks", "STS99", "--data-root", str(tmp_path))
    )
    assert "Unknown preset" in one_line_error(semspace("eval", "sts", "--preset", "nope"))


def test_help_exits_zero():
    result = semspace("--help")
    assert result.returncode == 0 and "demo" in result.stdout


def test_version():
    from semspace import __version__

    result = semspace("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"semspace {__version__}"


@pytest.mark.slow
def test_encode_bundled_model(tmp_path):
    out = tmp_path / "v.npy"
    result = semspace("encode", "-", "-o", str(out), stdin="A plane is taking off.\nA man plays a flute.\n")
    assert result.returncode == 0, result.stderr
    assert np.load(out).shape == (2, 384)


@pytest.mark.slow
def test_demo_runs_offline(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "semspace", "demo"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "raw" in result.stdout and "tuned" in result.stdout and "Most similar" in result.stdout


def test_info_explains_the_engine_auto_chose(tmp_path, tiny_bert_dir, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("SEMSPACE_CACHE", str(tmp_path / "cache"))
    result = semspace("info", "--model", str(tiny_bert_dir), "--backend", "auto")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    engine = info["engine"]
    assert info["dim"] == 32 and engine["engine"] == engine["auto"]["choice"] and engine["cpu"]
    assert [row["verdict"] for row in engine["auto"]["considered"]].count("chosen") == 1
