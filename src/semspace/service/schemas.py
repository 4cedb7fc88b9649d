"""Request/response models of the service and its per-request limits (the one place that checks them).

Shape errors (a missing field, `k < 1`, an empty list) are pydantic's 422s; the limits depend on how the service was
started, so they are checked by :class:`Limits` and raise a 413 (too many, too long) or 422 (empty) with a string
`detail`; :func:`describe_limits` writes the same limits into the app's OpenAPI schema (maxItems, maxLength, maximum).
The OpenAI-compatible (`/v1/...`) and TEI-compatible (`/embed` with `inputs`, `/rerank`, `/info`) models follow the
field names of those APIs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from fastapi import HTTPException
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictFloat,
    Tag,
    WithJsonSchema,
    model_serializer,
)
from pydantic_core import PydanticCustomError

from semspace.encode.models import model_aliases
from semspace.errors import check_param
from semspace.search.catalog import NAME_PATTERN
from semspace.search.documents import MAX_METADATA_DEPTH, WRITE_WARNING, json_depth


def _json_integer(value: Any) -> Any:
    """JSON Schema's integer: 2 and 2.0, but not "2" or true (pydantic's lax int takes both)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("Input should be a valid integer")
    return value


StrictInt = Annotated[int, BeforeValidator(_json_integer)]


