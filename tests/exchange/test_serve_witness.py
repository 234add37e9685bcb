"""``dataex serve`` keeps a witness of its database and refuses to start on a database rolled
back behind it, in one line; the same database without its witness starts, which is the
attack the witness is there for."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from ledger.database import dispose_engines
from ledger.guards import restore_guards
from ledger.store import Ledger
from ledger.verify import verify
from ledger.witness import Checkpoint, database_trees, default_witness_path, read_witness

from .serverproc import (
    DATAEX,
    HOST,
    HTTP_TIMEOUT_S,
    STOP_TIMEOUT_S,
    ServerProcess,
    create_admin,
    free_port,
)

REFUSAL_TIMEOUT_S = 60.0
# uvicorn shuts down on SIGTERM, then ends by the signal it was sent.
ORDERLY_EXIT = (0, -signal.SIGTERM)


def roll_back_the_last_command(ledger: Ledger) -> None:
    """Delete the last journal command and the one entry it settled (a deposit), and
    rebuild the balances: a database that verifies and replays."""
    with ledger.engine.begin() as connection:
        for table in ("ledger_journal", "ledger_entry", "ledger_posting"):
            if ledger.engine.dialect.name == "sqlite":
                connection.exec_driver_sql(f"DROP TRIGGER {table}_no_delete")
            else:
                connection.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER {table}_no_change")
        entry_seq = ledger.size()
        connection.exec_driver_sql(f"DELETE FROM ledger_posting WHERE entry_seq = {entry_seq}")
        connection.exec_driver_sql(f"DELETE FROM ledger_entry WHERE seq = {entry_seq}")
        connection.exec_driver_sql(
            f"DELETE FROM ledger_journal WHERE seq = {ledger.journal_head_seq()}"
        )
    ledger.rebuild_balances()
    # A careful forger puts the triggers back: then only the witness can tell.
    restore_guards(ledger.engine)


def post(server: ServerProcess, key: str, path: str, body: dict) -> None:
    """A POST that must be acknowledged (201)."""
    with httpx.Client(
        base_url=server.base_url, timeout=HTTP_TIMEOUT_S, headers={"X-API-Key": key}
    ) as client:
        response = client.post(path, json=body)
    assert response.status_code == 201, response.text


def assert_witnessed(ledger: Ledger, witness: Path) -> Checkpoint:
    """The witness's last checkpoint, which must be the database's digests."""
    trees = database_trees(ledger)
    last = read_witness(witness).checkpoint
    assert last is not None
    assert (last.journal, last.ledger) == (trees.journal.digest(), trees.ledger.digest())
    return last


def test_serve_witnesses_its_commits_and_refuses_a_rolled_back_database(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A PostgreSQL database's default witness lives under the user's data directory.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    witness = default_witness_path(database_url)
    assert witness is not None
    admin_key = create_admin(database_url)
    server = ServerProcess.start(database_url, tmp_path / "serve.log")
    try:
        post(server, admin_key, "/v1/participants",
             {"participant_id": "ann", "name": "Ann", "roles": ["buyer"]})
        post(server, admin_key, "/v1/deposits",
             {"participant_id": "ann", "amount": "100.00", "reference": "wire 1"})  # fmt: skip
    finally:
        assert server.stop() in ORDERLY_EXIT, server.log()
    ledger = Ledger.open(database_url)
    last = assert_witnessed(ledger, witness)  # the stop wrote the last commit's checkpoint

    roll_back_the_last_command(ledger)
    assert verify(ledger).ok
    dispose_engines()
    refused = subprocess.run(
        [str(DATAEX), "serve", "--host", HOST, "--port", str(free_port()),
         "--database", database_url],
        capture_output=True, text=True, timeout=REFUSAL_TIMEOUT_S, check=False,
    )  # fmt: skip
    output = (refused.stdout + refused.stderr).strip()
    assert refused.returncode == 1, output
    assert output.count("\n") == 0, output  # one line, no traceback
    assert output.startswith(f"error: witness {witness}: the database does not extend {last}")
    assert "rolled back or truncated" in output

    # Without its witness the same database starts: nothing else would have noticed.
    witness.rename(witness.with_name("kept-aside.witness"))
    server = ServerProcess.start(database_url, tmp_path / "unwitnessed.log")
    assert server.stop() in ORDERLY_EXIT, server.log()


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_a_stop_signal_to_the_whole_server_stops_it_with_its_last_checkpoint(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop_signal: int
) -> None:
    """Ctrl-C at a terminal, or a service manager's stop, signals every process of the
    server, the witness's too: the server still stops in time, and the witness holds its
    last commit."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    witness = default_witness_path(database_url)
    assert witness is not None
    admin_key = create_admin(database_url)
    server = ServerProcess.start(database_url, tmp_path / "serve.log", own_group=True)
    try:
        post(server, admin_key, "/v1/participants",
             {"participant_id": "ann", "name": "Ann", "roles": ["buyer"]})  # fmt: skip
        os.killpg(server.pid, stop_signal)
        status = server.process.wait(timeout=STOP_TIMEOUT_S)
    finally:
        server.kill()
    assert status in (0, -stop_signal), server.log()
    assert_witnessed(Ledger.open(database_url), witness)
