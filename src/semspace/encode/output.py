"""What sentence-transformers users do with `encode`'s output: `truncate_dim` (Matryoshka-style truncation),
`precision` (int8/uint8/binary/ubinary quantization) and `similarity` by the model's similarity function.

Each follows sentence-transformers' definition and delegates the arithmetic to it (``quantize_embeddings``,
``SimilarityFunction``) so the numbers are the ones an ST user expects: truncation comes before normalisation, and
quantization last (``SentenceTransformer.encode``'s order).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from semspace.errors import InvalidParameterError, check_param

Precision = Literal["float32", "int8", "uint8", "binary", "ubinary"]
PRECISIONS: tuple[str, ...] = ("float32", "int8", "uint8", "binary", "ubinary")
# sentence-transformers' similarity functions for one vector per text ("dot_product" is its alias of "dot")
SIMILARITY_FUNCTIONS: tuple[str, ...] = ("cosine", "dot", "dot_product", "euclidean", "manhattan")


def check_truncate_dim(truncate_dim: int | None, dim: int, owner: str) -> None:
    """None, or an int in [1, dim] (sentence-transformers slices silently past the end; semspace says so)."""
    check_param(
        "truncate_dim",
        owner,
        truncate_dim is None or (isinstance(truncate_dim, int) and not isinstance(truncate_dim, bool)),
        "None or an int",
        truncate_dim,
    )
    check_param(
        "truncate_dim", owner, truncate_dim is None or 1 <= truncate_dim <= dim, f"an int in [1, {dim}]", truncate_dim
    )


def check_precision(precision: str) -> None:
    check_param("precision", "Encoder.encode", precision in PRECISIONS, f"one of {', '.join(PRECISIONS)}", precision)


def check_similarity_fn_name(name: str) -> str:
    check_param(
        "similarity_fn_name",
        "Encoder",
        name in SIMILARITY_FUNCTIONS,
        f"one of {', '.join(SIMILARITY_FUNCTIONS)}",
        name,
    )
    return "dot" if name == "dot_product" else name


def shape_output(vectors: np.ndarray, truncate_dim: int | None, normalize: bool, precision: str) -> np.ndarray:
    """Rows of float32 `vectors` (not yet normalised when `truncate_dim` is set) cut to `truncate_dim`, then
    L2-normalised if `normalize`, then quantized to `precision` by sentence-transformers' ``quantize_embeddings``:
    int8/uint8 scale each dimension by its range over these rows (its rule without calibration embeddings: encode a
    representative batch together); binary/ubinary pack the signs, 8 dimensions a byte."""
    if truncate_dim is not None:
        vectors = np.ascontiguousarray(vectors[:, :truncate_dim])
        if normalize:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    if precision == "float32" or len(vectors) == 0:
        return vectors
    from sentence_transformers import quantize_embeddings

    return np.asarray(quantize_embeddings(vectors, precision=precision))


def similarity(a: Any, b: Any, name: str, pairwise: bool = False) -> np.ndarray:
    """sentence-transformers' similarity `name` between every row of `a` and every row of `b` (n_a, n_b), or row i
    with row i (`pairwise`), as float32 NumPy; euclidean and manhattan are negative distances (higher = closer)."""
    from sentence_transformers import SimilarityFunction

    if name not in ("cosine", "dot", "euclidean", "manhattan"):
        raise InvalidParameterError(
            f"Unknown similarity function {name!r}; use one of {', '.join(SIMILARITY_FUNCTIONS)}."
        )
    function = SimilarityFunction(name)
    fn = (
        SimilarityFunction.to_similarity_pairwise_fn(function)
        if pairwise
        else SimilarityFunction.to_similarity_fn(function)
    )
    return fn(_as_float(a), _as_float(b)).cpu().numpy().astype(np.float32, copy=False)


def _as_float(x: Any) -> Any:
    """numpy rows as float32 (sentence-transformers' functions take arrays, tensors or lists)."""
    if isinstance(x, np.ndarray):
        return np.atleast_2d(x).astype(np.float32, copy=False)
    return x
