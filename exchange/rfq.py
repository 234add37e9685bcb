"""Requests for quote: a buyer's request, the responders' quotes, and who may see which.

A request names an instrument and a quantity, the responders invited (or "every participant
able to sell", chosen by the exchange and never listed to the requester) and a deadline.
Each invited responder sees the request but not who asked, unless the requester discloses
itself, and quotes privately: a responder sees its own quote only. The requester sees every
quote and accepts one before the deadline; the trade then settles as any trade does
(``exchange.confidential``). A request past its deadline is expired: it takes no quote and
no acceptance, and like an unanswered one it leaves nothing in public data.

Times are the commands' own (``ts``): a request's state at a moment is a function of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

__all__ = [
    "MAX_QUOTES_PER_REQUEST",
    "MAX_REQUEST_DURATION_NS",
    "MAX_RESPONDERS",
    "QuoteRecord",
    "QuoteStatus",
    "RequestStatus",
    "RfqRecord",
]

# Limits: a request invites at most this many responders by name, lives at most a week, and
# takes at most this many quotes in all (a responder's newer quote replaces its older one).
MAX_RESPONDERS: Final = 50
MAX_REQUEST_DURATION_NS: Final = 7 * 86_400 * 1_000_000_000
MAX_QUOTES_PER_REQUEST: Final = 500


class RequestStatus(StrEnum):
    OPEN = "open"
    EXPIRED = "expired"  # open at its deadline: never stored, a reading of OPEN in time
    ACCEPTED = "accepted"
    CANCELLED = "cancelled"


class QuoteStatus(StrEnum):
    LIVE = "live"
    REPLACED = "replaced"  # by a newer quote of the same responder
    ACCEPTED = "accepted"
    NOT_SELECTED = "not_selected"  # the request closed with another quote, or none


@dataclass(slots=True)
class QuoteRecord:
    quote_id: int
    rfq_id: int
    responder: str
    price_minor: int
    created_ns: int
    status: QuoteStatus = QuoteStatus.LIVE


@dataclass(slots=True)
class RfqRecord:
    rfq_id: int
    requester: str
    symbol: str
    quantity_units: int
    # The responders invited by name, or, for an all-eligible request, those the exchange
    # found able to sell when the request arrived (shown to no one but the regulator).
    responders: list[str]
    all_eligible: bool
    deadline_ns: int
    disclose_requester: bool
    created_ns: int
    status: RequestStatus = RequestStatus.OPEN
    quote_ids: list[int] = field(default_factory=list)
    trade_id: int | None = None
    closed_ns: int | None = None

    def status_at(self, now_ns: int) -> RequestStatus:
        if self.status is RequestStatus.OPEN and now_ns >= self.deadline_ns:
            return RequestStatus.EXPIRED
        return self.status

    def concerns(self, participant: str) -> bool:
        return participant == self.requester or participant in self.responders
