"""Random interleavings of order-entry session requests (pipelined, on two sessions) and REST
requests, on one market: every session request is answered once and in order, what the
answers say is what REST shows, the book is the open orders, cash is conserved, the
exchange's invariants hold, and the journal replays into the same state."""

from __future__ import annotations

import json
from contextlib import ExitStack
from decimal import Decimal
from itertools import count
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.research import DatabaseJournal, replay
from tests.exchange.api.helpers import (
    BUYERS,
    CASH_DEPOSIT,
    MARKET_MAKER,
    PROVIDER,
    SYMBOL,
    Api,
    receive_json,
)
from tests.exchange.helpers import assert_same_state

ANN, BOB = BUYERS
SESSION_TRADERS = (ANN, MARKET_MAKER)
REST_TRADERS = (ANN, BOB, PROVIDER, MARKET_MAKER)

prices = st.integers(95, 105).map(lambda units: f"{units}.00")
quantities = st.integers(1, 3)
sides = st.sampled_from(["buy", "sell"])
actions = st.one_of(
    st.tuples(st.just("new_order"), sides, prices, quantities, st.sampled_from(["GTC", "IOC"])),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("amend"), st.integers(0, 30), prices, quantities),
    st.tuples(st.just("cancel_all"), st.sampled_from([None, "buy", "sell"])),
    st.tuples(st.just("mass_quote"), st.integers(95, 99), st.integers(101, 105), quantities),
)
steps = st.lists(
    st.tuples(st.sampled_from(["session", "rest"]), st.sampled_from(REST_TRADERS), actions),
    min_size=1, max_size=25,
)  # fmt: skip


class _Run:
    """The market, a session each for ann and the market maker, and the ids seen so far."""

    def __init__(self, api: Api, sockets: dict[str, Any]) -> None:
        self.api = api
        self.sockets = sockets
        self.ids = count(1)
        self.order_ids: dict[str, list[int]] = {who: [] for who in REST_TRADERS}
        self.acked: dict[int, dict[str, Any]] = {}  # the last answer about each order

    def message(self, who: str, action: tuple) -> dict[str, Any]:
        """The session message of ``action``; REST's body is the same less type and id."""
        kind, *args = action
        request: dict[str, Any] = {"type": kind, "request_id": next(self.ids)}
        known = self.order_ids[who] or [999_999]
        if kind == "new_order":
            side, price, quantity, tif = args
            request.update(client_order_id=f"o-{request['request_id']}", symbol=SYMBOL,
                           side=side, price=price, quantity=quantity,
                           time_in_force=tif)  # fmt: skip
        elif kind == "cancel":
            request["order_id"] = known[args[0] % len(known)]
        elif kind == "amend":
            request.update(order_id=known[args[0] % len(known)], price=args[1],
                           quantity=args[2])  # fmt: skip
        elif kind == "cancel_all":
            request.update(symbol=SYMBOL, side=args[0])
        else:
            bid, ask, quantity = args
            rid = request["request_id"]
            request.update(symbol=SYMBOL, quotes=[
                {"client_order_id": f"q-{rid}-b", "side": "buy", "price": f"{bid}.00",
                 "quantity": quantity},
                {"client_order_id": f"q-{rid}-a", "side": "sell", "price": f"{ask}.00",
                 "quantity": quantity},
            ])  # fmt: skip
        return request

    def rest(self, who: str, request: dict[str, Any]) -> None:
        kind = request["type"]
        body = {k: v for k, v in request.items() if k not in ("type", "request_id", "order_id")}
        if kind == "new_order":
            response = self.api.request("POST", "/v1/orders", who, json=body)
        elif kind == "cancel":
            response = self.api.request("DELETE", f"/v1/orders/{request['order_id']}", who)
        elif kind == "amend":
            response = self.api.request("PATCH", f"/v1/orders/{request['order_id']}", who,
                                        json=body)  # fmt: skip
        elif kind == "cancel_all":
            query = {k: v for k, v in body.items() if v is not None}
            response = self.api.request("DELETE", "/v1/orders", who, params=query)
        else:
            response = self.api.request("POST", "/v1/quotes", who, json=body)
        assert response.status_code < 500, response.text
        if response.status_code < 300:
            self.note(who, response.json())

    def note(self, who: str, answer: Any) -> None:
        """Remember the orders an answer names."""
        if isinstance(answer, dict) and "placed" in answer:
            orders = answer["cancelled"] + answer["placed"]
        elif isinstance(answer, dict) and "order_id" in answer:
            orders = [answer]
        else:
            orders = answer
        for order in orders:
            if order["order_id"] not in self.order_ids[who]:
                self.order_ids[who].append(order["order_id"])
            self.acked[order["order_id"]] = order

    def answers(self, who: str, request_ids: list[int]) -> None:
        """Read ``who``'s session until every request has its answer; check their order."""
        answered = []
        while len(answered) < len(request_ids):
            message = receive_json(self.sockets[who])
            if message["type"] == "fill":
                assert message["client_order_id"] and Decimal(message["price"]) > 0
                continue
            assert message["type"] in ("ack", "reject"), message
            answered.append(message["request_id"])
            if message["type"] == "reject":
                assert message["status"] < 500 and message["reason"], message
                continue
            for key in ("order", "orders"):
                if key in message:
                    self.note(who, message[key])
            if message["request"] == "mass_quote":
                self.note(who, message)
        assert answered == request_ids


