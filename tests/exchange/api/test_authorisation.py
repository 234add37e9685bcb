"""Who may call what (exchange/api/deps.py and the routes' role dependencies).

``ROUTES`` is the authorisation matrix: one row per HTTP route under ``/v1``. The matrix test
takes its routes from the app itself, so a route added without a row fails it.
"""

from __future__ import annotations

import contextlib
import re
import time
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from exchange.api import create_app
from exchange.settings import Settings
from tests.exchange.api.helpers import (
    ADMIN,
    BUYERS,
    MARKET_MAKER,
    PROVIDER,
    REGULATOR,
    REVIEWER,
    Api,
    instrument_body,
    product_body,
    review_body,
    serve,
)

PUBLIC = "public"  # no key needed; a key, even a wrong one, is ignored
ANYONE = "any participant"  # any valid key
TRADERS = frozenset({"provider", "buyer", "market_maker"})

ROUTES: dict[tuple[str, str], str | frozenset[str]] = {
    ("POST", "/v1/participants"): frozenset({"admin"}),
    ("GET", "/v1/ledger/digest"): PUBLIC,
    ("GET", "/v1/ledger/checkpoint"): PUBLIC,
    # Any participant asks; the exchange answers only for entries posting to it (or a
    # regulator's or an admin's request), else 404.
    ("GET", "/v1/ledger/entries/{seq}/proof"): ANYONE,
    ("GET", "/v1/ledger/entries"): ANYONE,  # one's own entries (all, for an admin or regulator)
    ("GET", "/v1/participants/me"): ANYONE,
    ("POST", "/v1/products"): frozenset({"provider"}),
    ("GET", "/v1/products"): PUBLIC,
    ("GET", "/v1/products/{product_id}"): PUBLIC,
    ("GET", "/v1/products/{product_id}/compliance"): PUBLIC,
    ("POST", "/v1/products/{product_id}/reviews"): frozenset({"reviewer"}),
    ("POST", "/v1/products/{product_id}/regulator-decision"): frozenset({"regulator"}),
    ("POST", "/v1/products/{product_id}/resubmit"): frozenset({"provider"}),
    ("POST", "/v1/products/{product_id}/suspend"): frozenset({"regulator", "admin"}),
    ("POST", "/v1/products/{product_id}/reinstate"): frozenset({"regulator", "admin"}),
    ("POST", "/v1/instruments"): frozenset({"provider", "admin"}),
    ("GET", "/v1/instruments"): PUBLIC,
    ("GET", "/v1/instruments/{symbol}"): PUBLIC,
    ("POST", "/v1/instruments/{symbol}/phase"): frozenset({"admin"}),
    ("POST", "/v1/instruments/{symbol}/uncross"): frozenset({"admin"}),
    ("POST", "/v1/orders"): TRADERS,
    ("GET", "/v1/orders"): TRADERS,
    ("GET", "/v1/orders/{order_id}"): TRADERS,
    ("GET", "/v1/orders/by-client-id/{client_order_id}"): TRADERS,
    ("DELETE", "/v1/orders"): TRADERS,
    ("POST", "/v1/quotes"): TRADERS,
    ("DELETE", "/v1/participants/{participant_id}/orders"): frozenset({"admin"}),
    ("GET", "/v1/participants"): frozenset({"admin"}),
    ("POST", "/v1/participants/{participant_id}/disable"): frozenset({"admin"}),
    ("POST", "/v1/participants/{participant_id}/enable"): frozenset({"admin"}),
    ("POST", "/v1/participants/{participant_id}/api-key"): frozenset({"admin"}),
    ("DELETE", "/v1/participants/{participant_id}/api-key/{key_id}"): frozenset({"admin"}),
    ("DELETE", "/v1/orders/{order_id}"): TRADERS,
    ("PATCH", "/v1/orders/{order_id}"): TRADERS,
    ("GET", "/v1/fills"): ANYONE,
    ("GET", "/v1/balances"): ANYONE,
    ("POST", "/v1/deposits"): frozenset({"admin"}),
    ("POST", "/v1/withdrawals"): frozenset({"admin"}),
    ("GET", "/v1/market/{symbol}/book"): PUBLIC,
    ("GET", "/v1/market/{symbol}/trades"): PUBLIC,
    ("GET", "/v1/market/{symbol}/ticker"): PUBLIC,
    ("GET", "/v1/health"): PUBLIC,
    ("GET", "/v1/instruments/{symbol}/bars"): PUBLIC,
    ("GET", "/v1/instruments/{symbol}/ticker"): PUBLIC,
    ("GET", "/v1/indices/{category}"): PUBLIC,
    ("GET", "/v1/products/{product_id}/comparables"): PUBLIC,
    ("POST", "/v1/valuations"): ANYONE,
    ("POST", "/v1/rfqs"): TRADERS,
    ("GET", "/v1/rfqs"): TRADERS | {"regulator"},
    ("GET", "/v1/rfqs/{rfq_id}"): TRADERS | {"regulator"},
    ("DELETE", "/v1/rfqs/{rfq_id}"): TRADERS,
    ("POST", "/v1/rfqs/{rfq_id}/quotes"): TRADERS,
    ("POST", "/v1/rfqs/{rfq_id}/accept"): TRADERS,
    ("POST", "/v1/trade-reports"): TRADERS,
    ("GET", "/v1/trade-reports"): TRADERS | {"regulator"},
    ("POST", "/v1/trade-reports/{report_id}/confirm"): TRADERS,
    ("GET", "/v1/confidential-trades"): TRADERS | {"regulator"},
    ("GET", "/v1/market/{symbol}/publications"): PUBLIC,
    ("GET", "/v1/instruments/{symbol}/publication-policy"): PUBLIC,
    ("PUT", "/v1/instruments/{symbol}/publication-policy"): frozenset({"admin"}),
    # A facility's routes answer only its lender and borrower (else 404, as if it did not
    # exist); only a lender offers one.
    ("POST", "/v1/facilities"): frozenset({"lender"}),
    ("GET", "/v1/facilities"): ANYONE,
    ("GET", "/v1/facilities/alerts"): ANYONE,
    ("GET", "/v1/facilities/{facility_id}"): ANYONE,
    ("POST", "/v1/facilities/{facility_id}/accept"): ANYONE,
    ("POST", "/v1/facilities/{facility_id}/draw"): ANYONE,
    ("POST", "/v1/facilities/{facility_id}/repay"): ANYONE,
    ("POST", "/v1/facilities/{facility_id}/pledges"): ANYONE,
    ("POST", "/v1/facilities/{facility_id}/pledges/{pledge_id}/release"): ANYONE,
    ("POST", "/v1/facilities/{facility_id}/margin"): ANYONE,
    ("POST", "/v1/facilities/{facility_id}/margin/return"): ANYONE,
    ("POST", "/v1/instruments/{symbol}/valuation"): frozenset({"admin"}),
    ("POST", "/v1/products/{product_id}/updates"): frozenset({"provider"}),
}

