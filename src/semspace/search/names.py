"""Collection names: one path component, the same rule for a folder of collections and for a server's URLs."""

from __future__ import annotations

import re

from semspace.errors import InvalidParameterError

# no separators, no dot-names ("." / ".." / hidden folders), at most 63 characters
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
_NAME = re.compile(NAME_PATTERN)


def is_name(name: object) -> bool:
    return isinstance(name, str) and _NAME.match(name) is not None


def check_name(name: object) -> str:
    """`name` if it is a valid collection name, else InvalidParameterError saying what a name may be."""
    if not is_name(name):
        raise InvalidParameterError(
            f"Invalid collection name {name!r}: 1–63 characters of letters, digits, '.', '_' or '-', starting with a "
            "letter or digit."
        )
    return name  # type: ignore[return-value]
