"""``dataex value``: market-approach valuations from researchers' own files, no exchange.

    dataex value batch --products P.csv --trades T.csv --targets G.csv --out V.csv [--html DIR]
    dataex value report --products P.csv --trades T.csv --product-id ID [terms] [--json F]
    dataex value product ID [--database URL] [terms] [--json F] [--html F]
    dataex value study [--seed N] [--products N] [--targets N] [--shares 0.02,0.05,...]
                       [--confidential SHARE] [--out STUDY.csv] [--chart STUDY.png]

``report`` and ``product`` value as of ``--as-of``, by default the day of the market's last
trade (today, UTC, when there is none), so that by default no trade is left out.

The imperative shell around ``exchange.pricing``: it reads the files
(``exchange.pricing.csvio``), prepares one market per valuation date (trades after the date
are left out), values each target and writes the results. Outputs are written under
temporary names and moved into place only when complete. A file that cannot be read stops
the run with one ``error:`` line naming the file, line and column, and exit status 2.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from exchange.catalogue import Exclusivity, Scope, Territory
from exchange.cli.files import check_distinct, fail
from exchange.pricing import (
    FACTOR_NAMES,
    Market,
    ProductRecord,
    TargetSpec,
    TermsRecord,
    TradeRecord,
    ValuationReport,
    prepare_market,
    render_report,
    value,
)
from exchange.pricing.csvio import (
    VALUATION_COLUMNS,
    CsvFileError,
    TargetRow,
    read_products,
    read_targets,
    read_trades,
    valuation_row,
)
from exchange.pricing.study import (
    APPROACHES,
    DEFAULT_SHARES,
    USES,
    StudyRow,
    run_study,
    study_problem,
    write_chart,
    write_confidential_chart,
    write_csv,
)
from exchange.whole_files import replacing_text

app = typer.Typer(
    help="Value data-product licences from comparables in your own CSV files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

T = TypeVar("T")

ProductsOption = Annotated[
    Path,
    typer.Option("--products", metavar="PRODUCTS.csv", help="Products (docs/valuation.md)."),
]
TradesOption = Annotated[
    Path, typer.Option("--trades", metavar="TRADES.csv", help="Trades (docs/valuation.md).")
]

# The licence terms and report files of `report` and `product`.
ExclusivityOption = Annotated[Exclusivity, typer.Option(help="Licence exclusivity.")]
DurationOption = Annotated[int, typer.Option(min=1, max=600, help="Licence months.")]
ScopeOption = Annotated[Scope, typer.Option(help="Licence scope.")]
TerritoryOption = Annotated[Territory, typer.Option(help="Licence territory.")]
JsonOption = Annotated[
    Path | None, typer.Option("--json", metavar="FILE", help="Write the report as JSON.")
]
HtmlOption = Annotated[
    Path | None, typer.Option("--html", metavar="FILE", help="Write the report as HTML.")
]
# One default for both: the day of the market's last trade leaves no trade out (a later day
# adds nothing, an earlier one drops trades), whatever the dates of the market at hand.
AsOfOption = Annotated[
    str | None,
    typer.Option(
        metavar="YYYY-MM-DD",
        help="Valuation date (trades after it are left out); default: the day of the "
        "market's last trade, or today (UTC) when it has none.",
    ),
]


@app.command("batch")
def batch(
    products: ProductsOption,
    trades: TradesOption,
    targets: Annotated[
        Path, typer.Option("--targets", metavar="TARGETS.csv", help="What to value.")
    ],
    out: Annotated[Path, typer.Option("--out", metavar="VALUATIONS.csv", help="Results.")],
    html: Annotated[
        Path | None,
        typer.Option("--html", metavar="DIR", help="Also write one HTML report per target."),
    ] = None,
) -> None:
    """Value every target of TARGETS.csv and write one row per target to VALUATIONS.csv."""
    check_distinct([products, trades, targets, out])
    if not out.parent.is_dir():
        fail(f"{out}: directory {out.parent} does not exist")
    product_records, trade_records = _read_market_files(products, trades)
    target_rows = _guarded(lambda: read_targets(targets, product_records))
    if html is not None:
        _guarded(lambda: html.mkdir(parents=True, exist_ok=True))
    markets: dict[dt.date, Market] = {}
    reports: list[ValuationReport] = []
    for row in target_rows:
        market = markets.get(row.as_of)
        if market is None:
            market = markets[row.as_of] = _prepare(product_records, trade_records, row.as_of)
        reports.append(_value(market, product_records, row, targets))

    def write() -> None:
        with replacing_text(out) as file:
            writer = csv.writer(file, lineterminator="\n")
            writer.writerow(VALUATION_COLUMNS)
            writer.writerows(valuation_row(report) for report in reports)
        if html is not None:
            for number, report in enumerate(reports, start=1):
                name = f"{number:05d}_{_safe(report.product.product_id)}.html"
                with replacing_text(html / name) as file:
                    file.write(render_report(report))

    _guarded(write)
    fallbacks = sum(report.method != "market" for report in reports)
    typer.echo(
        f"valued {len(reports)} targets ({len(reports) - fallbacks} market approach, "
        f"{fallbacks} cost fallback) from {len(trade_records)} trades of "
        f"{len(product_records)} products; wrote {out}"
        + (f" and {len(reports)} reports in {html}" if html is not None else "")
    )


@app.command("report")
def report(
    products: ProductsOption,
    trades: TradesOption,
    product_id: Annotated[str, typer.Option("--product-id", help="The product to value.")],
    exclusivity: ExclusivityOption = Exclusivity.NON_EXCLUSIVE,
    duration_months: DurationOption = 12,
    scope: ScopeOption = Scope.INTERNAL,
    territory: TerritoryOption = Territory.DOMESTIC,
    as_of: AsOfOption = None,
    json_out: JsonOption = None,
    html_out: HtmlOption = None,
) -> None:
    """Value one product under the given terms and print its comparables table."""
    product_records, trade_records = _read_market_files(products, trades)
    if product_id not in product_records:
        fail(f"{products}: no product {product_id!r}")
    day = _valuation_day(_as_of_date(as_of), trade_records)
    market = _prepare(product_records, trade_records, day)
    terms = TermsRecord(exclusivity, duration_months, scope, territory)
    result = value(market, TargetSpec(product_records[product_id], terms, day))
    _publish(result, json_out, html_out)


@app.command("product")
def product(
    product_id: Annotated[str, typer.Argument(help="A product of the exchange's catalogue.")],
    database: Annotated[
        str | None, typer.Option(help="Database URL (default: $DATAEX_DATABASE_URL)")
    ] = None,
    exclusivity: ExclusivityOption = Exclusivity.NON_EXCLUSIVE,
    duration_months: DurationOption = 12,
    scope: ScopeOption = Scope.INTERNAL,
    territory: TerritoryOption = Territory.DOMESTIC,
    as_of: AsOfOption = None,
    json_out: JsonOption = None,
    html_out: HtmlOption = None,
) -> None:
    """Value a product of the exchange from the exchange's own trades (its database)."""
    from sqlalchemy.exc import SQLAlchemyError

    from exchange.recovery import RecoveryError, recover
    from exchange.valuation_inputs import book_snapshot, pricing_records
    from ledger import LedgerError
    from ledger.schema import NoLedger, require_ledger
    from ledger.store import Ledger

    given_day = _as_of_date(as_of)
    try:
        # It only reads: where there is no dataex database, it creates none.
        exchange = recover(Ledger.open(require_ledger(database)))
    except NoLedger as error:
        fail(str(error))
    except (LedgerError, RecoveryError, OSError, ValueError) as error:
        fail(f"cannot read the exchange's database: {error}")
    except SQLAlchemyError as error:
        detail = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        fail(f"cannot read the exchange's database: {detail}")
    if product_id not in exchange.products:
        fail(f"the catalogue has no product {product_id!r}")
    terms = TermsRecord(exclusivity, duration_months, scope, territory)
    product_records, trade_records = pricing_records(exchange)
    day = _valuation_day(given_day, trade_records)
    market = _prepare({p.product_id: p for p in product_records}, trade_records, day)
    target = next(p for p in product_records if p.product_id == product_id)
    book = book_snapshot(exchange, product_id, terms)
    result = value(market, TargetSpec(target, terms, day, book=book))
    _publish(result, json_out, html_out)


