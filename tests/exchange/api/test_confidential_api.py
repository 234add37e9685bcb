"""Confidential trading over REST: requests for quote, negotiated trades and publications,
who sees what, bad input as a 4xx that changes nothing; and the property that no public
route, stream or export shows a confidential trade's parties or exact price to a third
participant before it is published."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange import commands as c
from exchange.api import pricing as pricing_cache
from exchange.money import format_minor, parse_minor
from exchange.recovery import recover
from exchange.research import What, Window, export_table
from exchange.research.formats import Format
from exchange.service import OPERATOR
from ledger.database import scratch_schema
from tests.conftest import POSTGRES_URL_ENV
from tests.exchange.api.helpers import (
    ADMIN,
    MARKET_MAKER,
    PROVIDER,
    REGULATOR,
    SYMBOL,
    Api,
    receive_json,
    serve,
)
from tests.exchange.helpers import ManualClock

# Participants who trade only confidentially, with ids found nowhere else, and a third.
BUYER_1, BUYER_2, THIRD = "cq1buyer", "cq2buyer", "eve"
BUYERS = (BUYER_1, BUYER_2)
SECOND_NS = 1_000_000_000
# Confidential prices (k = 1, 2, ...) spread over 50,000.00 to 150,000.00 to the cent (the
# instrument's tick is 0.01), so that no average of some of them (a bar's VWAP, an index, a
# valuation) lands on another by chance; the order book trades between 10.00 and 15.00.
PRICE_BASE_MINOR, PRICE_STEP_MINOR, PRICE_SPAN_MINOR = 5_000_000, 7_919_113, 10_000_000
POLICY = {
    "large_in_scale": "150000.00", "liquid_trades_30d": 3, "deferral_standard_s": 60,
    "deferral_large_or_illiquid_s": 120, "deferral_large_and_illiquid_s": 180,
    "quantity_cap": 2, "band_large_in_scale": True, "band_significant_figures": 2,
}  # fmt: skip
TERMS = {"exclusivity": "non_exclusive", "duration_months": 12, "scope": "commercial",
         "territory": "domestic"}  # fmt: skip


class Session:
    """A served market with confidential traders, a third participant and a clock that
    the test moves."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.runtime = api.app.state.runtime
        # The sequencer stamps commands from this clock from now on; it starts at the time.
        last_ns = self.runtime.read(lambda exchange: exchange.last_ts_ns)
        self.clock = ManualClock(max(time.time_ns(), last_ns + 1))
        self.runtime.sequencer.clock = self.clock
        api.participants()
        self.product_id = api.approved_product()
        api.list_instrument(self.product_id, SYMBOL, "continuous", tick_size="0.01")
        api.deposit(MARKET_MAKER)
        for who in (*BUYERS, THIRD):
            api.create_participant(who, "buyer")
            api.deposit(who, "10000000.00")
        self.set_policy(POLICY)
        self.prices_made = 0
        self.order_count = 0
        self.public_trades = 0
        # What the policy says of each confidential trade, worked out here rather than read
        # from the exchange: (price, buyer, seller, when it may be published).
        self.expected: list[tuple[int, str, str, int]] = []

    def set_policy(self, policy: dict[str, Any]) -> None:
        self.api.expect(200, "PUT", f"/v1/instruments/{SYMBOL}/publication-policy", ADMIN,
                        json=policy)  # fmt: skip
        self.policy = policy

    def price(self) -> str:
        self.prices_made += 1
        step = self.prices_made * PRICE_STEP_MINOR % PRICE_SPAN_MINOR
        return format_minor(PRICE_BASE_MINOR + step)

    def deadline(self, seconds: int = 3600) -> str:
        moment = (self.clock.now_ns + seconds * SECOND_NS) // 1000
        return dt.datetime.fromtimestamp(moment / 1e6, dt.UTC).isoformat()

    def advance(self, seconds: int) -> None:
        """Move the clock on and run the exchange's housekeeping (publications due)."""
        self.clock.now_ns += seconds * SECOND_NS
        self.runtime.sequencer.execute(c.Housekeeping(OPERATOR))

    # -- trades ----------------------------------------------------------------------------

    def public_trade(self, price_index: int, quantity: int) -> None:
        self.order_count += 1
        price = f"{10 + price_index}.00"
        self.api.placed(PROVIDER, f"s{self.order_count}", "sell", price, quantity)
        self.api.placed(MARKET_MAKER, f"b{self.order_count}", "buy", price, quantity)
        self.public_trades += 1

    def _traded(self, trade: dict[str, Any]) -> dict[str, Any]:
        """Note when ``trade`` may be published: its deferral by size and liquidity."""
        price_minor, quantity = parse_minor(trade["price"]), trade["quantity"]
        policy = self.policy
        large = price_minor * quantity >= parse_minor(policy["large_in_scale"])
        liquid = self.public_trades >= policy["liquid_trades_30d"]
        deferral_s = policy[
            "deferral_large_and_illiquid_s" if large and not liquid
            else "deferral_standard_s" if liquid and not large
            else "deferral_large_or_illiquid_s"
        ]  # fmt: skip
        publish_at_ns = self.clock.now_ns + deferral_s * SECOND_NS
        self.expected.append((price_minor, trade["buyer"], trade["seller"], publish_at_ns))
        return trade

    def rfq_trade(self, buyer: str, quantity: int) -> dict[str, Any]:
        body = {"symbol": SYMBOL, "quantity": quantity, "responders": [PROVIDER],
                "deadline": self.deadline()}  # fmt: skip
        rfq = self.api.expect(201, "POST", "/v1/rfqs", buyer, json=body)
        quote = self.api.expect(201, "POST", f"/v1/rfqs/{rfq['rfq_id']}/quotes", PROVIDER,
                                json={"price": self.price()})  # fmt: skip
        path = f"/v1/rfqs/{rfq['rfq_id']}/accept"
        accepted = {"quote_id": quote["quote_id"]}
        return self._traded(self.api.expect(201, "POST", path, buyer, json=accepted))

    def negotiated_trade(self, seller: str, buyer: str, quantity: int,
                         seller_reports: bool) -> dict[str, Any]:  # fmt: skip
        reporter, side, counterparty = (
            (seller, "sell", buyer) if seller_reports else (buyer, "buy", seller)
        )
        body = {"symbol": SYMBOL, "side": side, "counterparty": counterparty,
                "price": self.price(), "quantity": quantity}  # fmt: skip
        report = self.api.expect(201, "POST", "/v1/trade-reports", reporter, json=body)
        path = f"/v1/trade-reports/{report['report_id']}/confirm"
        return self._traded(self.api.expect(201, "POST", path, counterparty))

    def unanswered_request(self) -> None:
        body = {"symbol": SYMBOL, "quantity": 1, "all_eligible": True,
                "deadline": self.deadline(60), "disclose_requester": True}  # fmt: skip
        self.api.expect(201, "POST", "/v1/rfqs", BUYER_2, json=body)

    def holding(self, who: str) -> int:
        return sum(units for _, _, units, _ in self.runtime.read(
            lambda exchange: exchange.holdings_of(who)))  # fmt: skip

    # -- what the third participant can read -----------------------------------------------

    def public_reads(self) -> Iterator[tuple[str, Any]]:
        """Every read of the API's document (each GET with its path filled, as the third
        participant), a valuation, and the dashboard's pages: (path, body)."""
        exchange = self.runtime.sequencer.exchange
        ids = {
            "symbol": [SYMBOL], "product_id": [self.product_id], "category": ["transport"],
            "order_id": range(1, self.order_count * 2 + 2),
            "client_order_id": sorted({o.client_order_id for o in exchange.orders.values()}),
            "rfq_id": range(1, exchange.confidential.next_rfq_id + 1),
            "report_id": range(1, exchange.confidential.next_report_id + 1),
            "facility_id": range(1, exchange.collateral.next_facility_id + 1),
            "seq": range(1, self.runtime.ledger.digest().tree_size + 2),
        }  # fmt: skip
        for path, operations in self.api.app.openapi()["paths"].items():
            if "get" not in operations:
                continue
            names = re.findall(r"{(\w+)}", path)
            assert all(name in ids for name in names), f"fill {path}'s parameters"
            for filled in _fillings(path, names, ids):
                for who in (THIRD, None):
                    yield filled, self.api.request("GET", filled, who)
        body = {"product_id": self.product_id, "terms": TERMS}
        yield "/v1/valuations", self.api.request("POST", "/v1/valuations", THIRD, json=body)
        for page in ("/", f"/markets/{SYMBOL}", f"/products/{self.product_id}", "/account",
                     "/ledger"):  # fmt: skip
            yield page, self.api.request("GET", page, THIRD)

    def unpublished(self) -> list[tuple[int, str, str]]:
        """(price, buyer, seller) of each confidential trade the exchange has not published."""
        return self.runtime.read(lambda exchange: [
            (t.price_minor, t.buyer, t.seller)
            for t in exchange.confidential.trades.values() if t.publication_id is None
        ])  # fmt: skip

    def due_later(self) -> list[tuple[int, str, str]]:
        """(price, buyer, seller) of each confidential trade the policy keeps from the public
        for more than another second (a command's time is a little after the clock's)."""
        now_ns = self.clock.now_ns + SECOND_NS
        return [(price, buyer, seller) for price, buyer, seller, publish_at_ns in self.expected
                if now_ns < publish_at_ns]  # fmt: skip

    def assert_nothing_leaks(self) -> None:
        hidden = self.due_later()
        assert set(hidden) <= set(self.unpublished())
        for path, response in self.public_reads():
            assert response.status_code < 500, (path, response.text)
            leaks = _leaks(response, hidden)
            assert not leaks, (path, leaks, response.text[:2000])


