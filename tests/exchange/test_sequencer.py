"""The sequencer: acknowledgements only after a durable group commit, fail-stop on a failed
commit, and following the journal when another process appends to it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from exchange import commands as cmd
from exchange.errors import ExchangeError, Reason
from exchange.participants import new_api_key, secret_digest
from exchange.recovery import recover
from exchange.sequencer import Sequencer, SequencerStopped
from exchange.service import OPERATOR
from exchange.writer import ProcessWriter
from ledger.database import dispose_engines
from ledger.store import Ledger
from ledger.verify import verify


def create_participant(participant_id: str, roles: list[str]) -> cmd.CreateParticipant:
    key = new_api_key()
    return cmd.CreateParticipant(
        OPERATOR, participant_id, participant_id, roles, key.key_id, secret_digest(key.secret)
    )


@pytest.fixture
def url(database_url: str) -> Iterator[str]:
    yield database_url
    dispose_engines()


@pytest.fixture
def sequencer(url: str) -> Iterator[Sequencer]:
    sequencer = Sequencer(Ledger.open(url)).start()
    yield sequencer
    sequencer.stop()


@pytest.fixture(params=["inline", "process"])
def any_writer(request: pytest.FixtureRequest, url: str) -> Iterator[Sequencer]:
    """A sequencer with each kind of journal writer."""
    ledger = Ledger.open(url)
    writer = ProcessWriter(ledger) if request.param == "process" else None
    sequencer = Sequencer(ledger, writer=writer).start()
    yield sequencer
    sequencer.stop()


def test_concurrent_commands_share_commits_and_all_are_journalled(any_writer: Sequencer) -> None:
    sequencer = any_writer
    commands = [create_participant(f"p{i}", ["buyer"]) for i in range(200)]
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(sequencer.execute, commands))
    assert len(outcomes) == 200
    assert sequencer.ledger.journal_head_seq() == 200
    # Group commit: sixteen waiting clients let batches hold more than one command.
    assert sequencer.batches < 200


def test_refused_command_is_answered_and_never_journalled(any_writer: Sequencer) -> None:
    sequencer = any_writer
    sequencer.execute(create_participant("ann", ["buyer"]))
    with pytest.raises(ExchangeError) as refused:
        sequencer.execute(create_participant("ann", ["buyer"]))
    assert refused.value.reason is Reason.VALIDATION_DUPLICATE
    assert sequencer.ledger.journal_head_seq() == 1


def test_failed_commit_acknowledges_nothing_and_rebuilds_from_the_journal(
    sequencer: Sequencer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sequencer.execute(create_participant("ann", ["buyer"]))
    ledger = sequencer.ledger
    real_append = ledger.append

    def failing_append(**kwargs: object) -> object:
        monkeypatch.setattr(ledger, "append", real_append)
        raise OSError("disk full")

    monkeypatch.setattr(ledger, "append", failing_append)
    with pytest.raises(SequencerStopped):
        sequencer.execute(create_participant("bob", ["buyer"]))
    # The state that held bob was thrown away: it is what the journal says.
    assert "bob" not in sequencer.exchange.participants.by_id
    assert sequencer.exchange.head_seq == 1
    sequencer.execute(create_participant("bob", ["buyer"]))
    assert ledger.journal_head_seq() == 2
    assert verify(ledger).ok


def test_sequencer_follows_commands_another_process_appended(url: str) -> None:
    server = Sequencer(Ledger.open(url)).start()
    try:
        server.execute(create_participant("ann", ["buyer"]))
        console = Sequencer(Ledger.open(url), housekeeping=False).start()
        console.execute(create_participant("ops", ["admin"]))
        console.stop()
        deadline = time.monotonic() + 5
        while "ops" not in server.exchange.participants.by_id and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "ops" in server.exchange.participants.by_id
        server.execute(create_participant("bob", ["buyer"]))
        assert server.ledger.journal_head_seq() == 3
    finally:
        server.stop()
    assert set(recover(Ledger.open(url)).participants.by_id) == {"ann", "ops", "bob"}


def test_stopped_sequencer_refuses_commands(url: str) -> None:
    sequencer = Sequencer(Ledger.open(url)).start()
    sequencer.stop()
    with pytest.raises(SequencerStopped):
        sequencer.submit(create_participant("ann", ["buyer"]))


def test_a_batch_the_database_refuses_fails_and_the_state_is_rebuilt(
    any_writer: Sequencer, url: str
) -> None:
    sequencer = any_writer
    sequencer.execute(create_participant("ann", ["buyer"]))
    # Another writer appends behind the sequencer's back: its next batch names a journal
    # head the database no longer has, and is refused.
    other = Sequencer(Ledger.open(url), housekeeping=False).start()
    other.execute(create_participant("ops", ["admin"]))
    other.stop()
    try:
        sequencer.execute(create_participant("bob", ["buyer"]))
    except SequencerStopped:
        # Refused, and the state rebuilt from the journal: it holds ops, not bob.
        assert sequencer.failed_commits == 1
        assert set(sequencer.exchange.participants.by_id) == {"ann", "ops"}
        sequencer.execute(create_participant("bob", ["buyer"]))
    else:
        # The sequencer followed the journal first (its timer ran in between).
        assert sequencer.failed_commits == 0
    assert set(sequencer.exchange.participants.by_id) == {"ann", "ops", "bob"}
    assert sequencer.ledger.journal_head_seq() == 3
    assert verify(sequencer.ledger).ok


def test_a_writer_process_that_dies_loses_nothing_acknowledged(url: str) -> None:
    ledger = Ledger.open(url)
    writer = ProcessWriter(ledger)
    sequencer = Sequencer(ledger, writer=writer).start()
    try:
        sequencer.execute(create_participant("ann", ["buyer"]))
        assert writer._process is not None
        writer._process.kill()
        writer._process.join()
        # Whatever was in flight is refused; the next command finds a new writer process.
        deadline = time.monotonic() + 10
        while True:
            try:
                sequencer.execute(create_participant("bob", ["buyer"]))
                break
            except SequencerStopped:
                assert time.monotonic() < deadline, "no new writer process"
        assert writer.alive
        assert set(sequencer.exchange.participants.by_id) == {"ann", "bob"}
    finally:
        sequencer.stop()
    assert set(recover(Ledger.open(url)).participants.by_id) == {"ann", "bob"}
