"""The engine's vocabulary: sides, order types, phases and the result codes.

Members are string enums so they serialise as their value (``"buy"``, ``"GTC"``) in files,
JSON and the database, and compare by identity in the hot path.
"""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(StrEnum):
    GTC = "GTC"  # good till cancelled
    DAY = "DAY"  # expires when the instrument closes
    IOC = "IOC"  # immediate or cancel: the unfilled remainder is cancelled
    FOK = "FOK"  # fill or kill: fills completely at once or not at all
    GTD = "GTD"  # good till date: expires at ``expire_ts``


class Phase(StrEnum):
    PRE_OPEN = "pre_open"  # orders rest, nothing matches
    AUCTION = "auction"  # call phase: orders rest until the uncross
    CONTINUOUS = "continuous"  # price-time matching on arrival
    HALTED = "halted"  # cancels only
    CLOSED = "closed"  # cancels only; DAY orders have expired


class TradingMode(StrEnum):
    CONTINUOUS = "continuous"  # opening auction, then continuous matching
    CALL_AUCTION = "call_auction"  # periodic call auctions only, for thin markets
    SEALED_BID = "sealed_bid"  # hidden bids, cleared once at the close (exclusive licences)


class SealedBidPricing(StrEnum):
    FIRST_PRICE = "first_price"  # the winner pays its own bid
    SECOND_PRICE = "second_price"  # the winner pays the highest losing bid (or the reserve)


class SelfTradePrevention(StrEnum):
    """What happens when an incoming order would trade with a resting order of its own owner.

    The incoming (aggressing) order's mode decides. Auctions do not apply it: an uncross is
    one price for all, and who meets whom there is an allocation, not a choice to trade.
    """

    NONE = "none"
    CANCEL_NEWEST = "cancel_newest"  # cancel the incoming order's remainder
    CANCEL_OLDEST = "cancel_oldest"  # cancel the resting order and go on matching
    CANCEL_BOTH = "cancel_both"


class CancelReason(StrEnum):
    USER = "user"
    IOC_REMAINDER = "ioc_remainder"  # also a market order's unfilled remainder
    FOK_UNFILLED = "fok_unfilled"
    SELF_TRADE = "self_trade"
    EXPIRED = "expired"  # GTD expiry, DAY orders at the close, losing sealed bids
    HALTED = "halted"


class RejectReason(StrEnum):
    """Why a command was refused; the prefix names the stage that refused it."""

    VALIDATION_UNKNOWN_INSTRUMENT = "VALIDATION_UNKNOWN_INSTRUMENT"
    VALIDATION_DUPLICATE_INSTRUMENT = "VALIDATION_DUPLICATE_INSTRUMENT"
    VALIDATION_INVALID_INSTRUMENT = "VALIDATION_INVALID_INSTRUMENT"
    VALIDATION_DUPLICATE_ORDER_ID = "VALIDATION_DUPLICATE_ORDER_ID"
    VALIDATION_QUANTITY_NOT_POSITIVE = "VALIDATION_QUANTITY_NOT_POSITIVE"
    VALIDATION_QUANTITY_NOT_LOT_MULTIPLE = "VALIDATION_QUANTITY_NOT_LOT_MULTIPLE"
    VALIDATION_QUANTITY_ABOVE_MAXIMUM = "VALIDATION_QUANTITY_ABOVE_MAXIMUM"
    VALIDATION_PRICE_REQUIRED = "VALIDATION_PRICE_REQUIRED"
    VALIDATION_PRICE_NOT_POSITIVE = "VALIDATION_PRICE_NOT_POSITIVE"
    VALIDATION_PRICE_OFF_TICK = "VALIDATION_PRICE_OFF_TICK"
    VALIDATION_PRICE_OUTSIDE_BAND = "VALIDATION_PRICE_OUTSIDE_BAND"
    VALIDATION_PROTECTION_PRICE_REQUIRED = "VALIDATION_PROTECTION_PRICE_REQUIRED"
    VALIDATION_EXPIRY_REQUIRED = "VALIDATION_EXPIRY_REQUIRED"
    VALIDATION_EXPIRY_WITHOUT_GTD = "VALIDATION_EXPIRY_WITHOUT_GTD"
    VALIDATION_EXPIRY_IN_PAST = "VALIDATION_EXPIRY_IN_PAST"
    VALIDATION_POST_ONLY_NEEDS_RESTING_LIMIT = "VALIDATION_POST_ONLY_NEEDS_RESTING_LIMIT"
    VALIDATION_AMEND_CHANGES_NOTHING = "VALIDATION_AMEND_CHANGES_NOTHING"
    VALIDATION_AMEND_PRICE_OF_MARKET_ORDER = "VALIDATION_AMEND_PRICE_OF_MARKET_ORDER"
    MATCHING_PHASE_REJECTS_ORDERS = "MATCHING_PHASE_REJECTS_ORDERS"
    MATCHING_ORDER_TYPE_NOT_ALLOWED = "MATCHING_ORDER_TYPE_NOT_ALLOWED"
    MATCHING_POST_ONLY_WOULD_TAKE = "MATCHING_POST_ONLY_WOULD_TAKE"
    MATCHING_UNKNOWN_ORDER = "MATCHING_UNKNOWN_ORDER"
    MATCHING_AMEND_NOT_ABOVE_FILLED = "MATCHING_AMEND_NOT_ABOVE_FILLED"
    MATCHING_UNCROSS_NOT_IN_PHASE = "MATCHING_UNCROSS_NOT_IN_PHASE"
    MATCHING_PHASE_NOT_IN_MODE = "MATCHING_PHASE_NOT_IN_MODE"
