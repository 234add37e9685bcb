"""``/v1/ledger``: the digest is the ledger's own, a proof checks against it with nothing but
the verifier, and an entry's proof goes only to those the entry concerns (or who supervise)."""

from __future__ import annotations

import json

from exchange.api.ledger_tree import LedgerTree
from ledger import Digest, InclusionProof, ProofError, leaf_hash, verify_inclusion
from tests.exchange.api.helpers import ADMIN, BUYERS, Api

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