def _one_or_more_texts(value: Any) -> Any:
    """TEI's `inputs`: one string (a batch of one) or a list of strings. One clear error for anything else, instead
    of pydantic's error per member of a `str | list[str]` union."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise PydanticCustomError("texts_type", "Input should be a string or a list of strings")
    return value


TEXTS_SCHEMA = {
    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
    "title": "Inputs",
}
# a string or a non-empty list of strings, always given to the route as a list
OneOrMoreTexts = Annotated[
    list[str], BeforeValidator(_one_or_more_texts), Field(min_length=1), WithJsonSchema(TEXTS_SCHEMA)
]


def http_error(status: int, detail: str) -> HTTPException:
    """An HTTP error whose JSON body is `{"detail": detail}`."""
    return HTTPException(status_code=status, detail=detail)


@dataclass
class Limits:
    """Per-request limits. `max_body_bytes` is enforced on the bytes received (chunked bodies too); a /search asking
    for more than `max_hits` hits (queries × k) is refused before any work, and one whose hits add up to more than
    `max_response_bytes` of text and metadata is refused before it is serialised."""

    max_batch: int = 256  # texts (or pairs, or documents, or ids) per request
    max_text_chars: int = 20_000
    max_body_bytes: int = 8 * 1024 * 1024
    max_k: int = 1000
    max_hits: int = 10_000  # queries × k in one /search
    max_metadata_bytes: int = 16 * 1024  # one document's metadata, as compact JSON
    max_response_bytes: int = 16 * 1024 * 1024  # text + metadata of the hits of one /search

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            check_param(f.name, "Limits", isinstance(value, int) and value >= 1, "an int >= 1", value)

    def check_batch(self, n: int, what: str) -> None:
        """413 when a request carries more than `max_batch` items."""
        if n > self.max_batch:
            raise http_error(413, f"Too many {what}: {n} > {self.max_batch} per request.")

    def check_texts(self, texts: Sequence[str], what: str = "texts") -> None:
        """413 for too many or too long texts, 422 for a blank one; `what` names them in the message."""
        self.check_batch(len(texts), what)
        for i, t in enumerate(texts):
            if not t.strip():
                raise http_error(422, f"{what}[{i}] is empty.")
            if len(t) > self.max_text_chars:
                raise http_error(413, f"{what}[{i}] has {len(t)} characters; the limit is {self.max_text_chars}.")

    def check_k(self, k: int, queries: int = 1) -> None:
        """422 when more neighbours are asked for than `max_k`; 413 when queries × k is over `max_hits`."""
        if k > self.max_k:
            raise http_error(422, f"k={k} is over the limit of {self.max_k}.")
        if k * queries > self.max_hits:
            raise http_error(413, f"{queries} queries × k={k} = {k * queries} hits; the limit is {self.max_hits}.")

    def check_metadata(self, metadata: Sequence[dict], what: str = "documents") -> None:
        """413 when one document's metadata, as compact JSON, is over `max_metadata_bytes`; 422 when it nests
        deeper than the library stores (MAX_METADATA_DEPTH, the metadata object itself included)."""
        for i, m in enumerate(metadata):
            if json_depth(m) > MAX_METADATA_DEPTH:
                raise http_error(422, f"{what}[{i}].metadata nests objects/arrays more than {MAX_METADATA_DEPTH} deep.")
            size = len(json.dumps(m, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
            if size > self.max_metadata_bytes:
                raise http_error(
                    413, f"{what}[{i}].metadata is {size} bytes as JSON; the limit is {self.max_metadata_bytes}."
                )

    def check_response(self, size: int) -> None:
        """413 when a response would carry more than `max_response_bytes` of text and metadata."""
        if size > self.max_response_bytes:
            raise http_error(
                413,
                f"The response would hold {size} bytes of text and metadata; the limit is "
                f"{self.max_response_bytes}: ask for fewer queries or a smaller k.",
            )


# -- /embed, /similarity ---------------------------------------------------------------------------------------
ID_CHARS = 1024  # a document id, at most


class StrictRequest(BaseModel):
    """semspace's own request bodies: an unknown field is a 422, never silently ignored (a misspelt `filter`
    would otherwise search everything). OpenAI and TEI bodies stay lenient, as their clients send extras."""

    model_config = ConfigDict(extra="forbid")


class EmbedRequest(StrictRequest):
    texts: list[str] = Field(min_length=1)
    normalize: StrictBool = False


class TEIEmbedRequest(BaseModel):
    """Text Embeddings Inference's /embed body (router/src/http/types.rs `EmbedRequest`); the response is a bare
    list of vectors. `truncation_direction` "left" is not offered (a 422)."""

    inputs: OneOrMoreTexts
    normalize: StrictBool = True  # TEI's default
    truncate: StrictBool | None = False  # TEI's default: a text over the token limit is an error, not cut
    truncation_direction: Literal["right", "Right"] = "right"
    prompt_name: str | None = None  # one of the model's sentence-transformers prompts (else a 422 naming them)
    dimensions: StrictInt | None = Field(default=None, ge=1)  # as /v1/embeddings: the whitened first components

    def texts(self) -> list[str]:
        return list(self.inputs)


class TEIEmbedAllRequest(BaseModel):
    """Text Embeddings Inference's /embed_all body (router/src/http/types.rs `EmbedAllRequest`): the token vectors
    of each input, not pooled. `truncation_direction` "left" is not offered (a 422)."""

    inputs: OneOrMoreTexts
    truncate: StrictBool | None = False  # TEI's default: a text over the token limit is an error, not cut
    truncation_direction: Literal["right", "Right"] = "right"
    prompt_name: str | None = None  # one of the model's sentence-transformers prompts (else a 400 naming them)

    def texts(self) -> list[str]:
        return list(self.inputs)


def _embed_body_kind(value: Any) -> str:
    return "TEIEmbedRequest" if isinstance(value, dict) and "inputs" in value else "EmbedRequest"


# /embed's body: TEI's when it has `inputs`, else semspace's. The discriminator validates against that one model
# only, so an error names that model's fields (a plain union reports every member's errors); the tag pydantic puts
# in the error's `loc` is dropped by the service's error handler (BODY_TAGS).
EmbedBody = Annotated[
    Annotated[EmbedRequest, Tag("EmbedRequest")] | Annotated[TEIEmbedRequest, Tag("TEIEmbedRequest")],
    Discriminator(_embed_body_kind),
]
BODY_TAGS = frozenset({"EmbedRequest", "TEIEmbedRequest"})


class EmbedResponse(BaseModel):
    model: str
    dim: int
    embeddings: list[list[float]]


class SimilarityRequest(StrictRequest):
    pairs: list[tuple[str, str]] = Field(min_length=1)

    def texts(self) -> list[str]:
        """Both sides of every pair, in order."""
        return [t for pair in self.pairs for t in pair]


class SimilarityResponse(BaseModel):
    scores: list[float]


# -- /search ---------------------------------------------------------------------------------------------------
class SearchRequest(StrictRequest):
    query: str | None = None
    queries: list[str] | None = None
    k: StrictInt = Field(default=10, ge=1)
    # cross-encoder search with the CUR searcher in <collection>/cur: "cur" (CUR as asked, `rounds`), "rnr" (the
    # bi-encoder's top-`budget` items re-ranked), "auto" (whichever measured better at this budget at build time)
    rerank: Literal["cur", "rnr", "auto"] | None = None
    budget: StrictInt = Field(default=100, ge=1, le=100_000)  # CE calls per query when rerank is set
    rounds: StrictInt = Field(default=1, ge=1, le=100)  # rerank="cur": 1 = ANNCUR, >= 2 = adaptive rounds
    # metadata filter: equality, $eq/$ne/$in/$nin/$gt/$gte/$lt/$lte, $and/$or (semspace.search.filters)
    filter: dict[str, Any] | None = None
    mode: Literal["dense", "bm25", "hybrid"] = "dense"
    fusion: Literal["rrf", "weighted"] = "rrf"  # how hybrid fuses the dense and BM25 lists
    alpha: StrictFloat = Field(default=0.5, ge=0, le=1)  # weight of the dense list when fusion="weighted"

    def query_list(self) -> list[str]:
        """The queries as a list; 422 unless exactly one of `query` / `queries` is given and it is not empty."""
        if (self.query is None) == (self.queries is None):
            raise http_error(422, "Give exactly one of 'query' or 'queries'.")
        queries = [self.query] if self.query is not None else list(self.queries or [])
        if not queries:
            raise http_error(422, "'queries' is empty.")
        return queries


class Hit(BaseModel):
    id: str
    score: float
    text: str
    metadata: dict


class QueryHits(BaseModel):
    query: str
    hits: list[Hit]
    ce_calls: int | None = None
    method: str | None = None  # with rerank: what ran, e.g. "rnr", "cur(rounds=1)"
    reason: str | None = None  # with rerank: one line saying why (the measured recall of each method for "auto")


class SearchResponse(BaseModel):
    results: list[QueryHits]


# -- /documents ------------------------------------------------------------------------------------------------
# Not blank as Python's str.isspace() sees it (what the library rejects): regex \s leaves out the separators
# \x1c-\x1f, so a text of them passed the schema and then got the library's 422 (found by the fuzz run).
NOT_BLANK = r"[^\s\x1c-\x1f]"


class DocumentIn(StrictRequest):
    id: str | None = Field(default=None, min_length=1, max_length=ID_CHARS)
    text: str = Field(pattern=NOT_BLANK)
    metadata: dict[str, Any] = Field(default_factory=dict)


class AddRequest(StrictRequest):
    documents: list[DocumentIn] = Field(min_length=1)

    def ids(self) -> list[str] | None:
        """The given ids, or None when no document has one; 422 when only some have one."""
        given = [d.id for d in self.documents]
        if all(i is None for i in given):
            return None
        if any(i is None for i in given):
            raise http_error(422, "Give an id for every document or for none.")
        return [i for i in given if i is not None]


class UpsertDocument(DocumentIn):
    id: str = Field(min_length=1, max_length=ID_CHARS)  # required: upsert replaces by id


class UpsertRequest(StrictRequest):
    documents: list[UpsertDocument] = Field(min_length=1)


def _write_warning() -> str | None:
    return WRITE_WARNING.get()  # set by the collection's last write in this request


WARNING_FIELD = Field(
    default_factory=_write_warning,
    description="Absent when the write went through whole. Otherwise it is stored, and searchable, but its index "
    "step failed (a full disk, say) and the index catches up from the store: do not retry it.",
)


class WriteResponse(BaseModel):
    """A write's answer: `warning` only when there is one (the answers of before it are unchanged)."""

    @model_serializer(mode="wrap")
    def _without_empty_warning(self, handler: SerializerFunctionWrapHandler):  # unannotated: the fields give the schema
        data = handler(self)
        if data.get("warning") is None:
            data.pop("warning", None)
        return data


