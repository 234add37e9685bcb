"""Cancel-all over HTTP (exchange/api/routes/orders.py, participants.py): ``DELETE
/v1/orders`` for one's own open orders, narrowed by symbol and side, and the admin's kill
switch ``DELETE /v1/participants/{id}/orders``; each one journalled command."""

from __future__ import annotations

from tests.exchange.api.helpers import ADMIN, BUYERS, PROVIDER, SYMBOL, Api, receive_json

ANN, BOB = BUYERS


def test_cancel_all_cancels_ones_open_orders_as_one_command(api: Api):
    api.market()
    bids = [api.placed(ANN, f"bid-{i}", "buy", f"{90 + i}.00", 1)["order_id"] for i in range(3)]
    api.placed(BOB, "bob-bid", "buy", "90.00", 1)
    api.placed(PROVIDER, "ask", "sell", "110.00", 1)
    assert api.balances(ANN)["cash_reserved"] == "273.00"
    seq = api.journal_seq()

    assert api.expect(200, "DELETE", "/v1/orders", ANN, params={"side": "sell"}) == []
    assert api.journal_seq() == seq, "nothing to cancel journals nothing"
    cancelled = api.expect(200, "DELETE", "/v1/orders", ANN,
                           params={"symbol": SYMBOL, "side": "buy"})  # fmt: skip
    assert [(o["order_id"], o["status"], o["cancel_reason"]) for o in cancelled] == [
        (order_id, "cancelled", "user") for order_id in bids
    ]
    assert api.journal_seq() == seq + 1
    assert api.balances(ANN)["cash_reserved"] == "0.00"
    assert api.expect(200, "GET", "/v1/orders", ANN, params={"status": "open"}) == []
    assert len(api.expect(200, "GET", "/v1/orders", BOB, params={"status": "open"})) == 1
    assert api.expect(200, "DELETE", "/v1/orders", ANN) == []


def test_cancel_all_reaches_the_private_stream(api: Api):
    api.market()
    api.placed(ANN, "bid-0", "buy", "90.00", 1)
    api.placed(ANN, "bid-1", "buy", "91.00", 1)
    with api.client.websocket_connect("/v1/ws/private", headers=api.headers(ANN)) as ws:
        assert receive_json(ws)["type"] == "auth"
        api.expect(200, "DELETE", "/v1/orders", ANN)
        messages = [receive_json(ws), receive_json(ws)]
    assert [m["type"] for m in messages] == ["cancelled", "cancelled"]


def test_cancel_all_refuses_what_it_cannot_read(api: Api):
    api.market()
    api.placed(ANN, "bid", "buy", "90.00", 1)
    seq = api.journal_seq()
    unknown = api.expect(422, "DELETE", "/v1/orders", ANN, params={"symbol": "NOPE.NX12"})
    assert unknown["reason"] == "VALIDATION_UNKNOWN_INSTRUMENT"
    assert "side" in api.expect(422, "DELETE", "/v1/orders", ANN, params={"side": "up"})["detail"]
    assert "sid" in api.expect(422, "DELETE", "/v1/orders", ANN, params={"sid": "buy"})["detail"]
    assert api.journal_seq() == seq
    assert len(api.expect(200, "GET", "/v1/orders", ANN, params={"status": "open"})) == 1


def test_kill_switch_cancels_a_participants_orders(api: Api):
    api.market()
    api.placed(ANN, "bid", "buy", "90.00", 1)
    api.placed(PROVIDER, "ask", "sell", "110.00", 1)
    path = f"/v1/participants/{ANN}/orders"
    assert api.expect(403, "DELETE", path, BOB)["reason"] == "AUTH_FORBIDDEN"
    cancelled = api.expect(200, "DELETE", path, ADMIN)
    assert [o["client_order_id"] for o in cancelled] == ["bid"]
    assert api.expect(200, "GET", "/v1/orders/by-client-id/bid", ANN)["status"] == "cancelled"
    assert api.expect(200, "GET", "/v1/orders/by-client-id/ask", PROVIDER)["status"] == "open"
    missing = api.expect(404, "DELETE", "/v1/participants/nobody/orders", ADMIN)
    assert missing["reason"] == "VALIDATION_UNKNOWN_PARTICIPANT"
