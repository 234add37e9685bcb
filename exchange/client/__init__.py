"""A Python client of the exchange's API: REST and the WebSocket streams, blocking or asyncio.

>>> from decimal import Decimal
>>> from exchange.client import Client
>>> with Client("http://127.0.0.1:8000", api_key) as client:          # doctest: +SKIP
...     order = client.submit_order("ZJPARK.FLOW.NX12.COM", "buy", 2, Decimal("125.00"),
...                                 client_order_id="first")
...     order["status"], order["price"]
('open', Decimal('125.00'))

Amounts go in as ``Decimal`` (or decimal strings) and come back as ``Decimal``, never as
floats; a refusal is an :class:`ApiError` carrying the API's ``reason`` code and ``detail``.
:class:`AsyncClient` has the same methods as coroutines. It needs only ``httpx`` and
``websockets``, and imports nothing of the server. docs/exchange.md ("The Python client")
shows more; ``examples/market_maker.py`` is a strategy built on it.
"""

from ._clients import AsyncClient, Client
from ._session import AsyncSession, Session, quote
from ._streams import AsyncStream, Stream
from ._types import (
    ApiKeyIssued,
    Balances,
    Book,
    BookLevel,
    ConfidentialTrade,
    Fill,
    Holding,
    Instrument,
    Order,
    Participant,
    ParticipantAccount,
    Product,
    Quote,
    Rfq,
    Ticker,
    TradePrint,
    TradeReport,
)
from ._wire import Amount, ApiError, Call

__all__ = [
    "Amount",
    "ApiError",
    "ApiKeyIssued",
    "AsyncClient",
    "AsyncSession",
    "AsyncStream",
    "Balances",
    "Book",
    "BookLevel",
    "Call",
    "Client",
    "ConfidentialTrade",
    "Fill",
    "Holding",
    "Instrument",
    "Order",
    "Participant",
    "ParticipantAccount",
    "Product",
    "Quote",
    "Rfq",
    "Session",
    "Stream",
    "Ticker",
    "TradePrint",
    "TradeReport",
    "quote",
]
