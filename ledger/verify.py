"""Verification: recompute everything the ledger claims and name the first thing that is wrong.

Checked, from the rows alone:

1. the journal's hash chain and dense sequence numbers;
2. the settlement ledger's hash chain (each entry with its postings) and dense numbering;
3. the Merkle root over the entries' canonical bytes (reported in the digest);
4. that every posting belongs to an entry, has a non-zero amount and an account that holds
   its asset, and that each entry's postings sum to zero per asset;
5. that the balance projection equals the sums of the postings, and that no account with a
   floor of zero (participants, fees, unsold licences) is below it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from hashlib import sha256

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ledger import accounts
from ledger.merkle import Digest, root_hash
from ledger.store import Ledger, gc_paused, iter_command_documents, iter_entry_documents

__all__ = ["Problem", "VerifyReport", "verify"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing that is wrong: where (table and sequence number or account) and what."""

    table: str
    where: str
    what: str
    seq: int | None = None

    def __str__(self) -> str:
        return f"{self.table} {self.where}: {self.what}"


@dataclass(slots=True)
class VerifyReport:
    commands: int = 0
    entries: int = 0
    postings: int = 0
    accounts: int = 0
    digest: Digest | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> Problem | None:
        """The problem at the lowest sequence number (the first bad row), if any."""
        if not self.problems:
            return None
        return min(self.problems, key=lambda p: (p.seq is None, p.seq or 0))


def verify(ledger: Ledger) -> VerifyReport:
    """Check the whole database in one consistent snapshot; see the module docstring.

    Each check reports at most its first problem, so a broken database gives a short report
    whose :attr:`VerifyReport.first_problem` names the first bad row.
    """
    report = VerifyReport()
    with gc_paused(), ledger.snapshot() as connection:
        _verify_chain(report, "ledger_journal", iter_command_documents(connection), leaves=None)
        leaves: list[bytes] = []
        _verify_chain(report, "ledger_entry", iter_entry_documents(connection), leaves=leaves)
        report.entries = len(leaves)
        report.digest = Digest(len(leaves), root_hash(leaves))
        _verify_postings(report, connection)
        _verify_balances(report, connection)
    return report


def _verify_chain(
    report: VerifyReport,
    table: str,
    links: Iterable[tuple[int, bytes, bytes]],
    leaves: list[bytes] | None,
) -> None:
    previous = bytes(32)
    problem: Problem | None = None
    count = 0
    for expected_seq, (seq, document, stored) in enumerate(links, start=1):
        count = expected_seq
        if problem is None:
            if seq != expected_seq:
                problem = Problem(table, f"seq {seq}", f"expected seq {expected_seq}", seq)
            elif sha256(previous + document).digest() != stored:
                problem = Problem(
                    table, f"seq {seq}", "hash mismatch: the row or its postings changed", seq
                )
        if leaves is not None:
            leaves.append(sha256(b"\x00" + document).digest())
        previous = stored
    if problem is not None:
        report.problems.append(problem)
    if table == "ledger_journal":
        report.commands = count


def _first_seq(connection: Connection, sql: str, **params: object) -> int | None:
    return connection.execute(text(sql), params).scalar()


def _verify_postings(report: VerifyReport, connection: Connection) -> None:
    report.postings = connection.execute(text("SELECT COUNT(*) FROM ledger_posting")).scalar_one()
    orphan = _first_seq(
        connection,
        "SELECT MIN(p.entry_seq) FROM ledger_posting p "
        "LEFT JOIN ledger_entry e ON e.seq = p.entry_seq WHERE e.seq IS NULL",
    )
    if orphan is not None:
        report.problems.append(
            Problem("ledger_posting", f"entry_seq {orphan}", "posting of a missing entry", orphan)
        )
    zero = _first_seq(
        connection, "SELECT MIN(entry_seq) FROM ledger_posting WHERE amount_units = 0"
    )
    if zero is not None:
        report.problems.append(Problem("ledger_entry", f"seq {zero}", "zero posting", zero))
    unbalanced = connection.execute(
        text(
            "SELECT entry_seq, asset, SUM(amount_units) FROM ledger_posting "
            "GROUP BY entry_seq, asset HAVING SUM(amount_units) <> 0 "
            "ORDER BY entry_seq LIMIT 1"
        )
    ).first()
    if unbalanced is not None:
        seq, asset, total = unbalanced
        report.problems.append(
            Problem("ledger_entry", f"seq {seq}", f"postings in {asset} sum to {total}", seq)
        )
    pairs = connection.execute(text("SELECT DISTINCT account, asset FROM ledger_posting"))
    for account, asset in pairs:
        try:
            valid = accounts.asset_of(account) == asset
        except accounts.AccountError:
            valid = False
        if not valid:
            seq = _first_seq(
                connection,
                "SELECT MIN(entry_seq) FROM ledger_posting WHERE account = :a AND asset = :s",
                a=account,
                s=asset,
            )
            report.problems.append(
                Problem("ledger_entry", f"seq {seq}", f"{account} cannot hold {asset}", seq)
            )
            break


def _verify_balances(report: VerifyReport, connection: Connection) -> None:
    computed = {
        (account, asset): int(units)
        for account, asset, units in connection.execute(
            text(
                "SELECT account, asset, SUM(amount_units) FROM ledger_posting "
                "GROUP BY account, asset"
            )
        )
    }
    projected = {
        (account, asset): units
        for account, asset, units in connection.execute(
            text("SELECT account, asset, balance_units FROM ledger_balance")
        )
    }
    report.accounts = len(computed)
    for key in sorted(computed.keys() | projected.keys()):
        expected, actual = computed.get(key, 0), projected.get(key, 0)
        if expected != actual:
            report.problems.append(
                Problem(
                    "ledger_balance",
                    f"{key[0]} {key[1]}",
                    f"projection says {actual}, postings sum to {expected}",
                )
            )
            break
    for (account, asset), units in sorted(computed.items()):
        if units < 0 and accounts.is_non_negative(account):
            report.problems.append(
                Problem("ledger_balance", f"{account} {asset}", f"negative balance {units}")
            )
            break
