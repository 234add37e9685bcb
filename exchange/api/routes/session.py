"""Order entry over a WebSocket session: ``/v1/ws/session``.

One authenticated connection carries a trader's requests (``new_order``, ``cancel``,
``amend``, ``cancel_all``, ``mass_quote``, and for confidential trading ``request_quote``,
``submit_quote``, ``accept_quote``), each with the client's own ``request_id``, and
answers each, in the order the requests came, with an ``ack`` (the command is journalled,
as a REST answer means) or a ``reject`` in the REST error shape (``detail`` and ``reason``,
with the ``status`` REST would have answered). Between the answers it sends the
participant's fills as a drop copy. The protocol, its limits and cancel-on-disconnect are
documented in docs/exchange.md ("Order entry over a WebSocket session").

Authentication is the private stream's (``routes/ws.py``): the key in the ``X-API-Key``
header, or a first message ``{"type": "auth", "api_key": "...",
"cancel_on_disconnect": true}``, never in the URL.

Requests are pipelined: the reader converts each message to a command and hands it to the
sequencer at once, without waiting for the answers to earlier ones, and queues its answer;
the answerer sends the answers in queue order as their commands become durable. Since the
sequencer applies commands in the order it is handed them, a session's requests take effect
in the order they were sent. At most :data:`MAX_IN_FLIGHT` requests are unanswered: beyond
that the session stops reading until answers go out, so a client that sends faster than the
exchange answers is slowed by TCP, not buffered without bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status
from pydantic import Field, StringConstraints, TypeAdapter, ValidationError

from exchange import commands as cmd
from exchange.errors import ExchangeError
from exchange.money import AmountError, parse_minor
from exchange.participants import TRADING_ROLES, Participant
from exchange.sequencer import SequencerStopped
from exchange.service import Outcome
from matching import OrderType, Side

from ..bodies import DuplicateJsonKey, strict_loads
from ..confidential_models import QuoteAccept, QuoteCreate, RfqCreate, trade_view
from ..confidential_models import quote_view as rfq_quote_view
from ..deps import runtime_of
from ..errors import ApiError, status_of
from ..runtime import Runtime
from ..schemas import Identifier, OrderAmend, OrderCreate, Request
from ..views import order_message
from .confidential import request_quote_command, requested_view, submit_quote_command
from .orders import submission
from .quotes import MASS_QUOTE_WEIGHT, MassQuoteCreate, mass_quote_command, quote_view
from .ws import authenticated_with

__all__ = ["MAX_IN_FLIGHT", "MAX_MESSAGE_CHARS", "MAX_SESSIONS_PER_PARTICIPANT", "router"]

log = logging.getLogger(__name__)
router = APIRouter(prefix="/ws", tags=["streams"])

# A request is a small JSON object: the largest, a mass quote of 20 quotes, is under 3 KiB.
MAX_MESSAGE_CHARS: Final = 16 * 1024
# Enough to keep the sequencer's batches full from one connection (a batch is at most a few
# hundred commands), few enough that a session's unanswered work stays small.
MAX_IN_FLIGHT: Final = 256
MAX_SESSIONS_PER_PARTICIPANT: Final = 4
SESSION_AUTH_SHAPE: Final = (
    'the first message must be {"type": "auth", "api_key": "..."} '
    '(optionally with "cancel_on_disconnect": true or false)'
)
REQUEST_TYPES: Final = ("new_order", "cancel", "amend", "cancel_all", "mass_quote",
                         "request_quote", "submit_quote", "accept_quote")  # fmt: skip

RequestId = (
    Annotated[str, StringConstraints(min_length=1, max_length=64)]
    | Annotated[int, Field(strict=True, ge=0, le=2**63 - 1)]
)
OrderId = Annotated[int, Field(strict=True, ge=1, le=2**63 - 1)]


class NewOrderRequest(OrderCreate):
    """An order as ``POST /v1/orders`` takes it, but for its type, ``order_type`` here."""

    type: Literal["new_order"]  # type: ignore[assignment]
    request_id: RequestId
    order_type: OrderType = OrderType.LIMIT


class CancelRequest(Request):
    type: Literal["cancel"]
    request_id: RequestId
    order_id: OrderId


class AmendRequest(OrderAmend):
    type: Literal["amend"]
    request_id: RequestId
    order_id: OrderId


class CancelAllRequest(Request):
    type: Literal["cancel_all"]
    request_id: RequestId
    symbol: Identifier | None = None
    side: Side | None = None


class MassQuoteRequest(MassQuoteCreate):
    type: Literal["mass_quote"]
    request_id: RequestId


class RequestQuoteRequest(RfqCreate):
    type: Literal["request_quote"]
    request_id: RequestId


class SubmitQuoteRequest(QuoteCreate):
    type: Literal["submit_quote"]
    request_id: RequestId
    rfq_id: OrderId


class AcceptQuoteRequest(QuoteAccept):
    type: Literal["accept_quote"]
    request_id: RequestId
    rfq_id: OrderId


SessionRequest = Annotated[
    NewOrderRequest | CancelRequest | AmendRequest | CancelAllRequest | MassQuoteRequest
    | RequestQuoteRequest | SubmitQuoteRequest | AcceptQuoteRequest,
    Field(discriminator="type"),
]
_REQUEST: TypeAdapter[SessionRequest] = TypeAdapter(SessionRequest)
_REQUEST_ID: TypeAdapter[RequestId] = TypeAdapter(RequestId)


def _dumps(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


def _reject(request_id: Any, status_code: int, detail: str, reason: str,
            **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {"type": "reject", "request_id": request_id, "status": status_code,
            "detail": detail, "reason": reason, **extra}  # fmt: skip


def _invalid(error: ValidationError) -> str:
    """A validation error in words, as REST's 422: each field and what is wrong with it."""
    problems = []
    for problem in error.errors()[:10]:
        if problem["type"] in ("union_tag_invalid", "union_tag_not_found"):
            problems.append(f"type must be one of {', '.join(REQUEST_TYPES)}")
            continue
        # The first item of a location is the request's type, the union's tag.
        where = ".".join(str(part) for part in problem["loc"][1:]) or "request"
        problems.append(f"{where}: {problem['msg']}")
    return "; ".join(problems)


