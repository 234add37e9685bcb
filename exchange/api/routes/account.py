"""A participant's own fills and balances; an admin's deposits and withdrawals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from exchange import commands as cmd
from exchange.money import format_minor, parse_minor
from exchange.orders import FillQuery
from exchange.participants import Participant, Role
from exchange.service import Exchange
from matching import Side

from ..bodies import StrictJsonRoute
from ..deps import CurrentParticipant, RuntimeDep, requires
from ..query import IsoTime, time_range
from ..schemas import (
    BalancesPublic,
    CashMovement,
    CashPublic,
    FillPublic,
    HoldingPublic,
    error_responses,
    iso,
)
from ..views import fill_view

router = APIRouter(tags=["account"], route_class=StrictJsonRoute)
Admin = Annotated[Participant, Depends(requires(Role.ADMIN))]


@router.get("/fills", response_model=list[FillPublic], responses=error_responses(401, 422, 429))
async def my_fills(
    me: CurrentParticipant,
    runtime: RuntimeDep,
    symbol: Annotated[str | None, Query(max_length=32, description="Only this instrument")] = None,
    side: Annotated[Side | None, Query(description="Only your buys or only your sells")] = None,
    start_time: Annotated[IsoTime | None, Query(
        description="Fills at or after this time (ISO 8601 with a zone)"
    )] = None,
    end_time: Annotated[IsoTime | None, Query(
        description="Fills before this time (ISO 8601 with a zone)"
    )] = None,
    after: Annotated[int, Query(ge=0, description="Fills of later trades")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[FillPublic]:
    """Your fills (only yours) matching every filter given, oldest first, a page at a time
    (pass the last ``trade_id`` as ``after``)."""
    start_ns, end_ns = time_range(start_time, end_time)
    query = FillQuery(symbol, side, start_ns, end_ns)
    fills = runtime.read(lambda exchange: exchange.fills_of(
        me.participant_id, after_trade_id=after, limit=limit, query=query
    ))  # fmt: skip
    return [fill_view(fill) for fill in fills]


@router.get("/balances", response_model=BalancesPublic, responses=error_responses(401, 429))
async def my_balances(me: CurrentParticipant, runtime: RuntimeDep) -> BalancesPublic:
    """Your cash (available, and reserved by open buy orders) and licence holdings."""

    def read(exchange: Exchange) -> BalancesPublic:
        available, reserved = exchange.cash_of(me.participant_id)
        holdings = [
            HoldingPublic(symbol=symbol, units=units, reserved_units=reserved_units,
                          expires_at=iso(expires_ns))
            for symbol, expires_ns, units, reserved_units in exchange.holdings_of(
                me.participant_id
            )
        ]  # fmt: skip
        return BalancesPublic(
            cash_available=format_minor(available),
            cash_reserved=format_minor(reserved),
            holdings=holdings,
        )

    return runtime.read(read)


@router.post("/deposits", status_code=201, response_model=CashPublic,
             responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503))
async def deposit(body: CashMovement, admin: Admin, runtime: RuntimeDep) -> CashPublic:
    """Cash arrives from the participant's bank (the admin stands in for the bank)."""
    amount = parse_minor(body.amount, "amount")
    outcome = await runtime.execute(
        cmd.Deposit(admin.participant_id, body.participant_id, amount, body.reference)
    )
    return CashPublic(
        participant_id=body.participant_id, cash_available=format_minor(outcome.result)
    )


@router.post("/withdrawals", status_code=201, response_model=CashPublic,
             responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503))
async def withdraw(body: CashMovement, admin: Admin, runtime: RuntimeDep) -> CashPublic:
    """Available cash leaves the exchange for the participant's bank."""
    amount = parse_minor(body.amount, "amount")
    outcome = await runtime.execute(
        cmd.Withdraw(admin.participant_id, body.participant_id, amount, body.reference)
    )
    return CashPublic(
        participant_id=body.participant_id, cash_available=format_minor(outcome.result)
    )
