"""Static models (issue 26): distil a tiny teacher, save a folder that semspace, model2vec and
sentence-transformers read alike, fold a whitening into the table exactly, and run the folder wherever an encoder
goes (collections, the service, the CLI)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

pytest.importorskip("model2vec")
pytest.importorskip("skeletoken")

from model2vec import StaticModel
from support import WORDS as BASE_WORDS
from support import save_tiny_bert

from semspace.encode import Encoder, Pooling, distill, load_static, save_static
from semspace.encode.static import (
    PEER_NOTES,
    _not_in_pattern,
    corpus_tokens,
    is_static_folder,
    mean_vectors,
    static_info,
)
from semspace.errors import (
    InvalidParameterError,
    ModelLoadError,
    NotFittedError,
    UnknownPoolingError,
)
from semspace.transform import Whitening, fold_whitening, whiten_static

# The service corpus's words, and more so the distilled vocabulary has plurals and sub-words to prune or keep.
WORDS = [
    *BASE_WORDS,
    "are",
    "on",
    "child",
    "girl",
    "boy",
    "horse",
    "rides",
    "ball",
    "kicks",
    "red",
    "blue",
    "car",
    "drives",
    "road",
    "##s",
    "##ing",
    "##ed",
]
TEXTS = [
    "a man is playing guitar",
    "a woman eats food",
    "the dog is running in the park",
    "a big plane is taking off",
    "a girl rides a horse",
    "a boy kicks a red ball",
    "a man drives a blue car on the road",
    "the cat eats",
    "a child is playing the flute",
    "small dogs are running",
]


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """A 2-layer, hidden-32 random BERT whose WordPiece vocabulary is this file's WORDS."""
    return save_tiny_bert(tmp_path_factory.mktemp("teacher"), words=WORDS)


@pytest.fixture(scope="module")
def raw_model(teacher_dir):
    return distill(str(teacher_dir), k=16)


@pytest.fixture(scope="module")
def static_dir(raw_model, tmp_path_factory):
    return save_static(raw_model, tmp_path_factory.mktemp("static") / "model")


def st_encode(path, texts):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu").encode(texts, convert_to_numpy=True)


# -- distillation and the folder ---------------------------------------------------------------------------------
def test_distill_makes_a_k_dim_table_of_the_teachers_vocabulary(raw_model):
    assert raw_model.embedding.shape == (len(raw_model.tokens), 16)
    assert raw_model.embedding.dtype == np.float32
    assert {"man", "guitar", "##ing"} <= set(raw_model.tokens)
    assert raw_model.normalize


def test_saved_folder_loads_identically_in_semspace_model2vec_and_sentence_transformers(static_dir, teacher_dir):
    assert is_static_folder(static_dir)
    encoder = Encoder(str(static_dir))
    assert encoder.is_static and encoder.backend == "static" and encoder.dim == 16
    ours = encoder.encode(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-6)  # the folder's own Normalize
    np.testing.assert_allclose(StaticModel.from_pretrained(static_dir).encode(TEXTS), ours, atol=1e-6)
    np.testing.assert_allclose(st_encode(static_dir, TEXTS), ours, atol=1e-6)
    info = static_info(static_dir)
    assert info["teacher"] == str(teacher_dir) and info["teacher_pooling"] == Pooling.LAST_AVG.value
    assert info["k"] == 16 and info["dim"] == 16 and info["peer_notes"] == list(PEER_NOTES)


