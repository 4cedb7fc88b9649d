"""``backend='auto'``: the engine decided once per machine, model and library versions, the same way on every run.

The decision is a rule, not a race: timing a short probe at every start chose torch once and onnx twice in three runs
on one machine (issue 28), because two engines within noise of each other swap places. Instead:

1. the engines are ranked by the CPU's class (:mod:`semspace.encode.cpu`), in the order measured by
   ``benchmarks/bench_engine.py`` (``docs/results/engine.md``): int8 first (1.5–1.8× fp32 ONNX on the AVX2 and the
   AVX-512/bf16 machines measured), bf16 autocast next *only* where the CPU has bf16 units (emulated bf16 ran at 0.16×
   fp32 on AVX2), then fp32 ONNX, then fp32 PyTorch; int8 without AVX2 or an int8 dot product drops below fp32 ONNX;
2. the first engine in that order whose export check passes is taken: its *task loss* — the STS points its
   similarity error is expected to cost, 100·(1 − r) with r the correlation of its cosines with fp32 PyTorch's over
   graded calibration pairs (:func:`~semspace.encode.engine.pair_similarity_loss`) — at most
   :data:`MAX_TASK_LOSS`. fp32 PyTorch always passes.

The decision and every reason (each engine considered: taken, skipped or rejected, with its numbers) is written to
``<cache>/auto/<key>.json``, keyed by the model's content hash, the CPU model and flags, the torch / onnxruntime /
transformers / semspace versions and :data:`RULE`, and re-used by every later start; :attr:`Encoder.info` reports it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from semspace._io import read_artifact_json, write_artifact_json
from semspace._version import __version__
from semspace.encode.cpu import BF16_FLAGS, CPUFeatures, cpu_features
from semspace.encode.engine import cache_root, model_hash
from semspace.errors import ArtifactError, InvalidParameterError, MissingExtraError, ModelLoadError

logger = logging.getLogger(__name__)

AUTO_FORMAT = "semspace.auto-backend"
# Bump when the rule changes: decisions cached under an older rule are made again (3: the graded-pair task loss
# and SmoothQuant int8).
RULE = 3
# The most an engine may lose by its task loss on the graded calibration pairs (Spearman points ×100). The goal is
# ≤ 0.1 STS points; the bound is half that because the gate under-reads tasks whose pairs are all close (paraphrase
# questions): multilingual-e5-small's SmoothQuant int8 read 0.057 and lost 0.215 on average over the five Chinese
# tests, while the bundled MiniLM's read 0.032 and lost −0.01 over the seven English ones
# (docs/results/engine_int8.md, engine_int8_zh.md). Set below the smallest reading of a measured failure: a
# threshold fitted to two models' test-set losses, not a derived bound.
MAX_TASK_LOSS = 0.05


def ranking(cpu: CPUFeatures) -> list[tuple[str, str]]:
    """The engines `auto` considers on `cpu`, fastest first by the measured rule, each with why it is there (an
    engine that cannot be native here is listed with the reason it is skipped, prefixed ``skip:``)."""
    int8_fast = "avx2" in cpu.flags or cpu.int8_dot
    int8 = ("onnx-int8", f"int8 dot products ({'native' if cpu.int8_dot else 'AVX2 u8×s8'}): fastest measured")
    order = [int8] if int8_fast else []
    if cpu.bf16_units:
        order.append(("torch-bf16", f"bf16 units: {' '.join(sorted(BF16_FLAGS & set(cpu.flags)))}"))
    else:
        order.append(("torch-bf16", "skip: no bf16 units (avx512_bf16, amx_bf16 or Arm bf16): bf16 would be emulated"))
    order.append(("onnx", "fused fp32 graph"))
    if not int8_fast:
        order.append(("onnx-int8", "no AVX2 nor int8 dot product: int8 ranked below fp32"))
    order.append(("torch", "exact fp32 reference"))
    return order


def decision_key(content_hash: str, cpu: CPUFeatures) -> str:
    """What a decision is valid for: the model, the CPU, the library versions and the rule."""
    parts = [content_hash, cpu.key(), json.dumps(library_versions(), sort_keys=True), str(RULE)]
    return hashlib.blake2b("|".join(parts).encode(), digest_size=10).hexdigest()


def library_versions() -> dict[str, str | None]:
    """The versions of what computes the vectors: torch, onnxruntime, transformers and semspace."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"semspace": __version__}
    for name in ("torch", "onnxruntime", "transformers"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def choose_auto(target: Any, cache: Path | None = None) -> str:
    """Set `target` (anything with ``set_engine``, ``engine_manifest`` and an ``EngineRunner`` as ``_runner``: an
    encoder's adapter, a CrossEncoder) to the engine the rule picks, from the cached decision when there is one.
    Returns the engine; the decision (with its reasons, its ``key``: the file name under ``<cache>/auto/``, and
    ``from_cache``) is kept on the runner as ``decision`` — no server path, as ``/info`` shows it to clients."""
    cpu = cpu_features()
    content = model_hash(target._runner.model)
    path = (cache or cache_root()) / "auto" / f"{decision_key(content, cpu)}.json"
    if path.is_file():
        try:
            decision = read_artifact_json(path, AUTO_FORMAT)
            target.set_engine(decision["choice"], cache)
            target._runner.decision = decision | {"key": path.stem, "from_cache": True}
            return decision["choice"]
        except (ArtifactError, KeyError, TypeError, ModelLoadError, MissingExtraError, InvalidParameterError) as exc:
            logger.warning("Deciding backend='auto' again (%s)", exc)
    decision = decide(target, cpu, cache)
    decision |= {"model_hash": content, "decided": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        write_artifact_json(path, AUTO_FORMAT, decision)
    target._runner.decision = decision | {"key": path.stem, "from_cache": False}
    return decision["choice"]


def decide(target: Any, cpu: CPUFeatures, cache: Path | None = None) -> dict[str, Any]:
    """Walk :func:`ranking` and set `target` to the first engine that is available and passes its task-loss check;
    the returned decision lists each engine considered and why it was taken, skipped or rejected."""
    considered: list[dict[str, Any]] = []
    choice = "torch"
    for engine, why in ranking(cpu):
        if why.startswith("skip:"):
            considered.append({"engine": engine, "verdict": "skipped", "reason": why.removeprefix("skip: ")})
            continue
        try:
            target.set_engine(engine, cache)
        except (ModelLoadError, MissingExtraError, InvalidParameterError) as exc:
            considered.append({"engine": engine, "verdict": "unavailable", "reason": str(exc)})
            continue
        check = (target.engine_manifest or {}).get("check", {}) if engine != "torch" else {"task_loss": 0.0}
        loss = check.get("task_loss")
        row = {"engine": engine, "task_loss": loss, "min_cosine": check.get("min_cosine")}
        if loss is None or loss > MAX_TASK_LOSS:
            shown = "not measured" if loss is None else f"{loss:.3f}"
            considered.append(row | {"verdict": "rejected", "reason": f"task loss {shown} > {MAX_TASK_LOSS}"})
            continue
        considered.append(row | {"verdict": "chosen", "reason": why})
        choice = engine
        break
    if target.engine != choice:  # the last engine tried was rejected
        target.set_engine(choice, cache)
    logger.info("backend='auto' chose %s on %s", choice, cpu.describe())
    return {
        "choice": choice,
        "rule": RULE,
        "max_task_loss": MAX_TASK_LOSS,
        "cpu": {"model": cpu.model, "flags": list(cpu.flags), "class": cpu.isa_class, "source": cpu.source},
        "versions": library_versions(),
        "considered": considered,
    }
