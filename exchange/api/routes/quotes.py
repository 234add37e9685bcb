"""Mass quote: ``POST /v1/quotes`` replaces the caller's open orders on one instrument with
new two-sided quotes, all or none (``exchange/mass_quote.py``). The order-entry session
(``routes/session.py``) takes the same body as a ``mass_quote`` message.

A mass quote weighs :data:`MASS_QUOTE_WEIGHT` requests against the caller's rate limit: it
does the work of many orders in one command, but not of as many as it may carry."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from exchange import commands as cmd
from exchange.mass_quote import MAX_QUOTES_PER_SIDE, QuoteResult
from exchange.money import parse_minor
from exchange.participants import TRADING_ROLES, Participant
from matching import Side

from ..bodies import StrictJsonRoute
from ..deps import RuntimeDep, requires
from ..errors import ApiError
from ..runtime import Runtime
from ..schemas import (
    ClientOrderId,
    DecimalString,
    Identifier,
    OrderPublic,
    Quantity,
    Request,
    error_responses,
)
from ..views import order_view

__all__ = ["MASS_QUOTE_WEIGHT", "MassQuoteCreate", "MassQuotePublic", "mass_quote", "router"]

router = APIRouter(prefix="/quotes", tags=["orders"], route_class=StrictJsonRoute)
Trader = Annotated[Participant, Depends(requires(*TRADING_ROLES))]

MASS_QUOTE_WEIGHT: Final = 5


class QuoteCreate(Request):
    client_order_id: ClientOrderId
    side: Side
    price: DecimalString
    quantity: Quantity


class MassQuoteCreate(Request):
    symbol: Identifier
    quotes: list[QuoteCreate] = Field(
        max_length=2 * MAX_QUOTES_PER_SIDE,
        description=f"At most {MAX_QUOTES_PER_SIDE} a side, every bid below every ask; none "
        "pulls your quotes",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{
            "symbol": "ZJPARK.FLOW.NX12.COM",
            "quotes": [
                {"client_order_id": "q42-b1", "side": "buy", "price": "118.00", "quantity": 2},
                {"client_order_id": "q42-a1", "side": "sell", "price": "122.00", "quantity": 2},
            ],
        }]},
    )  # fmt: skip


class MassQuotePublic(BaseModel):
    symbol: str
    cancelled: list[OrderPublic] = Field(description="Your orders it replaced, as cancelled")
    placed: list[OrderPublic] = Field(description="The quotes, as placed (resting)")


def mass_quote_command(body: MassQuoteCreate, me: Participant) -> cmd.MassQuote:
    """The command a mass quote makes: prices in minor units. The exchange assigns the ids."""
    quotes = [
        {"client_order_id": quote.client_order_id, "side": quote.side.value,
         "price_minor": parse_minor(quote.price, f"quotes[{index}].price"),
         "quantity_units": quote.quantity}
        for index, quote in enumerate(body.quotes)
    ]  # fmt: skip
    return cmd.MassQuote(me.participant_id, body.symbol, quotes, [])


def take_weight(runtime: Runtime, me: Participant) -> None:
    """Charge the mass quote's weight beyond the one request its authentication took."""
    wait_s = runtime.limiter.allow(me.key_id, MASS_QUOTE_WEIGHT - 1)
    if wait_s:
        raise ApiError(429, "too many requests for this API key; slow down", "RATE_LIMITED",
                       {"Retry-After": str(max(1, round(wait_s)))})  # fmt: skip


def quote_view(symbol: str, result: QuoteResult) -> MassQuotePublic:
    return MassQuotePublic(
        symbol=symbol,
        cancelled=[order_view(order) for order in result.cancelled],
        placed=[order_view(order) for order in result.placed],
    )


async def mass_quote(body: MassQuoteCreate, me: Participant, runtime: Runtime) -> MassQuotePublic:
    """Submit a mass quote and wait until it is journalled (or refused)."""
    outcome = await runtime.execute(mass_quote_command(body, me))
    return quote_view(body.symbol, outcome.result)


@router.post("", response_model=MassQuotePublic,
             responses=error_responses(400, 401, 403, 409, 413, 422, 429, 503))
async def replace_quotes(body: MassQuoteCreate, me: Trader, runtime: RuntimeDep) -> MassQuotePublic:
    """Replace all your open orders on ``symbol`` with these quotes, in one journalled
    command, all or none: each quote is a post-only GTC limit order, so a quote that would
    trade on arrival refuses the whole mass quote (409 is never partial; nothing changes).
    Quotes need continuous trading. Each ``client_order_id`` must be new; a retry of the same
    quotes answers them as first placed. Weighs 5 requests against your rate limit."""
    take_weight(runtime, me)
    return await mass_quote(body, me, runtime)
