"""Metadata filters (`where=`), the small query language of Chroma/Qdrant-style vector stores, compiled to SQLite.

    {"source": "faq"}                                   equality (strings, numbers, true/false, null)
    {"year": {"$gte": 2020, "$lt": 2024}}               ranges: $gt $gte $lt $lte (numbers, or strings)
    {"lang": {"$in": ["en", "fr"]}}                     membership: $in $nin; also $eq $ne
    {"$or": [{"source": "faq"}, {"year": {"$gt": 2022}}]}  boolean: $and $or (lists of filters)

Several keys in one object are ANDed. A field may be a dotted path into nested metadata ("author.name"). A range
only matches values of its own kind (a number bound never matches a string), as in Chroma. The compiled SQL reads the
metadata JSON with `json_extract`/`json_type`; values are bound as parameters, never spliced into the SQL.
"""

from __future__ import annotations

import re
from typing import Any

from semspace.errors import InvalidParameterError

_FIELD = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")
_RANGE = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
OPERATORS = ("$eq", "$ne", "$in", "$nin", *_RANGE)
MAX_DEPTH = 16
MAX_TERMS = 1000


def _bad(message: str) -> InvalidParameterError:
    return InvalidParameterError(f"Invalid where filter: {message}")


def _path(field: str) -> str:
    if not isinstance(field, str) or not _FIELD.match(field):
        raise _bad(f"field names are letters, digits, _ or -, dotted for nested fields; got {field!r}")
    return "$" + "".join(f'."{part}"' for part in field.split("."))


def _scalar(value: Any, op: str) -> None:
    if value is not None and not isinstance(value, str | int | float | bool):
        raise _bad(f"{op} takes a string, number, true/false or null; got {type(value).__name__}")


def _equals(path: str, value: Any) -> tuple[str, list]:
    if value is None:
        return "json_type(metadata, ?) = 'null'", [path]
    if isinstance(value, bool):
        return "json_type(metadata, ?) = ?", [path, "true" if value else "false"]
    if isinstance(value, str):
        return "(json_type(metadata, ?) = 'text' AND json_extract(metadata, ?) = ?)", [path, path, value]
    return "(json_type(metadata, ?) IN ('integer', 'real') AND json_extract(metadata, ?) = ?)", [path, path, value]


def _field(field: str, condition: Any) -> tuple[str, list]:
    path = _path(field)
    if not isinstance(condition, dict):
        _scalar(condition, "equality")
        return _equals(path, condition)
    if not condition:
        raise _bad(f"empty condition for {field!r}")
    parts, params = [], []
    for op, value in condition.items():
        if op == "$eq" or op == "$ne":
            _scalar(value, op)
            sql, p = _equals(path, value)
            sql = sql if op == "$eq" else f"NOT {sql}"
        elif op in ("$in", "$nin"):
            if not isinstance(value, list):
                raise _bad(f"{op} takes a list; got {type(value).__name__}")
            if len(value) > MAX_TERMS:
                raise _bad(f"{op} takes at most {MAX_TERMS} values")
            terms = [_equals(path, v) for v in value if _scalar(v, op) is None]
            sql = "(" + " OR ".join(t[0] for t in terms) + ")" if terms else "0"
            p = [x for t in terms for x in t[1]]
            sql = sql if op == "$in" else f"NOT {sql}"
        elif op in _RANGE:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise _bad(f"{op} takes a number or a string; got {value!r}")
            kinds = "('text')" if isinstance(value, str) else "('integer', 'real')"
            sql = f"(json_type(metadata, ?) IN {kinds} AND json_extract(metadata, ?) {_RANGE[op]} ?)"
            p = [path, path, value]
        else:
            raise _bad(f"unknown operator {op!r} for {field!r}; use one of {', '.join(OPERATORS)}")
        parts.append(sql)
        params += p
    return "(" + " AND ".join(parts) + ")", params


def compile_where(where: dict, depth: int = 0) -> tuple[str, list]:
    """(SQL boolean expression over the `metadata` column, parameters); InvalidParameterError naming the problem."""
    if not isinstance(where, dict):
        raise _bad(f"expected a JSON object; got {type(where).__name__}")
    if depth > MAX_DEPTH:
        raise _bad(f"nested deeper than {MAX_DEPTH} levels")
    if not where:
        return "1", []
    parts, params = [], []
    for key, value in where.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise _bad(f"{key} takes a non-empty list of filters")
            subs = [compile_where(v, depth + 1) for v in value]
            joiner = " AND " if key == "$and" else " OR "
            parts.append("(" + joiner.join(s[0] for s in subs) + ")")
            params += [x for s in subs for x in s[1]]
        elif key.startswith("$"):
            raise _bad(f"unknown operator {key!r} at the top level; use $and, $or or a field name")
        else:
            sql, p = _field(key, value)
            parts.append(sql)
            params += p
    return "(" + " AND ".join(parts) + ")", params
