"""The report of a load test: a markdown page and a chart, from ``summary.json`` and the checks.

:func:`headline` picks the figures the targets are about, from the ``orders`` and ``bare``
phases at full users: order submissions per second (``POST /v1/orders``), their p99, and
their throughput as a share of the bare endpoint's; and, from the ``edge`` phase, the order
endpoint's edge without the exchange, the most that share could be in this stack.
:func:`write_report` writes ``report.md``; :func:`write_chart` draws ``chart.png``: throughput
and p99 latency against users over the mixed phase's steps, with the bare, edge and orders
phases marked at full users.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.checks import Check

__all__ = ["ORDER_ENDPOINT", "Headline", "headline", "write_chart", "write_report"]

ORDER_ENDPOINT = "POST /v1/orders"
BARE_ENDPOINT = "GET /v1/loadtest/bare"
EDGE_ENDPOINT = "POST /v1/loadtest/order-edge"
ORDER_PATHS = ("POST /v1/orders", "PATCH /v1/orders/{id}", "DELETE /v1/orders/{id}")
TARGET_ORDERS_PER_S = 1_500.0
TARGET_P99_MS = 50.0
TARGET_RATIO = 0.60
# Order submissions over the order endpoint's edge (the same key check, body and response,
# no exchange behind it), in the same run: what the exchange leaves of the endpoint's rate.
TARGET_EDGE_RATIO = 0.5
TARGET_USERS = 50
WS_ORDER_ENDPOINT = "WS new_order"
WS_PATHS = ("WS new_order", "WS cancel")
TARGET_WS_RATIO = 5.0  # the session's acknowledged orders per second over REST's
TARGET_WS_P99_MS = 25.0


@dataclass(frozen=True, slots=True)
class Headline:
    users: int
    orders_per_s: float | None
    orders_p99_ms: float | None
    order_commands_per_s: float | None  # submits, amends and cancels: all through the sequencer
    bare_per_s: float | None
    edge_per_s: float | None = None
    # The server's CPU over each phase's window (100 = one core): on a shared machine a
    # neighbour's load takes CPU from the server, and requests per CPU-second discount it.
    orders_server_cpu_percent: float | None = None
    bare_server_cpu_percent: float | None = None
    # The order-entry session (the ws-orders phase): acknowledged new orders, and every
    # request (new orders and cancels), per second.
    ws_orders_per_s: float | None = None
    ws_orders_p99_ms: float | None = None
    ws_commands_per_s: float | None = None
    ws_server_cpu_percent: float | None = None

    @property
    def ws_ratio(self) -> float | None:
        """The session's acknowledged orders per second over REST's, in the same run."""
        if self.ws_orders_per_s is None or not self.orders_per_s:
            return None
        return self.ws_orders_per_s / self.orders_per_s

    @property
    def edge_ratio(self) -> float | None:
        """Order submissions per second over the edge endpoint's requests, same run."""
        if self.orders_per_s is None or not self.edge_per_s:
            return None
        return self.orders_per_s / self.edge_per_s

    @property
    def ratio(self) -> float | None:
        if self.orders_per_s is None or not self.bare_per_s:
            return None
        return self.orders_per_s / self.bare_per_s

    @property
    def ratio_per_cpu(self) -> float | None:
        """The ratio of order submissions to bare requests per CPU-second of the server."""
        if self.ratio is None or not self.orders_server_cpu_percent:
            return None
        if not self.bare_server_cpu_percent:
            return None
        return self.ratio * self.bare_server_cpu_percent / self.orders_server_cpu_percent

    def targets(self) -> list[tuple[str, str, str, bool | None]]:
        """(what, measured, target, met) for each target; met is None when not measured."""

        def met(value: float | None, ok: bool) -> bool | None:
            return None if value is None else ok

        orders, p99, ratio = self.orders_per_s, self.orders_p99_ms, self.ratio
        return [
            (
                f"order submissions ({ORDER_ENDPOINT}), {self.users} users",
                _number(orders, "/s"),
                f">= {TARGET_ORDERS_PER_S:,.0f}/s",
                met(orders, orders is not None and orders >= TARGET_ORDERS_PER_S),
            ),
            (
                f"p99 latency of {ORDER_ENDPOINT}",
                _number(p99, " ms"),
                f"<= {TARGET_P99_MS:.0f} ms",
                met(p99, p99 is not None and p99 <= TARGET_P99_MS),
            ),
            (
                "order submissions / bare endpoint throughput",
                "-" if ratio is None else f"{ratio:.2f}",
                f">= {TARGET_RATIO:.2f}",
                met(ratio, ratio is not None and ratio >= TARGET_RATIO),
            ),
            (
                "order submissions / the order endpoint's edge",
                "-" if self.edge_ratio is None else f"{self.edge_ratio:.2f}",
                f">= {TARGET_EDGE_RATIO:.2f}",
                met(
                    self.edge_ratio,
                    self.edge_ratio is not None and self.edge_ratio >= TARGET_EDGE_RATIO,
                ),
            ),
            (
                f"session orders ({WS_ORDER_ENDPOINT}) / REST order submissions",
                "-" if self.ws_ratio is None else f"{self.ws_ratio:.2f}",
                f">= {TARGET_WS_RATIO:.0f}",
                met(self.ws_ratio, self.ws_ratio is not None and self.ws_ratio >= TARGET_WS_RATIO),
            ),
            (
                f"p99 ack latency of {WS_ORDER_ENDPOINT}",
                _number(self.ws_orders_p99_ms, " ms"),
                f"<= {TARGET_WS_P99_MS:.0f} ms",
                met(self.ws_orders_p99_ms, self.ws_orders_p99_ms is not None
                    and self.ws_orders_p99_ms <= TARGET_WS_P99_MS),
            ),
        ]


