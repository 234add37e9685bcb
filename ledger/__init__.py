"""dataex's ledger: the order-flow journal and the settlement ledger, append-only and verifiable.

This package names the ledger's pure vocabulary (accounts, entries, canonical form, hash
chain, Merkle tree), which imports no database code. The database parts are imported from
their own modules::

    from ledger.store import Ledger                  # the store: one engine per process
    from ledger.verify import verify                 # chain, Merkle root, balances, projections

    ledger = Ledger.open(url)                        # runs the migrations
    ledger.append_commands([(ts_ns, {"verb": ...})]) # order-flow journal
    ledger.append_entries([entries.deposit(...), entries.trade_settlement(...)])
    report = verify(ledger)
    proof, entry = ledger.inclusion_proof(seq)
    verify_inclusion(leaf_hash(entry.document), proof, ledger.digest())
"""

from ledger import accounts, entries
from ledger.canonical import canonical_json
from ledger.chain import GENESIS_HASH, chain_hash, command_document, entry_document
from ledger.entries import ComplianceDecision, Entry, EntryKind, Posting
from ledger.errors import (
    BalanceError,
    EntryError,
    IdempotencyConflict,
    JournalConflict,
    LedgerError,
    LedgerFormatError,
)
from ledger.merkle import (
    ConsistencyProof,
    Digest,
    InclusionProof,
    MerkleTree,
    ProofError,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "GENESIS_HASH",
    "BalanceError",
    "ComplianceDecision",
    "ConsistencyProof",
    "Digest",
    "Entry",
    "EntryError",
    "EntryKind",
    "IdempotencyConflict",
    "InclusionProof",
    "JournalConflict",
    "LedgerError",
    "LedgerFormatError",
    "MerkleTree",
    "Posting",
    "ProofError",
    "accounts",
    "canonical_json",
    "chain_hash",
    "command_document",
    "entries",
    "entry_document",
    "leaf_hash",
    "node_hash",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]