class AddResponse(WriteResponse):
    ids: list[str]
    count: int
    warning: str | None = WARNING_FIELD


class DeleteRequest(StrictRequest):
    ids: list[str] = Field(min_length=1)


CURSOR_PATTERN = r"^[0-9]{1,18}$"  # what `next_cursor` holds: a position in insertion order


class ListRequest(StrictRequest):
    filter: dict[str, Any] | None = None  # the metadata filter of /search
    limit: StrictInt = Field(default=100, ge=1, le=10_000)
    # at most 2**53, the largest integer a JSON number carries exactly (fuzzers compare larger bounds as floats)
    offset: StrictInt = Field(default=0, ge=0, le=2**53)
    cursor: str | None = Field(default=None, pattern=CURSOR_PATTERN)


class DocumentPageResponse(BaseModel):
    documents: list[dict[str, Any]]
    next_cursor: str | None = None
    count: int


class DeleteResponse(WriteResponse):
    deleted: int
    count: int
    warning: str | None = WARNING_FIELD


class Document(BaseModel):
    id: str
    text: str
    metadata: dict[str, Any]


class GetRequest(StrictRequest):
    ids: list[str] = Field(min_length=1)
    missing: Literal["error", "skip"] = "error"  # "skip": unknown ids are left out (Collection.get_existing)


