"""Mass quote: a market maker replaces its quotes on one instrument in one command.

A participant's quotes on an instrument are its open orders there. :func:`replace_quotes`
cancels all of them and enters the new ones, each a post-only GTC limit order, all or none:
it checks every quote first, against the book and the balances as they will be once the old
orders are cancelled, and raises :class:`ExchangeError` having changed nothing if any fails.
Because every quote is post-only and the bids are all below the asks, nothing trades, so the
checks made before the change are exactly the ones that hold after it.

Quotes are for continuous trading only: in a call phase post-only orders are refused, and a
quote there would be an auction order whose self-cross rules differ.

Each quote has the participant's own ``client_order_id``, unused before: the quotes are then
ordinary orders (listed, looked up, cancelled or amended one by one, reported in fills). A
retry of a mass quote whose quotes are all already placed, field for field, answers the
quotes as first placed and journals nothing; a mass quote some of whose ids were used for
other orders is a 409 (``VALIDATION_IDEMPOTENCY_CONFLICT``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from exchange import commands as cmd
from exchange.catalogue import ProductStatus
from exchange.errors import ExchangeError, Reason
from exchange.money import format_minor
from exchange.orders import OrderRecord
from exchange.participants import TRADING_ROLES
from exchange.validation import (
    MAX_CLIENT_ORDER_ID,
    MAX_OPEN_ORDERS_PER_PARTICIPANT,
    MAX_QUANTITY_UNITS,
    enum_member,
    integer,
    invalid,
    text,
)
from matching import CancelOrder as EngineCancelOrder
from matching import OrderType, Phase, SelfTradePrevention, Side, TimeInForce
from matching import SubmitOrder as EngineSubmitOrder

if TYPE_CHECKING:
    from exchange.service import Exchange, Outcome

__all__ = ["MAX_QUOTES_PER_SIDE", "QUOTE_FIELDS", "QuoteResult", "replace_quotes"]

# A market maker quotes a few levels a side; the bound keeps one command's work (and its
# journal record) small.
MAX_QUOTES_PER_SIDE: Final = 10
QUOTE_FIELDS: Final = frozenset({"client_order_id", "side", "price_minor", "quantity_units"})
# Quotes never trade on arrival, so their self-trade prevention never acts; it is recorded as
# an order submitted over REST would have it by default.
_QUOTE_STP: Final = SelfTradePrevention.CANCEL_NEWEST


@dataclass(frozen=True, slots=True)
class QuoteResult:
    """What a mass quote did: the orders it cancelled and the quotes it placed, each as it
    stood once the command was applied."""

    cancelled: list[OrderRecord]
    placed: list[OrderRecord]


@dataclass(frozen=True, slots=True)
class _Quote:
    client_order_id: str
    side: Side
    price_minor: int
    quantity_units: int


def _quotes(raw: Any) -> list[_Quote]:
    """The quotes of a command, checked field by field."""
    if type(raw) is not list:
        raise invalid("quotes must be a list")
    quotes: list[_Quote] = []
    for index, item in enumerate(raw):
        if type(item) is not dict or item.keys() != QUOTE_FIELDS:
            raise invalid(f"quotes[{index}] must have exactly the fields "
                          f"{', '.join(sorted(QUOTE_FIELDS))}")  # fmt: skip
        quotes.append(_Quote(
            text(item["client_order_id"], f"quotes[{index}].client_order_id",
                 MAX_CLIENT_ORDER_ID),
            enum_member(Side, item["side"], f"quotes[{index}].side"),
            integer(item["price_minor"], f"quotes[{index}].price", 1, MAX_QUANTITY_UNITS),
            integer(item["quantity_units"], f"quotes[{index}].quantity", 1, MAX_QUANTITY_UNITS),
        ))  # fmt: skip
    for side in Side:
        if sum(quote.side is side for quote in quotes) > MAX_QUOTES_PER_SIDE:
            raise invalid(f"at most {MAX_QUOTES_PER_SIDE} quotes a side")
    if len({quote.client_order_id for quote in quotes}) != len(quotes):
        raise invalid("each quote needs a client_order_id of its own")
    bids = [quote.price_minor for quote in quotes if quote.side is Side.BUY]
    asks = [quote.price_minor for quote in quotes if quote.side is Side.SELL]
    if bids and asks and max(bids) >= min(asks):
        raise invalid(f"the quotes cross each other: bid {format_minor(max(bids))} is not "
                      f"below ask {format_minor(min(asks))}")  # fmt: skip
    return quotes


def _as_submission(c: cmd.MassQuote, quote: _Quote) -> cmd.SubmitOrder:
    """The order submission a quote amounts to, as the idempotency record keeps it: a retry
    of either under the same id must match it."""
    return cmd.SubmitOrder(
        c.actor, quote.client_order_id, 0, c.symbol, quote.side.value, OrderType.LIMIT.value,
        quote.price_minor, quote.quantity_units, TimeInForce.GTC.value, None, True,
        _QUOTE_STP.value,
    )  # fmt: skip


def _engine_order(
    c: cmd.MassQuote, seq: int, ts: int, actor: str, order_id: int, quote: _Quote,
    *, post_only: bool,
) -> EngineSubmitOrder:
    return EngineSubmitOrder(
        seq, ts, order_id, actor, c.symbol, quote.side, quote.quantity_units, quote.price_minor,
        OrderType.LIMIT, TimeInForce.GTC, None, post_only, _QUOTE_STP,
    )  # fmt: skip


def _would_take(
    exchange: Exchange, symbol: str, quote: _Quote, replaced: dict[tuple[Side, int], int]
) -> bool:
    """Whether ``quote`` would trade on arrival once the ``replaced`` units (by side and
    price) have left the book: the engine's post-only check, without the old quotes."""
    bids, asks = exchange.engine.depth(symbol, len(replaced) + 1)
    opposite, side = (asks, Side.SELL) if quote.side is Side.BUY else (bids, Side.BUY)
    buying = quote.side is Side.BUY
    for price, total in opposite:  # best first
        if (price > quote.price_minor) if buying else (price < quote.price_minor):
            return False
        if total > replaced.get((side, price), 0):
            return True
    return False


