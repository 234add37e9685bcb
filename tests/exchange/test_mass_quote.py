"""Mass quote (``MassQuote``, exchange/mass_quote.py): a participant's open orders on one
instrument replaced by new post-only quotes in one journalled command, all or none; holds
follow; the journal replays, and a snapshot carries the result."""

from __future__ import annotations

from typing import Any

import pytest

from exchange import commands as c
from exchange.errors import Reason
from exchange.mass_quote import MAX_QUOTES_PER_SIDE
from exchange.service import Exchange
from exchange.snapshot import dump_state, load_state
from tests.exchange.helpers import (
    SYMBOL,
    Market,
    assert_same_state,
    build_ready_market,
    buy,
    sell,
)


def _quote(client_order_id: str, side: str, price_minor: int, quantity_units: int) -> dict:
    return {"client_order_id": client_order_id, "side": side, "price_minor": price_minor,
            "quantity_units": quantity_units}  # fmt: skip


def _mass_quote(actor: str, *quotes: dict[str, Any], symbol: str = SYMBOL) -> c.MassQuote:
    return c.MassQuote(actor, symbol, list(quotes), [])


def _open(exchange: Exchange, who: str) -> list[tuple[str, str, int | None, int]]:
    return [(o.client_order_id, o.side.value, o.price_minor, o.remaining_units)
            for o in exchange.orders_of(who, open_only=True, after_id=0, limit=500)]  # fmt: skip


def _ann_holds_units(market: Market) -> None:
    """A ready market where ann bought 4 units from the provider, so that she can quote both
    sides."""
    build_ready_market(market.execute)
    market.execute(sell("prov", "p-ask", 10_000, 4))
    market.execute(buy("ann", "lift", 10_000, 4))


def test_mass_quote_replaces_every_open_order_on_the_instrument():
    market = Market()
    _ann_holds_units(market)
    market.execute(buy("ann", "old-bid", 9_000, 1))
    market.execute(sell("ann", "old-ask", 12_000, 2))
    outcome = market.execute(_mass_quote(
        "ann", _quote("b1", "buy", 9_500, 2), _quote("b2", "buy", 9_400, 1),
        _quote("a1", "sell", 11_000, 2), _quote("a2", "sell", 11_500, 2),
    ))  # fmt: skip
    result = outcome.result
    assert [o.client_order_id for o in result.cancelled] == ["old-bid", "old-ask"]
    assert all(o.status == "cancelled" for o in result.cancelled)
    assert [o.client_order_id for o in result.placed] == ["b1", "b2", "a1", "a2"]
    assert all(o.post_only and o.tif == "GTC" for o in result.placed)
    assert outcome.command.order_ids == [o.order_id for o in result.placed]
    assert _open(market.exchange, "ann") == [
        ("b1", "buy", 9_500, 2), ("b2", "buy", 9_400, 1),
        ("a1", "sell", 11_000, 2), ("a2", "sell", 11_500, 2),
    ]  # fmt: skip
    assert market.exchange.cash_of("ann")[1] == 9_500 * 2 + 9_400 * 1
    # Empty quotes pull them all.
    market.execute(_mass_quote("ann"))
    assert _open(market.exchange, "ann") == []
    assert market.exchange.cash_of("ann")[1] == 0


def test_quotes_may_move_through_the_old_ones():
    """A new bid at or above the old ask does not trade with it: the old ask is gone first."""
    market = Market()
    _ann_holds_units(market)
    market.execute(_mass_quote("ann", _quote("b1", "buy", 9_000, 1),
                               _quote("a1", "sell", 9_500, 2)))  # fmt: skip
    market.execute(_mass_quote("ann", _quote("b2", "buy", 9_600, 1),
                               _quote("a2", "sell", 9_800, 4)))  # fmt: skip
    assert _open(market.exchange, "ann") == [("b2", "buy", 9_600, 1), ("a2", "sell", 9_800, 4)]
    assert market.exchange.settlement.fills["ann"][-1].client_order_id == "lift"


@pytest.mark.parametrize("quotes, reason, words", [
    # One bad quote among good ones: nothing changes.
    ([("b", "buy", 9_500, 1), ("a", "sell", 11_050, 1)], Reason.VALIDATION_PRICE_OFF_TICK,
     "tick"),
    ([("b", "buy", 9_500, 1), ("a", "sell", 11_000, 0)], Reason.VALIDATION_INVALID, "quantity"),
    ([("b", "buy", 9_500, 1), ("a", "sell", 11_000, 5)], Reason.RISK_INSUFFICIENT_LICENCES,
     "free units"),
    ([("b", "buy", 12_500, 1), ("a", "sell", 13_000, 1)], Reason.MATCHING_POST_ONLY_WOULD_TAKE,
     "would trade"),
    ([("b", "buy", 11_000, 1), ("a", "sell", 11_000, 1)], Reason.VALIDATION_INVALID,
     "cross each other"),
    ([("b", "buy", 9_500, 1), ("b", "buy", 9_400, 1)], Reason.VALIDATION_INVALID,
     "of its own"),
    ([("b", "up", 9_500, 1)], Reason.VALIDATION_INVALID, "side"),
    ([("bob-bid", "buy", 9_500, 1)], Reason.VALIDATION_IDEMPOTENCY_CONFLICT, "bob-bid"),
])  # fmt: skip
def test_one_bad_quote_refuses_the_mass_quote_and_changes_nothing(
    quotes: list[tuple[str, str, int, int]], reason: Reason, words: str
):
    market = Market()
    _ann_holds_units(market)
    market.execute(buy("ann", "old-bid", 9_000, 1))
    market.execute(sell("ann", "old-ask", 12_000, 2))
    market.execute(buy("ann", "bob-bid", 8_000, 1))  # an id ann used already
    market.execute(sell("prov", "prov-ask", 12_000, 1))  # a bid at 12,500 would take it
    message = market.refuse(_mass_quote("ann", *(_quote(*q) for q in quotes)), reason)
    assert words in message
    assert [o[0] for o in _open(market.exchange, "ann")] == ["old-bid", "old-ask", "bob-bid"]


