"""Bounded load test of `semspace serve` on loopback: N concurrent clients for D seconds mixing search and add.

Starts the service in a subprocess on 127.0.0.1 (a fresh collection of the vendored STS-B sample sentences, bundled
MiniLM), runs the clients, stops by itself, then checks that every acknowledged add is retrievable (no lost
document). Writes docs/results/service_load.md.

    python benchmarks/load_service.py [--clients 32] [--seconds 60] [--add-fraction 0.1]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--add-fraction", type=float, default=0.1)
    parser.add_argument("--out", type=Path, default=Path("docs/results/service_load.md"))
    args = parser.parse_args()

    from semspace.data import load_sample
    from semspace.evaluate.report import results_header
    from semspace.search import Collection

    sentences = list(dict.fromkeys(s for split in load_sample().values() for s in split.sentences()))
    work = Path(tempfile.mkdtemp(prefix="semspace-load-"))
    with Collection.create(work / "c") as c:
        c.add(sentences[:1000], ids=[f"seed-{i}" for i in range(1000)], show_progress_bar=False)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "semspace.cli", "serve", str(work / "c"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or server.poll() is not None:
                raise SystemExit(f"server did not start: {server.stderr.read() if server.poll() is not None else ''}")
            time.sleep(0.5)

        latencies: dict[str, list[float]] = {"search": [], "add": []}
        errors: list[str] = []
        acknowledged: list[str] = []
        lock = threading.Lock()
        stop_at = time.time() + args.seconds

        def client(number: int) -> None:
            rng = np.random.default_rng(number)
            with httpx.Client(base_url=url, timeout=60) as http:
                counter = 0
                while time.time() < stop_at:
                    is_add = rng.random() < args.add_fraction
                    text = sentences[int(rng.integers(len(sentences)))]
                    start = time.perf_counter()
                    try:
                        if is_add:
                            doc_id = f"c{number}-{counter}"
                            counter += 1
                            r = http.post("/documents", json={"documents": [{"id": doc_id, "text": text}]})
                        else:
                            r = http.post("/search", json={"query": text, "k": 10})
                        elapsed = time.perf_counter() - start
                        with lock:
                            if r.status_code == 200:
                                latencies["add" if is_add else "search"].append(elapsed)
                                if is_add:
                                    acknowledged.append(doc_id)
                            else:
                                errors.append(f"{r.status_code} {r.text[:100]}")
                    except httpx.HTTPError as exc:
                        with lock:
                            errors.append(type(exc).__name__)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - began
        health = httpx.get(url + "/health", timeout=30).json()
        with httpx.Client(base_url=url, timeout=30) as http:
            lost = [d for d in acknowledged if http.get(f"/documents/{d}").status_code != 200]
    finally:
        server.terminate()
        server.wait(timeout=30)

    every = latencies["search"] + latencies["add"]
    total = len(every) + len(errors)

    def pct(values: list[float], q: float) -> str:
        return f"{1000 * float(np.percentile(values, q)):.0f}" if values else "–"

    lines = [
        *results_header("Service load test (loopback)", f"python {' '.join(sys.argv)}"),
        f"- Setup: `semspace serve` (uvicorn, one process) on 127.0.0.1, bundled all-MiniLM-L6-v2, Flat index seeded "
        f"with 1,000 STS-B sample sentences; {args.clients} concurrent clients for {args.seconds:.0f} s, each request "
        f"a search (k=10) or, with probability {args.add_fraction}, an add of one document.",
        "",
        "| requests | requests/s | errors | search p50 ms | search p99 ms | add p50 ms | add p99 ms |",
        "|---|---|---|---|---|---|---|",
        f"| {total} | {total / wall:.1f} | {len(errors)} | {pct(latencies['search'], 50)} | "
        f"{pct(latencies['search'], 99)} | {pct(latencies['add'], 50)} | {pct(latencies['add'], 99)} |",
        "",
        f"- Acknowledged adds: {len(acknowledged)}; missing afterwards: {len(lost)} (goal 0). Documents at the end: "
        f"{health['documents']} (expected {1000 + len(acknowledged)}).",
        f"- Errors (goal 0): {len(errors)}" + (f"; first: {errors[:3]}" if errors else "."),
        "- Latency includes encoding the query/document on the server's 2 CPU cores, which dominates.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
