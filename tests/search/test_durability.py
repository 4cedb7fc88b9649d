"""kill -9 a child process in the middle of adds, many times, and reopen: the collection must always be at a committed
state, with texts and vectors in step."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from semspace.search import Collection

CHILD = r"""
import sys, numpy as np
from semspace.search import Collection
path, start = sys.argv[1], int(sys.argv[2])
c = Collection.open(path)
rng = np.random.default_rng(start)
for step in range(start, start + 1000):
    n = 50
    ids = [f"s{step}-{i}" for i in range(n)]
    c.add([f"text {step} {i}" for i in range(n)], ids=ids, vectors=rng.normal(size=(n, c.raw_dim)).astype("float32"))
    print(step, flush=True)
"""


@pytest.mark.parametrize("factory", ["Flat", "HNSW16"])
def test_kill9_mid_add_leaves_last_committed_state(tmp_path, tiny_bert_dir, factory):
    from semspace import Encoder

    path = tmp_path / "c"
    Collection.create(path, encoder=Encoder(str(tiny_bert_dir)), index=factory).close()
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    rng = np.random.default_rng(0)
    for round_ in range(8):
        child = subprocess.Popen(
            [sys.executable, str(script), str(path), str(round_ * 1000)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        # Wait until it is adding, then kill at a random moment.
        assert child.stdout.readline()
        time.sleep(float(rng.uniform(0.0, 0.4)))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        c = Collection.open(path)
        n = len(c)
        assert n % 50 == 0, "a partial add is visible"
        assert c.index.ntotal == n, "index and documents out of step"
        seqs, raw = c._store.all_vectors()
        assert len(seqs) == n and np.isfinite(raw).all()
        if n:
            probe = c.search_vectors(raw[-1:], k=1)[0]
            assert probe.ids and probe.scores[0] == pytest.approx(1.0, abs=1e-4)
            doc = c.get(probe.ids)[0]
            step, i = doc["id"][1:].split("-")
            assert doc["text"] == f"text {step} {i}"
        c.close()