def test_unnormalised_folder_has_no_normalize_module_and_peers_agree(teacher_dir, tmp_path):
    model = distill(str(teacher_dir), k=8, normalize=False)
    path = save_static(model, tmp_path / "raw")
    modules = json.loads((path / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["StaticEmbedding"]
    ours = Encoder(str(path)).encode(TEXTS)
    np.testing.assert_allclose(ours, mean_vectors(model, TEXTS), atol=1e-6)
    np.testing.assert_allclose(st_encode(path, TEXTS), ours, atol=1e-6)


def test_unknown_tokens_are_where_the_peers_differ(static_dir):
    """Documented in PEER_NOTES: model2vec (and so semspace) drops [UNK], StaticEmbedding averages it in."""
    text = ["a man is playing xylophone"]  # 'xylophone' is not in the vocabulary
    ours = Encoder(str(static_dir)).encode(text)
    np.testing.assert_allclose(StaticModel.from_pretrained(static_dir).encode(text), ours, atol=1e-6)
    assert not np.allclose(st_encode(static_dir, text), ours, atol=1e-3)
    assert "unknown token" in PEER_NOTES[0]


def test_save_refuses_a_non_empty_folder_unless_overwrite(raw_model, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("x")
    with pytest.raises(InvalidParameterError, match="not empty"):
        save_static(raw_model, tmp_path / "m")
    save_static(raw_model, tmp_path / "m", overwrite=True)
    assert not (tmp_path / "m" / "keep.txt").exists() and is_static_folder(tmp_path / "m")
    # model2vec's config.json stays its own
    assert "semspace" not in json.loads((tmp_path / "m" / "config.json").read_text())


def test_static_model_has_no_token_embeddings(static_dir):
    with pytest.raises(InvalidParameterError, match="pooled vectors only"):
        Encoder(str(static_dir)).encode_tokens(["a dog"])


def test_encoder_spec_reopens_the_static_model_and_cache_key_tracks_content(static_dir):
    encoder = Encoder(str(static_dir))
    again = Encoder.from_spec(encoder.spec)
    np.testing.assert_array_equal(again.encode(TEXTS[:3]), encoder.encode(TEXTS[:3]))
    assert "static:" in encoder.cache_key()
    assert encoder.token_lengths(["a man is playing guitar"]) == [5]
    with pytest.raises(UnknownPoolingError):
        Encoder(str(static_dir), pooling="cls")
    with pytest.raises(InvalidParameterError, match="static"):
        Encoder(str(static_dir), backend="onnx")


def test_distill_refuses_what_it_cannot_do(teacher_dir, static_dir):
    with pytest.raises(InvalidParameterError, match="'k'"):
        distill(str(teacher_dir), k=64)  # the teacher is 32-d
    with pytest.raises(ModelLoadError, match="transformers teacher"):
        distill(str(static_dir))
    with pytest.raises(InvalidParameterError, match="'last-avg' or 'cls'"):
        distill(str(teacher_dir), pooling="first-last-avg")
    with pytest.raises(ModelLoadError):
        load_static(teacher_dir)


def test_cls_pooling_teacher(teacher_dir):
    model = distill(str(teacher_dir), k=8, pooling="cls")
    assert model.embedding.shape[1] == 8


# -- corpus pruning ----------------------------------------------------------------------------------------------
def test_not_in_pattern_matches_exactly_the_strings_outside_the_set():
    kept = {"a", "ab", "abc", "b", "##s", "[UNK]", "x.y", "日本"}
    pattern = re.compile(_not_in_pattern(kept))
    for s in [*kept, "", "abcd", "ac", "c", "##", "#s", "xzy", "x.", "日", "日本語", "ba"]:
        assert (pattern.match(s) is not None) == (s not in kept), s


def test_corpus_pruning_keeps_the_corpus_tokens_and_their_segmentation(teacher_dir, raw_model):
    from transformers import AutoTokenizer

    corpus = TEXTS[:3]
    pruned = distill(str(teacher_dir), k=4, corpus=corpus)
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    used = corpus_tokens(tokenizer, corpus) - {"[CLS]", "[SEP]", "[MASK]"}
    assert set(pruned.tokens) == used
    assert len(pruned.tokens) < len(raw_model.tokens)
    for text in corpus:  # a corpus text is split exactly as by the full vocabulary
        full = [raw_model.tokens[i] for i in raw_model.tokenize([text])[0]]
        assert [pruned.tokens[i] for i in pruned.tokenize([text])[0]] == full


# -- whitening folded into the table -----------------------------------------------------------------------------
@pytest.mark.parametrize(("beta", "gamma", "k"), [(1.0, 1.0, None), (1.0, 0.5, 8), (0.0, 1.0, 12)])
def test_folded_whitening_equals_whitening_the_raw_vectors(raw_model, beta, gamma, k):
    fit = mean_vectors(raw_model, TEXTS * 2 + [w for w in WORDS if not w.startswith("#")])
    whitening = Whitening(n_components=k, beta=beta, gamma=gamma).fit(fit.astype(np.float64))
    folded = fold_whitening(raw_model, whitening)
    unfolded = whitening.transform(mean_vectors(raw_model, TEXTS).astype(np.float64))
    got = mean_vectors(folded, TEXTS)
    assert got.shape == (len(TEXTS), k or 16)
    np.testing.assert_allclose(got, unfolded, rtol=1e-5, atol=1e-5 * np.abs(unfolded).max())
    assert raw_model.embedding.shape[1] == 16  # the raw model is unchanged


def test_folded_folder_is_read_alike_by_every_peer(raw_model, tmp_path):
    fit = mean_vectors(raw_model, TEXTS + [w for w in WORDS if not w.startswith("#")])
    whitening = Whitening(beta=1.0, gamma=0.5).fit(fit)
    path = save_static(fold_whitening(raw_model, whitening), tmp_path / "folded")
    ours = Encoder(str(path)).encode(TEXTS)
    expected = whitening.transform(mean_vectors(raw_model, TEXTS).astype(np.float64))
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    np.testing.assert_allclose(StaticModel.from_pretrained(path).encode(TEXTS), ours, atol=1e-6)
    np.testing.assert_allclose(st_encode(path, TEXTS), ours, atol=1e-6)
    assert static_info(path)["whitening"]["beta"] == 1.0


def test_fold_refuses_unfitted_mismatched_and_vocabulary_quantized(raw_model):
    with pytest.raises(NotFittedError):
        fold_whitening(raw_model, Whitening())
    with pytest.raises(Exception, match="fitted on 4-d"):
        fold_whitening(raw_model, Whitening().fit(np.random.default_rng(0).normal(size=(20, 4))))
    quantized = StaticModel(
        vectors=raw_model.embedding,
        tokenizer=raw_model.tokenizer,
        weights=np.ones(len(raw_model.tokens)),
        normalize=True,
    )
    whitening = Whitening().fit(mean_vectors(raw_model, TEXTS * 3))
    with pytest.raises(InvalidParameterError, match="vocabulary quantization"):
        fold_whitening(quantized, whitening)


def test_whiten_static_never_below_raw_on_dev_and_folds_its_choice(raw_model):
    rng = np.random.default_rng(0)
    a = [TEXTS[i] for i in rng.integers(0, len(TEXTS), 40)]
    b = [TEXTS[i] for i in rng.integers(0, len(TEXTS), 40)]
    gold = rng.uniform(0, 5, 40)
    fit = TEXTS + [w for w in WORDS if not w.startswith("#")]  # more distinct texts than dimensions: full rank
    model, result = whiten_static(raw_model, fit, a, b, gold, rule="argmax")
    assert result.dev_spearman >= result.raw_dev_spearman
    if result.whitening is None:
        assert model is raw_model
    else:
        expected = result.whitening.transform(mean_vectors(raw_model, TEXTS).astype(np.float64))
        np.testing.assert_allclose(mean_vectors(model, TEXTS), expected, atol=1e-5 * np.abs(expected).max())
        assert model.config["semspace"]["whitening"]["rule"] == "argmax"


# -- everywhere an encoder goes ----------------------------------------------------------------------------------
def test_collection_over_a_static_model(static_dir, tmp_path):
    from semspace.search import Collection

    with Collection.create(tmp_path / "c", encoder=str(static_dir)) as coll:
        coll.add(TEXTS, ids=[f"d{i}" for i in range(len(TEXTS))])
        info = coll.info()
        assert info["static_model"]["static"] is True and info["static_model"]["k"] == 16
        assert coll.search("a man is playing guitar", k=1).ids == ["d0"]
    with Collection.open(tmp_path / "c") as coll:
        assert coll.encoder.is_static


def test_service_embeds_with_a_static_model_and_info_says_static(static_dir):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from semspace.service import create_app

    encoder = Encoder(str(static_dir))
    with TestClient(create_app(None, encoder=encoder), base_url="http://localhost") as http:
        assert http.get("/info").json()["model_type"]["embedding"]["static"] is True
        body = http.post("/v1/embeddings", json={"input": TEXTS[:2], "model": encoder.model_id}).json()
        got = np.array([d["embedding"] for d in body["data"]])
        np.testing.assert_allclose(got, encoder.encode(TEXTS[:2]), atol=1e-6)
        embedded = np.array(http.post("/embed", json={"texts": TEXTS[:2]}).json()["embeddings"])
        np.testing.assert_allclose(embedded, encoder.encode(TEXTS[:2]), atol=1e-6)


def test_cli_distill_with_folded_whitening_then_encode(teacher_dir, tmp_path, capsys):
    from semspace.cli.app import main

    fit = tmp_path / "fit.txt"
    fit.write_text("\n".join(TEXTS * 2) + "\n", encoding="utf-8")
    dev = tmp_path / "dev.tsv"
    rng = np.random.default_rng(1)
    rows = [f"{TEXTS[i]}\t{TEXTS[j]}\t{rng.uniform(0, 5):.2f}" for i, j in rng.integers(0, len(TEXTS), (30, 2))]
    dev.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "static"
    args = ["distill", "-o", str(out), "--model", str(teacher_dir), "--k", "8", "--whiten-fit", str(fit)]
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--dev-pairs", str(dev), "--rule", "argmax"])
    assert exit_.value.code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["path"] == str(out) and summary["dim"] <= 8
    assert summary["dev_spearman"]["whitened"] >= summary["dev_spearman"]["raw"]
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_:
        main(["encode", str(texts), "-o", str(tmp_path / "v.npy"), "--model", str(out)])
    assert exit_.value.code == 0
    np.testing.assert_allclose(np.load(tmp_path / "v.npy"), Encoder(str(out)).encode(TEXTS), atol=1e-6)
    with pytest.raises(SystemExit) as exit_:
        main(["distill", "-o", str(tmp_path / "x"), "--model", str(teacher_dir), "--whiten-fit", str(fit)])
    assert exit_.value.code == 2
    assert "--dev-pairs" in capsys.readouterr().err


def _awkward_texts(n: int) -> list[str]:
    """Texts with known words, unknown words ([UNK], dropped), nothing known (the zero vector), nothing at all, and
    more tokens than the model's max_length (truncated)."""
    base = [*TEXTS, "xylophone zither", "", "a man is playing xylophone", " ".join(WORDS[:30]) * 3]
    return [base[i % len(base)] + (" " + WORDS[i % len(WORDS)].lstrip("#") if i % 3 else "") for i in range(n)]


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_mean_vectors_are_model2vecs_encode(raw_model, monkeypatch, dtype):
    """The fast path (the word cache, one sparse product) gives model2vec's vectors: the unknown token dropped,
    the zero vector for no known token, model2vec's truncation, a float16 table's rounding, any chunking."""
    import copy

    from model2vec.model import quantize_model

    import semspace.encode.static as static

    model = quantize_model(copy.deepcopy(raw_model), quantize_to=dtype)
    model.max_length = 20  # the longest texts are cut (in characters, then in tokens), as by model2vec
    texts = _awkward_texts(300)
    expected = model.encode(texts, normalize=False, use_multiprocessing=False).astype(np.float32)
    nothing_known = [i for i, text in enumerate(texts) if text in ("", "xylophone zither")]
    assert nothing_known and not expected[nothing_known].any()  # the zero vector, in both
    np.testing.assert_allclose(mean_vectors(model, texts), expected, rtol=0, atol=1e-6)
    monkeypatch.setattr(static, "_CHUNK", 7)  # chunks, and each chunk's product split over threads
    monkeypatch.setattr(static, "_THREADED", 0)
    np.testing.assert_allclose(mean_vectors(model, texts), expected, rtol=0, atol=1e-6)
    assert mean_vectors(model, []).shape == (0, model.dim)


def test_mean_vectors_hands_quantized_vocabularies_to_model2vec(raw_model):
    import copy

    from model2vec.model import quantize_model

    model = quantize_model(copy.deepcopy(raw_model), vocabulary_quantization=8)
    texts = _awkward_texts(40)
    expected = model.encode(texts, normalize=False, use_multiprocessing=False).astype(np.float32)
    np.testing.assert_allclose(mean_vectors(model, texts), expected, rtol=0, atol=1e-6)


def test_static_encoder_batches_and_concurrent_callers(static_dir, teacher_dir):
    from concurrent.futures import ThreadPoolExecutor

    encoder = Encoder(str(static_dir))
    assert encoder.batch_size == 16_384 and Encoder(str(teacher_dir)).batch_size == 64
    assert Encoder(str(static_dir), batch_size=8).batch_size == 8
    expected = encoder.encode(TEXTS)
    with ThreadPoolExecutor(4) as pool:  # one backend shared by request threads, as in the service
        results = list(pool.map(lambda _: encoder.encode(TEXTS, batch_size=3), range(16)))
    for got in results:
        np.testing.assert_allclose(got, expected, atol=1e-6)


# -- the word cache ----------------------------------------------------------------------------------------------
AWKWARD_SPACING = [
    "a man\tis\nplaying  the   guitar ",
    " leading and trailing ",
    "control\x0bchars\x0cjoin\x1cwords\x85here",
    "other\xa0spaces\u3000and\u2028lines",
    "naïve café [UNK] x[UNK]y ,,, (a)",
    "中文 mixed 文本",
    "m" * 150 + " a word past WordPiece's limit",
    "",
    "   ",
]


@pytest.mark.parametrize("max_words", [500_000, 5])
def test_word_cache_gives_the_tokenizers_ids(raw_model, monkeypatch, max_words):
    """Word by word, remembered, the ids are the tokenizer's own: odd whitespace and control characters, unknown
    and over-long words, truncation (here at 20 tokens), a warm cache and one that keeps starting over."""
    import copy

    from semspace.encode.static import WordCache, _tokenizer_ids

    monkeypatch.setattr(WordCache, "max_words", max_words)
    tokenizer = copy.deepcopy(raw_model.tokenizer)
    tokenizer.enable_truncation(20)
    assert WordCache.applies(tokenizer)
    cache = WordCache(tokenizer)
    texts = AWKWARD_SPACING + _awkward_texts(60)
    expected = _tokenizer_ids(tokenizer, texts)
    assert (expected[1] == 20).any()  # some texts are truncated
    for _ in range(2):
        got = cache.token_ids(texts)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    for text in texts:  # a call of few texts: its words looked up in a dict
        got = cache.token_ids([text])
        alone = _tokenizer_ids(tokenizer, [text])
        np.testing.assert_array_equal(got[0], alone[0])
        np.testing.assert_array_equal(got[1], alone[1])
    assert cache.size <= max(max_words, len({w for t in texts for w in t.split(" ")}))
    empty = cache.token_ids([])
    assert empty[0].shape == (0,) and empty[1].shape == (0,)


@pytest.mark.parametrize("case", ["plain", "first_hashes_collide", "no_marker"])
def test_word_cache_reads_words_the_hard_ways(raw_model, monkeypatch, case):
    """The tokenizer's ids (the bundled MiniLM's) when the hash table grows, texts span the hashing blocks, words
    hold the marker characters (the next one is used; holding them all, the batch is learnt word by word), words
    are long or not ASCII, different words share a first hash (they are keyed by their bytes), and for a tokenizer
    with no punctuation token to mark with (the tiny test vocabulary)."""
    from tokenizers import Tokenizer

    import semspace.encode.static as static
    from semspace.encode.models import bundled_model_path

    monkeypatch.setattr(static, "_BLOCK_CHARS", 200)
    if case == "first_hashes_collide":
        monkeypatch.setattr(static, "_mixed", lambda hashes: hashes & np.uint64(0xF0))
    if case == "no_marker":
        tokenizer = raw_model.tokenizer
    else:
        tokenizer = Tokenizer.from_file(str(bundled_model_path() / "tokenizer.json"))
        tokenizer.no_padding()
    cache = static.WordCache(tokenizer)
    markers = "".join(char for char, _ in cache._markers)
    assert (markers == "") == (case == "no_marker")
    words = [f"{WORDS[i % len(WORDS)].lstrip('#')}{i}" for i in range(5000)]  # past the table's first 4,096 slots
    texts = [" ".join(words[i : i + 40]) for i in range(0, len(words), 40)]
    texts += [f"a {markers[:1]} b x{markers[:1]}y", f"every marker {markers}", "[SEP] [CLS]x", "é" * 80 + " naïve"]
    for batch in (texts[:50], texts, texts[::-1], AWKWARD_SPACING):
        expected = static._tokenizer_ids(tokenizer, batch)
        got = cache.token_ids(batch)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    if case == "first_hashes_collide":
        assert len(cache._by_bytes) > 100


@pytest.mark.parametrize("strip", [{"lstrip": True}, {"rstrip": True}, {"lstrip": True, "rstrip": True}])
def test_word_cache_keeps_a_stripping_added_token_in_its_word(strip):
    """An added token with lstrip/rstrip: its offsets take in the space beside it, which is another word's; its id
    still goes with its own word (read by its last character), on the long-word way (over 64 bytes) too."""
    from tokenizers import AddedToken, Tokenizer

    import semspace.encode.static as static
    from semspace.encode.models import bundled_model_path

    tokenizer = Tokenizer.from_file(str(bundled_model_path() / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.add_special_tokens([AddedToken("[x]", **strip)])
    long = "a" * 70
    texts = [f"{long}b [x]{long}c", f"[x]{long}c", "short [x]word and [x] alone [x]", f"{long} [x] {long}"]
    cache = static.WordCache(tokenizer)
    for batch in (texts, texts[::-1], *([t] for t in texts)):
        expected = static._tokenizer_ids(tokenizer, batch)
        got = cache.token_ids(batch)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])


def test_word_cache_is_only_for_tokenizers_that_read_words_alone(raw_model):
    """Another pre-tokenizer or an added token holding a space: the tokenizer itself, every time."""
    import copy

    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    from semspace.encode.static import WordCache

    word_level = Tokenizer(WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    word_level.pre_tokenizer = Whitespace()
    assert not WordCache.applies(word_level)
    spaced = copy.deepcopy(raw_model.tokenizer)
    spaced.add_tokens(["new york"])
    assert WordCache.applies(raw_model.tokenizer) and not WordCache.applies(spaced)
    assert WordCache.of(raw_model) is WordCache.of(raw_model) is not None
