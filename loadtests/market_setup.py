"""A market for a load test, built through the exchange's API with a bootstrap admin key.

:func:`bootstrap` makes, on a running server, with the admin's key and nothing else:

- a provider and a reviewer; ``instruments`` approved products, each listing one
  continuous, transferable instrument (tick ``TICK_MINOR``, issuance cap ``ISSUANCE_CAP_UNITS``,
  fee ``FEE_RATE_BP``) that the admin moves to continuous trading;
- ``traders`` participants with the role ``buyer`` and ``market_makers`` with the role
  ``market_maker``, each funded with ``CASH_DEPOSIT_MINOR`` and holding
  ``INVENTORY_UNITS`` licences of every instrument, bought from the provider at the
  instrument's reference price (one primary trade each, so one holding with one expiry), so
  that every one of them can both buy and resell from the first order on;
- ``valuers`` participants with the role ``buyer`` and nothing else: valuations need a key.

Every name carries a tag drawn for the run, so a second setup on the same server makes a
second, separate market. Every request must succeed: setup is not under test, and a failure
raises :class:`SetupError` naming the request.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "CASH_DEPOSIT_MINOR",
    "INVENTORY_UNITS",
    "Account",
    "Market",
    "SetupError",
    "bootstrap",
    "format_minor",
    "parse_minor",
]

ROLE_OF = {"trader": "buyer", "market_maker": "market_maker", "valuer": "buyer"}
TICK_MINOR = 10  # 0.10 CNY
FIRST_MID_MINOR = 10_000  # 100.00 CNY, the first instrument's reference price
MID_STEP_MINOR = 2_500  # each further instrument 25.00 CNY dearer
ISSUANCE_CAP_UNITS = 10**9
FEE_RATE_BP = 10
INVENTORY_UNITS = 100_000
CASH_DEPOSIT_MINOR = 10**11  # 1,000,000,000.00 CNY: never the limit in a run of minutes
MAX_PARTICIPANTS_PER_ROLE = 1_000
MAX_INSTRUMENTS = 20
HTTP_TIMEOUT_S = 30.0
# The first valuation of a server starts its pricing process: generous on a busy machine.
WARM_UP_TIMEOUT_S = 120.0
# Licence terms the valuers value under.
VALUATION_TERMS = [
    {
        "exclusivity": "non_exclusive",
        "duration_months": months,
        "scope": scope,
        "territory": territory,
    }
    for months in (6, 12, 24)
    for scope in ("internal", "commercial")
    for territory in ("domestic", "cross_border")
]


class SetupError(Exception):
    """A setup request did not succeed."""


def format_minor(minor: int) -> str:
    """Minor units as the API's decimal string: ``12345 -> "123.45"``."""
    assert minor >= 0, minor
    return f"{minor // 100}.{minor % 100:02d}"


def parse_minor(text: str) -> int:
    """The API's decimal string as minor units: ``"123.4" -> 12340`` (at most two
    decimals, as the API writes them)."""
    units, _, fraction = text.partition(".")
    assert len(fraction) <= 2, text
    return int(units) * 100 + int(fraction.ljust(2, "0"))


@dataclass(frozen=True, slots=True)
class Account:
    participant_id: str
    api_key: str


