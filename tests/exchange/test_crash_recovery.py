"""A crash under load loses nothing that was acknowledged, and settles nothing twice.

A real ``dataex serve`` process takes orders from eight threads and is killed with SIGKILL
while requests are in flight; a second process starts on the same database. Everything the
first one acknowledged (HTTP 201) must be there, with the fills it reported; retries of
acknowledged orders must be recognised without journalling anything; the ledger must verify
and conserve cash and licence units; and the restarted server must serve the state a fresh
replay of the journal gives. Requests that failed with the crash were never acknowledged, so
either outcome is allowed for them.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from exchange.recovery import recover
from ledger import EntryKind, accounts
from ledger.canonical import parse_json
from ledger.database import dispose_engines
from ledger.models import EntryRow
from ledger.store import Ledger
from ledger.verify import verify

from .serverproc import HTTP_TIMEOUT_S, ServerProcess, create_admin

SYMBOL = "CRASH.NX12.COM"
PROVIDER = "prov"
REVIEWER = "rev"
BUYERS = ("b1", "b2", "b3", "b4")
DEPOSIT = "1000000.00"
DEPOSIT_MINOR = 100_000_000
ISSUANCE_CAP_UNITS = 1_000_000
FEE_RATE_BP = 10
# Buyers and the provider quote around 100.00 so that most orders meet the other side.
PRICES = range(96, 105)
MAX_ORDER_UNITS = 5
# Eight threads: one per buyer, the rest selling for the provider.
SELLER_THREADS = 4
ACKS_BEFORE_CRASH = 500
LOAD_TIMEOUT_S = 15.0
JOIN_TIMEOUT_S = 10.0
PAGE_SIZE = 500
BOOK_DEPTH = 50

PRODUCT = {
    "title": "Crash-test parking occupancy", "description": "Per-bay occupancy",
    "category": "transport", "region": "Zhejiang", "record_count": 12_000_000,
    "coverage_start": "2023-01-01", "coverage_end": "2025-12-31", "update_frequency": "daily",
    "quality": {"completeness": 0.97, "accuracy": 0.95, "timeliness": 0.9,
                "consistency": 0.93},
    "personal_information": False, "classification": "general", "desensitised": False,
    "lawful_source_attestation": "Collected under concession contract HZ-2021-17",
    "cost_basis": "850000.00",
}  # fmt: skip
APPROVAL = {
    "decision": "approved",
    "checks": {"classification": True, "desensitisation": True,
               "lifecycle_and_retention": True, "risk_controls": True},
    "opinion": "General data; retention policy adequate.",
}  # fmt: skip


def minor(amount: str) -> int:
    """A decimal string in currency units ("12.30") as exact minor units (1230)."""
    value = Decimal(amount) * 100
    assert value == value.to_integral_value(), amount
    return int(value)


@dataclass(frozen=True, slots=True)
class Ack:
    """An order the server acknowledged: who sent it, what was sent, what came back."""

    participant: str
    body: dict[str, Any]
    response: dict[str, Any]


class Api:
    """The HTTP calls of this test, each with a time limit, asserting the expected status."""

    def __init__(self, base_url: str, keys: dict[str, str]) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT_S)
        self.keys = keys

    def close(self) -> None:
        self.client.close()

    def call(self, method: str, path: str, who: str | None = None, status: int = 200,
             **kwargs: Any) -> Any:  # fmt: skip
        headers = {} if who is None else {"X-API-Key": self.keys[who]}
        response = self.client.request(method, path, headers=headers, **kwargs)
        assert response.status_code == status, (method, path, response.text)
        return response.json()

    def pages(self, path: str, who: str, cursor: str) -> list[dict[str, Any]]:
        """Every item of a paged list, following ``after`` = the last item's ``cursor``."""
        items: list[dict[str, Any]] = []
        while True:
            after = items[-1][cursor] if items else 0
            page = self.call("GET", path, who, params={"after": after, "limit": PAGE_SIZE})
            items.extend(page)
            if len(page) < PAGE_SIZE:
                return items

    def health(self) -> dict[str, Any]:
        return self.call("GET", "/v1/health")


