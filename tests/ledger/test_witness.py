"""The witness: checkpoints kept outside the database refuse a database rolled back,
truncated or rewritten, which the database's own hashes cannot, since whoever rewrites rows
can recompute them. Each attack below passes ``verify`` first: without the witness nothing
would notice it."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from hashlib import sha256
from pathlib import Path

import pytest
from typer.testing import CliRunner

from exchange.cli.ledger import app
from ledger import GENESIS_HASH, entries, leaf_hash
from ledger.database import dispose_engines
from ledger.guards import restore_guards
from ledger.merkle import MerkleFrontier, MerkleTree, root_hash
from ledger.store import Ledger
from ledger.verify import verify
from ledger.witness import (
    STOP_SIGNALS,
    Checkpoint,
    Checkpointer,
    WitnessError,
    check_witness,
    database_trees,
    default_witness_path,
    read_witness,
)
from tests.ledger.helpers import funded_ledger, trade

MARKER = "bank-ref-000042"
runner = CliRunner()


@pytest.fixture
def witness_path(tmp_path: Path) -> Path:
    return tmp_path / "witness" / "ledger.witness"


@pytest.fixture
def witnessed(ledger: Ledger, witness_path: Path) -> Ledger:
    """A ledger whose every commit a checkpointer has witnessed, as a server does: eight
    entries (entry 4 carries ``MARKER``) and four journal commands, then stopped."""
    checkpointer = Checkpointer(ledger, witness_path, interval_s=0.01).start()
    funded_ledger(ledger, "ann", "bob")  # entries 1..3
    checkpointer.notify()
    ledger.append(
        commands=[(1, {"verb": "deposit", "participant": "cy"})],
        entries=[entries.deposit("cy", 77, key="dep-cy", ts_ns=4, reference=MARKER)],
    )
    checkpointer.notify()
    ledger.append(commands=[(2, {"verb": "new_order"})], entries=[trade(1), trade(2)])
    ledger.append(
        commands=[(3, {"verb": "new_order"}), (4, {"verb": "cancel"})],
        entries=[trade(3), trade(4, buyer="bob")],
    )
    checkpointer.notify()
    checkpointer.stop()
    return ledger


def behind_the_triggers(ledger: Ledger) -> None:
    """Go behind the application's back: switch the append-only triggers off."""
    with ledger.engine.begin() as connection:
        for table in ("ledger_journal", "ledger_entry", "ledger_posting"):
            if ledger.engine.dialect.name == "sqlite":
                for operation in ("update", "delete"):
                    connection.exec_driver_sql(f"DROP TRIGGER {table}_no_{operation}")
            else:
                connection.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER {table}_no_change")


def cut_the_tail(ledger: Ledger, *, commands: int, entries_: int) -> None:
    """Roll back: delete the last commands and entries (with their postings) and rebuild
    the balances, leaving a database that verifies."""
    behind_the_triggers(ledger)
    journal_keep = ledger.journal_head_seq() - commands
    entry_keep = ledger.size() - entries_
    with ledger.engine.begin() as connection:
        connection.exec_driver_sql(f"DELETE FROM ledger_posting WHERE entry_seq > {entry_keep}")
        connection.exec_driver_sql(f"DELETE FROM ledger_entry WHERE seq > {entry_keep}")
        connection.exec_driver_sql(f"DELETE FROM ledger_journal WHERE seq > {journal_keep}")
    ledger.rebuild_balances()
    # A careful forger puts the triggers back: then only the witness can tell.
    restore_guards(ledger.engine)


def rewrite_entry(ledger: Ledger, seq: int, old: str, new: str) -> None:
    """Change entry ``seq``'s body and recompute the chain hashes of it and of every entry
    after it, leaving a database that verifies."""
    behind_the_triggers(ledger)
    mark = "?" if ledger.engine.dialect.name == "sqlite" else "%s"
    update = f"UPDATE ledger_entry SET {{column}} = {mark} WHERE seq = {mark}"
    stored = ledger.entry(seq)
    assert stored is not None and old in stored.body_json
    with ledger.engine.begin() as connection:
        connection.exec_driver_sql(
            update.format(column="body"), (stored.body_json.replace(old, new), seq)
        )
    before = ledger.entry(seq - 1)
    previous = before.chain_hash if before is not None else GENESIS_HASH
    for later in range(seq, ledger.size() + 1):
        stored = ledger.entry(later)
        assert stored is not None
        previous = sha256(previous + stored.document).digest()
        with ledger.engine.begin() as connection:
            connection.exec_driver_sql(update.format(column="chain_hash"), (previous, later))
    restore_guards(ledger.engine)  # as in cut_the_tail