def _check_consistent(run: _Run) -> None:
    api = run.api
    runtime = api.app.state.runtime
    runtime.read(lambda exchange: exchange.check_invariants())
    # The book is the open orders, level by level, as REST shows both.
    book = api.expect(200, "GET", f"/v1/market/{SYMBOL}/book?depth=50")
    levels: dict[tuple[str, str], int] = {}
    for who in REST_TRADERS:
        for order in api.expect(200, "GET", "/v1/orders?status=open&limit=500", who):
            key = (order["side"], order["price"])
            levels[key] = levels.get(key, 0) + order["remaining_quantity"]
    shown = {("buy", level["price"]): level["quantity"] for level in book["bids"]}
    shown.update({("sell", level["price"]): level["quantity"] for level in book["asks"]})
    assert shown == levels
    # Cash is conserved: what the traders hold (available and reserved) and the fees the
    # exchange took add up to what was deposited.
    held = sum(
        Decimal(balances["cash_available"]) + Decimal(balances["cash_reserved"])
        for balances in (api.balances(who) for who in REST_TRADERS)
    )  # fmt: skip
    fees = runtime.read(lambda exchange: sum(
        fill.fee_minor for fills in exchange.settlement.fills.values() for fill in fills
    ))  # fmt: skip
    assert held + Decimal(fees) / 100 == 3 * Decimal(CASH_DEPOSIT)
    # An order's last answer agrees with REST, unless something happened to it since.
    for order_id, answer in run.acked.items():
        owner = next(who for who, ids in run.order_ids.items() if order_id in ids)
        now = api.expect(200, "GET", f"/v1/orders/{order_id}", owner)
        if now["updated_at"] == answer["updated_at"]:
            assert now == answer


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=st.data())
def test_session_and_rest_interleaved_keep_the_market_consistent(api: Api, data: st.DataObject):
    # The market is built once and shared by the examples: each starts from where the last
    # left it, which is an interleaving too. Each example has sessions of its own.
    if not hasattr(api, "run"):
        api.market()
        api.placed(PROVIDER, "seed-ask", "sell", "100.00", 20)
        api.placed(MARKET_MAKER, "seed-lift", "buy", "100.00", 20)
        api.run = _Run(api, {})  # type: ignore[attr-defined]
    run: _Run = api.run  # type: ignore[attr-defined]
    with ExitStack() as stack:
        for who in SESSION_TRADERS:
            run.sockets[who] = stack.enter_context(
                api.client.websocket_connect("/v1/ws/session", headers=api.headers(who))
            )
            assert receive_json(run.sockets[who])["type"] == "session"
        sent: dict[str, list[int]] = {who: [] for who in SESSION_TRADERS}
        for channel, who, action in data.draw(steps):
            if channel == "session" and who in SESSION_TRADERS:
                request = run.message(who, action)
                run.sockets[who].send_text(json.dumps(request))
                sent[who].append(request["request_id"])
            else:
                run.rest(who, run.message(who, action))
        for who in SESSION_TRADERS:
            run.answers(who, sent[who])
    _check_consistent(run)


def test_the_interleaved_journal_replays(api: Api):
    """After interleaved session and REST requests, the journal replays to the live state."""
    test_session_and_rest_interleaved_keep_the_market_consistent(api)
    runtime = api.app.state.runtime
    report = replay(DatabaseJournal(runtime.ledger))
    assert report.ok, report.mismatch
    runtime.read(lambda exchange: assert_same_state(report.exchange, exchange))
