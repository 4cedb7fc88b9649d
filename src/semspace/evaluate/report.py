"""Tables (markdown, CSV) and plots for STS results, with the command, date and machine that made them."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import platform
from collections.abc import Sequence
from pathlib import Path

from semspace._io import atomic_write_bytes, atomic_write_png
from semspace.data.tasks import CHINESE_TASKS, ENGLISH_TASKS

TABLE_TRANSFORMS = [
    ("raw", "-"),
    ("whitening", "target"),
    ("whitening-256", "target"),
    ("whitening-128", "target"),
    ("whitening-64", "target"),
    ("tuned", "target"),
    ("whitening", "train"),
    ("whitening-128", "train"),
    ("tuned", "train"),
    ("whitening", "valid"),
    ("tuned", "valid"),
]
CSV_FIELDS = [
    "model",
    "pooling",
    "language",
    "task",
    "transform",
    "fit",
    "k",
    "beta",
    "gamma",
    "wmean",
    "all",
    "n_test_pairs",
    "dev_gain",
    "dev_gain_lower_bound",
]

# Published numbers for context (the BERT-whitening paper, arXiv 2103.15316, and Su Jianlin's whitening posts,
# kexue.fm 8069, 8321, 9079); different models from ours except the MiniLM rows.
PUBLISHED = """| source | model / pooling | setting | STS-B test |
|---|---|---|---|
| BERT-whitening paper | bert-base-uncased first-last-avg | raw → whitening → whitening-256 | 59.04 → 71.34 → 71.43 |
| kexue.fm 8069, 8321, 9079 | all-MiniLM-L6-v2 mean | raw | 82.03 |
| kexue.fm 8069, 8321, 9079 | all-MiniLM-L6-v2 mean | whitening fit on STS-B train, k=128 | 81.37 |

