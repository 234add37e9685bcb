"""Confidential trading in the state machine: requests for quote, negotiated trades, their
settlement through the same risk checks and ledger, and their deferred publication."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from exchange import commands as c
from exchange.confidential import ConfidentialDesk
from exchange.errors import Reason
from exchange.negotiated import CONFIRMATION_WINDOW_NS
from exchange.publication import DAY_NS, MINUTE_NS, Deferral
from exchange.rfq import QuoteStatus, RequestStatus
from exchange.service import OPERATOR, Exchange
from exchange.snapshot import dump_state, load_state
from ledger import EntryKind, accounts
from tests.exchange.helpers import (
    SYMBOL,
    Market,
    build_ready_market,
    buy,
    create_participant,
    sell,
    snapshot,
    totals_by_asset,
)

HOUR_NS = 60 * MINUTE_NS
PRICE = 12_300  # 123.00, on the 1.00 tick


@pytest.fixture
def market() -> Market:
    market = Market()
    build_ready_market(market.execute, buyers=("ann", "bob", "cat"))
    return market


def request(actor: str = "ann", quantity: int = 5, *, responders: list[str] | None = None,
            deadline_ns: int, disclose: bool = False,
            client_id: str | None = None) -> c.RequestQuote:  # fmt: skip
    return c.RequestQuote(actor, 0, SYMBOL, quantity, responders or [], responders is None,
                          deadline_ns, disclose, client_id)  # fmt: skip


def quote(actor: str, rfq_id: int, price_minor: int = PRICE, *,
          client_id: str | None = None) -> c.SubmitQuote:  # fmt: skip
    return c.SubmitQuote(actor, rfq_id, 0, price_minor, client_id)


def report(actor: str, side: str, counterparty: str, price_minor: int = PRICE,
           quantity: int = 3, *, client_id: str | None = None) -> c.ReportTrade:  # fmt: skip
    return c.ReportTrade(actor, 0, SYMBOL, side, counterparty, price_minor, quantity, client_id)


def desk_state(exchange: Exchange) -> Any:
    """Everything of the confidential desk a refused command must leave as it was."""
    desk = exchange.confidential
    return repr((desk.rfqs, desk.quotes, desk.reports, desk.trades, desk.unpublished,
                 desk.publications, desk.prints, desk.policies, desk.next_rfq_id,
                 desk.next_quote_id, desk.next_report_id, desk.next_trade_id,
                 dict(desk.open_by_participant), desk.client_requests, desk.client_quotes,
                 desk.client_reports))  # fmt: skip


def refuse(market: Market, command: c.Command, reason: Reason, **kwargs: Any) -> str:
    before = desk_state(market.exchange)
    message = market.refuse(command, reason, **kwargs)
    assert desk_state(market.exchange) == before
    assert message
    return message


def traded(market: Market, *, quantity: int = 5, price_minor: int = PRICE) -> Any:
    """ann asks prov for ``quantity`` units and accepts its quote; the trade."""
    deadline = market.now_ns + HOUR_NS
    rfq = market.execute(request(quantity=quantity, responders=["prov"],
                                 deadline_ns=deadline)).result  # fmt: skip
    offered = market.execute(quote("prov", rfq.rfq_id, price_minor)).result
    return market.execute(c.AcceptQuote("ann", rfq.rfq_id, offered.quote_id, 0))


def publish_all(market: Market, at_ns: int) -> None:
    assert market.exchange.housekeeping_due(at_ns)
    market.execute(c.Housekeeping(OPERATOR), at_ns=at_ns)


# -- requests for quote --------------------------------------------------------------------


def test_an_accepted_quote_settles_through_the_ledger_and_not_the_book(market: Market) -> None:
    exchange = market.exchange
    cash_before = exchange.cash_of("ann")
    tape_before = exchange.market_data.trade_count
    outcome = traded(market)
    trade = outcome.result
    assert (trade.buyer, trade.seller, trade.price_minor, trade.quantity_units) == (
        "ann", "prov", PRICE, 5,
    )  # fmt: skip
    [entry] = outcome.entries
    assert entry.kind is EntryKind.TRADE_SETTLEMENT
    assert entry.key == f"confidential_trade:{trade.trade_id}"
    assert entry.body["confidential"] is True
    assert exchange.cash_of("ann")[0] == cash_before[0] - 5 * PRICE
    assert exchange.holdings_of("ann")[0][2] == 5
    assert exchange.risk.balances[accounts.cash("prov")] == 5 * PRICE - trade.fee_minor
    # Nothing reached the engine or the public market data.
    assert outcome.events == []
    assert exchange.market_data.trade_count == tape_before
    assert exchange.market_data.history[SYMBOL] == []
    assert all(units == 0 for units in totals_by_asset(dict(exchange.risk.balances)).values())


def test_a_licence_bought_by_quote_resells_and_lapses_like_any_other(market: Market) -> None:
    traded(market, quantity=4)
    market.execute(sell("ann", "resale", 20_000, 4))
    market.execute(buy("bob", "takes", 20_000, 4))
    assert market.exchange.holdings_of("bob")[0][2] == 4
    assert market.exchange.holdings_of("ann") == []


def test_all_eligible_asks_the_provider_and_holders_able_to_sell(market: Market) -> None:
    traded(market, quantity=5)  # ann now holds 5 transferable units
    deadline = market.now_ns + HOUR_NS
    rfq = market.execute(request("bob", 3, deadline_ns=deadline)).result
    assert rfq.responders == ["ann", "prov"]
    # cat holds nothing and was not asked: the request is not hers to quote on.
    refuse(market, quote("cat", rfq.rfq_id), Reason.VALIDATION_UNKNOWN_RFQ)
    # ann can deliver 5, so a request for 6 does not ask her.
    assert market.execute(request("bob", 6, deadline_ns=deadline)).result.responders == ["prov"]


def test_a_newer_quote_replaces_the_older_and_others_are_not_selected(market: Market) -> None:
    traded(market, quantity=5)
    rfq = market.execute(request("bob", 2, deadline_ns=market.now_ns + HOUR_NS)).result
    first = market.execute(quote("prov", rfq.rfq_id, 15_000)).result
    second = market.execute(quote("prov", rfq.rfq_id, 14_000)).result
    from_ann = market.execute(quote("ann", rfq.rfq_id, 14_500)).result
    refuse(market, c.AcceptQuote("bob", rfq.rfq_id, first.quote_id, 0),
           Reason.VALIDATION_QUOTE_NOT_LIVE)  # fmt: skip
    market.execute(c.AcceptQuote("bob", rfq.rfq_id, from_ann.quote_id, 0))
    quotes = market.exchange.confidential.quotes
    assert [quotes[q.quote_id].status for q in (first, second, from_ann)] == [
        QuoteStatus.REPLACED, QuoteStatus.NOT_SELECTED, QuoteStatus.ACCEPTED,
    ]  # fmt: skip
    # The responders see their own quotes only; the requester sees all.
    desk, stored = market.exchange.confidential, market.exchange.confidential.rfqs[rfq.rfq_id]
    assert {q.responder for q in desk.quotes_of(stored, "ann", everyone=False)} == {"ann"}
    assert len(desk.quotes_of(stored, "bob", everyone=False)) == 3


def test_a_request_past_its_deadline_takes_no_quote_and_no_acceptance(market: Market) -> None:
    deadline = market.now_ns + HOUR_NS
    rfq = market.execute(request(responders=["prov"], deadline_ns=deadline)).result
    offered = market.execute(quote("prov", rfq.rfq_id)).result
    message = refuse(market, quote("prov", rfq.rfq_id), Reason.VALIDATION_RFQ_CLOSED,
                     at_ns=deadline)  # fmt: skip
    assert "expired" in message
    refuse(market, c.AcceptQuote("ann", rfq.rfq_id, offered.quote_id, 0),
           Reason.VALIDATION_RFQ_CLOSED, at_ns=deadline + 1)  # fmt: skip
    assert market.exchange.confidential.rfqs[rfq.rfq_id].status_at(deadline) is (
        RequestStatus.EXPIRED
    )


def test_bad_requests_quotes_and_acceptances_are_refused_and_change_nothing(
    market: Market,
) -> None:
    now = market.now_ns
    refuse(market, request(responders=["prov"], deadline_ns=now), Reason.VALIDATION_DEADLINE)
    refuse(market, request(responders=["prov"], deadline_ns=now + 8 * DAY_NS),
           Reason.VALIDATION_DEADLINE)  # fmt: skip
    refuse(market, request(responders=["nobody"], deadline_ns=now + HOUR_NS),
           Reason.VALIDATION_UNKNOWN_PARTICIPANT)  # fmt: skip
    refuse(market, request(responders=["ann"], deadline_ns=now + HOUR_NS),
           Reason.VALIDATION_INVALID)  # fmt: skip
    refuse(market, request(responders=["rev"], deadline_ns=now + HOUR_NS),
           Reason.VALIDATION_UNKNOWN_PARTICIPANT)  # fmt: skip
    refuse(market, replace(request(responders=["prov"], deadline_ns=now + HOUR_NS),
                           symbol="NOPE"), Reason.VALIDATION_UNKNOWN_INSTRUMENT)  # fmt: skip
    refuse(market, request(quantity=101, responders=["prov"], deadline_ns=now + HOUR_NS),
           Reason.VALIDATION_QUANTITY_ABOVE_MAXIMUM)  # fmt: skip
    rfq = market.execute(request(responders=["prov"], deadline_ns=now + HOUR_NS)).result
    refuse(market, quote("prov", 999), Reason.VALIDATION_UNKNOWN_RFQ)
    refuse(market, quote("prov", rfq.rfq_id, PRICE + 50), Reason.VALIDATION_PRICE_OFF_TICK)
    refuse(market, quote("ann", rfq.rfq_id), Reason.AUTH_FORBIDDEN)
    refuse(market, c.AcceptQuote("ann", rfq.rfq_id, 999, 0), Reason.VALIDATION_UNKNOWN_QUOTE)
    offered = market.execute(quote("prov", rfq.rfq_id)).result
    refuse(market, c.AcceptQuote("prov", rfq.rfq_id, offered.quote_id, 0), Reason.AUTH_FORBIDDEN)
    refuse(market, c.AcceptQuote("bob", rfq.rfq_id, offered.quote_id, 0),
           Reason.VALIDATION_UNKNOWN_RFQ)  # fmt: skip
    market.execute(c.AcceptQuote("ann", rfq.rfq_id, offered.quote_id, 0))
    message = refuse(market, c.AcceptQuote("ann", rfq.rfq_id, offered.quote_id, 0),
                     Reason.VALIDATION_RFQ_CLOSED)  # fmt: skip
    assert "accepted" in message
    refuse(market, c.CancelRequest("ann", rfq.rfq_id), Reason.VALIDATION_RFQ_CLOSED)


def test_acceptance_passes_the_risk_checks_of_any_trade(market: Market) -> None:
    market.execute(create_participant("poor", "buyer"))
    rfq = market.execute(request("poor", responders=["prov"],
                                 deadline_ns=market.now_ns + HOUR_NS)).result  # fmt: skip
    offered = market.execute(quote("prov", rfq.rfq_id)).result
    refuse(market, c.AcceptQuote("poor", rfq.rfq_id, offered.quote_id, 0),
           Reason.RISK_INSUFFICIENT_CASH)  # fmt: skip
    # The provider sold its whole issuance on the book since quoting: nothing to deliver.
    rfq = market.execute(request("ann", responders=["prov"],
                                 deadline_ns=market.now_ns + HOUR_NS)).result  # fmt: skip
    offered = market.execute(quote("prov", rfq.rfq_id)).result
    market.execute(sell("prov", "all", 10_000, 100))
    refuse(market, c.AcceptQuote("ann", rfq.rfq_id, offered.quote_id, 0),
           Reason.RISK_INSUFFICIENT_LICENCES)  # fmt: skip


def test_a_suspended_product_or_halted_instrument_trades_nothing_off_book(market: Market) -> None:
    rfq = market.execute(request(responders=["prov"],
                                 deadline_ns=market.now_ns + HOUR_NS)).result  # fmt: skip
    offered = market.execute(quote("prov", rfq.rfq_id)).result
    market.execute(c.SetPhase("admin", SYMBOL, "halted"))
    refuse(market, c.AcceptQuote("ann", rfq.rfq_id, offered.quote_id, 0),
           Reason.VALIDATION_PHASE)  # fmt: skip


def test_a_cancelled_request_closes_its_quotes(market: Market) -> None:
    rfq = market.execute(request(responders=["prov"],
                                 deadline_ns=market.now_ns + HOUR_NS)).result  # fmt: skip
    offered = market.execute(quote("prov", rfq.rfq_id)).result
    market.execute(c.CancelRequest("ann", rfq.rfq_id))
    assert market.exchange.confidential.quotes[offered.quote_id].status is (
        QuoteStatus.NOT_SELECTED
    )
    refuse(market, c.AcceptQuote("ann", rfq.rfq_id, offered.quote_id, 0),
           Reason.VALIDATION_RFQ_CLOSED)  # fmt: skip


# -- negotiated trades ---------------------------------------------------------------------


def test_a_reported_trade_settles_when_its_counterparty_confirms(market: Market) -> None:
    reported = market.execute(report("prov", "sell", "bob")).result
    assert market.execute(c.Housekeeping(OPERATOR)).entries == []
    confirmed = market.execute(c.ConfirmTrade("bob", reported.report_id, 0))
    trade = confirmed.result
    assert (trade.buyer, trade.seller, trade.venue) == ("bob", "prov", "negotiated")
    assert len(confirmed.entries) == 1
    assert market.exchange.holdings_of("bob")[0][2] == 3
    refuse(market, c.ConfirmTrade("bob", reported.report_id, 0), Reason.VALIDATION_REPORT_CLOSED)


def test_only_the_counterparty_confirms_and_others_do_not_see_the_report(market: Market) -> None:
    reported = market.execute(report("ann", "buy", "prov")).result
    refuse(market, c.ConfirmTrade("cat", reported.report_id, 0), Reason.VALIDATION_UNKNOWN_REPORT)
    refuse(market, c.ConfirmTrade("ann", reported.report_id, 0), Reason.AUTH_FORBIDDEN)
    refuse(market, c.ConfirmTrade("prov", 999, 0), Reason.VALIDATION_UNKNOWN_REPORT)
    desk = market.exchange.confidential
    assert desk.reports_of("cat", everyone=False, limit=10) == []
    assert len(desk.reports_of("prov", everyone=False, limit=10)) == 1


def test_a_report_lapses_unconfirmed_and_bad_reports_are_refused(market: Market) -> None:
    reported = market.execute(report("prov", "sell", "ann")).result
    refuse(market, c.ConfirmTrade("ann", reported.report_id, 0), Reason.VALIDATION_REPORT_CLOSED,
           at_ns=reported.created_ns + CONFIRMATION_WINDOW_NS)  # fmt: skip
    refuse(market, report("prov", "sell", "prov"), Reason.VALIDATION_INVALID)
    refuse(market, report("prov", "sell", "ghost"), Reason.VALIDATION_UNKNOWN_PARTICIPANT)
    refuse(market, report("prov", "hold", "ann"), Reason.VALIDATION_INVALID)
    refuse(market, report("ann", "sell", "bob"), Reason.RISK_INSUFFICIENT_LICENCES)
    refuse(market, report("ann", "buy", "prov", price_minor=10**9, quantity=50),
           Reason.RISK_INSUFFICIENT_CASH)  # fmt: skip


# -- publication ---------------------------------------------------------------------------


def test_a_trade_is_published_after_its_deferral_without_its_parties(market: Market) -> None:
    trade = traded(market).result
    # No order-book trades: the instrument is illiquid, so the trade waits two days.
    assert trade.deferral is Deferral.LARGE_OR_ILLIQUID
    assert trade.publish_at_ns == trade.ts_ns + 2 * DAY_NS
    desk = market.exchange.confidential
    assert not market.exchange.housekeeping_due(trade.publish_at_ns - 1)
    assert desk.published(SYMBOL, 10) == []
    # Every other command waits for the publication, as for any expiry.
    refuse(market, quote("prov", 1), Reason.VALIDATION_HOUSEKEEPING_DUE,
           at_ns=trade.publish_at_ns)  # fmt: skip
    publish_all(market, trade.publish_at_ns)
    [published] = desk.published(SYMBOL, 10)
    assert (published.price_minor, published.quantity_units, published.quantity_capped) == (
        PRICE, 5, False,
    )  # fmt: skip
    assert not {"ann", "prov"} & set(map(str, published.__slots__))  # no party field at all
    assert "ann" not in repr(published) and "prov" not in repr(published)
    assert desk.prints[SYMBOL] == [(1, PRICE, 5, trade.ts_ns)]
    assert desk.trades[trade.trade_id].publication_id == 1


def test_a_liquid_instruments_trade_of_normal_size_waits_fifteen_minutes(market: Market) -> None:
    for i in range(10):
        market.execute(sell("prov", f"s{i}", 10_000, 1))
        market.execute(buy("bob", f"b{i}", 10_000, 1))
    trade = traded(market).result
    assert trade.deferral is Deferral.STANDARD
    assert trade.publish_at_ns - trade.ts_ns == 15 * MINUTE_NS


def test_a_large_trade_is_published_late_as_a_price_band_and_a_capped_size(
    market: Market,
) -> None:
    # 60 units at 9,876.00: 592,560.00, large in scale; and illiquid: four weeks.
    market.execute(c.Deposit("admin", "ann", 100_000_000, "wire"))
    trade = traded(market, quantity=60, price_minor=987_600).result
    assert trade.deferral is Deferral.LARGE_AND_ILLIQUID
    assert trade.publish_at_ns - trade.ts_ns == 28 * DAY_NS
    publish_all(market, trade.publish_at_ns)
    [published] = market.exchange.confidential.published(SYMBOL, 10)
    assert published.price_minor is None
    assert (published.price_low_minor, published.price_high_minor) == (980_000, 990_000)
    assert (published.quantity_units, published.quantity_capped) == (10, True)
    assert SYMBOL not in market.exchange.confidential.prints  # no exact price for the prints


def test_an_instruments_policy_sets_its_deferrals(market: Market) -> None:
    policy = c.SetPublicationPolicy("admin", SYMBOL, 1_000_000, 0, 60, 120, 180, 100, False, 2)
    market.execute(policy)
    trade = traded(market).result
    assert trade.deferral is Deferral.STANDARD and trade.publish_at_ns - trade.ts_ns == 60 * 10**9
    refuse(market, replace(policy, deferral_standard_s=500), Reason.VALIDATION_INVALID)
    refuse(market, replace(policy, actor="ann"), Reason.AUTH_FORBIDDEN)
    refuse(market, replace(policy, symbol="NOPE"), Reason.VALIDATION_UNKNOWN_INSTRUMENT)


# -- retries under a client id -------------------------------------------------------------


def retried(market: Market, command: c.Command, first: Any) -> None:
    """Assert that ``command`` answers ``first`` and changes and journals nothing."""
    before, journalled = desk_state(market.exchange), len(market.journal)
    outcome = market.execute(command)
    assert outcome.command is None and outcome.entries == []
    assert outcome.result == first
    assert desk_state(market.exchange) == before and len(market.journal) == journalled


def test_a_retried_request_quote_or_report_answers_the_original(market: Market) -> None:
    deadline = market.now_ns + HOUR_NS
    asking = request(responders=["prov"], deadline_ns=deadline, client_id="ask 1")
    rfq = market.execute(asking).result
    offering = quote("prov", rfq.rfq_id, client_id="offer-1")
    offered = market.execute(offering).result
    reporting = report("prov", "sell", "bob", client_id="deal-1")
    reported = market.execute(reporting).result
    # The retries answer the acknowledgement first given (the request without its quote),
    # even once the request has closed.
    market.execute(c.AcceptQuote("ann", rfq.rfq_id, offered.quote_id, 0))
    retried(market, asking, rfq)
    retried(market, offering, offered)
    retried(market, reporting, reported)
    # Without a client id, or under another, the same content is a new request.
    again = market.execute(replace(asking, client_request_id=None)).result
    other = market.execute(replace(asking, client_request_id="ask 2")).result
    assert rfq.rfq_id < again.rfq_id < other.rfq_id


def test_a_client_id_reused_for_other_content_is_a_conflict(market: Market) -> None:
    deadline = market.now_ns + HOUR_NS
    rfq = market.execute(request(responders=["prov"], deadline_ns=deadline,
                                 client_id="ask-1")).result  # fmt: skip
    market.execute(quote("prov", rfq.rfq_id, client_id="offer-1"))
    market.execute(report("prov", "sell", "bob", client_id="deal-1"))
    conflict = Reason.VALIDATION_IDEMPOTENCY_CONFLICT
    message = refuse(market, request(quantity=6, responders=["prov"], deadline_ns=deadline,
                                     client_id="ask-1"), conflict)  # fmt: skip
    assert message == "client_request_id ask-1 was used for a different request for quote"
    assert "different quote" in refuse(
        market, quote("prov", rfq.rfq_id, PRICE + 100, client_id="offer-1"), conflict
    )
    assert "different trade report" in refuse(
        market, report("prov", "sell", "cat", client_id="deal-1"), conflict
    )
    # A client id is the participant's own: another may use the same one.
    theirs = market.execute(request("bob", responders=["prov"], deadline_ns=deadline,
                                    client_id="ask-1")).result  # fmt: skip
    assert theirs.rfq_id == rfq.rfq_id + 1
    for bad in ("", " ask", "ask\u202e", "x" * 65):
        refuse(market, request(responders=["prov"], deadline_ns=deadline, client_id=bad),
               Reason.VALIDATION_INVALID)  # fmt: skip


# -- replay and snapshots ------------------------------------------------------------------


def confidential_market() -> Market:
    """A market with every kind of confidential command, some trades published."""
    market = Market()
    build_ready_market(market.execute, buyers=("ann", "bob", "cat"))
    first = traded(market).result
    reported = market.execute(report("prov", "sell", "bob", client_id="deal-1")).result
    second = market.execute(c.ConfirmTrade("bob", reported.report_id, 0)).result
    asked = market.execute(request("cat", 2, responders=["prov"], client_id="ask-1",
                                   deadline_ns=market.now_ns + HOUR_NS)).result  # fmt: skip
    market.execute(quote("prov", asked.rfq_id, client_id="offer-1"))
    market.execute(c.SetPublicationPolicy("admin", SYMBOL, 10**6, 0, 60, 60, 60, 5, True, 2))
    assert first.publish_at_ns < second.publish_at_ns
    publish_all(market, second.publish_at_ns)
    traded(market, quantity=2)  # published a minute later, not yet
    return market


def test_replaying_the_journal_reproduces_every_confidential_command() -> None:
    market = confidential_market()
    again = Market()
    for ts_ns, record in market.journal:
        again.execute(c.command_from_record(record), at_ns=ts_ns)
    assert again.entries == market.entries
    assert desk_state(again.exchange) == desk_state(market.exchange)
    assert snapshot(again.exchange) == snapshot(market.exchange)


def test_a_command_without_a_client_id_is_journalled_as_before_client_ids() -> None:
    plain, named = request(deadline_ns=10**18), request(deadline_ns=10**18, client_id="ask-1")
    record = c.command_to_record(plain)
    assert "client_request_id" not in record
    assert c.command_from_record(record) == plain
    assert c.command_from_record(c.command_to_record(named)) == named
    record["client_rfq"] = "x"
    with pytest.raises(ValueError, match="fields"):
        c.command_from_record(record)


def test_a_snapshot_carries_the_confidential_state() -> None:
    market = confidential_market()
    loaded = load_state(dump_state(market.exchange))
    assert isinstance(loaded.confidential, ConfidentialDesk)
    assert desk_state(loaded) == desk_state(market.exchange)
    # The loaded desk shares the exchange's parts, as the original does.
    assert loaded.confidential.risk is loaded.risk
