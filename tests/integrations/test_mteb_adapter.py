"""MTEBEncoder: mteb.evaluate runs an STS evaluator on a local task (no download, no hub access)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from semspace import Encoder

SENTENCES1 = ["a man is playing a guitar", "a dog is running", "a cat eats food", "a plane is taking off", "a woman"]
SENTENCES2 = ["a man is playing the flute", "the dog is running", "the big plane", "a cat in the park", "a small dog"]
SCORES = [3.8, 4.9, 0.4, 0.2, 1.0]


@pytest.fixture(scope="module")
def mteb_api():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        mteb = pytest.importorskip("mteb")
        yield mteb


def sts_task_class(mteb_api, sentences1: list[str], sentences2: list[str], scores: list[float], name: str):
    """An mteb STS task over the given pairs, built in the test (no download, no hub access)."""
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.sts import AbsTaskSTS
    from mteb.abstasks.task_metadata import TaskMetadata

    class LocalSTS(AbsTaskSTS):
        metadata = TaskMetadata(
            type="STS",
            name=name,
            main_score="cosine_spearman",
            description="Sentence pairs given by the test.",
            reference="https://example.org/semspace-local-sts",
            dataset={"path": "NA", "revision": "NA"},
            category="t2t",
            eval_splits=["test"],
            eval_langs=["eng-Latn"],
            date=("2024-01-01", "2024-01-01"),
            dialect=["Written"],
            domains=[],
            task_subtypes=[],
            license="cc-by-4.0",
            annotations_creators="derived",
            modalities=["text"],
            sample_creation="found",
            bibtex_citation="",
        )
        min_score = 0
        max_score = 5

        def load_data(self, num_proc=None, **kwargs) -> None:
            data = {"sentence1": sentences1, "sentence2": sentences2, "score": scores}
            self.dataset = DatasetDict({"test": Dataset.from_dict(data)})
            self.data_loaded = True

    return LocalSTS


@pytest.fixture(scope="module")
def tiny_sts_task(mteb_api):
    return sts_task_class(mteb_api, SENTENCES1, SENTENCES2, SCORES, "SemspaceTinySTS")


def own_spearman(encoder: Encoder, sentences1=SENTENCES1, sentences2=SENTENCES2, scores=SCORES) -> float:
    a, b = encoder.encode(sentences1), encoder.encode(sentences2)
    cosines = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(spearmanr(cosines, scores).statistic)


def test_mteb_evaluate_accepts_the_adapter(mteb_api, tiny_sts_task, tiny_bert_dir):
    """mteb runs the adapter and scores the adapter's own vectors.

    The tiny random BERT gives cosines that differ only in the last float32 ulp, so a Spearman over them depends on
    how each side rounds (ties flip ranks). This test checks what cannot tie — mteb received exactly the encoder's
    vectors and returned a valid score; score agreement is checked on real models below.
    """
    from mteb.models.models_protocols import EncoderProtocol

    from semspace.integrations.mteb import MTEBEncoder

    encoder = Encoder(str(tiny_bert_dir))
    model = MTEBEncoder(encoder)
    assert isinstance(model, EncoderProtocol)
    received: list[np.ndarray] = []
    adapter_encode = model.encode

    def recording_encode(*args, **kwargs):
        vectors = adapter_encode(*args, **kwargs)
        received.append(np.asarray(vectors))
        return vectors

    model.encode = recording_encode
    result = mteb_api.evaluate(model, tiny_sts_task(), cache=None, show_progress_bar=False)
    assert result.model_name == f"semspace/{tiny_bert_dir.name}"
    got = np.concatenate(received)
    expected = encoder.encode(SENTENCES1 + SENTENCES2)
    # mteb may encode the two sides together or apart, and may drop duplicates: compare as sets of rows.
    assert got.shape[1] == expected.shape[1]
    for row in got:
        assert np.abs(expected - row).max(axis=1).min() < 1e-6
    for row in expected:
        assert np.abs(got - row).max(axis=1).min() < 1e-6
    score = result.task_results[0].get_score()
    assert np.isfinite(score) and -1.0 <= score <= 1.0


def test_prompt_types_use_query_and_document_prompts(mteb_api, tiny_sts_task, tiny_bert_dir, tmp_path):
    import shutil

    from mteb.types import PromptType

    from semspace.integrations.mteb import MTEBEncoder

    folder = tmp_path / "tiny-e5-small"
    shutil.copytree(tiny_bert_dir, folder)
    model = MTEBEncoder(str(folder))
    batches = [{"text": SENTENCES1[:3]}, {"text": SENTENCES1[3:]}]
    where = {"task_metadata": tiny_sts_task.metadata, "hf_split": "test", "hf_subset": "default"}
    query = model.encode(batches, **where, prompt_type=PromptType.query)
    document = model.encode(batches, **where, prompt_type=PromptType.document)
    plain = model.encode(batches, **where, batch_size=2)
    np.testing.assert_allclose(query, model.model.encode(["query: " + t for t in SENTENCES1]), atol=1e-6)
    np.testing.assert_allclose(document, model.model.encode(["passage: " + t for t in SENTENCES1]), atol=1e-6)
    np.testing.assert_allclose(plain, model.model.encode(SENTENCES1), atol=1e-6)
    assert model.mteb_model_meta.name == "semspace/tiny-e5-small" and model.mteb_model_meta.embed_dim == 32


@pytest.mark.slow
def test_mteb_sts_on_the_bundled_model(mteb_api, tiny_sts_task):
    from semspace.integrations.mteb import MTEBEncoder

    model = MTEBEncoder()
    assert model.mteb_model_meta.name == "sentence-transformers/all-MiniLM-L6-v2"
    result = mteb_api.evaluate(model, tiny_sts_task(), cache=None, show_progress_bar=False)
    assert result.task_results[0].get_score() == pytest.approx(own_spearman(model.model), abs=1e-6)
    assert result.task_results[0].get_score() > 0.5


@pytest.mark.slow
def test_mteb_sts_benchmark_agrees_with_semspace(mteb_api, shared_data):
    """A real task: 300 STS-B test pairs from ../shared/data, mteb's score vs semspace's own Spearman."""
    from semspace.data.sts import read_stsbenchmark
    from semspace.integrations.mteb import MTEBEncoder

    pairs = read_stsbenchmark(shared_data / "stsbenchmark_sbert" / "stsbenchmark.tsv.gz")["test"].subsample(300, 0)
    task = sts_task_class(
        mteb_api, pairs.sentences1, pairs.sentences2, [float(s) for s in pairs.scores], "SemspaceSTSBSample"
    )
    model = MTEBEncoder()
    result = mteb_api.evaluate(model, task(), cache=None, show_progress_bar=False)
    expected = own_spearman(model.model, pairs.sentences1, pairs.sentences2, pairs.scores)
    assert result.task_results[0].get_score() == pytest.approx(expected, abs=1e-6)
    assert expected > 0.75
