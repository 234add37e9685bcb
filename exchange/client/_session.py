"""The order-entry WebSocket session (``/v1/ws/session``), blocking and asyncio.

Requests are pipelined: each ``send_…`` method sends one request and returns its
``request_id`` at once; the server answers every request, in the order they were sent, with
an ``ack`` or a ``reject``, and sends the participant's fills (``fill`` messages, the drop
copy) in between. :meth:`Session.answer` waits for one request's answer: the ack's content
(``order``, ``orders`` or the mass quote's ``cancelled`` and ``placed``), or the reject
raised as :class:`~._wire.ApiError`; fills that arrive meanwhile are kept in ``fills``, in
order. ``submit_order`` and the other plain verbs send and wait in one call.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

from websockets.asyncio.client import ClientConnection as AsyncConnection
from websockets.asyncio.client import connect as connect_async
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect

from ._streams import API_KEY_HEADER, MAX_MESSAGE_BYTES
from ._types import Order
from ._wire import Amount, ApiError, amount_text, decimals

__all__ = ["AsyncSession", "Session", "quote"]


def quote(client_order_id: str, side: str, price: Amount, quantity: int) -> dict[str, Any]:
    """One quote of a mass quote."""
    return {"client_order_id": client_order_id, "side": side,
            "price": amount_text(price, "price"), "quantity": quantity}  # fmt: skip


class _Protocol:
    """What the blocking and the asyncio session share: building requests, sorting what
    comes back."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.fills: deque[dict[str, Any]] = deque()
        self._answers: dict[Any, dict[str, Any]] = {}
        self.opened: dict[str, Any] = {}

    def _request(self, kind: str, **fields: Any) -> tuple[Any, str]:
        request_id = next(self._ids)
        body = {"type": kind, "request_id": request_id,
                **{k: v for k, v in fields.items() if v is not None}}  # fmt: skip
        return request_id, json.dumps(body)

    @staticmethod
    def _order_fields(symbol: str, side: str, quantity: int, price: Amount | None,
                      client_order_id: str, **options: Any) -> dict[str, Any]:  # fmt: skip
        return {"symbol": symbol, "side": side, "quantity": quantity,
                "price": None if price is None else amount_text(price, "price"),
                "client_order_id": client_order_id, **options}  # fmt: skip

    def _sort(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "fill":
            self.fills.append(message)
        elif kind in ("ack", "reject"):
            self._answers[message.get("request_id")] = message

    def _take(self, request_id: Any) -> dict[str, Any] | None:
        message = self._answers.pop(request_id, None)
        if message is None:
            return None
        if message["type"] == "reject":
            raise ApiError(message.get("status"), str(message.get("reason")),
                           str(message.get("detail")), message.get("retry_after_s"))  # fmt: skip
        return {k: v for k, v in message.items() if k not in ("type", "request_id", "request")}


def _closed(error: ConnectionClosed) -> ApiError:
    close = error.rcvd
    words = close.reason if close is not None and close.reason else str(error)
    return ApiError(None, "CLOSED", words)


def _url(url: str, cancel_on_disconnect: bool) -> str:
    return f"{url}?cancel_on_disconnect={'true' if cancel_on_disconnect else 'false'}"


class Session(_Protocol):
    """A blocking order-entry session; ``cancel_on_disconnect`` cancels every open order of
    the participant when the connection ends, however it ends."""

    def __init__(self, url: str, api_key: str, *, cancel_on_disconnect: bool,
                 open_timeout_s: float) -> None:  # fmt: skip
        super().__init__()
        self.timeout_s = open_timeout_s
        try:
            # Opened here and closed by close(): the session object is the context manager.
            self._socket: ClientConnection = connect(
                _url(url, cancel_on_disconnect), additional_headers={API_KEY_HEADER: api_key},
                open_timeout=open_timeout_s, max_size=MAX_MESSAGE_BYTES, proxy=None,
                legacy=True,
            )  # fmt: skip
        except (OSError, InvalidHandshake, TimeoutError) as error:
            raise ApiError(None, "CONNECTION", f"cannot open {url}: {error}") from None
        try:
            self.opened = self.receive(open_timeout_s)
        except BaseException:
            self.close()
            raise
        if self.opened.get("type") != "session":
            self.close()
            raise ApiError(None, "PROTOCOL", f"expected the session's opening, got {self.opened}")

    def receive(self, timeout_s: float | None = None) -> dict[str, Any]:
        """The next message, whatever it is (``TimeoutError`` after ``timeout_s``)."""
        try:
            raw = self._socket.recv(timeout=timeout_s)
        except ConnectionClosed as error:
            raise _closed(error) from None
        return decimals(json.loads(raw))  # type: ignore[no-any-return]

    def _send(self, request: tuple[Any, str]) -> Any:
        try:
            self._socket.send(request[1])
        except ConnectionClosed as error:
            raise _closed(error) from None
        return request[0]

    def answer(self, request_id: Any, timeout_s: float | None = None) -> dict[str, Any]:
        """The answer to ``request_id``: its ack's content, or its reject raised."""
        while True:
            found = self._take(request_id)
            if found is not None:
                return found
            self._sort(self.receive(self.timeout_s if timeout_s is None else timeout_s))

    def next_fill(self, timeout_s: float | None = None) -> dict[str, Any]:
        """The oldest fill not yet taken (answers that arrive meanwhile are kept for
        :meth:`answer`); ``TimeoutError`` if none comes within ``timeout_s``."""
        while not self.fills:
            self._sort(self.receive(self.timeout_s if timeout_s is None else timeout_s))
        return self.fills.popleft()

    def send_new_order(self, symbol: str, side: str, quantity: int, price: Amount | None = None,
                       *, client_order_id: str, **options: Any) -> Any:  # fmt: skip
        """Send an order (``options``: ``order_type``, ``time_in_force``, ``post_only``, …,
        as REST takes them); its request id."""
        return self._send(self._request("new_order", **self._order_fields(
            symbol, side, quantity, price, client_order_id, **options)))  # fmt: skip

    def send_cancel(self, order_id: int) -> Any:
        return self._send(self._request("cancel", order_id=order_id))

    def send_amend(self, order_id: int, *, price: Amount | None = None,
                   quantity: int | None = None) -> Any:  # fmt: skip
        return self._send(self._request(
            "amend", order_id=order_id, quantity=quantity,
            price=None if price is None else amount_text(price, "price"),
        ))  # fmt: skip

    def send_cancel_all(self, symbol: str | None = None, side: str | None = None) -> Any:
        return self._send(self._request("cancel_all", symbol=symbol, side=side))

    def send_mass_quote(self, symbol: str, quotes: Sequence[dict[str, Any]]) -> Any:
        """Replace your quotes on ``symbol`` with ``quotes`` (see :func:`quote`), all or none."""
        return self._send(self._request("mass_quote", symbol=symbol, quotes=list(quotes)))

    def submit_order(self, symbol: str, side: str, quantity: int, price: Amount | None = None,
                     *, client_order_id: str, **options: Any) -> Order:  # fmt: skip
        request_id = self.send_new_order(symbol, side, quantity, price,
                                         client_order_id=client_order_id, **options)  # fmt: skip
        return self.answer(request_id)["order"]  # type: ignore[no-any-return]

    def cancel_order(self, order_id: int) -> Order:
        return self.answer(self.send_cancel(order_id))["order"]  # type: ignore[no-any-return]

    def amend_order(self, order_id: int, *, price: Amount | None = None,
                    quantity: int | None = None) -> Order:  # fmt: skip
        request_id = self.send_amend(order_id, price=price, quantity=quantity)
        return self.answer(request_id)["order"]  # type: ignore[no-any-return]

    def cancel_all_orders(self, symbol: str | None = None, side: str | None = None) -> list[Order]:
        answer = self.answer(self.send_cancel_all(symbol, side))
        return answer["orders"]  # type: ignore[no-any-return]

    def mass_quote(self, symbol: str, quotes: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return self.answer(self.send_mass_quote(symbol, quotes))

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:  # fmt: skip
        self.close()


class AsyncSession(_Protocol):
    """The asyncio twin of :class:`Session`: ``async with`` it to open it."""

    def __init__(self, url: str, api_key: str, *, cancel_on_disconnect: bool,
                 open_timeout_s: float) -> None:  # fmt: skip
        super().__init__()
        self._url = _url(url, cancel_on_disconnect)
        self._api_key, self.timeout_s = api_key, open_timeout_s
        self._socket: AsyncConnection | None = None

    async def open(self) -> Self:
        try:
            self._socket = await connect_async(
                self._url, additional_headers={API_KEY_HEADER: self._api_key},
                open_timeout=self.timeout_s, max_size=MAX_MESSAGE_BYTES, proxy=None,
            )  # fmt: skip
        except (OSError, InvalidHandshake, TimeoutError) as error:
            raise ApiError(None, "CONNECTION", f"cannot open {self._url}: {error}") from None
        try:
            async with asyncio.timeout(self.timeout_s):
                self.opened = await self.receive()
            if self.opened.get("type") != "session":
                raise ApiError(None, "PROTOCOL", f"expected the session's opening, got "
                                                 f"{self.opened}")  # fmt: skip
        except BaseException:
            await self.close()
            raise
        return self

    def _open_socket(self) -> AsyncConnection:
        if self._socket is None:
            raise RuntimeError("open the session first (async with, or await session.open())")
        return self._socket

    async def receive(self) -> dict[str, Any]:
        try:
            raw = await self._open_socket().recv()
        except ConnectionClosed as error:
            raise _closed(error) from None
        return decimals(json.loads(raw))  # type: ignore[no-any-return]

    async def _send(self, request: tuple[Any, str]) -> Any:
        try:
            await self._open_socket().send(request[1])
        except ConnectionClosed as error:
            raise _closed(error) from None
        return request[0]

    async def answer(self, request_id: Any) -> dict[str, Any]:
        async with asyncio.timeout(self.timeout_s):
            while True:
                found = self._take(request_id)
                if found is not None:
                    return found
                self._sort(await self.receive())

    async def next_fill(self) -> dict[str, Any]:
        """As :meth:`Session.next_fill` (wrap in ``asyncio.timeout`` to bound the wait)."""
        while not self.fills:
            self._sort(await self.receive())
        return self.fills.popleft()

    async def send_new_order(self, symbol: str, side: str, quantity: int,
                             price: Amount | None = None, *, client_order_id: str,
                             **options: Any) -> Any:  # fmt: skip
        return await self._send(self._request("new_order", **self._order_fields(
            symbol, side, quantity, price, client_order_id, **options)))  # fmt: skip

    async def send_cancel(self, order_id: int) -> Any:
        return await self._send(self._request("cancel", order_id=order_id))

    async def send_amend(self, order_id: int, *, price: Amount | None = None,
                         quantity: int | None = None) -> Any:  # fmt: skip
        return await self._send(self._request(
            "amend", order_id=order_id, quantity=quantity,
            price=None if price is None else amount_text(price, "price"),
        ))  # fmt: skip

    async def send_cancel_all(self, symbol: str | None = None, side: str | None = None) -> Any:
        return await self._send(self._request("cancel_all", symbol=symbol, side=side))

    async def send_mass_quote(self, symbol: str, quotes: Sequence[dict[str, Any]]) -> Any:
        return await self._send(self._request("mass_quote", symbol=symbol, quotes=list(quotes)))

    async def submit_order(self, symbol: str, side: str, quantity: int,
                           price: Amount | None = None, *, client_order_id: str,
                           **options: Any) -> Order:  # fmt: skip
        request_id = await self.send_new_order(
            symbol, side, quantity, price, client_order_id=client_order_id, **options
        )
        return (await self.answer(request_id))["order"]  # type: ignore[no-any-return]

    async def cancel_order(self, order_id: int) -> Order:
        answer = await self.answer(await self.send_cancel(order_id))
        return answer["order"]  # type: ignore[no-any-return]

    async def amend_order(self, order_id: int, *, price: Amount | None = None,
                          quantity: int | None = None) -> Order:  # fmt: skip
        request_id = await self.send_amend(order_id, price=price, quantity=quantity)
        return (await self.answer(request_id))["order"]  # type: ignore[no-any-return]

    async def cancel_all_orders(self, symbol: str | None = None,
                                side: str | None = None) -> list[Order]:  # fmt: skip
        answer = await self.answer(await self.send_cancel_all(symbol, side))
        return answer["orders"]  # type: ignore[no-any-return]

    async def mass_quote(self, symbol: str, quotes: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return await self.answer(await self.send_mass_quote(symbol, quotes))

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:  # fmt: skip
        await self.close()