# The participant of api.market() holding each role (and only it).
HOLDER_OF_ROLE = {
    "provider": PROVIDER,
    "buyer": BUYERS[0],
    "market_maker": MARKET_MAKER,
    "reviewer": REVIEWER,
    "regulator": REGULATOR,
    "admin": ADMIN,
}
NO_SUCH_ORDER_ID = 999_999


def http_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every HTTP route under /v1. This FastAPI keeps included
    routers nested in ``app.routes``; ``iter_route_contexts`` flattens them."""
    found = set()
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.path.startswith("/v1/"):
            found.update((method, context.path) for method in context.methods)
    return found


def wrong_keys(api: Api) -> dict[str, str]:
    admin_key_id = api.admin_key.partition(".")[0]
    return {
        "malformed": "not-a-key",
        "unknown key id": "dxk_0000000000000000.secret",
        "admin key id, wrong secret": f"{admin_key_id}.wrong-secret",
        "too long": f"{admin_key_id}.{'x' * 200}",
    }


def is_error_body(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and set(body) == {"detail", "reason"}
        and isinstance(body["detail"], str)
        and bool(body["detail"])
    )


def test_matrix_has_a_row_for_every_route_and_no_other():
    app = create_app(Settings("sqlite://"))
    routes = http_routes(app)
    assert routes, "no routes found: the enumeration itself is broken"
    assert sorted(routes - set(ROUTES)) == [], "routes without a row in ROUTES"
    assert sorted(set(ROUTES) - routes) == [], "rows of ROUTES for routes that do not exist"


def test_each_route_admits_exactly_its_roles(api: Api):
    """No key or a wrong key: 401 on private routes; a role not allowed: 403; an allowed role:
    neither. Public routes answer everyone. Bodies are empty, so an allowed call is refused
    for its content (422), or its target (404, 409), and nothing is journalled."""
    market = api.market()
    path_values = {
        "{product_id}": market.product_id,
        "{symbol}": market.symbol,
        "{order_id}": str(NO_SUCH_ORDER_ID),
        "{rfq_id}": str(NO_SUCH_ORDER_ID),
        "{report_id}": str(NO_SUCH_ORDER_ID),
        "{category}": "transport",
        "{seq}": "1",
        "{client_order_id}": "no-such-order",
        "{participant_id}": "no-such-participant",
        "{key_id}": "dxk_0000000000000000",
        "{facility_id}": str(NO_SUCH_ORDER_ID),
        "{pledge_id}": str(NO_SUCH_ORDER_ID),
    }
    callers: dict[str, dict[str, str]] = {"no key": {}}
    callers.update({name: {"X-API-Key": key} for name, key in wrong_keys(api).items()})
    callers.update({role: api.headers(who) for role, who in HOLDER_OF_ROLE.items()})
    journal_seq = api.journal_seq()
    problems: list[str] = []

    for method, template in sorted(http_routes(api.app)):
        allowed = ROUTES.get((method, template))
        if allowed is None:
            problems.append(f"{method} {template}: no row in ROUTES")
            continue
        path = template
        for name, value in path_values.items():
            path = path.replace(name, value)
        body = {} if method in ("POST", "PATCH") else None
        for caller, headers in callers.items():
            response = api.client.request(method, path, headers=headers, json=body)
            status = response.status_code
            where = f"{method} {template} as {caller}: {status} {response.text[:120]}"
            if status >= 500:
                problems.append(f"{where}: a server error")
                continue
            if status >= 400 and not is_error_body(response.json()):
                problems.append(f"{where}: the error body is not {{detail, reason}}")
            if allowed == PUBLIC:
                if status != 200:
                    problems.append(f"{where}: public, expected 200")
            elif caller not in HOLDER_OF_ROLE:
                if status != 401 or response.headers.get("www-authenticate") != "ApiKey":
                    problems.append(f"{where}: expected 401 with WWW-Authenticate: ApiKey")
            elif allowed == ANYONE or caller in allowed:
                if status in (401, 403, 429):
                    problems.append(f"{where}: the role is allowed")
            elif status != 403 or response.json().get("reason") != "AUTH_FORBIDDEN":
                problems.append(f"{where}: expected 403 AUTH_FORBIDDEN")

    assert problems == [], "\n".join(problems)
    assert api.journal_seq() == journal_seq, "a refused or read-only call was journalled"


def test_allowed_roles_are_not_refused_by_the_exchange_either(api: Api):
    """The exchange checks roles again behind the API: a second role a route admits (the
    admin listing, the regulator suspending, the admin reinstating) is admitted there too."""
    market = api.market()
    body = instrument_body(market.product_id, "ZJPARK.NX24", duration_months=24)
    listed = api.expect(201, "POST", "/v1/instruments", ADMIN, json=body)
    assert listed["provider"] == PROVIDER, "the product's provider is the issuer, not the admin"
    reason = {"reason": "investigation"}
    path = f"/v1/products/{market.product_id}"
    assert api.expect(200, "POST", f"{path}/suspend", REGULATOR, json=reason)["status"] == (
        "suspended"
    )
    assert api.expect(200, "POST", f"{path}/reinstate", ADMIN, json=reason)["status"] == "approved"
    assert api.expect(200, "POST", f"{path}/suspend", ADMIN, json=reason)["status"] == "suspended"
    assert api.expect(200, "POST", f"{path}/reinstate", REGULATOR, json=reason)["status"] == (
        "approved"
    )


def test_provider_acts_only_on_its_own_products(api: Api):
    market = api.market()
    api.create_participant("prov2", "provider")
    journal_seq = api.journal_seq()
    listing = instrument_body(market.product_id, "OTHER.NX12")
    refused = api.expect(403, "POST", "/v1/instruments", "prov2", json=listing)
    assert (refused["reason"], refused["detail"]) == (
        "AUTH_FORBIDDEN", "only the product's provider lists it",
    )  # fmt: skip
    resubmission = {
        "classification": "general", "personal_information": False, "desensitised": False,
        "lawful_source_attestation": "mine now",
    }  # fmt: skip
    path = f"/v1/products/{market.product_id}/resubmit"
    assert api.expect(403, "POST", path, "prov2", json=resubmission)["reason"] == "AUTH_FORBIDDEN"
    assert api.journal_seq() == journal_seq
    assert api.expect(404, "GET", "/v1/instruments/OTHER.NX12")["reason"] == "NOT_FOUND"


def test_reviewer_cannot_review_its_own_product(api: Api):
    api.create_participant("both", "provider", "reviewer")
    product = api.expect(201, "POST", "/v1/products", "both", json=product_body())
    path = f"/v1/products/{product['product_id']}"
    refused = api.expect(403, "POST", f"{path}/reviews", "both", json=review_body())
    assert refused["reason"] == "AUTH_FORBIDDEN"
    assert api.expect(200, "GET", path)["status"] == "pending_review"


def _normalised(body: dict[str, str], order_id: int) -> dict[str, str]:
    """``body`` with the order id it names replaced, to compare answers about two ids."""
    return {key: re.sub(rf"\b{order_id}\b", "<id>", value) for key, value in body.items()}


def test_another_participants_order_answers_as_if_it_did_not_exist(api: Api):
    api.market()
    owner, other = BUYERS
    order = api.placed(owner, "ann-1", "buy", "90.00", 5)
    order_id = order["order_id"]
    journal_seq = api.journal_seq()
    attempts = [
        ("GET", None, 404),
        ("DELETE", None, 404),
        ("PATCH", {"quantity": 3}, 404),
        ("PATCH", {"price": "91.00"}, 404),
        ("PATCH", {}, 404),  # the owner would get a 422 for an empty amendment
        # A body that cannot be read is refused before any order is looked at, for any id.
        ("PATCH", {"price": "91.005"}, 422),
    ]
    for intruder in (other, MARKET_MAKER, PROVIDER):
        for method, body, status in attempts:
            theirs = api.request(method, f"/v1/orders/{order_id}", intruder, json=body)
            missing = api.request(method, f"/v1/orders/{NO_SUCH_ORDER_ID}", intruder, json=body)
            where = (intruder, method, body, theirs.text, missing.text)
            assert theirs.status_code == status, where
            assert missing.status_code == status, where
            assert _normalised(theirs.json(), order_id) == _normalised(
                missing.json(), NO_SUCH_ORDER_ID
            ), where
        assert api.expect(200, "GET", "/v1/orders", intruder) == []
        assert api.expect(200, "GET", "/v1/orders?status=open", intruder) == []
    assert api.journal_seq() == journal_seq
    assert api.expect(200, "GET", f"/v1/orders/{order_id}", owner) == order


def test_fills_show_only_ones_own_side_of_each_trade(api: Api):
    api.market()
    ann, bob = BUYERS
    sell = api.placed(PROVIDER, "s-1", "sell", "100.00", 3)
    ann_buy = api.placed(ann, "a-1", "buy", "100.00", 2)
    mm_buy = api.placed(MARKET_MAKER, "m-1", "buy", "100.00", 1)

    ann_fills = api.expect(200, "GET", "/v1/fills", ann)
    assert [(f["order_id"], f["side"], f["quantity"], f["liquidity"]) for f in ann_fills] == [
        (ann_buy["order_id"], "buy", 2, "taker")
    ]
    assert ann_fills[0]["fee"] == "0.00"
    mm_fills = api.expect(200, "GET", "/v1/fills", MARKET_MAKER)
    assert [(f["order_id"], f["side"], f["quantity"]) for f in mm_fills] == [
        (mm_buy["order_id"], "buy", 1)
    ]
    assert ann_fills[0]["trade_id"] != mm_fills[0]["trade_id"]
    assert api.expect(200, "GET", "/v1/fills", bob) == []
    assert api.expect(200, "GET", "/v1/fills", ADMIN) == []
    provider_fills = api.expect(200, "GET", "/v1/fills", PROVIDER)
    assert [(f["order_id"], f["side"], f["liquidity"]) for f in provider_fills] == [
        (sell["order_id"], "sell", "maker"),
        (sell["order_id"], "sell", "maker"),
    ]
    # 10 bp of 200.00 and of 100.00, paid by the seller.
    assert [f["fee"] for f in provider_fills] == ["0.20", "0.10"]


def test_third_quick_request_over_the_burst_is_told_to_retry_later(database_url: str):
    with serve(database_url, rate_limit_per_s=1, rate_limit_burst=2) as api:
        api.create_participant("ann", "buyer")  # the admin's first token
        started_s = time.monotonic()
        answers = [api.request("GET", "/v1/participants/me", "ann") for _ in range(3)]
        if time.monotonic() - started_s >= 0.9:
            pytest.skip("too slow a machine to make three requests within one token's refill")
        assert [a.status_code for a in answers] == [200, 200, 429]
        limited = answers[2]
        assert limited.json()["reason"] == "RATE_LIMITED"
        assert int(limited.headers["Retry-After"]) >= 1
        # Per key: the admin still has a token; public reads take none.
        assert api.request("GET", "/v1/participants/me", ADMIN).status_code == 200
        assert all(api.request("GET", "/v1/health").status_code == 200 for _ in range(5))


def test_zero_rate_limit_is_refused_at_start_or_enforced_never_a_server_error(database_url: str):
    # Refusing the setting when the app starts (a ValueError) is as good as enforcing it.
    with (
        contextlib.suppress(ValueError),
        serve(database_url, rate_limit_per_s=0, rate_limit_burst=1) as api,
    ):
        statuses = [api.request("GET", "/v1/participants/me", ADMIN).status_code for _ in range(3)]
        assert statuses[0] == 200
        assert all(status in (200, 429) for status in statuses), statuses
