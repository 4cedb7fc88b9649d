"""Issue 13, item 1: a cross-encoder from the bundled all-MiniLM-L6-v2 weights that beats the bi-encoder on STS-B.

One `run` = one cross-encoder recipe trained on the full STS-B train set (5,749 pairs) with
`semspace.train.train_cross_encoder`, the best-dev checkpoint kept under .cache/models/ce-<run>, scored on STS-B test
(1,379 pairs): one order (a, b) with PyTorch fp32, the same with the ONNX int8 engine (the engine the CUR benchmarks
score their matrices with), and both orders averaged (two CE calls a pair). It writes docs/results/ce/<run>.json.
`report` puts every run next to the bi-encoder rows of `benchmarks/train_side_by_side.py` (same STS-B train data;
their epochs are in the table) in docs/results/ce.md.

    python benchmarks/ce_recipe.py run --objective bce --epochs 4 --both-orders          # the recipe
    python benchmarks/ce_recipe.py run --objective bce --epochs 4 --both-orders --lr 5e-5
    python benchmarks/ce_recipe.py report
    python benchmarks/ce_recipe.py backends   # the recipe's CE under every backend → docs/results/ce_backends.md

`backends` (issue 28, item 5) scores one trained CE (default: the recipe's folder) on STS-B test under every backend
`CrossEncoder` takes — torch fp32, torch-bf16 (where the CPU has bf16 units; emulated bf16 is refused unless
SEMSPACE_FORCE_BF16=1, and `auto` never picks it), onnx, onnx-int8 and auto — with each one's Spearman loss against
torch fp32 (the 0.1-point rule of the encoder's engines) and its scores' agreement with fp32's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from semspace.data.tasks import load_sts_task
from semspace.evaluate.report import machine_description
from semspace.interact.cross_encoder import CrossEncoder
from semspace.metrics import spearman
from semspace.train import CrossEncoderTrainConfig, train_cross_encoder

RESULTS = Path("docs/results/ce")
REPORT = Path("docs/results/ce.md")
MODELS = Path(".cache/models")
BI_ENCODER = Path("docs/results/train/side_by_side")
BACKENDS_REPORT = Path("docs/results/ce_backends.md")
BACKENDS = ("torch", "torch-bf16", "onnx", "onnx-int8", "auto")
EVAL_STEPS = 360
logger = logging.getLogger("ce_recipe")


def run_name(args: argparse.Namespace) -> str:
    parts = [args.objective, f"ep{args.epochs}", f"lr{args.lr:g}"]
    if args.both_orders:
        parts.append("both")
    if args.warmup != 0.1:
        parts.append(f"wu{args.warmup:g}")
    if args.max_length != 128:
        parts.append(f"len{args.max_length}")
    if args.rdrop_alpha:
        parts.append(f"rdrop{args.rdrop_alpha:g}")
    return "-".join(parts) + f"-seed{args.seed}"


def predictions(ce: CrossEncoder, pairs: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    """The CE's scores of `pairs` in their order (a, b) and reversed (b, a)."""
    forward = ce.predict(pairs, show_progress_bar=False)
    return forward, ce.predict([(b, a) for a, b in pairs], show_progress_bar=False)


def score(ce: CrossEncoder, pairs: list[tuple[str, str]], labels: np.ndarray) -> dict[str, float]:
    forward, backward = predictions(ce, pairs)
    return {
        "one_order": 100 * spearman(forward, labels),
        "reverse_order": 100 * spearman(backward, labels),
        "both_orders": 100 * spearman((forward + backward) / 2, labels),
    }