def _number(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:,.0f}{unit}"


def _phase(summary: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((phase for phase in summary["phases"] if phase["name"] == name), None)


def _last_window(summary: dict[str, Any], name: str) -> dict[str, Any] | None:
    phase = _phase(summary, name)
    return phase["windows"][-1] if phase and phase["windows"] else None


def headline(summary: dict[str, Any]) -> Headline:
    orders, bare = _last_window(summary, "orders"), _last_window(summary, "bare")
    submit = orders["endpoints"].get(ORDER_ENDPOINT) if orders else None
    commands = (
        sum(orders["endpoints"][path]["rps"] for path in ORDER_PATHS if path in orders["endpoints"])
        if orders
        else None
    )
    bare_stats = bare["endpoints"].get(BARE_ENDPOINT) if bare else None
    edge = _last_window(summary, "edge")
    edge_stats = edge["endpoints"].get(EDGE_ENDPOINT) if edge else None
    ws = _last_window(summary, "ws-orders")
    ws_submit = ws["endpoints"].get(WS_ORDER_ENDPOINT) if ws else None
    return Headline(
        users=summary["users"],
        orders_per_s=submit["rps"] if submit else None,
        orders_p99_ms=submit["p99_ms"] if submit else None,
        order_commands_per_s=commands,
        bare_per_s=bare_stats["rps"] if bare_stats else None,
        edge_per_s=edge_stats["rps"] if edge_stats else None,
        orders_server_cpu_percent=orders["server_cpu_percent"] if orders else None,
        bare_server_cpu_percent=bare["server_cpu_percent"] if bare else None,
        ws_orders_per_s=ws_submit["rps"] if ws_submit else None,
        ws_orders_p99_ms=ws_submit["p99_ms"] if ws_submit else None,
        ws_commands_per_s=(
            sum(ws["endpoints"][path]["rps"] for path in WS_PATHS if path in ws["endpoints"])
            if ws else None
        ),
        ws_server_cpu_percent=ws["server_cpu_percent"] if ws else None,
    )


def _per_cpu(per_s: float | None, cpu_percent: float | None) -> str:
    if per_s is None or not cpu_percent:
        return "-"
    return f"{per_s * 100 / cpu_percent:,.0f}"


def _share(part: float | None, whole: float | None) -> str:
    return "-" if part is None or not whole else f"{part / whole:.2f}"


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "not measured"}[met]


