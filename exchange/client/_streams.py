"""The WebSocket streams: the public market stream of one instrument and the private
stream of the key's participant, each as a blocking and an asyncio iterator of messages.

A message is the decoded JSON with its amounts as ``Decimal`` (``_wire.decimals``). A socket
the server closes with a reason (a wrong key, a client too slow to keep up) raises
:class:`~._wire.ApiError` with ``reason`` ``CLOSED`` and the server's words; an orderly close
ends the iteration."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any, Self

from websockets.asyncio.client import ClientConnection as AsyncConnection
from websockets.asyncio.client import connect as connect_async
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, InvalidHandshake
from websockets.sync.client import ClientConnection, connect

from ._wire import ApiError, decimals

__all__ = ["AsyncStream", "Stream", "stream_url"]

API_KEY_HEADER = "X-API-Key"
# The largest message a stream sends is a market snapshot of a deep book.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


def stream_url(base_url: str, path: str) -> str:
    """The ``ws://`` (or ``wss://``) URL of ``path`` on the API at ``base_url``."""
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + path
    if base.startswith("http://"):
        return "ws://" + base.removeprefix("http://") + path
    raise ValueError(f"the API's URL must start with http:// or https://, not {base_url!r}")


def _closed(error: ConnectionClosed) -> ApiError:
    close = error.rcvd
    words = close.reason if close is not None and close.reason else str(error)
    return ApiError(None, "CLOSED", words)


def _message(raw: str | bytes) -> dict[str, Any]:
    return decimals(json.loads(raw))  # type: ignore[no-any-return]


def _check_subscribed(first: dict[str, Any]) -> None:
    if first.get("type") != "auth":
        raise ApiError(None, "PROTOCOL", f"expected the stream's auth answer, got {first!r}")


class Stream:
    """A blocking stream: iterate it, or :meth:`receive` with a timeout. Close it (or use it
    as a context manager) when done. With ``api_key`` (the private stream) it is open once
    the server has answered that it is subscribed: every event after that reaches it."""

    def __init__(self, url: str, api_key: str | None, open_timeout_s: float) -> None:
        headers = {API_KEY_HEADER: api_key} if api_key is not None else None
        try:
            # Opened here and closed by close(): the stream object is the context manager.
            self._socket: ClientConnection = connect(
                url, additional_headers=headers, open_timeout=open_timeout_s,
                max_size=MAX_MESSAGE_BYTES, proxy=None, legacy=True,
            )  # fmt: skip
        except (OSError, InvalidHandshake, TimeoutError) as error:
            raise ApiError(None, "CONNECTION", f"cannot open {url}: {error}") from None
        if api_key is not None:
            try:
                _check_subscribed(self.receive(open_timeout_s))
            except BaseException:
                self.close()
                raise

    def receive(self, timeout_s: float | None = None) -> dict[str, Any]:
        """The next message; ``TimeoutError`` if none comes within ``timeout_s``."""
        try:
            return _message(self._socket.recv(timeout=timeout_s))
        except ConnectionClosedOK:
            raise ApiError(None, "CLOSED", "the server closed the stream") from None
        except ConnectionClosed as error:
            raise _closed(error) from None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            for raw in self._socket:
                yield _message(raw)
        except ConnectionClosed as error:
            raise _closed(error) from None

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:  # fmt: skip
        self.close()


class AsyncStream:
    """An asyncio stream: ``async with`` it (which opens it, as :class:`Stream` opens), then
    ``async for`` over it or await :meth:`receive`."""

    def __init__(self, url: str, api_key: str | None, open_timeout_s: float) -> None:
        self._url, self._open_timeout_s = url, open_timeout_s
        self._headers = {API_KEY_HEADER: api_key} if api_key is not None else None
        self._socket: AsyncConnection | None = None

    async def open(self) -> Self:
        try:
            self._socket = await connect_async(
                self._url, additional_headers=self._headers, open_timeout=self._open_timeout_s,
                max_size=MAX_MESSAGE_BYTES, proxy=None,
            )  # fmt: skip
        except (OSError, InvalidHandshake, TimeoutError) as error:
            raise ApiError(None, "CONNECTION", f"cannot open {self._url}: {error}") from None
        if self._headers is not None:
            try:
                async with asyncio.timeout(self._open_timeout_s):
                    _check_subscribed(await self.receive())
            except BaseException:
                await self.close()
                raise
        return self

    def _open_socket(self) -> AsyncConnection:
        if self._socket is None:
            raise RuntimeError("open the stream first (async with, or await stream.open())")
        return self._socket

    async def receive(self) -> dict[str, Any]:
        """The next message (wrap in ``asyncio.timeout`` to bound the wait)."""
        try:
            return _message(await self._open_socket().recv())
        except ConnectionClosedOK:
            raise ApiError(None, "CLOSED", "the server closed the stream") from None
        except ConnectionClosed as error:
            raise _closed(error) from None

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        try:
            async for raw in self._open_socket():
                yield _message(raw)
        except ConnectionClosed as error:
            raise _closed(error) from None

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:  # fmt: skip
        await self.close()
