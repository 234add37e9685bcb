"""WebSocket streams: ``/v1/ws/market/{symbol}`` (public) and ``/v1/ws/private`` (your own
order events and fills; the API key goes in the ``X-API-Key`` header or the ``api_key``
query parameter, since browsers cannot set headers on a WebSocket)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from ..deps import API_KEY_HEADER, authenticate, runtime_of
from ..errors import ApiError

router = APIRouter(prefix="/ws", tags=["streams"])


async def _stream(websocket: WebSocket, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
    """Send messages until the client leaves or falls too far behind (``None``)."""
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
    await websocket.accept()
    try:
        await _stream(websocket, queue)
    finally:
        runtime.hub.unsubscribe("market", symbol, queue)


@router.websocket("/private")
async def private_stream(websocket: WebSocket) -> None:
    runtime = runtime_of(websocket)
    key = websocket.headers.get(API_KEY_HEADER) or websocket.query_params.get("api_key")
    try:
        participant = authenticate(runtime, key)
    except ApiError as error:
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason=error.detail)
        return
    who = participant.participant_id
    try:
        queue = runtime.hub.subscribe("private", who)
    except OverflowError:
        await websocket.close(code=status.WS_1013_TRY_AGAIN_LATER)
        return
    await websocket.accept()
    try:
        await _stream(websocket, queue)
    finally:
        runtime.hub.unsubscribe("private", who, queue)