@dataclass(slots=True)
class Market:
    """What :func:`bootstrap` built; saved as JSON for the post-run checks and reports."""

    tag: str
    symbols: list[str]
    product_ids: dict[str, str]  # symbol -> product id
    mid_minor: dict[str, int]  # symbol -> reference price
    tick_minor: int
    accounts: dict[str, list[Account]] = field(default_factory=dict)  # role -> accounts
    deposits_minor: int = 0
    inventory_units: int = INVENTORY_UNITS

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def save(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def from_json(cls, text: str) -> Market:
        data = json.loads(text)
        data["accounts"] = {
            role: [Account(**account) for account in accounts]
            for role, accounts in data["accounts"].items()
        }
        return cls(**data)


class _Client:
    """Requests that must succeed, as one participant or as nobody."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT_S)

    def call(
        self,
        status: int,
        method: str,
        path: str,
        key: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        headers = {} if key is None else {"X-API-Key": key}
        response = self.http.request(method, path, headers=headers, json=body)
        if response.status_code != status:
            raise SetupError(
                f"{method} {path} answered {response.status_code}, not {status}: "
                f"{response.text[:500]}"
            )
        return response.json()

    def close(self) -> None:
        self.http.close()


def _product_body(index: int) -> dict[str, Any]:
    return {
        "title": f"Load-test traffic counts {index}",
        "description": "Synthetic product listed by a load test",
        "category": "transport",
        "region": "Zhejiang",
        "record_count": 1_000_000 + index,
        "coverage_start": "2024-01-01",
        "coverage_end": "2025-12-31",
        "update_frequency": "daily",
        "quality": {"completeness": 0.9, "accuracy": 0.9, "timeliness": 0.8, "consistency": 0.9},
        "personal_information": False,
        "classification": "general",
        "desensitised": False,
        "lawful_source_attestation": "Synthetic data made for a load test",
        "cost_basis": "80.00",
    }


def _review_body() -> dict[str, Any]:
    checks = ("classification", "desensitisation", "lifecycle_and_retention", "risk_controls")
    return {
        "decision": "approved",
        "checks": dict.fromkeys(checks, True),
        "opinion": "approved for a load test",
    }


def bootstrap(
    base_url: str,
    admin_key: str,
    *,
    traders: int,
    market_makers: int,
    valuers: int = 0,
    instruments: int,
) -> Market:
    """Build the market described in the module docstring on the server at ``base_url``."""
    if not 1 <= instruments <= MAX_INSTRUMENTS:
        raise ValueError(f"instruments must be in 1..{MAX_INSTRUMENTS}, not {instruments}")
    counts = {"trader": traders, "market_maker": market_makers, "valuer": valuers}
    for what, count in counts.items():
        if not 0 <= count <= MAX_PARTICIPANTS_PER_ROLE:
            raise ValueError(f"{what}s must be in 0..{MAX_PARTICIPANTS_PER_ROLE}, not {count}")
    tag = secrets.token_hex(3)
    client = _Client(base_url)
    try:
        return _bootstrap(client, admin_key, tag, counts, instruments)
    finally:
        client.close()


def _bootstrap(
    client: _Client, admin_key: str, tag: str, counts: dict[str, int], instruments: int
) -> Market:
    def participant(participant_id: str, role: str) -> Account:
        body = {"participant_id": participant_id, "name": participant_id, "roles": [role]}
        created = client.call(201, "POST", "/v1/participants", admin_key, body)
        return Account(participant_id, created["api_key"])

    provider = participant(f"lt{tag}-provider", "provider")
    reviewer = participant(f"lt{tag}-reviewer", "reviewer")
    market = Market(tag=tag, symbols=[], product_ids={}, mid_minor={}, tick_minor=TICK_MINOR)
    for index in range(1, instruments + 1):
        product = client.call(201, "POST", "/v1/products", provider.api_key, _product_body(index))
        product_id = product["product_id"]
        client.call(
            201, "POST", f"/v1/products/{product_id}/reviews", reviewer.api_key, _review_body()
        )
        symbol = f"LT{tag.upper()}-{index}"
        client.call(
            201,
            "POST",
            "/v1/instruments",
            provider.api_key,
            {
                "symbol": symbol,
                "product_id": product_id,
                "exclusivity": "non_exclusive",
                "duration_months": 12,
                "scope": "commercial",
                "territory": "domestic",
                "transferable": True,
                "tick_size": format_minor(TICK_MINOR),
                "trading_mode": "continuous",
                "issuance_cap": ISSUANCE_CAP_UNITS,
                "fee_rate_bp": FEE_RATE_BP,
            },
        )
        client.call(
            200, "POST", f"/v1/instruments/{symbol}/phase", admin_key, {"phase": "continuous"}
        )
        market.symbols.append(symbol)
        market.product_ids[symbol] = product_id
        market.mid_minor[symbol] = FIRST_MID_MINOR + (index - 1) * MID_STEP_MINOR

    for role, count in counts.items():
        letter = role[0]
        market.accounts[role] = [
            participant(f"lt{tag}-{letter}{number}", ROLE_OF[role]) for number in range(count)
        ]
    holders = market.accounts["trader"] + market.accounts["market_maker"]
    for account in holders:
        client.call(
            201,
            "POST",
            "/v1/deposits",
            admin_key,
            {
                "participant_id": account.participant_id,
                "amount": format_minor(CASH_DEPOSIT_MINOR),
                "reference": f"load test {tag}",
            },
        )
        market.deposits_minor += CASH_DEPOSIT_MINOR

    # Inventory: the provider offers every holder's share at once, and each holder buys it in
    # one primary trade, so each holds one block with one expiry it can resell from.
    for symbol in market.symbols if holders else ():
        price = format_minor(market.mid_minor[symbol])
        offer = client.call(
            201,
            "POST",
            "/v1/orders",
            provider.api_key,
            {
                "client_order_id": f"inventory-{symbol}",
                "symbol": symbol,
                "side": "sell",
                "price": price,
                "quantity": INVENTORY_UNITS * len(holders),
            },
        )
        for account in holders:
            bought = client.call(
                201,
                "POST",
                "/v1/orders",
                account.api_key,
                {
                    "client_order_id": f"inventory-{symbol}",
                    "symbol": symbol,
                    "side": "buy",
                    "price": price,
                    "quantity": INVENTORY_UNITS,
                },
            )
            if bought["filled_quantity"] != INVENTORY_UNITS:
                raise SetupError(
                    f"{account.participant_id} bought {bought['filled_quantity']} "
                    f"of {INVENTORY_UNITS} {symbol}: {bought}"
                )
        left = client.call(200, "GET", f"/v1/orders/{offer['order_id']}", provider.api_key)
        if left["status"] != "filled":
            raise SetupError(f"the provider's inventory offer of {symbol} is {left['status']}")
    if market.accounts.get("valuer") and market.symbols:
        _warm_valuations(client, market)
    return market


def _warm_valuations(client: _Client, market: Market) -> None:
    """One valuation before the timed phases: the server's first starts the process that
    prepares valuation markets (seconds on a busy machine), a cost paid once per server
    that no phase should measure."""
    valuer = market.accounts["valuer"][0]
    body = {"product_id": market.product_ids[market.symbols[0]], "terms": VALUATION_TERMS[0]}
    response = client.http.post(
        "/v1/valuations",
        headers={"X-API-Key": valuer.api_key},
        json=body,
        timeout=WARM_UP_TIMEOUT_S,
    )
    if response.status_code not in (200, 422):  # 422: too little traded to value
        raise SetupError(
            f"POST /v1/valuations answered {response.status_code}: {response.text[:500]}"
        )
