"""Cancel-all (``CancelAllOrders`` in exchange/service.py): a participant's open orders,
narrowed by symbol and side, cancelled by one journalled command, by their owner or by an
admin's kill switch; holds released; the journal replays into the same state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from exchange import commands as c
from exchange.errors import Reason
from exchange.recovery import recover
from exchange.research import DatabaseJournal, replay
from exchange.sequencer import Sequencer
from exchange.service import Exchange
from ledger.database import dispose_engines
from ledger.store import Ledger
from tests.exchange.helpers import (
    CASH_MINOR,
    SYMBOL,
    ManualClock,
    Market,
    assert_same_state,
    build_ready_market,
    buy,
    list_instrument,
    sell,
)

OTHER = "ZJPARK.NX24"


def _two_books(market: Market) -> None:
    """A ready market on SYMBOL and OTHER, with ann's bids and asks on both (she bought
    units of SYMBOL from the provider first, so that she can sell them)."""
    ready = build_ready_market(market.execute)
    market.execute(list_instrument(ready.product_id, OTHER, duration_months=24))
    market.execute(c.SetPhase("admin", OTHER, "continuous"))
    market.execute(sell("prov", "p-ask", 10_000, 4))
    market.execute(buy("ann", "lift", 10_000, 4))
    market.execute(buy("ann", "bid-1", 9_000, 1))
    market.execute(buy("ann", "bid-2", 9_100, 2))
    market.execute(sell("ann", "ask-1", 12_000, 3))
    market.execute(buy("ann", "bid-other", 9_000, 1, symbol=OTHER))
    market.execute(buy("bob", "bob-bid", 9_000, 1))


def _open(exchange: Exchange, who: str) -> list[str]:
    return [o.client_order_id for o in exchange.orders_of(who, open_only=True, after_id=0,
                                                          limit=500)]  # fmt: skip


def test_cancel_all_narrows_by_symbol_and_side_and_releases_holds():
    market = Market()
    _two_books(market)
    exchange = market.exchange
    held_before = exchange.cash_of("ann")[1]
    assert held_before == 9_000 + 9_100 * 2 + 9_000

    outcome = market.execute(c.CancelAllOrders("ann", "ann", SYMBOL, "buy"))
    assert [(o.client_order_id, o.status, o.cancel_reason) for o in outcome.result] == [
        ("bid-1", "cancelled", "user"), ("bid-2", "cancelled", "user"),
    ]  # fmt: skip
    assert exchange.cash_of("ann") == (CASH_MINOR - 40_000 - 9_000, 9_000)
    assert _open(exchange, "ann") == ["ask-1", "bid-other"]

    outcome = market.execute(c.CancelAllOrders("ann", "ann", None, None))
    assert [o.client_order_id for o in outcome.result] == ["ask-1", "bid-other"]
    assert _open(exchange, "ann") == []
    assert exchange.cash_of("ann") == (CASH_MINOR - 40_000, 0)
    assert not any(exchange.risk.licences_held.values())
    assert _open(exchange, "bob") == ["bob-bid"], "only the caller's orders"


def test_cancel_all_with_nothing_open_journals_nothing():
    market = Market()
    _two_books(market)
    market.execute(c.CancelAllOrders("ann", "ann", OTHER, "sell"))
    journalled = len(market.journal)
    outcome = market.execute(c.CancelAllOrders("ann", "ann", OTHER, "sell"))
    assert (outcome.command, outcome.result) == (None, [])
    assert len(market.journal) == journalled


def test_kill_switch_is_the_admins_alone():
    market = Market()
    _two_books(market)
    assert "roles: admin" in market.refuse(c.CancelAllOrders("bob", "ann", None, None),
                                           Reason.AUTH_FORBIDDEN)  # fmt: skip
    outcome = market.execute(c.CancelAllOrders("admin", "ann", None, None))
    assert [o.client_order_id for o in outcome.result] == ["bid-1", "bid-2", "ask-1", "bid-other"]
    assert _open(market.exchange, "ann") == []
    market.refuse(c.CancelAllOrders("admin", "nobody", None, None),
                  Reason.VALIDATION_UNKNOWN_PARTICIPANT)  # fmt: skip
    # The admin has no orders of its own to cancel: it does not trade.
    market.refuse(c.CancelAllOrders("admin", "admin", None, None), Reason.AUTH_FORBIDDEN)


def test_cancel_all_refuses_an_unknown_symbol_or_side():
    market = Market()
    _two_books(market)
    market.refuse(c.CancelAllOrders("ann", "ann", "NOPE.NX12", None),
                  Reason.VALIDATION_UNKNOWN_INSTRUMENT)  # fmt: skip
    assert "side" in market.refuse(c.CancelAllOrders("ann", "ann", None, "up"),
                                   Reason.VALIDATION_INVALID)  # fmt: skip


def test_cancel_all_replays_from_its_journal_record():
    market = Market()
    _two_books(market)
    market.execute(c.CancelAllOrders("ann", "ann", SYMBOL, None))
    market.execute(c.CancelAllOrders("admin", "bob", None, "buy"))
    replica = Exchange()
    for seq, (ts_ns, record) in enumerate(market.journal, start=1):
        replayed = replica.execute(c.command_from_record(record), seq, ts_ns)
        assert replayed.command is not None and c.command_to_record(replayed.command) == record
    replica.check_invariants()
    assert_same_state(replica, market.exchange)


@pytest.fixture
def recorded(database_url: str) -> Iterator[tuple[Ledger, Exchange]]:
    """A database whose journal holds an owner's cancel-all and an admin's kill switch."""
    ledger = Ledger.open(database_url)
    sequencer = Sequencer(ledger, clock=ManualClock(), housekeeping=False).start()
    try:
        run = sequencer.execute
        build_ready_market(run)
        for i in range(3):
            run(buy("ann", f"bid-{i}", 9_000 + 100 * i, 1))
        run(sell("prov", "ask", 12_000, 2))
        cancelled = run(c.CancelAllOrders("ann", "ann", None, "buy")).result
        assert [o.client_order_id for o in cancelled] == ["bid-0", "bid-1", "bid-2"]
        run(c.CancelAllOrders("admin", "prov", SYMBOL, None))
        exchange = sequencer.exchange
    finally:
        sequencer.stop()
    yield ledger, exchange
    dispose_engines()


def test_recovery_and_replay_rebuild_cancel_all(recorded: tuple[Ledger, Exchange]):
    ledger, exchange = recorded
    assert exchange.engine.open_order_count() == 0
    report = replay(DatabaseJournal(ledger))
    assert report.ok, report.mismatch
    assert_same_state(report.exchange, exchange)
    assert_same_state(recover(ledger, use_snapshot=False), exchange)
