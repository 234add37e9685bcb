"""Participants, their roles, and their API keys.

An API key is ``<key_id>.<secret>``: the id finds the participant, the secret is checked
against a stored SHA-256 digest with a constant-time comparison. The key is shown once, when
it is created; only the digest is journalled and kept. Secrets carry 256 random bits, so a
plain SHA-256 (no slow password hash) is what protects them.

Operators (an admin, or the console) manage them, each action a journalled command:

- **disable** a participant: it can no longer authenticate (its key answers 403) nor act (a
  command already on its way is refused), and its open orders are cancelled in the same
  command, as a venue cancels a suspended member's orders: resting orders of a member who
  cannot manage them would trade against others with nobody answering for them. Its cash,
  licences and history stay. **Enable** lets it back in; cancelled orders stay cancelled.
  Either, asked of a participant already in that state, changes and journals nothing.
- **rotate** a key: a new key is issued and the old one stops working at once, with no
  grace period: a rotation is also how a leaked key is replaced, and a grace would leave the
  leak open. A client rolls over by rotating, then restarting with the new key. A lost answer
  to a rotation is repaired by rotating again: nobody saw the key it issued.
- **revoke** a key: it stops working and the participant has no key until a rotation issues
  one; its orders are left alone (the kill switch cancels them).

An admin may neither disable itself nor revoke its own key: either would lock it out.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from exchange import commands as cmd
from exchange.errors import ExchangeError, Reason
from exchange.validation import MAX_NAME, enum_member, invalid, text

__all__ = [
    "MANAGING_COMMANDS",
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
    LENDER = "lender"  # offers loan facilities against pledged licences


# Roles that may place orders.
TRADING_ROLES = frozenset({Role.PROVIDER, Role.BUYER, Role.MARKET_MAKER})
# The exchange operator: the console (CLI bootstrap, the demo) and the exchange's own timer.
OPERATOR = "operator"
_PARTICIPANT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_KEY_ID = re.compile(r"dxk_[0-9a-f]{16}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(slots=True)
class Participant:
    participant_id: str
    name: str
    roles: frozenset[Role]
    key_id: str | None  # None once revoked, until a rotation issues a new key
    secret_sha256: str
    created_ns: int
    disabled_ns: int | None = None  # when an operator disabled it; None while it is active

    @property
    def disabled(self) -> bool:
        return self.disabled_ns is not None

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
        """The active participant holding this key; None for a wrong, revoked or rotated key
        and for a disabled participant (:meth:`disabled_holder` tells which)."""
        participant = self.by_key.get(key_id)
        if participant is None or participant.disabled or not participant.secret_matches(secret):
            return None
        return participant

    def disabled_holder(self, key_id: str, secret: str) -> Participant | None:
        """The disabled participant holding this key, if that is why it does not
        authenticate: a caller holding a valid key may be told why it is turned away."""
        participant = self.by_key.get(key_id)
        if participant is None or not participant.disabled:
            return None
        return participant if participant.secret_matches(secret) else None

    def listed(
        self, *, after: str, limit: int, role: Role | None, disabled: bool | None
    ) -> list[Participant]:
        """Participants with an id above ``after`` matching the filters, by id (a page)."""
        page = sorted(
            (participant for participant_id, participant in self.by_id.items()
             if participant_id > after
             and (role is None or role in participant.roles)
             and (disabled is None or participant.disabled == disabled)),
            key=lambda participant: participant.participant_id,
        )[:limit]  # fmt: skip
        return [replace(participant) for participant in page]

    # -- operators' commands -----------------------------------------------------------------

    def manage(self, c: ManagingCommand, ts_ns: int) -> tuple[ManagingCommand | None, Participant]:
        """Apply an operator's command to a participant: the command to journal (None when
        it changes nothing) and the participant as it now is (a copy). An admin or the
        console may; refused with nothing changed otherwise."""
        admin = self.actor(c.actor, [Role.ADMIN])
        participant = self.target(c.participant_id)
        own = admin is not None and admin is participant
        if type(c) is cmd.DisableParticipant or type(c) is cmd.EnableParticipant:
            text(c.reason, "reason", MAX_NAME, required=False)
            disable = type(c) is cmd.DisableParticipant
            if disable and own:
                raise ExchangeError(Reason.AUTH_FORBIDDEN, "an admin cannot disable itself")
            if participant.disabled == disable:
                return None, replace(participant)
            participant.disabled_ns = ts_ns if disable else None
        elif type(c) is cmd.RotateApiKey:
            if not isinstance(c.key_id, str) or not _KEY_ID.fullmatch(c.key_id):
                raise invalid("an API key id is 'dxk_' and 16 hexadecimal digits")
            if not isinstance(c.secret_sha256, str) or not _SHA256.fullmatch(c.secret_sha256):
                raise invalid("a key's secret digest is 64 hexadecimal digits")
            if c.key_id in self.by_key:
                raise ExchangeError(Reason.VALIDATION_DUPLICATE, "API key id already in use")
            if participant.key_id is not None:
                del self.by_key[participant.key_id]
            participant.key_id, participant.secret_sha256 = c.key_id, c.secret_sha256
            self.by_key[c.key_id] = participant
        else:
            if participant.key_id is None or c.key_id != participant.key_id:
                raise ExchangeError(
                    Reason.VALIDATION_UNKNOWN_KEY,
                    f"{c.key_id!r} is not {participant.participant_id}'s key: it was revoked "
                    "or rotated already, or never was",
                )
            if own:
                raise ExchangeError(
                    Reason.AUTH_FORBIDDEN, "an admin cannot revoke its own key: rotate it instead"
                )
            del self.by_key[participant.key_id]
            participant.key_id, participant.secret_sha256 = None, ""
        return c, replace(participant)

    def target(self, participant_id: object) -> Participant:
        """The participant an operator's command names."""
        participant = self.by_id.get(participant_id) if isinstance(participant_id, str) else None
        if participant is None:
            raise ExchangeError(
                Reason.VALIDATION_UNKNOWN_PARTICIPANT, f"no participant {participant_id!r}"
            )
        return participant

    def check_invariants(self) -> None:
        """Every current key finds its participant, and only current keys are known."""
        for key_id, participant in self.by_key.items():
            assert participant.key_id == key_id, (key_id, participant)
            assert self.by_id[participant.participant_id] is participant, participant
        holding = sum(participant.key_id is not None for participant in self.by_id.values())
        assert holding == len(self.by_key), (holding, len(self.by_key))


ManagingCommand = (
    cmd.DisableParticipant | cmd.EnableParticipant | cmd.RotateApiKey | cmd.RevokeApiKey
)
# The operators' commands :meth:`Participants.manage` applies.
MANAGING_COMMANDS = (
    cmd.DisableParticipant, cmd.EnableParticipant, cmd.RotateApiKey, cmd.RevokeApiKey,
)  # fmt: skip
