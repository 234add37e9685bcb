"""``dataex collateral report``: every loan facility of an exchange, rebuilt from its journal.

The database's journal is replayed into a fresh exchange (``exchange.research.replay``,
checked entry for entry against the settlement ledger, as ``dataex replay`` does), up to the
end of ``--as-of`` (a date: through 23:59:59 UTC that day; or an ISO 8601 time) or to its
head. Then every facility is shown: its parties, status, debt, thresholds, its pledges with
their prices, haircuts and values, its LTV history and its alerts; as tables, as JSON
(``--json``, the units of ``exchange.facility_report``), or as a self-contained HTML page
with a chart of LTV against the thresholds over time per facility (``--html``; inline SVG,
nothing fetched).

Exit status: 0 with the report; 1 when the journal does not replay as recorded; 2 for input
that cannot be used (one ``error:`` line: a bad date, no database, an unwritable page).
"""

from __future__ import annotations

import datetime as dt
import json
from html import escape
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich.console import Console
from rich.table import Table

from exchange.cli.replay import EXIT_DIFFERS, fail, open_database, reports_errors
from exchange.facility_report import collateral_report, ltv_chart
from exchange.research import DatabaseJournal, InputError, Until, replay
from exchange.research.times import TimeError, parse_time
from exchange.whole_files import replacing_text

__all__ = ["app", "parse_as_of"]

app = typer.Typer(
    help="Loan facilities against pledged licences: report their state and history.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# The table shows the newest marks and alerts of each facility; --json and --html all.
ROWS_SHOWN: Final = 12
_LAST_NS_OF_DAY: Final = 86_400 * 10**9 - 1


def parse_as_of(text: str) -> int:
    """The last nanosecond the report covers: a date means through the end of that UTC day.

    >>> parse_as_of("1970-01-02") == 2 * 86_400 * 10**9 - 1
    True
    """
    text = text.strip()
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        try:
            return parse_time(text)
        except TimeError:
            raise InputError(
                f"--as-of {text!r} is neither a date (YYYY-MM-DD) nor an ISO 8601 time"
            ) from None
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return int(start.timestamp()) * 10**9 + _LAST_NS_OF_DAY


@app.command("report")
@reports_errors
def report_command(
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            metavar="URL",
            help="Database to read (default $DATAEX_DATABASE_URL, else sqlite:///dataex.db).",
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            metavar="DATE|TIME",
            help="Replay the journal only up to this date (through its end, UTC) or time.",
        ),
    ] = None,
    html_out: Annotated[
        Path | None,
        typer.Option("--html", metavar="PAGE.html", help="Also write the report as a page."),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON instead of tables.")
    ] = False,
) -> None:
    """Every facility: parties, status, debt, thresholds, pledges with their marks and
    haircuts, LTV history and alerts."""
    until_ns = None if as_of is None else parse_as_of(as_of)
    if html_out is not None and not html_out.parent.is_dir():
        raise InputError(f"{html_out}: directory {html_out.parent} does not exist")
    journal = DatabaseJournal(open_database(database))
    replayed = replay(journal, until=None if until_ns is None else Until(ts_ns=until_ns))
    if replayed.mismatch is not None:
        fail(f"the journal does not replay as recorded, at {replayed.mismatch}", EXIT_DIFFERS)
    report = collateral_report(replayed.exchange, replayed.head_ts_ns or None)
    report["journal_seq"] = replayed.head_seq
    if html_out is not None:
        with replacing_text(html_out) as page:
            page.write(html_page(report))
    if json_out:
        typer.echo(json.dumps(report, indent=2))
        return
    _print_tables(Console(highlight=False, soft_wrap=True), report)
    if html_out is not None:
        typer.echo(f"page: {html_out}")


def _percent(ltv_bp: int | None) -> str:
    return "n/a" if ltv_bp is None else f"{ltv_bp / 100:.2f}%"


def _print_tables(console: Console, report: dict[str, Any]) -> None:
    facilities = report["facilities"]
    console.print(f"journal seq {report['journal_seq']}, as of {report['as_of'] or 'the start'}:"
                  f" {len(facilities)} facilities")  # fmt: skip
    if not facilities:
        return
    overview = Table(title="Facilities (money in currency units)")
    for column in ("id", "lender", "borrower", "status", "debt", "collateral", "LTV",
                   "initial/call/liquidation", "pledges", "alerts"):  # fmt: skip
        overview.add_column(column, justify="right" if column in ("id", "debt") else "left")
    for f in facilities:
        keys = ("initial_ltv_bp", "margin_call_ltv_bp", "liquidation_ltv_bp")
        thresholds = "/".join(f"{f[key] / 100:g}" for key in keys) + "%"
        overview.add_row(str(f["facility_id"]), f["lender"], f["borrower"], f["status"], f["debt"],
                         f["collateral_value"], _percent(f["ltv_bp"]), thresholds,
                         str(len(f["pledges"])), str(len(f["alerts"])))  # fmt: skip
    console.print(overview)
    for f in facilities:
        _print_facility(console, f)