def invoke_verify(database_url: str, *args: str):
    result = runner.invoke(app, ["verify", "--database", database_url, "--workers", "1", *args])
    dispose_engines()
    return result


# -- the frontier ---------------------------------------------------------------------------


def test_a_frontier_grows_to_the_root_of_every_size_and_continues_a_tree() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(70)]
    frontier = MerkleFrontier()
    for size in range(len(leaves) + 1):
        assert frontier.size == size
        assert frontier.root() == root_hash(leaves[:size])
        continued = MerkleFrontier.of_tree(MerkleTree(leaves[:size]))
        assert continued.root() == frontier.root()
        for leaf in leaves[size : size + 3]:
            continued.append(leaf)
        assert continued.root() == root_hash(leaves[: size + 3])
        if size < len(leaves):
            frontier.append(leaves[size])


# -- writing the witness --------------------------------------------------------------------


def test_every_commit_is_witnessed_and_the_last_checkpoint_is_the_database(
    witnessed: Ledger, witness_path: Path
) -> None:
    lines = witness_path.read_bytes().splitlines()
    checkpoints = [Checkpoint.from_line(line) for line in lines]
    sizes = [(c.journal.tree_size, c.ledger.tree_size) for c in checkpoints]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)  # grown, never repeated
    assert sizes[0] == (0, 0)  # the first start witnesses the empty database
    last = checkpoints[-1]
    assert last.ledger == witnessed.digest()
    assert last.journal == database_trees(witnessed).journal.digest()
    assert (last.journal.tree_size, last.ledger.tree_size) == (4, 8)


def test_checkpoints_are_written_at_most_once_an_interval(
    ledger: Ledger, witness_path: Path
) -> None:
    interval_s = 0.2
    started = time.monotonic()
    checkpointer = Checkpointer(ledger, witness_path, interval_s=interval_s).start()
    funded_ledger(ledger, "ann")
    for trade_id in range(1, 41):
        ledger.append(commands=[(trade_id, {"verb": "new_order"})], entries=[trade(trade_id)])
        checkpointer.notify()
    checkpointer.stop()
    elapsed_s = time.monotonic() - started
    lines = witness_path.read_bytes().splitlines()
    # The first checkpoint, one an interval at most, and the last at stop.
    assert len(lines) <= 2 + int(elapsed_s / interval_s) + 1
    assert Checkpoint.from_line(lines[-1]).ledger == ledger.digest()


