"""The API's contract at its edge (exchange/api/bodies.py, schemas.py, errors.py, routes/ws.py):
what a request body may be, which strings a client may choose, which reason an error names,
and how the private stream authenticates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from exchange.api.app import DESCRIPTION
from exchange.api.bodies import MAX_BODY_BYTES
from exchange.api.errors import status_of
from exchange.catalogue import Exclusivity, Instrument, LicenceTerms, Scope, Territory
from exchange.errors import ExchangeError
from exchange.service import _refuse
from matching import RejectReason, SealedBidPricing, TradingMode
from tests.exchange.api.helpers import (
    ADMIN,
    BUYERS,
    MARKET_MAKER,
    PROVIDER,
    SYMBOL,
    Api,
    instrument_body,
    order_body,
    product_body,
    receive_json,
)

ANN, BOB = BUYERS
JSON = {"Content-Type": "application/json"}


def _refused(response: Any, status: int, reason: str, *words: str) -> str:
    """Assert ``response`` is the error body of ``status`` and ``reason`` whose detail holds
    every one of ``words``; the detail."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["reason"] == reason, body
    for word in words:
        assert word in body["detail"], (word, body)
    return str(body["detail"])


# -- request bodies ------------------------------------------------------------------------


def test_a_key_named_twice_in_the_body_is_a_400_naming_it(api: Api):
    api.market()
    seq = api.journal_seq()
    body = json.dumps(order_body("dup", "buy", "1.00", 1))[:-1] + ', "price": "100.00"}'
    response = api.request("POST", "/v1/orders", ANN, content=body, headers=JSON)
    _refused(response, 400, "VALIDATION_DUPLICATE_KEY", "'price'")
    # In a nested object too.
    product = json.dumps(product_body())
    nested = product.replace('"completeness": 0.9', '"accuracy": 0.1, "completeness": 0.9')
    response = api.request("POST", "/v1/products", PROVIDER, content=nested, headers=JSON)
    _refused(response, 400, "VALIDATION_DUPLICATE_KEY", "'accuracy'")
    assert api.journal_seq() == seq


def _order_of_size(size_bytes: int) -> bytes:
    """A valid order's JSON padded with spaces to exactly ``size_bytes``."""
    body = json.dumps(order_body("padded", "buy", "100.00", 1)).encode()
    return body[:-1] + b" " * (size_bytes - len(body)) + b"}"


def _chunks(body: bytes, size_bytes: int = 4096) -> Iterator[bytes]:
    for start in range(0, len(body), size_bytes):
        yield body[start : start + size_bytes]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_is_a_413_before_the_key_is_checked(api: Api, chunked: bool):
    api.market()
    seq = api.journal_seq()

    def send(who: str | None, body: bytes) -> Any:
        content = _chunks(body) if chunked else body
        return api.request("POST", "/v1/orders", who, content=content, headers=JSON)

    too_big = _order_of_size(MAX_BODY_BYTES + 1)
    # No key at all: the size is refused first, not the missing key.
    _refused(send(None, too_big), 413, "VALIDATION_BODY_TOO_LARGE", str(MAX_BODY_BYTES))
    _refused(send(ANN, too_big), 413, "VALIDATION_BODY_TOO_LARGE")
    assert api.journal_seq() == seq
    # A body of exactly the limit is read as usual.
    response = send(ANN, _order_of_size(MAX_BODY_BYTES))
    assert response.status_code == 201, response.text


def test_the_body_limit_is_documented():
    assert f"{MAX_BODY_BYTES:,} bytes" in DESCRIPTION


# -- strings a client chooses --------------------------------------------------------------

# (what is wrong, the value, words of the detail)
BAD_IDENTIFIERS: list[tuple[str, str, str]] = [
    ("a leading space", " a1", "start or end with a space"),
    ("a trailing space", "a1 ", "start or end with a space"),
    ("a tab", "a\t1", "U+0009"),
    ("a line break", "a1\n", "U+000A"),
    ("a control character", "a\x071", "U+0007"),
    ("a bidirectional override", "a\u202e1", "U+202E"),
    ("a letter beyond ASCII", "é1", "U+00E9"),
    ("a lone surrogate", "a\ud8001", "unicode"),
]


@pytest.mark.parametrize(("what", "value", "words"), BAD_IDENTIFIERS,
                         ids=[case[0] for case in BAD_IDENTIFIERS])  # fmt: skip
def test_a_client_order_id_is_printable_ascii_without_surrounding_spaces(
    api: Api, what: str, value: str, words: str
):
    api.market()
    seq = api.journal_seq()
    # As JSON escapes (\uXXXX), which is how a lone surrogate can arrive at all.
    body = json.dumps(order_body(value, "buy", "100.00", 1))
    response = api.request("POST", "/v1/orders", ANN, content=body, headers=JSON)
    _refused(response, 422, "VALIDATION_INVALID", "client_order_id", words)
    assert api.journal_seq() == seq


