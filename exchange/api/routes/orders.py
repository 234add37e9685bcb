"""Orders: submit, amend, cancel, and read one's own. Another participant's order is a 404,
exactly as if it did not exist.

A request flows one way: the route converts the body to a command (decimal prices to minor
units, times to nanoseconds) and submits it, reading no exchange state first. Whatever
depends on the state, the tick grid included, is checked by the exchange in its turn."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from exchange import commands as cmd
from exchange.money import parse_minor
from exchange.orders import OrderQuery, OrderStatus
from exchange.participants import TRADING_ROLES, Participant
from matching import OrderType, Side

from ..bodies import StrictJsonRoute
from ..deps import RuntimeDep, requires
from ..errors import ApiError
from ..query import IsoTime, time_range
from ..schemas import OrderAmend, OrderCreate, OrderPublic, error_responses
from ..views import order_view

router = APIRouter(prefix="/orders", tags=["orders"], route_class=StrictJsonRoute)
Trader = Annotated[Participant, Depends(requires(*TRADING_ROLES))]


def _expire_ns(body: OrderCreate) -> int | None:
    if body.expire_time is None:
        return None
    if body.expire_time.tzinfo is None:
        raise ApiError(422, "expire_time needs a time zone (e.g. 2026-12-01T00:00:00Z)",
                       "VALIDATION_INVALID")  # fmt: skip
    seconds = int(body.expire_time.timestamp())
    return seconds * 1_000_000_000 + body.expire_time.microsecond * 1_000


def submission(
    body: OrderCreate, me: Participant, order_type: OrderType | None = None
) -> cmd.SubmitOrder:
    """The command an order submission makes: its price in minor units, its time in
    nanoseconds. The exchange assigns the order id. ``order_type`` overrides the body's
    ``type`` (in a session's message, ``type`` is the message's)."""
    price = None if body.price is None else parse_minor(body.price, "price")
    kind = body.type if order_type is None else order_type
    return cmd.SubmitOrder(
        me.participant_id, body.client_order_id, 0, body.symbol, body.side, kind, price,
        body.quantity, body.time_in_force, _expire_ns(body), body.post_only,
        body.self_trade_prevention,
    )  # fmt: skip


@router.post("", status_code=201, response_model=OrderPublic,
             responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503))
async def submit_order(body: OrderCreate, me: Trader, runtime: RuntimeDep) -> OrderPublic:
    """Submit an order. Acknowledged once journalled: the response shows what happened on
    arrival (fills, rest, or cancellation). Retrying with the same ``client_order_id`` and
    the same content returns the original response; other content under it is a 409."""
    outcome = await runtime.execute(submission(body, me))
    return order_view(outcome.result)


# A status filter's orders: "open" is every order still in the book, filled in part or not.
_STATUSES: dict[str, frozenset[OrderStatus] | None] = {
    "all": None,
    "open": frozenset({OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED}),
    "partially_filled": frozenset({OrderStatus.PARTIALLY_FILLED}),
    "filled": frozenset({OrderStatus.FILLED}),
    "cancelled": frozenset({OrderStatus.CANCELLED}),
}
StatusFilter = Literal["all", "open", "partially_filled", "filled", "cancelled"]


@router.get("", response_model=list[OrderPublic], responses=error_responses(401, 403, 422, 429))
async def list_my_orders(
    me: Trader,
    runtime: RuntimeDep,
    symbol: Annotated[str | None, Query(max_length=32, description="Only this instrument")] = None,
    side: Annotated[Side | None, Query(description="Only buys or only sells")] = None,
    status: Annotated[StatusFilter, Query(
        description="open: still in the book (filled in part or not); all: any status"
    )] = "all",
    start_time: Annotated[IsoTime | None, Query(
        description="Orders created at or after this time (ISO 8601 with a zone)"
    )] = None,
    end_time: Annotated[IsoTime | None, Query(
        description="Orders created before this time (ISO 8601 with a zone)"
    )] = None,
    after: Annotated[int, Query(ge=0, description="Orders with a higher id")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[OrderPublic]:
    """Your orders matching every filter given, oldest first, a page at a time (pass the
    last ``order_id`` as ``after``)."""
    start_ns, end_ns = time_range(start_time, end_time)
    query = OrderQuery(symbol, side, _STATUSES[status], start_ns, end_ns)
    records = runtime.read(lambda exchange: exchange.orders_of(
        me.participant_id, open_only=False, after_id=after, limit=limit, query=query
    ))  # fmt: skip
    return [order_view(record) for record in records]


@router.delete("", response_model=list[OrderPublic],
               responses=error_responses(401, 403, 422, 429, 503))
async def cancel_all_orders(
    me: Trader,
    runtime: RuntimeDep,
    symbol: Annotated[str | None, Query(max_length=32, description="Only this instrument")] = None,
    side: Annotated[Side | None, Query(description="Only buys or only sells")] = None,
) -> list[OrderPublic]:
    """Cancel all your open orders (on ``symbol``, of ``side``, when given) as one command:
    the answer, once it is journalled, lists each order as cancelled, oldest first (none if
    nothing was open)."""
    outcome = await runtime.execute(
        cmd.CancelAllOrders(me.participant_id, me.participant_id, symbol, side)
    )
    return [order_view(record) for record in outcome.result]


@router.get("/by-client-id/{client_order_id}", response_model=OrderPublic,
            responses=error_responses(401, 403, 404, 422, 429))
async def read_order_by_client_id(
    client_order_id: Annotated[str, Path(max_length=64, description="The id you gave it")],
    me: Trader,
    runtime: RuntimeDep,
) -> OrderPublic:
    """Your order submitted under ``client_order_id``, as it stands now: the way to find an
    order whose submission's answer was lost."""
    record = runtime.read(
        lambda exchange: exchange.order_by_client_id(me.participant_id, client_order_id)
    )
    if record is None:
        raise ApiError(404, f"no order with client_order_id {client_order_id!r}",
                       "VALIDATION_UNKNOWN_ORDER")  # fmt: skip
    return order_view(record)


@router.get("/{order_id}", response_model=OrderPublic,
            responses=error_responses(401, 403, 404, 422, 429))
async def read_order(order_id: int, me: Trader, runtime: RuntimeDep) -> OrderPublic:
    record = runtime.read(lambda exchange: exchange.order(me.participant_id, order_id))
    if record is None:
        raise ApiError(404, f"no order {order_id}", "VALIDATION_UNKNOWN_ORDER")
    return order_view(record)


@router.delete("/{order_id}", response_model=OrderPublic,
               responses=error_responses(401, 403, 404, 409, 422, 429, 503))
async def cancel_order(order_id: int, me: Trader, runtime: RuntimeDep) -> OrderPublic:
    """Cancel what is left of an open order; its reservation is released."""
    outcome = await runtime.execute(cmd.CancelOrder(me.participant_id, order_id))
    return order_view(outcome.result)


@router.patch("/{order_id}", response_model=OrderPublic,
              responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503))
async def amend_order(
    order_id: int, body: OrderAmend, me: Trader, runtime: RuntimeDep
) -> OrderPublic:
    """Change the price and/or total quantity. Lowering the quantity keeps time priority; a
    new price or a higher quantity loses it (and may trade at once)."""
    price = None if body.price is None else parse_minor(body.price, "price")
    outcome = await runtime.execute(
        cmd.AmendOrder(me.participant_id, order_id, price, body.quantity)
    )
    return order_view(outcome.result)
