"""Memory and time of exact large contrastive batches: semspace's cached step vs plain batches vs
sentence-transformers' CachedMultipleNegativesRankingLoss (GradCache), in the same run.

One SimCSE step (each sentence twice, InfoNCE τ = 0.05, forward + backward, no optimizer step) on the bundled
all-MiniLM-L6-v2 with sentences from the vendored STS-B sample. Every configuration runs in its own subprocess so
its peak resident memory (VmHWM, reset after the model is loaded) is its own.

    python benchmarks/bench_gradcache.py [--steps 2] [--chunk 32]

Writes docs/results/train_memory.md. Run alone: two heavy jobs at once spoil timings.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def measure(impl: str, batch: int, chunk: int | None, steps: int, max_length: int) -> dict:
    """Run in the child: warm-up step + `steps` timed steps; returns seconds per step and peak memory over load."""
    import torch

    from semspace.data import load_sample
    from semspace.encode import bundled_model_path
    from semspace.encode.pooling import masked_mean
    from semspace.train import cached_backward, chunked_backward, info_nce_loss

    torch.manual_seed(0)
    sentences = list(dict.fromkeys(s for split in load_sample().values() for s in split.sentences()))
    batches = [sentences[i * batch : (i + 1) * batch] for i in range(steps + 1)]
    if impl == "sentence-transformers":
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.losses import CachedMultipleNegativesRankingLoss

        model = SentenceTransformer(str(bundled_model_path()), device="cpu")
        model.max_seq_length = max_length
        # mini_batch_size counts sequences of one column: 2 × chunk gives the same sequences per forward pass.
        loss_module = CachedMultipleNegativesRankingLoss(model, scale=20.0, mini_batch_size=2 * (chunk or batch))

        def step(texts: list[str]) -> None:
            features = model.tokenize(texts)
            loss_module([features, dict(features)], None).backward()
    else:
        from transformers import AutoModel, AutoTokenizer

        model = AutoModel.from_pretrained(bundled_model_path())
        tokenizer = AutoTokenizer.from_pretrained(bundled_model_path())

        def embed(texts: list[str]) -> torch.Tensor:
            tokens = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            return masked_mean(model(**tokens).last_hidden_state, tokens["attention_mask"])

        def step(texts: list[str]) -> None:
            def loss_fn(h: torch.Tensor) -> torch.Tensor:
                return info_nce_loss(h[: len(texts)], h[len(texts) :])

            if chunk is None:
                chunked_backward(embed, texts + texts, loss_fn, None)
            else:
                cached_backward(embed, texts + texts, loss_fn, 2 * chunk)

    model.train()
    loaded = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    step(batches[0])
    model.zero_grad(set_to_none=True)
    started = time.perf_counter()
    for texts in batches[1:]:
        step(texts)
        model.zero_grad(set_to_none=True)
    seconds = (time.perf_counter() - started) / steps
    return {"seconds_per_step": seconds, "peak_mib": (_status_kib("VmHWM") - loaded) / 1024}


CONFIGS = [
    ("semspace", 32, None),
    ("semspace", 256, None),
    ("semspace", 512, None),
    ("semspace", 256, "chunk"),
    ("semspace", 512, "chunk"),
    ("sentence-transformers", 256, "chunk"),
    ("sentence-transformers", 512, "chunk"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--chunk", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("docs/results/train_memory.md"))
    parser.add_argument("--one", nargs=3, metavar=("IMPL", "BATCH", "CHUNK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        impl, batch, chunk = args.one
        result = measure(impl, int(batch), None if chunk == "-" else int(chunk), args.steps, args.max_length)
        print(json.dumps(result))
        return

    from semspace.evaluate.report import results_header

    rows = []
    for impl, batch, chunked in CONFIGS:
        chunk = args.chunk if chunked else None
        child = [sys.executable, __file__, "--steps", str(args.steps), "--max-length", str(args.max_length)]
        child += ["--one", impl, str(batch), str(chunk or "-")]
        done = subprocess.run(child, capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append({"impl": impl, "batch": batch, "chunk": chunk} | result)
        print(rows[-1], file=sys.stderr)

    def find(impl: str, batch: int, chunk: int | None) -> dict:
        return next(r for r in rows if (r["impl"], r["batch"], r["chunk"]) == (impl, batch, chunk))

    base = find("semspace", 32, None)
    lines = results_header("Exact large contrastive batches: memory and time", " ".join(["python", *sys.argv]))
    lines += [
        f"- One SimCSE step = each sentence twice with dropout, InfoNCE τ = 0.05, forward + backward (no optimizer"
        f" step); bundled all-MiniLM-L6-v2, max_length {args.max_length}, sentences from the vendored STS-B sample;"
        f" {args.steps} timed steps after one warm-up, each configuration in its own process.",
        "- Peak memory = peak resident set (VmHWM) minus the resident set after loading the model.",
        "- sentence-transformers: `CachedMultipleNegativesRankingLoss(scale=20, mini_batch_size=2 × chunk)`, the"
        " same number of sequences per forward pass as semspace's chunk of examples.",
        "",
        "| implementation | effective batch | chunk (examples) | sequences per forward | peak MiB over model |"
        " s / step | sentences / s | memory vs plain 32 | time vs sentence-transformers |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        peer = None
        if r["impl"] == "semspace" and r["chunk"]:
            peer = find("sentence-transformers", r["batch"], r["chunk"])["seconds_per_step"]
        ratio = f"{r['seconds_per_step'] / peer:.2f}" if peer else "-"
        lines.append(
            f"| {r['impl']} | {r['batch']} | {r['chunk'] or 'plain'} | {2 * (r['chunk'] or r['batch'])} |"
            f" {r['peak_mib']:.0f} | {r['seconds_per_step']:.2f} | {r['batch'] / r['seconds_per_step']:.1f} |"
            f" {r['peak_mib'] / base['peak_mib']:.2f}× | {ratio} |"
        )
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