def replace_quotes(
    exchange: Exchange, c: cmd.MassQuote, seq: int, ts: int, outcome: Outcome
) -> tuple[cmd.MassQuote | None, QuoteResult]:
    """Apply ``c`` to ``exchange`` (its events and entries go to ``outcome``): the command as
    journalled (None: nothing to journal) and what it did."""
    from exchange.service import _refuse  # the engine's reasons in words, one place

    participant = exchange.participants.actor(c.actor, TRADING_ROLES)
    if participant is None:
        raise ExchangeError(Reason.AUTH_FORBIDDEN, "the operator does not trade")
    actor = participant.participant_id
    instrument = exchange.instruments.get(c.symbol) if type(c.symbol) is str else None
    if instrument is None:
        raise ExchangeError(Reason.VALIDATION_UNKNOWN_INSTRUMENT, f"no instrument {c.symbol!r}")
    quotes = _quotes(c.quotes)
    if type(c.order_ids) is not list:
        raise invalid("order_ids must be a list")
    submissions = [_as_submission(c, quote) for quote in quotes]
    previous = [exchange.client_orders.get((actor, quote.client_order_id)) for quote in quotes]
    used = [
        quote.client_order_id
        for quote, before, submission in zip(quotes, previous, submissions, strict=True)
        if before is not None and not cmd.same_submission(before[0], submission)
    ]  # fmt: skip
    if quotes and not used and all(previous):  # a retry
        return None, QuoteResult([], [before[1] for before in previous])  # type: ignore[index]
    used = used or [q.client_order_id for q, p in zip(quotes, previous, strict=True) if p]
    if used:
        raise ExchangeError(Reason.VALIDATION_IDEMPOTENCY_CONFLICT,
                            f"client_order_id {used[0]} was used for another order")  # fmt: skip
    if exchange.compliance.products[instrument.product_id].status is ProductStatus.SUSPENDED:
        raise ExchangeError(Reason.COMPLIANCE_SUSPENDED, f"{c.symbol}'s product is suspended")
    phase = exchange.engine.phase(c.symbol)
    if phase is not Phase.CONTINUOUS:
        raise ExchangeError(Reason.VALIDATION_PHASE,
                            f"{c.symbol} is {phase}: quotes need continuous trading")  # fmt: skip

    # The orders replaced, and what they leave free: the checks below see the book and the
    # balances as they will be once these are cancelled.
    replaced = [
        order for order_id in exchange.orders_by_participant.get(actor, ())
        if (order := exchange.orders[order_id]).is_open and order.symbol == c.symbol
    ]  # fmt: skip
    if not replaced and not quotes:
        return None, QuoteResult([], [])
    replaced_units: defaultdict[tuple[Side, int], int] = defaultdict(int)
    cash_freed = 0
    licences_freed: defaultdict[str, int] = defaultdict(int)
    for order in replaced:
        # Continuous books hold no market orders: every open order has its price.
        assert order.price_minor is not None, order
        replaced_units[(order.side, order.price_minor)] += order.remaining_units
        if order.side is Side.BUY:
            cash_freed += order.held_minor
        else:
            licences_freed[order.licence_account] += order.remaining_units  # type: ignore[index]
    open_after = exchange.open_orders[actor] - len(replaced) + len(quotes)
    if open_after > MAX_OPEN_ORDERS_PER_PARTICIPANT:
        raise ExchangeError(Reason.RISK_OPEN_ORDER_LIMIT,
                            f"at most {MAX_OPEN_ORDERS_PER_PARTICIPANT} open orders per "
                            "participant")  # fmt: skip
    first_id = exchange.next_order_id
    order_ids = list(range(first_id, first_id + len(quotes)))
    if c.order_ids and c.order_ids != order_ids:
        raise AssertionError(f"journal assigns orders {c.order_ids}, expected {order_ids}")
    new_orders = [_engine_order(c, seq, ts, actor, order_id, quote, post_only=True)
                  for order_id, quote in zip(order_ids, quotes, strict=True)]  # fmt: skip
    for order_id, quote in zip(order_ids, quotes, strict=True):
        # Every check of the engine's but post-only's, which must not see the old quotes.
        check = _engine_order(c, seq, ts, actor, order_id, quote, post_only=False)
        _refuse(exchange.engine.check(check), instrument, quote.price_minor,
                quote.quantity_units)  # fmt: skip
        if _would_take(exchange, c.symbol, quote, replaced_units):
            raise ExchangeError(Reason.MATCHING_POST_ONLY_WOULD_TAKE,
                                f"the {quote.side} quote at {format_minor(quote.price_minor)} "
                                "would trade on arrival: quotes only rest")  # fmt: skip
    risk = exchange.risk
    cash_needed = sum(q.price_minor * q.quantity_units for q in quotes if q.side is Side.BUY)
    cash_free = risk.cash_available(actor) + cash_freed
    if cash_needed > cash_free:
        raise ExchangeError(Reason.RISK_INSUFFICIENT_CASH,
                            f"the bids need {format_minor(cash_needed)} of cash and "
                            f"{format_minor(cash_free)} is available")  # fmt: skip
    sources: list[tuple[str, int | None] | None] = []
    for quote in quotes:
        if quote.side is Side.BUY:
            sources.append(None)
            continue
        # The units the cancelled sells free, less those the quotes before took.
        account, expires = risk.sell_source(actor, instrument, quote.quantity_units, ts,
                                            licences_freed)  # fmt: skip
        licences_freed[account] -= quote.quantity_units
        sources.append((account, expires))

    # Every check passed: from here on the command is applied.
    journalled = c if c.order_ids else replace(c, order_ids=order_ids)
    for order in replaced:
        exchange._engine(EngineCancelOrder(seq, ts, order.order_id, actor), outcome, ts)
    placed: list[OrderRecord] = []
    for new_order, quote, source, submission in zip(new_orders, quotes, sources, submissions,
                                                     strict=True):  # fmt: skip
        record = OrderRecord(
            new_order.order_id, quote.client_order_id, actor, c.symbol, quote.side,
            OrderType.LIMIT, quote.price_minor, quote.quantity_units, TimeInForce.GTC, None,
            True, _QUOTE_STP, ts, ts,
        )  # fmt: skip
        if source is None:
            held = quote.price_minor * quote.quantity_units
            record.hold_price_minor, record.held_minor = quote.price_minor, held
            risk.cash_held[actor] += held
        else:
            record.licence_account, record.licence_expires_ns = source
            risk.licences_held[source[0]] += quote.quantity_units
        exchange.orders[new_order.order_id] = record
        exchange.orders_by_participant[actor].append(new_order.order_id)
        exchange.open_orders[actor] += 1
        exchange._engine(new_order, outcome, ts)
        assert exchange.engine.open_order(new_order.order_id) is not None, "a quote traded"
        placed.append(record.copy())
        exchange.client_orders[(actor, quote.client_order_id)] = (submission, placed[-1])
    exchange.next_order_id = first_id + len(quotes)
    cancelled = [exchange.orders[order.order_id].copy() for order in replaced]
    return journalled, QuoteResult(cancelled, placed)
