"""``POST /v1/quotes``: a mass quote over REST, all or none, with its own rate-limit weight."""

from __future__ import annotations

from typing import Any

import pytest

from exchange.api.ratelimit import RateLimiter
from exchange.api.routes.quotes import MASS_QUOTE_WEIGHT
from tests.exchange.api.helpers import BUYERS, MARKET_MAKER, PROVIDER, REVIEWER, SYMBOL, Api

ANN = BUYERS[0]


def _quotes(*legs: tuple[str, str, str, int]) -> dict[str, Any]:
    return {"symbol": SYMBOL, "quotes": [
        {"client_order_id": cid, "side": side, "price": price, "quantity": quantity}
        for cid, side, price, quantity in legs
    ]}  # fmt: skip


def _open(api: Api, who: str) -> list[str]:
    orders = api.expect(200, "GET", "/v1/orders?status=open", who)
    return [order["client_order_id"] for order in orders]


def _provider_holds_market_maker_units(api: Api) -> None:
    """The market maker buys 4 units from the provider, so that it can quote both sides."""
    api.market()
    api.placed(PROVIDER, "p-ask", "sell", "100.00", 4)
    api.placed(MARKET_MAKER, "mm-lift", "buy", "100.00", 4)


def test_mass_quote_replaces_the_market_makers_orders(api: Api):
    _provider_holds_market_maker_units(api)
    old = api.placed(MARKET_MAKER, "old", "buy", "90.00", 1)
    body = api.expect(200, "POST", "/v1/quotes", MARKET_MAKER, json=_quotes(
        ("b1", "buy", "95.00", 2), ("a1", "sell", "105.00", 2), ("a2", "sell", "106.00", 2),
    ))  # fmt: skip
    assert body["symbol"] == SYMBOL
    assert [(o["order_id"], o["status"]) for o in body["cancelled"]] == [
        (old["order_id"], "cancelled")]  # fmt: skip
    assert [(o["client_order_id"], o["price"], o["post_only"]) for o in body["placed"]] == [
        ("b1", "95.00", True), ("a1", "105.00", True), ("a2", "106.00", True)]  # fmt: skip
    assert _open(api, MARKET_MAKER) == ["b1", "a1", "a2"]
    book = api.expect(200, "GET", f"/v1/market/{SYMBOL}/book")
    assert (book["bids"][0]["price"], book["asks"][0]["price"]) == ("95.00", "105.00")


@pytest.mark.parametrize("legs, status, reason", [
    ((("b", "buy", "95.00", 1), ("a", "sell", "105.50", 1)), 422, "VALIDATION_PRICE_OFF_TICK"),
    ((("b", "buy", "95.00", 1), ("a", "sell", "105.00", 9)), 422, "RISK_INSUFFICIENT_LICENCES"),
    ((("b", "buy", "120.00", 1), ("a", "sell", "125.00", 1)), 422,
     "MATCHING_POST_ONLY_WOULD_TAKE"),
    ((("b", "buy", "95.00", 1), ("old", "sell", "105.00", 1)), 409,
     "VALIDATION_IDEMPOTENCY_CONFLICT"),
    ((("b", "buy", "95.00", 1), ("a", "sell", "1.5e2", 1)), 422, "VALIDATION_INVALID"),
])  # fmt: skip
def test_one_bad_quote_over_rest_changes_nothing(
    api: Api, legs: tuple[tuple[str, str, str, int], ...], status: int, reason: str
):
    _provider_holds_market_maker_units(api)
    api.placed(MARKET_MAKER, "old", "buy", "90.00", 1)
    api.placed(PROVIDER, "p-ask-2", "sell", "110.00", 1)  # a bid at 120.00 would take it
    seq = api.journal_seq()
    balances = api.balances(MARKET_MAKER)
    error = api.expect(status, "POST", "/v1/quotes", MARKET_MAKER, json=_quotes(*legs))
    assert error["reason"] == reason, error
    assert api.journal_seq() == seq
    assert _open(api, MARKET_MAKER) == ["old"]
    assert api.balances(MARKET_MAKER) == balances


def test_mass_quote_needs_a_trading_role_and_a_valid_body(api: Api):
    _provider_holds_market_maker_units(api)
    api.expect(403, "POST", "/v1/quotes", REVIEWER, json=_quotes(("b", "buy", "95.00", 1)))
    too_many = _quotes(*((f"b{i}", "buy", f"{50 + i}.00", 1) for i in range(21)))
    error = api.expect(422, "POST", "/v1/quotes", MARKET_MAKER, json=too_many)
    assert "quotes" in error["detail"]
    api.expect(422, "POST", "/v1/quotes", MARKET_MAKER, json={"symbol": SYMBOL, "quotes": [
        {"client_order_id": "b", "side": "buy", "price": "95.00", "quantity": 1, "x": 1}]})


def test_mass_quote_weighs_more_than_an_order(api: Api):
    _provider_holds_market_maker_units(api)
    api.app.state.runtime.limiter = RateLimiter(1 / 60, MASS_QUOTE_WEIGHT + 1)
    api.expect(200, "POST", "/v1/quotes", ANN, json=_quotes(("b1", "buy", "95.00", 1)))
    # One request is left of the burst: an order fits, a second mass quote does not.
    response = api.request("POST", "/v1/quotes", ANN, json=_quotes(("b2", "buy", "95.00", 1)))
    assert response.status_code == 429 and response.json()["reason"] == "RATE_LIMITED"
    assert int(response.headers["Retry-After"]) >= 1
    api.app.state.runtime.limiter = RateLimiter(500, 1000)
    assert _open(api, ANN) == ["b1"]


def test_openapi_documents_the_mass_quote_with_an_example(api: Api):
    spec = api.expect(200, "GET", "/openapi.json")
    operation = spec["paths"]["/v1/quotes"]["post"]
    schema_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert schema["examples"][0]["quotes"][0]["side"] == "buy"
    assert "429" in operation["responses"] and "200" in operation["responses"]