def set_up_market(api: Api) -> None:
    """Participants, an approved product, a continuous instrument, funded buyers."""
    roles = {PROVIDER: "provider", REVIEWER: "reviewer", **dict.fromkeys(BUYERS, "buyer")}
    for participant, role in roles.items():
        created = api.call("POST", "/v1/participants", "admin", 201, json={
            "participant_id": participant, "name": participant.title(), "roles": [role],
        })  # fmt: skip
        api.keys[participant] = created["api_key"]
    product_id = api.call("POST", "/v1/products", PROVIDER, 201, json=PRODUCT)["product_id"]
    reviewed = api.call("POST", f"/v1/products/{product_id}/reviews", REVIEWER, 201,
                        json=APPROVAL)  # fmt: skip
    assert reviewed["status"] == "approved", reviewed
    api.call("POST", "/v1/instruments", PROVIDER, 201, json={
        "symbol": SYMBOL, "product_id": product_id, "exclusivity": "non_exclusive",
        "duration_months": 12, "scope": "commercial", "territory": "domestic",
        "transferable": True, "tick_size": "1.00", "lot_size": 1, "trading_mode": "continuous",
        "issuance_cap": ISSUANCE_CAP_UNITS, "fee_rate_bp": FEE_RATE_BP,
    })  # fmt: skip
    phase = api.call("POST", f"/v1/instruments/{SYMBOL}/phase", "admin", json={
        "phase": "continuous"
    })  # fmt: skip
    assert phase["phase"] == "continuous", phase
    for buyer in BUYERS:
        api.call("POST", "/v1/deposits", "admin", 201,
                 json={"participant_id": buyer, "amount": DEPOSIT})  # fmt: skip


class OrderFlow:
    """Threads that submit orders until the server stops answering; see ``run_until_crash``."""

    def __init__(self, base_url: str, keys: dict[str, str]) -> None:
        self.base_url = base_url
        self.keys = keys
        self.acks: list[Ack] = []  # list.append is atomic: the threads share it unlocked
        self.refusals: list[tuple[int, str]] = []
        self.failures: list[str] = []  # the transport error that ended each thread
        # The request each thread had sent (or was sending) when the server died.
        self.unanswered: list[tuple[str, dict[str, Any]]] = []
        self.stop = threading.Event()
        traders = [*BUYERS, *[PROVIDER] * SELLER_THREADS]
        self.threads = [
            threading.Thread(target=self._trade, args=(worker, trader), daemon=True)
            for worker, trader in enumerate(traders)
        ]

    def _trade(self, worker: int, participant: str) -> None:
        rng = random.Random(worker)  # the same flow on every run, up to thread timing
        side = "sell" if participant == PROVIDER else "buy"
        headers = {"X-API-Key": self.keys[participant]}
        with httpx.Client(base_url=self.base_url, timeout=HTTP_TIMEOUT_S) as client:
            for number in range(1_000_000):
                if self.stop.is_set():
                    return
                body = {
                    "client_order_id": f"w{worker}-{number}", "symbol": SYMBOL, "side": side,
                    "price": f"{rng.choice(PRICES)}.00",
                    "quantity": rng.randint(1, MAX_ORDER_UNITS),
                    "time_in_force": rng.choice(("GTC", "GTC", "GTC", "IOC")),
                }  # fmt: skip
                try:
                    response = client.post("/v1/orders", json=body, headers=headers)
                except httpx.TransportError as error:
                    self.failures.append(type(error).__name__)
                    self.unanswered.append((participant, body))
                    return
                if response.status_code == 201:
                    self.acks.append(Ack(participant, body, response.json()))
                else:
                    self.refusals.append((response.status_code, response.text))

    def run_until_crash(self, server: ServerProcess) -> float:
        """Start the threads, SIGKILL ``server`` once enough orders are acknowledged (the
        threads still sending), wait for the threads to fail; the seconds of load."""
        started = time.monotonic()
        for thread in self.threads:
            thread.start()
        killed = False
        try:
            while len(self.acks) < ACKS_BEFORE_CRASH:
                assert time.monotonic() - started < LOAD_TIMEOUT_S, (
                    f"only {len(self.acks)} acknowledgements in {LOAD_TIMEOUT_S} s"
                )
                assert not self.refusals, self.refusals[:3]
                time.sleep(0.005)
            server.kill()
            killed = True
        finally:
            # Only if the kill did not happen: after it, a thread answered just before the
            # server died must go on to meet the dead server, not stop quietly.
            if not killed:
                self.stop.set()
            for thread in self.threads:
                thread.join(JOIN_TIMEOUT_S)
        assert not any(thread.is_alive() for thread in self.threads)
        return time.monotonic() - started


