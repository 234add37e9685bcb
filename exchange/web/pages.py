"""The dashboard's pages: HTML rendered on the server from the API's own public models.

Each page is complete without script (tables of what the exchange holds at the request);
its script (``static/*.js``) then keeps it live over the API: the market stream for the book
and tape, ``/bars`` for the candles, the caller's key for the account and valuations. A page
reads the exchange through the same route functions the API serves, so a page shows exactly
what ``/v1`` answers, never a second rendering of the state.

Nothing here needs a key: what needs one (an account, a valuation, a proof) is fetched by the
page's script with the key the person entered, kept in the tab's session storage and sent
in the ``X-API-Key`` header, never in a URL.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from exchange.api.deps import RuntimeDep
from exchange.api.errors import ApiError
from exchange.api.routes import instruments, ledger, market, products
from exchange.api.runtime import Runtime
from exchange.api.schemas import InstrumentPublic, ProductPublic, TickerPublic
from exchange.errors import ExchangeError
from exchange.money import format_minor, parse_minor

from .reports import MEDIA_TYPES, find_reports, report_file

__all__ = ["STATIC_PATH", "install_dashboard"]

STATIC_PATH: Final = "/dashboard/static"
STATIC_DIR: Final = Path(__file__).parent / "static"
TEMPLATES_DIR: Final = Path(__file__).parent / "templates"
# The tape a page starts with; the stream adds to it (the script keeps the same number).
TAPE_ROWS: Final = 30
BOOK_LEVELS: Final = 10
MAX_BOOK_LEVELS: Final = 50  # the book endpoint's own limit

templates = Jinja2Templates(directory=TEMPLATES_DIR)


def _utc(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M")


templates.env.filters["utc"] = _utc
router = APIRouter(include_in_schema=False)


def _page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request, name, {"static": STATIC_PATH, **context}, status_code=status_code
    )


def _not_found(request: Request, error: ApiError | ExchangeError) -> HTMLResponse:
    detail = error.detail if isinstance(error, ApiError) else error.message
    return _page(request, "not_found.html", status_code=404, detail=detail)


def _change(ticker: TickerPublic) -> tuple[str | None, str]:
    """The change of the last price since the first trade, as a signed decimal string, and
    its direction (``up``, ``down`` or ``flat``); exact, through :mod:`exchange.money`."""
    if ticker.last is None or ticker.open is None:
        return None, "flat"
    delta = parse_minor(ticker.last, "last") - parse_minor(ticker.open, "open")
    direction = "up" if delta > 0 else "down" if delta < 0 else "flat"
    return ("+" if delta > 0 else "") + format_minor(delta), direction


async def _catalogue(runtime: Runtime) -> dict[str, ProductPublic]:
    return {p.product_id: p for p in await products.list_products(runtime, after="", limit=500)}


@router.get("/", response_class=HTMLResponse)
async def markets_page(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    listed: list[InstrumentPublic] = await instruments.list_instruments(runtime)
    catalogue = await _catalogue(runtime)
    rows = []
    for instrument in listed:
        ticker = await market.ticker(instrument.symbol, runtime)
        change, direction = _change(ticker)
        rows.append({
            "instrument": instrument, "ticker": ticker, "change": change,
            "direction": direction, "product": catalogue.get(instrument.product_id),
        })  # fmt: skip
    return _page(request, "markets.html", rows=rows)


@router.get("/markets/{symbol}", response_class=HTMLResponse)
async def instrument_page(
    request: Request,
    symbol: str,
    runtime: RuntimeDep,
    levels: Annotated[int, Query(ge=1, le=MAX_BOOK_LEVELS)] = BOOK_LEVELS,
) -> HTMLResponse:
    """The instrument; ``levels`` price levels a side in its ladder."""
    try:
        instrument = await instruments.read_instrument(symbol, runtime)
        book = await market.order_book(symbol, runtime, depth=levels)
        tape = await market.trade_tape(symbol, runtime, limit=TAPE_ROWS)
        ticker = await market.ticker(symbol, runtime)
        product = await products.read_product(instrument.product_id, runtime)
    except (ApiError, ExchangeError) as error:
        return _not_found(request, error)
    return _page(
        request, "instrument.html", instrument=instrument, book=book, tape=tape,
        ticker=ticker, product=product, book_levels=levels, tape_rows=TAPE_ROWS,
    )  # fmt: skip


@router.get("/products/{product_id}", response_class=HTMLResponse)
async def product_page(request: Request, product_id: str, runtime: RuntimeDep) -> HTMLResponse:
    try:
        product = await products.read_product(product_id, runtime)
        history = await products.compliance_history(product_id, runtime)
    except (ApiError, ExchangeError) as error:
        return _not_found(request, error)
    listed = [i for i in await instruments.list_instruments(runtime) if i.product_id == product_id]
    return _page(request, "product.html", product=product, history=history, listed=listed)


@router.get("/account", response_class=HTMLResponse)
async def account_page(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    listed = await instruments.list_instruments(runtime)
    # The ticket starts on a continuous market, where an order can trade at once.
    trading = [i.symbol for i in listed if i.phase.value == "continuous"]
    return _page(request, "account.html", listed=listed, default=(trading or [None])[0])


@router.get("/collateral", response_class=HTMLResponse)
async def collateral_page(request: Request) -> HTMLResponse:
    """A shell: a facility is seen only by its two parties, so all of it is read by the
    page's script with the key the person enters."""
    return _page(request, "collateral.html")


@router.get("/ledger", response_class=HTMLResponse)
async def ledger_page(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    digest = await ledger.ledger_digest(runtime)
    try:
        checkpoint = await ledger.last_checkpoint(runtime)
        witness_problem = None
    except ApiError as error:
        checkpoint, witness_problem = None, error.detail
    return _page(
        request, "ledger.html", digest=digest, checkpoint=checkpoint,
        witness_problem=witness_problem,
    )  # fmt: skip


@router.get("/reports", response_class=HTMLResponse)
async def reports_page(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    base = runtime.settings.reports_dir
    found = await run_in_threadpool(find_reports, Path(base)) if base is not None else []
    return _page(request, "reports.html", configured=base is not None, reports=found)


@router.get("/reports/files/{relative:path}")
async def report_file_response(relative: str, runtime: RuntimeDep) -> Response:
    base = runtime.settings.reports_dir
    path = None if base is None else await run_in_threadpool(report_file, Path(base), relative)
    if path is None:
        return PlainTextResponse(f"no report file {relative}", status_code=404)
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix])


def install_dashboard(app: FastAPI) -> None:
    """Serve the dashboard's pages from ``/`` and their assets under :data:`STATIC_PATH`."""
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    app.include_router(router)