class GetResponse(BaseModel):
    documents: list[Document]


# -- /collections ----------------------------------------------------------------------------------------------
class CollectionCreate(StrictRequest):
    name: str = Field(pattern=NAME_PATTERN, max_length=63)
    model: str | None = Field(default=None, max_length=1024)  # default: the server's model
    index: str = Field(default="Flat", min_length=1, max_length=200)
    pooling: str = Field(default="default", min_length=1, max_length=64)
    # the bounds before the validator: pydantic writes them as JSON Schema's minimum/maximum only in this order
    max_length: Annotated[int, Ge(2), Le(1_000_000), BeforeValidator(_json_integer)] | None = None
    precision: str = Field(default="float32", min_length=1, max_length=16)  # float32, int8 or binary
    get_or_create: bool = False


class CollectionInfo(BaseModel):
    """`Collection.info()` without the server's file path."""

    model_config = ConfigDict(extra="allow")

    name: str
    count: int
    encoder: dict[str, Any]
    index: str
    dim: int


class CollectionList(BaseModel):
    collections: list[CollectionInfo]


class CollectionDeleted(BaseModel):
    deleted: str


# -- /health ---------------------------------------------------------------------------------------------------
class Health(BaseModel):
    status: str
    model: str
    dim: int
    documents: int | None
    index: str | None


# -- errors (what the 4xx bodies look like) --------------------------------------------------------------------
class ErrorDetail(BaseModel):
    """Every 4xx outside /v1: `detail` is a message, or pydantic's list of field errors for a 422."""

    detail: str | list[dict[str, Any]]
    type: str | None = None  # the library's exception class (semspace.errors) when one caused it


class OpenAIErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    """Every 4xx on /v1, as the OpenAI API writes it."""

    error: OpenAIErrorBody


# -- OpenAI-compatible /v1 -------------------------------------------------------------------------------------
def _v1_input(value: Any) -> Any:
    """OpenAI's `input`: a string, a list of strings, or token ids (a list of ints, or of lists of ints — parsed so
    the route can refuse them with a 400 that says so). One clear error for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and (
        all(isinstance(v, str) for v in value)
        or all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or all(isinstance(v, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in v) for v in value)
    ):
        return value
    raise PydanticCustomError("texts_type", "Input should be a string or a list of strings")


class OpenAIEmbeddingsRequest(BaseModel):
    """`input` is a string or a list of strings (token-id arrays are refused with a 400); `model` is any name (the
    one model served answers, as TEI does; GET /v1/models says which)."""

    input: Annotated[
        str | list[str] | list[int] | list[list[int]],
        BeforeValidator(_v1_input),
        WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
    ]
    model: str | None = None  # any name, as TEI: the one model served answers
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: StrictInt | None = Field(default=None, ge=1)
    user: str | None = None


class OpenAIEmbedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str  # base64: little-endian float32, as OpenAI


class OpenAIUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class OpenAIEmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIEmbedding]
    model: str
    usage: OpenAIUsage


class OpenAIModel(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "semspace"


class OpenAIModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIModel]


# -- TEI-compatible /rerank, /info -----------------------------------------------------------------------------
class RerankRequest(BaseModel):
    query: str
    texts: list[str] = Field(min_length=1)
    raw_scores: StrictBool = False  # False: sigmoid of the logit, as TEI
    return_text: StrictBool = False
    truncate: StrictBool = True  # pairs are always cut at the cross-encoder's max_length


class TokenizeRequest(BaseModel):
    """TEI's /tokenize body."""

    inputs: OneOrMoreTexts
    add_special_tokens: StrictBool = True
    prompt_name: str | None = None


class Token(BaseModel):
    """One token as TEI's /tokenize writes it: `start`/`stop` are character offsets in the text (null for a special
    token the tokenizer added)."""

    id: int
    text: str
    special: bool
    start: int | None
    stop: int | None


def _one_or_more_id_lists(value: Any) -> Any:
    """TEI's `ids`: one list of token ids (a batch of one) or a non-empty list of them."""
    if not isinstance(value, list):
        raise PydanticCustomError("ids_type", "Input should be a list of token ids or a list of such lists")
    if value and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return [value]
    return value


