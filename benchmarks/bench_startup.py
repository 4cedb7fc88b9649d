"""Start-up time of the `semspace` command: `--help`, `index info` and `index delete` on a small collection.

Each command runs as a fresh process (`python -m semspace …`, what the console script runs); the commands take
turns within each round (interleaved, so a busy moment hits all of them alike), the first round is an uncounted
warm-up, and the table gives median / min / max wall time over --runs rounds. For scale it also times a bare
`python -c pass` and, with --compare, `import sentence_transformers` (what these commands no longer pay for).
With --before SRC (the `src` folder of an earlier checkout, e.g. `git worktree add /tmp/old 1e9c835`), the same
commands of that version run in the same rounds, on the same collection, and the table adds their ratio.
With --server, `semspace serve` runs on the folder holding C (started once, warm) and the rounds add
`index search` on the folder (the CLI loads the model to encode the query) and `index search --url` (the server
encodes it; the CLI loads no model). Writes docs/results/startup.md.

    python benchmarks/bench_startup.py [--runs 7] [--compare] [--server] [--before /tmp/old/src] [--out …]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np


def wall_time(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Wall time of one command as a fresh process (it must succeed)."""
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return elapsed


def make_collection(path: Path, n: int) -> list[str]:
    """A Flat collection of `n` documents with random vectors (the bundled encoder's settings; nothing encoded)."""
    from semspace.encode import Encoder
    from semspace.search import Collection

    ids = [f"d{i}" for i in range(n)]
    with Collection.create(path, encoder=Encoder()) as c:
        vectors = np.random.default_rng(0).normal(size=(n, c.raw_dim)).astype(np.float32)
        c.add([f"document {i}" for i in range(n)], ids=ids, vectors=vectors)
    return ids


@contextlib.contextmanager
def serving(folder: Path) -> Iterator[str]:
    """`semspace serve FOLDER` on a free port of 127.0.0.1 until the block ends; yields its URL once /health
    answers (the model loaded)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "semspace", "serve", str(folder), "--port", str(port)]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while True:
            if server.poll() is not None or time.time() > deadline:
                raise SystemExit(f"semspace serve did not start: {server.stderr.read() if server.stderr else ''}")
            with contextlib.suppress(OSError), urllib.request.urlopen(url + "/health", timeout=2) as answer:
                if answer.status == 200:
                    break
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="Counted runs per command (>= 5).")
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--compare", action="store_true", help="Also time `import sentence_transformers`.")
    parser.add_argument("--before", type=Path, help="`src` folder of an earlier semspace to time in the same rounds.")
    parser.add_argument("--server", action="store_true", help="Also time `index search` with and without --url.")
    parser.add_argument("--out", type=Path, default=Path("docs/results/startup.md"))
    args = parser.parse_args()
    if args.runs < 5:
        parser.error("--runs must be at least 5")

    from semspace.evaluate.report import results_header

    load_before = os.getloadavg()[0]
    python = sys.executable
    old_env = None if args.before is None else {**os.environ, "PYTHONPATH": str(args.before.resolve())}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        collection = Path(tmp) / "c"
        ids = iter(make_collection(collection, args.documents))
        url = stack.enter_context(serving(Path(tmp))) if args.server else None
        # (label, argv or a function giving the next argv, env); the old CLI is `python -m semspace.cli`
        cases: list[tuple[str, object, dict[str, str] | None]] = [
            ("python -c pass (interpreter alone)", [python, "-c", "pass"], None),
            ("semspace --help", [python, "-m", "semspace", "--help"], None),
            ("semspace index info C", [python, "-m", "semspace", "index", "info", str(collection)], None),
            # every delete removes another document, so each run does real work (and never fails on a missing id)
            (
                "semspace index delete C ID",
                lambda: [python, "-m", "semspace", "index", "delete", str(collection), next(ids)],
                None,
            ),
        ]
        if old_env is not None:
            old = [python, "-m", "semspace.cli"]
            cases += [
                ("before: semspace --help", [*old, "--help"], old_env),
                ("before: semspace index info C", [*old, "index", "info", str(collection)], old_env),
                (
                    "before: semspace index delete C ID",
                    lambda: [*old, "index", "delete", str(collection), next(ids)],
                    old_env,
                ),
            ]
        if url is not None:
            search = [python, "-m", "semspace", "index", "search"]
            cases += [
                ("semspace index search C QUERY (loads the model)", [*search, str(collection), "a query"], None),
                ("semspace index search c QUERY --url URL", [*search, "c", "a query", "--url", url], None),
            ]
        if args.compare:
            cases.append(
                ("python -c 'import sentence_transformers'", [python, "-c", "import sentence_transformers"], None)
            )
        times: dict[str, list[float]] = {label: [] for label, _, _ in cases}
        for round_number in range(args.runs + 1):  # round 0 is the warm-up
            for label, argv, env in cases:
                elapsed = wall_time(argv() if callable(argv) else argv, env)
                if round_number:
                    times[label].append(elapsed)
        rows = list(times.items())
    load_after = os.getloadavg()[0]

    command = "python benchmarks/bench_startup.py " + " ".join(sys.argv[1:])
    lines = results_header("Start-up time of the semspace command", command.strip())
    lines += [
        "",
        f"Wall time of a fresh process, {args.runs} interleaved rounds after one warm-up round; collection C: Flat, "
        f"{args.documents} documents, bundled MiniLM settings (384-d)."
        + ("" if args.before is None else f" `before` = the CLI of `{args.before}` (`python -m semspace.cli`).")
        + ("" if url is None else " `--url`: `semspace serve` on the folder holding C, started before the rounds.")
        + f" Load average (1 min) {load_before:.1f} at the start, {load_after:.1f} at the end.",
        "",
        "| command | median (s) | min (s) | max (s) | before ÷ now (median) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    medians = {label: statistics.median(values) for label, values in rows}
    for label, values in rows:
        before = medians.get(f"before: {label}")
        ratio = "" if before is None else f"{before / medians[label]:.1f}×"
        lines.append(f"| `{label}` | {medians[label]:.2f} | {min(values):.2f} | {max(values):.2f} | {ratio} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
