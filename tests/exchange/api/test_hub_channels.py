"""The hub's channels (exchange/api/hub.py) and the plain-dict views the order-entry session
answers with (exchange/api/views.py, schemas.py): each says exactly what the model or the
formula it replaces says, and a channel gets its messages and no others."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.api import hub as hub_module
from exchange.api.hub import MAX_SUBSCRIBER_QUEUE, Hub
from exchange.api.schemas import iso
from exchange.api.views import order_message, order_view
from exchange.commands import CancelOrder
from exchange.orders import OrderRecord, OrderStatus
from exchange.service import Outcome
from matching import OrderType, SelfTradePrevention, Side, TimeInForce
from tests.exchange.helpers import Market, build_ready_market, buy, sell

# The range of times a datetime holds (years 1 to 9999), in nanoseconds since the epoch.
FIRST_NS = int(datetime(1, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000_000
LAST_NS = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()) * 1_000_000_000


def _isoformat(ts_ns: int) -> str:
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanos // 1000).isoformat()


@given(st.integers(FIRST_NS, LAST_NS + 999_999_999))
def test_iso_writes_what_datetime_isoformat_writes(ts_ns: int) -> None:
    assert iso(ts_ns) == _isoformat(ts_ns)


@pytest.mark.parametrize("ts_ns", [0, 999, 1_000, 1_700_000_000_000_000_000, -1, FIRST_NS])
def test_iso_of_whole_seconds_and_their_neighbours(ts_ns: int) -> None:
    # A whole microsecond count of 0 has no fraction, as isoformat writes it.
    assert iso(ts_ns) == _isoformat(ts_ns)


@st.composite
def order_records(draw: st.DrawFn) -> OrderRecord:
    quantity = draw(st.integers(1, 10**9))
    filled = draw(st.integers(0, quantity))
    cancelled = draw(st.integers(0, quantity - filled))
    times = st.integers(0, 4 * 10**18)
    return OrderRecord(
        order_id=draw(st.integers(1, 2**62)),
        client_order_id=draw(st.text(max_size=12)),
        participant=draw(st.text(min_size=1, max_size=8)),
        symbol=draw(st.text(min_size=1, max_size=12)),
        side=draw(st.sampled_from(Side)),
        order_type=draw(st.sampled_from(OrderType)),
        price_minor=draw(st.none() | st.integers(1, 10**12)),
        quantity_units=quantity,
        tif=draw(st.sampled_from(TimeInForce)),
        expire_ns=draw(st.none() | times),
        post_only=draw(st.booleans()),
        stp=draw(st.sampled_from(SelfTradePrevention)),
        created_ns=draw(times),
        updated_ns=draw(times),
        filled_units=filled,
        filled_notional_minor=draw(st.integers(0, 10**15)) if filled else 0,
        cancelled_units=cancelled,
        cancel_reason=draw(st.none() | st.sampled_from(["expired", "self_trade", "by owner"])),
        status=draw(st.sampled_from(OrderStatus)),
    )


@given(order_records())
def test_order_message_is_the_order_view_as_json(order: OrderRecord) -> None:
    assert orjson.dumps(order_message(order)) == orjson.dumps(
        order_view(order).model_dump(mode="json")
    )


# -- channels -------------------------------------------------------------------------------


def _trading_day() -> list[tuple[int, Outcome]]:
    """A resting sell, a buy that takes part of it, a cancel of the rest: (seq, outcome)."""
    market = Market()
    build_ready_market(market.execute)
    outcomes = [
        market.execute(sell("prov", "ask", 10_000, 3)),
        market.execute(buy("ann", "lift", 10_000, 2)),
    ]
    resting = outcomes[0].result.order_id
    outcomes.append(market.execute(CancelOrder("prov", resting)))
    first = market.exchange.head_seq - len(outcomes) + 1
    return list(enumerate(outcomes, start=first))


def _drained(queue: Any) -> list[Any]:
    messages = []
    while not queue.empty():
        messages.append(queue.get_nowait())
    return messages


def test_a_fills_subscriber_gets_its_fills_and_a_private_one_every_order_event() -> None:
    hub = Hub()
    seller_fills = hub.subscribe("fills", "prov")
    seller_private = hub.subscribe("private", "prov")
    buyer_fills = hub.subscribe("fills", "ann")
    hub._dispatch(_trading_day())
    assert [m["type"] for m in _drained(seller_fills)] == ["fill"]
    assert [m["type"] for m in _drained(seller_private)] == ["accepted", "fill", "cancelled"]
    [fill] = _drained(buyer_fills)
    assert (fill["type"], fill["side"], fill["client_order_id"], fill["quantity"]) == (
        "fill", "buy", "lift", 2)  # fmt: skip


def test_no_message_is_built_for_a_participant_no_one_subscribes_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[str] = []
    real = hub_module.private_messages

    def counting(seq: int, event: Any, reports: Any = None) -> Any:
        messages = real(seq, event, reports)
        built.extend(message["type"] for _participant, message in messages)
        return messages

    monkeypatch.setattr(hub_module, "private_messages", counting)
    day = _trading_day()
    hub = Hub()
    hub.subscribe("market", "another symbol")  # a subscriber, but not to these participants
    hub._dispatch(day)
    assert built == []
    # The buyer's fills subscription makes the trade's messages, and only those.
    hub.subscribe("fills", "ann")
    hub._dispatch(day)
    assert built == ["fill", "fill"]


def test_a_fills_subscriber_that_falls_behind_is_dropped_once() -> None:
    hub = Hub()
    queue = hub.subscribe("fills", "ann")
    other = hub.subscribe("private", "bob")
    assert hub.subscriber_count() == 2
    day = _trading_day()
    for _ in range(MAX_SUBSCRIBER_QUEUE + 1):
        hub._dispatch(day)
    assert _drained(queue) == [None]
    assert hub.subscriber_count() == 1
    hub.unsubscribe("fills", "ann", queue)  # the session's own unsubscribe, after the drop
    assert hub.subscriber_count() == 1
    hub.unsubscribe("private", "bob", other)
    assert hub.subscriber_count() == 0
