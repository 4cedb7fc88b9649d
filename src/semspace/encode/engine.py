"""Inference backends for the transformer: PyTorch fp32 (exact), PyTorch bf16 autocast, ONNX Runtime fp32 and
ONNX Runtime dynamic int8, and ``auto`` (decided once per machine and model by :mod:`semspace.encode.auto`).

The ONNX graph is exported once per (model content, options) into a cache folder (``$SEMSPACE_CACHE/onnx`` or
``~/.cache/semspace/onnx``) with ``torch.onnx.export``, fused with ONNX Runtime's transformer optimizer (attention,
embedding LayerNorm fusion; not SkipLayerNormalization nor BiasGelu, slower on CPU: :data:`UNFUSED`;
`onnxruntime.transformers.optimizer`) and, for ``onnx-int8``, quantized with ONNX Runtime's
dynamic quantization (per-channel int8 weights, uint8 activations; Jacob et al. 2018, "Quantization and Training of
Neural Networks for Efficient Integer-Arithmetic-Only Inference"). The folder is written atomically (temp folder +
rename) with a ``manifest.json`` recording the options and the export-time check against the PyTorch model on a
fixed calibration set (minimum cosine, and the task loss :func:`pair_similarity_loss` that ``auto`` decides by); a
folder whose manifest is missing or unreadable is rebuilt.

``torch-bf16`` is refused on a CPU without bf16 units (:mod:`semspace.encode.cpu`), where PyTorch emulates it several
times slower than fp32, unless ``SEMSPACE_FORCE_BF16=1``.

The graph outputs the hidden states every semspace pooling needs (first block, second-to-last block, last block), so
every :class:`~semspace.encode.pooling.Pooling` runs on every backend through the same `pool` code.

An encoder graph whose attention and embeddings the optimizer fused is rewritten to also run *packed rows*
(:func:`_accept_packed_rows`): its attention reads the attention mask itself — a padded batch's 2-D mask, or a 3-D
(row, token, token) mask that lets a token see only its own text's tokens — and its embeddings take position ids, so a
few texts can run one after another in one row with no padding (``HFBackend.forward_packed``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semspace._deps import require
from semspace._io import read_artifact_json, write_artifact_json
from semspace.encode import cpu
from semspace.errors import ArtifactError, InvalidParameterError, ModelLoadError
from semspace.metrics import paired_cosine

logger = logging.getLogger(__name__)

ENGINES = ("torch", "torch-bf16", "onnx", "onnx-int8")
BACKENDS = (*ENGINES, "auto")
# What an Encoder runs when given no backend: `auto`, the fastest engine whose task loss passes on this machine
# (issue 28); the environment variable overrides it for a whole process (e.g. `torch` for exact reference vectors).
DEFAULT_BACKEND = "auto"
BACKEND_ENV = "SEMSPACE_BACKEND"
MANIFEST_FORMAT = "semspace.onnx-export"
OPSET = 17
ENCODER_OUTPUTS = ("hidden_first", "hidden_penult", "last_hidden_state")
CROSS_OUTPUTS = ("logits",)
# Where each fused attention op reads its mask (com.microsoft Attention / QAttention).
_ATTENTION_MASK_INPUT = {"Attention": 3, "QAttention": 5}
# Export-time check: the minimum cosine (over the calibration rows and outputs) to the PyTorch model.
REFUSE_BELOW = {"onnx": 0.999, "onnx-int8": 0.95, "torch-bf16": 0.98}
WARN_BELOW = {"onnx": 0.9999, "onnx-int8": 0.99, "torch-bf16": 0.995}
# Fusions left out, by the optimizer's option and the ONNX Runtime session transformer that would redo them. On CPU
# the fused SkipLayerNormalization (residual add + LayerNorm) ran 7x slower per node than the Add + LayerNormalization
# it replaces, and BiasGelu slower than the bias folded into the int8 MatMul + Gelu (ONNX Runtime 1.32 profile of the
# int8 graph, 48 SciFact abstracts at 256 tokens, 2 threads: SkipLayerNormalization 16% of the run vs 4% for
# Add + LayerNormalization; 55.7 → 65.8 texts/s, the same arithmetic).
UNFUSED = {"enable_skip_layer_norm": "SkipLayerNormFusion", "enable_bias_gelu": "BiasGeluFusion"}
# Set to 1 to run torch-bf16 on a CPU without bf16 units (emulated: slower than fp32).
FORCE_BF16_ENV = "SEMSPACE_FORCE_BF16"


def check_backend(backend: str, where: str) -> str:
    """`backend` when it is one of :data:`BACKENDS`; the one check of a user's backend string, where it enters
    (the constructor or ``use_backend``), before any model is loaded."""
    if backend not in BACKENDS:
        raise InvalidParameterError(
            f"The 'backend' parameter of {where} must be one of {', '.join(BACKENDS)}. Got {backend!r} instead."
        )
    return backend


def default_backend() -> str:
    """The backend used when none is given: ``$SEMSPACE_BACKEND`` when set, else :data:`DEFAULT_BACKEND`."""
    chosen = os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND
    if chosen not in BACKENDS:
        raise InvalidParameterError(
            f"The {BACKEND_ENV} environment variable must be one of {', '.join(BACKENDS)}. Got {chosen!r} instead."
        )
    return chosen


class RunsOnEngine:
    """What a model run through an :class:`EngineRunner` (its ``_runner``) says about its engine."""

    _runner: EngineRunner

    @property
    def engine(self) -> str:
        """The engine running the transformer (``torch``, ``torch-bf16``, ``onnx``, ``onnx-int8``)."""
        return self._runner.engine

    @property
    def engine_manifest(self) -> dict[str, Any] | None:
        return self._runner.manifest

    @property
    def engine_manifest_path(self) -> Path | None:
        return self._runner.manifest_path

    @property
    def engine_info(self) -> dict[str, Any]:
        """The engine, the CPU it runs on, its export check, and (``auto``) the decision with its reasons."""
        runner = self._runner
        check = (runner.manifest or {}).get("check")
        info: dict[str, Any] = {"engine": runner.engine, "cpu": cpu.cpu_features().describe(), "check": check}
        if runner.decision is not None:
            info["auto"] = runner.decision
        return info


class EngineRunner:
    """One transformers model run by one engine: the switch between ``torch``, ``torch-bf16``, ``onnx`` and
    ``onnx-int8`` that the bi-encoder's adapter (`kind` ``"encoder"``) and the cross-encoder (``"cross-encoder"``)
    share.

    :meth:`outputs` gives, for a tokenized batch, what the fp32 PyTorch model gives — an encoder's hidden states as
    :func:`~semspace.encode.pooling.pool` reads them (``(None, first block, second-to-last, last)`` from a graph), a
    cross-encoder's logits — from the engine :meth:`set_engine` chose. The ONNX graphs are exported once into the
    cache and checked at export by the caller's `check(session)` (``session`` None: bf16 autocast).
    """

    def __init__(self, model: Any, kind: str, device: str, label: str) -> None:
        self.model, self.kind, self.device, self.label = model, kind, device, label
        self.engine = "torch"
        self.manifest: dict[str, Any] | None = None
        self.manifest_path: Path | None = None
        self.decision: dict[str, Any] | None = None  # set by `auto` (semspace.encode.auto)
        self._session: Any = None
        self._inputs: list[str] = []
        self.graph_packs = False  # the ONNX graph takes packed rows (manifest "packed_rows")
        self.n_layers = int(getattr(model.config, "num_hidden_layers", 2) or 2)

    def torch_outputs(self, batch: dict[str, Any], bf16: bool = False) -> Any:
        """The PyTorch model's outputs, in fp32 or under bf16 autocast (returned as fp32)."""
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            if self.kind == "encoder":
                out = self.model(**batch, output_hidden_states=True).hidden_states
            else:
                out = self.model(**batch).logits
        if not bf16:
            return out
        return tuple(s.float() for s in out) if self.kind == "encoder" else out.float()

    def session_outputs(self, session: Any, batch: dict[str, Any], names: list[str] | None = None) -> Any:
        """An ONNX session's outputs for `batch` (fed the inputs `names`, default the graph's): an encoder's hidden
        states as torch tensors, a cross-encoder's logits as a NumPy array. A graph that takes packed rows gets a
        padded batch's position ids (0, 1, … in every row) when `batch` has none."""
        names = names or [node.name for node in session.get_inputs()]
        feed = {name: batch[name].numpy() for name in names if name in batch}
        if "position_ids" in names and "position_ids" not in batch:
            feed["position_ids"] = np.arange(feed["input_ids"].shape[1], dtype=np.int64)[None]
        arrays = session.run(None, feed)
        if self.kind != "encoder":
            return arrays[0]
        import torch

        first, penult, last = (torch.from_numpy(a) for a in arrays)
        return (None, first, penult, last) if self.n_layers >= 2 else (None, last)

    def packed_outputs(self, feed: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        """The encoder graph's hidden states (as NumPy arrays, in :data:`ENCODER_OUTPUTS` order) for one packed row:
        `feed` holds its ``input_ids`` (and ``token_type_ids``), ``position_ids`` and the 3-D ``attention_mask``."""
        return tuple(self._session.run(None, feed))

    def outputs(self, batch: dict[str, Any]) -> Any:
        """The model's outputs for `batch` on the configured engine."""
        if self.engine.startswith("onnx"):
            return self.session_outputs(self._session, batch, self._inputs)
        return self.torch_outputs(batch, bf16=self.engine == "torch-bf16")

    def set_engine(
        self,
        engine: str,
        sample_batch: Callable[[], dict[str, Any]],
        check: Callable[[Any], dict[str, Any]],
        cache: Path | None = None,
        calibration: Callable[[], list[dict[str, Any]]] | None = None,
    ) -> None:
        """Run the model with `engine`. `sample_batch()` gives the example inputs an ONNX export traces (texts of
        different lengths, so padding and the attention mask are traced); `check(session)` the accuracy check
        (its ``min_cosine`` is refused below :data:`REFUSE_BELOW`); `calibration()`, when given, the batches whose
        activation ranges SmoothQuant reads before int8 (:mod:`semspace.encode.smoothquant`; without it, plain
        dynamic int8)."""
        if engine not in ENGINES:
            raise InvalidParameterError(f"Unknown engine {engine!r}; choose one of {', '.join(ENGINES)}.")
        if self.device != "cpu" and engine != "torch":
            raise InvalidParameterError(f"backend={engine!r} runs on the CPU; got device={self.device!r}.")
        self.graph_packs = False
        if engine == "torch":
            self.engine, self.manifest = engine, None
            return
        if engine == "torch-bf16":
            refuse_emulated_bf16(self.label)
            self.engine = engine
            self.manifest = {"check": check(None)}
            cos = self.manifest["check"]["min_cosine"]
            if cos < REFUSE_BELOW[engine]:
                self.engine = "torch"
                raise ModelLoadError(
                    f"bf16 autocast of {self.label} fails its check: minimum cosine to fp32 PyTorch {cos:.4f} on the "
                    f"calibration set (< {REFUSE_BELOW[engine]}); use backend='torch'."
                )
            return
        batch = sample_batch()
        path, manifest = exported_graph(
            self.model, self.kind, engine == "onnx-int8", dict(batch), check, self.label, cache, calibration
        )
        self._session = make_session(path)
        # the graph's own inputs, as the export check fed it (one the model ignores, e.g. token types, is not there)
        self._inputs = [node.name for node in self._session.get_inputs()]
        self.graph_packs = bool(manifest.get("packed_rows"))
        self.engine, self.manifest = engine, manifest
        self.manifest_path = path.parent / "manifest.json"


def refuse_emulated_bf16(label: str) -> None:
    """ModelLoadError when this CPU has no bf16 units (PyTorch would emulate bf16, several times slower than fp32),
    unless ``SEMSPACE_FORCE_BF16=1``, which runs it with a warning."""
    here = cpu.cpu_features()
    if here.bf16_units:
        return
    if os.environ.get(FORCE_BF16_ENV) == "1":
        logger.warning("torch-bf16 for %s is emulated on this CPU (%s): expect it slower than fp32", label, here.model)
        return
    raise ModelLoadError(
        f"backend='torch-bf16' for {label}: this CPU ({here.describe()}) has no bf16 units, so bf16 would be emulated "
        f"and slower than fp32; use backend='auto' or 'onnx-int8' (or set {FORCE_BF16_ENV}=1 to run it anyway)."
    )


def use_engine(target: Any, backend: str, cache: Path | None = None) -> str:
    """Run `target` (anything with ``set_engine``: an encoder's adapter, a CrossEncoder) with `backend`: ``auto``
    takes the engine decided for this machine and model (:func:`semspace.encode.auto.choose_auto`), any other engine
    is set directly. Returns the engine chosen."""
    if backend == "auto" and target._runner.device != "cpu":
        # only torch runs off the CPU; no decision is cached, so the CPU's own decision is left as it is
        target.set_engine("torch", cache)
        device = target._runner.device
        target._runner.decision = {"choice": "torch", "reason": f"device {device}: only torch runs there"}
        return "torch"
    if backend == "auto":
        from semspace.encode.auto import choose_auto  # auto builds on this module

        return choose_auto(target, cache)
    target.set_engine(backend, cache)
    target._runner.decision = None
    return backend


def physical_cores() -> int:
    """Physical cores available to this process (hyper-threads share a core's vector units: not counted)."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        available = os.cpu_count() or 1
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or available
        logical = psutil.cpu_count(logical=True) or available
        per_core = max(1, logical // physical)
    except ImportError:
        per_core = 1
    return max(1, available // per_core)


def cache_dir(kind: str) -> Path:
    """semspace's cache folder for `kind` (onnx, models, embeddings): ``$SEMSPACE_CACHE/<kind>``, else
    ``~/.cache/semspace/<kind>``."""
    base = os.environ.get("SEMSPACE_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "semspace") / kind


def cache_root() -> Path:
    """Where exported graphs live: :func:`cache_dir` ``("onnx")``."""
    return cache_dir("onnx")


def model_hash(model: Any) -> str:
    """A content hash of a torch model: its config and every parameter/buffer (name, dtype, shape, bytes)."""
    import torch

    h = hashlib.blake2b(digest_size=16)
    config = model.config.to_dict() if hasattr(model, "config") else {}
    config.pop("_name_or_path", None)
    config.pop("transformers_version", None)
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(dtype=torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _require_onnx() -> Any:
    require("onnx", "onnx", "backend='onnx' (or 'onnx-int8')")
    return require("onnxruntime", "onnx", "backend='onnx' (or 'onnx-int8')")


def _export_graph(model: Any, kind: str) -> Any:
    """The module exported: an encoder returns the hidden states semspace's poolings read (layer 1, the second-to-last
    and the last), a cross-encoder its logits."""
    import torch

    class Graph(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            kwargs = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            if kind == "encoder":
                states = self.inner(
                    input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, **kwargs
                ).hidden_states
                return states[1], states[-2], states[-1]
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, **kwargs).logits

    return Graph(model)


def _eager_copy(model: Any) -> Any:
    """A copy of `model` with eager attention (the pattern ONNX Runtime's optimizer fuses into `Attention`)."""
    import copy

    clone = copy.deepcopy(model).eval()
    setter = getattr(clone, "set_attn_implementation", None)
    try:
        if setter is not None:
            setter("eager")
        else:
            clone.config._attn_implementation = "eager"
    except (ValueError, AttributeError):
        logger.debug("could not switch %s to eager attention", type(model).__name__)
    return clone


def _export(model: Any, kind: str, inputs: dict[str, Any], path: Path) -> None:
    import torch

    graph = _export_graph(_eager_copy(model), kind)
    # the order of the graph's forward() arguments (a model without token types takes the first two)
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in inputs]
    outputs = list(ENCODER_OUTPUTS if kind == "encoder" else CROSS_OUTPUTS)
    axes = {n: {0: "batch", 1: "sequence"} for n in names + (outputs if kind == "encoder" else [])}
    if kind != "encoder":
        axes["logits"] = {0: "batch"}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            tuple(inputs[n] for n in names),
            str(path),
            input_names=names,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def _optimize(model: Any, source: Path, target: Path) -> dict[str, int]:
    """ONNX Runtime's transformer optimizer (attention, GELU, embedding + LayerNorm fusion, without :data:`UNFUSED`);
    returns the fused-op counts."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    config = model.config
    model_type = "bert" if getattr(config, "model_type", "bert") in ("bert", "roberta", "xlm-roberta", "mpnet") else ""
    options = FusionOptions("bert")
    for fusion in UNFUSED:
        setattr(options, fusion, False)
    with _quiet(), contextlib.redirect_stdout(None):
        optimized = optimize_model(
            str(source),
            model_type=model_type or "bert",
            num_heads=int(getattr(config, "num_attention_heads", 0) or 0),
            hidden_size=int(getattr(config, "hidden_size", 0) or 0),
            opt_level=1,
            use_gpu=False,
            optimization_options=options,
        )
    stats = {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}
    optimized.save_model_to_file(str(target))
    return stats


def _quantize(source: Path, target: Path) -> None:
    """Dynamic int8: per-channel symmetric int8 weights of every MatMul/Gemm and the fused Attention's projections,
    uint8 activations quantized at run time; embeddings (Gather), LayerNorm and softmax stay fp32.

    Chosen among the alternatives (MatMul only, FFN outputs kept fp32, 7-bit weights, per-tensor weights) by STS-B
    test Spearman in one-off trials during development; the committed measurement of each backend's Spearman and
    speed is benchmarks/bench_engine.py."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet():  # quantize_dynamic's "consider pre-processing" warning goes to the root logger
        quantize_dynamic(
            str(source),
            str(target),
            per_channel=True,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul", "Attention", "Gemm"],
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


@contextlib.contextmanager
def _quiet() -> Any:
    """ONNX Runtime's optimizer and quantizer log every fusion at INFO (and one advice at WARNING) on their own
    loggers; hide those while they run."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def engine_threads() -> int:
    """Intra-op threads of an engine: ``$OMP_NUM_THREADS`` when set to a positive integer (torch's own knob, which
    ONNX Runtime does not read: here both follow it, as `semspace serve --workers N` sets it to cores ÷ N), else the
    physical cores."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else physical_cores()


def make_session(path: Path, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session: intra-op threads = :func:`engine_threads` (or `threads`), one inter-op thread,
    no spinning (the tokenizer and request threads get the cores back between runs)."""
    ort = _require_onnx()
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or engine_threads())
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(
        str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=list(UNFUSED.values())
    )


def pairwise_cosines(x: np.ndarray) -> np.ndarray:
    """The cosine similarity of every pair of rows of `x` (upper triangle, row-major), in float64."""
    x = x.reshape(len(x), -1).astype(np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return (x @ x.T)[np.triu_indices(len(x), k=1)]


def pair_similarity_loss(got: np.ndarray, ref: np.ndarray, pairs: Sequence[tuple[int, int]] | None = None) -> float:
    """The task loss of an approximate engine, in STS (Spearman) points: 100 × (1 − r), r = Pearson's correlation of
    the cosines of `pairs` (index pairs into the rows; default every pair) from the engine (`got`) and from fp32
    PyTorch (`ref`), for the same texts.

    Why this reads an STS loss: the engine adds an error e to each pair's exact cosine c; for an error unrelated to
    the gold score y, corr(y, c + e) = corr(y, c) · corr(c, c + e) — the correlation is attenuated by the factor r —
    so an STS score ρ becomes ≈ ρ·r and the points lost are ≈ ρ·100(1 − r) ≤ 100(1 − r). r must be measured over
    pairs spread like an STS set's: :func:`~semspace.encode.calibration.calibration_pairs` grades each topic from
    paraphrase to unrelated. Over all pairs of a set of mostly unrelated sentences (the previous gate, a Spearman
    of every pair) the dense unrelated pairs swap places at the least noise: it read 1.1–30× the STS-B loss of the
    int8 variants of docs/results/engine_int8.md.
    """
    if pairs is None:
        g, c = pairwise_cosines(got), pairwise_cosines(ref)
    else:
        g, c = pair_cosines(got, pairs), pair_cosines(ref, pairs)
    if len(c) < 3 or np.ptp(c) <= 0 or np.ptp(g) <= 0:
        return 0.0 if np.allclose(c, g) else 100.0
    r = float(np.corrcoef(g, c)[0, 1])
    return float(100.0 * (1.0 - r)) if np.isfinite(r) else 100.0


def pair_cosines(x: np.ndarray, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """The cosine similarity of the rows of `x` paired by `pairs` (index pairs), in float64."""
    first, second = (np.asarray(side, dtype=np.int64) for side in zip(*pairs, strict=True))
    x = x.reshape(len(x), -1)
    return paired_cosine(x[first], x[second])


def expected_sts_loss(got: np.ndarray, ref: np.ndarray) -> float:
    """The task loss of an approximate engine, in Spearman points, from its similarity noise on the calibration texts.

    The engine's pairwise cosines g are fitted to the exact ones c (g ≈ a + b·c + e): the residual e, of variance σ²,
    is what reorders pairs (a monotone distortion does not). On an STS-like task whose exact similarities spread
    uniformly over the range the calibration pairs span (variance s² = range²/12: STS sets are built with uniform gold
    scores), noise attenuates a correlation ρ₀ to ρ₀ / √(1 + σ²/(b²s²)) ≈ ρ₀ (1 − σ²/(2b²s²)) (Spearman's attenuation),
    so with ρ₀ ≤ 1 the points lost are at most 100 σ²/(2b²s²). No labels are needed, and unlike a minimum cosine it
    does not fail on one odd row while the ranking holds. Recorded beside the task loss, not decided by: on the bundled
    MiniLM it read 3–27× *below* the STS-B test loss of the int8 variants (docs/results/engine_int8.md)."""
    c, g = pairwise_cosines(ref), pairwise_cosines(got)
    spread = float(np.ptp(c)) ** 2 / 12
    if len(c) < 3 or spread <= 0:
        return 0.0 if np.allclose(c, g) else 100.0
    b, a = np.polyfit(c, g, 1)
    if not b > 0:
        return 100.0
    noise = float(np.var(g - (a + b * c)))
    return min(100.0, 100.0 * noise / (2 * b * b * spread))


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    num = (a * b).sum(1)
    den = np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    cos = num / den
    # two (near) zero rows are equal
    cos[(np.linalg.norm(a, axis=1) < 1e-9) & (np.linalg.norm(b, axis=1) < 1e-9)] = 1.0
    return float(cos.min())


def exported_graph(
    model: Any,
    kind: str,
    quantize: bool,
    sample_inputs: dict[str, Any],
    check: Callable[[Any], dict[str, Any]],
    label: str,
    cache: Path | None = None,
    calibration: Callable[[], list[dict[str, Any]]] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """The cached graph file of `model` (exported, optimized, optionally quantized: smoothed first when
    `calibration` gives batches) and its manifest.

    `kind` is ``encoder`` or ``cross-encoder``; `check(session)` returns the export check (``min_cosine`` and
    details), run once at export and recorded. A folder without a readable manifest or without its graph is rebuilt.
    """
    ort = _require_onnx()
    variant = "onnx-int8" if quantize else "onnx"
    outputs = ENCODER_OUTPUTS if kind == "encoder" else CROSS_OUTPUTS
    options = {
        "kind": kind,
        "opset": OPSET,
        "outputs": list(outputs),
        "inputs": sorted(sample_inputs),
        "quantization": _quantization_label(quantize, calibration is not None),
        "optimizer": f"onnxruntime.transformers.optimizer(opt_level=1, unfused={sorted(UNFUSED)})",
        "check": "min-cosine+pair-task-loss:en,zh",  # folders checked by an older task loss are re-exported
        "onnxruntime": ort.__version__,
    }
    if kind == "encoder":  # graphs exported before the rewrite are re-exported (a cross-encoder's are not rewritten)
        options["packed_rows"] = "raw-attention-mask+position-ids"
    content = model_hash(model)
    key = hashlib.blake2b((content + json.dumps(options, sort_keys=True)).encode(), digest_size=10).hexdigest()
    root = cache or cache_root()
    folder = root / f"{variant}-{key}"
    manifest_path = folder / "manifest.json"
    cached = _cached_graph(folder, content) if folder.is_dir() else None
    if cached is not None:
        return cached
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{variant}-{key}-", dir=root))
    try:
        graph_name, fused = _build_graph(model, kind, quantize, sample_inputs, tmp, calibration)
        packs = kind == "encoder" and _accept_packed_rows(tmp / graph_name)
        result = check(make_session(tmp / graph_name))
        cos = result["min_cosine"]
        if cos < REFUSE_BELOW[variant]:
            raise ModelLoadError(
                f"The {variant} export of {label} fails its check: minimum cosine to PyTorch {cos:.5f} on the "
                f"calibration set (< {REFUSE_BELOW[variant]}); use backend='torch'."
            )
        if cos < WARN_BELOW[variant]:
            logger.warning("The %s export of %s is only %.5f cosine to PyTorch at worst.", variant, label, cos)
        manifest = {
            "model": label,
            "model_hash": content,
            "backend": variant,
            "graph": graph_name,
            "options": options,
            "fused_operators": fused,
            "packed_rows": packs,
            "check": result | {"refuse_below": REFUSE_BELOW[variant], "warn_below": WARN_BELOW[variant]},
            "export_seconds": round(time.perf_counter() - started, 2),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_artifact_json(tmp / "manifest.json", MANIFEST_FORMAT, manifest)
        try:
            os.replace(tmp, folder)
        except OSError:  # another process finished the same export first: use its folder
            shutil.rmtree(tmp, ignore_errors=True)
            manifest = read_artifact_json(manifest_path, MANIFEST_FORMAT)
        logger.info("Exported %s (%s) to %s in %.1f s", label, variant, folder, manifest["export_seconds"])
        return folder / manifest["graph"], read_artifact_json(manifest_path, MANIFEST_FORMAT)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _cached_graph(folder: Path, content: str) -> tuple[Path, dict[str, Any]] | None:
    """(graph, manifest) of an existing cache folder exported from the model whose hash is `content`; None (after
    removing the folder) when its manifest is unreadable, its graph is missing or it holds another model."""
    try:
        manifest = read_artifact_json(folder / "manifest.json", MANIFEST_FORMAT)
        graph = folder / manifest["graph"]
        if graph.is_file() and manifest.get("model_hash") == content:
            return graph, manifest
        raise ArtifactError(f"{folder}: graph file missing or model hash differs")
    except (ArtifactError, KeyError, TypeError) as exc:
        logger.warning("Rebuilding the ONNX cache folder %s (%s)", folder, exc)
        shutil.rmtree(folder, ignore_errors=True)
        return None


def _build_graph(
    model: Any,
    kind: str,
    quantize: bool,
    sample_inputs: dict[str, Any],
    tmp: Path,
    calibration: Callable[[], list[dict[str, Any]]] | None = None,
) -> tuple[str, dict[str, int]]:
    """Export `model` to ONNX in `tmp`, optimize it and optionally quantize it (after SmoothQuant on the
    `calibration` batches, when given), keeping only the final graph; returns its file name and what the optimizer
    fused (and how many MatMul inputs were smoothed, as ``SmoothQuant``)."""
    _export(model, kind, sample_inputs, tmp / "model.onnx")
    fused = _optimize(model, tmp / "model.onnx", tmp / "model.opt.onnx")
    (tmp / "model.onnx").unlink()
    for extra in tmp.glob("*.data"):
        extra.unlink()
    if not quantize:
        return "model.opt.onnx", fused
    source = tmp / "model.opt.onnx"
    if calibration is not None:
        from semspace.encode.smoothquant import smooth_graph

        batches = [{name: _as_array(value) for name, value in batch.items()} for batch in calibration()]
        fused["SmoothQuant"] = smooth_graph(source, tmp / "model.smooth.onnx", batches)
        source.unlink()
        source = tmp / "model.smooth.onnx"
    _quantize(source, tmp / "model.int8.onnx")
    source.unlink()
    return "model.int8.onnx", fused


def _accept_packed_rows(path: Path) -> bool:
    """Rewrite the encoder graph at `path` in place so that it also runs packed rows; False (the file untouched)
    when its attention or embeddings were not fused as this needs.

    The fused graph feeds every attention op a per-row count of tokens (``EmbedLayerNormalization``'s mask index),
    which presumes right padding. Rewritten, the attention ops read the attention mask itself — ONNX Runtime's
    attention kernels take a 2-D (row, key) mask or a 3-D (row, query, key) one, 1 = attend — and the embeddings
    take a ``position_ids`` input (counted from 0 in the fused embedding table: for multilingual-e5-small's XLM-R
    embeddings the fused table already starts at padding_idx + 1, which the packing check confirms; RoBERTa-style
    embeddings the optimizer does not fuse are not rewritten). A padded batch runs as before: its 2-D mask and
    positions 0, 1, … give the same vectors (bit for bit: tests/encode/test_engine.py)."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(path))
    graph = model.graph
    embeds = [node for node in graph.node if node.op_type == "EmbedLayerNormalization"]
    attention = [node for node in graph.node if node.op_type in _ATTENTION_MASK_INPUT]
    if len(embeds) != 1 or not attention:
        return False
    embed = embeds[0]
    inputs = list(embed.input) + [""] * (9 - len(embed.input))  # 7: mask, 8: position ids
    mask_index = embed.output[1] if len(embed.output) > 1 else ""
    feeds_mask = all(node.input[_ATTENTION_MASK_INPUT[node.op_type]] == mask_index for node in attention)
    if not (mask_index and feeds_mask and inputs[7]) or inputs[8]:
        return False
    mask = inputs[7]
    if any(inputs[3] in node.input for node in graph.node if node.op_type != "EmbedLayerNormalization"):
        return False  # the position table read elsewhere too (a one-layer model's embeddings output): positions 0..n-1
    if not any(
        node.op_type == "Cast" and list(node.input) == ["attention_mask"] and mask in node.output for node in graph.node
    ):
        return False  # a mask computed otherwise than as the input's int32 cast
    for node in attention:
        node.input[_ATTENTION_MASK_INPUT[node.op_type]] = mask
    inputs[7], inputs[8] = "", "position_ids_int32"
    del embed.input[:]
    embed.input.extend(inputs)
    graph.node.insert(0, helper.make_node("Cast", ["position_ids"], ["position_ids_int32"], to=TensorProto.INT32))
    graph.input.append(helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["position_rows", "sequence"]))
    for value in graph.input:
        if value.name == "attention_mask":  # 2-D (padded) or 3-D (packed)
            value.type.tensor_type.ClearField("shape")
    for value in [v for v in graph.value_info if v.name == mask]:  # its shape is the input's now
        graph.value_info.remove(value)
    onnx.save(model, str(path))
    return True


def _quantization_label(quantize: bool, smooth: bool) -> str | None:
    """How the int8 graph is made, as the export options (and so the cache key) record it."""
    if not quantize:
        return None
    from semspace.encode.smoothquant import ALPHA

    return f"dynamic-int8-per-channel+smoothquant-{ALPHA}" if smooth else "dynamic-int8-per-channel"


def _as_array(value: Any) -> np.ndarray:
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)
