"""What must hold after a load test, checked on the exchange's database once the server stops.

:func:`check_exchange` reads the database (the server must have stopped) and returns one
:class:`Check` for each of:

1. the ledger verifies (``ledger.verify``: both hash chains, the Merkle root, every entry's
   balance, the projection);
2. each asset's balances sum to zero over all accounts (cash and every licence);
3. cash is conserved: ``external:cash`` holds minus the deposits net of withdrawals that
   the journal records;
4. licence units are conserved: each instrument's ``issued`` account holds minus the
   issuance cap its listing journalled, and the cap is all there is (unsold, held, expired);
5. every acknowledged order (``acked_orders.jsonl``: participant, client order id, order id)
   is a ``submit_order`` record of the journal with that order id;
6. the whole journal replays into the database's state (``exchange.recovery.recover``, from
   the first command, not from a snapshot: the same ids, the same number of entries, the
   same balances), whose invariants hold.

:func:`check_responses` adds, from the load generator's ``summary.json``: no response was a
5xx, and no request failed (an unexpected status or no response at all).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange.recovery import recover
from ledger import accounts
from ledger.store import JournalRecord, Ledger
from ledger.verify import verify

__all__ = ["Check", "check_exchange", "check_responses", "read_acks"]

JOURNAL_PAGE = 10_000
MAX_LISTED = 3  # examples named in a failed check's detail


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def read_acks(path: Path) -> list[tuple[str, str, int]]:
    """The acknowledged orders the load generator recorded, in the order they came."""
    acks = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            acks.append((record["participant_id"], record["client_order_id"], record["order_id"]))
    return acks


def _journal(ledger: Ledger) -> Iterator[JournalRecord]:
    start = 1
    while records := ledger.journal(start, JOURNAL_PAGE):
        yield from records
        start = records[-1].seq + 1


def _listed(items: list[Any]) -> str:
    shown = ", ".join(str(item) for item in items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def check_exchange(ledger: Ledger, acks: list[tuple[str, str, int]]) -> list[Check]:
    """The checks 1-6 of the module docstring on ``ledger``'s database."""
    checks = []
    report = verify(ledger)
    checks.append(
        Check(
            "the ledger verifies",
            report.ok,
            f"{report.commands:,} journal commands, {report.entries:,} entries, "
            f"{report.postings:,} postings"
            if report.ok
            else f"first problem: {report.first_problem}",
        )
    )

    balances = ledger.balances_from_postings()
    sums: Counter[str] = Counter()
    for (_account, asset), units in balances.items():
        sums[asset] += units
    unbalanced = sorted((asset, units) for asset, units in sums.items() if units)
    checks.append(
        Check(
            "each asset's balances sum to zero",
            not unbalanced,
            f"{len(sums)} assets" if not unbalanced else f"non-zero sums: {_listed(unbalanced)}",
        )
    )

    net_deposits_minor = 0
    caps: defaultdict[str, int] = defaultdict(int)
    orders: dict[tuple[str, str], int] = {}
    for record in _journal(ledger):
        command = record.command
        verb = command["verb"]
        if verb == "submit_order":
            orders[(command["actor"], command["client_order_id"])] = command["order_id"]
        elif verb == "deposit":
            net_deposits_minor += command["amount_minor"]
        elif verb == "withdraw":
            net_deposits_minor -= command["amount_minor"]
        elif verb == "list_instrument":
            caps[command["symbol"]] += command["issuance_cap_units"]

    external = balances.get((accounts.EXTERNAL_CASH, accounts.CASH), 0)
    checks.append(
        Check(
            "cash is conserved (external cash = minus net deposits)",
            external == -net_deposits_minor,
            f"net deposits {net_deposits_minor:,}, external cash {external:,} (minor units)",
        )
    )

    wrong_caps = []
    for symbol, cap in sorted(caps.items()):
        asset = accounts.licence_asset(symbol)
        issued = balances.get((accounts.issued(symbol), asset), 0)
        outstanding = sum(
            units
            for (account, held), units in balances.items()
            if held == asset and account != accounts.issued(symbol)
        )
        if issued != -cap or outstanding != cap:
            wrong_caps.append(f"{symbol}: cap {cap}, issued {issued}, outstanding {outstanding}")
    checks.append(
        Check(
            "licence units are conserved (issued = cap = unsold + held + expired)",
            not wrong_caps,
            f"{len(caps)} instruments" if not wrong_caps else _listed(wrong_caps),
        )
    )

    missing = [ack for ack in acks if orders.get((ack[0], ack[1])) != ack[2]]
    checks.append(
        Check(
            "every acknowledged order is in the journal",
            bool(acks) and not missing,
            f"{len(acks):,} acknowledged, {len(orders):,} submit_order records"
            + (f"; missing: {_listed(missing)}" if missing else "")
            + ("" if acks else "; no order was acknowledged"),
        )
    )

    try:
        # The whole journal, from its first command: a snapshot would skip most of it.
        exchange = recover(ledger, verify_first=False, use_snapshot=False)
        exchange.check_invariants()
        replayed = Check(
            "the journal replays into the database's state",
            True,
            f"{exchange.head_seq:,} commands, {exchange.engine.open_order_count():,} open orders",
        )
    except Exception as error:  # any failure of the replay is the finding
        replayed = Check("the journal replays into the database's state", False, repr(error))
    checks.append(replayed)
    return checks


def check_responses(summary: dict[str, Any]) -> list[Check]:
    """No 5xx, and no failed request, in any phase of the load generator's summary."""
    server_errors: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    for phase in summary["phases"]:
        for endpoint, statuses in phase["statuses"].items():
            for status, count in statuses.items():
                if int(status) >= 500:
                    server_errors[f"{phase['name']}: {endpoint} {status}"] += count
        for endpoint, count in phase["failures"].items():
            failures[f"{phase['name']}: {endpoint}"] += count
    responses = sum(
        count
        for phase in summary["phases"]
        for statuses in phase["statuses"].values()
        for count in statuses.values()
    )
    return [
        Check(
            "no response was a 5xx",
            not server_errors,
            f"{responses:,} responses"
            if not server_errors
            else _listed([f"{key} x{count}" for key, count in server_errors.items()]),
        ),
        Check(
            "no request failed (an unexpected status, or no response)",
            not failures,
            "none"
            if not failures
            else _listed([f"{key} x{count}" for key, count in failures.items()]),
        ),
    ]
