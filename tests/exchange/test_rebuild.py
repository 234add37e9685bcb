"""A ledger written when holds for open orders were ledger entries: refused at open with the
way out, and carried into a new database by ``dataex ledger rebuild`` from its journal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange import commands as c
from exchange.cli import app
from exchange.rebuild import rebuild
from exchange.recovery import RecoveryError, recover
from ledger import Entry, LedgerFormatError, Posting, accounts, entries
from ledger.database import create_engine, dispose_engines
from ledger.schema import migrate
from ledger.store import Ledger
from ledger.verify import verify
from tests.exchange.helpers import Market, assert_same_state, build_ready_market, buy, sell

runner = CliRunner()


def old_format(entry: Entry) -> Entry:
    """``entry`` as the older format posted it: cash in a participant's available account."""
    postings = tuple(
        Posting(f"{account}:available", asset, amount)
        if account.startswith("participant:") and account.endswith(":cash")
        else Posting(account, asset, amount)
        for account, asset, amount in entry.postings
    )
    return Entry(entry.kind, entry.key, entry.ts_ns, entry.body, postings)


@pytest.fixture
def market() -> Market:
    """A market with trades, a resting buy and a resale, driven in memory."""
    market = Market()
    build_ready_market(market.execute)
    market.execute(sell("prov", "p1", 1_000, 5))
    market.execute(buy("ann", "a1", 1_000, 3))
    market.execute(buy("bob", "b1", 900, 4))
    market.execute(sell("ann", "a2", 1_200, 2))
    market.execute(c.CancelOrder("bob", 3))
    return market


@pytest.fixture
def old_database(
    market: Market, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """``market``'s journal and entries written as the older format left them: schema
    revision 0002 and cash in ``participant:<id>:cash:available`` accounts."""
    engine = create_engine(database_url)
    migrate(engine, revision="0002")
    # The older accounts are not ones this version writes: let them through, this once.
    current = accounts.asset_of
    monkeypatch.setattr(
        accounts, "asset_of",
        lambda account: accounts.CASH if account.endswith(":cash:available") else current(account),
    )  # fmt: skip
    old = Ledger(engine)
    journal = market.journal
    settled = [old_format(entry) for entry in market.entries]
    old.append(commands=journal, entries=settled)
    monkeypatch.undo()
    engine.dispose()
    yield database_url
    dispose_engines()


def test_an_old_ledger_is_refused_at_open_naming_the_rebuild(old_database: str) -> None:
    with pytest.raises(LedgerFormatError, match="dataex ledger rebuild --from OLD_URL"):
        Ledger.open(old_database)


def test_the_cli_refuses_an_old_ledger_in_one_line(old_database: str) -> None:
    result = runner.invoke(app, ["ledger", "verify", "--database", old_database])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("error: this database records order holds in the ledger")


def test_rebuild_carries_the_journal_and_settles_it_anew(
    old_database: str, market: Market, tmp_path: Path
) -> None:
    new_url = f"sqlite:///{tmp_path / 'rebuilt.db'}"
    result = runner.invoke(
        app, ["ledger", "rebuild", "--from", old_database, "--to", new_url]
    )
    assert result.exit_code == 0, result.output
    assert f"carried {len(market.journal)} journalled commands" in result.stdout
    rebuilt = Ledger.open(new_url)
    assert verify(rebuilt).ok
    assert rebuilt.size() == len(market.entries)
    assert_same_state(recover(rebuilt), market.exchange)
    [old_head] = Ledger(create_engine(old_database)).journal(len(market.journal), 1)
    [new_head] = rebuilt.journal(len(market.journal), 1)
    assert new_head.chain_hash == old_head.chain_hash


def test_rebuild_refuses_a_target_that_is_not_empty(market: Market, tmp_path: Path) -> None:
    source = Ledger.open(f"sqlite:///{tmp_path / 'a.db'}")
    source.append(commands=market.journal, entries=market.entries)
    target = Ledger.open(f"sqlite:///{tmp_path / 'b.db'}")
    target.append_entries([entries.deposit("ann", 1, key="d", ts_ns=1)])
    with pytest.raises(RecoveryError, match="not empty"):
        rebuild(source, target)
    dispose_engines()

