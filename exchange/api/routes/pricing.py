"""Price discovery and valuation: bars, category indices, comparables and valuations."""

from __future__ import annotations

import datetime as dt
from operator import itemgetter
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from exchange.catalogue import Exclusivity, Scope, Territory
from exchange.confidential_aggregates import report_section
from exchange.money import format_minor, parse_minor
from exchange.pricing import (
    IncomeInputs,
    Market,
    ProductRecord,
    TargetSpec,
    TermsRecord,
    find_comparables,
    ohlcv_bars,
    product_from_catalogue,
    render_report,
    value,
)
from exchange.service import Exchange
from exchange.valuation_inputs import book_snapshot, confidential_aggregates, utc_today

from ..bodies import StrictJsonRoute
from ..deps import CurrentParticipant, RuntimeDep
from ..errors import ApiError
from ..runtime import Runtime
from ..schemas import (
    BarPublic,
    CategoryPath,
    ComparablePublic,
    IndexPointPublic,
    ProductIdPath,
    SymbolPath,
    TermsIn,
    TickerPublic,
    ValuationRequest,
    error_responses,
    iso,
)
from ..views import valuation_view
from .market import ticker

router = APIRouter(tags=["price discovery and valuation"], route_class=StrictJsonRoute)
MAX_BARS = 1_000
INTERVALS_NS = {
    "1m": 60 * 10**9, "5m": 300 * 10**9, "15m": 900 * 10**9, "1h": 3_600 * 10**9,
    "1d": 86_400 * 10**9,
}  # fmt: skip
MINOR_PER_UNIT = 100


def _invalid(message: str) -> ApiError:
    return ApiError(422, message, "VALIDATION_INVALID")


def _date(text: str | None, what: str) -> dt.date:
    if text is None:
        return utc_today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _invalid(f"{what} {text!r} is not an ISO date such as 2026-11-28") from None


