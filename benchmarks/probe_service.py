"""Where a served request's CPU goes (issue 28 item 4): the numbers of docs/results/engine_service.md's notes.

    python benchmarks/probe_service.py event-loop [--requests 2976] [--rounds 3]
    OMP_NUM_THREADS=1 python benchmarks/probe_service.py engine --backend onnx-int8 [--group 15] [--overheads 16,32,64]

event-loop: the app in process (no sockets, no uvicorn) over the bundled MiniLM on onnx-int8, 32 concurrent clients
sending one STS-B-like sentence per request to /embed and /v1/embeddings; CPU of the event loop's thread per request
(``time.thread_time``; the engine runs on the batcher's threads), for the fast lane and for FastAPI's full path (the
lane steps aside whenever ``dependency_overrides`` is set), interleaved per round.

engine: the engine's CPU per text (``time.process_time``) for 2,000 STS-B test sentences in one sorted call, and in
random groups of `--group` (what the service's batcher gathers from 32 single-text clients), at each per-call
overhead ``plan_batches`` may weigh (``CALL_OVERHEAD_TOKENS``; ``call_overhead_tokens`` halves it on one thread),
at this process's engine threads.

    OMP_NUM_THREADS=1 python benchmarks/probe_service.py packing [--backend torch|onnx|onnx-int8] [--groups 15,32]
        [--packs 256,512,1024]

packing: an engine's CPU per text (default the fp32 PyTorch engine) for 2,000 STS-B test sentences in random groups
of each `--groups` size, packed into rows of at most each `--packs` tokens (``_PACK_TOKENS[backend]``, also for an
engine that does not pack by default) and padded (packing off), interleaved, and in one sorted call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time

import semspace.encode.encoder as encoder_module
from semspace.data.tasks import default_data_root, load_sts_task
from semspace.encode import Encoder
from semspace.service import create_app
from semspace.service.app import lifespan

CLIENTS = 32


def sentences(n: int) -> list[str]:
    task = load_sts_task("STS-B", default_data_root())
    return list(dict.fromkeys(s for pairs in task.test.values() for s in pairs.sentences()))[:n]


async def post(app, path: str, body: bytes) -> None:
    """One request through the ASGI app, as uvicorn hands it over."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    messages = iter([{"type": "http.request", "body": body, "more_body": False}])
    status = []

    async def receive():
        return next(messages)

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    assert status == [200], status


def bodies(path: str, texts: list[str]) -> list[bytes]:
    key = {"/embed": lambda t: {"texts": [t]}, "/v1/embeddings": lambda t: {"input": [t], "model": "x"}}[path]
    return [json.dumps(key(t)).encode() for t in texts]


async def loop_cpu(app, path: str, texts: list[str], full_path: bool) -> float:
    """Event-loop CPU ms per request, 32 clients."""
    app.dependency_overrides.clear()
    if full_path:
        app.dependency_overrides[sentences] = sentences  # any override: the fast lane takes the full path
    payloads = bodies(path, texts)
    per = len(payloads) // CLIENTS

    async def client(i: int) -> None:
        for body in payloads[i * per : (i + 1) * per]:
            await post(app, path, body)

    started = time.thread_time()
    await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    return 1e3 * (time.thread_time() - started) / (per * CLIENTS)


async def event_loop(args) -> None:
    app = create_app(encoder=Encoder(None, backend="onnx-int8"))
    texts = sentences(args.requests)
    results: dict = {}
    async with lifespan(app):
        for path in ("/embed", "/v1/embeddings"):
            for body in bodies(path, texts[:200]):  # warm-up
                await post(app, path, body)
        for _ in range(args.rounds):
            for path in ("/embed", "/v1/embeddings"):
                for full in (True, False):
                    results.setdefault((path, full), []).append(await loop_cpu(app, path, texts, full))
    for (path, full), values in results.items():
        lane = "full path" if full else "fast lane"
        print(f"{path} {lane}: event-loop CPU ms/request per round " + " / ".join(f"{v:.3f}" for v in values))


