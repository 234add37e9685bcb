"""Load test of the exchange's API: locust users that behave like its participants.

    DATAEX_ADMIN_KEY=<key> locust -f "$(python -m loadtests locustfile)" --headless \\
        --host http://127.0.0.1:8000 -u 50 -r 10 -t 60s --dataex-mix trader=6,viewer=2
    python -m loadtests --users 50 --duration 60s     # server, setup, phases, checks, report

The users (one participant each, taken in turn from a pool made at setup):

- :class:`Trader` submits limit orders (GTC, some IOC) around each instrument's reference
  price with its own client order ids, amends and cancels them, keeps at most
  ``MAX_OPEN_ORDERS`` open (cancelling its oldest first), polls its fills and its orders'
  state, and reacts to half of its fills by placing an exit order two ticks better for what
  was filled (only fills of its own orders: not setup's inventory, nor another user's).
- :class:`MarketMaker` keeps a two-sided post-only quote in every instrument around a fair
  price that drifts (pulled toward the ticker's mid): it places a missing side, moves a
  standing quote by amending its price, and polls its fills to learn which quotes were hit.
- :class:`Viewer` reads books, trade tapes, tickers and OHLCV bars.
- :class:`Valuer` requests valuations of the listed products under assorted licence terms
  (with a participant's key: valuations need one).

Parameters are locust arguments, each defaulting to an environment variable:
``--dataex-admin-key`` (``DATAEX_ADMIN_KEY``: the bootstrap admin's API key, required),
``--dataex-mix`` (``DATAEX_LOAD_MIX``, the users' weights by role, default
``trader=6,market_maker=1,viewer=2,valuer=1``), ``--dataex-rates`` (``DATAEX_LOAD_RATES``,
tasks per second per user by role, 0 for no pause: default
``trader=0,market_maker=10,viewer=10,valuer=1``), ``--dataex-traders``,
``--dataex-market-makers`` and ``--dataex-valuers`` (``DATAEX_LOAD_TRADERS``,
``DATAEX_LOAD_MARKET_MAKERS``, ``DATAEX_LOAD_VALUERS``: how many participants of each role
setup makes, default 50, 10 and 10; users beyond that share them), ``--dataex-instruments``
(``DATAEX_LOAD_INSTRUMENTS``, default 2) and ``--dataex-acks`` (``DATAEX_LOAD_ACKS``: a file
that receives every acknowledged order as JSON lines when the test stops).

Setup (:func:`loadtests.market_setup.bootstrap`) runs when the test starts, through the API
with the admin key: participants, products, reviews, listings, phases, deposits and
inventory. Only a local runner is supported (setup hands keys to the users in memory), and
only a server on the loopback interface is accepted as the target.

Every response is counted by endpoint and status (:data:`STATE`); statuses a participant must
expect (an order refused by risk, a cancel of an order that has just filled) count as
successes, anything else (a 5xx, 401, 403, 429, a dropped connection) as a failure. Every
acknowledged order (a 201 from ``POST /v1/orders``) is recorded with its participant, client
order id and order id, so that a check after the run can find each one in the journal.
"""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, constant_throughput, events, task

from loadtests.load_plan import (
    DEFAULT_INSTRUMENTS,
    DEFAULT_MARKET_MAKERS,
    DEFAULT_MIX,
    DEFAULT_RATES,
    DEFAULT_TRADERS,
    DEFAULT_VALUERS,
    LoadPlan,
    check_loopback,
)
from loadtests.market_setup import (
    VALUATION_TERMS,
    Account,
    Market,
    bootstrap,
    format_minor,
    parse_minor,
)

__all__ = [
    "STATE",
    "MarketMaker",
    "Trader",
    "Valuer",
    "Viewer",
    "configure",
]

MAX_OPEN_ORDERS = 20  # per trader: beyond it, the oldest is cancelled first
PRICE_SPREAD_TICKS = 5  # traders price within this many ticks of the reference
IOC_SHARE = 0.1
MAX_ORDER_UNITS = 5
EXIT_TICKS = 2  # a trader's exit order after a fill, ticks better than the fill
EXIT_SHARE = 0.5  # the share of fills a trader reacts to
QUOTE_HALF_SPREAD_TICKS = 3
QUOTE_UNITS = 10
FAIR_DRIFT_TICKS = 1
FILLS_PAGE = 500

