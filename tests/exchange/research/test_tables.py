"""The ``events`` table's rows: each event type's row holds its fields in the right columns,
as plain values (texts, not enum members), and nothing else."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from exchange.research.tables import EVENT_COLUMNS, event_row
from matching import (
    Accepted,
    Amended,
    AuctionResult,
    BookChanged,
    Cancelled,
    InstrumentAdded,
    PhaseChanged,
    Rejected,
    Side,
    Trade,
)
from matching.enums import CancelReason, OrderType, Phase, RejectReason, TimeInForce

SYMBOL = "ZJPARK.NX12"
SEQ, TS_NS, INDEX = 7, 1_700_000_000_000_000_000, 2

EVENTS: list[tuple[Any, dict[str, Any]]] = [
    (InstrumentAdded(SYMBOL, Phase.PRE_OPEN), {"symbol": SYMBOL, "phase": "pre_open"}),
    (
        Accepted(11, "ann", SYMBOL, Side.BUY, OrderType.LIMIT, 500_00, 4, TimeInForce.GTC),
        {"order_id": 11, "participant": "ann", "symbol": SYMBOL, "side": "buy",
         "order_type": "limit", "price_minor": 500_00, "quantity_units": 4, "tif": "GTC"},
    ),
    (
        Rejected(12, SYMBOL, RejectReason.VALIDATION_PRICE_OFF_TICK),
        {"order_id": 12, "symbol": SYMBOL, "reason": "VALIDATION_PRICE_OFF_TICK"},
    ),
    (
        Trade(3, SYMBOL, 500_00, 4, 11, 10, "ann", "prov", Side.BUY, SEQ, TS_NS),
        {"trade_id": 3, "symbol": SYMBOL, "price_minor": 500_00, "quantity_units": 4,
         "buy_order_id": 11, "sell_order_id": 10, "buyer": "ann", "seller": "prov",
         "aggressor": "buy"},
    ),
    (
        Trade(4, SYMBOL, 300_00, 2, 21, 20, "bob", "prov", None, SEQ, TS_NS),
        {"trade_id": 4, "symbol": SYMBOL, "price_minor": 300_00, "quantity_units": 2,
         "buy_order_id": 21, "sell_order_id": 20, "buyer": "bob", "seller": "prov"},
    ),
    (
        Cancelled(11, "ann", SYMBOL, 2, CancelReason.IOC_REMAINDER),
        {"order_id": 11, "participant": "ann", "symbol": SYMBOL, "quantity_units": 2,
         "reason": "ioc_remainder"},
    ),
    (
        Amended(13, "bob", SYMBOL, 480_00, 5, 5, False),
        {"order_id": 13, "participant": "bob", "symbol": SYMBOL, "price_minor": 480_00,
         "quantity_units": 5, "remaining_units": 5, "priority_kept": False},
    ),
    (
        AuctionResult(SYMBOL, 305_00, 5, -1, SEQ, TS_NS),
        {"symbol": SYMBOL, "price_minor": 305_00, "volume_units": 5, "imbalance_units": -1},
    ),
    (PhaseChanged(SYMBOL, Phase.HALTED), {"symbol": SYMBOL, "phase": "halted"}),
    (
        BookChanged(SYMBOL, 490_00, 3, None, 0, ((Side.BUY, 490_00, 3), (Side.SELL, 520_00, 0))),
        {"symbol": SYMBOL, "best_bid_minor": 490_00, "best_bid_units": 3, "best_ask_units": 0,
         "levels": '[["buy",49000,3],["sell",52000,0]]'},
    ),
]  # fmt: skip


@pytest.mark.parametrize(("event", "fields"), EVENTS, ids=lambda x: type(x).__name__)
def test_each_event_types_row_holds_its_fields_in_their_columns(
    event: Any, fields: dict[str, Any]
) -> None:
    row = event_row(SEQ, TS_NS, INDEX, event)
    assert len(row) == len(EVENT_COLUMNS)
    named = dict(zip((column.name for column in EVENT_COLUMNS), row, strict=True))
    expected = {"seq": SEQ, "ts_ns": TS_NS, "event_index": INDEX,
                "event": type(event).__name__, **fields}  # fmt: skip
    assert {name: value for name, value in named.items() if value is not None} == expected
    # Texts are plain str, as every writer and reader expects (not the engine's enums).
    for name, value in named.items():
        assert type(value) in (int, str, bool, type(None)), (name, type(value))
    if "levels" in fields:
        assert orjson.loads(named["levels"])[0] == ["buy", 490_00, 3]


def test_every_event_type_of_the_engine_has_a_row() -> None:
    from matching.events import Event

    assert {type(event) for event, _ in EVENTS} == set(Event.__args__)
