"""The FastAPI application: REST under ``/v1``, WebSocket streams, OpenAPI at ``/docs``, the
dashboard at ``/``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from exchange.settings import Settings
from exchange.web import install_dashboard

from . import redaction
from .bodies import MAX_BODY_BYTES, BodyLimit, StrictJsonRoute
from .deps import RuntimeDep
from .docs import install_docs
from .errors import install_error_handlers
from .routes import (
    account,
    confidential,
    facilities,
    instruments,
    ledger,
    market,
    orders,
    participants,
    pricing,
    products,
    quotes,
    session,
    ws,
)
from .runtime import Runtime
from .schemas import HealthPublic

__all__ = ["create_app"]

DESCRIPTION = """
dataex: an exchange for data-product licences.

Authenticate with your API key in the `X-API-Key` header. Market data needs no key.
Cash and prices are decimal strings in currency units (CNY, two decimal places); a price must
lie on the instrument's tick grid. Quantities are integer licence units. Every error is a 4xx
with `{"detail": "...", "reason": "CODE"}`, `reason` the most specific code (e.g.
`VALIDATION_EXPIRY_REQUIRED`, `MATCHING_POST_ONLY_WOULD_TAKE`).

A request body is a JSON object of at most 64 KiB (65,536 bytes): a larger one is a 413
before it is read or the key checked, and an object naming a key twice is a 400.
Identifiers you choose (`client_order_id`, symbols, ids) are printable ASCII without
surrounding spaces; names and texts may be any Unicode but control and bidirectional-control
characters.

The private WebSocket stream takes the key in the `X-API-Key` header or, where a client cannot
set headers (browsers), as its first message, `{"type": "auth", "api_key": "..."}`; never in
the URL, which servers and proxies log.
"""


# The documentation's order, a newcomer's path through the exchange (the routes themselves
# are registered busiest first, in create_app).
DOCUMENTED_TAGS = (
    "participants",
    "catalogue and compliance",
    "instruments and sessions",
    "account",
    "orders",
    "confidential trading",
    "loan facilities",
    "market data",
    "price discovery and valuation",
    "streams",
    "ledger",
    "health",
)


def create_app(
    settings: Settings | None = None,
    *,
    on_start: Callable[[Runtime], None] | None = None,
    on_stop: Callable[[Runtime], None] | None = None,
) -> FastAPI:
    """The exchange's app. Opening it (its lifespan) migrates the database, rebuilds the
    exchange from the journal and starts the sequencer; ``on_start`` then runs (the demo
    market uses it), and ``on_stop`` before the sequencer stops."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Here, not at import: uvicorn sets up its loggers before it starts the app.
        redaction.install()
        runtime = Runtime.open(settings)
        runtime.hub.loop = asyncio.get_running_loop()
        app.state.runtime = runtime
        try:
            if on_start is not None:
                on_start(runtime)
            yield
        finally:
            if on_stop is not None:
                on_stop(runtime)
            runtime.close()

    app = FastAPI(
        title="dataex",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[{"name": tag} for tag in DOCUMENTED_TAGS],
        # /docs is served from the package's own assets (install_docs), not from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app)
    install_error_handlers(app)
    # Outermost, so that an oversized body is refused before anything reads it.
    app.add_middleware(BodyLimit, max_body_bytes=MAX_BODY_BYTES)
    # Routes added to the app itself (a load test's) read bodies as the API's do.
    app.router.route_class = StrictJsonRoute
    v1 = APIRouter(prefix="/v1", route_class=StrictJsonRoute)
    # FastAPI tries the routes in this order, one router after another, so the busiest come
    # first: an order request then matches within a few routes instead of thirty.
    for module in (orders, account, market, instruments, products, pricing, participants, ws,
                   session, quotes, ledger, confidential, facilities):  # fmt: skip
        v1.include_router(module.router)

    @v1.get("/health", response_model=HealthPublic, tags=["health"])
    async def health(runtime: RuntimeDep) -> HealthPublic:
        return runtime.read(lambda exchange: HealthPublic(
            status="ok", journal_seq=exchange.head_seq, instruments=len(exchange.instruments),
            open_orders=exchange.engine.open_order_count(),
        ))  # fmt: skip

    app.include_router(v1)
    install_dashboard(app)
    return app
