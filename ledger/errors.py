"""The ledger's errors. Each is a refusal a person can act on; nothing was written."""

from __future__ import annotations

__all__ = [
    "BalanceError",
    "EntryError",
    "IdempotencyConflict",
    "JournalConflict",
    "LedgerError",
    "LedgerFormatError",
]


class LedgerError(Exception):
    """Base of every error the ledger reports to its callers."""


class EntryError(LedgerError, ValueError):
    """An entry or command that is not well formed: unbalanced, unknown account, bad amount."""


class IdempotencyConflict(LedgerError):
    """An idempotency key already names an entry with different content."""


class BalanceError(LedgerError):
    """An entry would take an account below its floor (a participant below zero, or the
    licences issued for an instrument beyond its issuance cap)."""


class LedgerFormatError(LedgerError):
    """The database holds a ledger in a format this version does not read; the message
    says how to carry it over."""


class JournalConflict(LedgerError):
    """The journal's head moved under a writer that expected it not to (a second writer)."""
