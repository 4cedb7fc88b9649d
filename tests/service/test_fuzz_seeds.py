"""`benchmarks/fuzz_service.py` with small numbers (slow: run with `SEMSPACE_SLOW=1`): two seeds, both servers, the
API-key probe, and its section of the results file."""

from __future__ import annotations

import os

import pytest
from support import load_benchmark

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("SEMSPACE_SLOW") != "1", reason="slow: set SEMSPACE_SLOW=1"),
]


def test_fuzz_service_benchmark_small(tmp_path):
    bench = load_benchmark("fuzz_service")
    out = tmp_path / "reliability.md"
    out.write_text("# Collections shared by many processes\n\n## Stress\n\nkept\n", encoding="utf-8")
    assert bench.main(["--seeds", "3,4", "--examples", "5", "--out", str(out)]) == 0
    assert bench.main(["--seeds", "5", "--examples", "3", "--out", str(out)]) == 0  # rewrites its section
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Collections shared by many processes\n\n## Stress\n\nkept\n")
    assert text.count(bench.SECTION) == 1 and "| 5 | collection |" in text and "| 3 | collection |" not in text
    assert "| none | " in text and "Problems: 0." in text