def check_acknowledged_orders_survive(api: Api, acks: list[Ack]) -> None:
    """Each acknowledged order reads back as submitted, with at least the fills reported;
    one that the acknowledgement showed closed reads back exactly as acknowledged."""
    assert len({ack.response["order_id"] for ack in acks}) == len(acks)
    for ack in acks:
        order = api.call("GET", f"/v1/orders/{ack.response['order_id']}", ack.participant)
        sent = {key: order[key] for key in ("client_order_id", "symbol", "side", "price",
                                            "quantity", "time_in_force")}  # fmt: skip
        assert sent == ack.body, (ack, order)
        assert order["filled_quantity"] >= ack.response["filled_quantity"], (ack, order)
        if ack.response["status"] in ("filled", "cancelled"):
            assert order == ack.response, "a closed order changes no more"


def check_fills(api: Api) -> dict[str, list[dict[str, Any]]]:
    """Per participant, the fills of each order add up to its filled quantity, and no
    client order id names two orders; each trade has exactly one buy fill and one sell
    fill, alike, and trade ids run 1..n. Returns the fills by participant."""
    fills = {who: api.pages("/v1/fills", who, "trade_id") for who in (*BUYERS, PROVIDER)}
    for who, own in fills.items():
        filled_by_order: Counter[int] = Counter()
        for fill in own:
            filled_by_order[fill["order_id"]] += fill["quantity"]
        orders = api.pages("/v1/orders", who, "order_id")
        client_order_ids = [o["client_order_id"] for o in orders]
        assert len(set(client_order_ids)) == len(client_order_ids), f"{who}: an order twice"
        assert {o["order_id"]: o["filled_quantity"] for o in orders if o["filled_quantity"]} == (
            dict(filled_by_order)
        ), who
    sides: defaultdict[int, dict[str, tuple]] = defaultdict(dict)
    for who, own in fills.items():
        for fill in own:
            assert fill["side"] not in sides[fill["trade_id"]], fill
            sides[fill["trade_id"]][fill["side"]] = (fill["price"], fill["quantity"], who)
    for trade_id, pair in sides.items():
        assert set(pair) == {"buy", "sell"}, (trade_id, pair)
        assert pair["buy"][:2] == pair["sell"][:2], (trade_id, pair)
    assert sorted(sides) == list(range(1, len(sides) + 1))
    return fills


def check_retries_are_recognised(api: Api, acks: list[Ack]) -> None:
    """Resending an acknowledged order returns the original response and journals nothing."""
    journal_seq = api.health()["journal_seq"]
    for ack in acks:
        again = api.call("POST", "/v1/orders", ack.participant, 201, json=ack.body)
        assert again == ack.response, (ack, again)
    assert api.health()["journal_seq"] == journal_seq


def retry_unanswered(api: Api, unanswered: list[tuple[str, dict[str, Any]]]) -> tuple[int, int]:
    """Resend what the crash left unanswered, as a client would: each is accepted once
    (new, or recognised if it was journalled before the crash). Returns (resent, already
    journalled)."""
    journal_seq = api.health()["journal_seq"]
    for participant, body in unanswered:
        again = api.call("POST", "/v1/orders", participant, 201, json=body)
        assert again["client_order_id"] == body["client_order_id"], again
    journalled_now = api.health()["journal_seq"] - journal_seq
    return len(unanswered), len(unanswered) - journalled_now


def check_ledger(ledger: Ledger, fills: dict[str, list[dict[str, Any]]]) -> None:
    """The ledger verifies, every asset sums to zero, deposits are the only cash from
    outside, each trade is settled once and the balances match the fills."""
    report = verify(ledger)
    assert report.ok, report.first_problem
    balances = ledger.balances()
    totals: Counter[str] = Counter()
    for (_account, asset), units in balances.items():
        totals[asset] += units
    licence = accounts.licence_asset(SYMBOL)
    assert totals == {accounts.CASH: 0, licence: 0}, totals
    assert balances[(accounts.EXTERNAL_CASH, accounts.CASH)] == -DEPOSIT_MINOR * len(BUYERS)

    with ledger.snapshot() as connection:
        table = EntryRow.__table__
        settled = connection.execute(
            select(table.c.key, table.c.body).where(table.c.kind == EntryKind.TRADE_SETTLEMENT)
        ).all()
    # Every trade is a buyer buying from the provider, so the buyers' fills name every trade.
    trades = {
        f"trade:{fill['trade_id']}": (buyer, minor(fill["price"]), fill["quantity"])
        for buyer in BUYERS for fill in fills[buyer]
    }  # fmt: skip
    assert len(settled) == len(trades) == max((f["trade_id"] for f in fills[PROVIDER]), default=0)
    for key, body_json in settled:
        body = parse_json(body_json)
        settled_as = (body["buyer"], body["price_minor_per_unit"], body["quantity_units"])
        assert body["seller"] == PROVIDER and settled_as == trades[key], (key, body)

    def held(who: str) -> int:
        prefix = f"participant:{who}:licence:{SYMBOL}:"
        return sum(units for (account, _), units in balances.items() if account.startswith(prefix))

    def cash(who: str) -> int:
        return balances.get((accounts.cash(who), accounts.CASH), 0)

    for buyer in BUYERS:
        bought = fills[buyer]
        assert held(buyer) == sum(f["quantity"] for f in bought), buyer
        spent = sum(minor(f["price"]) * f["quantity"] for f in bought)
        assert cash(buyer) == DEPOSIT_MINOR - spent, buyer
    sold = fills[PROVIDER]
    fees = sum(minor(f["fee"]) for f in sold)
    assert cash(PROVIDER) == sum(minor(f["price"]) * f["quantity"] for f in sold) - fees
    assert balances.get((accounts.EXCHANGE_FEES, accounts.CASH), 0) == fees
    issuance = balances[(accounts.issuance(SYMBOL), licence)]
    assert issuance == ISSUANCE_CAP_UNITS - sum(f["quantity"] for f in sold)


