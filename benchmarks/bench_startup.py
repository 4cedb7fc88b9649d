"""Start-up time of the `semspace` command: `--help`, `index info` and `index delete` on a small collection.

Each command runs as a fresh process (`python -m semspace …`, what the console script runs) after one uncounted
warm-up; the table gives median / min / max wall time over --runs runs. For scale it also times a bare
`python -c pass` and, with --compare, `import sentence_transformers` (what these commands no longer pay for).
Writes docs/results/startup.md.

    python benchmarks/bench_startup.py [--runs 7] [--compare] [--out docs/results/startup.md]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def wall_times(commands: list[list[str]]) -> list[float]:
    """Wall time of each command as a fresh process, the first one a warm-up that is not counted."""
    times = []
    for argv in commands:
        start = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return times[1:]


def make_collection(path: Path, n: int) -> list[str]:
    """A Flat collection of `n` documents with random vectors (the bundled encoder's settings; nothing encoded)."""
    from semspace.encode import Encoder
    from semspace.search import Collection

    ids = [f"d{i}" for i in range(n)]
    with Collection.create(path, encoder=Encoder()) as c:
        vectors = np.random.default_rng(0).normal(size=(n, c.raw_dim)).astype(np.float32)
        c.add([f"document {i}" for i in range(n)], ids=ids, vectors=vectors)
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="Counted runs per command (>= 5).")
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--compare", action="store_true", help="Also time `import sentence_transformers`.")
    parser.add_argument("--out", type=Path, default=Path("docs/results/startup.md"))
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5")

    from semspace.evaluate.report import results_header

    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        collection = Path(tmp) / "c"
        ids = iter(make_collection(collection, args.documents))
        cases = [
            ("python -c pass (interpreter alone)", [python, "-c", "pass"]),
            ("semspace --help", [python, "-m", "semspace", "--help"]),
            ("semspace index info C", [python, "-m", "semspace", "index", "info", str(collection)]),
        ]
        rows = [(label, wall_times([argv] * (args.runs + 1))) for label, argv in cases]
        # Every delete removes another document, so each run does real work (and never fails on a missing id).
        delete = [python, "-m", "semspace", "index", "delete", str(collection)]
        deletes = [[*delete, next(ids)] for _ in range(args.runs + 1)]
        rows.append(("semspace index delete C ID", wall_times(deletes)))
        if args.compare:
            imports = [[python, "-c", "import sentence_transformers"]] * (args.runs + 1)
            rows.append(("python -c 'import sentence_transformers'", wall_times(imports)))

    command = "python benchmarks/bench_startup.py " + " ".join(sys.argv[1:])
    lines = results_header("Start-up time of the semspace command", command.strip())
    lines += [
        "",
        f"Wall time of a fresh process, {args.runs} runs after one warm-up; collection C: Flat, "
        f"{args.documents} documents, bundled MiniLM settings (384-d).",
        "",
        "| command | median (s) | min (s) | max (s) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, times in rows:
        lines.append(f"| `{label}` | {statistics.median(times):.2f} | {min(times):.2f} | {max(times):.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