MAX_TOKEN_ID = 2**32 - 1  # tokenizers' ids are u32 (TEI's too)
TokenId = Annotated[StrictInt, Field(ge=0, le=MAX_TOKEN_ID)]
TOKEN_ID_SCHEMA = {"type": "integer", "minimum": 0, "maximum": MAX_TOKEN_ID}


class DecodeRequest(BaseModel):
    """TEI's /decode body: ids the tokenizer does not know are skipped, as TEI's tokenizer does."""

    ids: Annotated[
        list[Annotated[list[TokenId], Field(min_length=1)]],
        BeforeValidator(_one_or_more_id_lists),
        Field(min_length=1),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "array", "items": TOKEN_ID_SCHEMA, "minItems": 1},
                    {
                        "type": "array",
                        "items": {"type": "array", "items": TOKEN_ID_SCHEMA, "minItems": 1},
                        "minItems": 1,
                    },
                ],
                "title": "Ids",
            }
        ),
    ]
    skip_special_tokens: StrictBool = True


class Rank(BaseModel):
    index: int
    score: float
    text: str | None = None


class Info(BaseModel):
    """What TEI's /info says, for this service."""

    model_id: str
    model_dtype: str
    model_type: dict[str, Any]
    dim: int
    max_input_length: int | None
    max_client_batch_size: int
    max_text_chars: int
    reranker: str | None
    version: str
    engine: dict[str, Any] | None = None  # semspace's addition: the engine and why (Encoder.info["engine"])


# -- OpenAPI: the runtime limits, written into the schema ------------------------------------------------------
# A text must hold a character that str.isspace() does not call whitespace (blank texts are 422s). The class is
# spelled out because `\S` means different sets in Python and in ECMA regexes (\x1c-\x1f, \x85, \ufeff).
NON_BLANK = r"[^\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"


# Where the limits live in the request models: (model, field) pairs of texts (a string or a list of strings: each
# text non-blank and at most max_text_chars, a list at most max_batch long) and of other per-request lists.
TEXT_FIELDS = (
    ("EmbedRequest", "texts"),
    ("TEIEmbedRequest", "inputs"),
    ("TEIEmbedAllRequest", "inputs"),
    ("SearchRequest", "queries"),
    ("SearchRequest", "query"),
    ("RerankRequest", "texts"),
    ("RerankRequest", "query"),
    ("DocumentIn", "text"),
    ("TokenizeRequest", "inputs"),
)
BATCH_FIELDS = (
    ("AddRequest", "documents"),
    ("DeleteRequest", "ids"),
    ("SimilarityRequest", "pairs"),
    ("DecodeRequest", "ids"),
)


TRUNCATE = "false (TEI's default): a text over the model's token limit is a 413; true: it is cut."


def describe_limits(
    schema: dict[str, Any],
    limits: Limits,
    served: tuple[str, int, int | None] | None = None,
    strict_model: bool = False,
) -> dict[str, Any]:
    """Write what the server really checks into an app's OpenAPI schema, in place, and return it: the limits of
    :class:`Limits` (maxItems, maxLength, maximum) on TEXT_FIELDS and BATCH_FIELDS, non-blank texts, the one-of
    rules of /search and /documents, string-only /v1 input, and — when `served` = (model id, encoder dim, whitening
    k or None) is known — the `model` (any, or with `strict_model` the served names) and `dimensions` that
    /v1/embeddings accepts. What JSON Schema cannot say
    (token counts, bytes, hits) is a 413."""
    comps = schema.get("components", {}).get("schemas", {})

    def props(model: str) -> dict[str, Any]:
        return comps.get(model, {}).get("properties", {})

    for model, name in TEXT_FIELDS:
        _limit_texts(props(model).get(name, {}), limits, min_items=1)
    for model, name in BATCH_FIELDS:
        if name in props(model):
            props(model)[name]["maxItems"] = limits.max_batch
    for pair_text in props("SimilarityRequest").get("pairs", {}).get("items", {}).get("prefixItems", []):
        _limit_text(pair_text, limits)
    if "TEIEmbedRequest" in comps:
        props("TEIEmbedRequest")["truncate"]["description"] = TRUNCATE
    if "TEIEmbedAllRequest" in comps:
        props("TEIEmbedAllRequest")["truncate"]["description"] = TRUNCATE
    if "OpenAIEmbeddingsRequest" in comps:
        _describe_v1_embeddings(props("OpenAIEmbeddingsRequest"), limits, served, strict_model)
    if "TEIEmbedRequest" in comps and served is not None:
        props("TEIEmbedRequest")["dimensions"] = _dimensions_schema(*served[1:])
    if "SearchRequest" in comps:
        _describe_search(comps["SearchRequest"], limits)
    if "AddRequest" in comps:
        _describe_add(props("AddRequest"), props("DocumentIn"), limits)
    return schema


