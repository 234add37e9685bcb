"""What the exchange refuses, and why: one reason enum grouped by the stage that refused.

A refusal changes nothing and journals nothing. The API turns each reason into an HTTP
status (``exchange.api.errors``); the message says what is wrong in words a person can act on.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ExchangeError", "Reason"]


class Reason(StrEnum):
    # the request itself
    VALIDATION_INVALID = "VALIDATION_INVALID"
    VALIDATION_UNKNOWN_INSTRUMENT = "VALIDATION_UNKNOWN_INSTRUMENT"
    VALIDATION_UNKNOWN_PRODUCT = "VALIDATION_UNKNOWN_PRODUCT"
    VALIDATION_UNKNOWN_PARTICIPANT = "VALIDATION_UNKNOWN_PARTICIPANT"
    VALIDATION_UNKNOWN_ORDER = "VALIDATION_UNKNOWN_ORDER"
    VALIDATION_DUPLICATE = "VALIDATION_DUPLICATE"
    VALIDATION_IDEMPOTENCY_CONFLICT = "VALIDATION_IDEMPOTENCY_CONFLICT"
    VALIDATION_PHASE = "VALIDATION_PHASE"
    VALIDATION_HOUSEKEEPING_DUE = "VALIDATION_HOUSEKEEPING_DUE"
    # who may do it
    AUTH_FORBIDDEN = "AUTH_FORBIDDEN"
    # the compliance gate
    COMPLIANCE_NOT_APPROVED = "COMPLIANCE_NOT_APPROVED"
    COMPLIANCE_CORE_DATA = "COMPLIANCE_CORE_DATA"
    COMPLIANCE_NOT_DESENSITISED = "COMPLIANCE_NOT_DESENSITISED"
    COMPLIANCE_NO_LAWFUL_SOURCE = "COMPLIANCE_NO_LAWFUL_SOURCE"
    COMPLIANCE_REVIEW_STATE = "COMPLIANCE_REVIEW_STATE"
    COMPLIANCE_SUSPENDED = "COMPLIANCE_SUSPENDED"
    # pre-trade risk
    RISK_INSUFFICIENT_CASH = "RISK_INSUFFICIENT_CASH"
    RISK_INSUFFICIENT_LICENCES = "RISK_INSUFFICIENT_LICENCES"
    RISK_NOT_TRANSFERABLE = "RISK_NOT_TRANSFERABLE"
    RISK_OPEN_ORDER_LIMIT = "RISK_OPEN_ORDER_LIMIT"
    RISK_PROTECTION_PRICE_REQUIRED = "RISK_PROTECTION_PRICE_REQUIRED"
    RISK_SELF_TRADE = "RISK_SELF_TRADE"
    # the matching engine (its own RejectReason, passed through)
    MATCHING_REJECTED = "MATCHING_REJECTED"


class ExchangeError(Exception):
    """A request the exchange refuses. Nothing was changed or journalled."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"