@app.command("study")
def study(
    seed: Annotated[int, typer.Option(help="Seed of the synthetic markets.")] = 1,
    products: Annotated[int, typer.Option(help="Products in each market.")] = 4_000,
    targets: Annotated[int, typer.Option(help="Targets valued at each share.")] = 1_000,
    shares: Annotated[
        str, typer.Option(metavar="S1,S2,...", help="Shares of products traded, in (0, 1].")
    ] = ",".join(f"{share:g}" for share in DEFAULT_SHARES),
    confidential: Annotated[
        float,
        typer.Option(
            metavar="SHARE",
            help="Share of trades made in confidence, in [0, 1): value each market once per "
            "use of them (none, published, aggregates, ...).",
        ),
    ] = 0.0,
    out: Annotated[
        Path | None, typer.Option("--out", metavar="STUDY.csv", help="Write the table as CSV.")
    ] = None,
    chart: Annotated[
        Path | None,
        typer.Option("--chart", metavar="STUDY.png", help="Write the chart (needs matplotlib)."),
    ] = None,
) -> None:
    """Measure every approach against synthetic markets with known true values, at each
    share of products traded: median absolute error, 80% range coverage, median ratio, COD."""
    share_list: list[float] = []
    for part in shares.split(","):
        try:
            share_list.append(float(part))
        except ValueError:
            fail(f"--shares: {part.strip()!r} is not a number")
    problem = study_problem(products, share_list, targets, confidential)
    if problem is not None:
        fail(problem)
    outputs = [path for path in (out, chart) if path is not None]
    check_distinct(outputs)
    for path in outputs:
        if not path.parent.is_dir():
            fail(f"{path}: directory {path.parent} does not exist")
    if chart is not None and importlib.util.find_spec("matplotlib") is None:
        fail("--chart needs matplotlib, which is not installed (pip install matplotlib)")
    console = Console(stderr=True)
    with console.status("valuing") as status:
        rows = run_study(
            seed, products, share_list, targets,
            on_share=lambda share: status.update(f"valued the market at {share:.0%} traded"),
            confidential_share=confidential,
        )  # fmt: skip
    if confidential > 0:
        _print_confidential_study(rows, seed, products, targets, confidential)
    else:
        _print_study(rows, seed, products, targets)
    if out is not None:
        _guarded(lambda: _write_study_csv(rows, out))
    if chart is not None:
        draw = write_confidential_chart if confidential > 0 else write_chart
        _guarded(lambda: draw(rows, chart))


