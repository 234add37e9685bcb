"""The Python client (exchange/client) against a live server: uvicorn on a real socket,
httpx and websockets as any program would use them, blocking and asyncio."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from exchange.client import ApiError, AsyncClient, Client, Stream
from exchange.client import _endpoints as endpoints
from tests.exchange.client.conftest import Live
from tests.exchange.helpers import SYMBOL

RECEIVE_TIMEOUT_S = 5.0


def _next_of(stream: Stream, kind: str) -> dict:
    while True:
        message = stream.receive(RECEIVE_TIMEOUT_S)
        if message["type"] == kind:
            return message


def test_orders_amend_cancel_and_account_in_decimals(live: Live):
    with live.client("ann") as ann, live.client("prov") as prov:
        bid = ann.submit_order(SYMBOL, "buy", 2, Decimal("95.00"), client_order_id="b1")
        assert bid["status"] == "open" and bid["price"] == Decimal("95.00")
        assert ann.submit_order(SYMBOL, "buy", 2, "95", client_order_id="b1") == bid, "a retry"
        amended = ann.amend_order(bid["order_id"], price=Decimal("96"))
        assert amended["price"] == Decimal("96.00")
        assert ann.order_by_client_id("b1")["order_id"] == bid["order_id"]

        sold = prov.submit_order(SYMBOL, "sell", 1, Decimal("96.00"), client_order_id="s1")
        assert sold["status"] == "filled" and sold["average_price"] == Decimal("96.00")
        [fill] = ann.fills(symbol=SYMBOL)
        assert (fill["price"], fill["quantity"], fill["liquidity"]) == (Decimal("96.00"), 1,
                                                                         "maker")  # fmt: skip
        assert isinstance(fill["fee"], Decimal)
        balances = ann.balances()
        assert balances["cash_reserved"] == Decimal("96.00")
        assert balances["cash_available"] + balances["cash_reserved"] + 96 + fill["fee"] == (
            Decimal("100000.00")
        )
        assert balances["holdings"][0]["units"] == 1

        cancelled = ann.cancel_order(bid["order_id"])
        assert cancelled["status"] == "cancelled" and cancelled["filled_quantity"] == 1
        ann.submit_order(SYMBOL, "buy", 1, "90.00", client_order_id="b2")
        ann.submit_order(SYMBOL, "buy", 1, "91.00", client_order_id="b3")
        assert [o["client_order_id"] for o in ann.cancel_all_orders(side="buy")] == ["b2", "b3"]
        assert ann.orders(status="open") == []
        assert [o["client_order_id"] for o in ann.orders(limit=2)] == ["b1", "b2"]
        assert ann.me()["participant_id"] == "ann"


def test_market_data_products_and_valuation(live: Live):
    with live.client("prov") as prov, live.client("bob") as bob:
        prov.submit_order(SYMBOL, "sell", 2, "101.00", client_order_id="a1")
        bob.submit_order(SYMBOL, "buy", 1, "101.00", client_order_id="lift")
        bob.submit_order(SYMBOL, "buy", 1, "99.00", client_order_id="bid")
        with Client(live.url) as public:
            book = public.book(SYMBOL)
            assert book["bids"] == [{"price": Decimal("99.00"), "quantity": 1}]
            assert book["asks"] == [{"price": Decimal("101.00"), "quantity": 1}]
            [trade] = public.trades(SYMBOL)
            assert (trade["price"], trade["quantity"]) == (Decimal("101.00"), 1)
            ticker = public.ticker(SYMBOL)
            assert ticker["mid"] == Decimal("100.00") and ticker["last"] == Decimal("101.00")
            [instrument] = public.instruments()
            assert instrument["tick_size"] == Decimal("1.00")
            product = public.product(instrument["product_id"])
            assert isinstance(product["cost_basis"], Decimal)
            assert public.health()["journal_seq"] > 0
        terms = {"exclusivity": "non_exclusive", "duration_months": 12, "scope": "commercial",
                 "territory": "domestic"}  # fmt: skip
        report = bob.valuation(terms, product_id=instrument["product_id"])
        assert isinstance(report["value"], Decimal)


def test_errors_carry_the_apis_reason_and_detail(live: Live):
    with live.client("ann") as ann:
        with pytest.raises(ApiError) as caught:
            ann.submit_order(SYMBOL, "buy", 1, "95.50", client_order_id="off-tick")
        assert caught.value.status == 422
        assert caught.value.reason == "VALIDATION_PRICE_OFF_TICK"
        assert "tick grid" in caught.value.detail
        with pytest.raises(ApiError) as caught:
            ann.cancel_order(999)
        assert (caught.value.status, caught.value.reason) == (404, "VALIDATION_UNKNOWN_ORDER")
        with pytest.raises(ApiError) as caught:
            ann.disable_participant("bob")
        assert (caught.value.status, caught.value.reason) == (403, "AUTH_FORBIDDEN")
        with pytest.raises(TypeError, match="not float"):
            ann.submit_order(SYMBOL, "buy", 1, 95.0, client_order_id="float")  # type: ignore[arg-type]
    with Client(live.url, "dxk_0000000000000000.wrong") as stranger:
        with pytest.raises(ApiError) as caught:
            stranger.balances()
        assert (caught.value.status, caught.value.reason) == (401, "AUTH_INVALID_KEY")
    with Client("http://127.0.0.1:9", timeout_s=1.0) as nowhere:
        with pytest.raises(ApiError) as caught:
            nowhere.health()
        assert caught.value.status is None and caught.value.reason == "CONNECTION"


def test_operators_methods(live: Live):
    with live.client("admin") as admin:
        created = admin.create_participant("carol", "Carol", ["buyer"])
        issued = admin.rotate_api_key("carol")
        assert issued["api_key"] != created["api_key"]
        with Client(live.url, created["api_key"]) as old, pytest.raises(ApiError) as caught:
            old.me()
        assert caught.value.status == 401
        disabled = admin.disable_participant("carol", reason="test")
        assert disabled["status"] == "disabled"
        with Client(live.url, issued["api_key"]) as carol, pytest.raises(ApiError) as caught:
            carol.me()
        assert (caught.value.status, caught.value.reason) == (403, "AUTH_DISABLED")
        assert [p["participant_id"] for p in admin.participants(status="disabled")] == ["carol"]
        assert admin.enable_participant("carol")["status"] == "active"
        assert admin.revoke_api_key("carol", issued["key_id"])["key_id"] is None


def test_confidential_rfq_round_trip(live: Live):
    deadline = datetime.now(UTC) + timedelta(minutes=5)
    with live.client("bob") as bob, live.client("prov") as prov:
        rfq = bob.request_quote(SYMBOL, 2, deadline, responders=["prov"], client_request_id="r1")
        assert rfq["status"] == "open"
        quote = prov.submit_quote(rfq["rfq_id"], Decimal("120.00"))
        assert quote["price"] == Decimal("120.00")
        assert [q["price"] for q in bob.rfq(rfq["rfq_id"])["quotes"]] == [Decimal("120.00")]
        trade = bob.accept_quote(rfq["rfq_id"], quote["quote_id"])
        assert (trade["price"], trade["quantity"], trade["buyer"]) == (Decimal("120.00"), 2,
                                                                       "bob")  # fmt: skip
        assert [t["trade_id"] for t in bob.confidential_trades()] == [trade["trade_id"]]


def test_streams_deliver_a_snapshot_then_book_and_private_events(live: Live):
    with (
        live.client("ann") as ann,
        live.client("prov") as prov,
        ann.market_stream(SYMBOL) as market,
        ann.private_stream() as private,
    ):
        snapshot = market.receive(RECEIVE_TIMEOUT_S)
        assert snapshot["type"] == "snapshot" and snapshot["bids"] == []
        order = ann.submit_order(SYMBOL, "buy", 1, "97.00", client_order_id="w1")
        accepted = _next_of(private, "accepted")
        assert accepted["order_id"] == order["order_id"]
        book = _next_of(market, "book")
        assert book["seq"] > snapshot["seq"]
        assert any(level[1] == Decimal("97.00") for level in book["levels"])
        prov.submit_order(SYMBOL, "sell", 1, "97.00", client_order_id="hit")
        fill = _next_of(private, "fill")
        assert fill["price"] == Decimal("97.00") and isinstance(fill["fee"], Decimal)
        assert _next_of(market, "trade")["price"] == Decimal("97.00")


def test_a_wrong_key_closes_the_private_stream_with_the_servers_reason(live: Live):
    with Client(live.url, "dxk_0000000000000000.wrong") as stranger, \
            pytest.raises(ApiError) as caught:  # fmt: skip
        stranger.private_stream()
    assert caught.value.reason == "CLOSED" and "not valid" in caught.value.detail


def test_the_async_client_does_what_the_blocking_one_does(live: Live):
    async def trade() -> None:
        async with (
            AsyncClient(live.url, live.keys["ann"]) as ann,
            AsyncClient(live.url, live.keys["prov"]) as prov,
            ann.private_stream() as private,
            ann.market_stream(SYMBOL) as market,
        ):
            assert (await market.receive())["type"] == "snapshot"
            bids = await asyncio.gather(*(
                ann.submit_order(SYMBOL, "buy", 1, f"{90 + i}.00", client_order_id=f"a{i}")
                for i in range(3)
            ))  # fmt: skip
            assert sorted(b["price"] for b in bids) == [Decimal(f"{90 + i}.00")
                                                        for i in range(3)]  # fmt: skip
            await prov.submit_order(SYMBOL, "sell", 1, "92.00", client_order_id="x")
            async with asyncio.timeout(RECEIVE_TIMEOUT_S):
                async for message in private:
                    if message["type"] == "fill":
                        assert message["price"] == Decimal("92.00")
                        break
            with pytest.raises(ApiError) as caught:
                await ann.amend_order(bids[0]["order_id"], price="0.5")
            assert caught.value.status == 422
            assert len(await ann.cancel_all_orders()) == 2
            assert (await ann.balances())["cash_reserved"] == Decimal("0.00")

    asyncio.run(trade())


def test_both_clients_offer_every_endpoint():
    names = {name for name, value in vars(endpoints).items()
             if callable(value) and getattr(value, "__module__", "") == endpoints.__name__
             and not name.startswith("_")}  # fmt: skip
    assert names <= set(vars(Client)), names - set(vars(Client))
    assert names <= set(vars(AsyncClient)), names - set(vars(AsyncClient))