def _time_ns(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _invalid(f"{what} {text!r} is not an ISO time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp()) * 10**9 + moment.microsecond * 1_000


def _terms(terms: TermsIn) -> TermsRecord:
    return TermsRecord(terms.exclusivity, terms.duration_months, terms.scope, terms.territory)


@router.get("/instruments/{symbol}/bars", response_model=list[BarPublic],
            responses=error_responses(404, 422))
async def bars(
    symbol: SymbolPath,
    runtime: RuntimeDep,
    interval: Annotated[Literal["1m", "5m", "15m", "1h", "1d"], Query()] = "1h",
    start: Annotated[str | None, Query(description="ISO time, default: the first trade")] = None,
    end: Annotated[str | None, Query(description="ISO time, default: now")] = None,
) -> list[BarPublic]:
    """OHLCV bars of the instrument's trades (public), oldest first, at most 1,000."""
    start_ns, end_ns = _time_ns(start, "start"), _time_ns(end, "end")

    def prints(exchange: Exchange) -> list[tuple[int, int, int]]:
        if symbol not in exchange.instruments:
            raise ApiError(404, f"no instrument {symbol}", "NOT_FOUND")
        # The order book's trades, and confidential trades published at an exact price
        # (at their trade time: a bar may change when one is published), sorted by time
        # alone, stably, so that trades at one time keep their order.
        published = exchange.confidential.prints.get(symbol, [])
        return sorted(
            (
                (ts, price, quantity)
                for _, price, quantity, ts in (*exchange.market_data.history[symbol], *published)
                if (start_ns is None or ts >= start_ns) and (end_ns is None or ts < end_ns)
            ),
            key=itemgetter(0),
        )

    tape = runtime.read(prints)
    try:
        result = ohlcv_bars(tape, INTERVALS_NS[interval])
    except ValueError as error:
        raise _invalid(str(error)) from None
    if len(result) > MAX_BARS:
        raise _invalid(f"more than {MAX_BARS} bars: choose a longer interval or a shorter span")
    return [
        BarPublic(
            start=iso(bar.start_ns), open=format_minor(int(bar.open)),
            high=format_minor(int(bar.high)), low=format_minor(int(bar.low)),
            close=format_minor(int(bar.close)), volume=bar.volume,
            vwap=format_minor(int(bar.notional) // bar.volume), trades=bar.trade_count,
        )
        for bar in result
    ]  # fmt: skip


@router.get("/instruments/{symbol}/ticker", response_model=TickerPublic,
            responses=error_responses(404, 422))
async def instrument_ticker(symbol: SymbolPath, runtime: RuntimeDep) -> TickerPublic:
    """The instrument's ticker (the same as ``/v1/market/{symbol}/ticker``)."""
    return await ticker(symbol, runtime)


async def _market(runtime: Runtime, as_of: dt.date) -> Market:
    try:
        return await run_in_threadpool(runtime.pricing.market, runtime.read, as_of)
    except ValueError as error:
        raise _invalid(f"the market cannot be valued yet: {error}") from None


@router.get("/indices/{category}", response_model=list[IndexPointPublic],
            responses=error_responses(422))
async def category_index(
    category: CategoryPath,
    runtime: RuntimeDep,
    as_of: Annotated[str | None, Query(description="ISO date, default today")] = None,
) -> list[IndexPointPublic]:
    """The category's price index over time (public): first period = 100."""
    market = await _market(runtime, _date(as_of, "as_of"))
    return [
        IndexPointPublic(period_start=p.period_start.isoformat(), value=p.value, trades=p.trades)
        for p in market.index_points(category)
    ]


def _target(runtime: Runtime, body: ValuationRequest, as_of: dt.date) -> TargetSpec:
    if (body.product_id is None) == (body.product is None):
        raise _invalid(
            "give exactly one of product_id (a catalogue product) or product (its attributes)"
        )
    terms = _terms(body.terms)
    book = None
    if body.product_id is not None:
        product_id = body.product_id

        def read(exchange: Exchange) -> tuple[ProductRecord, Any]:
            if product_id not in exchange.products:
                raise ApiError(404, f"no product {product_id}", "NOT_FOUND")
            record = product_from_catalogue(exchange.products[product_id])
            return record, book_snapshot(exchange, product_id, terms)

        product, book = runtime.read(read)
    else:
        attributes = body.product
        assert attributes is not None
        q = attributes.quality
        product = ProductRecord(
            "target", attributes.category.value, attributes.region, attributes.record_count,
            attributes.coverage_months, attributes.update_frequency, q.completeness,
            q.accuracy, q.timeliness, q.consistency,
            parse_minor(attributes.cost_basis, "cost_basis") / MINOR_PER_UNIT,
        )  # fmt: skip
    income = None
    if body.income is not None:
        flows = tuple(
            parse_minor(flow, "cash flow") / MINOR_PER_UNIT
            for flow in body.income.annual_cash_flows
        )
        income = IncomeInputs(flows, body.income.discount_rate, body.income.attribution)
    return TargetSpec(product, terms, as_of, book=book, income=income)


@router.post("/valuations", response_model=dict[str, Any], responses={
    200: {"content": {"text/html": {"schema": {"type": "string"}}},
          "description": "The report: JSON, or HTML with `format=html`"},
    **error_responses(400, 401, 404, 413, 422, 429),
})  # fmt: skip
async def valuation(
    body: ValuationRequest,
    me: CurrentParticipant,
    runtime: RuntimeDep,
    format: Annotated[Literal["json", "html"], Query()] = "json",
) -> Any:
    """Value a product (listed or not, or described by its attributes) under licence terms:
    market approach from comparables, cost and income approaches, and their reconciliation,
    with every factor, weight and flag. Any participant's key (valuations are rate-limited)."""
    as_of = _date(body.as_of, "as_of")
    target = _target(runtime, body, as_of)
    market = await _market(runtime, as_of)
    try:
        report = await run_in_threadpool(value, market, target)
    except ValueError as error:
        raise _invalid(str(error)) from None
    if format == "html":
        return HTMLResponse(render_report(report))
    result = valuation_view(report.to_dict())
    # How many confidential trades entered, and through which aggregate: the report's own
    # maths sees only the aggregates' synthetic products and trades.
    found = runtime.read(confidential_aggregates)
    result["confidential_aggregates"] = report_section(
        found, [row["product_id"] for row in result["comparables"]], target.product.category
    )
    return result


@router.get("/products/{product_id}/comparables", response_model=list[ComparablePublic],
            responses=error_responses(404, 422))
async def comparables(
    product_id: ProductIdPath,
    runtime: RuntimeDep,
    exclusivity: Annotated[Exclusivity, Query()] = Exclusivity.NON_EXCLUSIVE,
    duration_months: Annotated[int, Query(ge=1, le=240)] = 12,
    scope: Annotated[Scope, Query()] = Scope.COMMERCIAL,
    territory: Annotated[Territory, Query()] = Territory.DOMESTIC,
    as_of: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> list[ComparablePublic]:
    """The traded instruments most like this product under these terms, best first."""
    terms = TermsIn(
        exclusivity=exclusivity, duration_months=duration_months, scope=scope, territory=territory
    )
    # Not validated as a request body: the id comes from the path, and an id no product has
    # is a 404 from _target, not a body's validation error (which would escape as a 500).
    body = ValuationRequest.model_construct(product_id=product_id, terms=terms, as_of=as_of)
    day = _date(as_of, "as_of")
    target = _target(runtime, body, day)
    market = await _market(runtime, day)
    found, _ = await run_in_threadpool(find_comparables, market, target, limit)
    return [
        ComparablePublic(
            product_id=c.product_id, terms=c.terms.label(),
            price=format_minor(round(c.price * MINOR_PER_UNIT)),
            price_date=c.price_date.isoformat(), last_trade_date=c.last_trade_date.isoformat(),
            trades=c.trades, units=c.units, similarity=c.similarity,
        )
        for c in found
    ]  # fmt: skip
