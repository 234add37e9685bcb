"""Loan facilities against pledged licences: the lifecycle from offer to liquidation."""

from __future__ import annotations

import pytest

from exchange import commands as c
from exchange.collateral import REMARK_DELAY_NS
from exchange.errors import Reason
from exchange.facility import DAY_NS, AlertReason, FacilityStatus
from exchange.participants import OPERATOR
from exchange.service import Exchange, Outcome
from ledger import EntryKind, accounts
from matching import Phase
from tests.exchange.helpers import (
    START_NS,
    Market,
    build_ready_market,
    buy,
    create_participant,
    entries_of,
    sell,
    totals_by_asset,
)

PRICE = 100_000  # 1,000.00 a licence unit
HOUR_NS = 3_600 * 10**9


def facility_offer(**overrides: object) -> c.CreateFacility:
    fields: dict[str, object] = {
        "actor": "bank", "facility_id": 0, "borrower": "ann", "limit_minor": 500_000,
        "rate_bp": 500, "maturity_ns": START_NS + 180 * DAY_NS, "initial_ltv_bp": 5_000,
        "margin_call_ltv_bp": 6_500, "liquidation_ltv_bp": 8_000, "cure_period_s": 86_400,
        "auction_duration_s": 3_600, "haircut": {},
    }  # fmt: skip
    fields.update(overrides)
    return c.CreateFacility(**fields)  # type: ignore[arg-type]


@pytest.fixture
def market() -> Market:
    market = Market()
    build_ready_market(market.execute)
    market.execute(create_participant("bank", "lender"))
    market.execute(c.Deposit("admin", "bank", 5_000_000, "capital"))
    # ann buys ten licences from the provider
    market.execute(sell("prov", "p1", PRICE, 10))
    market.execute(buy("ann", "a1", PRICE, 10))
    return market


def run_at(market: Market, command: c.Command, at_ns: int) -> object:
    """Apply ``command`` at ``at_ns``, after the housekeeping due by then (as the sequencer
    does)."""
    if market.exchange.housekeeping_due(at_ns):
        market.execute(c.Housekeeping(OPERATOR), at_ns=at_ns - 1)
    return market.execute(command, at_ns=at_ns)


def settle(market: Market) -> Outcome:
    """The re-mark pass a second after trades in pledged instruments."""
    return market.execute(c.Housekeeping(OPERATOR), at_ns=market.now_ns + REMARK_DELAY_NS)


def ann_expiry(exchange: Exchange) -> int:
    (expires,) = exchange.risk.holdings[("ann", "ZJPARK.NX12")]
    return expires


def pledged_market(market: Market) -> int:
    """A facility to ann, accepted, valued, ten units pledged, 350,000 drawn: its id."""
    facility = market.execute(facility_offer()).result
    market.execute(c.AcceptFacility("ann", facility.facility_id))
    market.execute(c.PostValuation(OPERATOR, "ZJPARK.NX12", PRICE, 80_000, 120_000, 5, "market"))
    expires = ann_expiry(market.exchange)
    market.execute(c.PledgeLicences("ann", facility.facility_id, 0, "ZJPARK.NX12", 10, expires))
    market.execute(c.DrawLoan("ann", facility.facility_id, 350_000))
    return facility.facility_id


def test_a_pledge_marks_at_the_valuation_less_its_haircut(market: Market) -> None:
    facility_id = pledged_market(market)
    f = market.exchange.collateral.facilities[facility_id]
    # base 10% + half the range's 40% width = 30%; traded today, 5 comparables, a year left
    (pledge,) = f.pledges.values()
    assert pledge.haircut_bp == 3_000
    assert f.collateral_minor == 10 * PRICE * 7 // 10
    assert f.ltv_bp == 5_000
    assert market.exchange.risk.balances[pledge.account] == 10
    assert market.exchange.risk.balances[pledge.source_account] == 0


def test_a_draw_above_the_initial_ltv_is_refused(market: Market) -> None:
    facility_id = pledged_market(market)
    message = market.refuse(c.DrawLoan("ann", facility_id, 1), Reason.RISK_LTV_LIMIT)
    assert "initial 50.00%" in message


def test_pledged_units_cannot_be_sold(market: Market) -> None:
    pledged_market(market)
    message = market.refuse(sell("ann", "s1", PRICE, 1), Reason.RISK_INSUFFICIENT_LICENCES)
    assert "pledged" in message


