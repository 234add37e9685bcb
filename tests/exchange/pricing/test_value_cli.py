"""``dataex value batch`` and ``dataex value report``: files in, valuations out, and every
bad file named by file, line and column with exit status 2."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.cli import app
from exchange.pricing.csvio import PRODUCT_COLUMNS, TRADE_COLUMNS, VALUATION_COLUMNS
from tests.exchange.pricing.helpers import END, synthetic_history

runner = CliRunner()
TARGET_HEADER = "product_id,exclusivity,duration_months,scope,territory,as_of"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Products (the last five never trade), trades and targets of a synthetic trade history."""
    folder = tmp_path_factory.mktemp("value")
    products, trades = synthetic_history(seed=21, products=60, trades=700)
    untraded = {p.product_id for p in products[-5:]}
    trades = [t for t in trades if t.product_id not in untraded]
    with (folder / "products.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(PRODUCT_COLUMNS)
        for p in products:
            frequency = (
                "realtime"
                if p.update_frequency.value == "real_time"
                else (p.update_frequency.value)
            )
            writer.writerow([p.product_id, p.category, p.region, p.record_count,
                             p.coverage_months, frequency, *p.quality(), p.cost_basis])  # fmt: skip
    with (folder / "trades.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(TRADE_COLUMNS)
        for t in trades:
            writer.writerow([t.trade_id, t.product_id, t.terms.exclusivity.value,
                             t.terms.duration_months, t.terms.scope.value,
                             t.terms.territory.value, f"{t.price:.4f}", t.quantity,
                             t.traded_at.isoformat()])  # fmt: skip
    rows = [f"{pid},non_exclusive,12,commercial,domestic,{END}" for pid in sorted(untraded)]
    rows.append(f"{sorted(untraded)[0]},exclusive,24,resale,cross_border,{END}")
    (folder / "targets.csv").write_text("\n".join([TARGET_HEADER, *rows]) + "\n")
    return {name: folder / f"{name}.csv" for name in ("products", "trades", "targets")}


def batch(files: dict[str, Path], out: Path, *extra: object, **replace: Path):
    paths = {**files, **replace}
    return runner.invoke(
        app,
        ["value", "batch", "--products", str(paths["products"]), "--trades",
         str(paths["trades"]), "--targets", str(paths["targets"]), "--out", str(out),
         *map(str, extra)],
    )  # fmt: skip


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_batch_values_every_target_with_the_required_columns(files, tmp_path):
    out = tmp_path / "valuations.csv"
    result = batch(files, out)
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    assert len(rows) == 6
    assert tuple(rows[0]) == VALUATION_COLUMNS
    for row in rows:
        assert row["method"] == "market"
        low, value, high = float(row["low"]), float(row["market_value"]), float(row["high"])
        assert low < value < high
        assert int(row["n_comparables"]) >= 3 and float(row["cost_value"]) > 0
    assert "valued 6 targets" in result.output


def test_batch_writes_one_html_report_per_target(files, tmp_path):
    pages = tmp_path / "pages"
    result = batch(files, tmp_path / "v.csv", "--html", pages)
    assert result.exit_code == 0, result.output
    written = sorted(pages.glob("*.html"))
    assert len(written) == 6
    assert '<table class="comparables">' in written[0].read_text()


def test_report_prints_the_table_and_writes_json_and_html(files, tmp_path):
    product_id = read_rows(files["targets"])[0]["product_id"]
    result = runner.invoke(
        app,
        ["value", "report", "--products", str(files["products"]), "--trades",
         str(files["trades"]), "--product-id", product_id, "--scope", "commercial",
         "--json", str(tmp_path / "r.json"), "--html", str(tmp_path / "r.html")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "80% range" in result.output and "adjusted" in result.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["product"]["product_id"] == product_id
    assert "<svg" in (tmp_path / "r.html").read_text()


def broken(files: dict[str, Path], tmp_path: Path, name: str, line: int, text: str) -> Path:
    """A copy of one input with line ``line`` (1-based) replaced by ``text``."""
    lines = files[name].read_text().splitlines()
    lines[line - 1] = text
    path = tmp_path / f"{name}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def error_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize(
    ("name", "line", "text", "column", "says"),
    [
        (
            "products",
            3,
            "P0001,energy,east,many,12,daily,0.9,0.9,0.9,0.9,100",
            "record_count",
            "not a whole number",
        ),
        (
            "products",
            4,
            "P0002,energy,east,1000,12,hourly,0.9,0.9,0.9,0.9,100",
            "update_frequency",
            "not one of",
        ),
        (
            "products",
            2,
            "P0000,energy,east,1000,12,daily,1.2,0.9,0.9,0.9,100",
            "completeness",
            "not in [0, 1]",
        ),
        (
            "products",
            5,
            "P0001,energy,east,1000,12,daily,0.9,0.9,0.9,0.9,100",
            "product_id",
            "appears twice",
        ),
        (
            "trades",
            3,
            "X1,NOPE,exclusive,12,internal,domestic,10,1,2026-01-01",
            "product_id",
            "not in the products file",
        ),
        (
            "trades",
            6,
            "X1,P0001,exclusive,12,internal,domestic,-3,1,2026-01-01",
            "price",
            "not in (0",
        ),
        (
            "trades",
            2,
            "X1,P0001,exclusive,12,internal,domestic,10,1,01/02/2026",
            "traded_at",
            "not an ISO date",
        ),
        (
            "trades",
            4,
            "X1,P0001,sometimes,12,internal,domestic,10,1,2026-01-01",
            "exclusivity",
            "not one of",
        ),
        (
            "trades",
            5,
            "X1,P0001,exclusive,0,internal,domestic,10,1,2026-01-01",
            "duration_months",
            "not in 1..600",
        ),
        ("targets", 2, "P0055,exclusive,12,everywhere,domestic,2026-06-30", "scope", "not one of"),
        ("targets", 3, "P0056,exclusive,12,internal,domestic,", "as_of", "is empty"),
    ],
)
def test_a_bad_value_is_named_by_file_line_and_column(
    files, tmp_path, name, line, text, column, says
):
    path = broken(files, tmp_path, name, line, text)
    message = error_line(batch(files, tmp_path / "out.csv", **{name: path}))
    assert message.startswith(f"error: {path}:{line}: column '{column}'"), message
    assert says in message
    assert not (tmp_path / "out.csv").exists(), "no output is written for a bad input"


def test_a_missing_column_is_named_on_the_header_line(files, tmp_path):
    lines = files["trades"].read_text().splitlines()
    lines = [",".join(line.split(",")[:-1]) for line in lines]  # drop traded_at
    path = tmp_path / "trades.csv"
    path.write_text("\n".join(lines) + "\n")
    message = error_line(batch(files, tmp_path / "out.csv", trades=path))
    assert message == f"error: {path}:1: column 'traded_at': the header has no such column"


def test_an_unknown_column_and_a_short_row_are_named(files, tmp_path):
    header = TARGET_HEADER + ",colour"
    path = tmp_path / "targets.csv"
    path.write_text(header + "\nP0055,exclusive,12,internal,domestic,2026-06-30,red\n")
    message = error_line(batch(files, tmp_path / "out.csv", targets=path))
    assert message.startswith(f"error: {path}:1: column 'colour': unknown column")
    path.write_text(TARGET_HEADER + "\n\nP0055,exclusive,12\n")
    message = error_line(batch(files, tmp_path / "out.csv", targets=path))
    assert message == f"error: {path}:3: 3 values for 6 columns"


def test_missing_and_non_utf8_files_are_errors_not_tracebacks(files, tmp_path):
    message = error_line(batch(files, tmp_path / "out.csv", trades=tmp_path / "absent.csv"))
    assert "absent.csv" in message
    path = tmp_path / "products.csv"
    path.write_bytes(files["products"].read_bytes() + b"P9,energy,\xff\xfe,1,1,daily,1,1,1,1,1\n")
    message = error_line(batch(files, tmp_path / "out.csv", products=path))
    assert f"{path}:62:" in message and "UTF-8" in message


def test_an_output_in_a_missing_directory_is_refused(files, tmp_path):
    message = error_line(batch(files, tmp_path / "nowhere" / "out.csv"))
    assert "does not exist" in message


def test_report_is_valued_on_the_last_trades_day_by_default(files, tmp_path):
    product_id = read_rows(files["targets"])[0]["product_id"]
    last_day = max(row["traded_at"][:10] for row in read_rows(files["trades"]))
    result = runner.invoke(
        app,
        ["value", "report", "--products", str(files["products"]), "--trades",
         str(files["trades"]), "--product-id", product_id],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].endswith(f", on {last_day}")


def test_report_without_trades_is_valued_today(files, tmp_path):
    from exchange.valuation_inputs import utc_today

    product_id = read_rows(files["targets"])[0]["product_id"]
    no_trades = tmp_path / "trades.csv"
    no_trades.write_text(",".join(TRADE_COLUMNS) + "\n")
    result = runner.invoke(
        app,
        ["value", "report", "--products", str(files["products"]), "--trades", str(no_trades),
         "--product-id", product_id],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].endswith(f", on {utc_today().isoformat()}")