def _order_ack(outcome: Outcome) -> dict[str, Any]:
    return {"order": order_message(outcome.result)}


def _orders_ack(outcome: Outcome) -> dict[str, Any]:
    return {"orders": [order_message(order) for order in outcome.result]}


@dataclass(slots=True)
class _Pending:
    """A request handed to the sequencer: its answer once its command is durable."""

    request_id: Any
    request: str
    future: asyncio.Future[Outcome]
    ack: Callable[[Outcome], dict[str, Any]]


@dataclass(slots=True)
class _Session:
    websocket: WebSocket
    runtime: Runtime
    participant: Participant
    cancel_on_disconnect: bool
    rate_key: str  # the key the session authenticated with: its rate limit's bucket
    answers: asyncio.Queue[_Pending | dict[str, Any]] = field(default_factory=asyncio.Queue)
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_IN_FLIGHT))
    sending: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, message: dict[str, Any]) -> None:
        async with self.sending:
            await self.websocket.send_text(_dumps(message))

    # -- reading ---------------------------------------------------------------------------

    async def read(self) -> None:
        """Take requests until the client leaves; each answer is queued in order."""
        websocket = self.websocket
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            await self.slots.acquire()
            self.answers.put_nowait(self.handle(message))

    def handle(self, message: dict[str, Any]) -> _Pending | dict[str, Any]:
        """A request's pending answer, or its rejection at once."""
        text = message.get("text")
        if text is None:
            return _reject(None, 422, "requests are JSON objects in text messages",
                           "VALIDATION_INVALID")  # fmt: skip
        if len(text) > MAX_MESSAGE_CHARS:
            return _reject(None, 413, f"the message is longer than the limit of "
                                      f"{MAX_MESSAGE_CHARS} characters",
                           "VALIDATION_BODY_TOO_LARGE")  # fmt: skip
        try:
            raw = strict_loads(text)
        except DuplicateJsonKey as error:
            return _reject(None, 400, str(error.detail), error.reason)
        except (ValueError, RecursionError) as error:
            # RecursionError: nesting deeper than the parser goes, within the size limit.
            return _reject(None, 422, f"the message is not JSON this API reads: {error}",
                           "VALIDATION_INVALID")  # fmt: skip
        if type(raw) is not dict:
            return _reject(None, 422, "a request is a JSON object with a type and a request_id",
                           "VALIDATION_INVALID")  # fmt: skip
        request_id = _request_id_of(raw)
        try:
            request = _REQUEST.validate_python(raw)
        except ValidationError as error:
            return _reject(request_id, 422, _invalid(error), "VALIDATION_INVALID")
        weight = MASS_QUOTE_WEIGHT if type(request) is MassQuoteRequest else 1
        wait_s = self.runtime.limiter.allow(self.rate_key, weight)
        if wait_s:
            return _reject(request_id, 429, "too many requests for this API key; slow down",
                           "RATE_LIMITED", retry_after_s=round(wait_s, 3))  # fmt: skip
        try:
            command, ack = self.command(request)
            future = asyncio.wrap_future(self.runtime.sequencer.submit(command))
        except (ApiError, AmountError, SequencerStopped) as error:
            return _rejection(request_id, error)
        return _Pending(request.request_id, request.type, future, ack)

    def command(
        self, request: Any
    ) -> tuple[cmd.Command, Callable[[Outcome], dict[str, Any]]]:
        """The command a request makes, and how its acknowledgement reads the outcome."""
        me = self.participant
        who = me.participant_id
        kind = type(request)
        if kind is NewOrderRequest:
            return submission(request, me, request.order_type), _order_ack
        if kind is CancelRequest:
            return cmd.CancelOrder(who, request.order_id), _order_ack
        if kind is AmendRequest:
            price = None if request.price is None else parse_minor(request.price, "price")
            return cmd.AmendOrder(who, request.order_id, price, request.quantity), _order_ack
        if kind is CancelAllRequest:
            return cmd.CancelAllOrders(who, who, request.symbol, request.side), _orders_ack
        if kind is MassQuoteRequest:
            symbol = request.symbol
            return mass_quote_command(request, me), lambda outcome: quote_view(
                symbol, outcome.result
            ).model_dump(mode="json")
        # Confidential trading: requests for quote (docs/confidential.md).
        if kind is RequestQuoteRequest:
            return request_quote_command(request, me), lambda outcome: {
                "rfq": requested_view(outcome.result, me).model_dump(mode="json")
            }
        if kind is SubmitQuoteRequest:
            return submit_quote_command(request.rfq_id, request, me), lambda outcome: {
                "quote": rfq_quote_view(outcome.result).model_dump(mode="json")
            }
        assert kind is AcceptQuoteRequest, kind
        return cmd.AcceptQuote(who, request.rfq_id, request.quote_id, 0), lambda outcome: {
            "trade": trade_view(outcome.result).model_dump(mode="json")
        }

    # -- answering -------------------------------------------------------------------------

    async def answer(self) -> None:
        """Send each request's answer, in the order the requests came."""
        answers = self.answers
        while True:
            item = await answers.get()
            if type(item) is _Pending:
                try:
                    outcome = await item.future
                except (ExchangeError, SequencerStopped) as error:
                    message = _rejection(item.request_id, error)
                else:
                    message = {"type": "ack", "request_id": item.request_id,
                               "request": item.request, **item.ack(outcome)}  # fmt: skip
            else:
                message = item  # type: ignore[assignment]
            await self.send(message)
            self.slots.release()

    async def drop_copy(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        """Send the participant's fills as they are journalled; close the session if it fell
        so far behind that the hub dropped it."""
        while True:
            message = await queue.get()
            if message is None:
                await self.websocket.close(code=status.WS_1008_POLICY_VIOLATION,
                                           reason="too slow: fills were dropped")  # fmt: skip
                return
            await self.send(message)


def _request_id_of(raw: dict[str, Any]) -> Any:
    """The request id of a message that may be malformed, if it has a valid one."""
    if "request_id" not in raw:
        return None
    try:
        return _REQUEST_ID.validate_python(raw["request_id"])
    except ValidationError:
        return None


def _rejection(request_id: Any, error: Exception) -> dict[str, Any]:
    """The REST answer to ``error``, as a reject."""
    if isinstance(error, ExchangeError):
        return _reject(request_id, status_of(error.reason), error.message, error.reason)
    if isinstance(error, ApiError):
        return _reject(request_id, error.status, error.detail, error.reason)
    if isinstance(error, AmountError):
        return _reject(request_id, 422, str(error), "VALIDATION_INVALID")
    assert isinstance(error, SequencerStopped), error
    return _reject(request_id, 503, str(error), "UNAVAILABLE", retry_after_s=1)


def _sessions(websocket: WebSocket) -> defaultdict[str, int]:
    """Open sessions per participant, for this app."""
    state = websocket.app.state
    if not hasattr(state, "order_sessions"):
        state.order_sessions = defaultdict(int)
    return state.order_sessions  # type: ignore[no-any-return]


def _flag(value: Any) -> bool | None:
    """``cancel_on_disconnect`` as given in the URL ("true"/"false") or the auth message."""
    if value is True or value == "true":
        return True
    if value is False or value == "false":
        return False
    return None


async def _refuse(websocket: WebSocket, reason: str, code: int = 1008) -> None:
    await websocket.close(code=code, reason=reason)


@router.websocket("/session")
async def order_session(websocket: WebSocket) -> None:
    runtime = runtime_of(websocket)
    opened = await authenticated_with(
        websocket, runtime, frozenset({"cancel_on_disconnect"}), SESSION_AUTH_SHAPE
    )
    if opened is None:
        return
    participant, options = opened
    if not participant.has_any(TRADING_ROLES):
        names = ", ".join(sorted(TRADING_ROLES))
        await _refuse(websocket, f"order entry needs one of the roles: {names}")
        return
    given = options.get("cancel_on_disconnect",
                        websocket.query_params.get("cancel_on_disconnect", False))  # fmt: skip
    cancel_on_disconnect = _flag(given)
    unknown = set(websocket.query_params) - {"cancel_on_disconnect"}
    if cancel_on_disconnect is None or unknown:
        await _refuse(websocket, "the session's only option is cancel_on_disconnect, true or "
                                 "false")  # fmt: skip
        return
    who = participant.participant_id
    sessions = _sessions(websocket)
    if sessions[who] >= MAX_SESSIONS_PER_PARTICIPANT:
        await _refuse(websocket, f"at most {MAX_SESSIONS_PER_PARTICIPANT} order-entry sessions "
                                 "per participant", status.WS_1013_TRY_AGAIN_LATER)  # fmt: skip
        return
    try:
        fills = runtime.hub.subscribe("fills", who)
    except OverflowError:
        await _refuse(websocket, "too many connections", status.WS_1013_TRY_AGAIN_LATER)
        return
    sessions[who] += 1
    session = _Session(websocket, runtime, participant, cancel_on_disconnect,
                       participant.key_id)  # fmt: skip
    tasks: list[asyncio.Task[None]] = []
    try:
        await session.send({
            "type": "session", "participant_id": who,
            "cancel_on_disconnect": cancel_on_disconnect, "max_in_flight": MAX_IN_FLIGHT,
            "max_message_chars": MAX_MESSAGE_CHARS,
        })  # fmt: skip
        tasks = [asyncio.create_task(session.read()), asyncio.create_task(session.answer()),
                 asyncio.create_task(session.drop_copy(fills))]  # fmt: skip
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            error = task.exception()
            # A client that leaves while an answer is sent; anything else is a bug to show.
            if error is not None and not isinstance(error, WebSocketDisconnect | RuntimeError):
                raise error
    except WebSocketDisconnect:
        pass
    finally:
        for task in tasks:
            task.cancel()
        runtime.hub.unsubscribe("fills", who, fills)
        sessions[who] -= 1
        if not sessions[who]:
            del sessions[who]
        if cancel_on_disconnect:
            _cancel_on_disconnect(runtime, who)


def _cancel_on_disconnect(runtime: Runtime, who: str) -> None:
    """Cancel the participant's open orders, all of them, REST's included: queued after every
    request the session handed on, so it cancels what they placed too."""
    try:
        future = runtime.sequencer.submit(cmd.CancelAllOrders(who, who, None, None))
    except SequencerStopped:
        log.warning("cancel on disconnect of %s not queued: the sequencer stopped", who)
        return

    def logged(done: Any) -> None:
        error = done.exception()
        if error is not None:
            log.warning("cancel on disconnect of %s failed: %s", who, error)

    future.add_done_callback(logged)
