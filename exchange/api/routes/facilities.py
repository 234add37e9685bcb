"""Loan facilities against pledged licences (exchange/collateral.py; docs/collateral.md).

A lender offers a facility; its borrower accepts, draws, repays, pledges licences, posts and
takes back cash margin; the lender may release pledges. Each is one command: the route
converts the body and submits it, and shows the facility as the command left it. A facility
is seen only by its two parties: another participant's is a 404, exactly as if it did not
exist. Alerts (margin calls, cures, liquidations, deteriorating collateral) are listed here
and pushed to both parties on the private WebSocket stream.

Marks need valuations: an admin posts one (``POST /v1/instruments/{symbol}/valuation``) or
the exchange's own monitor does (exchange/api/collateral_monitor.py); a provider attests
each update of its product (``POST /v1/products/{product_id}/updates``), since collateral
whose data goes stale is worth less.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from itertools import islice
from operator import attrgetter
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from exchange import commands as cmd
from exchange.errors import Reason
from exchange.facility import Facility, FacilityStatus
from exchange.haircut import BP
from exchange.money import parse_minor
from exchange.participants import Participant, Role
from exchange.service import Exchange
from exchange.validation import QUALITY_DIMENSIONS

from ..bodies import StrictJsonRoute
from ..deps import CurrentParticipant, RuntimeDep, requires
from ..errors import ApiError
from ..facility_models import (
    AlertPage,
    AmountIn,
    FacilityCreate,
    FacilityDetail,
    FacilityPublic,
    PledgeCreate,
    PledgedPublic,
    PledgeRelease,
    ProductUpdateCreate,
    ProductUpdatePublic,
    ValuationCreate,
    ValuationPublic,
    alert_view,
    facility_detail_view,
    facility_view,
    valuation_view,
)
from ..query import ns_of
from ..runtime import Runtime
from ..schemas import ProductIdPath, SymbolPath, error_responses, iso
from ..views import product_view

router = APIRouter(tags=["loan facilities"], route_class=StrictJsonRoute)
Lender = Annotated[Participant, Depends(requires(Role.LENDER))]
Admin = Annotated[Participant, Depends(requires(Role.ADMIN))]
Provider = Annotated[Participant, Depends(requires(Role.PROVIDER))]
FacilityId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A facility's id")]
PledgeId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A pledge's id")]
Limit = Annotated[int, Query(ge=1, le=500)]
After = Annotated[int, Query(ge=0, le=2**63 - 1, description="Ids above this one")]

_WRITE = error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503)
_READ = error_responses(401, 404, 422, 429)


def _unknown(facility_id: int) -> ApiError:
    return ApiError(404, f"no facility {facility_id}", Reason.VALIDATION_UNKNOWN_FACILITY)


def _own(exchange: Exchange, who: str, facility_id: int) -> Facility:
    """``who``'s facility (as lender or borrower); a 404 for any other."""
    f = exchange.collateral.facilities.get(facility_id)
    if f is None or who not in (f.lender, f.borrower):
        raise _unknown(facility_id)
    return f


def _shown(runtime: Runtime, who: str, facility_id: int) -> FacilityPublic:
    """The facility as the command just applied left it (or later), read under the lock."""
    return runtime.read(lambda exchange: facility_view(_own(exchange, who, facility_id), who))


# -- facilities ----------------------------------------------------------------------------


@router.post("/facilities", status_code=201, response_model=FacilityPublic, responses=_WRITE)
async def create_facility(body: FacilityCreate, me: Lender, runtime: RuntimeDep) -> FacilityPublic:
    """Offer ``borrower`` a loan facility (lenders only). The thresholds must rise: initial
    < margin call < liquidation. Retrying with the same ``client_facility_id`` and content
    answers the original facility; other content under it is a 409."""
    haircut = body.haircut.model_dump(exclude_none=True)
    outcome = await runtime.execute(cmd.CreateFacility(
        me.participant_id, 0, body.borrower, parse_minor(body.limit, "limit"), body.rate_bp,
        ns_of(body.maturity), body.initial_ltv_bp, body.margin_call_ltv_bp,  # type: ignore[arg-type]
        body.liquidation_ltv_bp, body.cure_period_s, body.auction_duration_s, haircut,
        body.client_facility_id,
    ))  # fmt: skip
    return _shown(runtime, me.participant_id, outcome.result.facility_id)


