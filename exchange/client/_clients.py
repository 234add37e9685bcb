"""The blocking :class:`Client` and the asyncio :class:`AsyncClient`: the same methods, made
from the endpoint functions of ``_endpoints`` (each method takes its function's arguments and
sends the call it builds), over one ``httpx`` connection pool each."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Concatenate, ParamSpec, Self, TypeVar

import httpx

from . import _endpoints as api
from ._session import AsyncSession, Session
from ._streams import API_KEY_HEADER, AsyncStream, Stream, stream_url
from ._wire import ApiError, Call, error_of

__all__ = ["AsyncClient", "Client"]

P = ParamSpec("P")
T = TypeVar("T")
DEFAULT_TIMEOUT_S = 10.0


def _headers(api_key: str | None) -> dict[str, str]:
    return {API_KEY_HEADER: api_key} if api_key is not None else {}


def _result(call: Call[T], response: httpx.Response) -> T:
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if response.is_error:
        raise error_of(response.status_code, body, response.headers)
    return call.parse(body)


def _blocking(build: Callable[P, Call[T]]) -> Callable[Concatenate[Client, P], T]:
    def method(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.send(build(*args, **kwargs))

    method.__name__, method.__qualname__ = build.__name__, f"Client.{build.__name__}"
    method.__doc__ = build.__doc__
    return method


def _awaitable(build: Callable[P, Call[T]]) -> Callable[Concatenate[AsyncClient, P], Awaitable[T]]:
    async def method(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.send(build(*args, **kwargs))

    method.__name__, method.__qualname__ = build.__name__, f"AsyncClient.{build.__name__}"
    method.__doc__ = build.__doc__
    return method


class Client:
    """A blocking client of the exchange's API at ``base_url`` (``http://127.0.0.1:8000``),
    acting as the holder of ``api_key`` (None: public endpoints only).

    Every method sends one request and returns the decoded answer, its amounts as
    ``Decimal``; a refusal raises :class:`ApiError` with the API's ``reason`` and ``detail``.
    Use it as a context manager, or :meth:`close` it.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url, self.api_key, self.timeout_s = base_url.rstrip("/"), api_key, timeout_s
        self._http = httpx.Client(base_url=self.base_url, headers=_headers(api_key),
                                  timeout=timeout_s, transport=transport)  # fmt: skip

    def send(self, call: Call[T]) -> T:
        """Send ``call`` (any endpoint, built by hand if the client has no method for it)."""
        try:
            response = self._http.request(call.method, call.path, params=call.params,
                                          json=call.body)  # fmt: skip
        except httpx.TransportError as error:
            raise ApiError(None, "CONNECTION", f"{call.method} {call.path}: {error!r}") from None
        return _result(call, response)

    submit_order = _blocking(api.submit_order)
    cancel_order = _blocking(api.cancel_order)
    amend_order = _blocking(api.amend_order)
    cancel_all_orders = _blocking(api.cancel_all_orders)
    mass_quote = _blocking(api.mass_quote)
    order = _blocking(api.order)
    order_by_client_id = _blocking(api.order_by_client_id)
    orders = _blocking(api.orders)
    fills = _blocking(api.fills)
    balances = _blocking(api.balances)
    me = _blocking(api.me)
    book = _blocking(api.book)
    trades = _blocking(api.trades)
    ticker = _blocking(api.ticker)
    bars = _blocking(api.bars)
    instruments = _blocking(api.instruments)
    instrument = _blocking(api.instrument)
    products = _blocking(api.products)
    product = _blocking(api.product)
    valuation = _blocking(api.valuation)
    comparables = _blocking(api.comparables)
    health = _blocking(api.health)
    request_quote = _blocking(api.request_quote)
    rfqs = _blocking(api.rfqs)
    rfq = _blocking(api.rfq)
    submit_quote = _blocking(api.submit_quote)
    accept_quote = _blocking(api.accept_quote)
    cancel_request = _blocking(api.cancel_request)
    report_trade = _blocking(api.report_trade)
    trade_reports = _blocking(api.trade_reports)
    confirm_trade = _blocking(api.confirm_trade)
    confidential_trades = _blocking(api.confidential_trades)
    create_participant = _blocking(api.create_participant)
    participants = _blocking(api.participants)
    disable_participant = _blocking(api.disable_participant)
    enable_participant = _blocking(api.enable_participant)
    rotate_api_key = _blocking(api.rotate_api_key)
    revoke_api_key = _blocking(api.revoke_api_key)
    deposit = _blocking(api.deposit)

    def market_stream(self, symbol: str) -> Stream:
        """The public stream of ``symbol``: a ``snapshot`` first, then ``book``, ``trade``,
        ``auction``, ``phase``, ``publication`` and ``resync`` messages (docs/exchange.md,
        "Keeping a book in sync")."""
        return Stream(stream_url(self.base_url, f"/v1/ws/market/{symbol}"), None, self.timeout_s)

    def private_stream(self) -> Stream:
        """Your own events (``accepted``, ``cancelled``, ``amended``, ``fill``), from the
        moment this returns."""
        return Stream(stream_url(self.base_url, "/v1/ws/private"), self._key(), self.timeout_s)

    def session(self, *, cancel_on_disconnect: bool = False) -> Session:
        """An order-entry session over one WebSocket (``_session.Session``): pipelined
        requests, acks in order, your fills in between; with ``cancel_on_disconnect`` your
        open orders are cancelled when it ends, however it ends."""
        return Session(stream_url(self.base_url, "/v1/ws/session"), self._key(),
                       cancel_on_disconnect=cancel_on_disconnect,
                       open_timeout_s=self.timeout_s)  # fmt: skip

    def _key(self) -> str:
        if self.api_key is None:
            raise ApiError(None, "AUTH_MISSING_KEY", "this needs a client with an API key")
        return self.api_key

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:  # fmt: skip
        self.close()


