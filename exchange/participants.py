"""Participants, their roles, and their API keys.

An API key is ``<key_id>.<secret>``: the id finds the participant, the secret is checked
against a stored SHA-256 digest with a constant-time comparison. The key is shown once, when
it is created; only the digest is journalled and kept. Secrets carry 256 random bits, so a
plain SHA-256 (no slow password hash) is what protects them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "TRADING_ROLES",
    "ApiKey",
    "Participant",
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