@router.get("/facilities", response_model=list[FacilityPublic], responses=_READ)
async def list_facilities(
    me: CurrentParticipant,
    runtime: RuntimeDep,
    role: Annotated[
        Literal["lender", "borrower"] | None,
        Query(description="Only those you lend under, or only those you borrow under"),
    ] = None,
    status: Annotated[FacilityStatus | None, Query(description="Only in this status")] = None,
    after: After = 0,
    limit: Limit = 100,
) -> list[FacilityPublic]:
    """Your facilities, as lender or borrower, by id, a page at a time (pass the last
    ``facility_id`` as ``after``): status, debt, accrued interest, collateral value, LTV and
    thresholds, and each pledge's haircut and value at the last mark."""
    who = me.participant_id

    def read(exchange: Exchange) -> list[FacilityPublic]:
        ids = exchange.collateral.by_participant.get(who, [])
        shown = []
        for facility_id in ids[bisect_right(ids, after) :]:
            f = exchange.collateral.facilities[facility_id]
            if (role is None or getattr(f, role) == who) and (status is None or f.status is status):
                shown.append(facility_view(f, who))
                if len(shown) == limit:
                    break
        return shown

    return runtime.read(read)


@router.get("/facilities/alerts", response_model=AlertPage, responses=_READ)
async def list_alerts(
    me: CurrentParticipant,
    runtime: RuntimeDep,
    facility_id: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="Only this facility's")
    ] = None,
    after: After = 0,
    limit: Limit = 100,
) -> AlertPage:
    """The alerts of your facilities (both parties get each), oldest first, a page at a time:
    pass ``next_after`` as ``after`` for the next. A facility keeps its last 1,000."""
    who = me.participant_id

    def read(exchange: Exchange) -> AlertPage:
        desk = exchange.collateral
        if facility_id is not None:
            facilities = [_own(exchange, who, facility_id)]
        else:
            facilities = [desk.facilities[i] for i in desk.by_participant.get(who, [])]
        # Each facility's alerts ascend by id: merge them from the cursor on.
        streams = []
        for f in facilities:
            start = bisect_right(f.alerts, after, key=attrgetter("alert_id"))
            streams.append(islice(f.alerts, start, None))
        page = list(islice(heapq.merge(*streams, key=lambda a: a.alert_id), limit + 1))
        more = len(page) > limit
        page = page[:limit]
        return AlertPage(alerts=[alert_view(a) for a in page],
                         next_after=page[-1].alert_id if more else None)  # fmt: skip

    return runtime.read(read)


@router.get("/facilities/{facility_id}", response_model=FacilityDetail, responses=_READ)
async def read_facility(facility_id: FacilityId, me: CurrentParticipant,
                        runtime: RuntimeDep) -> FacilityDetail:  # fmt: skip
    """One of your facilities with its LTV history (marks, oldest first) and its alerts."""
    who = me.participant_id
    return runtime.read(
        lambda exchange: facility_detail_view(_own(exchange, who, facility_id), who)
    )


@router.post("/facilities/{facility_id}/accept", response_model=FacilityPublic,
             responses=_WRITE)  # fmt: skip
async def accept_facility(facility_id: FacilityId, me: CurrentParticipant,
                          runtime: RuntimeDep) -> FacilityPublic:  # fmt: skip
    """Accept a facility offered to you (the borrower): it becomes active."""
    await runtime.execute(cmd.AcceptFacility(me.participant_id, facility_id))
    return _shown(runtime, me.participant_id, facility_id)


@router.post("/facilities/{facility_id}/draw", response_model=FacilityPublic, responses=_WRITE)
async def draw(facility_id: FacilityId, body: AmountIn, me: CurrentParticipant,
               runtime: RuntimeDep) -> FacilityPublic:  # fmt: skip
    """Draw cash from the lender (the borrower), within the limit and the initial LTV."""
    amount = parse_minor(body.amount, "amount")
    await runtime.execute(cmd.DrawLoan(me.participant_id, facility_id, amount))
    return _shown(runtime, me.participant_id, facility_id)


@router.post("/facilities/{facility_id}/repay", response_model=FacilityPublic, responses=_WRITE)
async def repay(facility_id: FacilityId, body: AmountIn, me: CurrentParticipant,
                runtime: RuntimeDep) -> FacilityPublic:  # fmt: skip
    """Repay (the borrower), interest first; at most the debt."""
    amount = parse_minor(body.amount, "amount")
    await runtime.execute(cmd.RepayLoan(me.participant_id, facility_id, amount))
    return _shown(runtime, me.participant_id, facility_id)


def _holding_expiry(runtime: Runtime, who: str, symbol: str, expires_ns: int) -> int:
    """The exact expiry of ``who``'s holding of ``symbol`` that ``expires_ns`` names.

    Times are shown to the microsecond (GET /v1/balances) but holdings expire to the
    nanosecond, so the holding is found by the time a client can know; with none, the time
    as given, which the exchange refuses naming it. This read only resolves a name: the
    command checks everything itself."""

    def read(exchange: Exchange) -> int:
        for expiry in exchange.risk.holdings.get((who, symbol), {}):
            if expiry // 1_000 == expires_ns // 1_000:
                return expiry
        return expires_ns

    return runtime.read(read)


@router.post("/facilities/{facility_id}/pledges", status_code=201, response_model=PledgedPublic,
             responses=_WRITE)  # fmt: skip
