"""What a request's query string may name and hold: only the parameters its route declares,
and times as ISO 8601 with a zone.

A query parameter the route does not know is refused (422, naming it and the ones the route
takes) rather than ignored: ``/v1/orders?symbl=X`` would otherwise answer every order, and a
client would take the misspelt filter for one that worked. It is refused after the key is
checked, as any other invalid parameter is: a request without a valid key learns nothing of a
route's parameters, and a key sent as ``?api_key=`` is a 401 like any missing key.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BeforeValidator
from starlette.requests import Request

__all__ = [
    "IsoTime",
    "declared_query_names",
    "note_unknown_query",
    "ns_of",
    "refusing_unknown_query",
    "time_range",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# RFC 3339's date-time (seconds optional): pydantic alone would also read "0.5" or "1700000000"
# as seconds since the epoch, which the OpenAPI document's date-time format does not allow.
_ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})"
)


def _iso_with_zone(value: Any) -> Any:
    if isinstance(value, str) and _ISO_TIME.fullmatch(value):
        return value
    raise ValueError("must be an ISO 8601 time with a zone, e.g. 2026-12-01T00:00:00Z")


IsoTime = Annotated[AwareDatetime, BeforeValidator(_iso_with_zone)]

# The first query parameter of the request in hand that its route does not declare, with
# those it does; set by the route's handler before the dependencies run, read by the
# endpoint after them (the same task).
_unknown: ContextVar[tuple[str, frozenset[str]] | None] = ContextVar(
    "unknown_query_parameter", default=None
)


def declared_query_names(dependant: Dependant) -> frozenset[str]:
    """The query parameters (by the name a client sends) that ``dependant`` and its
    dependencies read."""
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        names.update(field.alias for field in current.query_params)
        pending.extend(current.dependencies)
    return frozenset(names)


def note_unknown_query(request: Request, declared: frozenset[str]) -> None:
    """Note the first query parameter of ``request`` not in ``declared`` (or none), for the
    endpoint (:func:`refusing_unknown_query`) to refuse."""
    if not request.scope["query_string"]:  # most requests: nothing to parse
        _unknown.set(None)
        return
    name = next((name for name in request.query_params if name not in declared), None)
    _unknown.set(None if name is None else (name, declared))


def _refuse() -> None:
    unknown = _unknown.get()
    if unknown is not None:
        name, declared = unknown
        takes = ", ".join(sorted(declared)) if declared else "no query parameters"
        raise RequestValidationError([{
            "loc": ("query", name), "type": "extra_forbidden",
            "msg": f"unknown query parameter (this route takes {takes})",
        }])  # fmt: skip


def refusing_unknown_query(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` (a coroutine function), first refusing (422) the query parameter noted
    by :func:`note_unknown_query`. It runs once the dependencies (the key's check among them)
    have passed. FastAPI reads the signature through the wrapper (``__wrapped__``)."""
    # A plain function would run in a worker thread, where the note might not be seen.
    assert inspect.iscoroutinefunction(endpoint), f"{endpoint.__name__} is not async"

    @functools.wraps(endpoint)
    async def checked(*args: Any, **kwargs: Any) -> Any:
        _refuse()
        return await endpoint(*args, **kwargs)

    checked.refuses_unknown_query = True  # type: ignore[attr-defined]
    return checked


def ns_of(time: datetime | None) -> int | None:
    """An aware time as nanoseconds since the epoch (to the microsecond it carries)."""
    if time is None:
        return None
    # By whole days, seconds and microseconds: a float timestamp would round.
    since = time - _EPOCH
    return (since.days * 86_400 + since.seconds) * 1_000_000_000 + since.microseconds * 1_000


def time_range(
    start_time: datetime | None, end_time: datetime | None
) -> tuple[int | None, int | None]:
    """A listing's ``start_time`` (inclusive) and ``end_time`` (exclusive) in nanoseconds;
    a validation error (422) if the range is empty."""
    start_ns, end_ns = ns_of(start_time), ns_of(end_time)
    if start_ns is not None and end_ns is not None and end_ns <= start_ns:
        raise RequestValidationError([{
            "loc": ("query", "end_time"), "type": "value_error",
            "msg": "must be later than start_time",
        }])  # fmt: skip
    return start_ns, end_ns
