"""Serving the exchange's app to tests, and the requests the tests make of it.

:func:`serve` opens the app on a database of its own, with an admin bootstrapped in
``on_start`` (the API lets only an admin create participants, so the first one comes from
the console, as ``dataex participant create`` does), and yields an :class:`Api`: the client,
the keys it has handed out, and builders for a ready market made through HTTP alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from exchange import commands as c
from exchange.api import create_app
from exchange.api.runtime import Runtime
from exchange.participants import new_api_key, secret_digest
from exchange.service import OPERATOR
from exchange.settings import Settings
from ledger.database import dispose_engines

ADMIN = "admin"
PROVIDER = "prov"
REVIEWER = "rev"
REGULATOR = "reg"
BUYERS = ("ann", "bob")
MARKET_MAKER = "mm"
SYMBOL = "ZJPARK.NX12"
TICK = "1.00"
ISSUANCE_CAP_UNITS = 100
FEE_RATE_BP = 10
CASH_DEPOSIT = "100000.00"
COMPLIANCE_CHECKS = (
    "classification",
    "desensitisation",
    "lifecycle_and_retention",
    "risk_controls",
)
# Long enough for a committed batch to reach a WebSocket; a missing message fails, not hangs.
WS_RECEIVE_TIMEOUT_S = 5.0


# -- request bodies ------------------------------------------------------------------------


def product_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Hangzhou on-street parking occupancy",
        "description": "Per-bay occupancy, hourly",
        "category": "transport",
        "region": "Zhejiang",
        "record_count": 12_000,
        "coverage_start": "2024-01-01",
        "coverage_end": "2025-12-31",
        "update_frequency": "daily",
        "quality": {"completeness": 0.9, "accuracy": 0.9, "timeliness": 0.8, "consistency": 0.9},
        "personal_information": False,
        "classification": "general",
        "desensitised": False,
        "lawful_source_attestation": "Collected under concession contract HZ-2021-17",
        "cost_basis": "85000.00",
    }
    body.update(overrides)
    return body


def review_body(decision: str = "approved", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "decision": decision,
        "checks": dict.fromkeys(COMPLIANCE_CHECKS, True),
        "opinion": f"{decision} after review",
    }
    body.update(overrides)
    return body


def instrument_body(product_id: str, symbol: str = SYMBOL, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "symbol": symbol,
        "product_id": product_id,
        "exclusivity": "non_exclusive",
        "duration_months": 12,
        "scope": "commercial",
        "territory": "domestic",
        "transferable": True,
        "tick_size": TICK,
        "trading_mode": "continuous",
        "issuance_cap": ISSUANCE_CAP_UNITS,
        "fee_rate_bp": FEE_RATE_BP,
    }
    body.update(overrides)
    return body


def order_body(
    client_order_id: str, side: str, price: str | None, quantity: int, **overrides: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "client_order_id": client_order_id,
        "symbol": SYMBOL,
        "side": side,
        "price": price,
        "quantity": quantity,
    }
    body.update(overrides)
    return body


# -- the served app ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Market:
    """What :meth:`Api.market` built: an approved product and its continuous instrument."""

    product_id: str
    symbol: str


class Api:
    """A client of the served app, and the API keys of the participants it created."""

    def __init__(self, app: FastAPI, client: TestClient, admin_key: str) -> None:
        self.app = app
        self.client = client
        self.admin_key = admin_key
        self.keys: dict[str, str] = {ADMIN: admin_key}

    def headers(self, participant: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[participant]}

    def request(
        self, method: str, path: str, who: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """``method path`` as ``who`` (no key when None)."""
        headers = kwargs.pop("headers", {})
        if who is not None:
            headers = {**self.headers(who), **headers}
        return self.client.request(method, path, headers=headers, **kwargs)

    def expect(self, status: int, method: str, path: str, who: str | None = None,
               **kwargs: Any) -> Any:  # fmt: skip
        """The JSON body of ``method path``, which must answer ``status``."""
        response = self.request(method, path, who, **kwargs)
        assert response.status_code == status, (method, path, response.status_code,
                                                response.text)  # fmt: skip
        return response.json()

    def create_participant(self, participant_id: str, *roles: str) -> str:
        """Create a participant through ``POST /v1/participants``; its API key."""
        body = {"participant_id": participant_id, "name": participant_id.title(),
                "roles": list(roles)}  # fmt: skip
        created = self.expect(201, "POST", "/v1/participants", ADMIN, json=body)
        self.keys[participant_id] = created["api_key"]
        return created["api_key"]

    def journal_seq(self) -> int:
        return self.expect(200, "GET", "/v1/health")["journal_seq"]

    def order(self, who: str, client_order_id: str, side: str, price: str | None,
              quantity: int, **overrides: Any) -> httpx.Response:  # fmt: skip
        body = order_body(client_order_id, side, price, quantity, **overrides)
        return self.request("POST", "/v1/orders", who, json=body)

    def placed(self, who: str, client_order_id: str, side: str, price: str | None,
               quantity: int, **overrides: Any) -> dict[str, Any]:  # fmt: skip
        """An order that must be accepted; its body."""
        response = self.order(who, client_order_id, side, price, quantity, **overrides)
        assert response.status_code == 201, response.text
        return response.json()

    def balances(self, who: str) -> dict[str, Any]:
        return self.expect(200, "GET", "/v1/balances", who)

    def deposit(self, who: str, amount: str = CASH_DEPOSIT) -> None:
        body = {"participant_id": who, "amount": amount}
        self.expect(201, "POST", "/v1/deposits", ADMIN, json=body)

    def approved_product(self, **overrides: Any) -> str:
        """A product the reviewer approved; its id. Needs :meth:`participants` first."""
        product = self.expect(201, "POST", "/v1/products", PROVIDER,
                              json=product_body(**overrides))  # fmt: skip
        path = f"/v1/products/{product['product_id']}/reviews"
        reviewed = self.expect(201, "POST", path, REVIEWER, json=review_body())
        assert reviewed["status"] == "approved", reviewed
        return product["product_id"]

    def list_instrument(self, product_id: str, symbol: str, phase: str | None = None,
                        **overrides: Any) -> None:  # fmt: skip
        """List ``symbol`` (it opens in pre-open), then move it to ``phase`` if given."""
        body = instrument_body(product_id, symbol, **overrides)
        self.expect(201, "POST", "/v1/instruments", PROVIDER, json=body)
        if phase is not None:
            path = f"/v1/instruments/{symbol}/phase"
            self.expect(200, "POST", path, ADMIN, json={"phase": phase})

    def participants(self) -> None:
        """One participant of each role but admin: provider, reviewer, regulator, two
        buyers and a market maker."""
        for participant_id, role in (
            (PROVIDER, "provider"), (REVIEWER, "reviewer"), (REGULATOR, "regulator"),
            (BUYERS[0], "buyer"), (BUYERS[1], "buyer"), (MARKET_MAKER, "market_maker"),
        ):  # fmt: skip
            self.create_participant(participant_id, role)

    def market(self) -> Market:
        """Participants of every role, an approved product, ``SYMBOL`` listed (continuous
        mode, transferable, tick 1.00) and trading continuously, and the buyers and the
        market maker each holding ``CASH_DEPOSIT``. The provider holds the whole issuance."""
        self.participants()
        product_id = self.approved_product()
        self.list_instrument(product_id, SYMBOL, "continuous")
        for who in (*BUYERS, MARKET_MAKER):
            self.deposit(who)
        return Market(product_id, SYMBOL)


@contextmanager
def serve(database_url: str, **settings: Any) -> Iterator[Api]:
    """The app on ``database_url`` (``settings`` override :class:`Settings`' defaults),
    opened, with an admin; the process's database engines are disposed afterwards, so the
    database can be dropped."""
    admin_key = new_api_key()

    def bootstrap(runtime: Runtime) -> None:
        runtime.sequencer.execute(c.CreateParticipant(
            OPERATOR, ADMIN, "Exchange admin", ["admin"], admin_key.key_id,
            secret_digest(admin_key.secret),
        ))  # fmt: skip

    app = create_app(Settings(database_url, **settings), on_start=bootstrap)
    try:
        with TestClient(app) as client:
            yield Api(app, client, str(admin_key))
    finally:
        # The ledger keeps one engine per URL per process; its pooled connections would
        # keep the schema busy when the database fixture drops it.
        dispose_engines()


# -- WebSockets ----------------------------------------------------------------------------


def receive_json(websocket: WebSocketTestSession, timeout_s: float = WS_RECEIVE_TIMEOUT_S) -> Any:
    """The next message of ``websocket``, or a failure after ``timeout_s``.

    The test client's own ``receive_json`` waits forever, so a message that never comes would
    hang the run; this waits on the same stream (a private attribute, the only handle on it)
    under a deadline.
    """

    async def receive() -> Any:
        with anyio.fail_after(timeout_s):
            return await websocket._send_rx.receive()

    try:
        message = websocket.portal.call(receive)
    except TimeoutError:
        raise AssertionError(f"no WebSocket message within {timeout_s} s") from None
    if message["type"] == "websocket.close":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason", ""))
    return json.loads(message["text"])
