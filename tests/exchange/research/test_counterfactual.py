"""Counterfactual replay: the recorded flow executed under other rules, compared with the
original (``dataex replay --counterfactual``)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.cli import app
from exchange.research import DatabaseJournal, InputError
from exchange.research.counterfactual import compare, load_rules, load_truth
from ledger.store import Ledger
from tests.exchange.helpers import SYMBOL
from tests.exchange.research.conftest import AUCTION_SYMBOL, Recorded

runner = CliRunner()


def rules_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


def counterfactual(recorded: Recorded, tmp_path: Path, text: str, *args: str):
    path = rules_file(tmp_path, text)
    return runner.invoke(
        app, ["replay", "--database", recorded.url, "--counterfactual", str(path), *args]
    )


def test_rules_that_restate_the_recorded_ones_reproduce_the_original_figures(
    recorded_sqlite: Recorded, tmp_path: Path
) -> None:
    # The recorded market lists both instruments with a tick of 1.00 and a lot of 1.
    path = rules_file(
        tmp_path,
        f'[instruments."{SYMBOL}"]\ntick_size_minor = 100\nlot_size_units = 1\n'
        f'[instruments."{AUCTION_SYMBOL}"]\ntick_size_minor = 100\n',
    )
    comparison = compare(DatabaseJournal(Ledger.open(recorded_sqlite.url)), load_rules(path), path)
    assert comparison.counterfactual.figures == comparison.original.figures
    original = comparison.original.figures[SYMBOL]
    # All five trades of the continuous book, and the auction's two fills, are measured.
    assert (original.trades, original.volume_units) == (5, 15)
    assert comparison.original.figures[AUCTION_SYMBOL].trades == 2
    assert original.spread_mean_minor is not None and original.volatility_bp is not None
    after = comparison.counterfactual
    assert (after.refused_by_rules, after.refused_other, after.skipped) == ({}, {}, 0)


def test_a_coarser_tick_refuses_the_orders_off_it_and_changes_the_figures(
    recorded_sqlite: Recorded, tmp_path: Path
) -> None:
    out = tmp_path / "comparison.csv"
    result = counterfactual(
        recorded_sqlite, tmp_path, f'[instruments."{SYMBOL}"]\ntick_size_minor = 1000\n',
        "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # ann's IOC buy at 505.00 and her resale at 515.00 are off a 10.00 tick.
    assert "refused:     2 orders and amendments off the new tick or lot grid" in result.stdout
    with out.open() as file:
        table = {row["figure"]: row for row in csv.DictReader(file)}
    assert table["refused by the new rules"]["counterfactual"] == "2"
    assert (table["trades"]["original"], table["trades"]["counterfactual"]) == ("5", "3")
    assert table["volume (units)"]["original"] == "15"
    assert table["volume (units)"]["counterfactual"] == "9"
    assert table["orders accepted"]["counterfactual"] == "8"
    spread = table["mean spread (minor)"]
    assert spread["original"] != spread["counterfactual"]


def test_a_continuous_book_switched_to_periodic_auctions_uncrosses_on_the_interval(
    recorded_sqlite: Recorded, tmp_path: Path
) -> None:
    path = rules_file(tmp_path, f'[instruments."{SYMBOL}"]\nauction_interval_s = 1800\n')
    comparison = compare(DatabaseJournal(Ledger.open(recorded_sqlite.url)), load_rules(path), path)
    after = comparison.counterfactual
    assert after.uncrosses > 0
    # Market and IOC orders have no place in a call auction: refused, and said so.
    assert after.refused_other.get("MATCHING_ORDER_TYPE_NOT_ALLOWED", 0) > 0
    figures = after.figures[SYMBOL]
    assert 0 < figures.trades < comparison.original.figures[SYMBOL].trades


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f'[instruments."{SYMBOL}"]\ntick = 5\n', f"instruments.{SYMBOL}.tick: unknown key"),
        ('[instruments."NOPE.X"]\ntick_size_minor = 5\n',
         "instruments.NOPE.X: the journal lists no such instrument"),
        (f'[instruments."{SYMBOL}"]\nfee_rate_bp = -1\n',
         f"instruments.{SYMBOL}.fee_rate_bp: must be an integer from 0 to 10000, not -1"),
        (f'[instruments."{SYMBOL}"]\nlot_size_units = "2"\n',
         f"instruments.{SYMBOL}.lot_size_units: must be an integer"),
        ("speed = 1\n", "speed: unknown key"),
        ("[instruments\n", "not TOML"),
    ],
)  # fmt: skip
def test_a_bad_rules_file_is_one_error_line_naming_file_and_key(
    recorded_sqlite: Recorded, tmp_path: Path, text: str, message: str
) -> None:
    result = counterfactual(recorded_sqlite, tmp_path, text)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'rules.toml'}: ")
    assert message in lines[0]
    assert result.stdout == ""


def test_rules_the_listing_cannot_take_are_refused_as_input(
    recorded_sqlite: Recorded, tmp_path: Path
) -> None:
    path = rules_file(tmp_path, f'[instruments."{SYMBOL}"]\nlot_size_units = 7\n')
    with pytest.raises(InputError, match=f"instruments.{SYMBOL}: the exchange refuses"):
        compare(DatabaseJournal(Ledger.open(recorded_sqlite.url)), load_rules(path), path)


def test_a_continuous_book_switched_to_sealed_bids_awards_them_at_each_close(
    recorded_sqlite: Recorded, tmp_path: Path
) -> None:
    path = rules_file(
        tmp_path,
        f'[instruments."{SYMBOL}"]\ntrading_mode = "sealed_bid"\nauction_interval_s = 1800\n'
        'sealed_bid_pricing = "second_price"\n',
    )
    comparison = compare(DatabaseJournal(Ledger.open(recorded_sqlite.url)), load_rules(path), path)
    after = comparison.counterfactual
    assert after.uncrosses > 0
    figures = after.figures[SYMBOL]
    # A sealed book quotes nothing, so it has no spread; its bids still meet the offers.
    assert figures.spread_mean_minor is None
    assert comparison.original.figures[SYMBOL].spread_mean_minor is not None
    assert figures.trades > 0
    # The market and IOC orders have no place among sealed bids: refused, and said so.
    assert after.refused_other.get("MATCHING_ORDER_TYPE_NOT_ALLOWED", 0) > 0


def test_sealed_bid_pricing_decides_what_the_winner_pays(
    recorded_sqlite: Recorded, tmp_path: Path
) -> None:
    prices = {}
    for pricing in ("first_price", "second_price"):
        path = rules_file(
            tmp_path,
            f'[instruments."{SYMBOL}"]\ntrading_mode = "sealed_bid"\n'
            f'auction_interval_s = 1800\nsealed_bid_pricing = "{pricing}"\n',
        )
        journal = DatabaseJournal(Ledger.open(recorded_sqlite.url))
        figures = compare(journal, load_rules(path), path).counterfactual.figures[SYMBOL]
        prices[pricing] = (figures.trades, figures.last_price_minor)
    # The same bids win either way; the first price pays a bid, at least the second price.
    assert prices["first_price"][0] == prices["second_price"][0]
    assert prices["first_price"][1] >= prices["second_price"][1]


def summary_file(tmp_path: Path, journal_hash: str, true_values: dict[str, float]) -> Path:
    """A simulation's summary.json as ``dataex simulate --report`` writes it, in part."""
    path = tmp_path / "summary.json"
    rows = [{"symbol": symbol, "true_value": value} for symbol, value in true_values.items()]
    path.write_text(json.dumps({"journal_hash": journal_hash, "instruments": rows}))
    return path


