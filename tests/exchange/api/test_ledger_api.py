"""``/v1/ledger``: the digest is the ledger's own, a proof checks against it with nothing but
the verifier, and an entry's proof goes only to those the entry concerns (or who supervise)."""

from __future__ import annotations

import json

from exchange.api.ledger_tree import LedgerTree
from ledger import Digest, InclusionProof, ProofError, leaf_hash, verify_inclusion
from tests.exchange.api.helpers import ADMIN, BUYERS, PROVIDER, Api

ANN = BUYERS[0]


def _digest(api: Api) -> Digest:
    return Digest.from_json(api.expect(200, "GET", "/v1/ledger/digest"))


def _entries_of(api: Api, participant_id: str) -> list[int]:
    ledger = api.app.state.runtime.ledger
    return [
        seq
        for seq in range(1, ledger.size() + 1)
        if any(posting.account.startswith(f"participant:{participant_id}:")
               for posting in ledger.entry(seq).postings)
    ]  # fmt: skip


def _check(proof: dict, digest: Digest) -> None:
    verify_inclusion(leaf_hash(proof["entry"].encode()), InclusionProof.from_json(proof), digest)


def test_the_digest_is_the_ledgers_and_needs_no_key(api: Api):
    api.market()
    digest = _digest(api)
    assert digest == api.app.state.runtime.ledger.digest()
    assert digest.tree_size > 0


def test_a_participant_proves_its_own_entry_against_the_digest(api: Api):
    api.market()
    digest = _digest(api)
    seq = _entries_of(api, ANN)[0]
    proof = api.expect(200, "GET", f"/v1/ledger/entries/{seq}/proof", ANN)
    assert proof["seq"] == seq and proof["leaf_index"] == seq - 1
    assert proof["tree_size"] == digest.tree_size
    assert json.loads(proof["entry"])["seq"] == seq
    _check(proof, digest)


def test_a_tampered_entry_does_not_verify(api: Api):
    api.market()
    digest = _digest(api)
    seq = _entries_of(api, ANN)[0]
    proof = api.expect(200, "GET", f"/v1/ledger/entries/{seq}/proof", ANN)
    tampered = {**proof, "entry": proof["entry"].replace("100000", "900000", 1)}
    assert tampered["entry"] != proof["entry"]
    try:
        _check(tampered, digest)
    except ProofError as error:
        assert "root" in str(error)
    else:
        raise AssertionError("a tampered entry verified")


def test_a_proof_against_an_earlier_digest(api: Api):
    api.market()
    seq = _entries_of(api, ANN)[0]
    earlier = api.app.state.runtime.ledger.digest()
    api.deposit(ANN)  # the ledger grows after the digest was kept
    path = f"/v1/ledger/entries/{seq}/proof?tree_size={earlier.tree_size}"
    _check(api.expect(200, "GET", path, ANN), earlier)


def test_another_participants_entry_is_not_found(api: Api):
    api.market()
    seq = _entries_of(api, ANN)[0]
    body = api.expect(404, "GET", f"/v1/ledger/entries/{seq}/proof", BUYERS[1])
    assert body["reason"] == "NOT_FOUND"
    # The admin supervises the market: any entry.
    _check(api.expect(200, "GET", f"/v1/ledger/entries/{seq}/proof", ADMIN), _digest(api))


def test_bad_proof_requests_say_what_is_wrong(api: Api):
    api.market()
    size = _digest(api).tree_size
    api.expect(401, "GET", "/v1/ledger/entries/1/proof")
    assert "seq" in api.expect(422, "GET", "/v1/ledger/entries/0/proof", ADMIN)["detail"]
    api.expect(404, "GET", f"/v1/ledger/entries/{size + 1}/proof", ADMIN)
    path = f"/v1/ledger/entries/{size}/proof?tree_size={size - 1}"
    assert api.expect(422, "GET", path, ADMIN)["reason"] == "VALIDATION_INVALID"
    api.expect(422, "GET", "/v1/ledger/entries/1/proof?tree_size=0", ADMIN)
    # Beyond a 64-bit sequence number: no entry, and no query the database would refuse.
    assert "seq" in api.expect(422, "GET", f"/v1/ledger/entries/{2**63}/proof", ADMIN)["detail"]
    path = f"/v1/ledger/entries/1/proof?tree_size={2**63}"
    assert "tree_size" in api.expect(422, "GET", path, ADMIN)["detail"]
    # A size the ledger has not reached is refused, not a reason to rebuild the tree.
    path = f"/v1/ledger/entries/1/proof?tree_size={size + 1}"
    detail = api.expect(422, "GET", path, ADMIN)["detail"]
    assert detail == f"tree_size {size + 1} is beyond the ledger's {size} entries"


