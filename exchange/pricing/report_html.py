"""The valuation report as one self-contained HTML page: inline CSS, an inline SVG chart of
each comparable's raw and adjusted price against the value and its range, and the tables.
No script, no external resource, every text escaped."""

from __future__ import annotations

import math
from html import escape

from exchange.pricing.factors import FACTOR_NAMES
from exchange.pricing.report import ValuationReport

__all__ = ["render_report"]

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2430;
       margin: 2rem auto; max-width: 1200px; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.lead { color: #556; margin-top: 0; }
.summary { display: flex; gap: 2rem; flex-wrap: wrap; background: #f4f6fa; padding: 1rem;
           border-radius: 6px; }
.summary div span { display: block; color: #667; font-size: .8rem; text-transform: uppercase; }
.summary div b { font-size: 1.3rem; }
table { border-collapse: collapse; margin: .5rem 0; font-size: 12.5px; }
th, td { border-bottom: 1px solid #dde2ea; padding: .25rem .45rem; text-align: right;
         white-space: nowrap; }
th { background: #eef1f6; position: sticky; top: 0; }
td.text, th.text { text-align: left; }
tfoot td { font-weight: bold; border-top: 2px solid #99a; }
.flag { color: #b3261e; font-weight: bold; }
.flags { color: #b3261e; white-space: normal; text-align: left; min-width: 14rem; }
.scroll { overflow-x: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #334; }
li { margin-bottom: .3rem; }
"""


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _factor_cell(name: str, value: float, flags: tuple[str, ...]) -> str:
    flagged = any(flag.startswith(f"{name} factor") for flag in flags)
    css = ' class="flag"' if flagged else ""
    return f"<td{css}>{value:.3f}</td>"


def _chart(report: ValuationReport) -> str:
    """Each comparable's raw price (hollow) and adjusted price (filled, area ~ weight) on a
    log axis, with the value (red line) and its range (shaded)."""
    rows = report.comparables
    if not rows:
        return ""
    values = [report.low, report.high, report.value]
    for row in rows:
        values += [row.comparable.price, row.adjusted_price]
    low, high = min(values) / 1.15, max(values) * 1.15
    left, right, top, row_height = 190, 40, 40, 26
    width = 900
    height = top + row_height * len(rows) + 40
    span = math.log(high / low)

    def x(price: float) -> float:
        return left + (width - left - right) * math.log(price / low) / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Raw and adjusted prices">',
        f'<rect x="{x(report.low):.1f}" y="{top - 10}" width="{x(report.high) - x(report.low):.1f}"'
        f' height="{row_height * len(rows) + 10}" fill="#fde7c8"/>',
        f'<line x1="{x(report.value):.1f}" x2="{x(report.value):.1f}" y1="{top - 14}" '
        f'y2="{top + row_height * len(rows)}" stroke="#c0392b" stroke-width="2"/>',
        f'<text x="{x(report.value) + 4:.1f}" y="{top - 16}" fill="#c0392b">value '
        f"{escape(_money(report.value))}</text>",
        '<circle cx="12" cy="12" r="4" fill="none" stroke="#7a8494" stroke-width="1.5"/>'
        '<text x="20" y="16">raw price</text>'
        '<circle cx="100" cy="12" r="5" fill="#2f6db5"/><text x="108" y="16">adjusted '
        "(area ~ weight)</text>"
        '<rect x="230" y="6" width="14" height="12" fill="#fde7c8"/>'
        '<text x="250" y="16">80% range</text>',
    ]
    for i, row in enumerate(rows):
        y = top + row_height * i + row_height / 2
        raw_x, adjusted_x = x(row.comparable.price), x(row.adjusted_price)
        radius = 3 + 10 * math.sqrt(row.weight)
        label = f"#{row.rank} {row.comparable.product_id}"[:28]
        parts.append(
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{escape(label)}</text>'
            f'<line x1="{raw_x:.1f}" x2="{adjusted_x:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#9aa5b5" stroke-width="1.5"/>'
            f'<circle cx="{raw_x:.1f}" cy="{y:.1f}" r="4" fill="white" stroke="#7a8494" '
            'stroke-width="1.5"/>'
            f'<circle cx="{adjusted_x:.1f}" cy="{y:.1f}" r="{radius:.1f}" fill="#2f6db5" '
            'fill-opacity="0.8"/>'
        )
    axis_y = top + row_height * len(rows) + 12
    parts.append(
        f'<line x1="{left}" x2="{width - right}" y1="{axis_y}" y2="{axis_y}" stroke="#556"/>'
    )
    for step in range(6):
        price = low * math.exp(span * step / 5)
        tick = x(price)
        parts.append(
            f'<line x1="{tick:.1f}" x2="{tick:.1f}" y1="{axis_y}" y2="{axis_y + 5}" '
            f'stroke="#556"/><text x="{tick:.1f}" y="{axis_y + 18}" text-anchor="middle">'
            f"{escape(f'{price:,.3g}')}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _comparables_table(report: ValuationReport) -> str:
    if not report.comparables:
        return (
            "<p>No comparables table: fewer than three comparables were found, so the cost "
            "approach is concluded (the method notes name what was found).</p>"
        )
    head = "".join(f"<th>{escape(name.replace('_', '-'))}</th>" for name in FACTOR_NAMES)
    lines = [
        '<div class="scroll"><table class="comparables"><thead><tr><th>#</th>'
        '<th class="text">product</th><th class="text">terms</th><th class="text">region</th>'
        "<th>records</th><th>price</th><th>price date</th><th>trades</th><th>similarity</th>"
        f"{head}<th>total</th><th>adjusted</th><th>weight</th><th>contribution</th>"
        '<th class="text">flags</th></tr></thead><tbody>'
    ]
    for row in report.comparables:
        comparable = row.comparable
        factors = "".join(_factor_cell(name, row.factors[name], row.flags) for name in FACTOR_NAMES)
        total_css = ' class="flag"' if any(f.startswith("total") for f in row.flags) else ""
        lines.append(
            f"<tr><td>{row.rank}</td><td class='text'>{escape(comparable.product_id)}</td>"
            f"<td class='text'>{escape(comparable.terms.label())}</td>"
            f"<td class='text'>{escape(row.product.region)}</td>"
            f"<td>{row.product.record_count:,}</td><td>{_money(comparable.price)}</td>"
            f"<td>{comparable.price_date.isoformat()}</td><td>{comparable.trades}</td>"
            f"<td>{comparable.similarity:.3f}</td>{factors}"
            f"<td{total_css}>{row.total_factor:.3f}</td><td>{_money(row.adjusted_price)}</td>"
            f"<td>{row.weight:.3f}</td><td>{_money(row.contribution)}</td>"
            f"<td class='flags'>{escape('; '.join(row.flags))}</td></tr>"
        )
    weights = math.fsum(row.weight for row in report.comparables)
    total = math.fsum(row.contribution for row in report.comparables)
    blank = "<td></td>" * (len(FACTOR_NAMES) + 2)
    lines.append(
        f"</tbody><tfoot><tr><td></td><td class='text' colspan='7'>sum = value</td>{blank}"
        f"<td></td><td>{weights:.3f}</td><td>{_money(total)}</td><td></td></tr></tfoot>"
        "</table></div>"
    )
    weight_rows = "".join(
        f"<tr><td>{row.rank}</td><td class='text'>{escape(row.comparable.product_id)}</td>"
        + "".join(f"<td>{value:.3f}</td>" for value in row.weight_parts.values())
        + "".join(f"<td>{value:.3f}</td>" for value in row.comparable.similarity_parts.values())
        + "</tr>"
        for row in report.comparables
    )
    first = report.comparables[0]
    weight_head = "".join(f"<th>{escape(name)}</th>" for name in first.weight_parts)
    part_head = "".join(
        f"<th>sim. {escape(name)}</th>" for name in first.comparable.similarity_parts
    )
    lines.append(
        "<h3>Weight and similarity parts</h3><div class='scroll'><table><thead><tr><th>#</th>"
        f"<th class='text'>product</th>{weight_head}{part_head}</tr></thead>"
        f"<tbody>{weight_rows}</tbody></table></div>"
    )
    return "".join(lines)


def _approaches(report: ValuationReport) -> str:
    cost = report.cost
    income = report.income
    rows = [
        ("market", report.market_value, None, None),
        ("cost", cost.value, cost.low, cost.high),
        ("market-calibrated cost", report.reconciliation.calibrated_cost_value, None, None),
        ("income", None if income is None else income.value, None, None),
    ]  # fmt: skip
    body = "".join(
        f"<tr><td class='text'>{name}{_weight_note(report, name)}</td>"
        f"<td>{_money(value)}</td><td>{_money(low)}</td><td>{_money(high)}</td></tr>"
        for name, value, low, high in rows
    )
    explanation = "".join(f"<p>{escape(line)}</p>" for line in report.reconciliation.explanation)
    return (
        "<table><thead><tr><th class='text'>approach</th><th>value</th><th>low</th>"
        f"<th>high</th></tr></thead><tbody>{body}</tbody></table>{explanation}"
    )


def _weight_note(report: ValuationReport, name: str) -> str:
    key = "cost" if name == "market-calibrated cost" else name
    if name == "cost" and report.reconciliation.calibrated_cost_value is not None:
        return ""  # the calibrated cost carries the weight
    weight = report.reconciliation.weights.get(key)
    return "" if weight is None else f" (weight {weight:.0%})"


def _own_trades(report: ValuationReport) -> str:
    rows = report.own_trades
    if not rows:
        return (
            "<p>The subject has no trades of its own by the valuation date (or they were left "
            "out), so it is valued from other products only.</p>"
        )
    body = "".join(
        f"<tr><td>{row.rank}</td><td class='text'>{escape(row.comparable.terms.label())}</td>"
        f"<td>{_money(row.comparable.price)}</td>"
        f"<td class='text'>{row.comparable.price_date.isoformat()}</td>"
        f"<td>{row.comparable.trades}</td><td>{row.total_factor:.3f}</td>"
        f"<td>{_money(row.adjusted_price)}</td><td>{row.weight:.3f}</td></tr>"
        for row in rows
    )
    share = math.fsum(row.weight for row in rows)
    return (
        f"<p>{len(rows)} instrument(s) of the subject itself, adjusted for terms and date like "
        f"any comparable, carry {share:.0%} of the market approach's weight: a prior sale of "
        "the subject is the strongest comparable.</p>"
        "<table><thead><tr><th>#</th><th class='text'>terms</th><th>price</th>"
        "<th class='text'>price date</th><th>trades</th><th>total factor</th>"
        f"<th>adjusted</th><th>weight</th></tr></thead><tbody>{body}</tbody></table>"
    )


def _parameters(report: ValuationReport) -> str:
    body = "".join(
        f"<tr><td class='text'>{escape(p.name)}</td><td>{p.value:.4g}</td><td>{p.default:.4g}</td>"
        f"<td>{p.data_weight:.2f}</td><td class='text'>{escape(p.source)}</td>"
        f"<td class='text'>{escape(p.note)}</td></tr>"
        for p in report.parameters
    )
    return (
        "<table><thead><tr><th class='text'>parameter</th><th>used</th><th>default</th>"
        "<th>data weight</th><th class='text'>source</th><th class='text'>note</th></tr>"
        f"</thead><tbody>{body}</tbody></table>"
    )


def _product(report: ValuationReport) -> str:
    product = report.product
    items = [
        ("category", product.category),
        ("region", product.region),
        ("records", f"{product.record_count:,}"),
        ("coverage", f"{product.coverage_months:g} months"),
        ("update frequency", product.update_frequency.value),
        ("quality (completeness, accuracy, timeliness, consistency)",
         ", ".join(f"{q:.2f}" for q in product.quality())),
        ("cost basis", _money(product.cost_basis)),
    ]  # fmt: skip
    body = "".join(
        f"<tr><td class='text'>{escape(k)}</td><td class='text'>{escape(v)}</td></tr>"
        for k, v in items
    )
    return f"<table><tbody>{body}</tbody></table>"


def render_report(report: ValuationReport) -> str:
    """The whole page as one string."""
    title = f"Valuation of {report.product.product_id}"
    summary = [
        ("value", _money(report.value)),
        ("80% range", f"{_money(report.low)} - {_money(report.high)}"),
        ("expected error", f"+-{report.expected_error_pct:.1f}%"),
        ("method", report.method),
        ("comparables", str(report.n_comparables)),
        ("flags", str(len(report.flags))),
    ]
    summary_html = "".join(f"<div><span>{k}</span><b>{escape(v)}</b></div>" for k, v in summary)
    notes = "".join(f"<li>{escape(note)}</li>" for note in report.notes)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1><p class='lead'>{escape(report.terms.label())} licence, "
        f"valued on {report.as_of.isoformat()}, in currency units per licence</p>"
        f"<div class='summary'>{summary_html}</div>"
        f"<h2>The subject's own trades</h2>{_own_trades(report)}"
        f"<h2>Comparables</h2>{_chart(report)}{_comparables_table(report)}"
        f"<h2>Approaches and reconciliation</h2>{_approaches(report)}"
        f"<h2>Parameters used</h2>{_parameters(report)}"
        f"<h2>Subject product</h2>{_product(report)}"
        f"<h2>Method notes</h2><ul>{notes}</ul>"
        "</body></html>\n"
    )
