"""Loan facilities over a database: recovery (from snapshots too) rebuilds every facility,
mark and alert; the ledger verifies and conserves cash and licences through pledges,
drawdowns, a liquidation and its settlement; the research exports withhold the facilities."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchange import commands as c
from exchange.facility import FacilityStatus
from exchange.recovery import recover
from exchange.research import What, Window, export_table
from exchange.research.formats import Format
from exchange.sequencer import Sequencer
from exchange.service import Exchange
from ledger import accounts
from ledger.database import dispose_engines
from ledger.store import Ledger
from ledger.verify import verify
from tests.exchange.helpers import ManualClock, assert_same_state, totals_by_asset
from tests.exchange.test_collateral_crash import after_auction, until_auction

# The facility's figures, found nowhere else in the market: the exports must not show them.
DRAWN_MINOR = 350_000


@pytest.fixture
def recorded(database_url: str) -> Iterator[tuple[Ledger, Exchange]]:
    """A facility taken through a margin call and a liquidation auction, journalled by a
    sequencer that takes a snapshot every seven commands."""
    ledger = Ledger.open(database_url)
    clock = ManualClock()
    sequencer = Sequencer(ledger, clock=clock, housekeeping=False, snapshot_every=7).start()

    def execute(command: c.Command, at_ns: int) -> object:
        clock.now_ns = at_ns
        return sequencer.execute(command)

    try:
        until_auction(execute, lambda: sequencer.exchange)
        after_auction(execute, sequencer.exchange.last_ts_ns)
    finally:
        sequencer.stop()
    assert sequencer.exchange.collateral.facilities[1].status is FacilityStatus.CLOSED
    yield ledger, sequencer.exchange
    dispose_engines()


def test_recovery_rebuilds_every_facility_mark_and_alert(
    recorded: tuple[Ledger, Exchange],
) -> None:
    ledger, exchange = recorded
    for use_snapshot in (False, True):
        rebuilt = recover(ledger, use_snapshot=use_snapshot)
        assert_same_state(rebuilt, exchange)
        assert repr(rebuilt.collateral.facilities) == repr(exchange.collateral.facilities)


def test_the_ledger_verifies_and_conserves_through_the_liquidation(
    recorded: tuple[Ledger, Exchange],
) -> None:
    ledger, _ = recorded
    assert verify(ledger).ok
    balances = {account: units for (account, _), units in ledger.balances().items()}
    assert all(total == 0 for total in totals_by_asset(balances).values())
    # Nothing is left under the lien once the facility is closed.
    assert not [a for a, units in balances.items() if ":pledged:" in a and units]
    assert balances.get(accounts.margin("ann", 1), 0) == 0


def test_the_exports_withhold_every_facility_command_and_entry(
    recorded: tuple[Ledger, Exchange], tmp_path: Path
) -> None:
    ledger, _ = recorded
    withheld = 0
    for what in What:
        path = tmp_path / f"{what}.csv"
        export_table(ledger, what, Format.CSV, path, Window())
        text = path.read_text()
        assert str(DRAWN_MINOR) not in text, what
        assert ":pledged:" not in text and ":margin:" not in text, what
        if what is What.JOURNAL:
            with path.open() as rows:
                withheld += sum('"withheld":true' in row["command"] for row in csv.DictReader(rows))
    # The offer, its acceptance, the pledge and the draw.
    assert withheld == 4
