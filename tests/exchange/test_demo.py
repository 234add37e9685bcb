"""The demo market: built through the exchange's own commands, and kept trading."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchange.catalogue import ProductStatus
from exchange.demo import (
    AUCTION_SYMBOL,
    CONTINUOUS_SYMBOL,
    BackgroundTraders,
    facility_party_keys,
    seed_demo,
)
from exchange.facility import FacilityStatus
from exchange.recovery import recover
from exchange.sequencer import Sequencer
from ledger.database import dispose_engines
from ledger.store import Ledger
from ledger.verify import verify
from matching import Phase


@pytest.fixture
def sequencer(tmp_path: Path) -> Iterator[Sequencer]:
    sequencer = Sequencer(Ledger.open(f"sqlite:///{tmp_path / 'demo.db'}")).start()
    yield sequencer
    sequencer.stop()
    dispose_engines()


def test_demo_lists_each_trading_mode_and_refuses_core_data(sequencer: Sequencer) -> None:
    guest = seed_demo(sequencer)
    exchange = sequencer.exchange
    modes = {instrument.trading_mode for instrument in exchange.instruments.values()}
    assert modes == {"continuous", "call_auction", "sealed_bid"}
    statuses = sorted(product.status for product in exchange.products.values())
    assert statuses.count(ProductStatus.APPROVED) == 3
    assert ProductStatus.REJECTED in statuses  # the core-data product
    assert exchange.engine.phase(CONTINUOUS_SYMBOL) is Phase.CONTINUOUS
    assert exchange.cash_of(guest.participant_id)[0] > 0


def test_demo_has_a_live_facility_against_the_parking_operators_licences(
    sequencer: Sequencer,
) -> None:
    seed_demo(sequencer)
    (facility,) = sequencer.exchange.collateral.facilities.values()
    assert (facility.lender, facility.borrower) == ("hz-bank", "hz-parking")
    assert facility.status is FacilityStatus.ACTIVE
    (pledge,) = facility.pledges.values()
    assert pledge.symbol == CONTINUOUS_SYMBOL and pledge.expires_ns is None  # unsold issuance
    assert facility.debt_minor > 0
    assert 0 < facility.ltv_bp <= facility.initial_ltv_bp  # type: ignore[operator]
    assert sequencer.exchange.collateral.valuations[CONTINUOUS_SYMBOL].method == "cost"


def test_each_start_issues_fresh_keys_for_the_facilitys_two_sides(sequencer: Sequencer) -> None:
    """The lender's and the borrower's keys are shown once a start: each authenticates as its
    participant until the next start's replace it."""
    seed_demo(sequencer)
    participants = sequencer.exchange.participants

    def holder(key: str) -> str | None:
        key_id, secret = key.split(".", 1)
        found = participants.authenticate(key_id, secret)
        return None if found is None else found.participant_id

    first = facility_party_keys(sequencer)
    assert {party: holder(key) for party, key in first.items()} == {
        "hz-bank": "hz-bank",
        "hz-parking": "hz-parking",
    }
    second = facility_party_keys(sequencer)
    assert all(holder(second[party]) == party for party in second)
    assert all(holder(key) is None for key in first.values())


def test_seeding_twice_adds_only_a_guest(sequencer: Sequencer) -> None:
    first = seed_demo(sequencer)
    instruments = dict(sequencer.exchange.instruments)
    second = seed_demo(sequencer)
    assert first.participant_id != second.participant_id
    assert sequencer.exchange.instruments.keys() == instruments.keys()


def test_background_traders_trade_and_the_ledger_verifies(sequencer: Sequencer) -> None:
    seed_demo(sequencer)
    traders = BackgroundTraders(sequencer, interval_s=0.005)
    traders.AUCTION_EVERY_S = 0.2
    traders.REVALUE_EVERY_S = 0.2
    traders.start()
    deadline = time.monotonic() + 10
    market = sequencer.exchange.market_data
    valuations = sequencer.exchange.collateral.valuations
    while time.monotonic() < deadline and not (
        market.tickers[CONTINUOUS_SYMBOL].trade_count
        and market.tickers[AUCTION_SYMBOL].trade_count
        and valuations[CONTINUOUS_SYMBOL].method == "tape_vwap"
    ):
        time.sleep(0.05)
    traders.stop()
    assert market.tickers[CONTINUOUS_SYMBOL].trade_count > 0
    assert market.tickers[AUCTION_SYMBOL].trade_count > 0
    with sequencer.lock:
        sequencer.exchange.check_invariants()
        state = sequencer.exchange.engine.state_hash()
        (facility,) = sequencer.exchange.collateral.facilities.values()
        drawn = next(mark for mark in facility.marks if mark.debt_minor)
        revalued = [mark for mark in facility.marks if mark.cause == "valuation"]
    assert verify(sequencer.ledger).ok
    assert recover(sequencer.ledger).engine.state_hash() == state
    # Revalued from its tape, the pledge is marked at the market: the LTV moved.
    assert revalued and revalued[-1].ltv_bp != drawn.ltv_bp
