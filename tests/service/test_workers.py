"""`semspace serve --workers N`: N processes on one port, each with its own encoder; collections written through one
are read through every other, /metrics adds the workers up, and the options reach every worker's app."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.support import free_port

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts worker processes in /proc")

KEY = "workers-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


def children(pid: int) -> list[int]:
    return [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path):
    """`semspace serve DIR --workers 2` on a folder of collections, with an API key; stopped at the end."""
    folder = tmp_path_factory.mktemp("served")
    port = free_port()
    argv = [sys.executable, "-m", "semspace", "serve", str(folder), "--model", str(tiny_bert_dir), "--port", str(port)]
    argv += ["--backend", "torch", "--workers", "2", "--api-key", KEY]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200 and len(children(server.pid)) >= 2:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise AssertionError(f"serve --workers 2 did not start: {server.communicate()[1]}")
            time.sleep(0.3)
        yield url, server
    finally:
        server.terminate()
        server.wait(timeout=60)


def fresh(url: str, method: str, path: str, **kwargs) -> httpx.Response:
    """One request on a new connection: the kernel hands each new connection to either worker."""
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        return client.request(method, path, **kwargs)


def test_workers_share_one_port_and_each_encodes_like_the_library(two_workers, tiny_encoder):
    url, server = two_workers
    python_children = [p for p in children(server.pid) if "python" in Path(f"/proc/{p}/cmdline").read_text()]
    assert len(python_children) >= 2  # the workers (spawned; a resource tracker may be there too)
    texts = ["a dog runs", "the cat sleeps on the mat"]
    for _ in range(6):
        got = fresh(url, "POST", "/embed", json={"texts": texts})
        assert got.status_code == 200
        np.testing.assert_allclose(np.array(got.json()["embeddings"]), tiny_encoder.encode(texts), atol=1e-5)
    refused = fresh(url, "POST", "/embed", json={"texts": texts}, headers={"Authorization": "Bearer no"})
    assert refused.status_code == 401
    assert httpx.post(f"{url}/embed", json={"texts": [""]}, headers=AUTH).status_code == 422


def test_a_write_through_one_worker_is_read_through_every_worker(two_workers):
    url, _ = two_workers
    assert fresh(url, "POST", "/collections", json={"name": "shared"}).status_code == 201
    docs = [{"id": f"d{i}", "text": f"document number {i} about dogs"} for i in range(5)]
    assert fresh(url, "POST", "/collections/shared/documents", json={"documents": docs}).status_code == 200
    for _ in range(8):  # fresh connections land on both workers: each sees the other's commit
        got = fresh(url, "POST", "/collections/shared/search", json={"query": "dogs", "k": 10})
        assert got.status_code == 200
        assert sorted(h["id"] for h in got.json()["results"][0]["hits"]) == [f"d{i}" for i in range(5)]
    assert fresh(url, "DELETE", "/collections/shared/documents", json={"ids": ["d0"]}).status_code == 200
    for _ in range(8):
        found = fresh(url, "POST", "/collections/shared/documents/get", json={"ids": ["d0"], "missing": "skip"})
        assert found.status_code == 200 and found.json()["documents"] == []


def test_metrics_add_up_every_workers_requests(two_workers):
    url, _ = two_workers

    def health_count() -> float:
        text = fresh(url, "GET", "/metrics").text
        lines = [x for x in text.splitlines() if x.startswith("semspace_requests_total{") and 'route="/health"' in x]
        return sum(float(x.rsplit(" ", 1)[1]) for x in lines)

    before = health_count()
    for _ in range(10):
        assert fresh(url, "GET", "/health").status_code == 200
    assert health_count() == before + 10


def test_serve_options_reach_every_worker(monkeypatch, tiny_bert_dir):
    """With --workers 2 the app is built in each worker from the environment (the worker imports the factory);
    no worker is started here: the factory is called as a worker calls it."""
    from typer.testing import CliRunner

    from semspace.cli.app import app as cli
    from semspace.service import workers
    from semspace.service.app import WORKER_SPEC, app_from_env

    started = []

    def supervise(sockets, n) -> int:
        ports = {s.getsockname()[1] for s in sockets}
        started.append((len(sockets), n, ports, os.environ[WORKER_SPEC], os.environ["PROMETHEUS_MULTIPROC_DIR"]))
        return 0

    monkeypatch.setattr(workers, "supervise", supervise)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for name in (WORKER_SPEC, "PROMETHEUS_MULTIPROC_DIR"):  # serve sets them: gone again after the test
        monkeypatch.setenv(name, "")  # records the variable's absence to restore (a delenv of none records nothing)
        monkeypatch.delenv(name)
    argv = ["serve", "--model", str(tiny_bert_dir), "--workers", "2", "--strict-model", "--batch-wait-ms", "-1"]
    port = free_port()
    result = CliRunner().invoke(cli, [*argv, "--max-batch", "7", "--port", str(port)])
    assert result.exit_code == 0, result.output
    n_sockets, n, ports, spec, metrics_dir = started.pop()
    assert n == 2 and ports == {port} and n_sockets == 2  # one SO_REUSEPORT socket per worker, on the one port
    assert not Path(metrics_dir).exists()  # the metrics folder lives as long as the server
    monkeypatch.setenv(WORKER_SPEC, spec)
    config = app_from_env().state.config  # what each worker process builds
    assert config.strict_model and config.limits.max_batch == 7 and config.batching.max_wait_ms == -1
    assert config.encoder == str(tiny_bert_dir)


def test_workers_without_a_cross_process_lock_refuse_collections(monkeypatch, tmp_path, capsys):
    """Where collections have no cross-process lock (no fcntl), --workers 2 with a collection is one line and exit 2;
    the default is then one worker."""
    from semspace.cli.app import main
    from semspace.cli.serve import default_workers
    from semspace.search import locking

    monkeypatch.setattr(locking, "fcntl", None)
    with pytest.raises(SystemExit) as exit_:
        main(["serve", str(tmp_path / "c"), "--workers", "2"])
    assert exit_.value.code == 2
    assert "--workers 2 with a collection needs a cross-process file lock" in capsys.readouterr().err
    assert default_workers(serves_collections=True) == 1


def test_a_worker_that_cannot_load_its_model_stops_the_server_with_exit_3(tmp_path):
    """uvicorn.run exits 0 when a worker fails to start; `serve --workers 2` exits 3, as uvicorn does for one."""
    argv = [sys.executable, "-m", "semspace", "serve", "--model", str(tmp_path / "missing"), "--workers", "2"]
    done = subprocess.run([*argv, "--port", str(free_port())], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr


def test_every_workers_socket_listens_before_any_worker_starts():
    """The kernel spreads connections over listening SO_REUSEPORT sockets only: each worker's is listening from
    the start, so a client connecting while a worker loads waits in that socket's backlog, not on another worker."""
    import socket

    from semspace.service.workers import listening_sockets

    sockets = listening_sockets("127.0.0.1", 0, 2)
    try:
        assert len({s.getsockname()[1] for s in sockets}) == 1
        assert all(s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) for s in sockets)
        with socket.create_connection(sockets[0].getsockname(), timeout=5):  # queued; nothing accepts yet
            pass
    finally:
        for s in sockets:
            s.close()
