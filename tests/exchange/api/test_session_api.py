"""The order-entry session, ``/v1/ws/session``: authentication and options, every request and
its acknowledgement, every kind of rejection, pipelining, the drop copy, the limits, and
cancel on disconnect."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from exchange.api.ratelimit import RateLimiter
from exchange.api.routes import session as session_module
from exchange.api.routes.session import MAX_MESSAGE_CHARS, MAX_SESSIONS_PER_PARTICIPANT
from tests.exchange.api.helpers import (
    ADMIN,
    BUYERS,
    MARKET_MAKER,
    PROVIDER,
    REVIEWER,
    SYMBOL,
    Api,
    receive_json,
)

ANN, BOB = BUYERS
PATH = "/v1/ws/session"


def _new_order(request_id: Any, client_order_id: str, side: str, price: str | None,
               quantity: int, **overrides: Any) -> dict[str, Any]:  # fmt: skip
    return {"type": "new_order", "request_id": request_id, "client_order_id": client_order_id,
            "symbol": SYMBOL, "side": side, "price": price, "quantity": quantity,
            **overrides}  # fmt: skip


def _open(api: Api, who: str, **options: Any) -> Any:
    """A session of ``who`` authenticated by header (its context manager)."""
    query = "".join(f"?{name}={str(value).lower()}" for name, value in options.items())
    return api.client.websocket_connect(PATH + query, headers=api.headers(who))


def _greeting(websocket: WebSocketTestSession, who: str, cancel: bool = False) -> None:
    greeting = receive_json(websocket)
    assert greeting == {
        "type": "session", "participant_id": who, "cancel_on_disconnect": cancel,
        "max_in_flight": session_module.MAX_IN_FLIGHT, "max_message_chars": MAX_MESSAGE_CHARS,
    }  # fmt: skip


def _send(websocket: WebSocketTestSession, message: dict[str, Any]) -> None:
    websocket.send_text(json.dumps(message))


def _answer(websocket: WebSocketTestSession) -> dict[str, Any]:
    """The next answer (ack or reject), skipping fills."""
    for _ in range(50):
        message = receive_json(websocket)
        if message["type"] in ("ack", "reject"):
            return message  # type: ignore[no-any-return]
    raise AssertionError("no answer")


def _request(websocket: WebSocketTestSession, message: dict[str, Any]) -> dict[str, Any]:
    _send(websocket, message)
    return _answer(websocket)


def _rejected(answer: dict[str, Any], request_id: Any, status: int, reason: str,
              words: str = "") -> None:  # fmt: skip
    assert answer["type"] == "reject", answer
    assert (answer["request_id"], answer["status"], answer["reason"]) == (
        request_id, status, reason), answer  # fmt: skip
    assert words in answer["detail"], answer


def _open_orders(api: Api, who: str) -> list[dict[str, Any]]:
    return api.expect(200, "GET", "/v1/orders?status=open", who)  # type: ignore[no-any-return]


# -- authentication and options -------------------------------------------------------------


def test_session_authenticates_by_header_and_says_its_limits(api: Api):
    api.market()
    with _open(api, ANN) as websocket:
        _greeting(websocket, ANN)


def test_session_authenticates_by_first_message_with_its_option(api: Api):
    api.market()
    with api.client.websocket_connect(PATH) as websocket:
        _send(websocket, {"type": "auth", "api_key": api.keys[ANN], "cancel_on_disconnect": True})
        _greeting(websocket, ANN, cancel=True)


@pytest.mark.parametrize("query, first, words", [
    ("?api_key=dxk_x", None, "never in the URL"),
    ("", {"type": "auth", "api_key": "dxk_wrong"}, "not valid"),
    ("", {"type": "auth", "api_key": "x", "speed": "fast"}, "cancel_on_disconnect"),
    ("", {"type": "new_order"}, "the first message must be"),
])  # fmt: skip
def test_session_refuses_a_bad_authentication_with_the_reason(
    api: Api, query: str, first: dict[str, Any] | None, words: str
):
    api.market()
    with api.client.websocket_connect(PATH + query) as websocket:
        if first is not None:
            _send(websocket, first)
        with pytest.raises(WebSocketDisconnect) as refused:
            receive_json(websocket)
    assert refused.value.code == 1008 and words in refused.value.reason


def test_session_refuses_a_bad_option_and_a_participant_who_does_not_trade(api: Api):
    api.market()
    with _open(api, ANN, cancel_on_disconnect="maybe") as websocket, pytest.raises(
        WebSocketDisconnect
    ) as refused:
        receive_json(websocket)
    assert refused.value.code == 1008 and "cancel_on_disconnect" in refused.value.reason
    with _open(api, REVIEWER) as websocket, pytest.raises(WebSocketDisconnect) as refused:
        receive_json(websocket)
    assert refused.value.code == 1008 and "roles" in refused.value.reason


def test_sessions_per_participant_are_bounded(api: Api):
    api.market()
    opened = [_open(api, ANN) for _ in range(MAX_SESSIONS_PER_PARTICIPANT + 1)]
    sockets = [connection.__enter__() for connection in opened[:-1]]
    try:
        for websocket in sockets:
            _greeting(websocket, ANN)
        with opened[-1] as extra, pytest.raises(WebSocketDisconnect) as refused:
            receive_json(extra)
        assert refused.value.code == 1013 and "sessions" in refused.value.reason
        with _open(api, BOB) as other:  # another participant is not affected
            _greeting(other, BOB)
    finally:
        for connection in opened[:-1]:
            connection.__exit__(None, None, None)
    with _open(api, ANN) as again:  # the closed sessions no longer count
        _greeting(again, ANN)


# -- requests and their acknowledgements -----------------------------------------------------


def test_new_order_is_acknowledged_as_journalled_with_the_order_as_rest_shows_it(api: Api):
    api.market()
    with _open(api, ANN) as websocket:
        _greeting(websocket, ANN)
        seq = api.journal_seq()
        ack = _request(websocket, _new_order(7, "s-1", "buy", "90.00", 2))
    assert ack["type"] == "ack" and ack["request_id"] == 7 and ack["request"] == "new_order"
    assert api.journal_seq() == seq + 1
    order = ack["order"]
    assert order == api.expect(200, "GET", f"/v1/orders/{order['order_id']}", ANN)
    assert (order["client_order_id"], order["price"], order["remaining_quantity"]) == (
        "s-1", "90.00", 2)  # fmt: skip


def test_cancel_amend_and_cancel_all_are_acknowledged(api: Api):
    api.market()
    with _open(api, ANN) as websocket:
        _greeting(websocket, ANN)
        first = _request(websocket, _new_order("a", "s-1", "buy", "90.00", 2))["order"]
        second = _request(websocket, _new_order("b", "s-2", "buy", "80.00", 2))["order"]
        third = _request(websocket, _new_order("c", "s-3", "buy", "70.00", 2))["order"]
        amend = {"type": "amend", "request_id": "d", "order_id": first["order_id"],
                 "price": "91.00"}  # fmt: skip
        amended = _request(websocket, amend)
        assert amended["request"] == "amend" and amended["order"]["price"] == "91.00"
        cancelled = _request(websocket, {"type": "cancel", "request_id": "e",
                                         "order_id": second["order_id"]})  # fmt: skip
        assert cancelled["order"]["status"] == "cancelled"
        everything = _request(websocket, {"type": "cancel_all", "request_id": "f",
                                          "symbol": SYMBOL, "side": "buy"})  # fmt: skip
    assert everything["request"] == "cancel_all"
    assert [o["order_id"] for o in everything["orders"]] == [first["order_id"], third["order_id"]]
    assert all(o["status"] == "cancelled" for o in everything["orders"])
    assert _open_orders(api, ANN) == []


def test_a_retried_new_order_answers_the_original_and_other_content_is_a_conflict(api: Api):
    api.market()
    with _open(api, ANN) as websocket:
        _greeting(websocket, ANN)
        first = _request(websocket, _new_order(1, "same", "buy", "90.00", 2))
        seq = api.journal_seq()
        again = _request(websocket, _new_order(2, "same", "buy", "90.00", 2))
        assert again["order"] == first["order"] and api.journal_seq() == seq
        _rejected(_request(websocket, _new_order(3, "same", "buy", "91.00", 2)), 3, 409,
                  "VALIDATION_IDEMPOTENCY_CONFLICT")  # fmt: skip
    # REST sees the same idempotency record.
    response = api.order(ANN, "same", "buy", "90.00", 2)
    assert response.status_code == 201 and response.json() == first["order"]


# -- rejections ------------------------------------------------------------------------------


@pytest.mark.parametrize("message, request_id, status, reason, words", [
    ("not json", None, 422, "VALIDATION_INVALID", "not JSON"),
    ('{"type": "cancel", "type": "cancel"}', None, 400, "VALIDATION_DUPLICATE_KEY", "'type'"),
    ('[1, 2]', None, 422, "VALIDATION_INVALID", "a JSON object"),
    ("[" * 10_000, None, 422, "VALIDATION_INVALID", "not JSON"),
    ('{"type": "buy", "request_id": 4}', 4, 422, "VALIDATION_INVALID", "type must be one of"),
    ('{"request_id": 4}', 4, 422, "VALIDATION_INVALID", "type must be one of"),
    ('{"type": "cancel", "order_id": 1}', None, 422, "VALIDATION_INVALID", "request_id"),
    ('{"type": "cancel", "request_id": -1, "order_id": 1}', None, 422, "VALIDATION_INVALID",
     "request_id"),
    ('{"type": "cancel", "request_id": 5, "order_id": "1"}', 5, 422, "VALIDATION_INVALID",
     "order_id"),
    ('{"type": "cancel", "request_id": 5, "order_id": 1, "x": 1}', 5, 422, "VALIDATION_INVALID",
     "x: Extra inputs"),
    ('{"type": "new_order", "request_id": "n", "client_order_id": "c", "symbol": "ZJPARK.NX12",'
     ' "side": "buy", "price": "1.5x", "quantity": 1}', "n", 422, "VALIDATION_INVALID", "price"),
    ('{"type": "new_order", "request_id": "n", "client_order_id": "c", "symbol": "ZJPARK.NX12",'
     ' "side": "buy", "price": "1.555", "quantity": 1}', "n", 422, "VALIDATION_INVALID",
     "price"),
    ('{"type": "amend", "request_id": "m", "order_id": 999}', "m", 404,
     "VALIDATION_UNKNOWN_ORDER", "no order 999"),
    ('{"type": "cancel", "request_id": "k", "order_id": 999}', "k", 404,
     "VALIDATION_UNKNOWN_ORDER", "no order 999"),
    ('{"type": "cancel_all", "request_id": "z", "symbol": "NOPE"}', "z", 422,
     "VALIDATION_UNKNOWN_INSTRUMENT", "NOPE"),
])  # fmt: skip
def test_a_malformed_or_refused_request_is_rejected_in_the_rest_shape_and_the_session_lives(
    api: Api, message: str, request_id: Any, status: int, reason: str, words: str
):
    api.market()
    with _open(api, ANN) as websocket:
        _greeting(websocket, ANN)
        seq = api.journal_seq()
        websocket.send_text(message)
        _rejected(_answer(websocket), request_id, status, reason, words)
        assert api.journal_seq() == seq
        # The session carries on.
        assert _request(websocket, _new_order("ok", "after", "buy", "90.00", 1))["type"] == "ack"


def test_a_binary_or_oversized_message_is_rejected(api: Api):
    api.market()
    with _open(api, ANN) as websocket:
        _greeting(websocket, ANN)
        websocket.send_bytes(b'{"type": "cancel"}')
        _rejected(_answer(websocket), None, 422, "VALIDATION_INVALID", "text messages")
        websocket.send_text(" " * (MAX_MESSAGE_CHARS + 1))
        _rejected(_answer(websocket), None, 413, "VALIDATION_BODY_TOO_LARGE", "limit")


def test_exchange_refusals_are_rejects_with_the_rest_status(api: Api):
    api.market()
    with _open(api, ANN) as websocket:
        _greeting(websocket, ANN)
        off_tick = _request(websocket, _new_order(1, "t", "buy", "90.50", 1))
        _rejected(off_tick, 1, 422, "VALIDATION_PRICE_OFF_TICK", "tick grid")
        too_much = _request(websocket, _new_order(2, "r", "buy", "99999.00", 100))
        _rejected(too_much, 2, 422, "RISK_INSUFFICIENT_CASH")
        unknown = _request(websocket, _new_order(3, "u", "buy", "90.00", 1, symbol="NOPE.X"))
        _rejected(unknown, 3, 422, "VALIDATION_UNKNOWN_INSTRUMENT")
    # The same request over REST gets the same answer.
    response = api.order(ANN, "t2", "buy", "90.50", 1)
    assert (response.status_code, response.json()["reason"]) == (422, off_tick["reason"])


def test_requests_over_the_rate_limit_are_rejected_with_429(api: Api):
    api.market()
    # A slow limit from here on: a burst of 4, refilled at one request a minute.
    api.app.state.runtime.limiter = RateLimiter(1 / 60, 4)
    with _open(api, ANN) as websocket:  # connecting takes one request
        _greeting(websocket, ANN)
        answers = [_request(websocket, _new_order(i, f"rl-{i}", "buy", "90.00", 1))
                   for i in range(4)]  # fmt: skip
        # A mass quote weighs five requests: refused where an order would have been too.
        quote = _request(websocket, {"type": "mass_quote", "request_id": "q", "symbol": SYMBOL,
                                     "quotes": []})  # fmt: skip
    assert [a["type"] for a in answers] == ["ack", "ack", "ack", "reject"]
    _rejected(answers[3], 3, 429, "RATE_LIMITED", "slow down")
    assert answers[3]["retry_after_s"] > 0
    _rejected(quote, "q", 429, "RATE_LIMITED")
    # REST shares the bucket.
    response = api.order(ANN, "rl-rest", "buy", "90.00", 1)
    assert response.status_code == 429


# -- pipelining and the drop copy ------------------------------------------------------------


def test_pipelined_requests_are_answered_in_order(api: Api):
    api.market()
    count = 60
    with _open(api, ANN) as websocket:
        _greeting(websocket, ANN)
        for index in range(count):
            # Every seventh is refused by the exchange (off the tick grid), the rest rest.
            price = "90.50" if index % 7 == 3 else f"{50 + index % 20}.00"
            _send(websocket, _new_order(index, f"p-{index}", "buy", price, 1))
        answers = [_answer(websocket) for _ in range(count)]
    assert [a["request_id"] for a in answers] == list(range(count))
    for index, answer in enumerate(answers):
        assert answer["type"] == ("reject" if index % 7 == 3 else "ack"), answer
    ids = [a["order"]["order_id"] for a in answers if a["type"] == "ack"]
    assert ids == sorted(ids), "the requests took effect in the order they were sent"
    assert len(_open_orders(api, ANN)) == len(ids)


def test_a_full_pipeline_waits_for_answers_and_loses_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
):
    """With 2 requests in flight at most, 30 pipelined ones are all answered, in order: the
    session stops reading while its answers are due, and reads on once they are sent."""
    monkeypatch.setattr(session_module, "MAX_IN_FLIGHT", 2)
    api.market()
    with _open(api, ANN) as websocket:
        assert receive_json(websocket)["max_in_flight"] == 2
        for index in range(30):
            _send(websocket, _new_order(index, f"w-{index}", "buy", "60.00", 1))
        answers = [_answer(websocket) for _ in range(30)]
    assert [(a["type"], a["request_id"]) for a in answers] == [("ack", i) for i in range(30)]


def test_fills_arrive_as_a_drop_copy_with_their_order_and_fee(api: Api):
    api.market()
    with _open(api, PROVIDER) as seller, _open(api, ANN) as buyer:
        _greeting(seller, PROVIDER)
        _greeting(buyer, ANN)
        resting = _request(seller, _new_order("s", "ask-1", "sell", "100.00", 3))["order"]
        ack = _request(buyer, _new_order("b", "lift-1", "buy", "100.00", 2))
        assert ack["order"]["filled_quantity"] == 2
        buyer_fill = receive_json(buyer)
        seller_fill = receive_json(seller)
    assert buyer_fill == {
        "type": "fill", "seq": buyer_fill["seq"], "side": "buy",
        "order_id": ack["order"]["order_id"], "client_order_id": "lift-1",
        "trade_id": buyer_fill["trade_id"], "symbol": SYMBOL, "price": "100.00", "quantity": 2,
        "fee": "0.00", "liquidity": "taker", "remaining_quantity": 0,
        "time": buyer_fill["time"],
    }  # fmt: skip
    assert (seller_fill["order_id"], seller_fill["client_order_id"], seller_fill["liquidity"],
            seller_fill["remaining_quantity"], seller_fill["fee"]) == (
        resting["order_id"], "ask-1", "maker", 1, "0.20")  # fmt: skip  # 10 bp of 200.00
    assert buyer_fill["time"].endswith("+00:00")
    assert seller_fill["trade_id"] == buyer_fill["trade_id"]
    fills = api.expect(200, "GET", "/v1/fills", ANN)
    assert [f["trade_id"] for f in fills] == [buyer_fill["trade_id"]]


def test_the_drop_copy_includes_fills_of_orders_placed_over_rest(api: Api):
    api.market()
    api.placed(PROVIDER, "ask", "sell", "100.00", 1)
    with _open(api, ANN) as websocket:
        _greeting(websocket, ANN)
        mine = api.placed(ANN, "rest-lift", "buy", "100.00", 1)
        fill = receive_json(websocket)
    assert (fill["type"], fill["order_id"], fill["client_order_id"]) == (
        "fill", mine["order_id"], "rest-lift")  # fmt: skip


# -- cancel on disconnect --------------------------------------------------------------------


def _wait_for(check: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("not within the time")
        time.sleep(0.02)


def test_cancel_on_disconnect_cancels_every_open_order_rest_ones_too(api: Api):
    api.market()
    api.placed(ANN, "by-rest", "buy", "80.00", 1)
    with _open(api, ANN, cancel_on_disconnect=True) as websocket:
        _greeting(websocket, ANN, cancel=True)
        _request(websocket, _new_order(1, "by-session", "buy", "81.00", 1))
        assert len(_open_orders(api, ANN)) == 2
    _wait_for(lambda: _open_orders(api, ANN) == [])
    orders = api.expect(200, "GET", "/v1/orders", ANN)
    assert {o["status"] for o in orders} == {"cancelled"}


def test_without_the_option_orders_outlive_the_session(api: Api):
    api.market()
    with _open(api, ANN) as websocket:
        _greeting(websocket, ANN)
        _request(websocket, _new_order(1, "stays", "buy", "81.00", 1))
    time.sleep(0.3)
    assert [o["client_order_id"] for o in _open_orders(api, ANN)] == ["stays"]


def test_cancel_on_disconnect_after_an_abrupt_close_with_requests_in_flight(api: Api):
    """The client vanishes without a close handshake while its requests are unanswered:
    what they placed is cancelled too."""
    api.market()
    websocket = _open(api, ANN, cancel_on_disconnect=True).__enter__()
    _greeting(websocket, ANN, cancel=True)
    for index in range(20):
        _send(websocket, _new_order(index, f"gone-{index}", "buy", "70.00", 1))
    # An abrupt end: the transport reports a disconnect (code 1006), no close frame is sent.
    websocket.send({"type": "websocket.disconnect", "code": 1006})
    websocket.exit_stack.close()
    _wait_for(lambda: api.expect(200, "GET", "/v1/orders?status=all", ANN) != [] and
              _open_orders(api, ANN) == [])  # fmt: skip
    seq = api.journal_seq()
    time.sleep(0.3)
    assert _open_orders(api, ANN) == [] and api.journal_seq() == seq


# -- mass quote over the session ---------------------------------------------------------------


def test_mass_quote_over_the_session(api: Api):
    api.market()
    quotes = [
        {"client_order_id": "q1-b", "side": "buy", "price": "95.00", "quantity": 2},
        {"client_order_id": "q1-a", "side": "sell", "price": "105.00", "quantity": 2},
    ]
    with _open(api, PROVIDER) as websocket:
        _greeting(websocket, PROVIDER)
        ack = _request(websocket, {"type": "mass_quote", "request_id": "mq",
                                   "symbol": SYMBOL, "quotes": quotes[1:]})  # fmt: skip
        assert ack["request"] == "mass_quote" and ack["cancelled"] == []
        # The provider has no cash: a bid refuses the whole mass quote, the ask stays.
        refused = _request(websocket, {"type": "mass_quote", "request_id": "mq2",
                                       "symbol": SYMBOL, "quotes": [
                                           {**quotes[0], "client_order_id": "q2-b"},
                                           {**quotes[1], "client_order_id": "q2-a"}]})  # fmt: skip
        _rejected(refused, "mq2", 422, "RISK_INSUFFICIENT_CASH")
    assert [o["client_order_id"] for o in _open_orders(api, PROVIDER)] == ["q1-a"]
    assert ack["placed"][0]["client_order_id"] == "q1-a"
    assert ADMIN and MARKET_MAKER  # the helpers' names, used elsewhere in this module


# -- confidential trading over the session -----------------------------------------------------


def test_request_quote_submit_and_accept_over_sessions(api: Api):
    api.market()
    deadline = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    with _open(api, ANN) as buyer, _open(api, PROVIDER) as seller:
        _greeting(buyer, ANN)
        _greeting(seller, PROVIDER)
        asked = _request(buyer, {"type": "request_quote", "request_id": "r", "symbol": SYMBOL,
                                 "quantity": 2, "responders": [PROVIDER],
                                 "deadline": deadline, "client_request_id": "rfq-1"})  # fmt: skip
        assert asked["type"] == "ack" and asked["request"] == "request_quote", asked
        rfq_id = asked["rfq"]["rfq_id"]
        quoted = _request(seller, {"type": "submit_quote", "request_id": "q", "rfq_id": rfq_id,
                                   "price": "101.00"})  # fmt: skip
        assert quoted["type"] == "ack" and quoted["quote"]["price"] == "101.00", quoted
        unknown = {"type": "accept_quote", "request_id": "x", "rfq_id": rfq_id, "quote_id": 999}
        _rejected(_request(buyer, unknown), "x", 404, "VALIDATION_UNKNOWN_QUOTE")
        accepted = _request(buyer, {"type": "accept_quote", "request_id": "a", "rfq_id": rfq_id,
                                    "quote_id": quoted["quote"]["quote_id"]})  # fmt: skip
    assert accepted["type"] == "ack" and accepted["request"] == "accept_quote", accepted
    assert (accepted["trade"]["price"], accepted["trade"]["quantity"]) == ("101.00", 2)
    trades = api.expect(200, "GET", "/v1/confidential-trades", ANN)
    assert [t["trade_id"] for t in trades] == [accepted["trade"]["trade_id"]]
