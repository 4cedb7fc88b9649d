"""Chroma's `OpenAIEmbeddingFunction` against a live `semspace serve` on 127.0.0.1 (issue 27).

chromadb is not in the dev extra: with this project's constraints pip resolves it only to chromadb 0.4.14 (2023; its
current releases need an opentelemetry-api that the pinned opentelemetry-sdk excludes), so it runs from a throwaway
virtual environment that has chromadb and openai but neither torch nor semspace:

    python3 -m venv ~/.cache/semspace/chroma-venv
    ~/.cache/semspace/chroma-venv/bin/pip install chromadb==1.5.9 openai==3.63.0 -c benchmarks/locks/chroma.txt
    ~/.cache/semspace/chroma-venv/bin/python benchmarks/clients_chroma.py --semspace-python .venv/bin/python

It starts `semspace serve --api-key KEY` (the bundled all-MiniLM-L6-v2, semspace's interpreter) on a free port,
gets the reference vectors from `Encoder.encode` in that interpreter, then points Chroma at the server as Chroma's
docs say for an OpenAI-compatible server (`api_base=URL + "/v1"`, the key in `CHROMA_OPENAI_API_KEY`, the default
`model_name`): the vectors of the embedding function, and of a Chroma collection's add/query, are compared with the
reference. Prints one JSON line; exits 1 when the vectors differ by more than 1e-6 or a query misses its document.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KEY = "chroma-check-key"
TEXTS = [
    "a man is playing a guitar",
    "a dog is running in the park",
    "the cat eats its food",
    "a big plane is taking off",
    "a woman is slicing an onion",
]
QUERIES = ["someone plays the guitar", "an aeroplane takes off", "a woman cuts an onion"]
EXPECTED_TOP = [0, 3, 4]  # the document each query is about
REFERENCE = """
import json, sys
import numpy as np
from semspace import Encoder
texts = json.loads(sys.argv[1])
np.save(sys.argv[2], Encoder().encode(texts))
print(Encoder().model_id)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, server: subprocess.Popen, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"semspace serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"semspace serve did not answer /health within {timeout_s} s")


def reference(python: str, texts: list[str], work: Path) -> tuple[np.ndarray, str]:
    out = work / "reference.npy"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [python, "-c", REFERENCE, json.dumps(texts), str(out)], env=env, capture_output=True, text=True, check=True
    )
    return np.load(out), done.stdout.strip().splitlines()[-1]


def check(url: str, expected: np.ndarray, model_id: str) -> dict:
    import chromadb
    from chromadb.utils.embedding_functions import OpenAIEmbeddingFunction

    # Chroma's docs: the key in CHROMA_OPENAI_API_KEY (a key passed directly is not persisted), api_base for
    # another server, and its default model_name
    os.environ["CHROMA_OPENAI_API_KEY"] = KEY
    embed = OpenAIEmbeddingFunction(api_base=f"{url}/v1")
    vectors = np.array(embed(TEXTS + QUERIES), dtype=np.float32)
    function_diff = float(np.abs(vectors - expected).max())
    client = chromadb.EphemeralClient(settings=chromadb.config.Settings(anonymized_telemetry=False))
    collection = client.create_collection("semspace-check", embedding_function=embed)
    collection.add(ids=[str(i) for i in range(len(TEXTS))], documents=TEXTS)
    stored = collection.get(ids=[str(i) for i in range(len(TEXTS))], include=["embeddings"])["embeddings"]
    stored_diff = float(np.abs(np.asarray(stored, dtype=np.float32) - expected[: len(TEXTS)]).max())
    found = collection.query(query_texts=QUERIES, n_results=1)["ids"]
    return {
        "client": "chromadb.utils.embedding_functions.OpenAIEmbeddingFunction",
        "chromadb": chromadb.__version__,
        "served_model": model_id,
        "model_name_sent": embed.model_name,
        "texts": len(TEXTS) + len(QUERIES),
        "max_abs_diff_function": function_diff,
        "max_abs_diff_stored": stored_diff,
        "queries_top1_correct": sum(int(ids[0]) == want for ids, want in zip(found, EXPECTED_TOP, strict=True)),
        "queries": len(QUERIES),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--semspace-python", default=str(ROOT / ".venv" / "bin" / "python"))
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "SEMSPACE_API_KEY": KEY}
    with tempfile.TemporaryDirectory() as tmp:
        expected, model_id = reference(args.semspace_python, TEXTS + QUERIES, Path(tmp))
        command = [args.semspace_python, "-m", "semspace", "serve", "--port", str(port)]
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_healthy(url, server)
            result = check(url, expected, model_id)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(json.dumps(result))
    ok = max(result["max_abs_diff_function"], result["max_abs_diff_stored"]) <= 1e-6
    return 0 if ok and result["queries_top1_correct"] == result["queries"] else 1


if __name__ == "__main__":
    sys.exit(main())
