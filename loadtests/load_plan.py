"""The parameters of a load test: the mix of users, their rates, and where load may go.

Plain values, no locust: ``python -m loadtests`` checks them before it starts anything, and
the load generator and the locustfile read them. A mix gives each role a weight
(``"trader=6,viewer=2"``; a role not named gets no users); rates give each role its tasks per
second per user (0: no pause; a role not named keeps its default); a duration is ``60s``,
``2m`` or a number of seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_MIX",
    "DEFAULT_RATES",
    "MAX_DURATION_S",
    "MAX_SPAWN_RATE",
    "MAX_STEPS",
    "MAX_USERS",
    "PHASES",
    "ROLES",
    "LoadPlan",
    "check_loopback",
    "parse_by_role",
    "parse_duration",
]

ROLES = ("trader", "market_maker", "viewer", "valuer")
PHASES = ("bare", "edge", "orders", "mixed", "ws-orders")  # loadtests/loadtest_run.py
DEFAULT_MIX = "trader=6,market_maker=1,viewer=2,valuer=1"
DEFAULT_RATES = "trader=0,market_maker=10,viewer=10,valuer=1"
DEFAULT_TRADERS = 50
DEFAULT_MARKET_MAKERS = 10
DEFAULT_VALUERS = 10
DEFAULT_INSTRUMENTS = 2
MAX_VALUE = 10_000.0  # a weight, or tasks per second per user
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_USERS = 500
MAX_DURATION_S = 600.0
MAX_SPAWN_RATE = 500.0  # users started per second
MAX_STEPS = 10  # steps of users in the mixed phase
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m)?\s*$")


def parse_duration(text: str) -> float:
    """``"60s"``, ``"2m"`` or ``"90"`` (seconds) as seconds; ``ValueError`` otherwise.

    >>> parse_duration("2m"), parse_duration("10s"), parse_duration("1.5")
    (120.0, 10.0, 1.5)
    """
    found = _DURATION.match(text)
    if found is None:
        raise ValueError(f"{text!r} is not a duration such as 60s or 2m")
    seconds = float(found.group(1)) * (60 if found.group(2) == "m" else 1)
    if not 0 < seconds <= MAX_DURATION_S:
        raise ValueError(f"the duration must be more than 0 and at most {MAX_DURATION_S:g} s")
    return seconds


def parse_by_role(text: str, what: str, base: dict[str, float] | None = None) -> dict[str, float]:
    """``"trader=6,viewer=2"`` as a value for every role: those named, the others from
    ``base`` (0 without one). ``ValueError`` names what is wrong."""
    values = dict(base) if base is not None else dict.fromkeys(ROLES, 0.0)
    for part in filter(None, (p.strip() for p in text.split(","))):
        role, equals, number = part.partition("=")
        role = role.strip()
        if not equals or role not in values:
            raise ValueError(f"{what}: {part!r} is not ROLE=NUMBER with ROLE one of {ROLES}")
        try:
            values[role] = float(number)
        except ValueError:
            raise ValueError(f"{what}: {number.strip()!r} is not a number") from None
        if not 0 <= values[role] <= MAX_VALUE:
            raise ValueError(f"{what}: {role} must be in 0..{MAX_VALUE:g}")
    return values


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """The mix of users (weights by role), their rates (tasks/s per user, 0: no pause), and
    how many participants of each role setup makes (users beyond that share them)."""

    mix: dict[str, float]
    rates: dict[str, float]
    traders: int = DEFAULT_TRADERS
    market_makers: int = DEFAULT_MARKET_MAKERS
    valuers: int = DEFAULT_VALUERS
    instruments: int = DEFAULT_INSTRUMENTS

    @classmethod
    def parse(cls, mix: str = DEFAULT_MIX, rates: str = "", **counts: int) -> LoadPlan:
        defaults = parse_by_role(DEFAULT_RATES, "rates")
        plan = cls(parse_by_role(mix, "mix"), parse_by_role(rates, "rates", defaults), **counts)
        if not any(plan.mix.values()):
            raise ValueError("mix: at least one role needs a positive weight")
        return plan


def check_loopback(host: str) -> None:
    """Refuse a target that is not on this machine: load is only ever sent to loopback."""
    hostname = urlsplit(host).hostname
    if hostname not in LOOPBACK_HOSTS:
        raise ValueError(f"the load-test target must be on 127.0.0.1, not {host!r}")