def run(args: argparse.Namespace) -> None:
    name = run_name(args)
    task = load_sts_task("STS-B")
    folder = MODELS / f"ce-{name}"
    config = CrossEncoderTrainConfig(
        objective=args.objective,
        epochs=args.epochs,
        batch_size=16,
        lr=args.lr,
        warmup_ratio=args.warmup,
        max_length=args.max_length,
        max_label=5.0,
        rdrop_alpha=args.rdrop_alpha,
        both_orders=args.both_orders,
        seed=args.seed,
        eval_steps=EVAL_STEPS,
        max_steps=4 if args.smoke else None,
    )
    started = time.perf_counter()
    history = train_cross_encoder(task.fit, task.dev, folder, config)
    train_seconds = time.perf_counter() - started
    test = task.test_all
    pairs = list(zip(test.sentences1, test.sentences2, strict=True))
    labels = np.asarray(test.scores)
    fp32 = score(CrossEncoder(folder, max_length=args.max_length), pairs, labels)
    int8 = score(CrossEncoder(folder, max_length=args.max_length, backend="onnx-int8"), pairs, labels)
    record = {
        "run": name,
        "command": "python benchmarks/ce_recipe.py " + " ".join(sys.argv[1:]),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine_description(),
        "config": history["config"],
        "train_pairs": len(task.fit) * (2 if args.both_orders else 1),
        "steps": history["steps"],
        "train_seconds": train_seconds,
        "dev_curve": [[e["step"], 100 * e["dev_spearman"]] for e in history["evals"]],
        "best_step": history.get("best_step"),
        "best_dev": 100 * history["best_dev_spearman"],
        "final_dev": 100 * history["final_dev_spearman"] if history.get("final_dev_spearman") is not None else None,
        "test_fp32": fp32,
        "test_int8": int8,
        "model_folder": str(folder),
    }
    if args.smoke:
        logger.info("smoke run: %s", json.dumps(record, indent=1)[:2000])
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    logger.info(
        "%s: dev %.2f, test %.2f (int8 %.2f, both orders %.2f)",
        name,
        record["best_dev"],
        fp32["one_order"],
        int8["one_order"],
        fp32["both_orders"],
    )


def bi_encoder_rows() -> list[tuple[str, str, str]]:
    """(row, epochs, test) for the bi-encoder runs of train_side_by_side.py (mean ± sd over seeds, best-dev test)."""
    groups: dict[str, list[dict]] = {}
    for path in sorted(BI_ENCODER.glob("*.json")):
        record = json.loads(path.read_text())
        if path.name == "raw.json":
            continue
        groups.setdefault(record["run"].rsplit("-seed", 1)[0], []).append(record)
    rows = []
    raw = json.loads((BI_ENCODER / "raw.json").read_text())
    rows.append(("bi-encoder all-MiniLM-L6-v2, no training (cosine)", "0", f"{raw['test']:.2f}"))
    wanted = {
        "semspace-mse": "bi-encoder + MSE on cosine (semspace)",
        "st-cosine": "bi-encoder + CosineSimilarityLoss (sentence-transformers)",
        "semspace-cosent": "bi-encoder + CoSENT λ 20 (semspace)",
        "semspace-cosent-scale5": "bi-encoder + CoSENT λ 5 (semspace)",
        "st-cosent": "bi-encoder + CoSENTLoss (sentence-transformers)",
    }
    for key, label in wanted.items():
        if key not in groups:
            continue
        tests = [r["test_best"] for r in groups[key]]
        sd = f" ± {statistics.stdev(tests):.2f}" if len(tests) > 1 else ""
        epochs = str(groups[key][0]["config"].get("epochs", 1))
        rows.append((f"{label}, {len(tests)} seed(s)", epochs, f"{statistics.mean(tests):.2f}{sd}"))
    return rows