# Statuses a participant meets in normal trading, by endpoint; any other is a failure.
EXPECTED = {
    "POST /v1/orders": frozenset({201, 422}),  # 422: refused by risk or by the engine
    # 409: one's own order, filled or cancelled meanwhile (a 404 would mean the exchange lost it).
    "PATCH /v1/orders/{id}": frozenset({200, 409, 422}),
    "DELETE /v1/orders/{id}": frozenset({200, 409}),
    "GET /v1/orders/{id}": frozenset({200}),
    # 422: nothing traded to value against yet; 429: valuations have a rate limit of their own.
    "POST /v1/valuations": frozenset({200, 422, 429}),
    # The order endpoint without the exchange (loadtests/server.py): every order "rests".
    "POST /v1/loadtest/order-edge": frozenset({201}),
}
OK = frozenset({200})


# -- what the users share -------------------------------------------------------------------


@dataclass(slots=True)
class RunState:
    """What one load-generating process shares between its users: the market setup made,
    the acknowledged orders, and the responses counted by endpoint and status."""

    market: Market | None = None
    acks: list[tuple[str, str, int]] = field(default_factory=list)
    statuses: defaultdict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    reasons: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    failures: Counter[str] = field(default_factory=Counter)
    examples: dict[tuple[str, str], str] = field(default_factory=dict)  # first detail of each
    _taken: Counter[str] = field(default_factory=Counter)

    def take(self, role: str) -> Account:
        """The next participant of ``role`` in turn (shared once the pool is used up)."""
        assert self.market is not None, "setup has not run"
        pool = self.market.accounts[role]
        if not pool:
            raise RuntimeError(f"setup made no {role} participants")
        account = pool[self._taken[role] % len(pool)]
        self._taken[role] += 1
        return account

    def on_request(
        self, request_type: str, name: str, response: Any = None, exception: Any = None, **_: Any
    ) -> None:
        """A ``events.request`` listener: count every response by endpoint and status (0 for
        no response at all), and every failure by endpoint."""
        endpoint = f"{request_type} {name}"
        self.statuses[endpoint][getattr(response, "status_code", None) or 0] += 1
        if exception is not None:
            self.failures[endpoint] += 1

    def write_acks(self, path: Path) -> None:
        """The acknowledged orders as JSON lines, in the order they were acknowledged."""
        fields = ("participant_id", "client_order_id", "order_id")
        with path.open("w", encoding="utf-8") as out:
            out.writelines(
                json.dumps(dict(zip(fields, ack, strict=True))) + "\n" for ack in self.acks
            )


STATE = RunState()
_user_numbers = itertools.count(1)


# -- the users ------------------------------------------------------------------------------


class Participant(FastHttpUser):
    """A user of the API; subclasses act as one participant (or as nobody, for public data)."""

    abstract = True
    role = ""
    wait_time = constant(0)

    def on_start(self) -> None:
        assert STATE.market is not None, "setup has not run: start through locust or dataex"
        self.market = STATE.market
        self.number = next(_user_numbers)
        self.rng = random.Random(self.number)
        self.account: Account | None = None
        self.headers: dict[str, str] = {}
        if self.role in ("trader", "market_maker", "valuer"):
            self.account = STATE.take(self.role)
            self.headers = {"X-API-Key": self.account.api_key}

    def call(self, method: str, path: str, name: str, body: Any = None) -> tuple[int, Any]:
        """``method path`` (reported as ``name``): its status and JSON body. A status not
        expected of this endpoint is reported as a failure."""
        endpoint = f"{method} {name}"
        with self.client.request(
            method, path, name=name, headers=self.headers, json=body, catch_response=True
        ) as response:
            status = response.status_code or 0
            if status in EXPECTED.get(endpoint, OK):
                response.success()
            else:
                response.failure(f"unexpected {status}: {(response.text or '')[:200]}")
                return status, None
            try:
                data = response.json()
            except ValueError:
                response.failure(f"{status} without a JSON body")
                return status, None
        if status >= 400:
            reason = str(data.get("reason"))
            STATE.reasons[endpoint][reason] += 1
            STATE.examples.setdefault((endpoint, reason), str(data.get("detail"))[:200])
            return status, None
        return status, data

    def symbol(self) -> str:
        return self.rng.choice(self.market.symbols)

    def price(self, minor: int) -> str:
        return format_minor(max(self.market.tick_minor, minor))

    def random_limit(self) -> tuple[str, str, int, int]:
        """A limit order within a few ticks of the reference: (symbol, side, price, units)."""
        symbol = self.symbol()
        offset = self.rng.randint(-PRICE_SPREAD_TICKS, PRICE_SPREAD_TICKS) * self.market.tick_minor
        side = self.rng.choice(("buy", "sell"))
        return (
            symbol,
            side,
            self.market.mid_minor[symbol] + offset,
            self.rng.randint(1, MAX_ORDER_UNITS),
        )

    def order_body(
        self, client_order_id: str, symbol: str, side: str, price_minor: int, quantity: int,
        **extra: Any,
    ) -> dict[str, Any]:  # fmt: skip
        """The body of ``POST /v1/orders`` for a limit order."""
        return {
            "client_order_id": client_order_id,
            "symbol": symbol,
            "side": side,
            "price": self.price(price_minor),
            "quantity": quantity,
            **extra,
        }


