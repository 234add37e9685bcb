"""``dataex collateral report``: facilities rebuilt from a database's journal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange import commands as c
from exchange.cli import app
from exchange.cli.collateral import parse_as_of
from exchange.collateral import REMARK_DELAY_NS
from exchange.facility import DAY_NS
from exchange.facility_report import iso_time
from exchange.participants import OPERATOR
from exchange.sequencer import Sequencer
from ledger.database import dispose_engines
from ledger.store import Ledger
from tests.exchange.helpers import (
    START_NS,
    ManualClock,
    build_ready_market,
    buy,
    create_participant,
    sell,
)

runner = CliRunner()
PRICE = 100_000


@pytest.fixture
def database(database_url: str) -> str:
    """A facility to ann against ten pledged licences: drawn on day 0, marked daily, called
    for margin on day 1 when the price falls to 700.00 (SQLite, and PostgreSQL when
    configured)."""
    ledger = Ledger.open(database_url)
    clock = ManualClock()
    sequencer = Sequencer(ledger, clock=clock, housekeeping=False).start()
    try:
        run = sequencer.execute
        market = build_ready_market(run)
        run(create_participant("bank", "lender"))
        run(c.Deposit("admin", "bank", 5_000_000, "capital"))
        run(sell("prov", "p1", PRICE, 10))
        run(buy("ann", "a1", PRICE, 10))
        facility = run(c.CreateFacility(
            "bank", 0, "ann", 500_000, 500, START_NS + 180 * DAY_NS, 5_000, 6_500, 8_000,
            86_400, 3_600, {},
        )).result  # fmt: skip
        run(c.AcceptFacility("ann", facility.facility_id))
        run(c.PostValuation(OPERATOR, market.symbol, PRICE, 80_000, 120_000, 5, "market"))
        (expires,) = sequencer.exchange.risk.holdings[("ann", market.symbol)]
        run(c.PledgeLicences("ann", facility.facility_id, 0, market.symbol, 10, expires))
        run(c.DrawLoan("ann", facility.facility_id, 350_000))
        clock.now_ns = START_NS + DAY_NS + 3_600 * 10**9
        run(sell("prov", "p2", 70_000, 1))
        run(buy("bob", "b1", 70_000, 1))
        # Trades re-mark a second later, before the next command.
        clock.now_ns += 2 * REMARK_DELAY_NS
        run(c.Deposit("admin", "bank", 1, "fee"))
        assert str(sequencer.exchange.collateral.facilities[1].status) == "margin_call"
    finally:
        sequencer.stop()
        ledger.engine.dispose()
    return database_url


def _invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["collateral", "report", *args], env={"COLUMNS": "200"})
    dispose_engines()
    return result.exit_code, result.stdout, result.stderr


def test_the_report_shows_each_facility_its_pledges_marks_and_alerts(database: str) -> None:
    code, out, err = _invoke("--database", database)
    assert code == 0, err
    assert "1 facilities" in out
    assert "margin_call" in out and "bank" in out and "ann" in out
    assert "50/65/80%" in out  # the thresholds
    assert "ZJPARK.NX12" in out and "30.00%" in out  # the pledge's haircut
    assert "daily" in out  # the mark at 00:00 UTC on day 1


def test_the_json_report_gives_money_as_decimals_and_the_ltv_history(database: str) -> None:
    code, out, err = _invoke("--database", database, "--json")
    assert code == 0, err
    (facility,) = json.loads(out)["facilities"]
    assert facility["status"] == "margin_call"
    assert facility["drawn"] == "3500.00" and facility["limit"] == "5000.00"
    (pledge,) = facility["pledges"]
    assert (pledge["units"], pledge["haircut_bp"]) == (10, 3_000)
    ltvs = [mark["ltv_bp"] for mark in facility["marks"]]
    assert ltvs[-1] >= 6_500 > ltvs[0]
    assert [a["reason"] for a in facility["alerts"]] == ["margin_call"]
    assert facility["call_deadline"] is not None


def test_as_of_replays_only_up_to_that_date(database: str) -> None:
    day_zero = iso_time(START_NS)[:10]  # type: ignore[index]
    code, out, err = _invoke("--database", database, "--json", "--as-of", day_zero)
    assert code == 0, err
    (facility,) = json.loads(out)["facilities"]
    assert facility["status"] == "active"
    assert facility["alerts"] == []
    assert [mark["cause"] for mark in facility["marks"]] == ["facility"] * 3  # no daily mark
    assert json.loads(out)["as_of"] < iso_time(START_NS + DAY_NS)  # type: ignore[operator]


def test_the_page_is_self_contained_with_an_ltv_chart(database: str, tmp_path: Path) -> None:
    page = tmp_path / "facilities.html"
    code, _out, err = _invoke("--database", database, "--html", str(page))
    assert code == 0, err
    text = page.read_text()
    assert text.count("<svg") == 1 and "<polyline" in text
    assert "margin call 65%" in text and "liquidation 80%" in text
    assert "<script" not in text and "http" not in text.replace("http://www.w3.org", "")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--as-of", "yesterday"], "neither a date"),
        (["--html", "/no/such/dir/page.html"], "does not exist"),
    ],
)
def test_bad_input_is_one_error_line(database: str, args: list[str], words: str) -> None:
    code, _out, err = _invoke("--database", database, *args)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error:") and words in err


def test_a_missing_database_is_an_error_not_a_new_database(tmp_path: Path) -> None:
    code, _out, err = _invoke("--database", f"sqlite:///{tmp_path / 'none.db'}")
    assert code == 2 and err.startswith("error:")
    assert not (tmp_path / "none.db").exists()


def test_a_date_covers_its_whole_day() -> None:
    assert parse_as_of("2026-03-02") == parse_as_of("2026-03-02T23:59:59.999999Z") + 999
