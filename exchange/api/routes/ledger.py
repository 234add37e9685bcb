"""The settlement ledger's digest, the witness's last checkpoint, and inclusion proofs.

A client keeps a digest (tree size, root hash) and checks proofs against it with nothing
else (``ledger.verify_inclusion``, ``dataex ledger check-proof`` or the dashboard's ledger
page). The digest and the checkpoint are public: they say how many entries there are and
commit to them without showing any. An entry's proof shows the entry itself, postings and
all, so it is given only to a participant the entry concerns (one of its accounts is
posted to), or to an admin or a regulator; another's entry is a 404, as if it did not exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from exchange.participants import Participant, Role
from ledger import Digest, ProofError, leaf_hash
from ledger.accounts import participant_of
from ledger.witness import WitnessError, read_witness

from ..bodies import StrictJsonRoute
from ..deps import CurrentParticipant, RuntimeDep
from ..errors import ApiError
from ..ledger_models import LedgerEntryPage, entry_view
from ..schemas import (
    MAX_ENTRY_SEQ,
    CheckpointPublic,
    EntrySeqPath,
    InclusionProofPublic,
    LedgerDigestPublic,
    error_responses,
)

router = APIRouter(prefix="/ledger", tags=["ledger"], route_class=StrictJsonRoute)
MAX_ENTRIES_PAGE = 500
# Who may read any entry's proof: those who supervise the whole market.
SEE_EVERY_ENTRY = frozenset({Role.ADMIN, Role.REGULATOR})


def _digest_view(digest: Digest) -> LedgerDigestPublic:
    return LedgerDigestPublic(tree_size=digest.tree_size, root_hash=digest.root_hash.hex())


@router.get("/digest", response_model=LedgerDigestPublic)
async def ledger_digest(runtime: RuntimeDep) -> LedgerDigestPublic:
    """The settlement ledger's digest: the number of entries and their Merkle root, at most a
    second old."""
    # The tree is read from the database's entries: off the event loop.
    tree = await run_in_threadpool(runtime.ledger_tree.tree, runtime.ledger)
    return _digest_view(tree.digest())


@router.get("/checkpoint", response_model=CheckpointPublic | None,
            responses=error_responses(503))  # fmt: skip
async def last_checkpoint(runtime: RuntimeDep) -> CheckpointPublic | None:
    """The witness's last checkpoint (the journal's and the ledger's digests it wrote), or
    null when the server keeps no witness or it has written none yet."""
    if runtime.settings.witness_path is None:
        return None
    try:
        state = read_witness(Path(runtime.settings.witness_path))
    except WitnessError as error:
        raise ApiError(503, str(error), "UNAVAILABLE", {"Retry-After": "5"}) from None
    checkpoint = state.checkpoint
    if checkpoint is None:
        return None
    return CheckpointPublic(
        time=checkpoint.time,
        journal=_digest_view(checkpoint.journal),
        ledger=_digest_view(checkpoint.ledger),
    )


@router.get("/entries/{seq}/proof", response_model=InclusionProofPublic,
            responses=error_responses(401, 404, 422, 429))  # fmt: skip
async def inclusion_proof(
    seq: EntrySeqPath,
    me: CurrentParticipant,
    runtime: RuntimeDep,
    tree_size: Annotated[
        int | None,
        Query(ge=1, le=MAX_ENTRY_SEQ, description="Prove against this earlier digest's size"),
    ] = None,
) -> InclusionProofPublic:
    """Entry ``seq`` (1-based) with its audit path to the root of the tree of ``tree_size``
    entries (default: the whole ledger now). Check it against a digest of that size."""
    # Whose the entry is, first: reading one entry is cheap, the tree is not.
    entry = await run_in_threadpool(runtime.ledger.entry, seq)
    if entry is None or not _concerns(me, {participant_of(p.account) for p in entry.postings}):
        raise _not_found(seq)
    # A size beyond the ledger's would have the tree rebuilt on every request.
    size = await run_in_threadpool(runtime.ledger.size)
    if tree_size is not None and tree_size > size:
        raise ApiError(
            422, f"tree_size {tree_size} is beyond the ledger's {size} entries",
            "VALIDATION_INVALID",
        )  # fmt: skip
    tree = await run_in_threadpool(
        lambda: runtime.ledger_tree.tree(runtime.ledger, at_least=max(seq, tree_size or 0))
    )
    try:
        proof = tree.inclusion_proof(seq - 1, tree_size)
    except ProofError as error:
        raise ApiError(422, str(error), "VALIDATION_INVALID") from None
    document = entry.document
    return InclusionProofPublic(
        seq=seq, entry=document.decode(), leaf_hash=leaf_hash(document).hex(),
        leaf_index=proof.leaf_index, tree_size=proof.tree_size,
        hashes=[h.hex() for h in proof.hashes],
    )  # fmt: skip


@router.get("/entries", response_model=LedgerEntryPage,
            responses=error_responses(401, 422, 429))  # fmt: skip
async def own_entries(
    me: CurrentParticipant,
    runtime: RuntimeDep,
    after: Annotated[
        int, Query(ge=0, le=MAX_ENTRY_SEQ, description="Entries numbered above this one")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_ENTRIES_PAGE)] = 100,
) -> LedgerEntryPage:
    """Your own ledger entries (those with a posting to one of your accounts), oldest first,
    a page at a time, each with its sequence number (for its proof,
    ``/v1/ledger/entries/{seq}/proof``) and all its postings. Alerts of a facility post
    nothing, so they are not among them (``/v1/facilities/alerts`` lists them)."""
    who = me.participant_id
    found = await run_in_threadpool(runtime.ledger.entries_of, who, after, limit)
    return LedgerEntryPage(
        entries=[entry_view(entry) for entry in found],
        next_after=found[-1].seq if len(found) == limit else None,
    )


def _concerns(me: Participant, owners: set[str | None]) -> bool:
    return me.participant_id in owners or me.has_any(SEE_EVERY_ENTRY)


def _not_found(seq: int) -> ApiError:
    return ApiError(404, f"no entry {seq} among those you may see", "NOT_FOUND")