def test_an_identifier_may_hold_inner_spaces_and_any_printable_ascii(api: Api):
    api.market()
    placed = api.placed(ANN, "my order #1 (a~z)", "buy", "100.00", 1)
    assert placed["client_order_id"] == "my order #1 (a~z)"


def test_other_identifiers_are_held_to_the_same_rules(api: Api):
    market = api.market()
    body = order_body("a1", "buy", "100.00", 1, symbol=f" {SYMBOL}")
    response = api.request("POST", "/v1/orders", ANN, json=body)
    _refused(response, 422, "VALIDATION_INVALID", "symbol", "space")
    response = api.request("POST", "/v1/deposits", ADMIN,
                           json={"participant_id": f"{ANN} ", "amount": "1.00"})  # fmt: skip
    _refused(response, 422, "VALIDATION_INVALID", "participant_id", "space")
    body = instrument_body(f"{market.product_id}\u200f", "ZJPARK.NX24")
    response = api.request("POST", "/v1/instruments", PROVIDER, json=body)
    _refused(response, 422, "VALIDATION_INVALID", "product_id", "U+200F")


def test_free_text_may_be_any_unicode_but_control_and_bidirectional_characters(api: Api):
    api.participants()
    body = {"participant_id": "hz-bank", "name": "杭州银行 Hangzhou Bank", "roles": ["buyer"]}
    assert api.expect(201, "POST", "/v1/participants", ADMIN, json=body)["name"] == body["name"]
    for name, words in (("Evil\u202eknaB", "U+202E"), ("two\nlines", "U+000A"),
                        ("bell\x07", "U+0007"), ("split\u2028line", "U+2028")):  # fmt: skip
        body = {"participant_id": "evil", "name": name, "roles": ["buyer"]}
        response = api.request("POST", "/v1/participants", ADMIN, json=body)
        _refused(response, 422, "VALIDATION_INVALID", "name", words)
    # A long text may break lines, a title may not.
    body = product_body(description="Per-bay occupancy.\nHourly.")
    response = api.request("POST", "/v1/products", PROVIDER, json=body)
    assert response.status_code == 201, response.text
    response = api.request("POST", "/v1/products", PROVIDER,
                           json=product_body(title="Parking\noccupancy"))  # fmt: skip
    _refused(response, 422, "VALIDATION_INVALID", "title", "U+000A")
    response = api.request("POST", "/v1/products", PROVIDER,
                           json=product_body(description="safe\u2066text"))  # fmt: skip
    _refused(response, 422, "VALIDATION_INVALID", "description", "U+2066")
    response = api.request("POST", "/v1/deposits", ADMIN, json={
        "participant_id": "hz-bank", "amount": "1.00", "reference": "wire\r\n2026"})  # fmt: skip
    _refused(response, 422, "VALIDATION_INVALID", "reference", "U+000D")


# -- error reasons -------------------------------------------------------------------------


def test_an_engine_rejection_names_its_own_reason_in_reason_and_detail(api: Api):
    api.market()
    api.placed(PROVIDER, "ask", "sell", "100.00", 1)
    response = api.order(ANN, "gtd", "buy", "99.00", 1, time_in_force="GTD")
    detail = _refused(response, 422, "VALIDATION_EXPIRY_REQUIRED")
    assert detail.endswith("(VALIDATION_EXPIRY_REQUIRED)"), detail
    response = api.order(ANN, "po", "buy", "100.00", 1, post_only=True)
    detail = _refused(response, 422, "MATCHING_POST_ONLY_WOULD_TAKE")
    assert detail.endswith("(MATCHING_POST_ONLY_WOULD_TAKE)"), detail
    response = api.order(ANN, "tick", "buy", "99.50", 1)
    detail = _refused(response, 422, "VALIDATION_PRICE_OFF_TICK", "tick grid")
    assert detail.endswith("(VALIDATION_PRICE_OFF_TICK)"), detail


@pytest.mark.parametrize("reason", list(RejectReason), ids=str)
def test_every_engine_rejection_is_an_exchange_reason_named_in_its_message(
    reason: RejectReason,
):
    instrument = Instrument(
        symbol=SYMBOL, product_id="P000001", provider=PROVIDER,
        terms=LicenceTerms(Exclusivity.NON_EXCLUSIVE, 12, Scope.COMMERCIAL, Territory.DOMESTIC,
                           transferable=True),
        tick_size_minor=100, lot_size_units=1, trading_mode=TradingMode.CONTINUOUS,
        issuance_cap_units=100, fee_rate_bp=0, price_band_low_minor=None,
        price_band_high_minor=None, sealed_bid_pricing=SealedBidPricing.FIRST_PRICE, listed_ns=0,
    )  # fmt: skip
    with pytest.raises(ExchangeError) as refused:
        _refuse(reason, instrument, 150, 3)
    code = refused.value.reason
    assert refused.value.message.endswith(f"({code})")
    assert 400 <= status_of(code) < 500
    if code.value != reason.value:  # the few the exchange names itself
        assert reason in (RejectReason.VALIDATION_PROTECTION_PRICE_REQUIRED,
                          RejectReason.MATCHING_UNKNOWN_ORDER,
                          RejectReason.MATCHING_PHASE_REJECTS_ORDERS), reason  # fmt: skip


