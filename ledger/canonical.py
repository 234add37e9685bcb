"""Canonical JSON: the one byte form of a document that every process agrees on.

A document is a tree of ``dict`` (string keys), ``list``/``tuple``, ``str``, ``int``,
``bool`` and ``None``. Floats are refused: money and quantities are integers everywhere.
The canonical bytes are UTF-8 JSON with keys sorted by code point and no whitespace, so
any language can recompute them (and the hashes over them) from the stored rows alone.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["CanonicalJSONError", "canonical_json", "check_canonical_value", "parse_json"]

# orjson refuses integers outside the signed/unsigned 64-bit range; we keep to the signed one
# so that every value also fits a BIGINT column and a JavaScript-free decoder.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Documents are bounded so that one bad caller cannot write an unbounded row.
MAX_DEPTH = 16

_SORT_KEYS = orjson.OPT_SORT_KEYS


class CanonicalJSONError(ValueError):
    """The value cannot be written as canonical JSON (a float, a non-string key, ...)."""


def check_canonical_value(value: Any, depth: int = 0) -> None:
    """Raise :class:`CanonicalJSONError` unless ``value`` is a canonical JSON document.

    >>> check_canonical_value({"amount_minor": 5, "memo": None})
    >>> check_canonical_value({"price": 1.5})
    Traceback (most recent call last):
    ...
    ledger.canonical.CanonicalJSONError: float at $.price: use integers for money and quantities
    """
    _check(value, depth, "$")


def _check(value: Any, depth: int, path: str) -> None:
    if depth > MAX_DEPTH:
        raise CanonicalJSONError(f"nesting deeper than {MAX_DEPTH} at {path}")
    kind = type(value)
    # bool is not int here (type() is exact), so True is not range-checked as 1.
    if kind in _SCALARS:
        return
    if kind is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise CanonicalJSONError(f"integer outside signed 64-bit range at {path}")
        return
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise CanonicalJSONError(f"non-string key {key!r} at {path}")
            # Scalars are checked inline: bodies are mostly flat and this is the hot path.
            item_kind = type(item)
            if item_kind in _SCALARS or (item_kind is int and INT64_MIN <= item <= INT64_MAX):
                continue
            _check(item, depth + 1, f"{path}.{key}")
        return
    if kind is list or kind is tuple:
        for index, item in enumerate(value):
            _check(item, depth + 1, f"{path}[{index}]")
        return
    if isinstance(value, str):
        return  # a str subclass such as a StrEnum member serialises as its string value
    if isinstance(value, int) and not isinstance(value, bool):
        _check(int(value), depth, path)  # an IntEnum member serialises as its integer
        return
    if isinstance(value, float):
        raise CanonicalJSONError(f"float at {path}: use integers for money and quantities")
    raise CanonicalJSONError(f"{kind.__name__} at {path} is not a JSON value")


_SCALARS = frozenset({str, bool, type(None)})


def canonical_json(value: Any) -> bytes:
    """Return the canonical bytes of ``value`` after checking that it is canonical.

    >>> canonical_json({"b": [1, True, None], "a": "x"})
    b'{"a":"x","b":[1,true,null]}'
    """
    _check(value, 0, "$")
    return orjson.dumps(value, option=_SORT_KEYS)


def parse_json(data: bytes | str) -> Any:
    """Parse JSON text (canonical or not) into Python values."""
    return orjson.loads(data)
