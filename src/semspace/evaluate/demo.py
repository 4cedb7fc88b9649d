"""`semspace demo`: the whole pipeline offline on the bundled model and the vendored STS-B sample."""

from __future__ import annotations

import numpy as np

from semspace.data import load_sample
from semspace.data.tasks import STSTask
from semspace.encode import Encoder
from semspace.evaluate.sts import Vectors, evaluate_task, task_sentences

QUERIES = (
    "A man is playing a guitar.",
    "The stock market fell sharply today.",
    "A dog runs across the grass.",
)


def run_demo(top: int = 3) -> str:
    """Encode the sample, fit and tune whitening, and return a printable report."""
    splits = load_sample()
    task = STSTask(
        "STS-B sample",
        "en",
        {"STS-B sample": splits["test"]},
        splits["dev"],
        splits["train"],
        "dev",
        "train",
        (splits["train"], splits["dev"], splits["test"]),
    )
    encoder = Encoder(show_progress_bar=True)
    sentences = task_sentences(task)
    vectors = Vectors(encoder.encode(sentences), {s: i for i, s in enumerate(sentences)})
    rows = evaluate_task(task, vectors, ks=(256, 128, 64), curve_ks=())
    lines = [
        f"semspace demo: {encoder.model_id} "
        f"(pooling {encoder.pooling.value}), STS-B sample: {len(splits['train'])} train / {len(splits['dev'])} dev "
        f"/ {len(splits['test'])} test pairs, {len(sentences)} sentences encoded.",
        "",
        "Spearman x 100 on the sample's test pairs (transforms fitted on all sample sentences = 'target';",
        "'tuned' picks beta/gamma/k on the dev pairs and leaves raw only when the gain beats bootstrap noise):",
        "",
        f"  {'transform':<16}{'fit':<8}{'k':>5}  {'Spearman':>8}",
    ]
    for r in rows:
        if r["fit"] in ("-", "target"):
            k = r["k"] if r["k"] is not None else encoder.dim
            extra = f"   (beta={r['beta']:g}, gamma={r['gamma']:g})" if r["transform"] == "tuned" else ""
            lines.append(f"  {r['transform']:<16}{r['fit']:<8}{k:>5}  {r['wmean']:8.2f}{extra}")
    # Most-similar lookups with the whitening-128 transform: smaller vectors, same quality here.
    from semspace.transform import Whitening

    whitening = Whitening(n_components=128).fit(vectors.matrix)
    corpus = whitening.transform(vectors.matrix)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    queries = whitening.transform(encoder.encode(list(QUERIES)))
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    lines += ["", f"Most similar sample sentences (whitening to k=128, cosine), top {top}:"]
    for query, scores in zip(QUERIES, queries @ corpus.T, strict=True):
        lines.append(f"  query: {query}")
        for i in np.argsort(-scores)[:top]:
            lines.append(f"    {scores[i]:.3f}  {sentences[i]}")
    return "\n".join(lines)