def book_levels(levels: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """Engine depth (price in minor units, units) in the API's form."""
    return [{"price": f"{price // 100}.{price % 100:02d}", "quantity": units}
            for price, units in levels]  # fmt: skip


def journalled_orders(ledger: Ledger) -> dict[tuple[str, str], int]:
    """``(participant, client_order_id) -> order_id`` of every order in the journal."""
    orders: dict[tuple[str, str], int] = {}
    start = 1
    while records := ledger.journal(start, 10_000):
        for record in records:
            command = record.command
            if command["verb"] == "submit_order":
                orders[(command["actor"], command["client_order_id"])] = command["order_id"]
        start = records[-1].seq + 1
    return orders


def test_acknowledged_orders_survive_a_crash_under_load(database_url: str, tmp_path: Path) -> None:
    started = time.monotonic()
    keys = {"admin": create_admin(database_url)}
    servers: list[ServerProcess] = []
    apis: list[Api] = []
    try:
        first = ServerProcess.start(database_url, tmp_path / "first.log")
        servers.append(first)
        apis.append(Api(first.base_url, keys))
        set_up_market(apis[0])
        flow = OrderFlow(first.base_url, keys)
        load_s = flow.run_until_crash(first)
        assert first.process.returncode == -signal.SIGKILL
        acks = flow.acks
        assert len(acks) >= ACKS_BEFORE_CRASH
        assert len(flow.failures) == len(flow.threads), "every thread ends at the crash"
        assert set(flow.failures) - {"ConnectError"}, "some requests were in flight"

        restarted = time.monotonic()
        second = ServerProcess.start(database_url, tmp_path / "second.log")
        servers.append(second)
        restart_s = time.monotonic() - restarted
        api = Api(second.base_url, keys)
        apis.append(api)
        check_acknowledged_orders_survive(api, acks)
        check_retries_are_recognised(api, acks)
        resent, journalled_before = retry_unanswered(api, flow.unanswered)
        fills = check_fills(api)
        health = api.health()
        book = api.call("GET", f"/v1/market/{SYMBOL}/book", params={"depth": BOOK_DEPTH})
        ledger = Ledger.open(database_url, run_migrations=False)
        hash_while_serving = recover(ledger).engine.state_hash()
        # uvicorn shuts down, then re-raises the SIGTERM it caught: -15 is a clean exit.
        assert second.stop() in (0, -signal.SIGTERM), second.log()

        rebuilt = recover(ledger)
        assert rebuilt.engine.state_hash() == hash_while_serving
        assert rebuilt.head_seq == health["journal_seq"] == ledger.journal_head_seq()
        assert rebuilt.engine.open_order_count() == health["open_orders"]
        bids, asks = rebuilt.engine.depth(SYMBOL, BOOK_DEPTH)
        assert (book["bids"], book["asks"]) == (book_levels(bids), book_levels(asks))
        acknowledged = {(a.participant, a.body["client_order_id"]): a.response["order_id"]
                        for a in acks}  # fmt: skip
        assert acknowledged.items() <= journalled_orders(ledger).items()
        check_ledger(ledger, fills)
    finally:
        for client in apis:
            client.close()
        for server in servers:
            server.kill()
        dispose_engines()
    print(f"\n{len(acks)} acks in {load_s:.1f} s, then SIGKILL; threads ended by "
          f"{dict(Counter(flow.failures))}; {resent} resent, {journalled_before} of them "
          f"journalled before the crash; restart {restart_s:.1f} s; "
          f"{len(fills[PROVIDER])} trades; {time.monotonic() - started:.1f} s in all")  # fmt: skip
