"""Small inline SVG charts for the simulation report: lines, bars and a log-log scatter.

No dependency: each function returns one ``<svg>`` element as text, sized in pixels, with
its axes, a few labelled ticks and a legend. Missing values (None) break a line. Text is
escaped; numbers are formatted with at most four significant digits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

__all__ = ["PALETTE", "bar_chart", "line_chart", "scatter_chart"]

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 40
TICKS = 5

Series = tuple[str, Sequence[float], Sequence[float | None]]


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-2:
        return f"{value:.3g}"
    return f"{value:.4g}"


def _ticks(low: float, high: float) -> list[float]:
    if high <= low:
        return [low]
    step = 10 ** math.floor(math.log10((high - low) / TICKS))
    for factor in (1, 2, 5, 10):
        if (high - low) / (step * factor) <= TICKS:
            step *= factor
            break
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]


def _frame(title: str, x_label: str, y_label: str, width: int, height: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<text x="{(LEFT + width - RIGHT) / 2}" y="{height - 6}" font-size="11" '
        f'text-anchor="middle">{escape(x_label)}</text>',
        f'<text x="12" y="{(TOP + height - BOTTOM) / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {(TOP + height - BOTTOM) / 2})">{escape(y_label)}</text>',
    ]


def _axes(
    parts: list[str],
    x0: float,
    x1: float,
    y0: float,
    y1: float,
    width: int,
    height: int,
    *,
    log_x: bool = False,
    log_y: bool = False,
    x_ticks: bool = True,
) -> None:
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    parts.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>'
    )
    for value in _ticks(y0, y1):
        y = TOP + plot_h * (1 - (value - y0) / (y1 - y0 or 1))
        label = _fmt(10**value if log_y else value)
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
        )
        parts.append(
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{label}</text>'
        )
    for value in _ticks(x0, x1) if x_ticks else []:
        x = LEFT + plot_w * (value - x0) / (x1 - x0 or 1)
        label = _fmt(10**value if log_x else value)
        parts.append(
            f'<text x="{x:.1f}" y="{TOP + plot_h + 14}" font-size="10" '
            f'text-anchor="middle">{label}</text>'
        )


def _legend(parts: list[str], names: Sequence[str], width: int, *, left: bool = False) -> None:
    """Name and colour of each series, top right (or top left) inside the plot."""
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        y = TOP + 12 + 14 * i
        if left:
            x = LEFT + 8
            parts.append(
                f'<line x1="{x}" x2="{x + 10}" y1="{y}" y2="{y}" stroke="{colour}" '
                'stroke-width="2"/>'
            )
            parts.append(f'<text x="{x + 14}" y="{y + 4}" font-size="10">{escape(name)}</text>')
            continue
        x = width - RIGHT - 8
        parts.append(
            f'<text x="{x - 14}" y="{y + 4}" font-size="10" text-anchor="end">{escape(name)}</text>'
        )
        parts.append(
            f'<line x1="{x - 10}" x2="{x}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="2"/>'
        )


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    dashed: Sequence[bool] = (),
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """Lines of (name, xs, ys); a ``dashed`` flag per series draws it dashed."""
    points = [(x, y) for _, xs, ys in series for x, y in zip(xs, ys, strict=True) if y is not None]
    parts = _frame(title, x_label, y_label, width, height)
    if not points:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" '
            'font-size="12">no data</text></svg>'
        )
        return "".join(parts)
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    pad = (y1 - y0) * 0.05 or abs(y1) * 0.05 or 1.0
    y0, y1 = y0 - pad, y1 + pad
    _axes(parts, x0, x1, y0, y1, width, height)
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    for i, (_name, xs, ys) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        dash = ' stroke-dasharray="5 3"' if i < len(dashed) and dashed[i] else ""
        segment: list[str] = []
        segments: list[list[str]] = []
        for x, y in zip(xs, ys, strict=True):
            if y is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            px = LEFT + plot_w * (x - x0) / (x1 - x0 or 1)
            py = TOP + plot_h * (1 - (y - y0) / (y1 - y0))
            segment.append(f"{px:.1f},{py:.1f}")
        if segment:
            segments.append(segment)
        for points_text in segments:
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.3"{dash} '
                f'points="{" ".join(points_text)}"/>'
            )
    _legend(parts, [name for name, _, _ in series], width)
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    title: str,
    y_label: str,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """One bar per label (None: no bar); labels are thinned so that they never overlap."""
    parts = _frame(title, "", y_label, width, height)
    known = [v for v in values if v is not None]
    low, high = min(0.0, *known) if known else 0.0, max(0.0, *known) if known else 1.0
    high = high if high > low else low + 1.0
    _axes(parts, 0, 1, low, high, width, height, x_ticks=False)  # the labels are the x axis
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    slot = plot_w / max(1, len(values))
    zero = TOP + plot_h * (1 - (0 - low) / (high - low))
    # Labels are about 6 px a character: show every n-th so that they do not overlap.
    longest = max((len(label) for label in labels), default=1)
    every = max(1, math.ceil(len(labels) * (longest * 6 + 8) / plot_w))
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        x = LEFT + slot * i + slot * 0.1
        if v is not None:
            y = TOP + plot_h * (1 - (v - low) / (high - low))
            parts.append(
                f'<rect x="{x:.1f}" y="{min(y, zero):.1f}" width="{slot * 0.8:.1f}" '
                f'height="{abs(zero - y):.1f}" fill="{PALETTE[0]}"/>'
            )
        if i % every == 0:
            parts.append(
                f'<text x="{x + slot * 0.4:.1f}" y="{TOP + plot_h + 14}" '
                f'font-size="9" text-anchor="middle">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def scatter_chart(
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = WIDTH,
    height: int = 360,
) -> str:
    """Log-log scatter of (x, y) points per series, with the diagonal y = x."""
    points = [(x, y) for _, pts in series for x, y in pts if x > 0 and y > 0]
    parts = _frame(title, x_label, y_label, width, height)
    if not points:
        parts.append("</svg>")
        return "".join(parts)
    logs = [math.log10(v) for p in points for v in p]
    low, high = min(logs) - 0.05, max(logs) + 0.05
    _axes(parts, low, high, low, high, width, height, log_x=True, log_y=True)
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM

    def at(x: float, y: float) -> tuple[float, float]:
        return (
            LEFT + plot_w * (math.log10(x) - low) / (high - low),
            TOP + plot_h * (1 - (math.log10(y) - low) / (high - low)),
        )

    (ax, ay), (bx, by) = at(10**low, 10**low), at(10**high, 10**high)
    parts.append(
        f'<line x1="{ax:.1f}" y1="{ay:.1f}" x2="{bx:.1f}" y2="{by:.1f}" '
        'stroke="#999" stroke-dasharray="4 3"/>'
    )
    for i, (_name, pts) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        for x, y in pts:
            if x > 0 and y > 0:
                px, py = at(x, y)
                parts.append(
                    f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{colour}" '
                    'fill-opacity="0.6"/>'
                )
    _legend(parts, [name for name, _ in series], width, left=True)
    parts.append("</svg>")
    return "".join(parts)
