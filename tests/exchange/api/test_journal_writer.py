"""The server with its batches written by a journal-writer process: orders trade, settle and
are journalled exactly as with the inline writer; a setting it does not know is refused."""

from __future__ import annotations

import pytest

from exchange.settings import Settings
from ledger.store import Ledger
from ledger.verify import verify
from tests.exchange.api.helpers import BUYERS, PROVIDER, serve


def test_orders_trade_and_settle_through_a_writer_process(database_url: str) -> None:
    with serve(database_url, journal_writer="process") as api:
        api.market()
        buyer = BUYERS[0]
        api.placed(PROVIDER, "s-1", "sell", "100.00", 3)
        bought = api.placed(buyer, "b-1", "buy", "100.00", 2)
        assert bought["status"] == "filled"
        balances = api.balances(buyer)
        assert [h["units"] for h in balances["holdings"]] == [2]
        journalled = api.journal_seq()
    ledger = Ledger.open(database_url)
    assert ledger.journal_head_seq() == journalled
    assert verify(ledger).ok


def test_an_unknown_journal_writer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAEX_JOURNAL_WRITER", "thread")
    with pytest.raises(ValueError, match="the journal writer is one of inline, process"):
        Settings.from_env("sqlite://")
