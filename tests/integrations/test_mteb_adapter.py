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


@pytest.fixture(scope="module")
def tiny_sts_task(mteb_api):
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.sts import AbsTaskSTS
    from mteb.abstasks.task_metadata import TaskMetadata

    class TinySTS(AbsTaskSTS):
        metadata = TaskMetadata(
            type="STS",
            name="SemspaceTinySTS",
            main_score="cosine_spearman",
            description="Five sentence pairs built in the test.",
            reference="https://example.org/semspace-tiny-sts",
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
            data = {"sentence1": SENTENCES1, "sentence2": SENTENCES2, "score": SCORES}
            self.dataset = DatasetDict({"test": Dataset.from_dict(data)})
            self.data_loaded = True

    return TinySTS


def own_spearman(encoder: Encoder) -> float:
    a, b = encoder.encode(SENTENCES1), encoder.encode(SENTENCES2)
    cosines = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(spearmanr(cosines, SCORES).statistic)


def test_mteb_evaluate_accepts_the_adapter(mteb_api, tiny_sts_task, tiny_bert_dir):
    from mteb.models.models_protocols import EncoderProtocol

    from semspace.integrations.mteb import MTEBEncoder

    encoder = Encoder(str(tiny_bert_dir))
    model = MTEBEncoder(encoder)
    assert isinstance(model, EncoderProtocol)
    result = mteb_api.evaluate(model, tiny_sts_task(), cache=None, show_progress_bar=False)
    assert result.model_name == f"semspace/{tiny_bert_dir.name}"
    score = result.task_results[0].get_score()
    assert score == pytest.approx(own_spearman(encoder), abs=1e-6)


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