async def pledge(facility_id: FacilityId, body: PledgeCreate, me: CurrentParticipant,
                 runtime: RuntimeDep) -> PledgedPublic:  # fmt: skip
    """Pledge free units of one of your holdings (the borrower): they move to the facility's
    pledged account, where no order can reach them, until released. A provider pledges
    unsold licences with ``expires_at`` null."""
    who = me.participant_id
    expires_ns = None
    if body.expires_at is not None:
        expires_ns = _holding_expiry(runtime, who, body.symbol, ns_of(body.expires_at))  # type: ignore[arg-type]
    outcome = await runtime.execute(
        cmd.PledgeLicences(who, facility_id, 0, body.symbol, body.quantity, expires_ns)
    )
    pledge_id = outcome.command.pledge_id  # type: ignore[union-attr]
    shown = _shown(runtime, who, facility_id)
    return PledgedPublic(**shown.model_dump(), pledge_id=pledge_id)


@router.post("/facilities/{facility_id}/pledges/{pledge_id}/release",
             response_model=FacilityPublic, responses=_WRITE)  # fmt: skip
async def release(facility_id: FacilityId, pledge_id: PledgeId, body: PledgeRelease,
                  me: CurrentParticipant, runtime: RuntimeDep) -> FacilityPublic:  # fmt: skip
    """Release pledged units back to the holding: the borrower while the LTV stays within the
    initial threshold and the facility is active; the lender at any time but during a
    liquidation."""
    await runtime.execute(
        cmd.ReleasePledge(me.participant_id, facility_id, pledge_id, body.quantity)
    )
    return _shown(runtime, me.participant_id, facility_id)


@router.post("/facilities/{facility_id}/margin", response_model=FacilityPublic,
             responses=_WRITE)  # fmt: skip
async def post_margin(facility_id: FacilityId, body: AmountIn, me: CurrentParticipant,
                      runtime: RuntimeDep) -> FacilityPublic:  # fmt: skip
    """Post cash margin (the borrower): it counts as collateral at its face value."""
    amount = parse_minor(body.amount, "amount")
    await runtime.execute(cmd.PostMargin(me.participant_id, facility_id, amount))
    return _shown(runtime, me.participant_id, facility_id)


@router.post("/facilities/{facility_id}/margin/return", response_model=FacilityPublic,
             responses=_WRITE)  # fmt: skip
async def return_margin(facility_id: FacilityId, body: AmountIn, me: CurrentParticipant,
                        runtime: RuntimeDep) -> FacilityPublic:  # fmt: skip
    """Take cash margin back, as a release of pledged units would be: the borrower within the
    initial LTV, the lender at any time but during a liquidation."""
    amount = parse_minor(body.amount, "amount")
    await runtime.execute(cmd.ReturnMargin(me.participant_id, facility_id, amount))
    return _shown(runtime, me.participant_id, facility_id)


# -- what marks are made of ----------------------------------------------------------------


@router.post("/instruments/{symbol}/valuation", status_code=201, response_model=ValuationPublic,
             responses=_WRITE)  # fmt: skip
async def post_valuation(symbol: SymbolPath, body: ValuationCreate, me: Admin,
                         runtime: RuntimeDep) -> ValuationPublic:  # fmt: skip
    """Post the exchange's valuation of one licence unit (admins): every facility pledging
    the instrument is re-marked on it, and its low end is a liquidation's reserve."""
    outcome = await runtime.execute(cmd.PostValuation(
        me.participant_id, symbol, parse_minor(body.value, "value"), parse_minor(body.low, "low"),
        parse_minor(body.high, "high"), body.comparables, body.method,
    ))  # fmt: skip
    return valuation_view(symbol, outcome.result)


@router.post("/products/{product_id}/updates", status_code=201,
             response_model=ProductUpdatePublic, responses=_WRITE,
             tags=["catalogue and compliance"])  # fmt: skip
async def attest_update(product_id: ProductIdPath, body: ProductUpdateCreate, me: Provider,
                        runtime: RuntimeDep) -> ProductUpdatePublic:  # fmt: skip
    """Attest that your product's data was updated (its provider), with its quality scores
    now if they changed. A real-time, daily or monthly product not attested within its
    frequency (and a day's grace) is worth less as collateral, as is one whose quality falls."""
    quality = None
    if body.quality is not None:
        quality = {name: round(getattr(body.quality, name) * BP) for name in QUALITY_DIMENSIONS}
    outcome = await runtime.execute(cmd.AttestUpdate(me.participant_id, product_id, quality))

    def read(exchange: Exchange) -> ProductUpdatePublic:
        product = outcome.result
        return ProductUpdatePublic(
            product_id=product.product_id,
            attested_at=iso(exchange.collateral.attested_ns.get(product.product_id)),
            quality=product_view(product).quality,
        )

    return runtime.read(read)