@pytest.mark.parametrize("method", ["DELETE", "PATCH"])
def test_acting_on_ones_own_closed_order_is_a_409_naming_its_state(api: Api, method: str):
    api.market()
    api.placed(PROVIDER, "ask", "sell", "100.00", 1)
    filled = api.placed(ANN, "lift", "buy", "100.00", 1)
    assert filled["status"] == "filled"
    resting = api.placed(ANN, "rest", "buy", "90.00", 1)
    api.expect(200, "DELETE", f"/v1/orders/{resting['order_id']}", ANN)
    seq = api.journal_seq()
    kwargs: dict[str, Any] = {"json": {"quantity": 2}} if method == "PATCH" else {}
    for order, state in ((filled, "filled"), (resting, "cancelled")):
        order_id = order["order_id"]
        response = api.request(method, f"/v1/orders/{order_id}", ANN, **kwargs)
        _refused(response, 409, "VALIDATION_ORDER_NOT_OPEN", f"order {order_id} is {state}")
        # Another participant's order, closed or not, is not found, as an unknown one.
        response = api.request(method, f"/v1/orders/{order_id}", BOB, **kwargs)
        _refused(response, 404, "VALIDATION_UNKNOWN_ORDER")
    response = api.request(method, "/v1/orders/999999", ANN, **kwargs)
    _refused(response, 404, "VALIDATION_UNKNOWN_ORDER")
    assert api.journal_seq() == seq


# -- authenticating the private stream -----------------------------------------------------


def _fill_reaches(api: Api, websocket: Any, who: str) -> None:
    """After the acknowledgement, ``who``'s own fill reaches ``websocket``."""
    api.placed(PROVIDER, f"ask-{who}", "sell", "100.00", 1)
    mine = api.placed(who, f"lift-{who}", "buy", "100.00", 1)
    for _ in range(20):
        message = receive_json(websocket)
        if message["type"] == "fill":
            assert message["order_id"] == mine["order_id"]
            return
    raise AssertionError("no fill")


def test_private_stream_authenticates_by_its_first_message(api: Api):
    api.market()
    with api.client.websocket_connect("/v1/ws/private") as websocket:
        websocket.send_text(json.dumps({"type": "auth", "api_key": api.keys[ANN]}))
        assert receive_json(websocket) == {"type": "auth", "participant_id": ANN}
        _fill_reaches(api, websocket, ANN)


def test_private_stream_authenticated_by_header_is_acknowledged_too(api: Api):
    api.market()
    with api.client.websocket_connect("/v1/ws/private", headers=api.headers(MARKET_MAKER)) as ws:
        assert receive_json(ws) == {"type": "auth", "participant_id": MARKET_MAKER}
        _fill_reaches(api, ws, MARKET_MAKER)


def _closed_with(api: Api, path: str, first: str | None, **kwargs: Any) -> str:
    """Connect to ``path``, send ``first`` if given; the reason of the 1008 close."""
    with api.client.websocket_connect(path, **kwargs) as websocket:
        if first is not None:
            websocket.send_text(first)
        with pytest.raises(WebSocketDisconnect) as closed:
            receive_json(websocket)
    assert closed.value.code == 1008, closed.value
    return str(closed.value.reason)


def test_private_stream_refuses_a_key_in_the_url(api: Api):
    reason = _closed_with(api, f"/v1/ws/private?api_key={api.keys[ADMIN]}", None)
    assert "never in the URL" in reason
    # Even with a good key in the header as well.
    reason = _closed_with(api, f"/v1/ws/private?api_key={api.keys[ADMIN]}", None,
                          headers=api.headers(ADMIN))  # fmt: skip
    assert "never in the URL" in reason


def test_private_stream_refuses_a_malformed_or_wrong_authentication(api: Api):
    admin_key_id = api.admin_key.partition(".")[0]
    for first in ("not json", "[]", json.dumps({"api_key": api.admin_key}),
                  json.dumps({"type": "subscribe", "api_key": api.admin_key}),
                  json.dumps({"type": "auth", "api_key": 42}),
                  json.dumps({"type": "auth", "api_key": api.admin_key, "more": 1}),
                  json.dumps({"type": "auth", "api_key": "x" * 2000})):  # fmt: skip
        assert '{"type": "auth", "api_key": "..."}' in _closed_with(api, "/v1/ws/private", first)
    for key in ("not-a-key", "dxk_0000000000000000.secret", f"{admin_key_id}.wrong-secret"):
        first = json.dumps({"type": "auth", "api_key": key})
        assert "not valid" in _closed_with(api, "/v1/ws/private", first)
        assert "not valid" in _closed_with(api, "/v1/ws/private", None, headers={"X-API-Key": key})