def test_no_checkpoint_without_a_witness(api: Api):
    assert api.expect(200, "GET", "/v1/ledger/checkpoint") is None


def test_the_tree_is_not_rebuilt_while_fresh_unless_a_proof_needs_more(api: Api):
    api.market()
    runtime = api.app.state.runtime
    # Fresh for a minute, so that a slow machine cannot make the test's second request late.
    runtime.ledger_tree = LedgerTree(max_age_s=60)
    before = _digest(api)
    api.deposit(ANN)  # one more entry, within the second
    assert _digest(api) == before  # the tree held, not a rescan per request
    seq = _entries_of(api, ANN)[-1]
    assert seq == before.tree_size + 1
    # A proof of the new entry needs the larger tree: it is rebuilt at once.
    proof = api.expect(200, "GET", f"/v1/ledger/entries/{seq}/proof", ANN)
    assert proof["tree_size"] == seq
    assert runtime.ledger_tree.tree(runtime.ledger).size == seq


def _own_pages(api: Api, who: str, limit: int) -> list[dict]:
    """Every entry ``/v1/ledger/entries`` lists for ``who``, walked a page at a time."""
    entries: list[dict] = []
    after = 0
    while True:
        page = api.expect(200, "GET", f"/v1/ledger/entries?after={after}&limit={limit}", who)
        entries.extend(page["entries"])
        if page["next_after"] is None:
            return entries
        assert len(page["entries"]) == limit
        after = page["next_after"]


def test_a_participant_lists_exactly_its_own_entries_and_proves_each(api: Api):
    """The list is the entries with a posting to one of the caller's accounts, in order,
    whatever the page size; each lists every posting and proves against the digest."""
    api.market()
    api.placed(PROVIDER, "ask", "sell", "101.00", 5)
    api.placed(ANN, "lift", "buy", "101.00", 2)
    api.create_participant("ann2", "buyer")  # an id extending ann's: none of ann's
    api.deposit("ann2")
    ledger = api.app.state.runtime.ledger
    digest = _digest(api)
    for who in (ANN, BUYERS[1], PROVIDER, "ann2"):
        expected = _entries_of(api, who)
        assert expected, who
        for limit in (1, 2, 500):
            listed = _own_pages(api, who, limit)
            assert [e["seq"] for e in listed] == expected, (who, limit)
        for entry in listed:
            stored = ledger.entry(entry["seq"])
            assert entry["kind"] == stored.kind
            shown = [tuple(p.values()) for p in entry["postings"]]
            assert shown == [tuple(p) for p in stored.postings]
            proof = api.expect(200, "GET", f"/v1/ledger/entries/{entry['seq']}/proof", who)
            _check(proof, digest)
    trade = [e for e in _own_pages(api, ANN, 100) if e["kind"] == "trade_settlement"]
    assert len(trade) == 1
    assert {p["account"] for p in trade[0]["postings"]} >= {
        f"participant:{ANN}:cash",
        f"participant:{PROVIDER}:cash",
    }


def test_listing_ones_entries_needs_a_key_and_bounded_pages(api: Api):
    api.market()
    assert api.request("GET", "/v1/ledger/entries").status_code == 401
    for query in ("limit=0", "limit=501", "after=-1", "after=x"):
        response = api.request("GET", f"/v1/ledger/entries?{query}", ANN)
        assert response.status_code == 422, (query, response.text)
    beyond = api.expect(200, "GET", "/v1/ledger/entries?after=1000000", ANN)
    assert beyond == {"entries": [], "next_after": None}
