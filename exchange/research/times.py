"""Times at the research edge: ISO 8601 text in, integer nanoseconds since the epoch (UTC) out.

The journal stamps every command with ``ts_ns``, nanoseconds since 1970-01-01 UTC. People
write times as ISO 8601 (``2026-11-28T09:30:00Z``, ``2026-11-28 09:30:00.250+08:00``); a
time without an offset is taken as UTC, so a command line means the same on every machine.

>>> parse_time("2026-11-28T09:30:00.000001Z")
1795858200000001000
>>> format_time(1795858200000001000)
'2026-11-28T09:30:00.000001000Z'
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["NS_PER_DAY", "NS_PER_S", "TimeError", "format_time", "parse_time"]

NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_S
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class TimeError(ValueError):
    """Text that is not an ISO 8601 time."""


def parse_time(text: str) -> int:
    """Nanoseconds since the epoch of an ISO 8601 time (UTC unless it says otherwise).

    Exact to the microsecond, which is what ``datetime`` holds; no float is involved.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise TimeError(f"{text!r} is not an ISO 8601 time such as 2026-11-28T09:30:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND * 1_000


def format_time(ts_ns: int) -> str:
    """ISO 8601 UTC text of ``ts_ns``, to the nanosecond."""
    seconds, nanoseconds = divmod(ts_ns, NS_PER_S)
    moment = _EPOCH + timedelta(seconds=seconds)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{nanoseconds:09d}Z"
