"""Exchange records to the API's public models (integers to decimal strings, ns to ISO)."""

from __future__ import annotations

from typing import Any

from exchange.catalogue import DataProduct, Instrument
from exchange.marketdata import TapeTrade
from exchange.money import MINOR_PER_UNIT, format_minor
from exchange.orders import Fill, OrderRecord
from exchange.participants import Participant
from exchange.service import ComplianceRecord
from matching import Phase

from .schemas import (
    ComplianceRecordPublic,
    FillPublic,
    InstrumentPublic,
    OrderPublic,
    ParticipantAccount,
    ParticipantPublic,
    ProductPublic,
    TradePublic,
    iso,
)

BASIS_POINTS = 10_000


def money(minor: int | None) -> str | None:
    return None if minor is None else format_minor(minor)


def participant_view(participant: Participant) -> ParticipantPublic:
    return ParticipantPublic(
        participant_id=participant.participant_id,
        name=participant.name,
        roles=sorted(participant.roles),
    )


def participant_account_view(participant: Participant) -> ParticipantAccount:
    return ParticipantAccount(
        participant_id=participant.participant_id,
        name=participant.name,
        roles=sorted(participant.roles),
        status="disabled" if participant.disabled else "active",
        key_id=participant.key_id,
        created_at=iso(participant.created_ns),
        disabled_at=iso(participant.disabled_ns),
    )


def product_view(product: DataProduct) -> ProductPublic:
    q = product.quality
    return ProductPublic(
        product_id=product.product_id,
        provider=product.provider,
        title=product.title,
        description=product.description,
        category=product.category,
        region=product.region,
        record_count=product.record_count,
        coverage_start=product.coverage_start,
        coverage_end=product.coverage_end,
        update_frequency=product.update_frequency,
        quality={
            "completeness": q.completeness_bp / BASIS_POINTS,
            "accuracy": q.accuracy_bp / BASIS_POINTS,
            "timeliness": q.timeliness_bp / BASIS_POINTS,
            "consistency": q.consistency_bp / BASIS_POINTS,
        },
        personal_information=product.personal_information,
        classification=product.classification,
        desensitised=product.desensitised,
        lawful_source_attestation=product.lawful_source_attestation,
        cost_basis=format_minor(product.cost_basis_minor),
        status=product.status,
        instruments=list(product.instruments),
        created_at=iso(product.created_ns),
    )


def compliance_view(record: ComplianceRecord) -> ComplianceRecordPublic:
    return ComplianceRecordPublic(
        seq=record.seq,
        time=iso(record.ts_ns),
        action=record.action,
        actor=record.actor,
        decision=record.decision,
        checks=record.checks,
        opinion=record.opinion,
        status_after=record.status_after,
    )


def instrument_view(instrument: Instrument, phase: Phase) -> InstrumentPublic:
    terms = instrument.terms
    return InstrumentPublic(
        symbol=instrument.symbol,
        product_id=instrument.product_id,
        provider=instrument.provider,
        exclusivity=terms.exclusivity,
        duration_months=terms.duration_months,
        scope=terms.scope,
        territory=terms.territory,
        transferable=terms.transferable,
        tick_size=format_minor(instrument.tick_size_minor),
        lot_size=instrument.lot_size_units,
        trading_mode=instrument.trading_mode,
        issuance_cap=instrument.issuance_cap_units,
        fee_rate_bp=instrument.fee_rate_bp,
        price_band_low=money(instrument.price_band_low_minor),
        price_band_high=money(instrument.price_band_high_minor),
        sealed_bid_pricing=instrument.sealed_bid_pricing,
        phase=phase,
        listed_at=iso(instrument.listed_ns),
    )


def order_view(order: OrderRecord) -> OrderPublic:
    filled = order.filled_units
    return OrderPublic(
        order_id=order.order_id,
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        type=order.order_type,
        price=money(order.price_minor),
        quantity=order.quantity_units,
        filled_quantity=filled,
        remaining_quantity=order.remaining_units,
        # Rounded down to the minor unit; the fills carry the exact prices.
        average_price=money(order.filled_notional_minor // filled) if filled else None,
        status=order.status,
        time_in_force=order.tif,
        expire_time=iso(order.expire_ns),
        post_only=order.post_only,
        cancel_reason=order.cancel_reason,
        created_at=iso(order.created_ns),
        updated_at=iso(order.updated_ns),
    )


def order_message(order: OrderRecord) -> dict[str, Any]:
    """``order_view(order).model_dump(mode="json")``, built as a plain dict: the order-entry
    session acknowledges every order with it, and has no use for a model validated only to be
    dumped again."""
    filled = order.filled_units
    return {
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "type": order.order_type.value,
        "price": money(order.price_minor),
        "quantity": order.quantity_units,
        "filled_quantity": filled,
        "remaining_quantity": order.quantity_units - filled - order.cancelled_units,
        "average_price": money(order.filled_notional_minor // filled) if filled else None,
        "status": order.status.value,
        "time_in_force": order.tif.value,
        "expire_time": iso(order.expire_ns),
        "post_only": order.post_only,
        "cancel_reason": order.cancel_reason,
        "created_at": iso(order.created_ns),
        "updated_at": iso(order.updated_ns),
    }


def fill_view(fill: Fill) -> FillPublic:
    return FillPublic(
        trade_id=fill.trade_id,
        order_id=fill.order_id,
        client_order_id=fill.client_order_id,
        symbol=fill.symbol,
        side=fill.side,
        price=format_minor(fill.price_minor),
        quantity=fill.quantity_units,
        fee=format_minor(fill.fee_minor),
        liquidity=fill.liquidity,
        time=iso(fill.ts_ns),
    )


def trade_view(trade: TapeTrade) -> TradePublic:
    return TradePublic(
        trade_id=trade.trade_id,
        symbol=trade.symbol,
        price=format_minor(trade.price_minor),
        quantity=trade.quantity_units,
        aggressor=trade.aggressor,
        time=iso(trade.ts_ns),
    )


# The amounts of a valuation report (exchange.pricing.report), in currency units, by section;
# the report's other numbers are factors, weights, shares and statistics, which stay numbers.
_REPORT_AMOUNTS = ("value", "low", "high", "market_value", "market_low", "market_high")
_SECTION_AMOUNTS = {
    "product": ("cost_basis",),
    "cost_approach": ("value", "low", "high", "cost_basis"),
    "income_approach": ("value", "present_values"),
    "reconciliation": ("concluded_value", "low", "high", "calibrated_cost_value",
                       "market_value", "cost_value", "income_value"),
}  # fmt: skip
_COMPARABLE_AMOUNTS = ("price", "adjusted_price", "contribution")


def amount(units: float | None) -> str | None:
    """A valuation's amount in currency units as a decimal string, rounded to the nearest
    minor unit (half to even: the valuation's floats carry no exact cents to keep)."""
    return None if units is None else format_minor(round(units * MINOR_PER_UNIT))


def _amounts(values: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if name in values:
            value = values[name]
            values[name] = [amount(v) for v in value] if isinstance(value, list) else amount(value)


def valuation_view(report: dict[str, Any]) -> dict[str, Any]:
    """A valuation report's plain values (``ValuationReport.to_dict``) with every amount a
    decimal string, as everywhere else in the API; changes ``report`` in place."""
    _amounts(report, _REPORT_AMOUNTS)
    for section, names in _SECTION_AMOUNTS.items():
        if report.get(section) is not None:
            _amounts(report[section], names)
    for row in (*report["comparables"], *report["own_trades"]["comparables"]):
        _amounts(row, _COMPARABLE_AMOUNTS)
    return report
