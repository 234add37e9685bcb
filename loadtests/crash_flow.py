"""The crash test's order flow: client threads that trade over HTTP through the server's
kills, and the record of every request they made and every acknowledgement they got.

Each :class:`FlowClient` is one participant (a trader of :mod:`loadtests.market_setup`'s
market) on a thread of its own, with a random generator of its own drawn from the run's seed.
It submits limit orders that rest (a few ticks from the reference price, on its own side),
IOC orders that trade (ten ticks through the reference price, against the others' resting
orders), amends its open orders (always a price and a quantity) and cancels them, each
submission under a ``client_order_id`` of its own. A share of the acknowledged submissions is
sent again at once, unchanged, to see that the retry returns the original answer.

A request whose answer is lost (the connection is refused, reset or times out: the server
was killed, or is starting), or answered 503 (the API's "retry later"), is sent again, the
same request, until it is answered or :data:`RETRY_WINDOW_S` has passed; that is the
idempotent retry a client makes after a crash.
Every request is recorded as a :class:`RequestRecord`: what was sent and, if the server
answered it with a 2xx, the answer; an answered 2xx is an acknowledgement (the exchange
acknowledges only what it has journalled), which the final state must keep.

Orders belong to one client, and a client sends one request at a time, so each client's
``step`` numbers order every request made on its orders.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from loadtests.market_setup import Account, Market, format_minor

__all__ = [
    "ACK_KINDS",
    "FlowClient",
    "FlowRecord",
    "RequestRecord",
    "Target",
]

ACK_KINDS = ("submit", "cancel", "amend")
REQUEST_TIMEOUT_S = 10.0  # one attempt; a server that hangs is retried like a dead one
RETRY_WINDOW_S = 90.0  # a lost answer is sent again for this long: longer than any restart
RETRY_PAUSE_S = 0.05
HTTP_RETRY_LATER = 503
MAX_OPEN_ORDERS = 10  # per client: beyond it, it cancels before resting another
REST_TICKS = 10  # resting orders are 1..REST_TICKS ticks from the reference, on their side
IOC_TICKS = 10  # IOC orders are priced this many ticks through the reference
MAX_ORDER_UNITS = 5
IMMEDIATE_RETRY_SHARE = 0.2  # of acknowledged submissions, sent again at once
# The share of each action; an amend or cancel with no open order rests one instead.
ACTION_WEIGHTS = {"rest": 0.35, "ioc": 0.25, "amend": 0.2, "cancel": 0.2}
TERMINAL = frozenset({"filled", "cancelled"})


@dataclass(slots=True)
class RequestRecord:
    """One request of the flow: its kind (``submit``, ``cancel``, ``amend``), its client and
    step, the order it acts on (for a submission, the id the answer gave, if any), the body
    sent (``None`` for a cancel), the HTTP status of the last answer (``None``: never
    answered), the answer when it was an acknowledgement (a 2xx), and the ``reason`` of a
    refusal."""

    kind: str
    participant_id: str
    step: int
    order_id: int | None
    body: dict[str, Any] | None
    status: int | None = None
    answer: dict[str, Any] | None = None
    reason: str | None = None

    @property
    def acknowledged(self) -> bool:
        return self.answer is not None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RequestRecord:
        return cls(**json.loads(text))


@dataclass(slots=True)
class FlowRecord:
    """What every client did, shared between their threads (appends under ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[RequestRecord] = field(default_factory=list)
    attempts: int = 0  # HTTP requests sent, retries included
    lost_answers: int = 0  # attempts that got no answer at all
    statuses: Counter[int] = field(default_factory=Counter)
    # (original acknowledged submission, the retry's status and answer): submissions sent
    # twice at once
    retries: list[tuple[RequestRecord, int | None, dict[str, Any] | None]] = field(
        default_factory=list
    )

    def counted(self, answered: bool, status: int | None = None) -> None:
        with self.lock:
            self.attempts += 1
            if not answered:
                self.lost_answers += 1
            elif status is not None:
                self.statuses[status] += 1


class Target:
    """The server's address, which a restart on another port changes under the clients."""

    def __init__(self, base_url: str) -> None:
        self._lock = threading.Lock()
        self._base_url = base_url

    @property
    def base_url(self) -> str:
        with self._lock:
            return self._base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        with self._lock:
            self._base_url = value


class FlowClient(threading.Thread):
    """One participant's order flow until ``stop`` is set (it finishes the request in hand,
    retries included) or ``abort`` is set (it gives up at once)."""

    def __init__(
        self,
        number: int,
        account: Account,
        market: Market,
        target: Target,
        record: FlowRecord,
        *,
        seed: int,
        stop: threading.Event,
        abort: threading.Event,
    ) -> None:
        super().__init__(name=f"crash-client-{number}", daemon=True)
        self.number = number
        self.account = account
        self.market = market
        self.target = target
        self.record = record
        self.stop = stop
        self.abort = abort
        self.rng = random.Random(f"{seed}/{number}")
        self.headers = {"X-API-Key": account.api_key}
        self.steps = 0
        self.open: dict[int, RequestRecord] = {}  # order id -> its last acknowledged state
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(timeout=REQUEST_TIMEOUT_S) as http:
                while not (self.stop.is_set() or self.abort.is_set()):
                    self._act(http)
        except BaseException as error:  # the run reports it; a thread cannot raise to it
            self.error = error

    # -- actions ---------------------------------------------------------------------------

    def _act(self, http: httpx.Client) -> None:
        actions, weights = zip(*ACTION_WEIGHTS.items(), strict=True)
        action = self.rng.choices(actions, weights)[0]
        if action in ("amend", "cancel") and not self.open:
            action = "rest"
        if action == "rest" and len(self.open) >= MAX_OPEN_ORDERS:
            action = "cancel"
        if action == "rest":
            self._submit(http, ioc=False)
        elif action == "ioc":
            self._submit(http, ioc=True)
        elif action == "amend":
            self._amend(http, self.rng.choice(sorted(self.open)))
        else:
            self._cancel(http, self.rng.choice(sorted(self.open)))

    def _submit(self, http: httpx.Client, *, ioc: bool) -> None:
        rng, market = self.rng, self.market
        symbol = rng.choice(market.symbols)
        side = rng.choice(("buy", "sell"))
        self.steps += 1
        body: dict[str, Any] = {
            "client_order_id": f"c{self.number}-{self.steps}",
            "symbol": symbol,
            "side": side,
            "price": format_minor(self._price_minor(symbol, side, ioc=ioc)),
            "quantity": rng.randint(1, MAX_ORDER_UNITS),
        }
        if ioc:
            body["time_in_force"] = "IOC"
        request = RequestRecord("submit", self.account.participant_id, self.steps, None, body)
        self._send(http, request, "POST", "/v1/orders")
        if request.answer is None:
            return
        request.order_id = request.answer["order_id"]
        self._track(request)
        if rng.random() < IMMEDIATE_RETRY_SHARE:
            status, answer = self._exchange(http, "POST", "/v1/orders", body)
            with self.record.lock:
                self.record.retries.append((request, status, answer))

    def _amend(self, http: httpx.Client, order_id: int) -> None:
        known = self.open[order_id].answer
        assert known is not None
        side, symbol = known["side"], known["symbol"]
        self.steps += 1
        body = {
            "price": format_minor(self._price_minor(symbol, side, ioc=False)),
            "quantity": known["filled_quantity"] + self.rng.randint(1, MAX_ORDER_UNITS),
        }
        request = RequestRecord("amend", self.account.participant_id, self.steps, order_id, body)
        self._send(http, request, "PATCH", f"/v1/orders/{order_id}")
        self._track(request)

    def _cancel(self, http: httpx.Client, order_id: int) -> None:
        self.steps += 1
        request = RequestRecord("cancel", self.account.participant_id, self.steps, order_id, None)
        self._send(http, request, "DELETE", f"/v1/orders/{order_id}")
        self._track(request)

    def _price_minor(self, symbol: str, side: str, *, ioc: bool) -> int:
        """A resting price on the order's own side of the reference, or an IOC's price
        through it (where the other clients' resting orders are)."""
        mid, tick = self.market.mid_minor[symbol], self.market.tick_minor
        ticks = -IOC_TICKS if ioc else self.rng.randint(1, REST_TICKS)
        return mid - ticks * tick if side == "buy" else mid + ticks * tick

    def _track(self, request: RequestRecord) -> None:
        """Keep the order's last acknowledged state while it may still be open; forget an
        order that an acknowledgement, or a refusal, says is no longer open."""
        assert request.order_id is not None or request.answer is None
        if request.answer is not None:
            if request.answer["status"] in TERMINAL:
                self.open.pop(request.answer["order_id"], None)
            else:
                self.open[request.answer["order_id"]] = request
        elif request.status is not None and request.order_id is not None:
            # Refused: filled by someone's IOC, or cancelled, in the meantime.
            self.open.pop(request.order_id, None)

    # -- HTTP ------------------------------------------------------------------------------

    def _send(self, http: httpx.Client, request: RequestRecord, method: str, path: str) -> None:
        """Send ``request`` until answered (see the module docstring) and record it."""
        with self.record.lock:
            self.record.requests.append(request)
        request.status, answer = self._exchange(http, method, path, request.body)
        if request.status is not None and 200 <= request.status < 300:
            request.answer = answer
        elif answer is not None:
            request.reason = str(answer.get("reason"))

    def _exchange(
        self, http: httpx.Client, method: str, path: str, body: dict[str, Any] | None
    ) -> tuple[int | None, dict[str, Any] | None]:
        """The status and JSON body of the first answer to ``method path``; ``(None, None)``
        if none came within the retry window (or the run was aborted)."""
        deadline = time.monotonic() + RETRY_WINDOW_S
        while True:
            try:
                response = http.request(
                    method, self.target.base_url + path, headers=self.headers, json=body
                )
            except httpx.TransportError:
                self.record.counted(answered=False)
                if self.abort.is_set() or time.monotonic() > deadline:
                    return None, None
                time.sleep(RETRY_PAUSE_S)
                continue
            self.record.counted(answered=True, status=response.status_code)
            if response.status_code == HTTP_RETRY_LATER and time.monotonic() < deadline:
                time.sleep(RETRY_PAUSE_S)
                continue
            try:
                answer = response.json()
            except ValueError:
                answer = {"text": response.text[:500]}
            return response.status_code, answer if isinstance(answer, dict) else {"json": answer}
