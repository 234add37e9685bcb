"""The run's report: ``summary.json`` (the summary of :func:`~exchange.simulation.metrics.
summarise`) and ``index.html``, one self-contained page with inline SVG charts.

Both are written under temporary names and moved into place when complete.
"""

from __future__ import annotations

from collections import Counter
from html import escape
from pathlib import Path
from typing import Any

import orjson

from exchange.facility_report import ltv_chart
from exchange.simulation.svg import bar_chart, line_chart, scatter_chart
from exchange.whole_files import replacing

__all__ = ["render_html", "summary_lines", "write_report"]

MAX_TABLE_ROWS = 40
APPROACH_NAMES = {
    "market": "market approach (own trades included)",
    "market_holdout": "market approach (own trades held out)",
    "cost": "cost approach",
    "naive": "naive category median",
}


def write_report(summary: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``index.html`` in ``directory`` (created if need be)."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path, html_path = directory / "summary.json", directory / "index.html"
    for path, data in (
        (json_path, orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)),
        (html_path, render_html(summary).encode()),
    ):
        with replacing(path) as file:
            file.write(data)
    return json_path, html_path


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The summary as a few lines of plain text, for the terminal."""
    refused = summary["refused"]
    refused_total = sum(refused.values())
    lines = [
        f"scenario {summary['scenario']} ({summary['source']}), seed {summary['seed']}, "
        f"{summary['days']} day(s), {summary['ticks']:,} ticks of {summary['tick_seconds']:g} s",
        f"participants {summary['participants']:,}, products {summary['products']:,}, "
        f"instruments listed {summary['instruments_listed']:,}"
        + (
            f" ({len(summary['not_listed'])} refused at the compliance gate)"
            if summary["not_listed"]
            else ""
        ),
        f"journal: {summary['journal_commands']:,} commands, {summary['orders']:,} orders; "
        + ", ".join(f"{verb} {count:,}" for verb, count in summary["commands_by_verb"].items()),
        f"refused: {refused_total:,} ({100 * summary['refused_share']:.2f}% of "
        f"{sum(summary['submitted_by_kind'].values()):,} submitted)"
        + ("" if not refused else ": " + ", ".join(f"{r} {n:,}" for r, n in refused.items())),
        f"trades {summary['trades']:,}, volume {summary['volume_units']:,} licences, "
        f"notional {summary['notional']:,.2f}",
    ]
    valuation = summary.get("valuation")
    if valuation and valuation["approaches"]:
        parts = []
        for name, stats in valuation["approaches"].items():
            if stats["n"]:
                fallback = f", {stats['fallbacks']} cost fallback" if stats["fallbacks"] else ""
                parts.append(f"{name} {stats['mdape_pct']:.1f}% (n={stats['n']}{fallback})")
        lines.append(f"valuation MdAPE vs true values on {valuation['as_of']}: " + "; ".join(parts))
    facts = summary["stylized_facts"]
    if facts["mean"]:
        mean = facts["mean"]
        lines.append(
            f"stylized facts ({facts['bar_seconds']:g} s bars, mean of "
            f"{len(facts['instruments'])} instruments): acf1(r) {_num(mean['acf1_returns'], 3)}, "
            f"excess kurtosis {_num(mean['excess_kurtosis'], 2)}, acf1(|r|) "
            f"{_num(mean['acf1_abs_returns'], 3)}"
        )
    for entry in summary["facilities"]:
        facility = entry["facility"]
        if facility is None:
            continue
        reasons = Counter(alert["reason"] for alert in entry["alerts"])
        sold = sum(outcome["sold_units"] for outcome in entry["liquidations"])
        lines.append(
            f"facility {facility['facility_id']} {entry['lender']} -> {entry['borrower']}: "
            f"{facility['status']}, debt {facility['debt']}, LTV {_ltv(facility['ltv_bp'])}; "
            f"margin calls {reasons['margin_call']}, cures {reasons['cured']}, auctions "
            f"{len(entry['liquidations'])} ({sold} units sold)"
        )
    if summary["ledger_verified"] is not None:
        conserved = not summary["conservation_problems"]
        lines.append(
            f"ledger verified: {'ok' if summary['ledger_verified'] else 'FAILED'}"
            + ("" if summary["ledger_verified"] else f" ({summary['ledger_problem']})")
            + f"; cash and licences conserved: {'ok' if conserved else 'NO'}"
            + ("" if conserved else f" ({'; '.join(summary['conservation_problems'][:3])})")
        )
    orders_per_s = summary["orders"] / summary["wall_s"] if summary["wall_s"] else 0.0
    lines.append(f"database {summary['database']}")
    lines.append(f"wall {summary['wall_s']:.2f} s ({orders_per_s:,.0f} orders/s)")
    lines.append(f"journal hash {summary['journal_hash']}")
    return lines


# ------------------------------------------------------------------ the page


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(summary: dict[str, Any]) -> str:
    """The report page: every chart inline, no external resource."""
    s = summary
    sections = [
        _overview(s),
        _activity(s),
        _book(s),
        _paths(s),
        _instruments(s),
        _valuation(s),
        _facts(s),
        _facilities(s),
        _refusals(s),
    ]
    title = f"Simulation {s['scenario']}, seed {s['seed']}"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px;color:#222}"
        "table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:13px}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}"
        "code{font-size:12px;word-break:break-all}svg{display:block;margin:0.5em 0 1em}"
        "</style></head><body>"
        f"<h1>{escape(title)}</h1><p>{escape(s['description'])}</p>"
        + "".join(sections)
        + "</body></html>"
    )


def _overview(s: dict[str, Any]) -> str:
    rows = [[escape(line)] for line in summary_lines(s)]
    return "<h2>Summary</h2>" + _table(["measure"], rows)


def _activity(s: dict[str, Any]) -> str:
    bins = s["bins"]
    return (
        "<h2>Trades and volume</h2>"
        + bar_chart(
            bins["labels"], bins["trades"], title=f"Trades per {bins['unit']}", y_label="trades"
        )
        + bar_chart(
            bins["labels"],
            bins["volume_units"],
            title=f"Volume per {bins['unit']} (licences)",
            y_label="licences",
        )
    )


def _book(s: dict[str, Any]) -> str:
    book = s["book"]
    return (
        "<h2>The book</h2><p>Mean relative spread of the instruments quoted on both sides, and "
        "the units resting within five levels a side summed over instruments, sampled every "
        f"{s['sample_every_ticks']} ticks.</p>"
        + line_chart(
            [("spread", book["ticks"], book["mean_spread_bp"])],
            title="Mean bid-ask spread",
            x_label="tick",
            y_label="basis points of mid",
        )
        + line_chart(
            [("depth", book["ticks"], book["depth_units"])],
            title="Depth (five levels a side)",
            x_label="tick",
            y_label="licences",
        )
    )


def _paths(s: dict[str, Any]) -> str:
    if not s["price_paths"]:
        return "<h2>Price paths</h2><p>No trades.</p>"
    charts = []
    for path in s["price_paths"]:
        charts.append(
            line_chart(
                [
                    ("last price", path["ticks"], path["last_price"]),
                    ("true value", path["ticks"], path["true_value"]),
                ],
                dashed=[False, True],
                title=f"{path['symbol']}: last trade price and true value",
                x_label="tick",
                y_label="per licence",
            )
        )
    return "<h2>Price paths</h2>" + "".join(charts)


def _instruments(s: dict[str, Any]) -> str:
    rows = sorted(s["instruments"], key=lambda r: -r["trades"])[:MAX_TABLE_ROWS]
    table = _table(
        [
            "instrument",
            "mode",
            "trades",
            "volume",
            "VWAP",
            "last 20 VWAP",
            "true value",
            "price / true",
            "spread bp",
            "depth",
            "two-sided",
        ],
        [
            [
                escape(r["symbol"]),
                escape(r["trading_mode"]),
                _num(r["trades"]),
                _num(r["volume_units"]),
                _num(r["vwap"]),
                _num(r["recent_vwap"]),
                _num(r["true_value"]),
                _num(r["price_to_true"], 3),
                _num(r["mean_spread_bp"], 1),
                _num(r["mean_depth_units"], 1),
                f"{100 * r['two_sided_share']:.0f}%",
            ]
            for r in rows
        ],
    )
    more = len(s["instruments"]) - len(rows)
    note = f"<p>… and {more} more (summary.json has them all).</p>" if more > 0 else ""
    return "<h2>Instruments</h2>" + table + note


def _valuation(s: dict[str, Any]) -> str:
    valuation = s.get("valuation")
    if not valuation or not valuation["rows"]:
        return "<h2>Valuation accuracy</h2><p>Not computed.</p>"
    header = ["approach", "n", "MdAPE %", "within 20%", "median ratio", "cost fallbacks"]

    def rows_of(stats: dict[str, Any]) -> list[list[str]]:
        return [
            [
                escape(APPROACH_NAMES[name]),
                _num(x["n"]),
                _num(x["mdape_pct"], 1),
                _num(x["within_20_pct"], 1),
                _num(x["median_ratio"], 3),
                _num(x["fallbacks"]),
            ]
            for name, x in stats.items()
        ]

    parts = [
        f"<h2>Valuation accuracy</h2><p>Every listed instrument valued on {valuation['as_of']} "
        "from the run's own trades and compared with its true value. The market approach "
        "falls back to the cost approach with fewer than three comparables (counted).</p>",
        _table(header, rows_of(valuation["approaches"])),
    ]
    for label, stats in valuation["by_liquidity"].items():
        parts.append(f"<h3>Instruments with {escape(label)}</h3>" + _table(header, rows_of(stats)))
    points = [
        (
            APPROACH_NAMES[name],
            [(row["true_value"], row[name]) for row in valuation["rows"] if row[name] is not None],
        )
        for name in ("market_holdout", "cost", "naive", "market")
    ]
    parts.append(
        scatter_chart(
            points,
            title="Estimates against true values (log scales)",
            x_label="true value",
            y_label="estimate",
        )
    )
    return "".join(parts)


def _facts(s: dict[str, Any]) -> str:
    facts = s["stylized_facts"]
    if not facts["instruments"]:
        return ""
    rows = [
        [
            escape(r["symbol"]),
            _num(r["returns"]),
            _num(r["return_sd"], 5),
            _num(r["acf1_returns"], 3),
            _num(r["excess_kurtosis"], 2),
            _num(r["acf1_abs_returns"], 3),
        ]
        for r in facts["instruments"]
    ]
    mean = facts["mean"]
    rows.append(
        [
            "<b>mean</b>",
            "",
            _num(mean["return_sd"], 5),
            _num(mean["acf1_returns"], 3),
            _num(mean["excess_kurtosis"], 2),
            _num(mean["acf1_abs_returns"], 3),
        ]
    )
    lags = [str(k) for k in range(1, len(facts["acf_abs_returns"]) + 1)]
    return (
        f"<h2>Stylized facts</h2><p>Log returns of the last trade price over "
        f"{facts['bar_seconds']:g}-second bars, after the first {facts['burn_in_ticks']} ticks "
        "(the burn-in). In real markets, returns are nearly "
        "uncorrelated at lag 1 (slightly negative at short horizons, from bid-ask bounce), "
        "fat-tailed (excess kurtosis well above 0), and their absolute values stay correlated "
        "for many lags (volatility clustering).</p>"
        + _table(["instrument", "returns", "sd", "acf1(r)", "excess kurtosis", "acf1(|r|)"], rows)
        + bar_chart(
            lags,
            facts["acf_abs_returns"],
            title="Autocorrelation of absolute returns by lag (mean of instruments)",
            y_label="autocorrelation",
        )
    )


def _ltv(ltv_bp: int | None) -> str:
    return "n/a" if ltv_bp is None else f"{ltv_bp / 100:.2f}%"


def _facilities(s: dict[str, Any]) -> str:
    """Each facility: its LTV against the thresholds, its daily LTV beside the LTV against
    the true values, its alerts and its liquidations against the true values."""
    parts = []
    for entry in s["facilities"]:
        facility = entry["facility"]
        if facility is None:
            continue
        days = [point["day"] for point in entry["path"]]
        parts.append(
            f"<h3>Facility {facility['facility_id']}: {escape(entry['lender'])} to "
            f"{escape(entry['borrower'])} ({escape(facility['status'])})</h3>"
            + ltv_chart(facility)
            + line_chart(
                [
                    ("LTV marked by the exchange", days,
                     [None if p["ltv_bp"] is None else p["ltv_bp"] / 100 for p in entry["path"]]),
                    ("LTV against true values", days,
                     [None if p["true_ltv_bp"] is None else p["true_ltv_bp"] / 100
                      for p in entry["path"]]),
                ],
                dashed=[False, True],
                title="End-of-day LTV: the exchange's haircut marks and the truth (no haircut)",
                x_label="day",
                y_label="LTV (%)",
            )
        )  # fmt: skip
        alerts = [
            [_num(a["day"]), escape(a["reason"]), _ltv(a["ltv_bp"]), _ltv(a["true_ltv_bp"]),
             escape(a["message"])]
            for a in entry["alerts"]
        ]  # fmt: skip
        if alerts:
            headers = ["day", "alert", "LTV", "LTV at true values", "message"]
            parts.append(_table(headers, alerts[-MAX_TABLE_ROWS:]))
        outcomes = [
            [_num(o["attempt"]), _num(o["day"]), _num(o["offered_units"]), _num(o["sold_units"]),
             _num(o["proceeds_minor"] / 100),
             _num(o["true_value_sold_minor"] / 100),
             ", ".join(f"{escape(k)} {v / 100:,.2f}" for k, v in o["reserve_minor"].items()),
             ", ".join(f"{escape(k)} {v / 100:,.2f}" for k, v in o["true_unit_minor"].items())]
            for o in entry["liquidations"]
        ]  # fmt: skip
        if outcomes:
            headers = ["auction", "day", "units offered", "units sold", "proceeds",
                       "true value of units sold", "reserve per unit", "true value per unit"]
            parts.append(_table(headers, outcomes))
    if not parts:
        return ""
    return "<h2>Loan facilities: LTV, alerts, liquidations</h2>" + "".join(parts)


def _refusals(s: dict[str, Any]) -> str:
    rows = [
        [escape(kind), escape(reason), _num(count)]
        for kind, reasons in s["refused_by_kind"].items()
        for reason, count in reasons.items()
    ]
    submitted = [[escape(kind), _num(n)] for kind, n in s["submitted_by_kind"].items()]
    return (
        "<h2>Commands submitted and refused</h2>"
        + _table(["agent kind", "submitted"], submitted)
        + (_table(["agent kind", "reason", "refused"], rows) if rows else "<p>None refused.</p>")
        + f"<p>Journal hash <code>{escape(s['journal_hash'])}</code></p>"
    )
