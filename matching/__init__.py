"""A pure, deterministic matching engine for data-product licences.

``Engine.apply(command) -> list[Event]``: integer prices (minor units per licence unit) and
quantities (licence units), no I/O, no clock, no randomness.
"""

from matching.auction import Clearing, clearing_price
from matching.commands import (
    AddInstrument,
    AmendOrder,
    CancelOrder,
    Command,
    Expire,
    SetPhase,
    SubmitOrder,
    Uncross,
)
from matching.engine import Engine
from matching.enums import (
    CancelReason,
    OrderType,
    Phase,
    RejectReason,
    SealedBidPricing,
    SelfTradePrevention,
    Side,
    TimeInForce,
    TradingMode,
)
from matching.events import (
    Accepted,
    Amended,
    AuctionResult,
    BookChanged,
    Cancelled,
    Event,
    InstrumentAdded,
    PhaseChanged,
    Rejected,
    Trade,
    event_to_dict,
    event_values,
)
from matching.instrument import InstrumentSpec


def is_compiled() -> bool:
    """Whether the engine runs as native code compiled by mypyc (see ``setup.py``)."""
    from matching import engine

    return not engine.__file__.endswith(".py")


__all__ = [
    "Accepted",
    "AddInstrument",
    "AmendOrder",
    "Amended",
    "AuctionResult",
    "BookChanged",
    "CancelOrder",
    "CancelReason",
    "Cancelled",
    "Clearing",
    "Command",
    "Engine",
    "Event",
    "Expire",
    "InstrumentAdded",
    "InstrumentSpec",
    "OrderType",
    "Phase",
    "PhaseChanged",
    "RejectReason",
    "Rejected",
    "SealedBidPricing",
    "SelfTradePrevention",
    "SetPhase",
    "Side",
    "SubmitOrder",
    "TimeInForce",
    "Trade",
    "TradingMode",
    "Uncross",
    "clearing_price",
    "event_to_dict",
    "event_values",
    "is_compiled",
]