Chinese (bert-base-chinese first-last-avg, ATEC / BQ / LCQMC / PAWSX / STS-B): raw 24.51 / 38.81 / 64.75 / 15.12 /
61.66; whitening 27.00 / 32.29 / 64.75 / 17.80 / 69.45; whitening-256 27.91 / 37.67 / 65.65 / 15.34 / 69.37.
SimBERT CLS raw 38.50 / 48.54 / 76.23 / 15.10 / 74.14 → whitening 23.64 / 31.78 / 75.05 / 18.49 / 73.37
(whitening hurts already-trained encoders)."""


def machine_description() -> str:
    """The CPU (model, the class the engine choice depends on, its ISA flags), cores, OS, Python and torch: timings
    differ between AVX2, AVX-512 and AMX machines, so every result file names them."""
    import torch

    from semspace.encode.cpu import cpu_features

    return (
        f"{cpu_features().describe()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, torch {torch.__version__}"
    )


def results_header(title: str, command: str) -> list[str]:
    """The first lines of every docs/results file: title, the command that made it, date (UTC) and machine."""
    return [
        f"# {title}",
        f"- Command: `{command}`",
        f"- Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {machine_description()}",
    ]


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _lookup(rows: Sequence[dict], **match: object) -> dict | None:
    return next((r for r in rows if all(r.get(k) == v for k, v in match.items())), None)


def _table(rows: Sequence[dict], tasks: Sequence[str], metric: str, group_by_pooling: bool) -> str:
    present = [t for t in tasks if any(r["task"] == t for r in rows)]
    if not present:
        return ""
    head = ["model", "pooling", "transform", "fit", *present, "avg"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    groups = list(dict.fromkeys((r["model"], r["pooling"]) for r in rows if r["task"] in present))
    for model, pooling in groups:
        for transform, fit in TABLE_TRANSFORMS:
            cells = []
            for task in present:
                row = _lookup(rows, model=model, pooling=pooling, task=task, transform=transform, fit=fit)
                cells.append(None if row is None else row[metric])
            if all(c is None for c in cells):
                continue
            avg = sum(cells) / len(cells) if all(c is not None for c in cells) else None
            lines.append("| " + " | ".join([model, pooling, transform, fit, *map(_fmt, cells), _fmt(avg)]) + " |")
    return "\n".join(lines)


def _tuned_table(rows: Sequence[dict]) -> str:
    lines = [
        "| model | pooling | task | fit | β | γ | k | dev gain | dev gain 5% bound | test tuned − raw "
        "| plain argmax (β, γ, k) | its test − raw |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["transform"] != "tuned":
            continue
        raw = _lookup(rows, model=r["model"], pooling=r["pooling"], task=r["task"], transform="raw")
        delta = r["wmean"] - raw["wmean"]
        plain = _lookup(rows, model=r["model"], pooling=r["pooling"], task=r["task"], transform="argmax", fit=r["fit"])
        plain_cells = (
            "– | –"
            if plain is None
            else (f"{plain['beta']:g}, {plain['gamma']:g}, {plain['k']} | {plain['wmean'] - raw['wmean']:+.2f}")
        )
        lines.append(
            f"| {r['model']} | {r['pooling']} | {r['task']} | {r['fit']} | {r['beta']:g} | {r['gamma']:g} "
            f"| {r['k']} | {r['dev_gain']:+.2f} | {r['dev_gain_lower_bound']:+.2f} | {delta:+.2f} | {plain_cells} |"
        )
    return "\n".join(lines)


def target_check(rows: Sequence[dict], tolerance: float = 0.1) -> tuple[int, list[str]]:
    """Tuned ≥ raw − tolerance on every test set (every metric); returns (#checked, failures)."""
    checked, failures = 0, []
    for r in rows:
        if r["transform"] != "tuned":
            continue
        raw = _lookup(rows, model=r["model"], pooling=r["pooling"], task=r["task"], transform="raw")
        for metric in ("wmean", "all"):
            checked += 1
            if r[metric] < raw[metric] - tolerance:
                failures.append(
                    f"{r['model']} / {r['pooling']} / {r['task']} / fit {r['fit']} / {metric}: "
                    f"tuned {r[metric]:.2f} vs raw {raw[metric]:.2f}"
                )
    return checked, failures


def _robust_vs_argmax(rows: Sequence[dict]) -> str:
    """How often (and how much) the robust rule and the plain dev argmax lose to raw on test (wmean)."""
    stats = {}
    for kind in ("tuned", "argmax"):
        deltas = []
        for r in rows:
            if r["transform"] == kind:
                raw = _lookup(rows, model=r["model"], pooling=r["pooling"], task=r["task"], transform="raw")
                deltas.append(r["wmean"] - raw["wmean"])
        if deltas:
            stats[kind] = (sum(d < -0.1 for d in deltas), len(deltas), min(deltas), sum(deltas) / len(deltas))
    if len(stats) < 2:
        return ""
    (t_bad, t_n, t_min, t_mean), (a_bad, _, a_min, a_mean) = stats["tuned"], stats["argmax"]
    return (
        f"\nRobust rule vs plain dev argmax (wmean, test − raw over {t_n} settings): robust loses > 0.1 in "
        f"{t_bad}, worst {t_min:+.2f}, mean {t_mean:+.2f}; argmax loses > 0.1 in {a_bad}, worst {a_min:+.2f}, "
        f"mean {a_mean:+.2f}."
    )


def _helps_hurts(rows: Sequence[dict]) -> str:
    """The seed's fixed recipe (β=γ=1, fit on target, full k and k=256) minus raw, per test set."""
    lines = [
        "| model | pooling | task | raw | whitening − raw | whitening-256 − raw |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["transform"] != "raw":
            continue
        key = {"model": r["model"], "pooling": r["pooling"], "task": r["task"], "fit": "target"}
        full = _lookup(rows, transform="whitening", **key)
        k256 = _lookup(rows, transform="whitening-256", **key)
        lines.append(
            f"| {r['model']} | {r['pooling']} | {r['task']} | {r['wmean']:.2f} | "
            f"{full['wmean'] - r['wmean']:+.2f} | "
            f"{'–' if k256 is None else format(k256['wmean'] - r['wmean'], '+.2f')} |"
        )
    return "\n".join(lines)


def plot_spearman_vs_k(rows: Sequence[dict], path: Path) -> None:
    """One panel per (model, pooling) with a default pooling: Spearman vs k for β=γ=1 fitted on target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(
        dict.fromkeys(
            (r["model"], r["pooling"], r["language"])
            for r in rows
            if "default" in r["pooling"] or r["model"] != "all-MiniLM-L6-v2"
        )
    )
    groups = groups or list(dict.fromkeys((r["model"], r["pooling"], r["language"]) for r in rows))
    fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 4.2), squeeze=False)
    for ax, (model, pooling, language) in zip(axes[0], groups, strict=True):
        for task in dict.fromkeys(r["task"] for r in rows if r["model"] == model and r["language"] == language):
            curve = sorted(
                (r["k"], r["wmean"])
                for r in rows
                if r["model"] == model
                and r["pooling"] == pooling
                and r["task"] == task
                and r["fit"] == "target"
                and (r["transform"].startswith(("whitening", "curve-")))
            )
            if not curve:
                continue
            line = ax.plot([k for k, _ in curve], [v for _, v in curve], marker="o", ms=3, label=task)[0]
            raw = _lookup(rows, model=model, pooling=pooling, task=task, transform="raw")
            ax.axhline(raw["wmean"], color=line.get_color(), ls=":", lw=1)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("k (whitening dimensions, β=γ=1, fit on target)")
        ax.set_ylabel("Spearman × 100 (test)")
        ax.set_title(f"{model} / {pooling} ({language}); dotted = raw", fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write_png(path, fig)


def write_csv(rows: Sequence[dict], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))


def write_sts_report(
    rows: Sequence[dict], out_dir: str | Path, command: str, notes: str = "", name: str = "sts"
) -> Path:
    """Write `<name>.md`, `<name>.csv` and `<name>_vs_k.png` into out_dir; returns the markdown path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out / f"{name}.csv")
    plot_spearman_vs_k(rows, out / f"{name}_vs_k.png")
    checked, failures = target_check(rows)
    english = [r for r in rows if r["task"] in ENGLISH_TASKS]
    chinese = [r for r in rows if r["task"] in CHINESE_TASKS]
    parts = [
        *results_header("STS results: raw vs whitening vs tuned", command),
        "- Metric: Spearman × 100 of cosine vs gold on **test**. STS12–16: `wmean` = subset Spearmans weighted by "
        "subset size (BERT-whitening paper); `all` = one Spearman over all subsets (SimCSE/SBERT).",
        "- Fit sets: `target` = all sentences of the task's own splits (labels unused, as in the paper); "
        "`train` = the train split; `valid` = the valid split (Chinese tasks without train). `tuned` picks "
        "(β, γ, k) on the dev split (STS-B dev for STS12–16, SICK trial for SICK-R, valid for Chinese) with "
        "`tune_whitening`'s default rule (nested k-fold cross-validation on dev, a small grid near raw; raw is "
        "left only when the 5% lower bound of the held-out gain is > 0; `dev gain 5% bound` is that bound).",
    ]
    if notes:
        parts.append(notes)
    if english:
        parts += [
            "",
            "## English (wmean for STS12–16)",
            _table(english, ENGLISH_TASKS, "wmean", True),
            "",
            "## English, `all` aggregation for STS12–16",
            _table(english, ENGLISH_TASKS, "all", True),
        ]
    if chinese:
        parts += ["", "## Chinese", _table(chinese, CHINESE_TASKS, "wmean", False)]
    parts += [
        "",
        f"## Target: tuned ≥ raw − 0.1 on every test set: {'met' if not failures else 'MISSED'} "
        f"({checked - len(failures)}/{checked} checks pass)",
        *(f"- {f}" for f in failures),
        _robust_vs_argmax(rows),
        "",
        "## Where the seed's fixed recipe (β=γ=1, fit on target) helps and hurts (wmean, test)",
        _helps_hurts(rows),
        "",
        "## Tuned settings (selected on dev, never on test)",
        _tuned_table(rows),
        "",
        f"## Spearman vs k\n\n![Spearman vs k]({name}_vs_k.png)",
        "",
        "## Published rows for comparison (BERT-whitening paper, arXiv 2103.15316; kexue.fm 8069, 8321, 9079)",
        PUBLISHED,
        "",
    ]
    path = out / f"{name}.md"
    atomic_write_bytes(path, "\n".join(parts).encode("utf-8"))
    return path
