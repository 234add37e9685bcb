"""Loan facilities as plain values: what ``dataex collateral report`` prints and the
simulation report charts.

:func:`collateral_report` reads an exchange's collateral desk (after a replay of its journal,
or at the end of a simulation) and returns JSON-ready dictionaries, one per facility: its
parties, status, debt, thresholds, pledges with their marks and haircuts, its LTV history
and its alerts. Units are stated once and kept: money as decimal strings in currency units
(``exchange.money.format_minor``, exact), LTV and haircuts as integer basis points (None
where a debt has no collateral value against it), times as ISO 8601 UTC text beside their
nanoseconds where a chart needs the number. :func:`ltv_chart` draws one facility's LTV
history against its thresholds as an inline SVG.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from exchange.facility import DAY_NS, Facility
from exchange.money import format_minor
from exchange.service import Exchange

__all__ = ["collateral_report", "facility_summary", "iso_time", "ltv_chart"]

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def iso_time(ts_ns: int | None) -> str | None:
    """``ts_ns`` as ISO 8601 UTC text to the second; None stays None.

    >>> iso_time(86_400 * 10**9 + 1)
    '1970-01-02T00:00:00Z'
    """
    if ts_ns is None:
        return None
    moment = _EPOCH + dt.timedelta(seconds=ts_ns // 1_000_000_000)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def collateral_report(exchange: Exchange, as_of_ns: int | None = None) -> dict[str, Any]:
    """Every facility of ``exchange``, in id order; ``as_of_ns`` is the time the state is
    from (the last command replayed), reported as given."""
    desk = exchange.collateral
    return {
        "as_of": iso_time(as_of_ns),
        "money": "decimal strings in currency units",
        "ltv": "integer basis points (10000 = 100%); null: a debt with no collateral value",
        "facilities": [facility_summary(exchange, f) for _, f in sorted(desk.facilities.items())],
    }


def facility_summary(exchange: Exchange, f: Facility) -> dict[str, Any]:
    """One facility as plain values; see the module docstring for the units."""
    desk = exchange.collateral
    pledges = []
    for pledge in f.pledges.values():
        valuation = desk.valuations.get(pledge.symbol)
        pledges.append({
            "pledge_id": pledge.pledge_id,
            "symbol": pledge.symbol,
            "units": pledge.units,
            "at_auction_units": pledge.at_auction_units,
            "expires": iso_time(pledge.expires_ns),  # None: the provider's unsold licences
            "price": format_minor(desk.price_of(pledge.symbol)),
            "haircut_bp": pledge.haircut_bp,
            "value": format_minor(pledge.value_minor),
            "valuation": None if valuation is None else {
                "value": format_minor(valuation.value_minor),
                "low": format_minor(valuation.low_minor),
                "high": format_minor(valuation.high_minor),
                "comparables": valuation.comparables,
                "method": valuation.method,
                "time": iso_time(valuation.ts_ns),
            },
        })  # fmt: skip
    return {
        "facility_id": f.facility_id,
        "lender": f.lender,
        "borrower": f.borrower,
        "status": str(f.status),
        "limit": format_minor(f.limit_minor),
        "drawn": format_minor(f.drawn_minor),
        "interest": format_minor(f.interest_minor),
        "debt": format_minor(f.debt_minor),
        "repaid": format_minor(f.repaid_minor),
        "margin": format_minor(f.margin_minor),
        "collateral_value": format_minor(f.value_minor),
        "ltv_bp": f.ltv_bp,
        "initial_ltv_bp": f.initial_ltv_bp,
        "margin_call_ltv_bp": f.margin_call_ltv_bp,
        "liquidation_ltv_bp": f.liquidation_ltv_bp,
        "rate_bp": f.rate_bp,
        "created": iso_time(f.created_ns),
        "maturity": iso_time(f.maturity_ns),
        "call_deadline": iso_time(f.call_deadline_ns),
        "haircut_policy": f.policy.to_mapping(),
        "pledges": pledges,
        "marks": [
            {
                "time": iso_time(m.ts_ns),
                "ts_ns": m.ts_ns,
                "debt": format_minor(m.debt_minor),
                "collateral_value": format_minor(m.collateral_minor),
                "ltv_bp": m.ltv_bp,
                "cause": m.cause,
            }
            for m in f.marks
        ],
        "alerts": [
            {
                "alert_id": a.alert_id,
                "reason": str(a.reason),
                "time": iso_time(a.ts_ns),
                "ts_ns": a.ts_ns,
                "ltv_bp": a.ltv_bp,
                "message": a.message,
                "deadline": iso_time(a.deadline_ns),
                "symbol": a.symbol,
            }
            for a in f.alerts
        ],
    }


def ltv_chart(summary: dict[str, Any]) -> str:
    """The facility's LTV (percent) over time (days since its first mark) against its three
    thresholds, as one inline ``<svg>``. A mark with no collateral value breaks the line."""
    from exchange.simulation.svg import line_chart  # charts are for pages, not for tables

    marks = summary["marks"]
    start = marks[0]["ts_ns"] if marks else 0
    days = [(m["ts_ns"] - start) / DAY_NS for m in marks]
    ltv = [None if m["ltv_bp"] is None else m["ltv_bp"] / 100 for m in marks]
    span = [days[0], days[-1]] if days else []
    series: list[tuple[str, list[float], list[float | None]]] = [("LTV %", days, ltv)]
    for name, key in (("initial", "initial_ltv_bp"), ("margin call", "margin_call_ltv_bp"),
                      ("liquidation", "liquidation_ltv_bp")):  # fmt: skip
        series.append((f"{name} {summary[key] / 100:g}%", span, [summary[key] / 100] * len(span)))
    return line_chart(
        series,
        title=f"Facility {summary['facility_id']}: {summary['lender']} to {summary['borrower']}",
        x_label="days since the first mark",
        y_label="LTV (%)",
        dashed=(False, True, True, True),
    )
