"""The Python client's order-entry session and mass quote (exchange/client/_session.py)
against a live server."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from exchange.client import ApiError, AsyncClient, quote
from tests.exchange.client.conftest import Live
from tests.exchange.helpers import SYMBOL

WAIT_S = 5.0


def test_pipelined_requests_are_answered_in_order_with_fills_between(live: Live):
    with live.client("ann") as ann, live.client("prov") as prov, ann.session() as session:
        assert session.opened["participant_id"] == "ann"
        sent = [session.send_new_order(SYMBOL, "buy", 1, f"{90 + i}.00", client_order_id=f"p{i}")
                for i in range(3)]  # fmt: skip
        off_tick = session.send_new_order(SYMBOL, "buy", 1, "90.50", client_order_id="off")
        orders = [session.answer(request_id)["order"] for request_id in sent]
        assert [o["price"] for o in orders] == [Decimal("90.00"), Decimal("91.00"),
                                                Decimal("92.00")]  # fmt: skip
        with pytest.raises(ApiError) as caught:
            session.answer(off_tick)
        assert (caught.value.status, caught.value.reason) == (422, "VALIDATION_PRICE_OFF_TICK")

        prov.submit_order(SYMBOL, "sell", 1, "92.00", client_order_id="hit")
        amended = session.amend_order(orders[0]["order_id"], price=Decimal("89"))
        assert amended["price"] == Decimal("89.00")
        fill = session.next_fill(WAIT_S)
        assert (fill["price"], fill["client_order_id"]) == (Decimal("92.00"), "p2")
        assert not session.fills
        assert [o["client_order_id"] for o in session.cancel_all_orders()] == ["p0", "p1"]


def test_cancel_on_disconnect_leaves_nothing_in_the_book(live: Live):
    with live.client("ann") as ann:
        with ann.session(cancel_on_disconnect=True) as session:
            assert session.opened["cancel_on_disconnect"] is True
            session.submit_order(SYMBOL, "buy", 1, "90.00", client_order_id="cod")
        deadline = time.monotonic() + WAIT_S
        while ann.orders(status="open") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ann.orders(status="open") == []


def test_mass_quote_replaces_quotes_over_rest_and_the_session(live: Live):
    with live.client("prov") as prov:
        first = prov.mass_quote(SYMBOL, [quote("q1-a", "sell", Decimal("110"), 2)])
        assert [o["price"] for o in first["placed"]] == [Decimal("110.00")]
        with prov.session() as session:
            second = session.mass_quote(SYMBOL, [quote("q2-a", "sell", "111.00", 1),
                                                 quote("q2-b", "sell", "112.00", 1)])  # fmt: skip
        assert [o["client_order_id"] for o in second["cancelled"]] == ["q1-a"]
        assert [o["price"] for o in second["placed"]] == [Decimal("111.00"), Decimal("112.00")]


def test_the_async_session(live: Live):
    async def trade() -> None:
        async with (
            AsyncClient(live.url, live.keys["bob"]) as bob,
            bob.session() as session,
        ):
            order = await session.submit_order(SYMBOL, "buy", 1, "95.00", client_order_id="s1")
            assert order["status"] == "open"
            with pytest.raises(ApiError) as caught:
                await session.cancel_order(order["order_id"] + 1000)
            assert caught.value.reason == "VALIDATION_UNKNOWN_ORDER"
            cancelled = await session.cancel_order(order["order_id"])
            assert cancelled["status"] == "cancelled"

    asyncio.run(trade())