@dataclass(slots=True)
class _OpenOrder:
    symbol: str
    side: str
    price_minor: int
    remaining_units: int


class _Trading(Participant):
    """Order bookkeeping that traders and market makers share."""

    abstract = True

    def on_start(self) -> None:
        super().on_start()
        self.open: dict[int, _OpenOrder] = {}
        self.client_id_prefix = f"u{self.number}-"  # unique to this user in this process
        self.next_client_id = 1
        self.last_trade_id = 0

    def submit(
        self, symbol: str, side: str, price_minor: int, quantity: int, **extra: Any
    ) -> dict[str, Any] | None:
        """Submit a limit order; record its acknowledgement; the order, or None if refused."""
        assert self.account is not None
        client_order_id = f"{self.client_id_prefix}{self.next_client_id}"
        self.next_client_id += 1
        body = self.order_body(client_order_id, symbol, side, price_minor, quantity, **extra)
        status, order = self.call("POST", "/v1/orders", "/v1/orders", body)
        if status != 201:
            return None
        STATE.acks.append((self.account.participant_id, client_order_id, order["order_id"]))
        self.track(order)
        return order

    def track(self, order: dict[str, Any]) -> None:
        """Keep ``order`` (an API order) in the open set while it is open, else drop it."""
        if order["status"] in ("open", "partially_filled"):
            self.open[order["order_id"]] = _OpenOrder(
                order["symbol"],
                order["side"],
                self.market.mid_minor[order["symbol"]]
                if order["price"] is None
                else parse_minor(order["price"]),
                order["remaining_quantity"],
            )
        else:
            self.open.pop(order["order_id"], None)

    def cancel(self, order_id: int) -> None:
        status, order = self.call("DELETE", f"/v1/orders/{order_id}", "/v1/orders/{id}")
        if status == 200:
            self.track(order)
        else:
            self.open.pop(order_id, None)  # already filled or cancelled

    def amend(self, order_id: int, price_minor: int) -> dict[str, Any] | None:
        status, order = self.call(
            "PATCH", f"/v1/orders/{order_id}", "/v1/orders/{id}", {"price": self.price(price_minor)}
        )
        if status == 200:
            self.track(order)
            return order
        if status == 409:  # filled or cancelled meanwhile
            self.open.pop(order_id, None)
        return None

    def poll_fills(self) -> list[dict[str, Any]]:
        """This user's new fills since the last poll (the participant's other fills, from
        setup or from another user sharing it, are skipped); open orders they completed are
        dropped."""
        _, fills = self.call(
            "GET", f"/v1/fills?after={self.last_trade_id}&limit={FILLS_PAGE}", "/v1/fills"
        )
        mine = []
        for fill in fills or ():
            self.last_trade_id = max(self.last_trade_id, fill["trade_id"])
            if not fill["client_order_id"].startswith(self.client_id_prefix):
                continue
            mine.append(fill)
            order = self.open.get(fill["order_id"])
            if order is not None:
                order.remaining_units -= fill["quantity"]
                if order.remaining_units <= 0:
                    del self.open[fill["order_id"]]
        return mine