def _limit_text(node: dict[str, Any], limits: Limits) -> None:
    node.update(maxLength=limits.max_text_chars, minLength=1, pattern=NON_BLANK)


def _limit_texts(node: dict[str, Any], limits: Limits, min_items: int | None = None) -> None:
    for option in node.get("anyOf", [node]):
        if option.get("type") == "array" and option.get("items", {}).get("type") == "string":
            option["maxItems"] = limits.max_batch
            if min_items is not None:
                option["minItems"] = min_items
            _limit_text(option["items"], limits)
        elif option.get("type") == "string":
            _limit_text(option, limits)


def _describe_v1_embeddings(
    v1: dict[str, Any], limits: Limits, served: tuple[str, int, int | None] | None, strict_model: bool
) -> None:
    """/v1/embeddings: strings only (token-id arrays are a 400), and the dimensions this service can give."""
    v1["input"] = {
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
        "title": "Input",
        "description": "A string or a list of strings (token-id arrays are refused with a 400).",
    }
    _limit_texts(v1["input"], limits, min_items=1)
    if served is not None:
        model_id, native, k = served
        if strict_model:
            names = ", ".join(repr(name) for name in (model_id, *model_aliases(model_id)))
            v1["model"]["description"] = f"One of {names} (another name is a 404); none: the served model."
        else:
            v1["model"]["description"] = f"Any name: this service serves {model_id!r} whatever `model` says."
        v1["dimensions"] = _dimensions_schema(native, k)


def _dimensions_schema(native: int, k: int | None) -> dict[str, Any]:
    """The `dimensions` this service gives: the encoder's own, or 1..k of the collection's whitening."""
    allowed: list[dict[str, Any]] = [{"type": "integer", "enum": [native]}, {"type": "null"}]
    if k is not None:
        allowed.insert(1, {"type": "integer", "minimum": 1, "maximum": k})
    return {"anyOf": allowed, "title": "Dimensions"}


def _describe_search(search: dict[str, Any], limits: Limits) -> None:
    search["properties"]["k"]["maximum"] = limits.max_k
    search["oneOf"] = [  # exactly one of query / queries (a null one counts as absent)
        {"required": ["query"], "properties": {"query": {"type": "string"}}},
        {"required": ["queries"], "properties": {"queries": {"type": "array"}}},
    ]
    search["description"] = (
        f"Exactly one of `query` / `queries`; len(queries) × k at most {limits.max_hits} (else a 413), and the "
        f"hits' text and metadata at most {limits.max_response_bytes} bytes (else a 413)."
    )


def _describe_add(add: dict[str, Any], document: dict[str, Any], limits: Limits) -> None:
    with_id = {"required": ["id"], "properties": {"id": {"type": "string"}}}
    without_id = {"properties": {"id": {"type": "null"}}}
    add["documents"]["anyOf"] = [{"items": with_id}, {"items": without_id}]
    add["documents"]["description"] = "An id for every document or for none."
    document["metadata"]["description"] = (
        f"Any JSON object; at most {limits.max_metadata_bytes} bytes as compact JSON (else a 413), objects and "
        f"arrays nested at most {MAX_METADATA_DEPTH} deep, itself included (else a 422)."
    )


ERROR_DESCRIPTIONS = {
    400: "Bad request: a library error (bad parameter), a Host header not allowed, token ids as input, or a "
    "`prompt_name` / `dimensions` this model or collection does not have.",
    401: "Missing or wrong API key (`Authorization: Bearer <key>`).",
    403: "Not allowed here: creating or dropping a collection on a server that serves a single one.",
    404: "Not found (a document id, a collection, a model, or no collection / CUR index / cross-encoder attached).",
    409: "A document id is already in the collection, or a collection of that name exists; nothing was written.",
    413: "Over a limit: request body bytes, items per request, characters per text, metadata bytes, hits or "
    "response bytes.",
    415: "The body is not sent as JSON (`Content-Type: application/json`).",
    422: "Invalid input: wrong types or shapes, empty texts, NaN/Infinity literals, lone surrogates.",
}


def error_responses(*codes: int, openai: bool = False) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the 4xx it can answer, with their JSON body model."""
    model = OpenAIError if openai else ErrorDetail
    return {code: {"model": model, "description": ERROR_DESCRIPTIONS[code]} for code in codes}