class AsyncClient:
    """The asyncio twin of :class:`Client`: the same methods, each a coroutine; use it as an
    async context manager, or ``await client.close()``."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url, self.api_key, self.timeout_s = base_url.rstrip("/"), api_key, timeout_s
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=_headers(api_key),
                                       timeout=timeout_s, transport=transport)  # fmt: skip

    async def send(self, call: Call[T]) -> T:
        try:
            response = await self._http.request(call.method, call.path, params=call.params,
                                                json=call.body)  # fmt: skip
        except httpx.TransportError as error:
            raise ApiError(None, "CONNECTION", f"{call.method} {call.path}: {error!r}") from None
        return _result(call, response)

    submit_order = _awaitable(api.submit_order)
    cancel_order = _awaitable(api.cancel_order)
    amend_order = _awaitable(api.amend_order)
    cancel_all_orders = _awaitable(api.cancel_all_orders)
    mass_quote = _awaitable(api.mass_quote)
    order = _awaitable(api.order)
    order_by_client_id = _awaitable(api.order_by_client_id)
    orders = _awaitable(api.orders)
    fills = _awaitable(api.fills)
    balances = _awaitable(api.balances)
    me = _awaitable(api.me)
    book = _awaitable(api.book)
    trades = _awaitable(api.trades)
    ticker = _awaitable(api.ticker)
    bars = _awaitable(api.bars)
    instruments = _awaitable(api.instruments)
    instrument = _awaitable(api.instrument)
    products = _awaitable(api.products)
    product = _awaitable(api.product)
    valuation = _awaitable(api.valuation)
    comparables = _awaitable(api.comparables)
    health = _awaitable(api.health)
    request_quote = _awaitable(api.request_quote)
    rfqs = _awaitable(api.rfqs)
    rfq = _awaitable(api.rfq)
    submit_quote = _awaitable(api.submit_quote)
    accept_quote = _awaitable(api.accept_quote)
    cancel_request = _awaitable(api.cancel_request)
    report_trade = _awaitable(api.report_trade)
    trade_reports = _awaitable(api.trade_reports)
    confirm_trade = _awaitable(api.confirm_trade)
    confidential_trades = _awaitable(api.confidential_trades)
    create_participant = _awaitable(api.create_participant)
    participants = _awaitable(api.participants)
    disable_participant = _awaitable(api.disable_participant)
    enable_participant = _awaitable(api.enable_participant)
    rotate_api_key = _awaitable(api.rotate_api_key)
    revoke_api_key = _awaitable(api.revoke_api_key)
    deposit = _awaitable(api.deposit)

    def market_stream(self, symbol: str) -> AsyncStream:
        """As :meth:`Client.market_stream`; ``async with`` it to open it."""
        return AsyncStream(stream_url(self.base_url, f"/v1/ws/market/{symbol}"), None,
                           self.timeout_s)  # fmt: skip

    def private_stream(self) -> AsyncStream:
        """As :meth:`Client.private_stream`; ``async with`` it to open it."""
        return AsyncStream(stream_url(self.base_url, "/v1/ws/private"), self._key(),
                           self.timeout_s)  # fmt: skip

    def session(self, *, cancel_on_disconnect: bool = False) -> AsyncSession:
        """As :meth:`Client.session`; ``async with`` it to open it."""
        return AsyncSession(stream_url(self.base_url, "/v1/ws/session"), self._key(),
                            cancel_on_disconnect=cancel_on_disconnect,
                            open_timeout_s=self.timeout_s)  # fmt: skip

    def _key(self) -> str:
        if self.api_key is None:
            raise ApiError(None, "AUTH_MISSING_KEY", "this needs a client with an API key")
        return self.api_key

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:  # fmt: skip
        await self.close()

