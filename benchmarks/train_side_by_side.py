"""Issue 14: supervised STS-B training side by side — sentence-transformers' own trainer vs semspace's trainer.

One invocation = one (implementation, objective, settings, seed) run on the full STS-B train set (5,749 pairs) from
the bundled all-MiniLM-L6-v2; it writes docs/results/train/side_by_side/<run>.json. `report` turns every JSON there
into a section of docs/results/train.md (mean ± sd over seeds, final and best-dev side by side).

    python benchmarks/train_side_by_side.py raw                                # the untrained model's dev/test
    python benchmarks/train_side_by_side.py run --impl st --objective cosent --seed 0
    python benchmarks/train_side_by_side.py run --impl semspace --objective angle --seed 0
    python benchmarks/train_side_by_side.py run --impl semspace --objective cosent --scale 5 --seed 0   # a sweep
    python benchmarks/train_side_by_side.py run --impl semspace --objective cosent --rdrop-alpha 1 --seed 0
    python benchmarks/train_side_by_side.py report

Objectives: st = cosent (CoSENTLoss), angle (AnglELoss), cosine (CosineSimilarityLoss); semspace = cosent, mse,
angle (AnglE: CoSENT + in-batch negatives + angle term), cosent-mse, simcse (unsupervised: 5,749 unique train
sentences, labels unused, each sentence twice with dropout; `--rdrop-alpha` adds R-Drop's KL between two such passes).

Same for every run: data (STS-B train, labels / 5), 1 epoch, batch 16, lr 2e-5, linear warm-up over 10% of the steps
then linear decay, AdamW weight decay 0.01, gradient norm clipped at 1, max_length 64, dropout on. Dev (STS-B dev,
1,500 pairs) is evaluated at the start and at the steps of `semspace.train.loop.eval_schedule(90, 3, 360)` (11, 22,
45, 90, 180, 270, 360); the best-dev model and the final model are both scored on STS-B test (1,379 pairs) by the
same code (semspace Encoder on the saved folder, cosine, Spearman × 100). The seed fixes initialisation-free
randomness (dropout) and the batch order within each implementation; the two trainers draw different batch orders.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from semspace.data.sts import STSPairs
from semspace.data.tasks import load_sts_task
from semspace.encode import Encoder, bundled_model_path
from semspace.evaluate.report import machine_description
from semspace.metrics import spearman
from semspace.train import EncoderTrainConfig, TrainingSet, train_encoder
from semspace.train.loop import eval_schedule
from semspace.transform import paired_cosine

RESULTS = Path("docs/results/train/side_by_side")
REPORT = Path("docs/results/train.md")
RUNS = Path(".cache/train_side_by_side")  # model folders, outside git (deleted after scoring unless --keep)
SECTION = "## Side by side with sentence-transformers on STS-B train (issue 14)"
EVAL_STEPS, EVAL_EARLY = 90, 3
ST_LOSSES = {"cosent": "CoSENTLoss", "angle": "AnglELoss", "cosine": "CosineSimilarityLoss"}
SEMSPACE_OBJECTIVES = ("cosent", "mse", "angle", "cosent-mse", "simcse")
logger = logging.getLogger("train_side_by_side")


def stsb() -> tuple[STSPairs, STSPairs, STSPairs]:
    task = load_sts_task("STS-B")
    assert task.fit is not None
    return task.fit, task.dev, task.test_all


def test_spearman(folder: str | Path | None, pairs: STSPairs) -> float:
    """Spearman × 100 of the cosines of a saved model (None: the bundled one) on `pairs`."""
    encoder = Encoder(None if folder is None else str(folder), show_progress_bar=False)
    cosines = paired_cosine(encoder.encode(pairs.sentences1), encoder.encode(pairs.sentences2))
    return 100 * spearman(cosines, pairs.scores)


def run_name(args: argparse.Namespace) -> str:
    parts = [args.impl, args.objective]
    for flag, default in (("epochs", 1), ("batch_size", 16), ("lr", 2e-5), ("scale", None), ("rdrop_alpha", 0.0)):
        value = getattr(args, flag)
        if value != default and value is not None:
            parts.append(f"{flag.replace('_', '')}{value:g}")
    if args.chunk_size:
        parts.append(f"chunk{args.chunk_size}")
    if args.objective == "cosent-mse" and args.mse_weight != 20.0:
        parts.append(f"msew{args.mse_weight:g}")
    return "-".join(parts) + f"-seed{args.seed}"


def simcse_sentences(train: STSPairs, seed: int) -> TrainingSet:
    """Unsupervised SimCSE's data: as many unique STS-B train sentences as there are train pairs (labels unused), so
    a SimCSE step (each sentence twice) sees as many sequences as a pair objective's step."""
    unique = list(dict.fromkeys(train.sentences()))
    index = np.sort(np.random.default_rng(seed).permutation(len(unique))[: len(train)])
    return TrainingSet([[unique[i] for i in index]])