def test_the_bids_together_must_be_covered_by_the_cash_the_old_bids_free():
    market = Market()
    _ann_holds_units(market)
    available = market.exchange.cash_of("ann")[0]
    market.execute(c.Withdraw("admin", "ann", available - 15_000, "leaves 150.00"))
    market.execute(buy("ann", "old-bid", 9_000, 1))  # holds 90.00 of the 150.00
    # Each bid alone is covered (once the old bid is cancelled); both together are not.
    two = (_quote("b1", "buy", 9_000, 1), _quote("b2", "buy", 8_000, 1))
    assert "the bids need 170.00" in market.refuse(_mass_quote("ann", *two),
                                                   Reason.RISK_INSUFFICIENT_CASH)  # fmt: skip
    market.execute(_mass_quote("ann", _quote("b3", "buy", 15_000 // 2, 2)))
    assert market.exchange.cash_of("ann") == (0, 15_000)


def test_mass_quote_limits_and_rules():
    market = Market()
    _ann_holds_units(market)
    many = [_quote(f"b{i}", "buy", 8_000 + 100 * i, 1) for i in range(MAX_QUOTES_PER_SIDE + 1)]
    assert "a side" in market.refuse(_mass_quote("ann", *many), Reason.VALIDATION_INVALID)
    market.refuse(_mass_quote("ann", _quote("x", "buy", 9_000, 1), symbol="NOPE.X"),
                  Reason.VALIDATION_UNKNOWN_INSTRUMENT)  # fmt: skip
    bad = c.MassQuote("ann", SYMBOL, [{"client_order_id": "x", "side": "buy"}], [])
    assert "exactly the fields" in market.refuse(bad, Reason.VALIDATION_INVALID)
    market.refuse(_mass_quote("admin", _quote("x", "buy", 9_000, 1)), Reason.AUTH_FORBIDDEN)
    market.execute(c.SetPhase("admin", SYMBOL, "halted"))
    assert "continuous" in market.refuse(_mass_quote("ann", _quote("x", "buy", 9_000, 1)),
                                         Reason.VALIDATION_PHASE)  # fmt: skip


def test_a_retried_mass_quote_answers_the_quotes_as_first_placed():
    market = Market()
    _ann_holds_units(market)
    quotes = (_quote("b1", "buy", 9_500, 1), _quote("a1", "sell", 11_000, 1))
    first = market.execute(_mass_quote("ann", *quotes))
    seq = market.exchange.head_seq
    again = market.execute(_mass_quote("ann", *quotes))
    assert again.command is None and market.exchange.head_seq == seq
    assert again.result.placed == first.result.placed
    changed = (_quote("b1", "buy", 9_600, 1), _quote("a1", "sell", 11_000, 1))
    market.refuse(_mass_quote("ann", *changed), Reason.VALIDATION_IDEMPOTENCY_CONFLICT)
    # A quote is an order: an order submitted under its id with its content is a retry too.
    retried = market.execute(c.SubmitOrder("ann", "a1", 0, SYMBOL, "sell", "limit", 11_000, 1,
                                           "GTC", None, True, "cancel_newest"))  # fmt: skip
    assert retried.command is None and retried.result.order_id == first.result.placed[1].order_id


def test_mass_quote_replays_and_survives_a_snapshot():
    market = Market()
    _ann_holds_units(market)
    market.execute(buy("ann", "old-bid", 9_000, 1))
    market.execute(_mass_quote("ann", _quote("b1", "buy", 9_500, 2),
                               _quote("a1", "sell", 11_000, 2)))  # fmt: skip
    market.execute(buy("bob", "bob-lift", 11_000, 1))  # trades with ann's quote
    market.execute(_mass_quote("ann", _quote("b2", "buy", 9_600, 1),
                               _quote("a2", "sell", 10_900, 3)))  # fmt: skip
    replica = Exchange()
    for seq, (ts_ns, record) in enumerate(market.journal, start=1):
        replayed = replica.execute(c.command_from_record(record), seq, ts_ns)
        assert replayed.command is not None and c.command_to_record(replayed.command) == record
        replica.check_invariants()
    assert_same_state(replica, market.exchange)
    restored = load_state(dump_state(market.exchange))
    restored.check_invariants()
    assert_same_state(restored, market.exchange)
    # The restored exchange goes on as the original does.
    follow = _mass_quote("ann", _quote("b3", "buy", 9_700, 1))
    for exchange in (restored, market.exchange):
        exchange.execute(follow, exchange.head_seq + 1, market.now_ns + 1)
    assert_same_state(restored, market.exchange)