def last_journal_hash(url: str) -> str:
    ledger = Ledger.open(url)
    (last,) = ledger.journal(ledger.journal_head_seq(), limit=1)
    return last.chain_hash.hex()


def test_against_the_truth_the_last_price_and_the_market_approach_have_errors(
    recorded_sqlite: Recorded, tmp_path: Path
) -> None:
    truth_path = summary_file(
        tmp_path, last_journal_hash(recorded_sqlite.url), {SYMBOL: 500.0, AUCTION_SYMBOL: 300.0}
    )
    path = rules_file(tmp_path, f'[instruments."{SYMBOL}"]\ntick_size_minor = 1000\n')
    comparison = compare(
        DatabaseJournal(Ledger.open(recorded_sqlite.url)), load_rules(path), path,
        load_truth(truth_path),
    )  # fmt: skip
    before, after = comparison.original.figures[SYMBOL], comparison.counterfactual.figures[SYMBOL]
    # The record's last print is bob's market buy at prov's 520.00: 4% over a truth of 500.00.
    assert before.true_value_minor == after.true_value_minor == 50_000
    assert before.last_price_minor == 52_000
    assert before.last_price_error_pct == pytest.approx(4.0)
    for figures in (before, after):
        assert figures.valuation_minor is not None and figures.valuation_minor > 0
        assert figures.valuation_method in ("market", "cost_fallback")
        assert figures.valuation_error_pct == pytest.approx(
            100 * (figures.valuation_minor / 50_000 - 1)
        )
        assert figures.last_price_error_pct == pytest.approx(
            100 * (figures.last_price_minor / 50_000 - 1)
        )