def _print_study(rows: list[StudyRow], seed: int, products: int, targets: int) -> None:
    table = Table(title=f"Accuracy against liquidity: seed {seed}, {products:,} products, "
                        f"{targets:,} targets")  # fmt: skip
    for heading in ("traded", "trades", "approach", "valued", "MdAE %", "cover80 %", "ratio",
                    "COD"):  # fmt: skip
        table.add_column(heading, justify="left" if heading == "approach" else "right")
    for row in rows:
        cells = row.csv_row()
        table.add_row(f"{row.traded_share:.0%}", *cells[3:6], *(c or "-" for c in cells[6:10]),
                      end_section=row.approach == APPROACHES[-1])  # fmt: skip
    Console().print(table)


def _print_confidential_study(
    rows: list[StudyRow], seed: int, products: int, targets: int, confidential: float
) -> None:
    """The concluded value's rows only: the CSV holds every approach."""
    table = Table(title=f"Accuracy against liquidity, {confidential:.0%} of trades confidential "
                        f"(concluded value): seed {seed}, {products:,} products, "
                        f"{targets:,} targets")  # fmt: skip
    for heading in ("traded", "use", "targets", "valued", "conf. used", "MdAE %", "cover80 %",
                    "ratio", "COD"):  # fmt: skip
        table.add_column(heading, justify="left" if heading in ("use", "targets") else "right")
    for row in rows:
        if row.approach != "reconciled":
            continue
        cells = row.csv_row()
        table.add_row(f"{row.traded_share:.0%}", row.confidential_use, row.subset,
                      str(row.targets_valued), f"{row.confidential_used}/{row.confidential_trades}",
                      *(c or "-" for c in cells[6:10]),
                      end_section=row.subset == "confidential"
                      and row.confidential_use == USES[-1])  # fmt: skip
    Console().print(table)