def _print_facility(console: Console, f: dict[str, Any]) -> None:
    console.print(
        f"\nfacility {f['facility_id']}: limit {f['limit']}, drawn {f['drawn']}, interest "
        f"{f['interest']}, margin {f['margin']}, rate {f['rate_bp'] / 100:g}% a year, matures "
        f"{f['maturity']}" + (f", cure by {f['call_deadline']}" if f["call_deadline"] else "")
    )
    if f["pledges"]:
        pledges = Table(title=f"Facility {f['facility_id']}: pledges")
        for column in ("pledge", "symbol", "units", "at auction", "expires", "price",
                       "valuation (low-high, comparables)", "haircut", "value"):  # fmt: skip
            pledges.add_column(column)
        for p in f["pledges"]:
            valuation = p["valuation"]
            valued = "none" if valuation is None else (
                f"{valuation['value']} ({valuation['low']}-{valuation['high']}, "
                f"{valuation['comparables']})"
            )  # fmt: skip
            pledges.add_row(str(p["pledge_id"]), p["symbol"], str(p["units"]),
                            str(p["at_auction_units"]), p["expires"] or "unsold issuance",
                            p["price"], valued, _percent(p["haircut_bp"]), p["value"])  # fmt: skip
        console.print(pledges)
    marks = f["marks"]
    history = Table(title=f"Facility {f['facility_id']}: LTV history"
                    + _more(len(marks)))  # fmt: skip
    for column in ("time", "cause", "debt", "collateral", "LTV"):
        history.add_column(column)
    for m in marks[-ROWS_SHOWN:]:
        history.add_row(m["time"], m["cause"], m["debt"], m["collateral_value"],
                        _percent(m["ltv_bp"]))  # fmt: skip
    console.print(history)
    alerts = f["alerts"]
    if alerts:
        table = Table(title=f"Facility {f['facility_id']}: alerts" + _more(len(alerts)))
        for column in ("time", "reason", "LTV", "message"):
            table.add_column(column)
        for a in alerts[-ROWS_SHOWN:]:
            table.add_row(a["time"], a["reason"], _percent(a["ltv_bp"]), a["message"])
        console.print(table)


def _more(count: int) -> str:
    return f" (newest {ROWS_SHOWN} of {count})" if count > ROWS_SHOWN else ""


def html_page(report: dict[str, Any]) -> str:
    """The report as one self-contained page: per facility a chart and its tables."""
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>dataex: loan facilities</title><style>body{font-family:sans-serif;margin:2em}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
        "padding:2px 6px;font-size:13px}</style></head><body>",
        "<h1>Loan facilities</h1>",
        f"<p>Journal seq {report['journal_seq']}, as of {escape(report['as_of'] or 'the start')}."
        f" Money in currency units; LTV in percent.</p>",
    ]
    if not report["facilities"]:
        parts.append("<p>No facilities.</p>")
    for f in report["facilities"]:
        parts.append(
            f"<h2>Facility {f['facility_id']}: {escape(f['lender'])} to "
            f"{escape(f['borrower'])} ({escape(f['status'])})</h2>"
        )
        parts.append(
            _html_table(
                ["debt", "collateral value", "LTV", "initial", "margin call", "liquidation",
                 "limit", "drawn", "interest", "margin", "matures"],
                [[f["debt"], f["collateral_value"], _percent(f["ltv_bp"]),
                  _percent(f["initial_ltv_bp"]), _percent(f["margin_call_ltv_bp"]),
                  _percent(f["liquidation_ltv_bp"]), f["limit"], f["drawn"], f["interest"],
                  f["margin"], f["maturity"]]],
            )
        )  # fmt: skip
        parts.append(ltv_chart(f))
        parts.append(
            _html_table(
                ["pledge", "symbol", "units", "expires", "price", "haircut", "value"],
                [[str(p["pledge_id"]), p["symbol"], str(p["units"]),
                  p["expires"] or "unsold issuance", p["price"], _percent(p["haircut_bp"]),
                  p["value"]] for p in f["pledges"]],
            )
        )  # fmt: skip
        parts.append(
            _html_table(
                ["time", "reason", "LTV", "message"],
                [[a["time"], a["reason"], _percent(a["ltv_bp"]), a["message"]]
                 for a in f["alerts"]],
            )
        )  # fmt: skip
    parts.append("</body></html>\n")
    return "".join(parts)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"