def test_a_truth_of_another_run_is_refused(recorded_sqlite: Recorded, tmp_path: Path) -> None:
    truth_path = summary_file(tmp_path, "ab" * 32, {SYMBOL: 500.0})
    result = counterfactual(
        recorded_sqlite, tmp_path, f'[instruments."{SYMBOL}"]\ntick_size_minor = 1000\n',
        "--truth", str(truth_path),
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {truth_path}: describes the run whose journal")


def test_the_html_report_is_self_contained_and_holds_the_table(
    recorded_sqlite: Recorded, tmp_path: Path
) -> None:
    truth_path = summary_file(tmp_path, last_journal_hash(recorded_sqlite.url), {SYMBOL: 500.0})
    page, out = tmp_path / "comparison.html", tmp_path / "comparison.csv"
    result = counterfactual(
        recorded_sqlite, tmp_path,
        f'[instruments."{SYMBOL}"]\ntrading_mode = "sealed_bid"\nauction_interval_s = 1800\n',
        "--truth", str(truth_path), "--html", str(page), "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    html = page.read_text(encoding="utf-8")
    # Nothing to fetch: no scripts, style sheets, images or fonts from elsewhere.
    for fetch in ("<script", "<link", "src=", "@import", "url("):
        assert fetch not in html
    assert "<svg" in html and "What this comparison can and cannot say" in html
    with out.open() as file:
        for row in csv.DictReader(file):
            cells = (row["figure"], row["original"], row["counterfactual"])
            assert "".join(f"<td>{cells[0]}</td>") in html
            for cell in cells[1:]:
                assert f'<td class="n">{cell}</td>' in html


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('trading_mode = "sealed_bid"\n',
         "auction_interval_s: sealed_bid needs the interval between its auctions"),
        ('trading_mode = "continuous"\nauction_interval_s = 60\n',
         "trading_mode: must be one of call_auction, sealed_bid"),
        ('sealed_bid_pricing = "first_price"\nauction_interval_s = 60\n',
         'sealed_bid_pricing: goes with trading_mode = "sealed_bid"'),
        ('trading_mode = "sealed_bid"\nauction_interval_s = 60\nsealed_bid_pricing = "third"\n',
         "sealed_bid_pricing: must be one of first_price, second_price"),
    ],
)  # fmt: skip
def test_a_bad_market_design_is_one_error_line(
    recorded_sqlite: Recorded, tmp_path: Path, text: str, message: str
) -> None:
    result = counterfactual(recorded_sqlite, tmp_path, f'[instruments."{SYMBOL}"]\n{text}')
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: {tmp_path / 'rules.toml'}: instruments.{SYMBOL}.{message}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ('{"instruments": []}', "not a simulation's summary.json"),
        ('{"journal_hash": "00", "instruments": [{"symbol": "X"}]}',
         "instruments[0]: needs a symbol and a positive true_value"),
    ],
)  # fmt: skip
def test_a_truth_file_that_is_not_a_summary_is_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "summary.json"
    path.write_text(text)
    with pytest.raises(InputError, match=re.escape(f"{path}: {message}")):
        load_truth(path)


def test_an_auction_instruments_recorded_uncrosses_give_way_to_the_new_schedule(
    recorded_sqlite: Recorded, tmp_path: Path
) -> None:
    path = rules_file(
        tmp_path,
        f'[instruments."{AUCTION_SYMBOL}"]\ntrading_mode = "sealed_bid"\n'
        "auction_interval_s = 86400\n",
    )
    comparison = compare(DatabaseJournal(Ledger.open(recorded_sqlite.url)), load_rules(path), path)
    after = comparison.counterfactual
    # The record uncrosses the auction book once; a day's interval never comes due in it.
    assert comparison.original.recorded_uncrosses_replaced == 0
    assert after.recorded_uncrosses_replaced == 1
    assert (after.uncrosses, after.figures[AUCTION_SYMBOL].trades) == (0, 0)
    assert comparison.original.figures[AUCTION_SYMBOL].trades == 2