class Trader(_Trading):
    """A buyer that also resells: see the module docstring."""

    role = "trader"

    def on_start(self) -> None:
        super().on_start()
        self.exits: list[tuple[str, str, int, int]] = []  # (symbol, side, price, quantity)

    @task(10)
    def place_order(self) -> None:
        if len(self.open) >= MAX_OPEN_ORDERS:
            self.cancel(next(iter(self.open)))  # the oldest
            return
        if self.exits:
            symbol, side, price, quantity = self.exits.pop()
            self.submit(symbol, side, price, quantity)
            return
        extra = {"time_in_force": "IOC"} if self.rng.random() < IOC_SHARE else {}
        self.submit(*self.random_limit(), **extra)

    @task(2)
    def cancel_order(self) -> None:
        if self.open:
            self.cancel(self.rng.choice(list(self.open)))

    @task(2)
    def amend_order(self) -> None:
        if self.open:
            order_id = self.rng.choice(list(self.open))
            move = self.rng.choice((-1, 1)) * self.market.tick_minor
            self.amend(order_id, self.open[order_id].price_minor + move)

    @task(2)
    def react_to_fills(self) -> None:
        tick = self.market.tick_minor
        for fill in self.poll_fills():
            if self.rng.random() < EXIT_SHARE:
                price = parse_minor(fill["price"])
                if fill["side"] == "buy":
                    self.exits.append(
                        (fill["symbol"], "sell", price + EXIT_TICKS * tick, fill["quantity"])
                    )
                else:
                    self.exits.append(
                        (fill["symbol"], "buy", price - EXIT_TICKS * tick, fill["quantity"])
                    )
        del self.exits[:-MAX_OPEN_ORDERS]  # the most recent, if fills come faster than exits

    @task(1)
    def check_order(self) -> None:
        if self.open:
            order_id = self.rng.choice(list(self.open))
            status, order = self.call("GET", f"/v1/orders/{order_id}", "/v1/orders/{id}")
            if status == 200:
                self.track(order)


class MarketMaker(_Trading):
    """Two-sided post-only quotes in every instrument: see the module docstring."""

    role = "market_maker"

    def on_start(self) -> None:
        super().on_start()
        self.fair_minor = dict(self.market.mid_minor)
        self.quotes: dict[tuple[str, str], int] = {}  # (symbol, side) -> order id
        self.turn = itertools.cycle(self.market.symbols)

    @task(6)
    def requote(self) -> None:
        symbol = next(self.turn)
        tick = self.market.tick_minor
        drift = self.rng.randint(-FAIR_DRIFT_TICKS, FAIR_DRIFT_TICKS) * tick
        reference = self.market.mid_minor[symbol]
        fair = min(
            max(self.fair_minor[symbol] + drift, reference - PRICE_SPREAD_TICKS * tick),
            reference + PRICE_SPREAD_TICKS * tick,
        )
        self.fair_minor[symbol] = fair
        for side, sign in (("buy", -1), ("sell", 1)):
            price = fair + sign * QUOTE_HALF_SPREAD_TICKS * tick
            order_id = self.quotes.pop((symbol, side), None)
            if order_id in self.open:
                if self.open[order_id].price_minor == price or self.amend(order_id, price):
                    # Still quoting (or just filled by the move: placed again next turn).
                    self.quotes[(symbol, side)] = order_id
                    continue
                if order_id in self.open:  # the move was refused: withdraw the quote
                    self.cancel(order_id)
            order = self.submit(symbol, side, price, QUOTE_UNITS, post_only=True)
            if order is not None and order["order_id"] in self.open:
                self.quotes[(symbol, side)] = order["order_id"]

    @task(2)
    def watch_fills(self) -> None:
        self.poll_fills()

    @task(1)
    def follow_ticker(self) -> None:
        symbol = self.symbol()
        _, ticker = self.call("GET", f"/v1/market/{symbol}/ticker", "/v1/market/{symbol}/ticker")
        if ticker and ticker["mid"] is not None:
            mid = parse_minor(ticker["mid"])
            # Halfway toward the market's mid, on the tick grid.
            tick = self.market.tick_minor
            self.fair_minor[symbol] = (self.fair_minor[symbol] + mid) // (2 * tick) * tick


