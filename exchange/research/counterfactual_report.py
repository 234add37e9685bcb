"""The counterfactual comparison as one self-contained HTML page (``dataex replay
--counterfactual RULES.toml --html FILE.html``).

The page needs nothing beyond itself: its style is inline and its charts are inline SVG, so it
opens offline and can be mailed or archived as one file. It holds the rules as written, the
comparison table of :func:`exchange.research.counterfactual.rows`, a chart per instrument of
each figure under both designs, what the exchange refused, and what a counterfactual replay
can and cannot say.
"""

from __future__ import annotations

from html import escape
from typing import Final

from exchange.research.counterfactual import Comparison, rows

__all__ = ["render_html"]

ORIGINAL_COLOUR: Final = "#4c78a8"
COUNTERFACTUAL_COLOUR: Final = "#f58518"
# The chart's geometry, in SVG pixels.
LABEL_WIDTH: Final = 230
BAR_WIDTH: Final = 360
BAR_HEIGHT: Final = 9
ROW_HEIGHT: Final = 26
# Rows of the table that are not quantities to draw.
_NOT_DRAWN: Final = frozenset({"market approach method"})

_STYLE: Final = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.75em; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.changed td { font-weight: bold; }
pre { background: #f6f6f6; padding: 0.75em; }
.key span { display: inline-block; width: 1em; height: 0.7em; margin: 0 0.3em 0 1em; }
"""

_LIMITS: Final = """
<h2>What this comparison can and cannot say</h2>
<p>It says how the same orders, arriving at the same moments, would have met under the other
rules, and which of them the rules would have turned away: the mechanical effect of the rules
on a fixed flow. It cannot say how traders would have behaved under them. The orders do not
react: a trader facing a coarser tick would have priced on the new grid, a market maker facing
call auctions or sealed bids would have quoted otherwise, a bidder whose sealed bid lost would
have bid again, and nobody refused tries again. So it tends to overstate refusals and to
understate adaptation. The simulation (<code>dataex simulate</code>), whose agents submit their
orders under whatever rules the scenario sets, is the complement: its agents react, but they
are models, where this flow is the record.</p>
<p>Against the truth (a simulation's true values at its end), the last price and the market
approach's value are one draw each: compare designs over many seeds (docs/research.md).</p>
"""


def render_html(comparison: Comparison, source: str, rules_name: str, rules_text: str) -> str:
    """The page for ``comparison`` of the journal ``source`` under the rules file
    ``rules_name`` (whose text, ``rules_text``, is shown as written)."""
    after = comparison.counterfactual
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Counterfactual replay: {escape(rules_name)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Counterfactual replay</h1>",
        f"<p>The order flow of <code>{escape(source)}</code> ({after.commands:,} recorded "
        f"commands), executed again under the rules of <code>{escape(rules_name)}</code>:</p>",
        f"<pre>{escape(rules_text)}</pre>",
        _table(comparison),
        _refusals(comparison),
        '<p class="key">Each figure, scaled to the larger of the two:'
        f'<span style="background:{ORIGINAL_COLOUR}"></span>original'
        f'<span style="background:{COUNTERFACTUAL_COLOUR}"></span>counterfactual</p>',
    ]
    for symbol in comparison.original.figures:
        parts.append(f"<h2>{escape(symbol)}</h2>")
        parts.append(_chart(comparison, symbol))
    parts.append(_LIMITS)
    parts.append("</body></html>")
    return "\n".join(parts)


def _table(comparison: Comparison) -> str:
    lines = [
        "<table><thead><tr><th>symbol</th><th>figure</th><th>original</th>"
        "<th>counterfactual</th></tr></thead><tbody>"
    ]
    for symbol, name, original, counterfactual in rows(comparison):
        changed = ' class="changed"' if original != counterfactual else ""
        lines.append(
            f"<tr{changed}><td>{escape(symbol)}</td><td>{escape(name)}</td>"
            f'<td class="n">{escape(original)}</td><td class="n">{escape(counterfactual)}</td></tr>'
        )
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _refusals(comparison: Comparison) -> str:
    after = comparison.counterfactual
    refused = sum(after.refused_by_rules.values())
    other = ", ".join(
        f"{escape(reason)} {count:,}" for reason, count in sorted(after.refused_other.items())
    )
    auctions = (
        f" {after.uncrosses:,} periodic auctions or sealed-bid closes replaced the record's "
        f"{after.recorded_uncrosses_replaced:,}."
    ) * bool(after.uncrosses or after.recorded_uncrosses_replaced)
    return (
        f"<p>Refused by the new rules: {refused:,} orders and amendments off the new tick or "
        f"lot grid. Refused otherwise: {other or 'nothing'}. Skipped: {after.skipped:,} "
        f"cancels and amendments of orders that were refused.{auctions}</p>"
    )


def _chart(comparison: Comparison, symbol: str) -> str:
    """Paired bars for each numeric figure of ``symbol``; a figure either run could not
    compute is listed without bars."""
    drawn = [
        (name, _number(original), _number(counterfactual))
        for row_symbol, name, original, counterfactual in rows(comparison)
        if row_symbol == symbol and name not in _NOT_DRAWN
    ]
    height = ROW_HEIGHT * len(drawn) + 8
    width = LABEL_WIDTH + BAR_WIDTH + 90
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(symbol)}: each figure under both designs">'
    ]
    for index, (name, original, counterfactual) in enumerate(drawn):
        top = ROW_HEIGHT * index + 4
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{top + BAR_HEIGHT + 3}" font-size="12" '
            f'text-anchor="end">{escape(name)}</text>'
        )
        scale = max(abs(original or 0.0), abs(counterfactual or 0.0))
        for offset, number, colour in (
            (0, original, ORIGINAL_COLOUR),
            (BAR_HEIGHT + 1, counterfactual, COUNTERFACTUAL_COLOUR),
        ):
            if number is None:
                label, length = "none", 0.0
            else:
                label = f"{number:,.4g}"
                length = BAR_WIDTH * abs(number) / scale if scale else 0.0
            y = top + offset
            parts.append(
                f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length:.1f}" height="{BAR_HEIGHT}" '
                f'fill="{colour}"/>'
                f'<text x="{LABEL_WIDTH + length + 4:.1f}" y="{y + BAR_HEIGHT - 1}" '
                f'font-size="9">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _number(text: str) -> float | None:
    return float(text) if text else None
