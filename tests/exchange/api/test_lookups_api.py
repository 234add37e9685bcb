"""Lookups and filters (exchange/api/routes/orders.py, account.py, market.py, query.py): an
order by its client order id, orders and fills filtered by symbol, side, status and time,
the trade tape paged by a cursor, and unknown query parameters refused on every route."""

from __future__ import annotations

import re

from tests.exchange.api.helpers import BUYERS, PROVIDER, SYMBOL, Api, order_body
from tests.exchange.api.test_authorisation import http_routes

ANN, BOB = BUYERS
OTHER_SYMBOL = "ZJPARK.NX24"


def _two_markets(api: Api) -> None:
    market = api.market()
    api.list_instrument(market.product_id, OTHER_SYMBOL, "continuous", duration_months=24)


def test_order_is_found_by_its_client_order_id_as_it_stands_now(api: Api):
    api.market()
    placed = api.placed(ANN, "quote-7", "buy", "99.00", 2)
    path = "/v1/orders/by-client-id/quote-7"
    assert api.expect(200, "GET", path, ANN) == placed
    api.placed(PROVIDER, "hit", "sell", "99.00", 1)
    found = api.expect(200, "GET", path, ANN)
    assert (found["order_id"], found["status"], found["filled_quantity"]) == (
        placed["order_id"], "partially_filled", 1,
    )  # fmt: skip
    # Another participant's client order id, or one never used, is no order of yours.
    assert api.expect(404, "GET", path, BOB)["reason"] == "VALIDATION_UNKNOWN_ORDER"
    missing = api.expect(404, "GET", "/v1/orders/by-client-id/nope", ANN)
    assert "nope" in missing["detail"]
    assert "client_order_id" in api.expect(
        422, "GET", "/v1/orders/by-client-id/" + "x" * 65, ANN
    )["detail"]


def test_orders_are_filtered_by_symbol_side_and_status(api: Api):
    _two_markets(api)
    bid = api.placed(ANN, "bid", "buy", "90.00", 1)["order_id"]
    other = api.placed(ANN, "other", "buy", "90.00", 1, symbol=OTHER_SYMBOL)["order_id"]
    api.placed(PROVIDER, "ask", "sell", "110.00", 2)
    lift = api.placed(ANN, "lift", "buy", "110.00", 1)["order_id"]  # fills at once
    part = api.placed(ANN, "part", "buy", "110.00", 2)["order_id"]  # fills 1, rests 1
    gone = api.placed(ANN, "gone", "buy", "80.00", 1)["order_id"]
    api.expect(200, "DELETE", f"/v1/orders/{gone}", ANN)

    def ids(**params: str) -> list[int]:
        return [o["order_id"] for o in api.expect(200, "GET", "/v1/orders", ANN, params=params)]

    assert ids() == [bid, other, lift, part, gone]
    assert ids(symbol=OTHER_SYMBOL) == [other]
    assert ids(symbol=SYMBOL, status="open") == [bid, part]
    assert ids(status="partially_filled") == [part]
    assert ids(status="filled") == [lift]
    assert ids(status="cancelled") == [gone]
    assert ids(side="sell") == []
    assert ids(side="buy", symbol=SYMBOL, limit="2") == [bid, lift]
    assert ids(side="buy", symbol=SYMBOL, after=str(lift)) == [part, gone]
    assert ids(symbol="NOPE.NX12") == []
    for params, field in (({"side": "up"}, "side"), ({"status": "closed"}, "status"),
                          ({"symbol": "X" * 33}, "symbol")):  # fmt: skip
        refused = api.expect(422, "GET", "/v1/orders", ANN, params=params)
        assert field in refused["detail"], (params, refused)


