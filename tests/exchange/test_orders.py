"""The exchange's order record."""

from __future__ import annotations

from dataclasses import fields

from exchange.orders import OrderRecord, OrderStatus
from matching import OrderType, SelfTradePrevention, Side, TimeInForce


def test_a_copy_has_every_field_and_does_not_follow_the_original() -> None:
    record = OrderRecord(
        7, "c-7", "ann", "SYM", Side.BUY, OrderType.LIMIT, 1_000, 5, TimeInForce.GTD, 99,
        True, SelfTradePrevention.CANCEL_OLDEST, 1, 2, 3, 3_000, 1, "expired",
        OrderStatus.CANCELLED, 1_000, 1_000, "licence:x", 123,
    )  # fmt: skip
    # No field at its default, so a copy that dropped one would differ.
    assert all(getattr(record, f.name) != f.default for f in fields(record))

    copy = record.copy()

    assert copy == record and copy is not record
    record.filled_units += 1
    assert copy.filled_units == 3
