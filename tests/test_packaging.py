"""Installable like a library: the wheel's contents and metadata, and the Dockerfile's steps run here (CI has no
Docker daemon): build the wheel, install it, start its ENTRYPOINT (`semspace serve`) and ask /health."""

from __future__ import annotations

import email
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (path,) = out.glob("semspace-*.whl")
    return path


def test_wheel_has_types_license_data_and_extras(wheel):
    from semspace import __version__

    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(archive.read(f"{dist_info}/METADATA"))
    for needed in ("semspace/py.typed", "semspace/service/page.html", "semspace/__main__.py"):
        assert needed in names
    assert any(n.startswith("semspace/data/samples/") for n in names)
    assert any(n.startswith(f"{dist_info}/") and n.rsplit("/", 1)[-1].startswith("LICENSE") for n in names)
    assert metadata["Version"] == __version__
    assert metadata["Requires-Python"] == "<3.14,>=3.11"
    extras = set(metadata.get_all("Provides-Extra"))
    assert {"serve", "train", "zh", "onnx", "ray", "mteb", "langchain", "llamaindex", "all"} <= extras
    torch = [r for r in metadata.get_all("Requires-Dist") if r.startswith("torch")]
    assert torch and ("==" in torch[0] or "<" in torch[0]), "torch must be pinned or a bounded range"


def dockerfile_entrypoint() -> list[str]:
    line = next(x for x in (ROOT / "Dockerfile").read_text().splitlines() if x.startswith("ENTRYPOINT"))
    return json.loads(line.removeprefix("ENTRYPOINT").strip())


@pytest.mark.slow
def test_dockerfile_entrypoint_serves_from_the_installed_wheel(wheel, tmp_path, tiny_bert_dir):
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    entry = dockerfile_entrypoint()
    assert entry[:2] == ["semspace", "serve"]
    port = free_port()
    # The image binds 0.0.0.0:8000; here the same command on a free loopback port, from the installed wheel only.
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    probe = "import semspace, sys; print(semspace.__file__)"
    where = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.startswith(str(site)), where.stdout + where.stderr
    argv = [sys.executable, "-m", "semspace", *entry[1:], "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--model", str(tiny_bert_dir)]
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                    assert response.status == 200 and json.load(response)["status"] == "ok"
                    break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise AssertionError(f"{shlex.join(argv)} did not serve: {server.stderr.read()}") from None
                time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_ci_runs_the_readmes_test_command_with_the_lock_for_install_and_build():
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert f"```bash\n{ci_command}\n```" in (ROOT / "README.md").read_text()
    assert "PIP_CONSTRAINT=constraints.txt PIP_BUILD_CONSTRAINT=constraints.txt pip install" in ci_command
    assert ci_command.count("-c constraints.txt") == 2  # torch and the project: the lock, read explicitly
    pins = {
        line.split("==")[0].lower()
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    build_requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    assert {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in build_requires} <= pins


def test_the_environment_under_test_is_the_lock():
    """Every distribution installed where the suite runs is pinned in constraints.txt at the installed version (pip,
    which the venv brings, and semspace itself aside): the lock is what was tested, and a dependency that entered
    without a pin, or a pin that drifted from what ran, fails here instead of on a newcomer's clone."""
    from importlib.metadata import distributions

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    pins = {
        norm(line.split("==")[0]): line.split("==")[1].strip().split("+")[0]
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    installed = {norm(d.metadata["Name"]): d.version.split("+")[0] for d in distributions()}
    mismatched = {
        name: (version, pins.get(name))
        for name, version in installed.items()
        if name not in ("pip", "semspace") and pins.get(name) != version
    }
    assert not mismatched, f"installed (version, pin) not matching constraints.txt: {mismatched}"


def test_benchmark_peer_environments_install_from_their_locks():
    import ast

    def lock(name: str) -> dict[str, str]:
        lines = (ROOT / "benchmarks" / "locks" / name).read_text().splitlines()
        return dict(line.lower().split("==", 1) for line in lines if "==" in line and not line.startswith("#"))

    source = (ROOT / "benchmarks" / "bench_engine.py").read_text()
    assert '"-c", str(PEER_LOCK)' in source
    peer = next(
        ast.literal_eval(node.value)
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PEER_REQUIREMENTS"
    )
    st_lock = lock("st-peer.txt")
    for requirement in peer:  # the top-level pins agree with the lock of every package
        name, version = re.sub(r"\[.*\]", "", requirement).lower().split("==")
        assert st_lock[name] == version, requirement
    chroma = (ROOT / "benchmarks" / "clients_chroma.py").read_text()
    assert "-c benchmarks/locks/chroma.txt" in chroma and lock("chroma.txt")["chromadb"] == "1.5.9"
    # store.py's peers (the [bench] extra, which conflicts with constraints.txt): pinned, at store.md's versions
    bench = lock("bench.txt")
    assert "-c benchmarks/locks/bench.txt" in (ROOT / "benchmarks" / "store.py").read_text()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["bench"]
    versions = (ROOT / "docs" / "results" / "store.md").read_text()
    for requirement in extras:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower()
        assert name in bench and f"{name} {bench[name]}" in versions, requirement
