"""The vendored STS-B sample shipped inside the package (used by `semspace demo` and the tests)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from semspace.data.sts import STSPairs, read_stsbenchmark


def sample_path() -> Path:
    return Path(str(resources.files("semspace.data") / "samples" / "stsbenchmark-sample.tsv.gz"))


def load_sample() -> dict[str, STSPairs]:
    """300 train / 200 dev / 300 test pairs of STS Benchmark (seeded sample), offline."""
    return read_stsbenchmark(sample_path())
