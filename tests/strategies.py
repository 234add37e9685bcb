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


# -- exchange service: order flow on one transferable instrument (tests/exchange) ----------
# Steps are plain tuples that the test turns into commands, so this module stays free of the
# exchange's imports. Prices are in ticks (the test multiplies by the tick size); ``pick``
# chooses among the actor's earlier orders, modulo how many it has.

EXCHANGE_PROVIDER = "prov"
EXCHANGE_BUYERS = ("ann", "bob", "cat")


def exchange_submits() -> st.SearchStrategy[tuple]:
    """("submit", actor, side, order_type, price_ticks, quantity_units, tif, expire_after_ns):
    primary sells by the provider, buys and resales by the buyers."""
    tif = st.sampled_from(("GTC", "GTC", "GTC", "IOC", "FOK", "GTD"))
    order_type = st.sampled_from(("limit", "limit", "limit", "limit", "market"))
    price_ticks = st.integers(min_value=8, max_value=12)
    expire_after_ns = st.integers(min_value=1, max_value=40)
    primary = st.tuples(
        st.just("submit"), st.just(EXCHANGE_PROVIDER), st.just("sell"), order_type,
        price_ticks, st.integers(min_value=1, max_value=6), tif, expire_after_ns,
    )  # fmt: skip
    by_buyer = st.tuples(
        st.just("submit"), st.sampled_from(EXCHANGE_BUYERS), st.sampled_from(("buy", "sell")),
        order_type, price_ticks, st.integers(min_value=1, max_value=4), tif, expire_after_ns,
    )  # fmt: skip
    return st.one_of(primary, by_buyer, by_buyer)


def exchange_steps() -> st.SearchStrategy[tuple]:
    """One step of exchange order flow: a submit, or a cancel, amend, identical retry of an
    earlier order, or a wait (the clock moves, then housekeeping is asked for)."""
    actors = st.sampled_from((EXCHANGE_PROVIDER, *EXCHANGE_BUYERS))
    pick = st.integers(min_value=0, max_value=30)
    amend = st.tuples(
        st.just("amend"), actors, pick,
        st.one_of(st.none(), st.integers(min_value=8, max_value=12)),
        st.one_of(st.none(), st.integers(min_value=1, max_value=6)),
    )  # fmt: skip
    return st.one_of(
        exchange_submits(),
        exchange_submits(),
        exchange_submits(),
        st.tuples(st.just("cancel"), actors, pick),
        amend,
        amend,
        st.tuples(st.just("retry"), actors, pick),
        st.tuples(st.just("wait"), st.sampled_from(("short", "short", "half_licence"))),
    )
