"""Negotiated trades: a trade two parties agreed off the exchange, reported by one and
confirmed by the other, then settled as any trade is (``exchange.confidential``).

The report names the reporter's side, the counterparty, the price and the quantity. Only
the two parties (and the regulator) see it. It waits for the counterparty's confirmation for
at most :data:`CONFIRMATION_WINDOW_NS`; after that it has lapsed and settles nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from matching import Side

__all__ = ["CONFIRMATION_WINDOW_NS", "ReportStatus", "TradeReport"]

# A day: a report is the record of an agreement already made, so its counterparty confirms
# it promptly; one left longer is more likely a mistake than a trade.
CONFIRMATION_WINDOW_NS: Final = 86_400 * 1_000_000_000


class ReportStatus(StrEnum):
    PENDING = "pending"
    LAPSED = "lapsed"  # pending past its confirmation window: a reading of PENDING in time
    CONFIRMED = "confirmed"


@dataclass(slots=True)
class TradeReport:
    report_id: int
    reporter: str
    counterparty: str
    symbol: str
    reporter_side: Side
    price_minor: int
    quantity_units: int
    created_ns: int
    confirm_by_ns: int
    status: ReportStatus = ReportStatus.PENDING
    trade_id: int | None = None

    def status_at(self, now_ns: int) -> ReportStatus:
        if self.status is ReportStatus.PENDING and now_ns >= self.confirm_by_ns:
            return ReportStatus.LAPSED
        return self.status

    @property
    def buyer(self) -> str:
        return self.reporter if self.reporter_side is Side.BUY else self.counterparty

    @property
    def seller(self) -> str:
        return self.counterparty if self.reporter_side is Side.BUY else self.reporter
