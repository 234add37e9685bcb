"""Price discovery and valuation through the API: bars, indices, comparables, valuations."""

from __future__ import annotations

import datetime as dt
import os
import re
from concurrent.futures.process import BrokenProcessPool
from decimal import Decimal
from typing import Any

from .helpers import BUYERS, PROVIDER, SYMBOL, Api

ANN, BOB = BUYERS

TERMS = {"exclusivity": "non_exclusive", "duration_months": 12, "scope": "commercial",
         "territory": "domestic"}  # fmt: skip


def trade_a_little(api: Api) -> None:
    api.market()
    for i, (price, quantity) in enumerate((("100.00", 2), ("102.00", 1), ("101.00", 3))):
        api.placed(PROVIDER, f"ask-{i}", "sell", price, quantity)
        api.placed(ANN if i % 2 else BOB, f"lift-{i}", "buy", price, quantity)


def test_bars_add_up_to_the_trades(api: Api):
    trade_a_little(api)
    bars = api.expect(200, "GET", f"/v1/instruments/{SYMBOL}/bars?interval=1d")
    assert len(bars) == 1
    [bar] = bars
    assert (bar["open"], bar["high"], bar["low"], bar["close"]) == (
        "100.00", "102.00", "100.00", "101.00",
    )  # fmt: skip
    assert (bar["volume"], bar["trades"]) == (6, 3)
    assert bar["vwap"] == "100.83"  # 605.00 / 6, rounded down
    refused = api.expect(422, "GET", f"/v1/instruments/{SYMBOL}/bars?interval=7m")
    assert "interval" in refused["detail"]
    api.expect(404, "GET", "/v1/instruments/NOPE/bars")


def test_instrument_ticker_is_the_market_ticker(api: Api):
    trade_a_little(api)
    assert api.expect(200, "GET", f"/v1/instruments/{SYMBOL}/ticker") == api.expect(
        200, "GET", f"/v1/market/{SYMBOL}/ticker"
    )


def test_category_index_starts_at_100(api: Api):
    api.market()
    # Enough trades for the index to be estimated (with fewer the category has none).
    for i in range(30):
        price = f"{100 + i % 5}.00"
        api.placed(PROVIDER, f"ask-{i}", "sell", price, 1)
        api.placed(ANN, f"lift-{i}", "buy", price, 1)
    points = api.expect(200, "GET", "/v1/indices/transport")
    assert points and points[0]["value"] == 100.0
    assert sum(point["trades"] for point in points) == 30
    assert api.expect(200, "GET", "/v1/indices/health") == []


def test_comparables_find_the_traded_instrument(api: Api):
    trade_a_little(api)
    product_id = api.expect(200, "GET", "/v1/products")[0]["product_id"]
    found = api.expect(200, "GET", f"/v1/products/{product_id}/comparables")
    assert [(c["product_id"], c["trades"], c["units"]) for c in found] == [(product_id, 3, 6)]
    refused = api.expect(422, "GET", f"/v1/products/{product_id}/comparables?scope=bogus")
    assert "scope" in refused["detail"]


MONEY = re.compile(r"-?\d+\.\d{2}")


def assert_amounts_are_decimal_strings(report: dict[str, Any]) -> None:
    """Every amount of a valuation report is a decimal string in currency units (or None)."""
    amounts = [report[k] for k in ("value", "low", "high", "market_value", "market_low",
                                   "market_high")]  # fmt: skip
    cost = report["cost_approach"]
    amounts += [cost[k] for k in ("value", "low", "high", "cost_basis")]
    reconciliation = report["reconciliation"]
    amounts += [reconciliation[k] for k in ("concluded_value", "low", "high", "cost_value")]
    if report["income_approach"] is not None:
        income = report["income_approach"]
        amounts += [income["value"], *income["present_values"]]
    for row in report["comparables"]:
        amounts += [row["price"], row["adjusted_price"], row["contribution"]]
    assert amounts and all(a is None or (isinstance(a, str) and MONEY.fullmatch(a))
                           for a in amounts), amounts  # fmt: skip
    assert report["value"] == reconciliation["concluded_value"]


def test_valuation_with_too_few_comparables_falls_back_to_cost(api: Api):
    trade_a_little(api)
    product_id = api.expect(200, "GET", "/v1/products")[0]["product_id"]
    body = {"product_id": product_id, "terms": TERMS}
    report = api.expect(200, "POST", "/v1/valuations", ANN, json=body)
    assert report["method"] == "cost_fallback"
    assert Decimal(report["low"]) <= Decimal(report["value"]) <= Decimal(report["high"])
    assert_amounts_are_decimal_strings(report)
    html = api.request("POST", "/v1/valuations?format=html", ANN, json=body)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")


def test_valuation_of_a_product_described_by_attributes(api: Api):
    trade_a_little(api)
    body = {
        "product": {
            "category": "transport", "region": "Zhejiang", "record_count": 5_000_000,
            "coverage_months": 24, "update_frequency": "daily",
            "quality": {"completeness": 0.9, "accuracy": 0.9, "timeliness": 0.8,
                        "consistency": 0.9},
            "cost_basis": "90.00",
        },
        "terms": TERMS,
        "income": {"annual_cash_flows": ["120.00", "100.00"], "discount_rate": 0.1},
    }  # fmt: skip
    report = api.expect(200, "POST", "/v1/valuations", ANN, json=body)
    assert Decimal(report["value"]) > 0
    assert_amounts_are_decimal_strings(report)
    assert report["product"]["cost_basis"] == "90.00"
    assert len(report["income_approach"]["present_values"]) == 2


def test_bad_valuation_requests_are_4xx_with_a_reason(api: Api):
    api.market()
    for body, status in (
        ({"terms": TERMS}, 422),  # neither a product id nor attributes
        ({"product_id": "P999999", "terms": TERMS}, 404),
        ({"product_id": "P000001", "terms": {**TERMS, "duration_months": 0}}, 422),
        ({"product_id": "P000001", "terms": TERMS, "as_of": "yesterday"}, 422),
    ):
        refused = api.expect(status, "POST", "/v1/valuations", ANN, json=body)
        assert refused["detail"] and refused["reason"]
    api.expect(401, "POST", "/v1/valuations", json={"product_id": "P000001", "terms": TERMS})


def test_valuations_go_on_when_the_pricing_worker_dies(api: Api):
    trade_a_little(api)
    product_id = api.expect(200, "GET", "/v1/products")[0]["product_id"]
    today = dt.datetime.now(dt.UTC).date()
    yesterday = today - dt.timedelta(days=1)

    def value(as_of: dt.date) -> Any:
        body = {"product_id": product_id, "terms": TERMS, "as_of": as_of.isoformat()}
        return Decimal(api.expect(200, "POST", "/v1/valuations", ANN, json=body)["value"])

    before = value(today)
    pricing = api.app.state.runtime.pricing
    # The worker exits as if killed; the pool notices and refuses further work.
    crashed = pricing._worker.submit(os._exit, 1)
    assert isinstance(crashed.exception(), BrokenProcessPool)

    assert value(yesterday) > 0  # a new date: rebuilt here, in this process
    assert pricing._worker is None
    assert value(today) == before  # rebuilt again, by a new worker
    assert pricing._worker is not None
