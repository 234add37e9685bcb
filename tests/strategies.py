"""Hypothesis strategies shared by the test suite."""

from __future__ import annotations

from hypothesis import strategies as st

from matching import (
    InstrumentSpec,
    OrderType,
    Phase,
    SealedBidPricing,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TradingMode,
)

PARTICIPANTS = ("alice", "bob", "carol")

# Instruments the engine state machine trades: each mode, a grid with tick 5 and lot 2, a band.
INSTRUMENTS = (
    (InstrumentSpec("CONT"), Phase.CONTINUOUS),
    (
        InstrumentSpec(
            "GRID", tick_size=5, lot_size=2, price_band_low=50, price_band_high=150,
            max_order_quantity=40,
        ),
        Phase.PRE_OPEN,
    ),
    (InstrumentSpec("CALL", trading_mode=TradingMode.CALL_AUCTION), Phase.AUCTION),
    (
        InstrumentSpec(
            "SEAL2", trading_mode=TradingMode.SEALED_BID,
            sealed_bid_pricing=SealedBidPricing.SECOND_PRICE,
        ),
        Phase.AUCTION,
    ),
    (InstrumentSpec("SEAL1", trading_mode=TradingMode.SEALED_BID), Phase.AUCTION),
)  # fmt: skip
SYMBOLS = tuple(spec.symbol for spec, _ in INSTRUMENTS)

symbols = st.sampled_from(SYMBOLS)
# Where most orders go: the continuous books, then the auction books.
busy_symbols = st.sampled_from(("CONT", "CONT", "CONT", "GRID", "GRID", "CALL", "SEAL2", "SEAL1"))
participants = st.sampled_from(PARTICIPANTS)
sides = st.sampled_from(Side)
# Mostly valid prices near each other so books cross often; a few invalid ones.
prices = st.one_of(
    st.integers(min_value=90, max_value=110),
    st.sampled_from([50, 95, 100, 105, 150]),
    st.sampled_from([-5, 0, 7, 155, 10**6]),
)
quantities = st.one_of(st.integers(min_value=1, max_value=12), st.sampled_from([-1, 0, 41]))
order_types = st.sampled_from(OrderType)
tifs = st.sampled_from(TimeInForce)
resting_tifs = st.sampled_from(
    (TimeInForce.GTC, TimeInForce.GTC, TimeInForce.DAY, TimeInForce.GTD, TimeInForce.IOC,
     TimeInForce.FOK)
)  # fmt: skip
stps = st.sampled_from(SelfTradePrevention)
phases = st.sampled_from(Phase)
# Phase changes that keep books trading most of the time.
busy_phases = st.sampled_from(
    (
        Phase.CONTINUOUS,
        Phase.CONTINUOUS,
        Phase.CONTINUOUS,
        Phase.AUCTION,
        Phase.AUCTION,
        Phase.PRE_OPEN,
        Phase.HALTED,
        Phase.CLOSED,
    )
)

