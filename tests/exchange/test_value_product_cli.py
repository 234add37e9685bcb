"""``dataex value product``: a catalogue product valued from the exchange's own trades."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from exchange.cli import app
from ledger.database import dispose_engines
from tests.exchange.helpers import build_ready_market, buy, sell, sequenced

runner = CliRunner()


def test_value_product_reads_the_database_and_writes_the_report(tmp_path: Path) -> None:
    with sequenced(tmp_path) as (sequencer, _ledger, _clock):
        build_ready_market(sequencer.execute)
        for i in range(4):
            sequencer.execute(sell("prov", f"s{i}", 1_000 + 100 * i, 2))
            sequencer.execute(buy("ann", f"b{i}", 1_000 + 100 * i, 2))
        product_id = next(iter(sequencer.exchange.products))
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    report_path = tmp_path / "report.json"
    result = runner.invoke(app, ["value", "product", product_id, "--database", url,
                                 "--as-of", "2026-11-28", "--json", str(report_path)])  # fmt: skip
    dispose_engines()
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["product"]["product_id"] == product_id
    assert report["low"] <= report["value"] <= report["high"]
    assert f"{product_id}, non_exclusive 12m internal domestic" in result.output


def test_value_product_of_an_unknown_product_is_an_error_line(tmp_path: Path) -> None:
    with sequenced(tmp_path) as (sequencer, _ledger, _clock):
        build_ready_market(sequencer.execute)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    result = runner.invoke(app, ["value", "product", "P999", "--database", url])
    dispose_engines()
    assert result.exit_code == 2
    assert "the catalogue has no product 'P999'" in result.output


def test_value_product_is_valued_on_the_last_trades_day_by_default(tmp_path: Path) -> None:
    from exchange.valuation_inputs import pricing_records

    with sequenced(tmp_path) as (sequencer, _ledger, _clock):
        build_ready_market(sequencer.execute)
        for i in range(3):
            sequencer.execute(sell("prov", f"s{i}", 1_000 + 100 * i, 2))
            sequencer.execute(buy("ann", f"b{i}", 1_000 + 100 * i, 2))
        product_id = next(iter(sequencer.exchange.products))
        _products, trades = pricing_records(sequencer.exchange)
    last_day = max(trade.traded_at for trade in trades)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    result = runner.invoke(app, ["value", "product", product_id, "--database", url])
    dispose_engines()
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].endswith(f", on {last_day.isoformat()}")


def test_value_product_and_report_document_the_same_as_of_default() -> None:
    value_group = typer.main.get_command(app).commands["value"]  # type: ignore[attr-defined]

    def as_of(command: str) -> tuple[str | None, object]:
        option = next(p for p in value_group.commands[command].params if p.name == "as_of")
        return option.help, option.default

    assert as_of("product") == as_of("report")
    assert "default: the day of the market's last trade" in (as_of("product")[0] or "")