@pytest.mark.parametrize(
    ("offer", "words"),
    [
        ({"margin_call_ltv_bp": 9_000}, "thresholds must rise"),
        ({"borrower": "bank"}, "itself"),
        ({"haircut": {"base_bp": -1}}, "base_bp"),
        ({"haircut": {"colour": 1}}, "unknown haircut"),
        ({"maturity_ns": START_NS}, "future"),
    ],
)
def test_a_bad_offer_is_refused_and_changes_nothing(
    market: Market, offer: dict[str, object], words: str
) -> None:
    assert words in market.refuse(facility_offer(**offer), Reason.VALIDATION_INVALID)


def test_falling_prices_call_for_margin_and_margin_cures(market: Market) -> None:
    facility_id = pledged_market(market)
    f = market.exchange.collateral.facilities[facility_id]
    # bob buys at 70,000: 10 x 70,000 x 70% = 490,000 against 350,000 is 71.4% >= 65%
    market.execute(sell("prov", "p2", 70_000, 1))
    market.execute(buy("bob", "b1", 70_000, 1))
    assert f.status is FacilityStatus.ACTIVE  # until the re-mark a second later
    outcome = settle(market)
    assert f.status is FacilityStatus.MARGIN_CALL
    assert [a.reason for a in outcome.alerts] == [AlertReason.MARGIN_CALL]
    assert entries_of(EntryKind.COLLATERAL_ALERT, outcome.entries)
    # releasing while called for margin is refused
    (pledge,) = f.pledges.values()
    market.refuse(c.ReleasePledge("ann", facility_id, pledge.pledge_id, 1),
                  Reason.VALIDATION_FACILITY_STATE)  # fmt: skip
    outcome = market.execute(c.PostMargin("ann", facility_id, 100_000))
    assert f.status is FacilityStatus.ACTIVE
    assert [a.reason for a in outcome.alerts] == [AlertReason.CURED]
    assert market.exchange.risk.balances[accounts.margin("ann", facility_id)] == 100_000


def test_an_uncured_call_is_liquidated_at_auction_and_the_lender_repaid(market: Market) -> None:
    facility_id = pledged_market(market)
    exchange = market.exchange
    f = exchange.collateral.facilities[facility_id]
    cash = {who: exchange.risk.cash_balance(who) for who in ("ann", "bank", "bob")}
    market.execute(sell("prov", "p2", 40_000, 1))
    market.execute(buy("bob", "b1", 40_000, 1))
    settle(market)
    assert f.status is FacilityStatus.MARGIN_CALL
    deadline = f.call_deadline_ns
    assert deadline is not None
    # the valuation follows the market down; past the deadline housekeeping starts the sale
    valuation = c.PostValuation(OPERATOR, "ZJPARK.NX12", 40_000, 30_000, 50_000, 5, "market")
    run_at(market, valuation, deadline - 10)
    assert exchange.housekeeping_due(deadline)
    outcome = market.execute(c.Housekeeping(OPERATOR), at_ns=deadline)
    assert f.status is FacilityStatus.LIQUIDATING
    assert exchange.engine.phase("ZJPARK.NX12") is Phase.AUCTION
    assert AlertReason.LIQUIDATION_STARTED in [a.reason for a in outcome.alerts]
    (order_id,) = f.liquidation.orders  # type: ignore[union-attr]
    assert exchange.orders[order_id].price_minor == 30_000  # the valuation's low end
    # bob bids in the auction; at its end the exchange uncrosses
    market.execute(buy("bob", "b2", 40_000, 10))
    market.execute(c.Housekeeping(OPERATOR), at_ns=deadline + HOUR_NS)
    assert exchange.engine.phase("ZJPARK.NX12") is Phase.CONTINUOUS
    assert f.status is FacilityStatus.CLOSED
    assert f.debt_minor == 0
    proceeds = 10 * 40_000 - 10 * 40_000 * 10 // 10_000  # less the 10 bp fee
    interest = f.repaid_minor - 350_000
    assert interest > 0
    bank = exchange.risk.cash_balance("bank")
    assert bank == cash["bank"] + f.repaid_minor == 5_000_000 + interest
    assert exchange.risk.cash_balance("ann") == cash["ann"] + proceeds - f.repaid_minor
    assert totals_by_asset(dict(exchange.risk.balances)) == {
        asset: 0 for asset in totals_by_asset(dict(exchange.risk.balances))
    }