def _endpoint_table(window: dict[str, Any]) -> list[str]:
    lines = [
        "| endpoint | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | failures |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = sorted(window["endpoints"].items(), key=lambda item: -item[1]["requests"])
    for endpoint, s in [*rows, ("all", window["total"])]:
        lines.append(
            f"| `{endpoint}` | {s['requests']:,} | {s['rps']:,.0f} | {s['p50_ms']:.0f} | "
            f"{s['p95_ms']:.0f} | {s['p99_ms']:.0f} | {s['max_ms']:.0f} | {s['failures']} |"
        )
    return lines


def write_report(
    path: Path, summary: dict[str, Any], checks: list[Check], context: dict[str, str]
) -> None:
    """``report.md``: the run, the targets, the checks, every phase's figures, the statuses.
    ``context`` names the database, the command and anything else worth recording."""
    head = headline(summary)
    lines = [
        f"# dataex load test, {summary['started_at']}",
        "",
        *(f"- {key}: {value}" for key, value in context.items()),
        f"- machine: {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; server and load generator on the same machine",
        f"- users: {summary['users']} (mixed phase steps: {summary['steps']}), spawn rate "
        f"{summary['spawn_rate']:g}/s, {summary['duration_s']:g} s of load "
        f"({summary['wall_s']:.0f} s with setup and spawning)",
        f"- server stack: {_roles(summary.get('server_stack', {}))}",
        f"- mix (weights): {_roles(summary['mix'])}; rates (tasks/s per user, 0: no pause): "
        f"{_roles(summary['rates'])}",
        f"- acknowledged orders: {summary['acked_orders']:,}",
        "",
        "## Targets",
        "",
        "| what | measured | target | verdict |",
        "| --- | ---: | ---: | --- |",
        *(
            f"| {what} | {value} | {target} | {_verdict(met)} |"
            for what, value, target, met in head.targets()
        ),
        "",
        f"Order commands (submit, amend, cancel) in the orders phase: "
        f"{_number(head.order_commands_per_s, '/s')}; bare endpoint: "
        f"{_number(head.bare_per_s, '/s')}. Per CPU-second of the server (which a loaded "
        f"machine takes from it): bare {_per_cpu(head.bare_per_s, head.bare_server_cpu_percent)}, "
        f"order submissions {_per_cpu(head.orders_per_s, head.orders_server_cpu_percent)}, "
        f"ratio {'-' if head.ratio_per_cpu is None else f'{head.ratio_per_cpu:.2f}'}. "
        f"The targets are set for {TARGET_USERS} users on SQLite.",
        "",
        f"The order endpoint's edge without the exchange ({EDGE_ENDPOINT}: key, body, "
        f"price, response): {_number(head.edge_per_s, '/s')}, "
        f"{_share(head.edge_per_s, head.bare_per_s)} of the bare endpoint: the most order "
        f"submissions could reach here if the exchange behind them cost nothing.",
        "",
        "## Checks",
        "",
        "| check | result | detail |",
        "| --- | --- | --- |",
        *(f"| {c.name} | {'ok' if c.ok else '**FAILED**'} | {c.detail} |" for c in checks),
    ]
    for phase in summary["phases"]:
        lines += ["", f"## Phase `{phase['name']}`", ""]
        if len(phase["windows"]) > 1:
            lines += [
                "| users | req/s | orders/s | p50 ms | p95 ms | p99 ms | orders p99 ms "
                "| server CPU | generator CPU |",
                "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            ]
            for w in phase["windows"]:
                t, o = w["total"], w["endpoints"].get(ORDER_ENDPOINT)
                lines.append(
                    f"| {w['users']} | {t['rps']:,.0f} | {_number(o and o['rps'], '')} | "
                    f"{t['p50_ms']:.0f} | {t['p95_ms']:.0f} | {t['p99_ms']:.0f} | "
                    f"{_number(o and o['p99_ms'], '')} | {w['server_cpu_percent']:.0f}% | "
                    f"{w['generator_cpu_percent']:.0f}% |"
                )
            lines += ["", "At the last step:", ""]
        w = phase["windows"][-1]
        lines += [
            f"{w['users']} users for {w['seconds']:.1f} s; server CPU "
            f"{w['server_cpu_percent']:.0f}%, load generator CPU "
            f"{w['generator_cpu_percent']:.0f}% (100% = one core).",
            "",
            *_endpoint_table(w),
            "",
            "Responses by status over the whole phase (spawning included), and the reasons "
            "given for refusals:",
            "",
            *(
                f"- `{endpoint}`: {_statuses(statuses)}"
                + (
                    f"; {_roles(phase['reasons'][endpoint])}"
                    if endpoint in phase["reasons"]
                    else ""
                )
                for endpoint, statuses in phase["statuses"].items()
            ),
        ]
        if phase.get("refusal_examples"):
            lines += ["", "An example of each refusal:", ""]
            lines += [f"- `{key}`: {text}" for key, text in phase["refusal_examples"].items()]
    lines += [
        "",
        "## Files",
        "",
        "`<phase>_stats.csv`, `<phase>_stats_history.csv`, `<phase>_failures.csv`, "
        "`<phase>_exceptions.csv`: locust's statistics (each phase's `_stats.csv` covers its "
        "last measured window); `summary.json`: every window; `acked_orders.jsonl`: the "
        "acknowledged orders; `market.json`: what setup made; `chart.png`; `server.log`, "
        "`locust.log`.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def _roles(values: dict[str, Any]) -> str:
    return ", ".join(
        f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}"
        for key, value in values.items()
    )


def _statuses(statuses: dict[str, int]) -> str:
    return ", ".join(f"{status}: {count:,}" for status, count in statuses.items())


def write_chart(path: Path, summary: dict[str, Any]) -> None:
    """``chart.png``: throughput and p99 against users (see the module docstring)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: draw to a file
    from matplotlib import pyplot

    mixed = _phase(summary, "mixed")
    figure, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4.2))
    if mixed and mixed["windows"]:
        users = [w["users"] for w in mixed["windows"]]
        orders = [w["endpoints"].get(ORDER_ENDPOINT) for w in mixed["windows"]]
        left.plot(
            users, [w["total"]["rps"] for w in mixed["windows"]], "o-", label="mixed: all requests"
        )
        left.plot(
            users, [o["rps"] if o else 0 for o in orders], "s-", label=f"mixed: {ORDER_ENDPOINT}"
        )
        right.plot(
            users,
            [w["total"]["p99_ms"] for w in mixed["windows"]],
            "o-",
            label="mixed: all requests",
        )
        right.plot(
            users, [o["p99_ms"] if o else 0 for o in orders], "s-", label=f"mixed: {ORDER_ENDPOINT}"
        )
    marked = (
        ("bare", BARE_ENDPOINT, "^"),
        ("edge", EDGE_ENDPOINT, "v"),
        ("orders", ORDER_ENDPOINT, "D"),
    )
    for name, endpoint, marker in marked:
        window = _last_window(summary, name)
        if window and endpoint in window["endpoints"]:
            stats = window["endpoints"][endpoint]
            left.plot(
                [window["users"]],
                [stats["rps"]],
                marker,
                markersize=9,
                label=f"{name} phase: {endpoint}",
            )
            right.plot(
                [window["users"]],
                [stats["p99_ms"]],
                marker,
                markersize=9,
                label=f"{name} phase: {endpoint}",
            )
    left.axhline(TARGET_ORDERS_PER_S, color="grey", linestyle=":", label="target: 1,500 orders/s")
    right.axhline(TARGET_P99_MS, color="grey", linestyle=":", label="target: p99 50 ms")
    left.set(xlabel="users", ylabel="requests per second", title="Throughput")
    right.set(xlabel="users", ylabel="p99 latency (ms)", title="p99 latency")
    for axes in (left, right):
        axes.set_xlim(left=0)
        axes.set_ylim(bottom=0)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    figure.suptitle(f"dataex load test, {summary['started_at']}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