def _fillings(path: str, names: list[str], ids: dict[str, Any]) -> Iterator[str]:
    if not names:
        yield path
        return
    first, rest = names[0], names[1:]
    for value in ids[first]:
        yield from _fillings(path.replace("{" + first + "}", str(value)), rest, ids)


def _leaks(response: Any, hidden: list[tuple[int, str, str]]) -> list[Any]:
    """What of ``hidden`` trades ``response`` shows: a buyer or reseller who trades only in
    confidence, or an exact price (as a decimal string, or a number of currency units)."""
    parties = {party for _, buyer, seller in hidden for party in (buyer, seller)} & set(BUYERS)
    prices = {format_minor(price) for price, _, _ in hidden}
    numbers = {price / 100 for price, _, _ in hidden}
    try:
        body = response.json()
    except ValueError:
        text = response.text
        words = set(re.findall(r"[\w.-]+", text))
        return sorted((parties | prices) & words)
    found: list[Any] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(key)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        else:
            text = isinstance(value, str)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if (text and value in parties | prices) or (number and value in numbers):
                found.append(value)

    walk(body)
    return found


@contextmanager
def served(kind: str) -> Iterator[Session]:
    """A session on a fresh database of ``kind``."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as directory, serve(
            f"sqlite:///{Path(directory) / 'ledger.db'}"
        ) as api:
            yield Session(api)
        return
    server_url = os.environ.get(POSTGRES_URL_ENV)
    if not server_url:
        pytest.skip(f"{POSTGRES_URL_ENV} is not set")
    with scratch_schema(server_url, "confidential_test") as url, serve(url) as api:
        yield Session(api)


@pytest.fixture(params=["sqlite", "postgresql"])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and not os.environ.get(POSTGRES_URL_ENV):
        pytest.skip(f"{POSTGRES_URL_ENV} is not set")
    return request.param  # type: ignore[no-any-return]


# -- the flows -----------------------------------------------------------------------------


def test_a_request_for_quote_over_rest_is_seen_only_by_those_it_concerns(kind: str) -> None:
    with served(kind) as session:
        api = session.api
        body = {"symbol": SYMBOL, "quantity": 2, "responders": [PROVIDER],
                "deadline": session.deadline()}  # fmt: skip
        made = api.expect(201, "POST", "/v1/rfqs", BUYER_1, json=body)
        assert (made["requester"], made["responders"], made["status"]) == (
            BUYER_1, [PROVIDER], "open",
        )  # fmt: skip
        path = f"/v1/rfqs/{made['rfq_id']}"
        seen = api.expect(200, "GET", path, PROVIDER)
        assert seen["requester"] is None and seen["responders"] is None
        assert [r["rfq_id"] for r in api.expect(200, "GET", "/v1/rfqs", PROVIDER)] == [1]
        refused = api.expect(404, "GET", path, THIRD)
        assert refused["reason"] == "VALIDATION_UNKNOWN_RFQ"
        assert api.expect(200, "GET", "/v1/rfqs", THIRD) == []
        api.expect(404, "POST", f"{path}/quotes", THIRD, json={"price": "100.00"})
        quote = api.expect(201, "POST", f"{path}/quotes", PROVIDER, json={"price": "777.00"})
        assert [q["price"] for q in api.expect(200, "GET", path, BUYER_1)["quotes"]] == ["777.00"]
        trade = api.expect(201, "POST", f"{path}/accept", BUYER_1,
                           json={"quote_id": quote["quote_id"]})  # fmt: skip
        assert (trade["buyer"], trade["seller"], trade["price"], trade["published"]) == (
            BUYER_1, PROVIDER, "777.00", False,
        )  # fmt: skip
        seq = api.journal_seq()
        again = api.expect(409, "POST", f"{path}/accept", BUYER_1,
                           json={"quote_id": quote["quote_id"]})  # fmt: skip
        assert again["reason"] == "VALIDATION_RFQ_CLOSED" and "accepted" in again["detail"]
        assert api.journal_seq() == seq
        assert api.expect(200, "GET", "/v1/confidential-trades", THIRD) == []
        assert len(api.expect(200, "GET", "/v1/confidential-trades", REGULATOR)) == 1
        assert api.expect(200, "GET", "/v1/rfqs", REGULATOR)[0]["requester"] == BUYER_1
        assert api.expect(200, "GET", f"/v1/market/{SYMBOL}/trades") == []
        assert api.expect(200, "GET", f"/v1/market/{SYMBOL}/publications") == []
        assert api.balances(BUYER_1)["cash_available"] == "9998446.00"
        # The deferral (two minutes: no order-book trades, so illiquid) ends; published.
        session.advance(121)
        [published] = api.expect(200, "GET", f"/v1/market/{SYMBOL}/publications")
        assert (published["price"], published["quantity"], published["venue"]) == (
            "777.00", 2, "rfq",
        )  # fmt: skip
        assert BUYER_1 not in json.dumps(published) and PROVIDER not in json.dumps(published)
        assert api.expect(200, "GET", "/v1/confidential-trades", BUYER_1)[0]["published"]
        bars = api.expect(200, "GET", f"/v1/instruments/{SYMBOL}/bars?interval=1d")
        assert [(bar["close"], bar["volume"]) for bar in bars] == [("777.00", 2)]


def test_a_negotiated_trade_over_rest_and_its_refusals(kind: str) -> None:
    with served(kind) as session:
        api = session.api
        body = {"symbol": SYMBOL, "side": "sell", "counterparty": BUYER_2, "price": "500.00",
                "quantity": 1}  # fmt: skip
        report = api.expect(201, "POST", "/v1/trade-reports", PROVIDER, json=body)
        confirm = f"/v1/trade-reports/{report['report_id']}/confirm"
        seq = api.journal_seq()
        for who, status, reason in (
            (THIRD, 404, "VALIDATION_UNKNOWN_REPORT"),
            (PROVIDER, 403, "AUTH_FORBIDDEN"),
        ):
            refused = api.expect(status, "POST", confirm, who)
            assert refused["reason"] == reason and refused["detail"]
        assert api.expect(404, "POST", "/v1/trade-reports/99/confirm", BUYER_2)["reason"] == (
            "VALIDATION_UNKNOWN_REPORT"
        )
        assert api.journal_seq() == seq
        assert api.expect(200, "GET", "/v1/trade-reports", THIRD) == []
        trade = api.expect(201, "POST", confirm, BUYER_2)
        assert (trade["buyer"], trade["seller"], trade["venue"]) == (BUYER_2, PROVIDER,
                                                                     "negotiated")  # fmt: skip
        assert api.expect(409, "POST", confirm, BUYER_2)["reason"] == "VALIDATION_REPORT_CLOSED"


def test_a_retry_under_a_client_id_answers_the_original_and_a_reuse_is_a_conflict(
    kind: str,
) -> None:
    with served(kind) as session:
        api = session.api
        asking = {"symbol": SYMBOL, "quantity": 2, "responders": [PROVIDER],
                  "deadline": session.deadline(), "client_request_id": "ask-1"}  # fmt: skip
        rfq = api.expect(201, "POST", "/v1/rfqs", BUYER_1, json=asking)
        quotes = f"/v1/rfqs/{rfq['rfq_id']}/quotes"
        offering = {"price": "777.00", "client_quote_id": "offer-1"}
        quote = api.expect(201, "POST", quotes, PROVIDER, json=offering)
        reporting = {"symbol": SYMBOL, "side": "sell", "counterparty": BUYER_2,
                     "price": "500.00", "quantity": 1, "client_report_id": "deal-1"}  # fmt: skip
        report = api.expect(201, "POST", "/v1/trade-reports", PROVIDER, json=reporting)
        seq = api.journal_seq()
        # Each retry answers the original response, and nothing is journalled.
        assert api.expect(201, "POST", "/v1/rfqs", BUYER_1, json=asking) == rfq
        assert api.expect(201, "POST", quotes, PROVIDER, json=offering) == quote
        assert api.expect(201, "POST", "/v1/trade-reports", PROVIDER, json=reporting) == report
        assert api.journal_seq() == seq
        for path, who, payload, detail in (
            ("/v1/rfqs", BUYER_1, {**asking, "quantity": 3},
             "client_request_id ask-1 was used for a different request for quote"),
            (quotes, PROVIDER, {**offering, "price": "778.00"},
             "client_quote_id offer-1 was used for a different quote"),
            ("/v1/trade-reports", PROVIDER, {**reporting, "quantity": 2},
             "client_report_id deal-1 was used for a different trade report"),
        ):  # fmt: skip
            refused = api.expect(409, "POST", path, who, json=payload)
            assert (refused["reason"], refused["detail"]) == (
                "VALIDATION_IDEMPOTENCY_CONFLICT", detail,
            )  # fmt: skip
        for bad in ("", " ask", "ask\u202e", "x" * 65):
            refused = api.expect(422, "POST", "/v1/rfqs", BUYER_1,
                                 json={**asking, "client_request_id": bad})  # fmt: skip
            assert refused["reason"] == "VALIDATION_INVALID" and refused["detail"]
        assert api.journal_seq() == seq
        # The journal rebuilds the ids a retry is answered by.
        live = session.runtime.sequencer.exchange.confidential
        rebuilt = recover(session.runtime.ledger, use_snapshot=False).confidential
        assert (rebuilt.client_requests, rebuilt.client_quotes, rebuilt.client_reports) == (
            live.client_requests, live.client_quotes, live.client_reports,
        )  # fmt: skip
        assert len(rebuilt.client_requests) == len(rebuilt.client_quotes) == 1


def test_bad_requests_for_quote_are_4xx_with_their_reason_and_change_nothing(kind: str) -> None:
    with served(kind) as session:
        api = session.api
        body = {"symbol": SYMBOL, "quantity": 1, "responders": [PROVIDER],
                "deadline": session.deadline(60)}  # fmt: skip
        rfq = api.expect(201, "POST", "/v1/rfqs", BUYER_1, json=body)
        session.advance(61)
        body["deadline"] = session.deadline()
        seq = api.journal_seq()
        for method, path, who, payload, status, reason in (
            ("POST", f"/v1/rfqs/{rfq['rfq_id']}/quotes", PROVIDER, {"price": "9.00"}, 409,
             "VALIDATION_RFQ_CLOSED"),
            ("POST", f"/v1/rfqs/{rfq['rfq_id']}/accept", BUYER_1, {"quote_id": 1}, 409,
             "VALIDATION_RFQ_CLOSED"),
            ("POST", "/v1/rfqs/77/quotes", PROVIDER, {"price": "9.00"}, 404,
             "VALIDATION_UNKNOWN_RFQ"),
            ("DELETE", "/v1/rfqs/77", BUYER_1, None, 404, "VALIDATION_UNKNOWN_RFQ"),
            ("POST", "/v1/rfqs", BUYER_1, {**body, "deadline": "2030-01-01T00:00:00"}, 422,
             "VALIDATION_INVALID"),
            ("POST", "/v1/rfqs", BUYER_1, {**body, "deadline": session.deadline(-5)}, 422,
             "VALIDATION_DEADLINE"),
            ("POST", "/v1/rfqs", BUYER_1, {**body, "symbol": "NOPE"}, 422,
             "VALIDATION_UNKNOWN_INSTRUMENT"),
            ("POST", "/v1/rfqs", BUYER_1, {**body, "responders": ["ghost"]}, 404,
             "VALIDATION_UNKNOWN_PARTICIPANT"),
            ("POST", "/v1/rfqs", REGULATOR, body, 403, "AUTH_FORBIDDEN"),
            ("PUT", f"/v1/instruments/{SYMBOL}/publication-policy", BUYER_1, POLICY, 403,
             "AUTH_FORBIDDEN"),
            ("PUT", f"/v1/instruments/{SYMBOL}/publication-policy", ADMIN,
             {**POLICY, "deferral_standard_s": 10**6}, 422, "VALIDATION_INVALID"),
        ):  # fmt: skip
            refused = api.expect(status, method, path, who, json=payload)
            assert refused["reason"] == reason and refused["detail"], (path, refused)
        assert api.journal_seq() == seq
        assert api.expect(200, "GET", f"/v1/rfqs/{rfq['rfq_id']}", BUYER_1)["status"] == (
            "expired"
        )


def test_the_market_stream_says_nothing_of_a_confidential_trade() -> None:
    with served("sqlite") as session:
        api = session.api
        with api.client.websocket_connect(f"/v1/ws/market/{SYMBOL}") as market, \
                api.client.websocket_connect("/v1/ws/private",
                                             headers=api.headers(THIRD)) as private:  # fmt: skip
            session.rfq_trade(BUYER_1, 1)
            session.negotiated_trade(PROVIDER, BUYER_2, 1, seller_reports=True)
            session.public_trade(0, 1)
            messages = []
            while not messages or messages[-1]["type"] != "trade":
                messages.append(receive_json(market))
            assert messages[-1]["price"] == "10.00"
            hidden = session.unpublished()
            assert len(hidden) == 2
            for message in messages:
                assert not _leaks(_Json(message), hidden), message
            # The third participant's own stream stays silent: one more of its own events
            # is the first thing it receives.
            assert receive_json(private)["type"] == "auth"
            api.placed(THIRD, "mine", "buy", "9.00", 1)
            assert receive_json(private)["type"] == "accepted"
            # Once their deferral ends, the stream carries the publications, anonymous.
            session.advance(181)
            published = []
            while len(published) < 2:
                message = receive_json(market)
                if message["type"] == "publication":
                    published.append(message)
            assert sorted(m["venue"] for m in published) == ["negotiated", "rfq"]
            assert {m["price"] for m in published} == {format_minor(p) for p, _, _ in hidden}
            for message in published:
                assert not set(BUYERS) & {v for v in message.values() if isinstance(v, str)}
                assert not {"buyer", "seller", "participant"} & set(message)


class _Json:
    def __init__(self, body: Any) -> None:
        self.body = body

    def json(self) -> Any:
        return self.body


# -- the property --------------------------------------------------------------------------

_STEP = st.one_of(
    st.tuples(st.just("public"), st.integers(0, 5), st.integers(1, 2)),
    st.tuples(st.just("rfq"), st.sampled_from(BUYERS), st.integers(1, 3)),
    st.tuples(st.just("negotiated"), st.sampled_from(BUYERS), st.integers(1, 3), st.booleans()),
    st.tuples(st.just("resale"), st.integers(1, 2), st.booleans()),
    st.tuples(st.just("unanswered")),
    st.tuples(st.just("advance"), st.sampled_from([30, 61, 121, 181])),
)


def _apply(session: Session, step: tuple[Any, ...]) -> None:
    kind = step[0]
    if kind == "public":
        session.public_trade(step[1], step[2])
    elif kind == "rfq":
        session.rfq_trade(step[1], step[2])
    elif kind == "negotiated":
        session.negotiated_trade(PROVIDER, step[1], step[2], step[3])
    elif kind == "resale":
        if session.holding(BUYER_1) >= step[1]:
            session.negotiated_trade(BUYER_1, BUYER_2, step[1], step[2])
    elif kind == "unanswered":
        session.unanswered_request()
    else:
        session.advance(step[1])


def _check_exports(session: Session, directory: Path) -> None:
    """No export shows a confidential price, or a confidential trader in a trade, order or
    event (they appear in the journal and ledger only for their deposits)."""
    prices = session.runtime.read(lambda exchange: [
        str(t.price_minor) for t in exchange.confidential.trades.values()
    ])  # fmt: skip
    for what in What:
        path = directory / f"{what}.csv"
        export_table(session.runtime.ledger, what, Format.CSV, path, Window())
        words = set(re.findall(r"\w+", path.read_text()))
        assert not words & set(prices), what
        if what in (What.TRADES, What.ORDERS, What.EVENTS):
            assert not words & set(BUYERS), what


@pytest.mark.parametrize("examples", [10])
def test_no_public_route_stream_or_export_shows_an_unpublished_confidential_trade(
    kind: str, examples: int, tmp_path: Path
) -> None:
    @settings(max_examples=examples if kind == "sqlite" else 4, deadline=None,
              suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
    @given(steps=st.lists(_STEP, min_size=1, max_size=6))
    def run(steps: list[tuple[Any, ...]]) -> None:
        with served(kind) as session, tempfile.TemporaryDirectory() as directory:
            for step in steps:
                _apply(session, step)
                session.assert_nothing_leaks()
            _check_exports(session, Path(directory))
            # As the deferrals run out, every half minute: each trade is published in its
            # turn, and the public sees what the policy lets it, an exact price below the
            # large-in-scale size.
            for _ in range(7):
                session.advance(30)
                session.assert_nothing_leaks()
            assert session.unpublished() == []
            published = session.api.expect(200, "GET", f"/v1/market/{SYMBOL}/publications")
            trades = session.api.expect(200, "GET", "/v1/confidential-trades", REGULATOR)
            assert len(published) == len(trades)
            exact = sorted(p["price"] for p in published if p["price"] is not None)
            large = Decimal(POLICY["large_in_scale"])
            small = sorted(t["price"] for t in trades
                           if Decimal(t["price"]) * t["quantity"] < large)  # fmt: skip
            assert exact == small

    run()


def test_unpublished_trades_reach_price_discovery_only_as_a_k_anonymous_aggregate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every valuation sees the trades made before it.
    monkeypatch.setattr(pricing_cache, "MAX_STALENESS_S", 0)
    with served("sqlite") as session:
        api = session.api
        # Every trade large in scale: published after four weeks, as a band, so withheld.
        session.set_policy(
            {**POLICY, "large_in_scale": "0.01", "deferral_large_and_illiquid_s": 2_419_200}
        )
        api.create_participant("cq3buyer", "buyer")
        api.deposit("cq3buyer", "10000000.00")
        path = f"/v1/products/{session.product_id}/comparables"
        body = {"product_id": session.product_id, "terms": TERMS}

        def entered() -> tuple[list[Any], dict[str, Any]]:
            report = api.expect(200, "POST", "/v1/valuations", THIRD, json=body)
            return api.expect(200, "GET", path), report["confidential_aggregates"]

        plan = [(PROVIDER, BUYER_1, 6), (PROVIDER, BUYER_2, 4), (BUYER_1, BUYER_2, 2),
                (BUYER_2, "cq3buyer", 1), (BUYER_1, "cq3buyer", 1)]  # fmt: skip
        for seller, buyer, quantity in plan:
            session.negotiated_trade(seller, buyer, quantity, seller_reports=True)
            # The month has not ended: however many trades, nothing enters.
            found, section = entered()
            assert found == [] and section["trades_in_index"] == 0, section
        # The first moment of next month: the cell of five trades from three sellers enters.
        today = dt.datetime.fromtimestamp(session.clock.now_ns // SECOND_NS, dt.UTC)
        next_month = (today.replace(day=28) + dt.timedelta(days=4)).replace(
            day=1, hour=0, minute=0, second=0, microsecond=0
        )
        session.advance(int(next_month.timestamp()) - session.clock.now_ns // SECOND_NS + 1)
        [aggregate], section = entered()
        assert aggregate["product_id"].startswith("confidential-aggregate:transport:")
        # Units as publications would show them: each trade's capped at two.
        assert (aggregate["trades"], aggregate["units"]) == (1, 2 + 2 + 2 + 1 + 1)
        assert (section["index_aggregates"], section["trades_in_index"]) == (1, 5)
        assert section["rule"] == {"min_trades": 5, "min_sellers": 3}
        # The aggregate's mean is no trade's price, and no party shows: nothing leaks.
        assert session.unpublished() and len(session.due_later()) == 5
        session.assert_nothing_leaks()