def test_the_checkpointer_witnesses_rows_other_writers_append(
    ledger: Ledger, witness_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpointer = Checkpointer(ledger, witness_path, interval_s=0.01, idle_poll_s=0.05).start()
    try:
        funded_ledger(ledger, "ann")  # nobody notifies
        deadline = time.monotonic() + 10
        while read_witness(witness_path).checkpoint.ledger != ledger.digest():  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "never witnessed"
            time.sleep(0.02)
    finally:
        checkpointer.stop()


# -- refusing ------------------------------------------------------------------------------


def test_an_honest_restart_passes_and_goes_on_witnessing(
    witnessed: Ledger, witness_path: Path, database_url: str
) -> None:
    check_witness(witnessed, witness_path)
    checkpointer = Checkpointer(witnessed, witness_path).start()
    witnessed.append(commands=[(5, {"verb": "new_order"})], entries=[trade(5)])
    checkpointer.stop()
    assert read_witness(witness_path).checkpoint.ledger == witnessed.digest()  # type: ignore[union-attr]
    result = invoke_verify(database_url, "--witness", str(witness_path))
    assert result.exit_code == 0, result.output
    assert f"witness {witness_path}: the database extends the checkpoint of" in result.stdout
    assert result.stdout.rstrip().endswith("ok")


def test_a_consistent_truncation_after_a_checkpoint_is_refused_at_start_and_by_verify(
    witnessed: Ledger, witness_path: Path, database_url: str
) -> None:
    cut_the_tail(witnessed, commands=2, entries_=2)
    assert verify(witnessed).ok  # the database's own hashes see nothing wrong
    checkpoint = read_witness(witness_path).checkpoint
    with pytest.raises(WitnessError) as refused:
        Checkpointer(witnessed, witness_path).start()
    message = str(refused.value)
    assert f"does not extend {checkpoint}" in message
    assert "the journal holds 2 commands, fewer than the 4 witnessed" in message
    assert "the ledger holds 6 entries, fewer than the 8 witnessed" in message
    assert "rolled back or truncated" in message
    lines_before = witness_path.read_bytes()
    result = invoke_verify(database_url, "--witness", str(witness_path))
    assert result.exit_code == 1
    assert f"error: witness {witness_path}: the database does not extend" in result.stderr
    assert witness_path.read_bytes() == lines_before  # a refusal writes nothing


def test_a_rewritten_entry_with_recomputed_chains_is_refused_as_a_fork(
    witnessed: Ledger, witness_path: Path, database_url: str
) -> None:
    rewrite_entry(witnessed, 4, MARKER, MARKER.replace("42", "99"))
    assert verify(witnessed).ok  # the chains were recomputed: they hold
    with pytest.raises(WitnessError) as refused:
        check_witness(witnessed, witness_path)
    message = str(refused.value)
    assert "the ledger's first 8 entries are not the ones witnessed" in message
    assert "rewritten" in message and "journal" not in message.split(": ", 2)[2]
    result = invoke_verify(database_url, "--witness", str(witness_path))
    assert result.exit_code == 1
    assert "the ledger's first 8 entries are not the ones witnessed" in result.stderr


def test_verify_checks_the_servers_default_witness_when_there_is_one(
    ledger: Ledger, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    path = default_witness_path(database_url)
    assert path is not None
    result = invoke_verify(database_url)
    assert f"witness: none at {path}" in result.stdout
    Checkpointer(ledger, path).start().stop()
    funded_ledger(ledger, "ann")
    Checkpointer(ledger, path).start().stop()
    cut_the_tail(ledger, commands=0, entries_=1)
    result = invoke_verify(database_url)
    assert result.exit_code == 1
    assert "fewer than the 2 witnessed" in result.stderr


# -- an auditor's digest -------------------------------------------------------------------


def test_verify_against_an_auditors_digest_passes_while_the_ledger_extends_it(
    witnessed: Ledger, database_url: str, tmp_path: Path
) -> None:
    saved = tmp_path / "digest.json"
    saved.write_text(runner.invoke(app, ["digest", "--database", database_url]).stdout)
    dispose_engines()
    assert json.loads(saved.read_text())["tree_size"] == 8
    witnessed.append_entries([entries.deposit("dee", 5, key="dep-dee", ts_ns=9)])
    result = invoke_verify(database_url, "--against", str(saved))
    assert result.exit_code == 0, result.output
    assert f"against {saved}: the ledger extends the digest of 8 entries" in result.stdout


@pytest.mark.parametrize("attack", ["truncation", "rewrite"])
def test_verify_against_an_auditors_digest_refuses_a_ledger_that_does_not_extend_it(
    witnessed: Ledger, database_url: str, tmp_path: Path, attack: str
) -> None:
    saved = tmp_path / "digest.json"
    saved.write_text(json.dumps(witnessed.digest().to_json()))
    if attack == "truncation":
        cut_the_tail(witnessed, commands=1, entries_=1)
        expected = "the ledger holds 7 entries, fewer than the 8 witnessed"
    else:
        rewrite_entry(witnessed, 4, MARKER, MARKER.replace("42", "99"))
        expected = "the ledger's first 8 entries are not the ones witnessed"
    assert verify(witnessed).ok
    result = invoke_verify(database_url, "--against", str(saved))
    assert result.exit_code == 1
    assert f"error: against {saved}: {expected}" in result.stderr


def test_verify_refuses_a_digest_file_that_is_no_digest(
    witnessed: Ledger, database_url: str, tmp_path: Path
) -> None:
    saved = tmp_path / "digest.json"
    saved.write_text('{"tree_size": -1}')
    result = invoke_verify(database_url, "--against", str(saved))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "error: digest" in result.stderr


# -- the file ------------------------------------------------------------------------------


def test_a_torn_last_line_is_passed_over_said_so_and_cut_off_before_the_next(
    witnessed: Ledger, witness_path: Path, database_url: str
) -> None:
    complete = witness_path.read_bytes()
    last = read_witness(witness_path).checkpoint
    torn = complete.splitlines(keepends=True)[-1][:57]  # a crash in the middle of a write
    witness_path.write_bytes(complete + torn)
    state = read_witness(witness_path)
    assert state.checkpoint == last
    assert state.torn_bytes == len(torn)
    assert "torn" in (state.note or "")
    result = invoke_verify(database_url, "--witness", str(witness_path))
    assert result.exit_code == 0, result.output
    assert "its last line (57 bytes) is torn" in result.stdout
    checkpointer = Checkpointer(witnessed, witness_path).start()
    witnessed.append_entries([entries.deposit("dee", 5, key="dep-dee", ts_ns=9)])
    checkpointer.stop()
    lines = witness_path.read_bytes().splitlines()
    assert witness_path.read_bytes().startswith(complete)
    assert [Checkpoint.from_line(line) for line in lines][-1].ledger == witnessed.digest()


def test_a_torn_first_line_is_no_checkpoint(witness_path: Path) -> None:
    witness_path.parent.mkdir()
    witness_path.write_bytes(b'{"journal":{"root')
    state = read_witness(witness_path)
    assert state.checkpoint is None and state.torn_bytes == 17


@pytest.mark.parametrize(
    "last_line", [b"not json\n", b'{"time": "t"}\n', b"\n", b"x" * 20_000 + b"\n"]
)
def test_a_complete_line_that_is_no_checkpoint_makes_the_witness_unreadable(
    witnessed: Ledger, witness_path: Path, last_line: bytes
) -> None:
    witness_path.write_bytes(witness_path.read_bytes() + last_line)
    with pytest.raises(WitnessError, match="last line"):
        Checkpointer(witnessed, witness_path).start()


def test_a_missing_witness_is_a_first_start(ledger: Ledger, witness_path: Path) -> None:
    funded_ledger(ledger, "ann")
    assert read_witness(witness_path).checkpoint is None
    checkpointer = Checkpointer(ledger, witness_path).start()
    checkpointer.stop()
    assert read_witness(witness_path).checkpoint.ledger == ledger.digest()  # type: ignore[union-attr]


def test_default_witness_paths() -> None:
    assert default_witness_path("sqlite:////srv/dataex.db") == Path("/srv/dataex.witness")
    assert default_witness_path("sqlite:///:memory:") is None
    assert default_witness_path("sqlite://") is None
    one = default_witness_path("postgresql+psycopg://u:secret@db.example:5432/dataex")
    other = default_witness_path("postgresql+psycopg://u:other@db.example:5432/dataex")
    assert one == other  # the password is no part of the name
    assert one is not None and one.name.startswith("postgresql-db.example-5432-dataex-")
    assert default_witness_path("postgresql+psycopg://u@db.example:5432/other") != one


def test_stop_ends_the_witness_process_and_is_idempotent(
    ledger: Ledger, witness_path: Path
) -> None:
    checkpointer = Checkpointer(ledger, witness_path, idle_poll_s=60).start()
    process = checkpointer._process
    assert process is not None and process.is_alive()
    started = time.monotonic()
    checkpointer.stop()
    checkpointer.stop()
    # Told to stop, it does not wait out its idle poll.
    assert time.monotonic() - started < 30
    assert not process.is_alive() and process.exitcode == 0


def test_the_witness_outlives_stop_signals_and_writes_the_last_checkpoint(
    ledger: Ledger, witness_path: Path
) -> None:
    """Ctrl-C and a service manager's stop reach every process of the server: the witness's
    process ignores them and writes what the server committed once the server stops."""
    checkpointer = Checkpointer(ledger, witness_path, idle_poll_s=60).start()
    process = checkpointer._process
    assert process is not None and process.pid is not None
    wait_until_ignored(process.pid, STOP_SIGNALS)
    for number in STOP_SIGNALS:
        os.kill(process.pid, number)
    funded_ledger(ledger, "ann", "bob")
    checkpointer.notify()
    time.sleep(0.2)
    assert process.is_alive()
    checkpointer.stop()
    assert process.exitcode == 0
    assert_witnesses_the_database(checkpointer, ledger)


def test_a_killed_witness_process_neither_hangs_nor_loses_the_last_checkpoint(
    ledger: Ledger, witness_path: Path
) -> None:
    checkpointer = Checkpointer(ledger, witness_path, idle_poll_s=60).start()
    process = checkpointer._process
    assert process is not None and process.pid is not None
    os.kill(process.pid, signal.SIGKILL)
    process.join(10)
    funded_ledger(ledger, "ann", "bob")
    for _ in range(100_000):  # more wake-ups than a pipe holds: none blocks or raises
        checkpointer.notify()
    started = time.monotonic()
    checkpointer.stop()
    assert time.monotonic() - started < 10
    assert_witnesses_the_database(checkpointer, ledger)


def wait_until_ignored(pid: int, numbers: frozenset[int], timeout_s: float = 20.0) -> None:
    """Wait until process ``pid`` ignores signals ``numbers`` (Linux: /proc/PID/status)."""
    wanted = sum(1 << (number - 1) for number in numbers)
    deadline = time.monotonic() + timeout_s
    while True:
        status = Path(f"/proc/{pid}/status").read_text()
        ignored = int(re.search(r"^SigIgn:\s*([0-9a-f]+)$", status, re.MULTILINE).group(1), 16)
        if ignored & wanted == wanted:
            return
        assert time.monotonic() < deadline, f"process {pid} does not ignore {numbers}"
        time.sleep(0.02)


def assert_witnesses_the_database(checkpointer: Checkpointer, ledger: Ledger) -> None:
    trees = database_trees(ledger)
    written = read_witness(checkpointer.path).checkpoint
    assert written is not None and written == checkpointer.written
    assert (written.journal, written.ledger) == (trees.journal.digest(), trees.ledger.digest())
