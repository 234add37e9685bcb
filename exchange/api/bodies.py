"""What a request body may be: at most :data:`MAX_BODY_BYTES`, and JSON that names each key
once.

:class:`BodyLimit` is an ASGI middleware in front of everything else, so an oversized body is
a 413 before any of it is parsed and before the API key is checked: a body declared larger
than the limit (``Content-Length``) is refused unread, and a chunked body, whose size is known
only by reading it, is read up to the limit and refused as soon as it passes it.

:class:`StrictJsonRoute` is the route class of every API router: its requests parse JSON
refusing a key that appears twice in one object (400, naming the key). ``json.loads`` would
keep the last value silently, so ``{"price": "1.00", "price": "100.00"}`` would mean what a
proxy or a log reading the first value did not see. It also refuses (422) a query parameter
the route does not declare (``exchange.api.query``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any, Final

from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .query import declared_query_names, note_unknown_query, refusing_unknown_query

__all__ = ["MAX_BODY_BYTES", "BodyLimit", "DuplicateJsonKey", "StrictJsonRoute", "strict_loads"]

# Every request this API reads is a small JSON object (the largest, a product or a valuation
# with 100 cash flows, is a few KiB); the limit bounds what one request can make the server
# buffer and parse.
MAX_BODY_BYTES: Final = 64 * 1024
BODY_TOO_LARGE: Final = "VALIDATION_BODY_TOO_LARGE"
DUPLICATE_KEY: Final = "VALIDATION_DUPLICATE_KEY"


def _too_large(max_body_bytes: int) -> JSONResponse:
    detail = f"the request body is larger than the limit of {max_body_bytes} bytes"
    # Close the connection: the rest of the body is never read.
    return JSONResponse({"detail": detail, "reason": BODY_TOO_LARGE}, 413,
                        {"Connection": "close"})  # fmt: skip


class BodyLimit:
    """Refuse (413) a request whose body is larger than ``max_body_bytes``, before the app."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if declared is not None:
            # The HTTP server delivers no more than the declared length, so the header is
            # all there is to check.
            if not declared.isdigit():
                response: Response = JSONResponse(
                    {"detail": "Content-Length is not a number", "reason": "HTTP"}, 400
                )
                await response(scope, receive, send)
            elif int(declared) > self.max_body_bytes:
                await _too_large(self.max_body_bytes)(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        if not chunked:  # no Content-Length and not chunked: no body
            await self.app(scope, receive, send)
            return
        # A chunked body: read it whole, at most the limit, then hand it to the app in one
        # message. A request body of this API is never worth streaming.
        parts: list[bytes] = []
        size_bytes = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            part = message.get("body", b"")
            size_bytes += len(part)
            if size_bytes > self.max_body_bytes:
                await _too_large(self.max_body_bytes)(scope, receive, send)
                return
            parts.append(part)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(parts), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` first, then what ``receive`` gives (a disconnect)."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


class DuplicateJsonKey(HTTPException):
    """A JSON object in the body names ``key`` twice (400).

    An :class:`HTTPException` so that FastAPI passes it on as it is while reading the body
    (it turns any other exception there into a bare 400); ``exchange.api.errors`` answers it
    with the API's error body."""

    reason = DUPLICATE_KEY

    def __init__(self, key: str) -> None:
        super().__init__(400, f"the JSON body names the key {key!r} more than once")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateJsonKey(key)
            seen.add(key)
    return obj


def strict_loads(text: str | bytes) -> Any:
    """JSON that names each key of an object once (:class:`DuplicateJsonKey` otherwise);
    ``ValueError`` if it is not JSON."""
    return json.loads(text, object_pairs_hook=_object_without_duplicates)


class StrictJsonRequest(Request):
    """A request whose JSON body may not name a key twice in one object."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_loads(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """A route whose endpoint reads the body as a :class:`StrictJsonRequest`, and which
    refuses a query parameter it does not declare."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not getattr(endpoint, "refuses_unknown_query", False):  # a route's copy
            endpoint = refusing_unknown_query(endpoint)
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        declared = declared_query_names(self.dependant)

        async def strict(request: Request) -> Response:
            note_unknown_query(request, declared)
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict
