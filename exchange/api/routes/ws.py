"""WebSocket streams: ``/v1/ws/market/{symbol}`` (public) and ``/v1/ws/private`` (your own
order events and fills, and the alerts of your loan facilities).

The market stream starts with ``{"type": "snapshot", "seq": ...}``, the whole book as
``GET /v1/market/{symbol}/book`` shows it (every level), then sends the messages of every
later command, each with the journal sequence number of its command (several messages of one
command share it; it only grows). A client that falls behind is sent
``{"type": "resync", ...}`` in place of what it missed, then a fresh snapshot: a client that
keeps a book replaces it with the snapshot (docs/exchange.md, "Keeping a book in sync").

The private stream takes the API key in the ``X-API-Key`` header, or, from a client that
cannot set headers on a WebSocket (a browser), as its first message::

    {"type": "auth", "api_key": "dxk_..."}

within :data:`AUTH_TIMEOUT_S` of connecting. Either way the stream then answers
``{"type": "auth", "participant_id": "..."}``, once it is subscribed (every event after the
acknowledgement reaches it), and streams. A missing, malformed or wrong key closes the socket
with code 1008 and the reason in words. A key in the URL (``?api_key=``) is refused the same
way, since URLs are logged by servers and proxies: the log lines are masked
(``exchange.api.redaction``), but the key should not travel there at all.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, Final

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from exchange.participants import Participant

from ..deps import API_KEY_HEADER, authenticate, runtime_of
from ..errors import ApiError
from ..hub import RESYNC
from ..runtime import Runtime
from .market import book_view

router = APIRouter(prefix="/ws", tags=["streams"])

AUTH_TIMEOUT_S: Final = 10.0
# An authentication message is a key (at most 128 characters) in a small object.
MAX_AUTH_MESSAGE_CHARS: Final = 1_000
AUTH_MESSAGE_SHAPE: Final = 'the first message must be {"type": "auth", "api_key": "..."}'


async def _stream(
    websocket: WebSocket,
    queue: asyncio.Queue[dict[str, Any] | None],
    snapshot: Callable[[], dict[str, Any]] | None = None,
    seen_seq: int = 0,
) -> None:
    """Send messages until the client leaves or falls too far behind (``None``). Messages of
    commands up to ``seen_seq`` are skipped: the snapshot the client has holds them. On
    :data:`RESYNC`, send it and a fresh ``snapshot``."""
    receiving = asyncio.ensure_future(websocket.receive_text())
    try:
        while True:
            getting = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getting, receiving}, return_when=asyncio.FIRST_COMPLETED)
            if receiving in done:
                getting.cancel()
                receiving.result()  # raises WebSocketDisconnect when the client has gone
                receiving = asyncio.ensure_future(websocket.receive_text())
                continue
            message = getting.result()
            if message is None:
                await websocket.close(code=status.WS_1008_POLICY_VIOLATION,
                                      reason="too slow: messages were dropped")  # fmt: skip
                return
            if message is RESYNC and snapshot is not None:
                fresh = snapshot()
                seen_seq = fresh["seq"]
                await websocket.send_json(message)
                await websocket.send_json(fresh)
                continue
            if message["seq"] <= seen_seq:
                continue
            await websocket.send_json(message)
    except WebSocketDisconnect:
        return
    finally:
        receiving.cancel()


@router.websocket("/market/{symbol}")
async def market_stream(websocket: WebSocket, symbol: str) -> None:
    runtime = runtime_of(websocket)
    known = runtime.read(lambda exchange: symbol in exchange.instruments)
    if not known:
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason=f"no {symbol}")
        return
    try:
        queue = runtime.hub.subscribe("market", symbol)
    except OverflowError:
        await websocket.close(code=status.WS_1013_TRY_AGAIN_LATER)
        return

    def snapshot() -> dict[str, Any]:
        read = runtime.read(lambda exchange: book_view(exchange, symbol, -1))
        return {"type": "snapshot", **read.model_dump(mode="json")}

    # Read after subscribing, with no await between: every command the snapshot misses has
    # its messages queued after it. Read before accepting, so that a command the client sends
    # once connected is one the snapshot misses.
    first = snapshot()
    try:
        await websocket.accept()
        await websocket.send_json(first)
        await _stream(websocket, queue, snapshot, first["seq"])
    except WebSocketDisconnect:
        return
    finally:
        runtime.hub.unsubscribe("market", symbol, queue)


async def _refuse(websocket: WebSocket, reason: str) -> None:
    await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason=reason)


def _auth_message(message: dict[str, Any], options: frozenset[str]) -> dict[str, Any] | None:
    """An authentication message (its key a string, and no field but ``options`` besides
    ``type`` and ``api_key``), or None if it is not one."""
    text = message.get("text")
    if not isinstance(text, str) or len(text) > MAX_AUTH_MESSAGE_CHARS:
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if not isinstance(body, dict) or not {"type", "api_key"} <= body.keys() <= options | {
        "type", "api_key"
    }:
        return None
    ok = body["type"] == "auth" and isinstance(body["api_key"], str)
    return body if ok else None


async def _authenticated(websocket: WebSocket, runtime: Runtime) -> Participant | None:
    """Accept the socket and authenticate it, by header or first message; None (the socket
    closed with the reason) if it cannot be."""
    opened = await authenticated_with(websocket, runtime, frozenset(), AUTH_MESSAGE_SHAPE)
    return None if opened is None else opened[0]


async def authenticated_with(
    websocket: WebSocket, runtime: Runtime, options: frozenset[str], shape: str
) -> tuple[Participant, dict[str, Any]] | None:
    """Accept the socket and authenticate it, by header or first message: the participant and
    the options the message gave (none with a header). None (the socket closed with the
    reason; ``shape`` describes the message) if it cannot be."""
    # Accepted first, so that a refusal can say why: a close before the handshake reaches the
    # client as a bare HTTP 403.
    await websocket.accept()
    if "api_key" in websocket.query_params:
        await _refuse(websocket, "the API key goes in the X-API-Key header or the first "
                                 "message, never in the URL")  # fmt: skip
        return None
    key = websocket.headers.get(API_KEY_HEADER)
    given: dict[str, Any] = {}
    if key is None:
        try:
            message = await asyncio.wait_for(websocket.receive(), AUTH_TIMEOUT_S)
        except TimeoutError:
            await _refuse(websocket, f"no authentication message within {AUTH_TIMEOUT_S:g} s")
            return None
        if message["type"] == "websocket.disconnect":
            return None
        body = _auth_message(message, options)
        if body is None:
            await _refuse(websocket, shape)
            return None
        key = body.pop("api_key")
        given = {name: value for name, value in body.items() if name in options}
    try:
        return authenticate(runtime, key), given
    except ApiError as error:
        await _refuse(websocket, error.detail)
        return None


@router.websocket("/private")
async def private_stream(websocket: WebSocket) -> None:
    runtime = runtime_of(websocket)
    participant = await _authenticated(websocket, runtime)
    if participant is None:
        return
    who = participant.participant_id
    try:
        queue = runtime.hub.subscribe("private", who)
    except OverflowError:
        await websocket.close(code=status.WS_1013_TRY_AGAIN_LATER)
        return
    try:
        await websocket.send_json({"type": "auth", "participant_id": who})
        await _stream(websocket, queue)
    except WebSocketDisconnect:
        return
    finally:
        runtime.hub.unsubscribe("private", who, queue)