def test_replay_reproduces_every_mark_alert_and_sale(market: Market) -> None:
    test_an_uncured_call_is_liquidated_at_auction_and_the_lender_repaid(market)
    replayed = Exchange()
    for ts, record in market.journal:
        replayed.execute(c.command_from_record(record), replayed.head_seq + 1, ts)
    original = market.exchange.collateral
    assert repr(replayed.collateral.facilities) == repr(original.facilities)
    def held(balances: dict[str, int]) -> dict[str, int]:
        return {account: units for account, units in balances.items() if units}

    assert held(replayed.risk.balances) == held(market.exchange.risk.balances)
    assert replayed.engine.state_hash() == market.exchange.engine.state_hash()


def test_haircut_parts_add_up() -> None:
    """The monitor's inner loop adds the instrument's parts, the expiry part and the quality
    drop as ``haircut`` does."""
    from hypothesis import given
    from hypothesis import strategies as st

    from exchange.haircut import HaircutInputs, HaircutPolicy, expiry_bp, haircut, instrument_parts

    @given(
        width=st.none() | st.integers(0, 30_000), days=st.none() | st.integers(0, 400),
        comparables=st.none() | st.integers(0, 10), left=st.none() | st.integers(-5, 800),
        missed=st.booleans(), drop=st.integers(0, 10_000), suspended=st.booleans(),
    )  # fmt: skip
    def check(width, days, comparables, left, missed, drop, suspended):  # type: ignore[no-untyped-def]
        policy = HaircutPolicy()
        inputs = HaircutInputs(width, days, comparables, left, missed, drop, suspended)
        parts = sum(instrument_parts(policy, inputs))
        total = parts + expiry_bp(policy, left) + drop * policy.quality_drop_share_pct // 100
        assert haircut(policy, inputs).total_bp == min(10_000, total)

    check()


def test_a_retried_offer_answers_the_original_even_after_replay(market: Market) -> None:
    offer = facility_offer(client_facility_id="offer-1", haircut={"base_bp": 1_500})
    first = market.execute(offer)
    assert first.command is not None and first.command.haircut["range_share_pct"] == 50
    again = market.execute(offer)
    assert again.command is None and again.result.facility_id == first.result.facility_id
    other = facility_offer(client_facility_id="offer-1", limit_minor=1)
    message = market.refuse(other, Reason.VALIDATION_IDEMPOTENCY_CONFLICT)
    assert "offer-1" in message
    replayed = Exchange()
    for ts, record in market.journal:
        replayed.execute(c.command_from_record(record), replayed.head_seq + 1, ts)
    retry = replayed.execute(offer, replayed.head_seq + 1, market.now_ns + 1)
    assert retry.command is None and retry.result.facility_id == first.result.facility_id


def test_a_draw_the_lender_cannot_fund_is_refused(market: Market) -> None:
    facility_id = pledged_market(market)
    market.execute(c.RepayLoan("ann", facility_id, 100_000))
    market.execute(c.Withdraw("admin", "bank", market.exchange.risk.cash_available("bank"), ""))
    message = market.refuse(c.DrawLoan("ann", facility_id, 100_000), Reason.RISK_INSUFFICIENT_CASH)
    assert "lender" in message


def test_a_snapshot_mid_auction_continues_as_the_original(market: Market) -> None:
    from exchange.snapshot import dump_state, load_state

    facility_id = pledged_market(market)
    market.execute(sell("prov", "p2", 40_000, 1))
    market.execute(buy("bob", "b1", 40_000, 1))
    settle(market)
    deadline = market.exchange.collateral.facilities[facility_id].call_deadline_ns
    assert deadline is not None
    run_at(market, c.PostValuation(OPERATOR, "ZJPARK.NX12", 40_000, 30_000, 50_000, 5, "market"),
           deadline - 10)  # fmt: skip
    market.execute(c.Housekeeping(OPERATOR), at_ns=deadline)
    assert market.exchange.collateral.facilities[facility_id].status is FacilityStatus.LIQUIDATING
    copy = load_state(dump_state(market.exchange))
    assert repr(copy.collateral.facilities) == repr(market.exchange.collateral.facilities)
    later = [(buy("bob", "b2", 40_000, 10), deadline + 10),
             (c.Housekeeping(OPERATOR), deadline + HOUR_NS + 10)]  # fmt: skip
    for command, at in later:
        market.execute(command, at_ns=at)
        copy.execute(command, copy.head_seq + 1, at)
    assert market.exchange.collateral.facilities[facility_id].status is FacilityStatus.CLOSED
    assert repr(copy.collateral.facilities) == repr(market.exchange.collateral.facilities)
    assert copy.engine.state_hash() == market.exchange.engine.state_hash()