def train_semspace(args: argparse.Namespace, train: STSPairs, dev: STSPairs, folder: Path) -> dict:
    config = EncoderTrainConfig(
        objective=args.objective,
        epochs=args.epochs,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        lr=args.lr,
        max_label=5.0,
        cosent_scale=args.scale if args.scale is not None else 20.0,
        rdrop_alpha=args.rdrop_alpha,
        mse_weight=args.mse_weight,
        seed=args.seed,
        eval_steps=EVAL_STEPS,
        eval_early=EVAL_EARLY,
        max_steps=4 if args.smoke else None,
    )
    data = simcse_sentences(train, args.seed) if args.objective == "simcse" else TrainingSet.from_pairs(train)
    history = train_encoder(data, folder, config, dev=dev, resume=False, keep_final=True)
    return {
        "config": history["config"],
        "steps": history["steps"],
        "train_seconds": history["train_seconds"],
        "dev_curve": [[e["step"], 100 * e["dev_spearman"]] for e in history["evals"]],
        "best_folder": str(folder),
        "final_folder": str(folder / "final"),
    }


def train_st(args: argparse.Namespace, train: STSPairs, dev: STSPairs, folder: Path) -> dict:
    """sentence-transformers' SentenceTransformerTrainer with its own loss class; dev through a callback."""
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, losses
    from sentence_transformers import SentenceTransformerTrainingArguments as Arguments
    from transformers import TrainerCallback

    model = SentenceTransformer(str(bundled_model_path()), device="cpu")
    model.max_seq_length = 64
    labels = np.asarray(train.scores, dtype=np.float64) / 5.0
    dataset = Dataset.from_dict(
        {"sentence1": list(train.sentences1), "sentence2": list(train.sentences2), "score": labels.tolist()}
    )
    loss_class = getattr(losses, ST_LOSSES[args.objective])
    loss = loss_class(model) if args.scale is None else loss_class(model, scale=args.scale)
    total = 4 if args.smoke else args.epochs * math.ceil(len(train) / args.batch_size)
    eval_at = set(eval_schedule(EVAL_STEPS, EVAL_EARLY, total))
    curve: list[list[float]] = []
    best = {"dev": -math.inf}

    def evaluate(step: int) -> None:
        was_training = model.training
        with torch.no_grad():
            a = model.encode(list(dev.sentences1), batch_size=128, convert_to_numpy=True)
            b = model.encode(list(dev.sentences2), batch_size=128, convert_to_numpy=True)
        model.train(was_training)
        score = 100 * spearman(paired_cosine(a, b), dev.scores)
        curve.append([step, score])
        logger.info("step %d: dev %.2f", step, score)
        if score > best["dev"]:
            best["dev"] = score
            model.save(str(folder))

    class DevCallback(TrainerCallback):
        def on_step_end(self, arguments, state, control, **kwargs):
            if state.global_step in eval_at:
                evaluate(state.global_step)
            return control

    training_args = Arguments(
        output_dir=str(folder / "trainer"),
        num_train_epochs=args.epochs,
        max_steps=total,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr,
        warmup_steps=max(1, int(0.1 * total)),
        weight_decay=0.01,
        max_grad_norm=1.0,
        seed=args.seed,
        save_strategy="no",
        eval_strategy="no",
        logging_steps=max(1, total // 10),
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=training_args, train_dataset=dataset, loss=loss, callbacks=[DevCallback()]
    )
    model.train()
    evaluate(0)
    model.train()
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    model.save(str(folder / "final"))
    return {
        "config": {
            "loss": ST_LOSSES[args.objective],
            "scale": getattr(loss, "scale", None),
            "batch_size": args.batch_size,
            "lr": args.lr,
            "warmup_steps": training_args.warmup_steps,
            "weight_decay": 0.01,
            "max_seq_length": 64,
            "seed": args.seed,
            "sentence_transformers": __import__("sentence_transformers").__version__,
        },
        "steps": trainer.state.global_step,
        "train_seconds": seconds,
        "dev_curve": curve,
        "best_folder": str(folder),
        "final_folder": str(folder / "final"),
    }


def run(args: argparse.Namespace) -> None:
    if args.impl == "st" and args.objective not in ST_LOSSES:
        raise SystemExit(f"st objectives: {sorted(ST_LOSSES)}")
    if args.impl == "semspace" and args.objective not in SEMSPACE_OBJECTIVES:
        raise SystemExit(f"semspace objectives: {SEMSPACE_OBJECTIVES}")
    name = run_name(args)
    train, dev, test = stsb()
    if args.smoke:
        dev, test = (STSPairs(p.sentences1[:64], p.sentences2[:64], p.scores[:64], name=p.name) for p in (dev, test))
    folder = RUNS / name
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    trained = (train_st if args.impl == "st" else train_semspace)(args, train, dev, folder)
    curve = trained.pop("dev_curve")
    best_step, best_dev = max(curve, key=lambda point: point[1])
    best_step = min(step for step, score in curve if score == best_dev)  # the first of equal scores, as the loop
    row = {
        "run": name,
        "impl": args.impl,
        "objective": args.objective,
        "variant": name.removeprefix(f"{args.impl}-{args.objective}").removesuffix(f"-seed{args.seed}").strip("-"),
        "seed": args.seed,
        "command": "python " + " ".join(sys.argv),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_description(),
        "train_examples": len(train),
        **{k: v for k, v in trained.items() if not k.endswith("_folder")},
        "dev_curve": [[int(s), round(float(v), 4)] for s, v in curve],
        "best_step": int(best_step),
        "best_dev": float(best_dev),
        "final_dev": float(curve[-1][1]),
        "test_best": test_spearman(trained["best_folder"], test),
        "test_final": test_spearman(trained["final_folder"], test),
        "wall_seconds": None,
    }
    row["wall_seconds"] = round(time.perf_counter() - started, 1)
    if not args.smoke:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{name}.json").write_text(json.dumps(row, indent=2) + "\n", encoding="utf-8")
    logger.info(
        "%s: best dev %.2f (step %d) → test %.2f; final dev %.2f → test %.2f; %.0f s",
        name, best_dev, best_step, row["test_best"], row["final_dev"], row["test_final"], row["wall_seconds"],
    )  # fmt: skip
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


def raw(args: argparse.Namespace) -> None:
    _, dev, test = stsb()
    row = {
        "run": "raw",
        "command": "python " + " ".join(sys.argv),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_description(),
        "dev": test_spearman(None, dev),
        "test": test_spearman(None, test),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "raw.json").write_text(json.dumps(row, indent=2) + "\n", encoding="utf-8")
    logger.info("raw: dev %.2f test %.2f", row["dev"], row["test"])


def _mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def report(args: argparse.Namespace) -> None:
    rows = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(RESULTS.glob("*.json")) if p.stem != "raw"]
    raw_row = (
        json.loads((RESULTS / "raw.json").read_text(encoding="utf-8")) if (RESULTS / "raw.json").exists() else None
    )
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["impl"], row["objective"], row["variant"]), []).append(row)
    machines = sorted({row["machine"] for row in rows})
    dates = sorted(row["date"] for row in rows)
    lines = [
        SECTION,
        "- Command: `python benchmarks/train_side_by_side.py report` over the runs in docs/results/train/side_by_side/"
        " (each JSON holds its own command, date, machine, config, dev curve).",
        f"- Report date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')};"
        f" runs from {dates[0] if dates else '-'} to {dates[-1] if dates else '-'}",
        f"- Machine: {'; '.join(machines) or machine_description()}",
        "- Data: STS-B train (5,749 pairs, labels / 5), dev = STS-B dev (1,500 pairs), test = STS-B test (1,379 pairs),"
        " from the bundled all-MiniLM-L6-v2. Spearman × 100.",
        "- Schedule (every run unless its name says otherwise): 1 epoch, batch 16 (360 steps), lr 2e-5, linear warm-up"
        " over 10% then linear decay, AdamW (weight decay 0.01), clip 1.0, max_length 64. Dev at steps "
        f"{[0, *eval_schedule(EVAL_STEPS, EVAL_EARLY, 360)]} (geometric near the start).",
        "- `st-*` = sentence-transformers' SentenceTransformerTrainer with its CoSENTLoss / AnglELoss /"
        " CosineSimilarityLoss (default scale 20); `semspace-*` = semspace's trainer (`train_encoder`, what"
        " `semspace train cosent --loss …` runs). semspace angle = AnglE's full objective (CoSENT + in-batch negatives"
        " + angle term, weights 1/1/1, τ 20/20/1); ST's AnglELoss is the angle term alone at scale 20.",
        "- best-dev test = the test score of the checkpoint with the best dev score (the start counts: step 0 is the"
        " untrained model); final test = the model after the last step. Both are listed so selection artefacts show.",
    ]
    if raw_row:
        lines.append(f"- Untrained model: dev {raw_row['dev']:.2f}, test {raw_row['test']:.2f}.")
    lines += [
        "",
        "| run | seeds | best dev | best step(s) | test @ best dev | final dev | final test | train min |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def order(key: tuple[str, str, str]) -> tuple:
        impl, objective, variant = key
        return (variant != "", impl != "st", objective, variant)

    for key in sorted(groups, key=order):
        group = sorted(groups[key], key=lambda r: r["seed"])
        impl, objective, variant = key
        label = f"{impl} {objective}" + (f" ({variant})" if variant else "")
        lines.append(
            f"| {label} | {','.join(str(r['seed']) for r in group)} | {_mean_sd([r['best_dev'] for r in group])} |"
            f" {','.join(str(r['best_step']) for r in group)} | {_mean_sd([r['test_best'] for r in group])} |"
            f" {_mean_sd([r['final_dev'] for r in group])} | {_mean_sd([r['test_final'] for r in group])} |"
            f" {statistics.mean(r['train_seconds'] for r in group) / 60:.1f} |"
        )
    lines += ["", "- mean ± sd over the seeds listed (sd = sample standard deviation; one seed: the value)."]
    few = [f"{k[0]} {k[1]}" + (f" ({k[2]})" if k[2] else "") for k, g in groups.items() if len(g) < 3]
    if few:
        lines.append(
            f"- Fewer than the 3 seeds the issue asks for: {', '.join(sorted(few))}. Their differences are single-run"
            " differences (two trainers also draw different batch orders), not means over seeds."
        )
    lines += ["", "Per run (seed): dev curve (step, dev × 100), test at best dev / final.", ""]
    for key in sorted(groups, key=order):
        for r in sorted(groups[key], key=lambda r: r["seed"]):
            curve = ", ".join(f"{s}: {v:.2f}" for s, v in r["dev_curve"])
            lines.append(f"- {r['run']}: [{curve}]; test {r['test_best']:.2f} / {r['test_final']:.2f}")
    lines += ["", *goal_lines(groups, raw_row)]
    write_section("\n".join(lines) + "\n")


def goal_lines(groups: dict, raw_row: dict | None) -> list[str]:
    def mean_of(impl: str, objective: str, field: str) -> float | None:
        group = groups.get((impl, objective, ""))
        return statistics.mean(r[field] for r in group) if group else None

    out = []
    for field, what in (("test_best", "best-dev"), ("test_final", "final")):
        mse = mean_of("semspace", "mse", field)
        st_cosent = mean_of("st", "cosent", field)
        for objective in ("cosent", "angle", "cosent-mse"):
            ours = mean_of("semspace", objective, field)
            if ours is None:
                continue
            verdicts = []
            if mse is not None:
                verdicts.append(f"{'≥' if ours >= mse else '<'} semspace mse {mse:.2f}")
            if st_cosent is not None:
                verdicts.append(
                    f"{'≥' if ours >= st_cosent - 0.2 else '<'} ST CoSENTLoss − 0.2 ({st_cosent - 0.2:.2f})"
                )
            out.append(f"- Goal ({what} test, mean over seeds): semspace {objective} {ours:.2f} " + ", ".join(verdicts))
    means = [
        (statistics.mean(r["test_best"] for r in group), f"{k[0]} {k[1]}" + (f" ({k[2]})" if k[2] else ""))
        for k, group in groups.items()
    ]
    if means:
        top = max(means)
        out.append(f"- Goal best objective ≥ 87.0 (best-dev test): {'met' if top[0] >= 87.0 else 'not met'}"
                   f" (best {top[1]}: {top[0]:.2f}).")  # fmt: skip
    return out


def write_section(text: str) -> None:
    old = REPORT.read_text(encoding="utf-8") if REPORT.exists() else ""
    if SECTION in old:
        before, rest = old.split(SECTION, 1)
        after = rest.split("\n## ", 1)
        old = before.rstrip("\n") + ("\n\n## " + after[1] if len(after) == 2 else "\n")
        REPORT.write_text(old.rstrip("\n") + "\n\n" + text, encoding="utf-8")
    else:
        REPORT.write_text(old.rstrip("\n") + "\n\n" + text, encoding="utf-8")
    logger.info("wrote %s", REPORT)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("run", help="one training run → docs/results/train/side_by_side/<run>.json")
    one.add_argument("--impl", choices=("st", "semspace"), required=True)
    one.add_argument("--objective", required=True)
    one.add_argument("--seed", type=int, default=0)
    one.add_argument("--epochs", type=int, default=1)
    one.add_argument("--batch-size", type=int, default=16)
    one.add_argument("--chunk-size", type=int, default=None, help="semspace: cached step with this many examples")
    one.add_argument("--lr", type=float, default=2e-5)
    one.add_argument("--scale", type=float, default=None, help="CoSENT λ / ST loss scale (default: 20)")
    one.add_argument("--rdrop-alpha", type=float, default=0.0, help="semspace: R-Drop α")
    one.add_argument("--mse-weight", type=float, default=20.0, help="semspace cosent-mse: MSE weight")
    one.add_argument("--keep", action="store_true", help="keep the model folders")
    one.add_argument("--smoke", action="store_true", help="check the pipeline: 4 steps, 64 dev/test pairs, no JSON")
    commands.add_parser("raw", help="the untrained model's dev/test → raw.json")
    commands.add_parser("report", help=f"write the '{SECTION[3:]}' section of {REPORT}")
    args = parser.parse_args()
    {"run": run, "raw": raw, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