def engine(args) -> None:
    import os

    texts = sentences(2000)
    enc = Encoder(None, backend=args.backend)
    enc.encode(texts[:256], show_progress_bar=False)
    order = texts[:]
    random.Random(0).shuffle(order)
    groups = [order[i : i + args.group] for i in range(0, len(order), args.group)]

    def cpu_ms(run) -> float:
        started = time.process_time()
        run()
        return 1e3 * (time.process_time() - started) / len(texts)

    print(f"{args.backend}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    for p in range(args.passes):
        print(f"pass {p + 1}: one call {cpu_ms(lambda: enc.encode(texts, show_progress_bar=False)):.3f} ms/text")
        for overhead in args.overheads:
            encoder_module.CALL_OVERHEAD_TOKENS[args.backend] = overhead
            encoder_module.ONE_THREAD_CALL_OVERHEAD_TOKENS.pop(args.backend, None)  # `overhead`, halved on one thread
            took = cpu_ms(lambda: [enc.encode(g, show_progress_bar=False) for g in groups])
            weighed = encoder_module.call_overhead_tokens(args.backend)  # halved on one engine thread
            print(f"pass {p + 1}: groups of {args.group}, a call weighed as {weighed} tokens: {took:.3f} ms/text")


def packing(args) -> None:
    import os

    texts = sentences(2000)
    enc = Encoder(None, backend=args.backend)
    enc.encode(texts[:256], show_progress_bar=False)
    if not enc._adapter.packs():
        raise SystemExit("this model does not pack (its check failed)")
    order = texts[:]
    random.Random(0).shuffle(order)
    default, chunk = dict(encoder_module._PACK_TOKENS), encoder_module._PACKED_CHUNK
    print(f"{args.backend}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    for p in range(args.passes):
        encoder_module._PACK_TOKENS, encoder_module._PACKED_CHUNK = dict(default), chunk
        started = time.process_time()
        enc.encode(texts, show_progress_bar=False)
        print(f"pass {p + 1}: one sorted call {1e3 * (time.process_time() - started) / len(texts):.3f} ms/text")
        for size in args.groups:
            groups = [order[i : i + size] for i in range(0, len(order), size)]
            for pack in [*args.packs, 0]:
                encoder_module._PACK_TOKENS[args.backend] = pack  # 0: this engine does not pack
                encoder_module._PACKED_CHUNK = chunk if pack else 0  # 0: no group packs, every group is padded
                started = time.process_time()
                for group in groups:
                    enc.encode(group, show_progress_bar=False)
                took = 1e3 * (time.process_time() - started) / len(texts)
                how = f"packed in rows of <= {pack} tokens" if pack else "padded"
                print(f"pass {p + 1}: groups of {size}, {how}: {took:.3f} ms/text")
    encoder_module._PACK_TOKENS, encoder_module._PACKED_CHUNK = default, chunk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="probe", required=True)
    loop = sub.add_parser("event-loop")
    loop.add_argument("--requests", type=int, default=2976)
    loop.add_argument("--rounds", type=int, default=3)
    eng = sub.add_parser("engine")
    eng.add_argument("--backend", default="onnx-int8")
    eng.add_argument("--group", type=int, default=15)
    eng.add_argument("--overheads", type=lambda s: [int(x) for x in s.split(",")], default=[16, 32, 64])
    eng.add_argument("--passes", type=int, default=2)
    pack = sub.add_parser("packing")
    pack.add_argument("--backend", default="torch", choices=["torch", "onnx", "onnx-int8"])
    pack.add_argument("--groups", type=lambda s: [int(x) for x in s.split(",")], default=[15, 32])
    pack.add_argument("--packs", type=lambda s: [int(x) for x in s.split(",")], default=[256, 512, 1024])
    pack.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()
    if args.probe == "event-loop":
        asyncio.run(event_loop(args))
    elif args.probe == "engine":
        engine(args)
    else:
        packing(args)


if __name__ == "__main__":
    main()
