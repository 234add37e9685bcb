"""Verification: recompute everything the ledger claims and name the first thing that is wrong.

Checked, from the rows alone, in one consistent snapshot:

1. the journal's hash chain and dense sequence numbers;
2. the settlement ledger's hash chain (each entry with its postings) and dense numbering;
3. the Merkle root over the entries' canonical bytes (reported as the digest);
4. that every posting belongs to an entry and has a non-zero amount on an account that
   holds its asset, and that each entry's postings sum to zero per asset;
5. that the balance projection equals the sums of the postings, and that no account with a
   floor of zero (participants, fees, unsold licences) is below it.

Each row is checked against the *stored* hash of the row before it, so a single changed row
is named alone instead of every row after it. The entries are read in one streaming pass,
:func:`ledger.scan.scan_entries`, which does every per-entry and per-posting check.
Verification is bound by reading rows into Python; see ``docs/ledger-benchmarks.md`` for what
it costs and what was tried.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ledger import accounts
from ledger.chain import GENESIS_HASH, chain_hash, command_document
from ledger.merkle import Digest, root_hash
from ledger.rows import gc_paused, iter_rows
from ledger.scan import Problem, scan_ledger
from ledger.store import Ledger

__all__ = ["Problem", "VerifyReport", "verify"]


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
    """Check the whole database; see the module docstring.

    Each check reports at most its first problem, so a broken database gives a short report
    whose :attr:`VerifyReport.first_problem` names the first bad row.
    """
    report = VerifyReport()
    with gc_paused(), ledger.snapshot() as connection:
        report.commands = _verify_journal(report, connection)
        scan = scan_ledger(connection)
        report.entries, report.postings = len(scan.leaves), scan.postings
        report.digest = Digest(len(scan.leaves), root_hash(scan.leaves))
        report.problems += scan.problems
        _verify_accounts(report, connection, scan.sums)
    return report


def _verify_journal(report: VerifyReport, connection: Connection) -> int:
    previous, count = GENESIS_HASH, 0
    rows = iter_rows(
        connection,
        "SELECT seq, ts_ns, command, chain_hash FROM ledger_journal ORDER BY seq",
        binary=True,
    )
    for expected_seq, (seq, ts_ns, command, stored) in enumerate(rows, start=1):
        count = expected_seq
        stored = bytes(stored)
        if seq != expected_seq:
            report.problems.append(
                Problem("ledger_journal", f"seq {seq}", f"expected seq {expected_seq}", seq)
            )
            break
        if chain_hash(previous, command_document(seq, ts_ns, command)) != stored:
            report.problems.append(
                Problem("ledger_journal", f"seq {seq}", "hash mismatch: the row changed", seq)
            )
            break
        previous = stored
    return count


def _verify_accounts(
    report: VerifyReport, connection: Connection, computed: dict[tuple[str, str], int]
) -> None:
    report.accounts = len(computed)
    for account, asset in sorted(computed):
        try:
            valid = accounts.asset_of(account) == asset
        except accounts.AccountError:
            valid = False
        if not valid:
            seq = connection.execute(
                text(
                    "SELECT MIN(entry_seq) FROM ledger_posting "
                    "WHERE account = :account AND asset = :asset"
                ),
                {"account": account, "asset": asset},
            ).scalar()
            report.problems.append(
                Problem("ledger_entry", f"seq {seq}", f"{account} cannot hold {asset}", seq)
            )
            break
    projected = {
        (account, asset): units
        for account, asset, units in connection.execute(
            text("SELECT account, asset, balance_units FROM ledger_balance")
        )
    }
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
