"""dataex's ledger: the order-flow journal and the settlement ledger, append-only and verifiable.

Public API::

    ledger = Ledger.open(url)                       # runs the migrations, one engine per process
    ledger.append_commands([(ts_ns, {"verb": ...})]) # order-flow journal
    ledger.append_entries([entries.deposit(...), entries.trade_settlement(...)])
    report = verify(ledger)                          # chain, Merkle root, balance, projections
    proof, entry = ledger.inclusion_proof(seq)
    verify_inclusion(leaf_hash(entry.document), proof, ledger.digest())
"""

from ledger import accounts, entries
from ledger.canonical import canonical_json
from ledger.chain import GENESIS_HASH, chain_hash, command_document, entry_document
from ledger.database import DATABASE_URL_ENV, DEFAULT_DATABASE_URL, database_url, get_engine
from ledger.entries import ComplianceDecision, Entry, EntryKind, Posting
from ledger.errors import (
    BalanceError,
    EntryError,
    IdempotencyConflict,
    JournalConflict,
    LedgerError,
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
from ledger.schema import migrate
from ledger.store import AppendResult, EntryReceipt, JournalRecord, Ledger, StoredEntry
from ledger.verify import Problem, VerifyReport, verify

__all__ = [
    "DATABASE_URL_ENV",
    "DEFAULT_DATABASE_URL",
    "GENESIS_HASH",
    "AppendResult",
    "BalanceError",
    "ComplianceDecision",
    "ConsistencyProof",
    "Digest",
    "Entry",
    "EntryError",
    "EntryKind",
    "EntryReceipt",
    "IdempotencyConflict",
    "InclusionProof",
    "JournalConflict",
    "JournalRecord",
    "Ledger",
    "LedgerError",
    "MerkleTree",
    "Posting",
    "Problem",
    "ProofError",
    "StoredEntry",
    "VerifyReport",
    "accounts",
    "canonical_json",
    "chain_hash",
    "command_document",
    "database_url",
    "entries",
    "entry_document",
    "get_engine",
    "leaf_hash",
    "migrate",
    "node_hash",
    "root_hash",
    "verify",
    "verify_consistency",
    "verify_inclusion",
]
