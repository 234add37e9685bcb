"""The exchange's state machine (exchange/service.py): compliance, roles, risk, idempotency,
settlement, housekeeping, and durability through the sequencer and recovery.

Most tests drive ``Exchange.execute`` directly through ``helpers.Market``, which checks the
exchange's invariants after every command.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from exchange import commands as c
from exchange import service
from exchange.catalogue import MONTH_NS, ProductStatus
from exchange.compliance import COMPLIANCE_CHECKS
from exchange.errors import ExchangeError, Reason
from exchange.orders import OrderStatus
from exchange.recovery import recover
from exchange.service import OPERATOR
from ledger import EntryKind, accounts
from ledger.verify import verify
from matching import Cancelled, Phase
from tests.exchange.helpers import (
    CASH_MINOR,
    FEE_RATE_BP,
    ISSUANCE_CAP_UNITS,
    SYMBOL,
    Market,
    assert_same_state,
    bootstrap_participants,
    build_ready_market,
    buy,
    create_participant,
    create_product,
    entries_of,
    list_instrument,
    review,
    sell,
    sequenced,
    snapshot,
    totals_by_asset,
)

PRICE = 1_000  # minor units per licence unit; the instrument's tick is 100


@pytest.fixture
def market() -> Market:
    """A ready market: ``SYMBOL`` (transferable, 12 months) trading continuously, buyers
    ``ann`` and ``bob`` funded with ``CASH_MINOR`` each."""
    market = Market()
    market.ready = build_ready_market(market.execute)
    return market


@pytest.fixture
def gate() -> Market:
    """Participants only: admin, prov, rev, reg, ann, bob."""
    market = Market()
    bootstrap_participants(market.execute)
    return market


def new_product(market: Market, **fields: object) -> str:
    return market.execute(create_product(**fields)).result.product_id


def status(market: Market, product_id: str) -> ProductStatus:
    return market.exchange.products[product_id].status


# -- the compliance gate -------------------------------------------------------------------


def test_unapproved_product_cannot_list(gate: Market) -> None:
    product_id = new_product(gate)
    gate.refuse(list_instrument(product_id), Reason.COMPLIANCE_NOT_APPROVED)
    assert gate.exchange.instruments == {}


def test_core_data_never_lists(gate: Market) -> None:
    product_id = new_product(gate, classification="core")
    gate.refuse(review(product_id), Reason.COMPLIANCE_CORE_DATA)
    assert status(gate, product_id) is ProductStatus.PENDING_REVIEW
    gate.refuse(list_instrument(product_id), Reason.COMPLIANCE_NOT_APPROVED)


def test_core_data_resubmitted_as_core_still_cannot_be_approved(gate: Market) -> None:
    product_id = new_product(gate)
    gate.execute(review(product_id, "changes_requested"))
    gate.execute(c.ResubmitProduct("prov", product_id, "core", False, False, "attested", ""))
    gate.refuse(review(product_id), Reason.COMPLIANCE_CORE_DATA)


def test_personal_information_not_desensitised_cannot_be_approved(gate: Market) -> None:
    product_id = new_product(gate, personal_information=True, desensitised=False)
    gate.refuse(review(product_id), Reason.COMPLIANCE_NOT_DESENSITISED)
    assert status(gate, product_id) is ProductStatus.PENDING_REVIEW


def test_desensitised_personal_information_can_be_approved(gate: Market) -> None:
    product_id = new_product(gate, personal_information=True, desensitised=True)
    gate.execute(review(product_id))
    assert status(gate, product_id) is ProductStatus.APPROVED


def test_product_without_lawful_source_attestation_cannot_be_approved(gate: Market) -> None:
    product_id = new_product(gate, lawful_source_attestation="  ")
    gate.refuse(review(product_id), Reason.COMPLIANCE_NO_LAWFUL_SOURCE)


def test_approval_needs_every_check_passed(gate: Market) -> None:
    product_id = new_product(gate)
    failed = {"classification": True, "desensitisation": False,
              "lifecycle_and_retention": True, "risk_controls": True}  # fmt: skip
    message = gate.refuse(review(product_id, checks=failed), Reason.VALIDATION_INVALID)
    assert "desensitisation" in message
    missing = {"classification": True}
    gate.refuse(review(product_id, checks=missing), Reason.VALIDATION_INVALID)


def test_important_data_lists_only_after_a_regulator_approves(gate: Market) -> None:
    product_id = new_product(gate, classification="important")
    outcome = gate.execute(review(product_id))
    assert status(gate, product_id) is ProductStatus.AWAITING_REGULATOR
    assert [entry.kind for entry in outcome.entries] == [EntryKind.COMPLIANCE_DECISION]
    gate.refuse(list_instrument(product_id), Reason.COMPLIANCE_NOT_APPROVED)
    # Neither the reviewer nor an admin stands in for the regulator.
    for actor in ("rev", "admin"):
        gate.refuse(c.RegulatorDecision(actor, product_id, "approved", "ok"),
                    Reason.AUTH_FORBIDDEN)  # fmt: skip
    gate.refuse(c.RegulatorDecision("reg", product_id, "changes_requested", "no"),
                Reason.VALIDATION_INVALID)  # fmt: skip
    gate.execute(c.RegulatorDecision("reg", product_id, "approved", "cleared for listing"))
    assert status(gate, product_id) is ProductStatus.APPROVED
    gate.execute(list_instrument(product_id))
    assert SYMBOL in gate.exchange.instruments


def test_regulator_rejection_of_important_data_prevents_listing(gate: Market) -> None:
    product_id = new_product(gate, classification="important")
    gate.execute(review(product_id))
    gate.execute(c.RegulatorDecision("reg", product_id, "rejected", "cross-border risk"))
    assert status(gate, product_id) is ProductStatus.REJECTED
    gate.refuse(list_instrument(product_id), Reason.COMPLIANCE_NOT_APPROVED)


def test_regulator_decides_only_products_awaiting_it(gate: Market) -> None:
    product_id = new_product(gate)
    gate.refuse(c.RegulatorDecision("reg", product_id, "approved", "ok"),
                Reason.COMPLIANCE_REVIEW_STATE)  # fmt: skip


def test_changes_requested_then_resubmitted_then_approved(gate: Market) -> None:
    product_id = new_product(gate, personal_information=True, desensitised=False)
    gate.execute(review(product_id, "changes_requested", opinion="desensitise the plates"))
    assert status(gate, product_id) is ProductStatus.CHANGES_REQUESTED
    # While changes are requested nobody reviews it, and only its provider resubmits.
    gate.refuse(review(product_id), Reason.COMPLIANCE_REVIEW_STATE)
    resubmit = c.ResubmitProduct("prov", product_id, "general", True, True, "city contract",
                                 "plates hashed")  # fmt: skip
    gate.refuse(replace(resubmit, actor="ann"), Reason.AUTH_FORBIDDEN)
    gate.execute(resubmit)
    assert status(gate, product_id) is ProductStatus.PENDING_REVIEW
    assert gate.exchange.products[product_id].desensitised is True
    gate.execute(review(product_id))
    assert status(gate, product_id) is ProductStatus.APPROVED
    gate.execute(list_instrument(product_id))


def test_resubmission_needs_a_lawful_source_attestation(gate: Market) -> None:
    product_id = new_product(gate)
    gate.execute(review(product_id, "changes_requested"))
    gate.refuse(c.ResubmitProduct("prov", product_id, "general", False, False, "", "note"),
                Reason.VALIDATION_INVALID)  # fmt: skip


def test_only_pending_products_are_resubmitted(gate: Market) -> None:
    product_id = new_product(gate)
    gate.refuse(c.ResubmitProduct("prov", product_id, "general", False, False, "a", ""),
                Reason.COMPLIANCE_REVIEW_STATE)  # fmt: skip


def test_rejected_product_is_final(gate: Market) -> None:
    product_id = new_product(gate)
    gate.execute(review(product_id, "rejected"))
    assert status(gate, product_id) is ProductStatus.REJECTED
    gate.refuse(review(product_id), Reason.COMPLIANCE_REVIEW_STATE)
    gate.refuse(list_instrument(product_id), Reason.COMPLIANCE_NOT_APPROVED)


def test_provider_cannot_review_its_own_product(gate: Market) -> None:
    gate.execute(create_participant("both", "provider", "reviewer"))
    product_id = new_product(gate, provider="both")
    message = gate.refuse(review(product_id, reviewer="both"), Reason.AUTH_FORBIDDEN)
    assert "own product" in message
    # Another reviewer may; and "both" may review a product it does not provide.
    gate.execute(review(product_id))
    other = new_product(gate)
    gate.execute(review(other, reviewer="both"))
    assert status(gate, other) is ProductStatus.APPROVED


def test_provider_cannot_list_another_providers_product(gate: Market) -> None:
    gate.execute(create_participant("prov2", "provider"))
    product_id = new_product(gate)
    gate.execute(review(product_id))
    gate.refuse(list_instrument(product_id, provider="prov2"), Reason.AUTH_FORBIDDEN)


def test_suspending_a_product_halts_cancels_releases_and_refuses_orders(market: Market) -> None:
    exchange = market.exchange
    product_id = market.ready.product_id
    market.execute(sell("prov", "p1", PRICE, 10))
    market.execute(buy("bob", "b1", PRICE, 3))  # bob now holds 3 licences
    resale = market.execute(sell("bob", "b2", 1_500, 2)).result
    resting_buy = market.execute(buy("ann", "a1", 900, 4)).result
    assert exchange.cash_of("ann") == (CASH_MINOR - 3_600, 3_600)
    holdings_before = exchange.holdings_of("bob")

    outcome = market.execute(c.SuspendProduct("reg", product_id, "unlawful source alleged"))

    assert status(market, product_id) is ProductStatus.SUSPENDED
    assert exchange.engine.phase(SYMBOL) is Phase.HALTED
    assert exchange.engine.open_order_count() == 0
    for order in exchange.orders.values():
        assert not order.is_open
    for order_id in (resale.order_id, resting_buy.order_id, 1):
        assert exchange.orders[order_id].status is OrderStatus.CANCELLED
        assert exchange.orders[order_id].cancel_reason == "halted"
    assert exchange.cash_of("ann") == (CASH_MINOR, 0)
    # Holds are freed in memory: a halt moves no value, so it writes no ledger entry.
    assert outcome.entries == []
    assert not any(exchange.risk.licences_held.values())
    assert exchange.holdings_of("bob") == [(s, e, u, 0) for s, e, u, _ in holdings_before]

    market.refuse(buy("ann", "a2", PRICE, 1), Reason.COMPLIANCE_SUSPENDED)
    market.refuse(sell("prov", "p2", PRICE, 1), Reason.COMPLIANCE_SUSPENDED)
    market.refuse(c.SetPhase("admin", SYMBOL, "continuous"), Reason.COMPLIANCE_SUSPENDED)
    market.refuse(c.SuspendProduct("admin", product_id, "again"), Reason.COMPLIANCE_REVIEW_STATE)


def test_reinstated_product_trades_again_after_its_opening(market: Market) -> None:
    product_id = market.ready.product_id
    market.execute(c.SuspendProduct("admin", product_id, "investigation"))
    market.execute(c.ReinstateProduct("reg", product_id, "cleared"))
    assert status(market, product_id) is ProductStatus.APPROVED
    assert market.exchange.engine.phase(SYMBOL) is Phase.PRE_OPEN
    market.execute(sell("prov", "p1", PRICE, 2))
    market.execute(buy("ann", "a1", PRICE, 2))
    market.execute(c.SetPhase("admin", SYMBOL, "continuous"))
    assert market.exchange.holdings_of("ann")[0][2] == 2


def test_only_a_regulator_or_admin_suspends(market: Market) -> None:
    product_id = market.ready.product_id
    for actor in ("rev", "prov", "ann"):
        market.refuse(c.SuspendProduct(actor, product_id, "no"), Reason.AUTH_FORBIDDEN)


def test_reinstating_a_product_never_approved_does_not_approve_it(gate: Market) -> None:
    product_id = new_product(gate, classification="core")
    gate.execute(c.SuspendProduct("reg", product_id, "precaution"))
    gate.execute(c.ReinstateProduct("reg", product_id, "precaution lifted"))
    assert status(gate, product_id) is ProductStatus.PENDING_REVIEW
    gate.refuse(list_instrument(product_id), Reason.COMPLIANCE_NOT_APPROVED)


@pytest.mark.parametrize("decision", ["rejected", "awaiting_regulator"])
def test_reinstating_restores_the_status_before_the_suspension(gate: Market, decision: str) -> None:
    product_id = new_product(gate, classification="important")
    if decision == "rejected":
        gate.execute(review(product_id, "rejected"))
    else:
        gate.execute(review(product_id))
    before = status(gate, product_id)
    assert before.value == decision
    gate.execute(c.SuspendProduct("admin", product_id, "precaution"))
    gate.refuse(list_instrument(product_id), Reason.COMPLIANCE_NOT_APPROVED)
    gate.execute(c.ReinstateProduct("admin", product_id, "precaution lifted"))
    assert status(gate, product_id) is before
    gate.refuse(list_instrument(product_id), Reason.COMPLIANCE_NOT_APPROVED)


def test_only_a_suspended_product_is_reinstated(gate: Market) -> None:
    product_id = new_product(gate)
    gate.refuse(c.ReinstateProduct("reg", product_id, "nothing to lift"),
                Reason.COMPLIANCE_REVIEW_STATE)  # fmt: skip


def test_compliance_history_records_each_decision_in_order(gate: Market) -> None:
    product_id = new_product(gate, classification="important")
    gate.execute(review(product_id, "changes_requested", opinion="clarify the source"))
    gate.execute(c.ResubmitProduct("prov", product_id, "important", False, False,
                                   "city contract no. 7", "source clarified"))  # fmt: skip
    gate.execute(review(product_id, opinion="fine"))
    gate.execute(c.RegulatorDecision("reg", product_id, "approved", "cleared"))
    gate.execute(c.SuspendProduct("admin", product_id, "complaint"))
    gate.execute(c.ReinstateProduct("reg", product_id, "complaint withdrawn"))
    # A refused decision leaves no record.
    with pytest.raises(ExchangeError):
        gate.execute(review(product_id))

    history = gate.exchange.compliance_history(product_id)
    assert [(r.action, r.actor, r.decision, r.opinion, r.status_after) for r in history] == [
        ("review", "rev", "changes_requested", "clarify the source",
         ProductStatus.CHANGES_REQUESTED),
        ("resubmitted", "prov", None, "source clarified", ProductStatus.PENDING_REVIEW),
        ("review", "rev", "approved", "fine", ProductStatus.AWAITING_REGULATOR),
        ("regulator_decision", "reg", "approved", "cleared", ProductStatus.APPROVED),
        ("suspended", "admin", None, "complaint", ProductStatus.SUSPENDED),
        ("reinstated", "reg", None, "complaint withdrawn", ProductStatus.APPROVED),
    ]  # fmt: skip
    seqs = [record.seq for record in history]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert [r.ts_ns for r in history] == sorted(r.ts_ns for r in history)
    assert history[0].checks == {name: True for name in COMPLIANCE_CHECKS}
    # Reviews and regulator decisions are also ledger entries, in the same order.
    decisions = entries_of(EntryKind.COMPLIANCE_DECISION, gate.entries)
    assert [(e.body["reviewer"], e.body["decision"]) for e in decisions] == [
        ("rev", "changes_requested"), ("rev", "approved"), ("reg", "approved"),
    ]  # fmt: skip


# -- roles ---------------------------------------------------------------------------------


def test_buyer_cannot_create_products(gate: Market) -> None:
    gate.refuse(create_product(provider="ann"), Reason.AUTH_FORBIDDEN)
    gate.refuse(create_product(provider=OPERATOR), Reason.AUTH_FORBIDDEN)
    assert gate.exchange.products == {}


def test_provider_cannot_deposit(market: Market) -> None:
    market.refuse(c.Deposit("prov", "prov", 1_000, "self"), Reason.AUTH_FORBIDDEN)
    market.refuse(c.Deposit("prov", "ann", 1_000, "gift"), Reason.AUTH_FORBIDDEN)
    market.refuse(c.Withdraw("ann", "ann", 1_000, "out"), Reason.AUTH_FORBIDDEN)


def test_reviewer_cannot_trade(market: Market) -> None:
    market.execute(c.Deposit("admin", "rev", 100_000, "wire"))
    market.refuse(buy("rev", "r1", PRICE, 1), Reason.AUTH_FORBIDDEN)
    market.refuse(buy("reg", "g1", PRICE, 1), Reason.AUTH_FORBIDDEN)
    market.refuse(buy(OPERATOR, "o1", PRICE, 1), Reason.AUTH_FORBIDDEN)


def test_unknown_participant_is_forbidden_everywhere(market: Market) -> None:
    market.refuse(buy("nobody", "n1", PRICE, 1), Reason.AUTH_FORBIDDEN)
    market.refuse(c.SetPhase("nobody", SYMBOL, "halted"), Reason.AUTH_FORBIDDEN)
    market.refuse(replace(create_participant("x", "buyer"), actor="ann"), Reason.AUTH_FORBIDDEN)


# -- pre-trade risk ------------------------------------------------------------------------


def test_buy_beyond_available_cash_is_refused_and_changes_nothing(market: Market) -> None:
    exchange = market.exchange
    market.execute(sell("prov", "p1", PRICE, 50))
    market.execute(buy("ann", "a1", 900, 10))  # reserves 9,000
    available = exchange.cash_of("ann")[0]
    assert available == CASH_MINOR - 9_000
    before = (exchange.engine.state_hash(), exchange.cash_of("ann"), len(exchange.orders),
              exchange.next_order_id, exchange.head_seq)  # fmt: skip
    # Ten units at one tick above a tenth of what is available (reserved cash not counted).
    price = (available // 10 // 100 + 1) * 100
    market.refuse(buy("ann", "a2", price, 10), Reason.RISK_INSUFFICIENT_CASH)
    after = (exchange.engine.state_hash(), exchange.cash_of("ann"), len(exchange.orders),
             exchange.next_order_id, exchange.head_seq)  # fmt: skip
    assert after == before
    # The refused client order id is still free to use.
    market.execute(buy("ann", "a2", PRICE, 1))


def test_buy_of_exactly_the_available_cash_is_accepted(market: Market) -> None:
    market.execute(buy("ann", "a1", CASH_MINOR // 100, 100))
    assert market.exchange.cash_of("ann") == (0, CASH_MINOR)


def test_sell_by_a_non_holder_is_refused(market: Market) -> None:
    market.refuse(sell("ann", "a1", PRICE, 1), Reason.RISK_INSUFFICIENT_LICENCES)


def test_resale_beyond_one_holding_is_refused(market: Market) -> None:
    market.execute(sell("prov", "p1", PRICE, 10))
    market.execute(buy("bob", "b1", PRICE, 3))
    # Bought a day later: a second holding, with a later expiry (licences expire by the day).
    market.execute(buy("bob", "b2", PRICE, 3), at_ns=market.now_ns + 86_400 * 10**9)
    assert [units for _, _, units, _ in market.exchange.holdings_of("bob")] == [3, 3]
    message = market.refuse(sell("bob", "b3", PRICE, 4), Reason.RISK_INSUFFICIENT_LICENCES)
    assert "largest has 3" in message
    market.execute(sell("bob", "b4", PRICE, 3))
    market.execute(sell("bob", "b5", PRICE, 3))
    market.refuse(sell("bob", "b6", PRICE, 1), Reason.RISK_INSUFFICIENT_LICENCES)


def test_provider_cannot_sell_beyond_the_issuance_cap(market: Market) -> None:
    market.execute(sell("prov", "p1", PRICE, ISSUANCE_CAP_UNITS - 1))
    market.refuse(sell("prov", "p2", PRICE, 2), Reason.RISK_INSUFFICIENT_LICENCES)
    market.execute(sell("prov", "p3", PRICE, 1))


def test_resale_of_a_non_transferable_licence_is_refused() -> None:
    market = Market()
    build_ready_market(market.execute, transferable=False)
    market.execute(sell("prov", "p1", PRICE, 5))
    market.execute(buy("bob", "b1", PRICE, 5))
    assert market.exchange.holdings_of("bob")[0][2] == 5
    market.refuse(sell("bob", "b2", PRICE, 1), Reason.RISK_NOT_TRANSFERABLE)


def test_market_buy_without_protection_price_or_band_is_refused(market: Market) -> None:
    market.execute(sell("prov", "p1", PRICE, 5))
    with pytest.raises(ExchangeError) as caught:
        market.execute(buy("ann", "a1", None, 1, order_type="market"))
    assert "protection price" in caught.value.message
    assert market.exchange.cash_of("ann") == (CASH_MINOR, 0)
    assert len(market.exchange.orders) == 1


def test_market_buy_without_protection_is_refused_as_risk_protection_required(
    market: Market,
) -> None:
    market.refuse(buy("ann", "a1", None, 1, order_type="market"),
                  Reason.RISK_PROTECTION_PRICE_REQUIRED)  # fmt: skip


def test_market_buy_with_protection_price_reserves_that_price(market: Market) -> None:
    market.execute(sell("prov", "p1", PRICE, 2))
    outcome = market.execute(buy("ann", "a1", 1_500, 3, order_type="market"))
    record = market.exchange.orders[outcome.result.order_id]
    assert record.filled_units == 2 and record.status is OrderStatus.CANCELLED
    assert record.hold_price_minor == 1_500
    assert [e.kind for e in outcome.entries] == [EntryKind.TRADE_SETTLEMENT]
    assert market.exchange.cash_of("ann") == (CASH_MINOR - 2 * PRICE, 0)


def test_market_buy_without_protection_reserves_at_the_band_high() -> None:
    market = Market()
    build_ready_market(market.execute, price_band_low_minor=500, price_band_high_minor=2_000)
    market.execute(sell("prov", "p1", PRICE, 2))
    outcome = market.execute(buy("ann", "a1", None, 2, order_type="market"))
    assert market.exchange.orders[outcome.result.order_id].hold_price_minor == 2_000
    assert market.exchange.cash_of("ann") == (CASH_MINOR - 2 * PRICE, 0)


def test_cancel_releases_the_reservation(market: Market) -> None:
    order_id = market.execute(buy("ann", "a1", 900, 5)).result.order_id
    assert market.exchange.cash_of("ann") == (CASH_MINOR - 4_500, 4_500)
    outcome = market.execute(c.CancelOrder("ann", order_id))
    assert outcome.result.status is OrderStatus.CANCELLED
    assert market.exchange.cash_of("ann") == (CASH_MINOR, 0)
    assert outcome.entries == []
    market.refuse(c.CancelOrder("ann", order_id), Reason.VALIDATION_ORDER_NOT_OPEN)


def test_cancel_of_another_participants_order_is_refused(market: Market) -> None:
    order_id = market.execute(buy("ann", "a1", 900, 5)).result.order_id
    market.refuse(c.CancelOrder("bob", order_id), Reason.VALIDATION_UNKNOWN_ORDER)
    market.refuse(c.AmendOrder("bob", order_id, 800, None), Reason.VALIDATION_UNKNOWN_ORDER)


def test_cancel_of_a_sell_frees_its_licences(market: Market) -> None:
    order_id = market.execute(sell("prov", "p1", PRICE, ISSUANCE_CAP_UNITS)).result.order_id
    issuance = accounts.issuance(SYMBOL)
    assert market.exchange.risk.licences_free(issuance) == 0
    market.execute(c.CancelOrder("prov", order_id))
    assert market.exchange.risk.licences_free(issuance) == ISSUANCE_CAP_UNITS


def test_fill_at_a_better_price_releases_the_difference(market: Market) -> None:
    market.execute(sell("prov", "p1", 800, 2))
    market.execute(sell("prov", "p2", 900, 2))
    outcome = market.execute(buy("ann", "a1", 1_000, 4))
    assert market.exchange.orders[outcome.result.order_id].hold_price_minor == 1_000
    assert [e.kind for e in outcome.entries] == [EntryKind.TRADE_SETTLEMENT] * 2
    assert market.exchange.cash_of("ann") == (CASH_MINOR - 3_400, 0)
    assert outcome.result.status is OrderStatus.FILLED


def test_partial_fill_keeps_the_reservation_of_the_rest(market: Market) -> None:
    market.execute(sell("prov", "p1", 800, 2))
    outcome = market.execute(buy("ann", "a1", 1_000, 5))
    record = market.exchange.orders[outcome.result.order_id]
    assert record.status is OrderStatus.PARTIALLY_FILLED
    assert record.held_minor == 3 * 1_000
    assert market.exchange.cash_of("ann") == (CASH_MINOR - 1_600 - 3_000, 3_000)


def test_ioc_remainder_releases_its_reservation(market: Market) -> None:
    market.execute(sell("prov", "p1", PRICE, 2))
    outcome = market.execute(buy("ann", "a1", PRICE, 5, tif="IOC"))
    record = market.exchange.orders[outcome.result.order_id]
    assert (record.filled_units, record.cancelled_units) == (2, 3)
    assert record.cancel_reason == "ioc_remainder"
    assert market.exchange.cash_of("ann") == (CASH_MINOR - 2 * PRICE, 0)
    assert market.exchange.open_orders["ann"] == 0


def test_unfilled_fok_releases_its_reservation(market: Market) -> None:
    market.execute(sell("prov", "p1", PRICE, 2))
    outcome = market.execute(buy("ann", "a1", PRICE, 5, tif="FOK"))
    assert outcome.result.status is OrderStatus.CANCELLED
    assert market.exchange.cash_of("ann") == (CASH_MINOR, 0)


def test_amend_up_reserves_more_and_amend_down_releases(market: Market) -> None:
    order_id = market.execute(buy("ann", "a1", 900, 5)).result.order_id
    assert market.exchange.cash_of("ann") == (CASH_MINOR - 4_500, 4_500)
    up = market.execute(c.AmendOrder("ann", order_id, 900, 8))
    assert up.entries == []
    assert market.exchange.cash_of("ann") == (CASH_MINOR - 7_200, 7_200)
    down = market.execute(c.AmendOrder("ann", order_id, 700, None))
    assert down.entries == []
    assert market.exchange.cash_of("ann") == (CASH_MINOR - 5_600, 5_600)
    smaller = market.execute(c.AmendOrder("ann", order_id, None, 2))
    assert market.exchange.cash_of("ann") == (CASH_MINOR - 1_400, 1_400)
    assert smaller.result.held_minor == 1_400


def test_amend_up_beyond_available_cash_is_refused(market: Market) -> None:
    half = CASH_MINOR // 2
    order_id = market.execute(buy("ann", "a1", half // 100, 100)).result.order_id
    # Doubling the price needs another half, and one tick more is beyond what is available.
    market.refuse(c.AmendOrder("ann", order_id, 2 * half // 100 + 100, None),
                  Reason.RISK_INSUFFICIENT_CASH)  # fmt: skip
    market.execute(c.AmendOrder("ann", order_id, 2 * half // 100, None))
    assert market.exchange.cash_of("ann") == (0, CASH_MINOR)
    market.refuse(c.AmendOrder("ann", order_id, None, None),
                  Reason.VALIDATION_AMEND_CHANGES_NOTHING)  # fmt: skip


def test_amend_of_a_sell_up_beyond_free_licences_is_refused(market: Market) -> None:
    order_id = market.execute(sell("prov", "p1", 2_000, 60)).result.order_id
    market.execute(sell("prov", "p2", 2_000, 30))
    market.refuse(c.AmendOrder("prov", order_id, None, 71), Reason.RISK_INSUFFICIENT_LICENCES)
    market.execute(c.AmendOrder("prov", order_id, None, 70))
    market.execute(c.AmendOrder("prov", order_id, None, 10))
    assert market.exchange.risk.licences_free(accounts.issuance(SYMBOL)) == 60


def test_amend_of_a_partly_filled_buy_reserves_only_the_remainder(market: Market) -> None:
    market.execute(sell("prov", "p1", 800, 2))
    order_id = market.execute(buy("ann", "a1", 800, 5)).result.order_id
    market.execute(c.AmendOrder("ann", order_id, 700, 6))
    record = market.exchange.orders[order_id]
    assert (record.filled_units, record.remaining_units) == (2, 4)
    assert market.exchange.cash_of("ann") == (CASH_MINOR - 1_600 - 2_800, 2_800)


def test_open_order_limit_is_enforced(market: Market, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "MAX_OPEN_ORDERS_PER_PARTICIPANT", 2)
    first = market.execute(buy("ann", "a1", 800, 1)).result.order_id
    market.execute(buy("ann", "a2", 700, 1))
    message = market.refuse(buy("ann", "a3", 600, 1), Reason.RISK_OPEN_ORDER_LIMIT)
    assert "2" in message
    market.refuse(buy("ann", "a3", 600, 1, tif="IOC"), Reason.RISK_OPEN_ORDER_LIMIT)
    market.execute(buy("bob", "b1", 600, 1))  # the limit is per participant
    market.execute(c.CancelOrder("ann", first))
    market.execute(buy("ann", "a3", 600, 1))
    assert market.exchange.open_orders["ann"] == 2


def test_filled_orders_no_longer_count_towards_the_open_order_limit(
    market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "MAX_OPEN_ORDERS_PER_PARTICIPANT", 1)
    market.execute(buy("ann", "a1", PRICE, 1))
    market.execute(sell("prov", "p1", PRICE, 1))  # fills ann's order
    assert market.exchange.open_orders["ann"] == 0
    market.execute(buy("ann", "a2", PRICE, 1))


def test_self_trade_prevention_none_is_refused(market: Market) -> None:
    market.refuse(buy("ann", "a1", PRICE, 1, stp="none"), Reason.VALIDATION_INVALID)


def test_withdrawal_cannot_take_reserved_cash(market: Market) -> None:
    market.execute(buy("ann", "a1", CASH_MINOR // 2 // 100, 100))
    market.refuse(c.Withdraw("admin", "ann", CASH_MINOR // 2 + 1, "out"),
                  Reason.RISK_INSUFFICIENT_CASH)  # fmt: skip
    market.execute(c.Withdraw("admin", "ann", CASH_MINOR // 2, "out"))
    assert market.exchange.cash_of("ann") == (0, CASH_MINOR // 2)


# -- idempotency ---------------------------------------------------------------------------


def test_identical_retry_returns_the_original_result_and_journals_nothing(
    market: Market,
) -> None:
    exchange = market.exchange
    market.execute(sell("prov", "p1", PRICE, 2))
    first = market.execute(buy("ann", "a1", PRICE, 5))
    assert first.command is not None and first.command.order_id == first.result.order_id
    market.execute(sell("prov", "p2", PRICE, 3))  # the order fills after it was placed
    before = snapshot(exchange)

    retry = market.execute(buy("ann", "a1", PRICE, 5))

    assert retry.command is None
    assert retry.result == first.result
    assert retry.result.status is OrderStatus.PARTIALLY_FILLED  # as it was when placed
    assert retry.entries == [] and retry.events == []
    assert snapshot(exchange) == before


def test_retry_with_a_different_payload_is_an_idempotency_conflict(market: Market) -> None:
    market.execute(buy("ann", "a1", 900, 5))
    market.refuse(buy("ann", "a1", 900, 6), Reason.VALIDATION_IDEMPOTENCY_CONFLICT)
    market.refuse(buy("ann", "a1", 800, 5), Reason.VALIDATION_IDEMPOTENCY_CONFLICT)
    market.refuse(buy("ann", "a1", 900, 5, tif="IOC"), Reason.VALIDATION_IDEMPOTENCY_CONFLICT)


def test_client_order_ids_are_per_participant(market: Market) -> None:
    ann = market.execute(buy("ann", "same", 900, 5)).result
    bob = market.execute(buy("bob", "same", 800, 2)).result
    assert ann.order_id != bob.order_id
    assert market.exchange.cash_of("bob") == (CASH_MINOR - 1_600, 1_600)


def test_identical_retry_through_the_sequencer_is_not_journalled(tmp_path: Path) -> None:
    with sequenced(tmp_path) as (sequencer, ledger, _clock):
        build_ready_market(sequencer.execute)
        first = sequencer.execute(buy("ann", "a1", 900, 5))
        journal_size, ledger_size = len(ledger.journal()), ledger.size()
        retry = sequencer.execute(buy("ann", "a1", 900, 5))
        assert retry.command is None and retry.result == first.result
        assert (len(ledger.journal()), ledger.size()) == (journal_size, ledger_size)
        with pytest.raises(ExchangeError) as caught:
            sequencer.execute(buy("ann", "a1", 900, 6))
        assert caught.value.reason is Reason.VALIDATION_IDEMPOTENCY_CONFLICT
    # After a restart the client order id is still known.
    rebuilt = recover(ledger)
    again = rebuilt.execute(buy("ann", "a1", 900, 5), rebuilt.head_seq + 1, rebuilt.last_ts_ns)
    assert again.command is None and again.result == first.result
    # The replayed submission carries its order id; a retry without one still matches it
    # field for field, and a different one still conflicts.
    with pytest.raises(ExchangeError) as caught:
        rebuilt.execute(buy("ann", "a1", 900, 6), rebuilt.head_seq + 1, rebuilt.last_ts_ns)
    assert caught.value.reason is Reason.VALIDATION_IDEMPOTENCY_CONFLICT


# -- settlement ----------------------------------------------------------------------------


def test_settlement_conserves_cash_licences_and_fees(market: Market) -> None:
    exchange = market.exchange
    market.execute(c.Deposit("admin", "ann", 5_000, "top-up"))
    market.execute(sell("prov", "p1", 900, 4))
    market.execute(sell("prov", "p2", 1_100, 6))
    market.execute(buy("bob", "b1", 1_100, 7))  # primary: 4 @ 900, 3 @ 1,100
    market.execute(sell("bob", "b2", 1_300, 4))  # resale from bob's only holding
    # 3 @ 1,100 primary, then 4 @ 1,300 resale; 1 rests, then is amended down.
    order_id = market.execute(buy("ann", "a1", 1_300, 8)).result.order_id
    market.execute(c.AmendOrder("ann", order_id, 1_200, None))
    market.execute(c.Withdraw("admin", "bob", 1_000, "out"))
    market.execute(c.Withdraw("admin", "prov", 500, "payout"))
    exchange.check_invariants()

    balances = dict(exchange.risk.balances)
    assert set(totals_by_asset(balances).values()) == {0}
    cash = {a: u for a, u in balances.items() if accounts.asset_of(a) == accounts.CASH}
    assert -cash[accounts.EXTERNAL_CASH] == 2 * CASH_MINOR + 5_000 - 1_500

    trades = entries_of(EntryKind.TRADE_SETTLEMENT, market.entries)
    fills = [fill for fills in exchange.settlement.fills.values() for fill in fills]
    assert len(fills) == 2 * len(trades) == 8
    assert balances[accounts.EXCHANGE_FEES] == sum(f.fee_minor for f in fills)
    assert balances[accounts.EXCHANGE_FEES] == sum(e.body["fee_minor"] for e in trades)
    assert all(e.body["fee_minor"] == e.body["notional_minor"] * FEE_RATE_BP // 10_000
               for e in trades)  # fmt: skip
    # The seller receives the notional less the fee; the buyer pays the notional.
    paid = sum(e.body["notional_minor"] for e in trades if e.body["buyer"] == "ann")
    assert sum(exchange.cash_of("ann")) == CASH_MINOR + 5_000 - paid

    licence = accounts.licence_asset(SYMBOL)
    units = {a: u for a, u in balances.items() if accounts.asset_of(a) == licence}
    assert units[accounts.issued(SYMBOL)] == -ISSUANCE_CAP_UNITS
    held = sum(u for a, u in units.items() if accounts.participant_of(a) is not None)
    assert units[accounts.issuance(SYMBOL)] + held == ISSUANCE_CAP_UNITS
    assert exchange.cash_of("ann")[1] == 1_200
    # Licences bought on one day share one expiry: one holding.
    assert [(u, r) for _, _, u, r in exchange.holdings_of("ann")] == [(7, 0)]
    assert [(u, r) for _, _, u, r in exchange.holdings_of("bob")] == [(3, 0)]


def test_resale_keeps_the_licence_expiry_of_the_holding(market: Market) -> None:
    market.execute(sell("prov", "p1", PRICE, 3))
    market.execute(buy("bob", "b1", PRICE, 3))
    [(_, bob_expiry, _, _)] = market.exchange.holdings_of("bob")
    market.execute(sell("bob", "b2", 1_200, 2))
    outcome = market.execute(buy("ann", "a1", 1_200, 2))
    [trade] = entries_of(EntryKind.TRADE_SETTLEMENT, outcome.entries)
    assert trade.body["primary"] is False and trade.body["seller"] == "bob"
    assert market.exchange.holdings_of("ann") == [(SYMBOL, bob_expiry, 2, 0)]
    assert market.exchange.holdings_of("bob") == [(SYMBOL, bob_expiry, 1, 0)]


def test_primary_licences_expire_a_licence_term_after_the_trade(market: Market) -> None:
    market.execute(sell("prov", "p1", PRICE, 3))
    outcome = market.execute(buy("bob", "b1", PRICE, 3))
    [trade] = entries_of(EntryKind.TRADE_SETTLEMENT, outcome.entries)
    # A licence term after the trade, to the end of that UTC day.
    end_ns = trade.ts_ns + 12 * MONTH_NS
    day_ns = 86_400 * 10**9
    assert end_ns <= trade.body["expires_at_ns"] < end_ns + day_ns
    assert trade.body["expires_at_ns"] % day_ns == 0


def test_opening_auction_never_settles_a_participant_with_itself(market: Market) -> None:
    market.execute(sell("prov", "p1", PRICE, 3))
    market.execute(buy("bob", "b1", PRICE, 3))
    market.execute(c.SetPhase("admin", SYMBOL, "pre_open"))
    market.execute(sell("bob", "b2", 1_100, 2))
    # The auction has no self-trade prevention: a bid crossing bob's own offer is refused.
    market.refuse(buy("bob", "b3", 1_200, 2), Reason.RISK_SELF_TRADE)
    market.refuse(buy("bob", "b3", 1_500, 2, order_type="market"), Reason.RISK_SELF_TRADE)
    bid = market.execute(buy("bob", "b4", 1_000, 2)).result.order_id  # below: no cross
    market.refuse(c.AmendOrder("bob", bid, 1_100, None), Reason.RISK_SELF_TRADE)
    outcome = market.execute(c.SetPhase("admin", SYMBOL, "continuous"))
    for trade in entries_of(EntryKind.TRADE_SETTLEMENT, outcome.entries):
        assert trade.body["buyer"] != trade.body["seller"]


# -- housekeeping --------------------------------------------------------------------------


def test_gtd_order_expires_at_housekeeping_and_its_reservation_is_released(
    market: Market,
) -> None:
    exchange = market.exchange
    expire_ns = market.now_ns + 1_000_000
    order_id = market.execute(buy("ann", "a1", 900, 5, tif="GTD", expire_ns=expire_ns)).result
    order_id = order_id.order_id
    assert exchange.cash_of("ann") == (CASH_MINOR - 4_500, 4_500)
    assert not exchange.housekeeping_due(expire_ns - 1)
    early = market.execute(c.Housekeeping(OPERATOR), at_ns=expire_ns - 1)
    assert early.entries == [] and exchange.orders[order_id].is_open
    market.refuse(c.Housekeeping("admin"), Reason.AUTH_FORBIDDEN, at_ns=expire_ns + 1)
    assert exchange.housekeeping_due(expire_ns + 1)

    outcome = market.execute(c.Housekeeping(OPERATOR), at_ns=expire_ns + 1)

    record = exchange.orders[order_id]
    assert record.status is OrderStatus.CANCELLED and record.cancel_reason == "expired"
    assert exchange.cash_of("ann") == (CASH_MINOR, 0)
    assert outcome.entries == []
    assert not exchange.housekeeping_due(expire_ns + 1)
    assert exchange.engine.open_order_count() == 0


def test_a_gtd_order_that_filled_or_was_cancelled_leaves_no_expiry_due(market: Market) -> None:
    exchange = market.exchange
    expire_ns = market.now_ns + 1_000_000
    filled = market.execute(buy("bob", "b1", PRICE, 2, tif="GTD", expire_ns=expire_ns)).result
    cancelled = market.execute(buy("ann", "a1", 900, 1, tif="GTD", expire_ns=expire_ns)).result
    live = market.execute(buy("ann", "a2", 900, 1, tif="GTD", expire_ns=expire_ns + 5)).result
    assert exchange.housekeeping_due(expire_ns)

    market.execute(sell("prov", "p1", PRICE, 2))
    market.execute(c.CancelOrder("ann", cancelled.order_id))

    assert exchange.orders[filled.order_id].status is OrderStatus.FILLED
    assert not exchange.housekeeping_due(expire_ns + 4)
    assert exchange.housekeeping_due(expire_ns + 5)
    outcome = market.execute(c.Housekeeping(OPERATOR), at_ns=expire_ns + 5)
    assert exchange.orders[live.order_id].cancel_reason == "expired"
    assert outcome.entries == []
    assert exchange.cash_of("ann") == (CASH_MINOR, 0)


def test_gtd_order_without_expiry_or_in_the_past_is_refused(market: Market) -> None:
    market.refuse(buy("ann", "a1", 900, 1, tif="GTD"), Reason.VALIDATION_EXPIRY_REQUIRED)
    market.refuse(buy("ann", "a1", 900, 1, tif="GTD", expire_ns=market.now_ns),
                  Reason.VALIDATION_EXPIRY_IN_PAST)  # fmt: skip
    market.refuse(buy("ann", "a1", 900, 1, expire_ns=market.now_ns + 10**9),
                  Reason.VALIDATION_EXPIRY_WITHOUT_GTD)  # fmt: skip


def test_licence_lapses_at_expiry_after_its_resale_order_is_cancelled(market: Market) -> None:
    exchange = market.exchange
    market.execute(sell("prov", "p1", PRICE, 5))
    market.execute(buy("bob", "b1", PRICE, 5))
    [(_, expires_ns, _, _)] = exchange.holdings_of("bob")
    holding = accounts.licence_holding("bob", SYMBOL, expires_ns)
    resale_id = market.execute(sell("bob", "b2", 1_500, 3)).result.order_id
    assert exchange.holdings_of("bob") == [(SYMBOL, expires_ns, 5, 3)]
    assert not exchange.housekeeping_due(expires_ns - 1)
    early = market.execute(c.Housekeeping(OPERATOR), at_ns=expires_ns - 1)
    assert early.entries == [] and exchange.orders[resale_id].is_open

    outcome = market.execute(c.Housekeeping(OPERATOR), at_ns=expires_ns)

    resale = exchange.orders[resale_id]
    assert resale.status is OrderStatus.CANCELLED and resale.remaining_units == 0
    cancels = [e for e in outcome.events if type(e) is Cancelled]
    assert [(e.order_id, e.quantity) for e in cancels] == [(resale_id, 3)]
    [lapse] = entries_of(EntryKind.LICENCE_EXPIRY, outcome.entries)
    assert lapse.body == {"symbol": SYMBOL, "holder": "bob", "expires_at_ns": expires_ns,
                          "units": 5}  # fmt: skip
    assert exchange.holdings_of("bob") == []
    assert exchange.risk.balances[holding] == 0
    assert exchange.risk.licences_held[holding] == 0
    assert exchange.risk.balances[accounts.licence_expired(SYMBOL)] == 5
    assert exchange.engine.depth(SYMBOL) == ([], [])
    market.refuse(sell("bob", "b3", PRICE, 1), Reason.RISK_INSUFFICIENT_LICENCES)
    assert not exchange.housekeeping_due(expires_ns + 1)


def test_licence_sold_on_before_expiry_lapses_with_its_new_holder(market: Market) -> None:
    market.execute(sell("prov", "p1", PRICE, 4))
    market.execute(buy("bob", "b1", PRICE, 4))
    [(_, expires_ns, _, _)] = market.exchange.holdings_of("bob")
    market.execute(sell("bob", "b2", PRICE, 4))
    market.execute(buy("ann", "a1", PRICE, 4))
    outcome = market.execute(c.Housekeeping(OPERATOR), at_ns=expires_ns + 5)
    # bob's emptied holding lapses with nothing; ann's holding of the same expiry lapses.
    [lapse] = entries_of(EntryKind.LICENCE_EXPIRY, outcome.entries)
    assert (lapse.body["holder"], lapse.body["units"]) == ("ann", 4)
    assert market.exchange.holdings_of("ann") == market.exchange.holdings_of("bob") == []


def test_lapsed_licence_is_not_resold_before_housekeeping(market: Market) -> None:
    market.execute(sell("prov", "p1", PRICE, 5))
    market.execute(buy("bob", "b1", PRICE, 5))
    [(_, expires_ns, _, _)] = market.exchange.holdings_of("bob")
    market.execute(sell("bob", "b2", 1_200, 5))
    # While expiries are due nothing else runs; once housekeeping ran, the offer is gone.
    market.refuse(buy("ann", "a1", 1_200, 5), Reason.VALIDATION_HOUSEKEEPING_DUE,
                  at_ns=expires_ns + 10)  # fmt: skip
    market.execute(c.Housekeeping(OPERATOR), at_ns=expires_ns + 10)
    outcome = market.execute(buy("ann", "a1", 1_200, 5), at_ns=expires_ns + 20)
    assert entries_of(EntryKind.TRADE_SETTLEMENT, outcome.entries) == []


def test_gtd_order_past_its_expiry_does_not_trade(market: Market) -> None:
    expire_ns = market.now_ns + 100
    market.execute(sell("prov", "p1", PRICE, 5, tif="GTD", expire_ns=expire_ns))
    market.refuse(buy("bob", "b1", PRICE, 5), Reason.VALIDATION_HOUSEKEEPING_DUE,
                  at_ns=expire_ns + 1_000)  # fmt: skip
    market.execute(c.Housekeeping(OPERATOR), at_ns=expire_ns + 1_000)
    outcome = market.execute(buy("bob", "b1", PRICE, 5), at_ns=expire_ns + 2_000)
    assert entries_of(EntryKind.TRADE_SETTLEMENT, outcome.entries) == []


def test_sequencer_runs_due_expiries_before_the_next_command(tmp_path: Path) -> None:
    with sequenced(tmp_path) as (sequencer, ledger, clock):
        build_ready_market(sequencer.execute)
        expire_ns = sequencer.exchange.last_ts_ns + 100
        sequencer.execute(sell("prov", "p1", PRICE, 5, tif="GTD", expire_ns=expire_ns))
        clock.now_ns = expire_ns + 1_000
        outcome = sequencer.execute(buy("bob", "b1", PRICE, 5))
        assert outcome.result.filled_units == 0
        verbs = [record.command["verb"] for record in ledger.journal(1, 1_000)]
        assert verbs[-2:] == ["housekeeping", "submit_order"]


# -- durability: the sequencer, the ledger and recovery ------------------------------------


def test_recovery_rebuilds_the_state_after_expiries(tmp_path: Path) -> None:
    with sequenced(tmp_path) as (sequencer, ledger, clock):
        build_ready_market(sequencer.execute)
        sequencer.execute(sell("prov", "p1", PRICE, 6))
        sequencer.execute(buy("bob", "b1", PRICE, 4))
        sequencer.execute(sell("bob", "b2", 1_500, 2))
        expire_ns = sequencer.exchange.last_ts_ns + 50
        sequencer.execute(buy("ann", "a1", 800, 3, tif="GTD", expire_ns=expire_ns))
        clock.now_ns = expire_ns + 1
        sequencer.execute(c.Housekeeping(OPERATOR))
        [(_, licence_expires_ns, _, _)] = sequencer.exchange.holdings_of("bob")
        clock.now_ns = licence_expires_ns
        outcome = sequencer.execute(c.Housekeeping(OPERATOR))
        assert entries_of(EntryKind.LICENCE_EXPIRY, outcome.entries)
    original = sequencer.exchange
    original.check_invariants()
    assert verify(ledger).ok
    assert original.cash_of("ann") == (CASH_MINOR, 0)
    assert original.holdings_of("bob") == []
    assert_same_state(recover(ledger), original)


def test_amend_that_releases_cash_and_then_trades_commits(tmp_path: Path) -> None:
    with sequenced(tmp_path) as (sequencer, _ledger, _clock):
        build_ready_market(sequencer.execute)
        sequencer.execute(sell("prov", "p1", PRICE, 5))
        order_id = sequencer.execute(buy("bob", "b1", 900, 10)).result.order_id
        # 900 x 10 reserved; the amend needs 1,100 x 5 and trades at 1,000.
        outcome = sequencer.execute(c.AmendOrder("bob", order_id, 1_100, 5))
        assert outcome.result.status is OrderStatus.FILLED


def test_amend_that_releases_cash_and_then_trades_settles_in_memory(market: Market) -> None:
    # The same amend on a bare exchange (no ledger): the arithmetic.
    market.execute(sell("prov", "p1", PRICE, 5))
    order_id = market.execute(buy("bob", "b1", 900, 10)).result.order_id
    outcome = market.execute(c.AmendOrder("bob", order_id, 1_100, 5))
    assert outcome.result.status is OrderStatus.FILLED
    assert market.exchange.cash_of("bob") == (CASH_MINOR - 5 * PRICE, 0)


# A command that fails with a bug (not an ExchangeError) must be answered with the error, the
# state rebuilt from the journal, and the next command served. Run in a child process, since
# a sequencer that deadlocks cannot be stopped; exit status 3 means the next command hung.
_BUG_IN_A_COMMAND = """
import logging, os, sys
from concurrent.futures import TimeoutError
from exchange import commands as c
from exchange.sequencer import Sequencer
from ledger.store import Ledger
from tests.exchange.helpers import build_ready_market

logging.disable(logging.CRITICAL)
ledger = Ledger.open(sys.argv[1])
sequencer = Sequencer(ledger, housekeeping=False).start()
build_ready_market(sequencer.execute)

def bug(*arguments):
    raise RuntimeError("a bug in the exchange")

sequencer.exchange._handlers[c.Withdraw] = bug
try:
    sequencer.execute(c.Withdraw("admin", "ann", 1, "out"))
    os._exit(2)
except RuntimeError:
    pass
try:
    sequencer.submit(c.Deposit("admin", "ann", 1, "in")).result(timeout=3)
except TimeoutError:
    os._exit(3)
sequencer.stop()
os._exit(0)
"""


def test_sequencer_serves_the_next_command_after_a_command_fails_with_a_bug(
    tmp_path: Path,
) -> None:
    root = Path(__file__).resolve().parents[2]
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    child = subprocess.run(
        [sys.executable, "-c", _BUG_IN_A_COMMAND, url],
        cwd=root, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert child.returncode == 0, (child.returncode, child.stderr[-2_000:])
