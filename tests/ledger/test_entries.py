from __future__ import annotations

from collections import defaultdict

import pytest

from ledger import EntryError, accounts, entries
from tests.ledger.helpers import EXPIRES_AT_NS, PROVIDER, SYMBOL, trade


def sums_by_asset(entry: entries.Entry) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for _, asset, amount in entry.postings:
        totals[asset] += amount
    return dict(totals)


BUILT = [
    entries.deposit("ann", 100, key="d", ts_ns=1),
    entries.withdrawal("ann", 100, key="w", ts_ns=1),
    trade(1),
    trade(2, buyer="bob", seller="ann", primary=False),
    trade(3, fee_minor=0),
    entries.licence_issuance(
        symbol=SYMBOL, provider=PROVIDER, units=5, issuance_cap_units=10, key="i", ts_ns=1
    ),
    entries.licence_expiry(symbol=SYMBOL, holder="ann", expires_at_ns=5, units=2, key="x", ts_ns=5),
    entries.compliance_decision(
        product_id="prod-1",
        reviewer="rev",
        decision=entries.ComplianceDecision.APPROVED,
        checks={"classification": True, "desensitised": True},
        opinion="fine",
        key="c",
        ts_ns=1,
    ),
]


@pytest.mark.parametrize("entry", BUILT, ids=lambda e: e.kind.value)
def test_every_builder_makes_a_balanced_well_formed_entry(entry: entries.Entry) -> None:
    entry.check()
    assert all(total == 0 for total in sums_by_asset(entry).values())


def test_trade_moves_cash_to_seller_less_fee_and_licences_to_buyer() -> None:
    settled = trade(9, price_minor_per_unit=250, quantity_units=2, fee_minor=5)
    assert settled.key == "trade:9"
    assert set(settled.postings) == {
        entries.Posting(accounts.cash("ann"), "cash", -500),
        entries.Posting(accounts.cash(PROVIDER), "cash", 495),
        entries.Posting(accounts.EXCHANGE_FEES, "cash", 5),
        entries.Posting(accounts.issuance(SYMBOL), f"licence:{SYMBOL}", -2),
        entries.Posting(
            accounts.licence_holding("ann", SYMBOL, EXPIRES_AT_NS), f"licence:{SYMBOL}", 2
        ),
    }


def test_resale_takes_licences_from_the_sellers_holding_with_the_same_expiry() -> None:
    settled = trade(4, buyer="bob", seller="ann", primary=False)
    licence_postings = {p.account: p.amount_units for p in settled.postings if p.asset != "cash"}
    assert licence_postings == {
        accounts.licence_holding("ann", SYMBOL, EXPIRES_AT_NS): -2,
        accounts.licence_holding("bob", SYMBOL, EXPIRES_AT_NS): 2,
    }


def test_compliance_decision_moves_nothing_but_records_the_decision() -> None:
    decision = BUILT[-1]
    assert decision.postings == ()
    assert decision.body["decision"] == "approved"


@pytest.mark.parametrize(
    "make",
    [
        lambda: entries.deposit("ann", 0, key="d", ts_ns=1),
        lambda: entries.deposit("ann", -5, key="d", ts_ns=1),
        lambda: entries.deposit("a:b", 5, key="d", ts_ns=1),
        lambda: trade(1, fee_minor=501),
        lambda: trade(1, buyer=PROVIDER),
        lambda: entries.licence_issuance(
            symbol=SYMBOL, provider=PROVIDER, units=11, issuance_cap_units=10, key="i", ts_ns=1
        ),
        lambda: entries.licence_expiry(
            symbol=SYMBOL, holder="ann", expires_at_ns=50, units=1, key="x", ts_ns=49
        ),
    ],
)
def test_builders_refuse_impossible_entries(make) -> None:
    with pytest.raises(EntryError):
        make()


@pytest.mark.parametrize(
    "postings",
    [
        (entries.Posting("external:cash", "cash", -5), entries.Posting("exchange:fees", "cash", 4)),
        (
            entries.Posting("participant:ann:cash", f"licence:{SYMBOL}", -5),
            entries.Posting(accounts.issuance(SYMBOL), f"licence:{SYMBOL}", 5),
        ),
        (entries.Posting("nowhere", "cash", -5), entries.Posting("exchange:fees", "cash", 5)),
        (entries.Posting("external:cash", "cash", 0),),
    ],
    ids=["unbalanced", "wrong-asset", "unknown-account", "zero"],
)
def test_check_refuses_hand_made_bad_postings(postings: tuple[entries.Posting, ...]) -> None:
    with pytest.raises(EntryError):
        entries.Entry(entries.EntryKind.DEPOSIT, "k", 1, {}, postings).check()