def _write_study_csv(rows: list[StudyRow], path: Path) -> None:
    with replacing_text(path) as file:
        write_csv(rows, file)


def _as_of_date(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        fail(f"--as-of {text!r} is not an ISO date (YYYY-MM-DD)")


def _valuation_day(as_of: dt.date | None, trades: list[TradeRecord]) -> dt.date:
    """``as_of`` if given, else the day of the last of ``trades``, else today (UTC)."""
    from exchange.valuation_inputs import utc_today

    if as_of is not None:
        return as_of
    return max((trade.traded_at for trade in trades), default=utc_today())


def _publish(report: ValuationReport, json_out: Path | None, html_out: Path | None) -> None:
    """Write the report where asked, and print its summary."""
    for output, text in ((json_out, report.to_json), (html_out, lambda: render_report(report))):
        if output is not None:
            _guarded(lambda output=output, text=text: _write_text(output, text()))
    for line in summary_lines(report):
        typer.echo(line)


def summary_lines(report: ValuationReport) -> Iterator[str]:
    """The report as plain text: the value, its range, the table and the reconciliation."""
    yield f"{report.product.product_id}, {report.terms.label()}, on {report.as_of.isoformat()}"
    yield (
        f"value {report.value:,.2f} ({report.method}), 80% range {report.low:,.2f} - "
        f"{report.high:,.2f}, expected error +-{report.expected_error_pct:.1f}%"
    )
    if report.comparables:
        short = {"supply_demand": "s-d", "exclusivity": "excl", "territory": "terr"}
        factor_head = " ".join(f"{short.get(n, n)[:6]:>6}" for n in FACTOR_NAMES)
        yield (
            f"{'#':>2} {'product':<14} {'terms':<34} {'price':>11} {factor_head} "
            f"{'total':>6} {'adjusted':>11} {'weight':>6}"
        )
        for row in report.comparables:
            factors = " ".join(f"{row.factors[n]:>6.3f}" for n in FACTOR_NAMES)
            yield (
                f"{row.rank:>2} {row.comparable.product_id[:14]:<14} "
                f"{row.comparable.terms.label()[:34]:<34} {row.comparable.price:>11,.2f} "
                f"{factors} {row.total_factor:>6.3f} {row.adjusted_price:>11,.2f} "
                f"{row.weight:>6.3f}"
            )
    for flag in report.flags:
        yield f"flag: {flag}"
    yield from report.reconciliation.explanation


def _read_market_files(
    products: Path, trades: Path
) -> tuple[dict[str, ProductRecord], list[TradeRecord]]:
    product_records = _guarded(lambda: read_products(products))
    trade_records = _guarded(lambda: read_trades(trades, product_records))
    return product_records, trade_records


def _prepare(
    products: dict[str, ProductRecord], trades: list[TradeRecord], as_of: dt.date
) -> Market:
    try:
        return prepare_market(products.values(), trades, as_of=as_of)
    except ValueError as error:  # the readers validate every record, so this is unexpected
        fail(f"cannot prepare the market on {as_of.isoformat()}: {error}")


def _value(
    market: Market, products: dict[str, ProductRecord], row: TargetRow, path: Path
) -> ValuationReport:
    target = TargetSpec(products[row.product_id], row.terms, row.as_of, income=row.income)
    try:
        return value(market, target)
    except ValueError as error:
        fail(f"{path}:{row.line}: {error}")


def _guarded(action: Callable[[], T]) -> T:
    """Run a file action, turning file errors into one line and exit status 2."""
    try:
        return action()
    except CsvFileError as error:
        fail(str(error))
    except OSError as error:
        fail(f"{error.filename}: {error.strerror}" if error.filename else str(error))


def _safe(name: str) -> str:
    """A product id as a file-name part: letters, digits, '.', '_' and '-' only."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:80]


def _write_text(path: Path, text: str) -> None:
    with replacing_text(path) as file:
        file.write(text)
