"""Dependencies of the routes: the runtime, the authenticated participant, role checks.

They are ``async def`` although they never await: FastAPI runs a plain ``def`` dependency in
its thread pool, a hand-off to another thread and back for each, which cost more than the
dependencies themselves (docs/benchmarks.md)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Security
from fastapi.security import APIKeyHeader
from starlette.requests import HTTPConnection

from exchange.participants import ApiKey, Participant, Role

from .errors import ApiError
from .runtime import Runtime

__all__ = ["CurrentParticipant", "RuntimeDep", "requires"]

API_KEY_HEADER = "X-API-Key"
_api_key = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="Your API key")


def runtime_of(connection: HTTPConnection) -> Runtime:
    return connection.app.state.runtime  # type: ignore[no-any-return]


async def get_runtime(connection: HTTPConnection) -> Runtime:
    return runtime_of(connection)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def authenticate(runtime: Runtime, key: str | None) -> Participant:
    """The participant holding ``key``; 401 if missing or wrong, 403 if the participant is
    disabled, 429 if over its rate."""
    if not key:
        raise ApiError(401, f"this needs an API key in the {API_KEY_HEADER} header",
                       "AUTH_MISSING_KEY", {"WWW-Authenticate": "ApiKey"})  # fmt: skip
    parsed = ApiKey.parse(key)
    # One dictionary lookup, seeing the state before or after any command, so without the
    # sequencer's lock: the event loop never waits for a batch to look up a key.
    participant = (
        None if parsed is None
        else runtime.sequencer.exchange.authenticate(parsed.key_id, parsed.secret)
    )  # fmt: skip
    if participant is None:
        participants = runtime.sequencer.exchange.participants
        disabled = (
            None if parsed is None else participants.disabled_holder(parsed.key_id, parsed.secret)
        )
        if disabled is not None:
            raise ApiError(403, f"participant {disabled.participant_id} is disabled by the "
                           "exchange's operator", "AUTH_DISABLED")  # fmt: skip
        raise ApiError(401, "the API key is not valid", "AUTH_INVALID_KEY",
                       {"WWW-Authenticate": "ApiKey"})  # fmt: skip
    assert parsed is not None
    wait_s = runtime.limiter.allow(parsed.key_id)
    if wait_s:
        raise ApiError(429, "too many requests for this API key; slow down", "RATE_LIMITED",
                       {"Retry-After": str(max(1, round(wait_s)))})  # fmt: skip
    return participant


async def current_participant(
    connection: HTTPConnection, key: str | None = Security(_api_key)
) -> Participant:
    return authenticate(runtime_of(connection), key)


CurrentParticipant = Annotated[Participant, Depends(current_participant)]

_Check = Callable[[HTTPConnection, str | None], Coroutine[Any, Any, Participant]]


def requires(*roles: Role) -> _Check:
    """A dependency: the current participant, if it holds one of ``roles`` (else 403).

    It authenticates itself rather than depending on :func:`current_participant`: FastAPI's
    cost grows with each level of dependencies it resolves, on every request."""
    wanted = frozenset(roles)

    async def check(
        connection: HTTPConnection, key: str | None = Security(_api_key)
    ) -> Participant:
        participant = authenticate(runtime_of(connection), key)
        if not participant.has_any(wanted):
            names = ", ".join(sorted(wanted))
            raise ApiError(403, f"this needs one of the roles: {names}", "AUTH_FORBIDDEN")
        return participant

    return check
