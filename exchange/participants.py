"""Participants, their roles, and their API keys.

An API key is ``<key_id>.<secret>``: the id finds the participant, the secret is checked
against a stored SHA-256 digest with a constant-time comparison. The key is shown once, when
it is created; only the digest is journalled and kept. Secrets carry 256 random bits, so a
plain SHA-256 (no slow password hash) is what protects them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from exchange import commands as cmd
from exchange.errors import ExchangeError, Reason
from exchange.validation import MAX_NAME, enum_member, invalid, text

__all__ = [
    "OPERATOR",
    "TRADING_ROLES",
    "ApiKey",
    "Participant",
    "Participants",
    "Role",
    "new_api_key",
    "secret_digest",
]


class Role(StrEnum):
    PROVIDER = "provider"
    BUYER = "buyer"
    MARKET_MAKER = "market_maker"
    REVIEWER = "reviewer"
    REGULATOR = "regulator"
    ADMIN = "admin"


# Roles that may place orders.
TRADING_ROLES = frozenset({Role.PROVIDER, Role.BUYER, Role.MARKET_MAKER})
# The exchange operator: the console (CLI bootstrap, the demo) and the exchange's own timer.
OPERATOR = "operator"
_PARTICIPANT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


@dataclass(slots=True)
class Participant:
    participant_id: str
    name: str
    roles: frozenset[Role]
    key_id: str
    secret_sha256: str
    created_ns: int

    def has_any(self, roles: frozenset[Role]) -> bool:
        return not self.roles.isdisjoint(roles)

    def secret_matches(self, secret: str) -> bool:
        return hmac.compare_digest(secret_digest(secret), self.secret_sha256)


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    secret: str

    def __str__(self) -> str:
        return f"{self.key_id}.{self.secret}"

    @classmethod
    def parse(cls, text: str) -> ApiKey | None:
        key_id, dot, secret = text.partition(".")
        if not dot or not key_id or not secret or len(text) > 128:
            return None
        return cls(key_id, secret)


def new_api_key() -> ApiKey:
    return ApiKey(f"dxk_{secrets.token_hex(8)}", secrets.token_urlsafe(32))


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Participants:
    """Every participant, by id and by API key id."""

    def __init__(self) -> None:
        self.by_id: dict[str, Participant] = {}
        self.by_key: dict[str, Participant] = {}

    def actor(self, actor: str, roles: Iterable[Role]) -> Participant | None:
        """The acting participant if it holds one of ``roles``; None for the operator."""
        if actor == OPERATOR:
            return None
        participant = self.by_id.get(actor)
        wanted = frozenset(roles)
        if participant is None or not participant.has_any(wanted):
            names = ", ".join(sorted(wanted))
            raise ExchangeError(Reason.AUTH_FORBIDDEN, f"this needs one of the roles: {names}")
        return participant

    def create(self, c: cmd.CreateParticipant, ts_ns: int) -> Participant:
        """Add ``c``'s participant (the caller has checked that an admin asks)."""
        if not isinstance(c.participant_id, str) or not _PARTICIPANT_ID.fullmatch(c.participant_id):
            raise invalid(
                "participant id must be 1-32 lower-case letters, digits, '_' or '-', "
                "starting with a letter or digit"
            )
        if c.participant_id == OPERATOR or c.participant_id in self.by_id:
            raise ExchangeError(
                Reason.VALIDATION_DUPLICATE, f"participant {c.participant_id} already exists"
            )
        name = text(c.name, "name", MAX_NAME)
        if not c.roles:
            raise invalid("a participant needs at least one role")
        roles = frozenset(enum_member(Role, role, "role") for role in c.roles)
        if c.key_id in self.by_key:
            raise ExchangeError(Reason.VALIDATION_DUPLICATE, "API key id already in use")
        participant = Participant(
            c.participant_id, name, roles, c.key_id, c.secret_sha256, created_ns=ts_ns
        )
        self.by_id[c.participant_id] = participant
        self.by_key[c.key_id] = participant
        return participant

    def authenticate(self, key_id: str, secret: str) -> Participant | None:
        participant = self.by_key.get(key_id)
        if participant is None or not participant.secret_matches(secret):
            return None
        return participant
