from __future__ import annotations

import pytest

from ledger.canonical import CanonicalJSONError, canonical_json
from ledger.chain import entry_document


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    assert canonical_json({"b": 1, "a": {"d": [True, None], "c": "é"}}) == (
        '{"a":{"c":"é","d":[true,null]},"b":1}'.encode()
    )


@pytest.mark.parametrize(
    "value",
    [{"price": 1.5}, {"q": [1, 2.0]}, {1: "x"}, {"big": 2**63}, {"b": b"bytes"}, {"s": {1}}],
)
def test_canonical_json_refuses_what_is_not_integer_json(value: object) -> None:
    with pytest.raises(CanonicalJSONError):
        canonical_json(value)


def test_entry_document_is_the_canonical_json_of_the_row() -> None:
    body = canonical_json({"amount_minor": 5, "participant": "ann"})
    postings = [("external:cash", "cash", -5), ("participant:ann:cash", "cash", 5)]
    document = entry_document(3, 99, "deposit", "dep-1", body, postings)
    assert document == canonical_json(
        {
            "seq": 3,
            "ts_ns": 99,
            "kind": "deposit",
            "key": "dep-1",
            "body": {"amount_minor": 5, "participant": "ann"},
            "postings": [list(p) for p in postings],
        }
    )