def test_orders_and_fills_are_filtered_by_time(api: Api):
    api.market()
    api.placed(PROVIDER, "ask", "sell", "100.00", 3)
    orders = [api.placed(ANN, f"lift-{i}", "buy", "100.00", 1) for i in range(3)]
    fills = api.expect(200, "GET", "/v1/fills", ANN)
    assert len(fills) == 3

    def order_ids(**params: str) -> list[int]:
        return [o["order_id"] for o in api.expect(200, "GET", "/v1/orders", ANN, params=params)]

    def fill_ids(**params: str) -> list[int]:
        return [f["trade_id"] for f in api.expect(200, "GET", "/v1/fills", ANN, params=params)]

    created = [o["created_at"] for o in orders]
    assert order_ids(start_time=created[1]) == [o["order_id"] for o in orders[1:]]
    assert order_ids(end_time=created[1]) == [orders[0]["order_id"]]
    assert order_ids(start_time=created[1], end_time=created[2]) == [orders[1]["order_id"]]
    times = [f["time"] for f in fills]
    trades = [f["trade_id"] for f in fills]
    assert fill_ids(start_time=times[1]) == trades[1:]
    assert fill_ids(start_time=times[1], end_time=times[2]) == trades[1:2]
    assert fill_ids(side="sell") == []
    assert fill_ids(symbol=SYMBOL, side="buy", limit="1") == trades[:1]
    assert [f["trade_id"] for f in api.expect(200, "GET", "/v1/fills", PROVIDER,
                                              params={"side": "sell"})] == trades  # fmt: skip
    # A time in another zone is the same instant.
    assert order_ids(start_time="2000-01-01T08:00:00+08:00") == [o["order_id"] for o in orders]
    for path in ("/v1/orders", "/v1/fills"):
        for not_iso in ("2026-01-01T00:00:00", "0.5", "1700000000", "yesterday"):
            refused = api.expect(422, "GET", path, ANN, params={"start_time": not_iso})
            assert "start_time" in refused["detail"] and "zone" in refused["detail"], refused
        empty = api.expect(422, "GET", path, ANN, params={
            "start_time": "2026-01-02T00:00:00Z", "end_time": "2026-01-01T00:00:00Z"
        })  # fmt: skip
        assert "end_time" in empty["detail"] and empty["reason"] == "VALIDATION_INVALID"


def test_trade_tape_is_paged_back_by_a_cursor(api: Api):
    api.market()
    api.placed(PROVIDER, "ask", "sell", "100.00", 5)
    for i in range(5):
        api.placed(ANN, f"lift-{i}", "buy", "100.00", 1)
    path = f"/v1/market/{SYMBOL}/trades"
    tape = [t["trade_id"] for t in api.expect(200, "GET", path)]
    assert len(tape) == 5 and tape == sorted(tape, reverse=True)
    pages: list[int] = []
    before: int | None = None
    while True:
        params = {"limit": "2"} if before is None else {"limit": "2", "before": str(before)}
        page = [t["trade_id"] for t in api.expect(200, "GET", path, params=params)]
        if not page:
            break
        assert len(page) <= 2
        pages += page
        before = page[-1]
    assert pages == tape
    assert api.expect(200, "GET", path, params={"before": "1"}) == []
    for value in ("0", "-1", "x"):
        assert "before" in api.expect(422, "GET", path, params={"before": value})["detail"]


def _filled_in(path: str) -> str:
    """``path`` with a plausible value for each of its parameters."""
    return re.sub(r"\{(\w+)\}", lambda m: "1" if m.group(1).endswith(("_id", "seq")) else "X", path)


def test_every_route_refuses_a_query_parameter_it_does_not_take(api: Api):
    api.market()
    api.create_participant("all", "provider", "buyer", "market_maker", "reviewer", "regulator",
                           "admin")  # fmt: skip
    seq = api.journal_seq()
    routes = sorted(route for route in http_routes(api.app) if route[0] in ("GET", "DELETE"))
    assert len(routes) > 25
    for method, template in routes:
        refused = api.expect(422, method, _filled_in(template), "all", params={"limt": "5"})
        assert refused["reason"] == "VALIDATION_INVALID", (method, template, refused)
        assert refused["detail"].startswith("limt: unknown query parameter"), refused
    # A valid order with an unknown parameter: refused, and nothing is journalled.
    body = order_body("with-a-typo", "buy", "90.00", 1)
    refused = api.expect(422, "POST", "/v1/orders", ANN, json=body, params={"dry_run": "1"})
    assert refused["detail"].startswith("dry_run: unknown query parameter"), refused
    assert api.journal_seq() == seq
    # The parameters a route takes are named, so a misspelling is easy to see.
    refused = api.expect(422, "GET", "/v1/orders", ANN, params={"symbl": SYMBOL})
    assert "symbol" in refused["detail"] and "after" in refused["detail"]
    refused = api.expect(422, "GET", "/v1/balances", ANN, params={"symbol": SYMBOL})
    assert "takes no query parameters" in refused["detail"]
    # The key is checked first: without one, a route's parameters are nobody's business.
    assert api.expect(401, "GET", "/v1/orders", params={"symbl": SYMBOL})["reason"] == (
        "AUTH_MISSING_KEY"
    )
    # What a route does take still works, beside nothing unknown.
    assert api.expect(200, "GET", f"/v1/market/{SYMBOL}/book", params={"depth": "1"})["bids"] == []
