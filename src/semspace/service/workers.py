"""`semspace serve --workers N`: N server processes on one port, each with its own app (encoder, batcher, open
collections) and cores ÷ N engine threads.

Single-text requests gathered into batches of a dozen or two scale better over processes than over intra-op
threads (docs/results/engine_service.md). Each worker listens on its own ``SO_REUSEPORT`` socket, so the kernel
spreads new connections evenly over the workers by a hash of their addresses; with one shared socket (uvicorn's
``workers=``), whichever worker wakes first accepts a burst of keep-alive connections — 28 of 32 clients on one of
two workers in one measured run, slower than a single process. Collections stay consistent across workers: every
write takes the collection's cross-process file lock and every process reads the others' commits
(:mod:`semspace.search.collection`). Prometheus counters add up over the workers (prometheus_client's multiprocess
mode, :meth:`semspace.service.metrics.ServiceMetrics.exposition`).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import socket
import tempfile
import threading
from typing import Any

logger = logging.getLogger(__name__)

STARTUP_FAILURE = 3  # uvicorn's exit code when an app cannot start (uvicorn.config.STARTUP_FAILURE)
APP_FACTORY = "semspace.service.app:app_from_env"
LISTEN_BACKLOG = 2048  # uvicorn's own default
# uvicorn as `semspace serve` runs it (one process or each worker): warnings and errors only; no access log, which
# that level hid anyway but whose arguments uvicorn still formatted for every request. HTTP parser and event loop
# are uvicorn's defaults, httptools and uvloop, which its `standard` extra (the `serve` extra's) installs.
UVICORN_OPTIONS: dict[str, Any] = {"log_level": "warning", "access_log": False}


def serve_workers(spec: dict[str, Any], workers: int, host: str, port: int) -> int:
    """Serve `spec` (:func:`semspace.service.app.app_from_spec`'s JSON options) from `workers` processes on
    host:port until SIGINT or SIGTERM; a worker that dies is restarted. Returns the exit code: 0, or 3 (as uvicorn
    exits for one process) when a worker could not load what it serves."""
    from semspace.encode.engine import physical_cores
    from semspace.service.app import WORKER_SPEC

    os.environ[WORKER_SPEC] = json.dumps(spec)
    # read by torch when each worker imports it, and by semspace.encode.engine.engine_threads for ONNX Runtime
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, physical_cores() // workers)))
    with tempfile.TemporaryDirectory(prefix="semspace-metrics-") as folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        sockets = listening_sockets(host, port, workers)
        try:
            return supervise(sockets, workers)
        finally:
            for sock in sockets:
                sock.close()


def listening_sockets(host: str, port: int, n: int) -> list[socket.socket]:
    """`n` sockets bound to host:port with SO_REUSEPORT (one per worker), or one shared socket where the platform
    has no SO_REUSEPORT. Bound here, before any worker starts, so a port in use fails at once, and listening: the
    kernel spreads connections over listening sockets only, so a socket that waited for its worker to load a model
    left every client that connected meanwhile on the first worker for the life of its keep-alive connection
    (the batcher then gathers all 32 clients' texts in one process); now such a client waits in the socket's backlog."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    reuse_port = getattr(socket, "SO_REUSEPORT", None)
    sockets: list[socket.socket] = []
    for _ in range(n if reuse_port is not None else 1):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port is not None:
            sock.setsockopt(socket.SOL_SOCKET, reuse_port, 1)
        sock.bind((host, sockets[0].getsockname()[1] if sockets else port))  # port 0: the first one's
        sock.listen(LISTEN_BACKLOG)
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets


def supervise(sockets: list[socket.socket], workers: int) -> int:
    """Start worker i on ``sockets[i]`` (spawned: nothing of this process's state is shared), restart one that
    exits, and stop them all on SIGINT/SIGTERM or when one fails to start (exit code 3, returned)."""
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}

    def start(i: int) -> Any:
        process = context.Process(target=run_worker, args=(sockets[i % len(sockets)],), name=f"semspace-worker-{i}")
        process.start()
        return process

    processes = [start(i) for i in range(workers)]
    code = 0
    try:
        while not stop.wait(0.5):
            for i, process in enumerate(processes):
                if process.is_alive():
                    continue
                if process.exitcode == STARTUP_FAILURE:  # the same app would fail again: stop
                    logger.error("worker %d could not start what it serves; stopping the server", i)
                    code = STARTUP_FAILURE
                    stop.set()
                    break
                logger.warning("worker %d (pid %s) exited (code %s); restarting it", i, process.pid, process.exitcode)
                processes[i] = start(i)
    finally:
        for process in processes:
            process.terminate()  # uvicorn shuts down gracefully on SIGTERM
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def run_worker(sock: socket.socket) -> None:
    """One worker: uvicorn serving the app of ``$SEMSPACE_SERVE_SPEC`` on `sock` (exit code 3 when it cannot
    start)."""
    import uvicorn

    config = uvicorn.Config(APP_FACTORY, factory=True, **UVICORN_OPTIONS)
    uvicorn.Server(config).run(sockets=[sock])
