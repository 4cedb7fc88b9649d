"""`semspace dims` / `semspace drift` and the dimension report behind them.

The commands run in-process on the real app with typer's CliRunner (errors arrive as `result.exception`, which
`semspace.cli.main` turns into one stderr line and exit code 2); the subprocess test at the end checks that line.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from semspace.analysis.dims import default_ks, dimension_report, format_dims_report, plot_dims
from semspace.cli import app as semspace_app
from semspace.errors import (
    DatasetFormatError,
    DatasetNotFoundError,
    InvalidInputError,
    InvalidParameterError,
    SingularCovarianceError,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    return semspace_app


def invoke(app, *args):
    return CliRunner().invoke(app, [str(a) for a in args])


def anisotropic(n: int, d: int, seed: int = 0, shift: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)) * np.geomspace(3, 0.01, d) + shift).astype(np.float32)


@pytest.fixture()
def npy(tmp_path):
    def write(name, array):
        path = tmp_path / name
        np.save(path, array)
        return path

    return write


def test_dimension_report_without_dev_pairs():
    X = anisotropic(500, 24)
    report = dimension_report(X)
    assert report["n_points"] == 500 and report["dim"] == 24
    assert report["entropy_dimension"] == 52 and report["jl_dimension"]["0.5"] == 597
    values = np.asarray(report["eigenvalues"])
    assert values.shape == (24,) and np.all(np.diff(values) <= 0) and values[-1] >= 0
    assert 1 <= report["variance_k"]["0.9"] <= report["variance_k"]["0.95"] <= report["variance_k"]["0.99"] <= 24
    assert "spearman" not in report
    json.dumps(report)
    text = format_dims_report(report)
    assert "8.33 ln N" in text and "n >= 52" in text and "more than d" in text
    assert default_ks(24) == [8, 16, 24] and default_ks(384)[-2:] == [256, 384]


def test_dimension_report_with_dev_pairs_and_plot(tmp_path):
    rng = np.random.default_rng(1)
    X = anisotropic(400, 32)
    a = X[:100] + rng.normal(size=(100, 32)).astype(np.float32) * 0.1
    b = X[100:200]
    gold = np.asarray([np.dot(u, v) for u, v in zip(a, b, strict=True)])
    report = dimension_report(X, (a, b, gold), ks=[4, 8, 32], seed=3)
    assert report["ks"] == [4, 8, 32]
    assert set(report["spearman"]) == {"pca", "whitening", "rotation", "random"}
    assert all(len(curve) == 3 for curve in report["spearman"].values())
    # At full k, PCA (β=1, γ=0) and β=γ=0 are rotations (+ a shift for PCA): β=γ=0 keeps every cosine.
    assert report["spearman"]["rotation"][-1] == pytest.approx(report["raw_spearman"], abs=1e-6)
    assert "dev Spearman" in format_dims_report(report)
    path = plot_dims(report, tmp_path / "sub" / "dims.png")
    assert path.read_bytes().startswith(PNG_MAGIC)
    with pytest.raises(InvalidParameterError, match=r"The 'ks' parameter of dimension_report must be"):
        dimension_report(X, (a, b, gold), ks=[0, 8])
    with pytest.raises(InvalidInputError, match="must match"):
        dimension_report(X, (a, b[:50], gold))
    with pytest.raises(InvalidInputError, match="at least 2"):
        dimension_report(X[:1])


def test_dims_command_on_npy(app, npy, tmp_path):
    path = npy("x.npy", anisotropic(300, 16))
    result = invoke(app, "dims", path, "--out", tmp_path / "plots", "--jl-eps", "0.5")
    assert result.exit_code == 0, result.output
    assert "300 x 16" in result.output and "n >= 48" in result.output and "JL bound" in result.output
    assert (tmp_path / "plots" / "dims.png").read_bytes().startswith(PNG_MAGIC)
    result = invoke(app, "dims", path, "--out", tmp_path / "plots", "--json")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["n_points"] == 300 and set(report["jl_dimension"]) == {"0.1", "0.2", "0.5"}


def test_drift_command_on_npy(app, npy, tmp_path):
    a = npy("a.npy", anisotropic(300, 8, seed=1))
    b = npy("b.npy", anisotropic(200, 8, seed=2, shift=2.5))
    result = invoke(app, "drift", a, b, "--json", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["kl_ab"] > 0 and report["w2"] > 0 and report["names"] == [str(a), str(b)]
    assert (tmp_path / "drift_spectra.png").read_bytes().startswith(PNG_MAGIC)
    text = invoke(app, "drift", a, b).output
    assert "KL(A‖B)" in text and "Bhattacharyya" in text and "isotropy" in text
    same = json.loads(invoke(app, "drift", a, a, "--json").stdout.strip().splitlines()[-1])
    assert same["kl_ab"] == pytest.approx(0, abs=1e-9)


def test_drift_singular_needs_eps(app, npy):
    a = npy("a.npy", anisotropic(5, 8, seed=1))
    b = npy("b.npy", anisotropic(200, 8, seed=2))
    result = invoke(app, "drift", a, b)
    assert isinstance(result.exception, SingularCovarianceError)
    assert "--eps" in str(result.exception) and "a.npy" in str(result.exception)
    result = invoke(app, "drift", a, b, "--eps", "1e-3")
    assert result.exit_code == 0, result.output
    assert "note:" in result.output and "rank-deficient" in result.output
    assert isinstance(invoke(app, "drift", a, b, "--eps", "-1").exception, InvalidParameterError)


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (b"definitely not numpy", DatasetFormatError, "not a readable .npy"),
        (None, DatasetFormatError, "not a readable .npy"),  # truncated
        (np.ones(5), InvalidInputError, "2-D float"),
        (np.ones((4, 3), dtype=np.int64), InvalidInputError, "2-D float"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), InvalidInputError, "NaN or inf"),
        (np.ones((1, 3)), InvalidInputError, "at least 2 vectors"),
        (np.array([{"a": 1}, {"b": 2}], dtype=object), DatasetFormatError, "not a readable .npy"),
    ],
)
def test_bad_npy_inputs(app, npy, tmp_path, content, error, message):
    if content is None:
        full = npy("full.npy", np.ones((50, 8)))
        path = tmp_path / "bad.npy"
        path.write_bytes(full.read_bytes()[:200])
    elif isinstance(content, bytes):
        path = tmp_path / "bad.npy"
        path.write_bytes(content)
    else:
        path = tmp_path / "bad.npy"
        np.save(path, content, allow_pickle=True)
    for args in (("dims", path), ("drift", path, path)):
        result = invoke(app, *args)
        assert isinstance(result.exception, error), result.exception
        assert message in str(result.exception) and "bad.npy" in str(result.exception)


def test_other_bad_inputs(app, npy, tmp_path):
    assert isinstance(invoke(app, "dims", tmp_path / "nope.npy").exception, DatasetNotFoundError)
    (tmp_path / "v.bin").write_bytes(b"x")
    exc = invoke(app, "dims", tmp_path / "v.bin").exception
    assert isinstance(exc, InvalidParameterError) and "Collections as inputs come later" in str(exc)
    x = npy("x.npy", anisotropic(50, 4))
    (tmp_path / "dev.tsv").write_text("a\tb\t1\n", encoding="utf-8")
    exc = invoke(app, "dims", x, "--dev-pairs", tmp_path / "dev.tsv").exception
    assert isinstance(exc, InvalidParameterError) and "--model" in str(exc)
    assert isinstance(invoke(app, "dims", x, "--ks", "8,x").exception, InvalidParameterError)
    assert isinstance(invoke(app, "drift", x, npy("y.npy", anisotropic(50, 5))).exception, InvalidInputError)
    (tmp_path / "one.txt").write_text("only one\n", encoding="utf-8")
    assert isinstance(invoke(app, "dims", tmp_path / "one.txt").exception, InvalidInputError)


def test_text_inputs_and_dev_pairs_with_a_tiny_model(app, tmp_path, tiny_bert_dir):
    words = ["a man is playing guitar", "a woman eats food", "the dog is running in the park", "a cat eats"]
    words += ["a plane is taking off", "a man is playing the flute", "a big dog", "a small cat is running"]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(words * 5) + "\n", encoding="utf-8")
    pairs = [(words[i], words[(i + j) % len(words)], str(float(j))) for i in range(8) for j in range(3)]
    dev = tmp_path / "dev.data"
    dev.write_text("\n".join("\t".join(p) for p in pairs) + "\n", encoding="utf-8")
    result = invoke(app, "dims", corpus, "--model", tiny_bert_dir, "--dev-pairs", dev, "--out", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["dim"] == 32 and report["ks"] == [8, 16, 32] and "texts encoded with" in report["source"]
    assert set(report["spearman"]) == {"pca", "whitening", "rotation", "random"}
    # The same model, given as .npy + --model, gives the same curves.
    from semspace.encode import Encoder

    vectors = tmp_path / "corpus.npy"
    np.save(vectors, Encoder(str(tiny_bert_dir)).encode(words * 5))
    again = invoke(app, "dims", vectors, "--model", tiny_bert_dir, "--dev-pairs", dev, "--out", tmp_path, "--json")
    curves = json.loads(again.stdout.strip().splitlines()[-1])["spearman"]
    for method, curve in report["spearman"].items():
        assert curves[method] == pytest.approx(curve, abs=1e-6)
    # Drift between two text files encoded on the fly.
    other = tmp_path / "other.txt"
    other.write_text("\n".join(reversed(words * 5)) + "\n", encoding="utf-8")
    result = invoke(app, "drift", corpus, other, "--model", tiny_bert_dir, "--eps", "1e-3", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["kl_ab"] == pytest.approx(0, abs=1e-6)


def test_real_cli_one_line_error(tmp_path):
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"nope")
    result = subprocess.run(
        [sys.executable, "-m", "semspace", "dims", str(bad)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "not a readable .npy" in lines[0] and "Traceback" not in result.stderr
