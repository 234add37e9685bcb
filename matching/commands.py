"""Commands: what callers ask of the engine. Each carries its sequence number and time.

Times (``ts``) are integers chosen by the caller (the sequencer uses nanoseconds since the
epoch); the engine never reads a clock. Prices are integer minor units per licence unit,
quantities integer licence units.
"""

from __future__ import annotations

from dataclasses import dataclass

from matching.enums import OrderType, Phase, SelfTradePrevention, Side, TimeInForce
from matching.instrument import InstrumentSpec


@dataclass(frozen=True, slots=True)
class AddInstrument:
    """Open a book for an instrument, starting in ``phase``."""

    seq: int
    ts: int
    spec: InstrumentSpec
    phase: Phase = Phase.PRE_OPEN


@dataclass(frozen=True, slots=True)
class NewOrder:
    """Submit an order.

    For a limit order ``price`` is the limit. For a market order it is the optional
    protection price: the worst price it may trade at. A market buy needs one, unless the
    instrument has a price band, so that it can never spend without bound.
    ``expire_ts`` is required for GTD and refused otherwise.
    """

    seq: int
    ts: int
    order_id: int
    participant: str
    symbol: str
    side: Side
    quantity: int
    price: int | None = None
    order_type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.GTC
    expire_ts: int | None = None
    post_only: bool = False
    stp: SelfTradePrevention = SelfTradePrevention.CANCEL_NEWEST


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel a resting order. Only its owner may; others are told it does not exist."""

    seq: int
    ts: int
    order_id: int
    participant: str


@dataclass(frozen=True, slots=True)
class Amend:
    """Change a resting order's price and/or total quantity (filled part included).

    Lowering the quantity at the same price keeps time priority; a new price or a higher
    quantity loses it, and in continuous trading the order may then trade at once.
    """

    seq: int
    ts: int
    order_id: int
    participant: str
    price: int | None = None
    quantity: int | None = None


@dataclass(frozen=True, slots=True)
class Expire:
    """Cancel every GTD order whose ``expire_ts`` is at or before ``ts``."""

    seq: int
    ts: int


@dataclass(frozen=True, slots=True)
class Uncross:
    """Run the call auction (or close the sealed-bid round) of an instrument now."""

    seq: int
    ts: int
    symbol: str


@dataclass(frozen=True, slots=True)
class SetPhase:
    """Move an instrument to another trading phase.

    Leaving a collecting phase (pre-open, auction) for continuous trading or the close runs
    the uncross first. Closing expires DAY orders. ``cancel_resting`` cancels every resting
    order (reason ``halted``), as when a product is suspended.
    """

    seq: int
    ts: int
    symbol: str
    phase: Phase
    cancel_resting: bool = False


Command = AddInstrument | NewOrder | Cancel | Amend | Expire | Uncross | SetPhase
