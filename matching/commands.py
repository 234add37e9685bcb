"""Commands: what callers ask of the engine. Each carries its sequence number and time.

The engine and the exchange (``exchange.commands``) share one vocabulary: the same command
names (``SubmitOrder``, ``CancelOrder``, ``AmendOrder``, ``SetPhase``, ``Uncross``) and the same
field names, which carry their unit: prices in ``price_minor`` (integer minor units per
licence unit), quantities in ``quantity_units`` (integer licence units).

Time is the exception, on purpose. ``ts`` and ``expire_ts`` are integers in the caller's
unit: the engine only compares them (an expiry with a command's time) and copies them into
its events; it never reads a clock, so it has no need to know the unit. The exchange passes
nanoseconds since the epoch (its ``ts_ns`` and ``expire_ns``); the order-flow files of
``dataex match`` may count in any unit (``docs/order-flow-format.md``), so a ``_ns`` suffix
here would be false for them.

Commands are built like events (see ``matching.events``): read-only fields and a
written-out ``__init__``, which is native code when compiled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from matching.enums import OrderType, Phase, SelfTradePrevention, Side, TimeInForce
from matching.instrument import InstrumentSpec


@dataclass(init=False, slots=True, unsafe_hash=True)
class AddInstrument:
    """Open a book for an instrument, starting in ``phase``."""

    seq: Final[int]
    ts: Final[int]
    spec: Final[InstrumentSpec]
    phase: Final[Phase]

    def __init__(
        self, seq: int, ts: int, spec: InstrumentSpec, phase: Phase = Phase.PRE_OPEN
    ) -> None:
        self.seq = seq
        self.ts = ts
        self.spec = spec
        self.phase = phase


@dataclass(init=False, slots=True, unsafe_hash=True)
class SubmitOrder:
    """Submit an order.

    For a limit order ``price_minor`` is the limit. For a market order it is the optional
    protection price: the worst price it may trade at. A market buy needs one, unless the
    instrument has a price band, so that it can never spend without bound.
    ``expire_ts`` is required for GTD and refused otherwise.
    """

    seq: Final[int]
    ts: Final[int]
    order_id: Final[int]
    participant: Final[str]
    symbol: Final[str]
    side: Final[Side]
    quantity_units: Final[int]
    price_minor: Final[int | None]
    order_type: Final[OrderType]
    tif: Final[TimeInForce]
    expire_ts: Final[int | None]
    post_only: Final[bool]
    stp: Final[SelfTradePrevention]

    def __init__(
        self,
        seq: int,
        ts: int,
        order_id: int,
        participant: str,
        symbol: str,
        side: Side,
        quantity_units: int,
        price_minor: int | None = None,
        order_type: OrderType = OrderType.LIMIT,
        tif: TimeInForce = TimeInForce.GTC,
        expire_ts: int | None = None,
        post_only: bool = False,
        stp: SelfTradePrevention = SelfTradePrevention.CANCEL_NEWEST,
    ) -> None:
        self.seq = seq
        self.ts = ts
        self.order_id = order_id
        self.participant = participant
        self.symbol = symbol
        self.side = side
        self.quantity_units = quantity_units
        self.price_minor = price_minor
        self.order_type = order_type
        self.tif = tif
        self.expire_ts = expire_ts
        self.post_only = post_only
        self.stp = stp


@dataclass(init=False, slots=True, unsafe_hash=True)
class CancelOrder:
    """Cancel a resting order. Only its owner may; others are told it does not exist."""

    seq: Final[int]
    ts: Final[int]
    order_id: Final[int]
    participant: Final[str]

    def __init__(self, seq: int, ts: int, order_id: int, participant: str) -> None:
        self.seq = seq
        self.ts = ts
        self.order_id = order_id
        self.participant = participant


@dataclass(init=False, slots=True, unsafe_hash=True)
class AmendOrder:
    """Change a resting order's price and/or total quantity (filled part included).

    Lowering the quantity at the same price keeps time priority; a new price or a higher
    quantity loses it, and in continuous trading the order may then trade at once.
    """

    seq: Final[int]
    ts: Final[int]
    order_id: Final[int]
    participant: Final[str]
    price_minor: Final[int | None]
    quantity_units: Final[int | None]

    def __init__(
        self,
        seq: int,
        ts: int,
        order_id: int,
        participant: str,
        price_minor: int | None = None,
        quantity_units: int | None = None,
    ) -> None:
        self.seq = seq
        self.ts = ts
        self.order_id = order_id
        self.participant = participant
        self.price_minor = price_minor
        self.quantity_units = quantity_units


@dataclass(init=False, slots=True, unsafe_hash=True)
class Expire:
    """Cancel every GTD order whose ``expire_ts`` is at or before ``ts``."""

    seq: Final[int]
    ts: Final[int]

    def __init__(self, seq: int, ts: int) -> None:
        self.seq = seq
        self.ts = ts


@dataclass(init=False, slots=True, unsafe_hash=True)
class Uncross:
    """Run the call auction (or close the sealed-bid round) of an instrument now."""

    seq: Final[int]
    ts: Final[int]
    symbol: Final[str]

    def __init__(self, seq: int, ts: int, symbol: str) -> None:
        self.seq = seq
        self.ts = ts
        self.symbol = symbol


@dataclass(init=False, slots=True, unsafe_hash=True)
class SetPhase:
    """Move an instrument to another trading phase.

    Leaving a collecting phase (pre-open, auction) for continuous trading or the close runs
    the uncross first. Closing expires DAY orders. ``cancel_resting`` cancels every resting
    order (reason ``halted``), as when a product is suspended.
    """

    seq: Final[int]
    ts: Final[int]
    symbol: Final[str]
    phase: Final[Phase]
    cancel_resting: Final[bool]

    def __init__(
        self, seq: int, ts: int, symbol: str, phase: Phase, cancel_resting: bool = False
    ) -> None:
        self.seq = seq
        self.ts = ts
        self.symbol = symbol
        self.phase = phase
        self.cancel_resting = cancel_resting


Command = AddInstrument | SubmitOrder | CancelOrder | AmendOrder | Expire | Uncross | SetPhase
