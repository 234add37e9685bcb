"""A locust user that trades over the order-entry session (``/v1/ws/session``): the
``ws-orders`` phase of ``python -m loadtests``.

Each :class:`SessionTrader` is one participant (taken from setup's traders, as
:class:`~loadtests.locustfile.Trader` is) on one session, authenticated by header. It keeps
:data:`PIPELINE_DEPTH` requests in flight: limit orders priced as a trader prices them and,
beyond :data:`~loadtests.locustfile.MAX_OPEN_ORDERS` open orders, cancels of its oldest.
Each answer is reported to locust as a request named ``WS new_order`` or ``WS cancel``,
its response time the time from sending the request to reading its answer (an ``ack`` means
journalled, as a REST 201 does). Refusals a trader meets in normal trading (risk, an order
filled meanwhile) count as successes, as over REST; anything else is a failure. Every
acknowledged order is recorded for the journal check after the run.

The client is websocket-client's blocking socket, which locust's gevent makes cooperative.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Final

from locust import User, constant, task
from websocket import WebSocket, create_connection

from loadtests.load_plan import check_loopback
from loadtests.locustfile import MAX_OPEN_ORDERS, MAX_ORDER_UNITS, PRICE_SPREAD_TICKS, STATE
from loadtests.market_setup import format_minor

__all__ = ["PIPELINE_DEPTH", "SessionTrader"]

SESSION_PATH: Final = "/v1/ws/session"
# Requests each user keeps unanswered. The session answers in order, so a deeper pipeline
# only queues: latency grows with it (Little's law) once the sequencer is the bottleneck.
PIPELINE_DEPTH: Final = 4
CONNECT_TIMEOUT_S: Final = 10.0
# Refusals of the session a trader meets in normal trading, as over REST (locustfile.EXPECTED).
EXPECTED_REJECTS: Final = {"new_order": frozenset({422}), "cancel": frozenset({409})}
_numbers = itertools.count(1)


@dataclass(frozen=True, slots=True)
class _Answer:
    """What locust's request listener reads of a response: its status."""

    status_code: int


class SessionTrader(User):
    wait_time = constant(0)

    def on_start(self) -> None:
        assert STATE.market is not None, "setup has not run"
        assert self.host is not None
        check_loopback(self.host)
        self.market = STATE.market
        self.number = next(_numbers)
        self.rng = random.Random(10_000 + self.number)
        self.account = STATE.take("trader")
        url = "ws" + self.host.removeprefix("http") + SESSION_PATH
        self.socket: WebSocket = create_connection(
            url, header=[f"X-API-Key: {self.account.api_key}"], timeout=CONNECT_TIMEOUT_S
        )
        greeting = json.loads(self.socket.recv())
        if greeting.get("type") != "session":
            raise RuntimeError(f"the session did not open: {greeting}")
        self.next_request = 1
        # request id -> (request name, client order id or None, when it was sent)
        self.in_flight: dict[int, tuple[str, str | None, float]] = {}
        self.open_orders: deque[int] = deque()
        self.cancelling: set[int] = set()

    def on_stop(self) -> None:
        self.socket.close()

    @task
    def trade(self) -> None:
        while len(self.in_flight) < PIPELINE_DEPTH:
            self._send()
        self._receive()

    def _send(self) -> None:
        request_id = self.next_request
        self.next_request += 1
        message: dict[str, Any]
        if len(self.open_orders) > MAX_OPEN_ORDERS:
            order_id = self.open_orders.popleft()
            self.cancelling.add(order_id)
            message = {"type": "cancel", "request_id": request_id, "order_id": order_id}
            self.in_flight[request_id] = ("cancel", None, time.perf_counter())
        else:
            symbol = self.rng.choice(self.market.symbols)
            ticks = self.rng.randint(-PRICE_SPREAD_TICKS, PRICE_SPREAD_TICKS)
            price = self.market.mid_minor[symbol] + ticks * self.market.tick_minor
            client_order_id = f"ws{self.number}-{request_id}"
            message = {
                "type": "new_order", "request_id": request_id,
                "client_order_id": client_order_id, "symbol": symbol,
                "side": self.rng.choice(("buy", "sell")),
                "price": format_minor(max(self.market.tick_minor, price)),
                "quantity": self.rng.randint(1, MAX_ORDER_UNITS),
            }  # fmt: skip
            self.in_flight[request_id] = ("new_order", client_order_id, time.perf_counter())
        self.socket.send(json.dumps(message))

    def _receive(self) -> None:
        text = self.socket.recv()
        received = time.perf_counter()
        message = json.loads(text)
        kind = message.get("type")
        if kind == "fill":
            if message.get("remaining_quantity") == 0 and message["order_id"] in self.open_orders:
                self.open_orders.remove(message["order_id"])
            return
        name, client_order_id, sent = self.in_flight.pop(message["request_id"])
        exception: Exception | None = None
        if kind == "ack":
            status = 200
            if name == "new_order":
                order = message["order"]
                STATE.acks.append((self.account.participant_id, client_order_id, order["order_id"]))
                if order["status"] in ("open", "partially_filled"):
                    self.open_orders.append(order["order_id"])
        else:
            status = message["status"]
            endpoint = f"WS {name}"
            STATE.reasons[endpoint][message["reason"]] += 1
            STATE.examples.setdefault((endpoint, message["reason"]), message["detail"][:200])
            if status not in EXPECTED_REJECTS[name]:
                exception = RuntimeError(f"unexpected {status}: {message['detail'][:200]}")
        self.environment.events.request.fire(
            request_type="WS", name=name, response_time=(received - sent) * 1000,
            response_length=len(text), response=_Answer(status), context={},
            exception=exception,
        )  # fmt: skip
