"""Counterfactual replay: the recorded flow executed under other rules, compared with the
original (``dataex replay --counterfactual``)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.cli import app
from exchange.research import DatabaseJournal, InputError
from exchange.research.counterfactual import compare, load_rules
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
