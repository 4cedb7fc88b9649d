"""SmoothQuant before ONNX Runtime's dynamic int8: the activations' outlier channels moved into the weights.

Implements Xiao et al. (2023), "SmoothQuant: Accurate and Efficient Post-Training Quantization for Large Language
Models" (ICML; arXiv:2211.10438), for the graphs :mod:`semspace.encode.engine` exports. Dynamic int8 quantizes each
MatMul's input with one scale for the whole tensor, so the few hidden dimensions of BERT-like models that carry large
values set that scale and every other dimension keeps only a few of its 256 levels; the weights are quantized per
output channel and have room to spare. SmoothQuant rescales channel j of the input by 1/s_j and row j of the weight
by s_j — X·W = (X·diag(s)⁻¹)·(diag(s)·W), the same product in float — with

    s_j = max|X_j|^α / max_k |W_jk|^(1−α),

the activation maxima taken over calibration batches (padding rows included: they enter the run-time range too).
In a post-LayerNorm model (BERT) the MatMul's input also feeds the residual connection, so 1/s cannot be folded into
the LayerNorm before it as the paper does for pre-LN models: it is an elementwise ``Mul`` node in front of the
MatMul (or the fused ``Attention``, whose input projection is the same product), a small cost next to the product.

α = :data:`ALPHA` was chosen on the export check's calibration pairs (:mod:`semspace.encode.calibration`), never on a
test set; ``benchmarks/bench_int8.py`` measures each choice on STS and SciFact.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

# The migration strength: 0 leaves the activations as they are, 1 moves their whole range into the weights.
ALPHA = 0.8
# Keep every factor within [1/100, 100]: a (near) dead channel would otherwise blow its weight row up.
_CLIP = 100.0
# Graphs above protobuf's 2 GB limit need external data, which this rewrite does not handle: left unsmoothed.
_MAX_INLINE_BYTES = 1_800_000_000
_OPS = ("MatMul", "Attention")


def smooth_graph(source: Path, target: Path, batches: Iterable[dict[str, Any]], alpha: float | None = None) -> int:
    """Write `source`'s graph to `target` with every MatMul/Attention whose weight is a constant smoothed by
    SmoothQuant (module docstring), the activation maxima measured on `batches` (input name → array). Returns the
    number of nodes smoothed (0: `target` is a copy, the graph had none or was too large to rewrite inline).
    `alpha` defaults to :data:`ALPHA`."""
    import onnx
    from onnx import helper, numpy_helper

    alpha = ALPHA if alpha is None else alpha
    model = onnx.load(str(source))
    initializers = {init.name: init for init in model.graph.initializer}
    targets = [
        node
        for node in model.graph.node
        if node.op_type in _OPS
        and len(node.input) > 1
        and node.input[1] in initializers
        and len(initializers[node.input[1]].dims) == 2
    ]
    if not targets or model.ByteSize() > _MAX_INLINE_BYTES:
        onnx.save(model, str(target))
        return 0
    maxima = activation_maxima(model, sorted({node.input[0] for node in targets}), batches)
    muls = {}
    for k, node in enumerate(targets):
        weight = numpy_helper.to_array(initializers[node.input[1]]).astype(np.float32)
        x_max = np.maximum(maxima[node.input[0]], 1e-5)
        w_max = np.maximum(np.abs(weight).max(axis=1), 1e-5)
        scale = np.clip(x_max**alpha / w_max ** (1.0 - alpha), 1.0 / _CLIP, _CLIP).astype(np.float32)
        weight_name, inverse_name, smoothed = f"{node.input[1]}_smooth{k}", f"smooth{k}_inverse", f"smooth{k}_input"
        model.graph.initializer.append(numpy_helper.from_array(weight * scale[:, None], weight_name))
        model.graph.initializer.append(numpy_helper.from_array((1.0 / scale).astype(np.float32), inverse_name))
        muls[id(node)] = helper.make_node("Mul", [node.input[0], inverse_name], [smoothed], name=f"SmoothQuant_{k}")
        node.input[0], node.input[1] = smoothed, weight_name
    nodes = list(model.graph.node)
    del model.graph.node[:]
    for node in nodes:  # each Mul right before its MatMul: the graph stays in topological order
        if id(node) in muls:
            model.graph.node.append(muls[id(node)])
        model.graph.node.append(node)
    _drop_unused_initializers(model)
    onnx.save(model, str(target))
    logger.info("SmoothQuant (alpha=%.2f) smoothed %d MatMul/Attention inputs", alpha, len(targets))
    return len(targets)


def activation_maxima(model: Any, names: list[str], batches: Iterable[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The largest |value| of each last-axis channel of the tensors `names` of `model` (an ONNX ModelProto, left
    unchanged) over `batches`, by ONNX Runtime with those tensors added as outputs."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {out.name for out in probe.graph.output}
    probe.graph.output.extend(helper.make_empty_tensor_value_info(name) for name in names if name not in known)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]
    maxima: dict[str, np.ndarray] = {}
    for batch in batches:
        arrays = session.run(names, {name: np.asarray(batch[name]) for name in inputs})
        for name, array in zip(names, arrays, strict=True):
            channel_max = np.abs(array.reshape(-1, array.shape[-1])).max(axis=0)
            maxima[name] = np.maximum(maxima[name], channel_max) if name in maxima else channel_max
    return maxima


def _drop_unused_initializers(model: Any) -> None:
    """Remove the original weights the smoothed copies replaced (no node reads them any more)."""
    used = {name for node in model.graph.node for name in node.input}
    keep = [init for init in model.graph.initializer if init.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
