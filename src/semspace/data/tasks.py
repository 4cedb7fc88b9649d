"""The STS benchmark tasks semspace evaluates, resolved against a data root laid out like ../shared/data."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from semspace.data.sts import STSPairs, read_senteval_cn, read_senteval_sts, read_sick, read_stsbenchmark
from semspace.errors import DatasetNotFoundError, InvalidParameterError

ENGLISH_TASKS = ("STS12", "STS13", "STS14", "STS15", "STS16", "STS-B", "SICK-R")
CHINESE_TASKS = ("ATEC", "BQ", "LCQMC", "PAWSX", "STS-B-zh")
ALL_TASKS = ENGLISH_TASKS + CHINESE_TASKS


@dataclass
class STSTask:
    """One STS task: test subsets (kept apart for STS12-16), a dev split for selection, a split to fit on.

    `dev` selects hyper-parameters (never test). `fit` is the "train" fit set: the train split where one exists,
    else the valid split. `target` is every sentence of the task's own splits, as in the BERT-whitening paper.
    """

    name: str
    language: str
    test: dict[str, STSPairs]
    dev: STSPairs
    fit: STSPairs | None
    dev_source: str
    fit_source: str
    own_splits: tuple[STSPairs, ...]

    @property
    def test_all(self) -> STSPairs:
        return STSPairs.concat(list(self.test.values()), self.name)

    def target_sentences(self) -> list[str]:
        """Every sentence of the task's own splits (labels unused), duplicates removed, order kept."""
        return list(dict.fromkeys(s for split in self.own_splits for s in split.sentences()))


def default_data_root() -> Path:
    """$SEMSPACE_DATA, else the nearest `shared/data` beside the current folder or one of its parents."""
    env = os.environ.get("SEMSPACE_DATA")
    if env:
        return Path(env)
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        candidate = folder.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
        candidate = folder / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return here.parent / "shared" / "data"


def load_sts_task(
    name: str, data_root: str | Path | None = None, max_pairs: int | None = None, seed: int = 0
) -> STSTask:
    """Load a task by name (see ALL_TASKS). `max_pairs` caps each split with a seeded sample (for time budgets)."""
    if name not in ALL_TASKS:
        raise InvalidParameterError(f"Unknown STS task {name!r}; choose one of {', '.join(ALL_TASKS)}.")
    root = Path(data_root) if data_root is not None else default_data_root()
    if not root.is_dir():
        raise DatasetNotFoundError(f"data root {root} does not exist (set --data-root or $SEMSPACE_DATA)")

    def cap(p: STSPairs) -> STSPairs:
        return p.subsample(max_pairs, seed)

    if name in CHINESE_TASKS:
        folder = "STS-B" if name == "STS-B-zh" else name
        base = root / "senteval_cn" / folder
        valid = cap(read_senteval_cn(base / f"{folder}.valid.data", f"{name}-valid"))
        test = cap(read_senteval_cn(base / f"{folder}.test.data", name))
        train_path = base / f"{folder}.train.data"
        train = cap(read_senteval_cn(train_path, f"{name}-train")) if train_path.exists() else None
        fit, fit_source = (train, "train") if train is not None else (valid, "valid")
        own = tuple(s for s in (train, valid, test) if s is not None)
        return STSTask(name, "zh", {name: test}, valid, fit, "valid", fit_source, own)

    stsb = {k: cap(v) for k, v in read_stsbenchmark(root / "stsbenchmark_sbert" / "stsbenchmark.tsv.gz").items()}
    if name == "STS-B":
        own = (stsb["train"], stsb["dev"], stsb["test"])
        return STSTask(name, "en", {name: stsb["test"]}, stsb["dev"], stsb["train"], "dev", "train", own)
    if name == "SICK-R":
        base = root / "senteval_downstream" / "SICK"
        train = cap(read_sick(base / "SICK_train.txt"))
        trial = cap(read_sick(base / "SICK_trial.txt"))
        test = cap(read_sick(base / "SICK_test_annotated.txt"))
        return STSTask(name, "en", {name: test}, trial, train, "trial", "train", (train, trial, test))
    subsets = read_senteval_sts(root / "senteval_downstream" / "STS" / f"{name}-en-test")
    subsets = {k: cap(v) for k, v in subsets.items()}
    # STS12-16 have test data only: select on STS-B dev; "target" is their own test sentences.
    return STSTask(name, "en", subsets, stsb["dev"], None, "STS-B dev", "-", tuple(subsets.values()))