class Viewer(Participant):
    """Public market data: books, tapes, tickers and bars."""

    role = "viewer"

    @task(3)
    def book(self) -> None:
        symbol = self.symbol()
        self.call("GET", f"/v1/market/{symbol}/book?depth=10", "/v1/market/{symbol}/book")

    @task(2)
    def trades(self) -> None:
        symbol = self.symbol()
        self.call("GET", f"/v1/market/{symbol}/trades?limit=50", "/v1/market/{symbol}/trades")

    @task(2)
    def ticker(self) -> None:
        symbol = self.symbol()
        self.call("GET", f"/v1/market/{symbol}/ticker", "/v1/market/{symbol}/ticker")

    @task(1)
    def bars(self) -> None:
        symbol = self.symbol()
        self.call(
            "GET", f"/v1/instruments/{symbol}/bars?interval=1m", "/v1/instruments/{symbol}/bars"
        )


class Valuer(Participant):
    """Valuations of the listed products under assorted licence terms."""

    role = "valuer"

    @task
    def value(self) -> None:
        product_id = self.market.product_ids[self.symbol()]
        body = {"product_id": product_id, "terms": self.rng.choice(VALUATION_TERMS)}
        self.call("POST", "/v1/valuations", "/v1/valuations", body)


CLASSES: dict[str, type[Participant]] = {
    "trader": Trader,
    "market_maker": MarketMaker,
    "viewer": Viewer,
    "valuer": Valuer,
}


def configure(plan: LoadPlan) -> list[type[Participant]]:
    """Apply ``plan``'s weights and rates to the user classes; the classes to run (those
    with a positive weight)."""
    chosen = []
    for role, cls in CLASSES.items():
        rate = plan.rates[role]
        cls.wait_time = constant(0) if rate == 0 else constant_throughput(rate)
        weight = plan.mix[role]
        if weight > 0:
            # Locust's weights are integers: keep a tenth's precision.
            cls.weight = max(1, round(weight * 10))
            chosen.append(cls)
    return chosen


# -- running under the locust command --------------------------------------------------------


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    parser.add_argument(
        "--dataex-admin-key",
        env_var="DATAEX_ADMIN_KEY",
        default="",
        is_secret=True,
        help="API key of a bootstrap admin",
    )
    parser.add_argument(
        "--dataex-mix", env_var="DATAEX_LOAD_MIX", default=DEFAULT_MIX, help="user weights by role"
    )
    parser.add_argument(
        "--dataex-rates",
        env_var="DATAEX_LOAD_RATES",
        default=DEFAULT_RATES,
        help="tasks per second per user by role (0: no pause)",
    )
    for name, env, default in (
        ("traders", "DATAEX_LOAD_TRADERS", DEFAULT_TRADERS),
        ("market-makers", "DATAEX_LOAD_MARKET_MAKERS", DEFAULT_MARKET_MAKERS),
        ("valuers", "DATAEX_LOAD_VALUERS", DEFAULT_VALUERS),
        ("instruments", "DATAEX_LOAD_INSTRUMENTS", DEFAULT_INSTRUMENTS),
    ):
        parser.add_argument(f"--dataex-{name}", env_var=env, type=int, default=default)
    parser.add_argument(
        "--dataex-acks",
        env_var="DATAEX_LOAD_ACKS",
        default="",
        help="file for the acknowledged orders (JSON lines)",
    )


def _plan_of(options: Any) -> LoadPlan:
    return LoadPlan.parse(
        options.dataex_mix,
        options.dataex_rates,
        traders=options.dataex_traders,
        market_makers=options.dataex_market_makers,
        valuers=options.dataex_valuers,
        instruments=options.dataex_instruments,
    )


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    options = environment.parsed_options
    if options is None or not hasattr(options, "dataex_mix"):
        return  # run by loadtests.loadtest_run, which configures and sets up itself
    chosen = configure(_plan_of(options))
    environment.user_classes[:] = [c for c in environment.user_classes if c in chosen]
    environment.events.request.add_listener(STATE.on_request)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    options = environment.parsed_options
    if STATE.market is not None or options is None or not hasattr(options, "dataex_mix"):
        return
    if not options.dataex_admin_key:
        raise RuntimeError("set DATAEX_ADMIN_KEY (or --dataex-admin-key) to a bootstrap admin")
    check_loopback(environment.host or "")
    plan = _plan_of(options)
    STATE.market = bootstrap(
        environment.host,
        options.dataex_admin_key,
        traders=plan.traders,
        market_makers=plan.market_makers,
        valuers=plan.valuers,
        instruments=plan.instruments,
    )


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_: Any) -> None:
    options = environment.parsed_options
    if options is not None and getattr(options, "dataex_acks", ""):
        STATE.write_acks(Path(options.dataex_acks))
