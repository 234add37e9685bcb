"""Units at the API's edge (exchange/api/hub.py, views.py): amounts are decimal strings in
currency units and times ISO 8601 UTC, in WebSocket messages as in responses."""

from __future__ import annotations

from datetime import datetime

from tests.exchange.api.helpers import ADMIN, BUYERS, PROVIDER, Api, receive_json

ANN, _ = BUYERS
CALL_SYMBOL = "ZJPARK.CALL"
MAX_MESSAGES = 20  # read at most this many market messages looking for the auction's


def test_auction_message_carries_a_decimal_price_and_an_iso_time(api: Api):
    market = api.market()
    # A continuous-mode instrument in pre-open collects orders until its opening uncross.
    api.list_instrument(market.product_id, CALL_SYMBOL, duration_months=24)
    api.placed(PROVIDER, "ask", "sell", "100.00", 2, symbol=CALL_SYMBOL)
    api.placed(ANN, "bid", "buy", "101.00", 2, symbol=CALL_SYMBOL)
    with api.client.websocket_connect(f"/v1/ws/market/{CALL_SYMBOL}") as ws:
        api.expect(200, "POST", f"/v1/instruments/{CALL_SYMBOL}/uncross", ADMIN)
        for _ in range(MAX_MESSAGES):
            message = receive_json(ws)
            if message["type"] == "auction":
                break
        else:
            raise AssertionError("no auction message")
    assert set(message) == {"type", "seq", "symbol", "price", "volume", "imbalance", "time"}
    assert (message["symbol"], message["volume"], message["imbalance"]) == (CALL_SYMBOL, 2, 0)
    assert message["price"] in ("100.00", "101.00")
    assert datetime.fromisoformat(message["time"]).utcoffset().total_seconds() == 0
