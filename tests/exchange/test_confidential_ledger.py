"""Confidential trading over a database: the journal replays into the same requests,
quotes, acceptances, reports and publications (``dataex replay`` and recovery, from a
snapshot too); the ledger conserves cash and licences and verifies; the research exports
withhold what is confidential."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange import commands as c
from exchange.cli import app
from exchange.publication import DAY_NS, MINUTE_NS
from exchange.recovery import recover
from exchange.research import DatabaseJournal, What, Window, export_table, replay
from exchange.research.formats import Format
from exchange.sequencer import Sequencer
from exchange.service import OPERATOR, Exchange
from ledger.database import dispose_engines
from ledger.store import Ledger
from tests.exchange.helpers import (
    SYMBOL,
    ManualClock,
    assert_same_state,
    build_ready_market,
    buy,
    sell,
)
from tests.exchange.test_confidential import desk_state

PRICES_MINOR = (4_321_700, 4_321_800, 4_321_900)  # 43,217.00 ...: found nowhere else


@pytest.fixture
def recorded(database_url: str) -> Iterator[tuple[Ledger, Exchange, str]]:
    """A database whose journal holds every kind of confidential command, order-book
    trades, a publication and trades still unpublished; snapshots taken on the way."""
    ledger = Ledger.open(database_url)
    clock = ManualClock()
    sequencer = Sequencer(ledger, clock=clock, snapshot_every=7).start()
    try:
        run = sequencer.execute
        build_ready_market(run, buyers=("ann", "bob", "cat"))
        run(c.Deposit("admin", "ann", 10**9, "wire"))
        run(sell("prov", "s1", 10_000, 2))
        run(buy("bob", "b1", 10_000, 2))
        rfq = run(c.RequestQuote("ann", 0, SYMBOL, 3, ["prov"], False,
                                 clock.now_ns + 60 * MINUTE_NS, False)).result  # fmt: skip
        first = run(c.SubmitQuote("prov", rfq.rfq_id, 0, PRICES_MINOR[0] + 100)).result
        quote = run(c.SubmitQuote("prov", rfq.rfq_id, 0, PRICES_MINOR[0])).result
        assert quote.quote_id == first.quote_id + 1
        run(c.AcceptQuote("ann", rfq.rfq_id, quote.quote_id, 0))
        unanswered = run(c.RequestQuote("cat", 0, SYMBOL, 1, [], True,
                                        clock.now_ns + MINUTE_NS, True)).result  # fmt: skip
        assert unanswered.responders == ["ann", "bob", "prov"]
        report = run(c.ReportTrade("ann", 0, SYMBOL, "sell", "cat", PRICES_MINOR[1], 2)).result
        run(c.ConfirmTrade("cat", report.report_id, 0))
        run(c.SetPublicationPolicy("admin", SYMBOL, 10**8, 0, 600, 600, 600, 10, True, 2))
        # Two days on: the first two trades are due, and published before the next command.
        clock.now_ns += 2 * DAY_NS + MINUTE_NS
        late = run(c.RequestQuote("bob", 0, SYMBOL, 1, ["prov"], False,
                                  clock.now_ns + MINUTE_NS, False)).result  # fmt: skip
        late_quote = run(c.SubmitQuote("prov", late.rfq_id, 0, PRICES_MINOR[2])).result
        run(c.AcceptQuote("bob", late.rfq_id, late_quote.quote_id, 0))
        exchange = sequencer.exchange
        assert exchange.confidential.published_count == 2
        assert len(exchange.confidential.unpublished) == 1
    finally:
        sequencer.stop()
    yield ledger, exchange, database_url
    dispose_engines()


def test_replay_reproduces_requests_quotes_acceptances_and_publications(
    recorded: tuple[Ledger, Exchange, str],
) -> None:
    ledger, exchange, url = recorded
    report = replay(DatabaseJournal(ledger))
    assert report.ok, report.mismatch
    assert desk_state(report.exchange) == desk_state(exchange)
    assert_same_state(report.exchange, exchange)
    result = CliRunner().invoke(app, ["replay", "--database", url, "--no-progress"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("use_snapshot", [True, False])
def test_recovery_rebuilds_the_confidential_state(
    recorded: tuple[Ledger, Exchange, str], use_snapshot: bool
) -> None:
    ledger, exchange, _ = recorded
    rebuilt = recover(ledger, use_snapshot=use_snapshot)
    assert desk_state(rebuilt) == desk_state(exchange)
    assert_same_state(rebuilt, exchange)
    # Recovered, it goes on publishing: the last trade's deferral ends ten minutes on.
    [(publish_at, _)] = rebuilt.confidential.unpublished
    assert rebuilt.housekeeping_due(publish_at)
    rebuilt.execute(c.Housekeeping(OPERATOR), rebuilt.head_seq + 1, publish_at)
    assert rebuilt.confidential.published_count == 3


def test_the_ledger_conserves_cash_and_licences_and_verifies(
    recorded: tuple[Ledger, Exchange, str],
) -> None:
    ledger, exchange, url = recorded
    totals: dict[str, int] = {}
    for (_account, asset), units in ledger.balances().items():
        totals[asset] = totals.get(asset, 0) + units
    assert set(totals.values()) == {0}, totals
    recorded_balances = {a: u for (a, _), u in ledger.balances().items() if u}
    assert recorded_balances == {a: u for a, u in exchange.risk.balances.items() if u}
    result = CliRunner().invoke(app, ["ledger", "verify", "--database", url])
    assert result.exit_code == 0, result.output


def test_the_exports_withhold_every_confidential_command_and_trade(
    recorded: tuple[Ledger, Exchange, str], tmp_path: Path
) -> None:
    ledger, _, _ = recorded
    secrets = [str(price) for price in PRICES_MINOR]
    withheld = 0
    for what in What:
        path = tmp_path / f"{what}.csv"
        export_table(ledger, what, Format.CSV, path, Window())
        text = path.read_text()
        assert not [secret for secret in secrets if secret in text], what
        with path.open() as rows:
            for row in csv.DictReader(rows):
                if what is What.TRADES:
                    assert {row["buyer"], row["seller"]} == {"bob", "prov"}, row
                if what is What.JOURNAL and '"withheld":true' in row["command"]:
                    assert "ann" not in row["command"] and "cat" not in row["command"]
                    withheld += 1
    # Three requests, three quotes, two acceptances, a report and its confirmation.
    assert withheld == 10