def report() -> None:
    runs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
    if not runs:
        raise SystemExit(f"no runs in {RESULTS}")
    bi = bi_encoder_rows()
    best_bi = max(float(r[2].split()[0]) for r in bi)
    best = max(runs, key=lambda r: r["best_dev"])
    lines = [
        "# A cross-encoder from the bundled weights vs the bi-encoder on STS-B (issue 13, item 1)",
        f"- Commands: `python benchmarks/ce_recipe.py run …` (one per row, in each JSON under `{RESULTS}/`), then "
        "`python benchmarks/ce_recipe.py report`",
        f"- Date of the last run: {max(r['date'] for r in runs)}",
        f"- Machine: {runs[-1]['machine']}",
        "- Data: STS-B train (5,749 pairs, labels / 5) for every row; dev (1,500 pairs) selects the checkpoint; test "
        "(1,379 pairs), Spearman × 100.",
        "- Cross-encoders: `semspace.train.train_cross_encoder` from all-MiniLM-L6-v2 with a new 1-output head (BERT "
        "pooler + linear, as sentence-transformers' CrossEncoder), batch 16, AdamW (weight decay 0.01), linear warm-up "
        f"then decay, gradient norm clipped at 1; dev every {EVAL_STEPS} steps plus the early halvings; the best-dev "
        "checkpoint is tested. *both orders (train)*: every pair is also trained as (b, a). Test columns: one order "
        "(a, b) in PyTorch fp32; the same in the ONNX int8 engine (what the CUR benchmarks score with); both orders "
        "averaged (two CE calls a pair).",
        "- Bi-encoders: `benchmarks/train_side_by_side.py` runs (1 epoch, batch 16, lr 2e-5, best-dev test), mean ± sd "
        "over seeds.",
        "",
        "| model | epochs | lr | both orders (train) | steps | train min | best dev | test | test int8 | "
        "test, both orders |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(runs, key=lambda r: -r["best_dev"]):
        c = r["config"]
        lines.append(
            f"| cross-encoder {c['objective']} (seed {c['seed']}) | {c['epochs']} | {c['lr']:g} | "
            f"{'yes' if c.get('both_orders') else 'no'} | {r['steps']} | {r['train_seconds'] / 60:.0f} | "
            f"{r['best_dev']:.2f} | {r['test_fp32']['one_order']:.2f} | {r['test_int8']['one_order']:.2f} | "
            f"{r['test_fp32']['both_orders']:.2f} |"
        )
    for label, epochs, test in bi:
        lr = "2e-05" if epochs != "0" else "–"
        lines.append(f"| {label} | {epochs} | {lr} | – | – | – | – | {test} | – | – |")
    ce_test = best["test_fp32"]["one_order"]
    goal = best_bi + 1.0
    lines += [
        "",
        "## Goal",
        f"- CE ≥ best fine-tuned bi-encoder + 1.0: the CE with the best dev score ({best['run']}) tests "
        f"{ce_test:.2f} against {best_bi:.2f} + 1.0 = {goal:.2f} → {'met' if ce_test >= goal else 'NOT met'} "
        f"({ce_test - best_bi:+.2f} points over the best bi-encoder row).",
        "- The CE is chosen by dev, not by test, so the goal is checked on the model a user would ship.",
        "- Budget: the CE rows see every pair `epochs` times (twice per epoch with both orders); the bi-encoder rows "
        "one epoch of one order. Bi-encoders were not re-run at the CE's budget here.",
    ]
    REPORT.write_text("\n".join(lines) + "\n")
    logger.info("wrote %s", REPORT)


def backends(args: argparse.Namespace) -> None:
    """Score the CE in `args.model` on STS-B test under every backend; write BACKENDS_REPORT."""
    from semspace.errors import MissingExtraError, SemspaceError
    from semspace.evaluate.report import results_header

    folder = Path(args.model)
    if not (folder / "config.json").is_file():
        raise SystemExit(
            f"no trained cross-encoder in {folder}: run `python benchmarks/ce_recipe.py run --objective bce "
            "--epochs 4 --both-orders` first (or pass --model)"
        )
    test = load_sts_task("STS-B").test_all
    pairs = list(zip(test.sentences1, test.sentences2, strict=True))
    labels = np.asarray(test.scores)
    rows, reference = [], None
    for backend in BACKENDS:
        try:
            ce = CrossEncoder(folder, max_length=args.max_length, backend=backend)
        except SemspaceError as exc:  # an engine this machine cannot run, or whose export check fails: said, not hidden
            why = "unavailable" if isinstance(exc, MissingExtraError) else "refused"
            rows.append({"backend": backend, "note": f"{why}: {str(exc).splitlines()[0].replace('|', '/')}"})
            continue
        ce.predict(pairs[:64], show_progress_bar=False)  # warm-up: the first call's allocations are not timed
        started = time.perf_counter()
        forward, backward = predictions(ce, pairs)
        seconds = time.perf_counter() - started
        reference = forward if reference is None else reference
        rows.append(
            {
                "backend": backend if backend != "auto" else f"auto (→ {ce.backend})",
                "one_order": 100 * spearman(forward, labels),
                "both_orders": 100 * spearman((forward + backward) / 2, labels),
                "pearson_to_fp32": float(np.corrcoef(forward, reference)[0, 1]),
                "max_abs_to_fp32": float(np.max(np.abs(forward - reference))),
                "pairs_per_s": 2 * len(pairs) / seconds,
            }
        )
        logger.info("%s", rows[-1])
    command = "python benchmarks/ce_recipe.py " + " ".join(sys.argv[1:])
    made_by = "the recipe: `ce_recipe.py run --objective bce --epochs 4 --both-orders`, BCE on STS-B train in both "
    made_by += "orders, best-dev checkpoint (ce.md)" if folder == MODELS / f"ce-{recipe_name()}" else "given by --model"
    lines = [
        *results_header("The recipe's cross-encoder under every backend (issue 28, item 5)", command),
        f"- Model: `{folder}` ({made_by}).",
        f"- STS-B test ({len(pairs):,} pairs), Spearman × 100 of the CE's score: one order (a, b) and both orders "
        "averaged; loss = torch fp32's one-order Spearman minus the backend's. Scores compared with torch fp32's on "
        "the same pairs. pairs/s: both orders, one pass after a warm-up call, torch's default threads (speed "
        "against sentence-transformers is measured in engine_ce.md; this is only a reading).",
        "",
        "| backend | STS-B test | loss vs fp32 | both orders | Pearson of scores to fp32 | max abs diff to fp32 "
        "| pairs/s (1 pass) |",
        "|---|---|---|---|---|---|---|",
    ]
    base = next(r["one_order"] for r in rows if "note" not in r)
    for row in rows:
        if "note" in row:
            lines.append(f"| {row['backend']} | {row['note']} | | | | | |")
            continue
        lines.append(
            f"| {row['backend']} | {row['one_order']:.2f} | {base - row['one_order']:+.2f} | {row['both_orders']:.2f} "
            f"| {row['pearson_to_fp32']:.5f} | {row['max_abs_to_fp32']:.4f} | {row['pairs_per_s']:.0f} |"
        )
    over = [
        f"{r['backend']} ({base - r['one_order']:+.2f})"
        for r in rows
        if "note" not in r and base - r["one_order"] > 0.1
    ]
    lines += [
        "",
        "- Loss ≤ 0.1 point (the rule an encoder engine is held to): "
        + ("every backend run here" if not over else f"exceeded by {', '.join(over)}"),
    ]
    BACKENDS_REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    logger.info("wrote %s", BACKENDS_REPORT)


def recipe_name() -> str:
    """The run name of the recipe (`run --objective bce --epochs 4 --both-orders`, the other options at defaults)."""
    defaults = {"lr": 2e-5, "warmup": 0.1, "max_length": 128, "rdrop_alpha": 0.0, "seed": 0}
    return run_name(argparse.Namespace(objective="bce", epochs=4, both_orders=True, **defaults))


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run")
    one.add_argument("--objective", choices=("bce", "mse", "cosent"), default="bce")
    one.add_argument("--epochs", type=int, default=4)
    one.add_argument("--lr", type=float, default=2e-5)
    one.add_argument("--warmup", type=float, default=0.1)
    one.add_argument("--max-length", type=int, default=128)
    one.add_argument("--rdrop-alpha", type=float, default=0.0)
    one.add_argument("--both-orders", action="store_true")
    one.add_argument("--seed", type=int, default=0)
    one.add_argument("--smoke", action="store_true", help="4 steps, nothing written")
    sub.add_parser("report")
    every = sub.add_parser("backends")
    every.add_argument("--model", default=str(MODELS / f"ce-{recipe_name()}"), help="a trained CE folder")
    every.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args(argv)
    {"run": run, "report": lambda _: report(), "backends": backends}[args.command](args)


if __name__ == "__main__":
    main()
