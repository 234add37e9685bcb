"""The hash chains: the canonical bytes of a row and how each row's hash covers its past.

``hash_n = SHA-256(hash_{n-1} || canonical_bytes(row_n))`` with ``hash_0`` 32 zero bytes.
The journal and the settlement ledger are two separate chains. A row's canonical bytes are
the canonical JSON (see :mod:`ledger.canonical`) of the document built from the row alone:

- journal row: ``{"command": <payload>, "seq": seq, "ts_ns": ts_ns}``
- ledger entry: ``{"body": <body>, "key": key, "kind": kind,
  "postings": [[account, asset, amount_units], ...], "seq": seq, "ts_ns": ts_ns}``
  with the postings in their stored order.

The payload and the body are stored as canonical JSON text and are spliced in verbatim, so a
changed byte anywhere in a row changes its hash. The same entry bytes are the Merkle leaves.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha256

import orjson

__all__ = [
    "GENESIS_HASH",
    "chain_hash",
    "command_document",
    "entry_document",
]

GENESIS_HASH = bytes(32)
_SORT_KEYS = orjson.OPT_SORT_KEYS
_Fragment = orjson.Fragment


def chain_hash(previous_hash: bytes, document: bytes) -> bytes:
    """``SHA-256(previous_hash || document)``."""
    return sha256(previous_hash + document).digest()


def entry_document(
    seq: int,
    ts_ns: int,
    kind: str,
    key: str,
    body_json: bytes | str,
    postings: Sequence[Sequence[str | int]],
) -> bytes:
    """Canonical bytes of a ledger entry row and its postings ``(account, asset, amount)``.

    >>> entry_document(1, 5, "deposit", "k", b'{"a":1}', [("x", "cash", -1), ("y", "cash", 1)])
    b'{"body":{"a":1},"key":"k","kind":"deposit","postings":[["x","cash",-1],["y","cash",1]],"seq":1,"ts_ns":5}'
    """
    return orjson.dumps(
        {
            "body": _Fragment(body_json),
            "key": key,
            "kind": kind,
            "postings": postings,
            "seq": seq,
            "ts_ns": ts_ns,
        },
        option=_SORT_KEYS,
    )


def command_document(seq: int, ts_ns: int, command_json: bytes | str) -> bytes:
    """Canonical bytes of an order-flow journal row.

    >>> command_document(7, 9, b'{"verb":"cancel"}')
    b'{"command":{"verb":"cancel"},"seq":7,"ts_ns":9}'
    """
    return orjson.dumps(
        {"command": _Fragment(command_json), "seq": seq, "ts_ns": ts_ns}, option=_SORT_KEYS
    )
