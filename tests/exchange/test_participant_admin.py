"""Operators' commands on participants (exchange/participants.py): disable and enable, key
rotation and revocation; each journalled, replayed by recovery and kept in snapshots."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from exchange import commands as c
from exchange.errors import Reason
from exchange.participants import new_api_key, secret_digest
from exchange.recovery import recover
from exchange.research import DatabaseJournal, replay
from exchange.sequencer import Sequencer
from exchange.service import OPERATOR, Exchange
from exchange.snapshot import dump_state, load_state
from ledger.database import dispose_engines
from ledger.store import Ledger
from tests.exchange.helpers import (
    CASH_MINOR,
    ManualClock,
    Market,
    assert_same_state,
    build_ready_market,
    buy,
    create_participant,
    sell,
)


def _rotate(actor: str, participant_id: str) -> tuple[c.RotateApiKey, str]:
    key = new_api_key()
    return c.RotateApiKey(actor, participant_id, key.key_id, secret_digest(key.secret)), key.secret


def _trading() -> Market:
    """A ready market where ann has two bids and an ask resting, bob one bid."""
    market = Market()
    build_ready_market(market.execute)
    market.execute(sell("prov", "p-ask", 10_000, 4))
    market.execute(buy("ann", "lift", 10_000, 4))
    market.execute(buy("ann", "bid-1", 9_000, 1))
    market.execute(buy("ann", "bid-2", 9_100, 2))
    market.execute(sell("ann", "ask-1", 12_000, 3))
    market.execute(buy("bob", "bob-bid", 8_000, 1))
    return market


def test_disabling_cancels_open_orders_and_stops_the_participant_acting():
    market = _trading()
    exchange = market.exchange
    outcome = market.execute(c.DisableParticipant("admin", "ann", "unpaid fees"))
    participant, cancelled = outcome.result
    assert participant.disabled and participant.disabled_ns == market.now_ns
    assert [(o.client_order_id, o.cancel_reason) for o in cancelled] == [
        ("bid-1", "user"), ("bid-2", "user"), ("ask-1", "user"),
    ]  # fmt: skip
    assert exchange.cash_of("ann") == (CASH_MINOR - 40_000, 0)
    assert not any(exchange.risk.licences_held.values())
    assert [o.client_order_id for o in exchange.orders_of(
        "bob", open_only=True, after_id=0, limit=10)] == ["bob-bid"]  # fmt: skip
    assert exchange.authenticate("dxk_ann", "anything") is None
    # Anything ann sends now is refused, whatever it is.
    assert "ann is disabled" in market.refuse(buy("ann", "late", 9_000, 1), Reason.AUTH_DISABLED)
    market.refuse(c.CancelAllOrders("ann", "ann", None, None), Reason.AUTH_DISABLED)
    # Her holdings and cash stay; an admin still moves her cash.
    market.execute(c.Deposit("admin", "ann", 100, "refund"))
    assert exchange.holdings_of("ann")[0][2] == 4


def test_disable_and_enable_twice_journal_once_each():
    market = _trading()
    market.execute(c.DisableParticipant("admin", "ann", ""))
    journalled = len(market.journal)
    again = market.execute(c.DisableParticipant("admin", "ann", "again"))
    assert again.command is None and again.result[1] == []
    assert len(market.journal) == journalled
    enabled = market.execute(c.EnableParticipant(OPERATOR, "ann", "paid"))
    assert not enabled.result.disabled
    assert market.execute(c.EnableParticipant("admin", "ann", "")).command is None
    assert len(market.journal) == journalled + 1
    # Back in: she trades again; her cancelled orders stay cancelled.
    market.execute(buy("ann", "back", 9_000, 1))
    assert [o.client_order_id for o in market.exchange.orders_of(
        "ann", open_only=True, after_id=0, limit=10)] == ["back"]  # fmt: skip


@pytest.mark.parametrize(
    ("command", "reason", "words"),
    [
        (c.DisableParticipant("bob", "ann", ""), Reason.AUTH_FORBIDDEN, "roles: admin"),
        (c.EnableParticipant("ann", "ann", ""), Reason.AUTH_FORBIDDEN, "roles: admin"),
        (c.DisableParticipant("admin", "nobody", ""), Reason.VALIDATION_UNKNOWN_PARTICIPANT,
         "no participant 'nobody'"),
        (c.DisableParticipant("admin", "admin", ""), Reason.AUTH_FORBIDDEN, "disable itself"),
        (c.DisableParticipant("admin", "ann", "x" * 201), Reason.VALIDATION_INVALID, "reason"),
        (c.RevokeApiKey("admin", "ann", "dxk_bob"), Reason.VALIDATION_UNKNOWN_KEY,
         "not ann's key"),
        (c.RevokeApiKey("admin", "admin", "dxk_admin"), Reason.AUTH_FORBIDDEN, "rotate it"),
        (c.RotateApiKey("admin", "ann", "dxk_bob", "0" * 64), Reason.VALIDATION_INVALID,
         "key id"),
        (c.RotateApiKey("admin", "ann", "dxk_" + "0" * 16, "xyz"), Reason.VALIDATION_INVALID,
         "digest"),
        (c.RotateApiKey("rev", "ann", "dxk_" + "0" * 16, "0" * 64), Reason.AUTH_FORBIDDEN,
         "roles: admin"),
    ],
    ids=lambda value: getattr(value, "verb", None) or str(value)[:20],
)
def test_bad_operator_commands_are_refused(command: c.Command, reason: Reason, words: str):
    market = _trading()
    before = {pid: repr(p) for pid, p in market.exchange.participants.by_id.items()}
    assert words in market.refuse(command, reason)
    assert {pid: repr(p) for pid, p in market.exchange.participants.by_id.items()} == before


def test_rotation_replaces_the_key_at_once_and_revocation_leaves_none():
    market = Market()
    market.execute(create_participant("admin", "admin"))
    key = new_api_key()
    market.execute(c.CreateParticipant(OPERATOR, "ann", "Ann", ["buyer"], key.key_id,
                                       secret_digest(key.secret)))  # fmt: skip
    exchange = market.exchange
    assert exchange.authenticate(key.key_id, key.secret) is not None
    rotate, secret = _rotate("admin", "ann")
    assert market.execute(rotate).result.key_id == rotate.key_id
    assert exchange.authenticate(key.key_id, key.secret) is None, "no grace for the old key"
    assert exchange.authenticate(rotate.key_id, secret).participant_id == "ann"
    # A rotated key cannot be revoked any more: it is not the participant's key.
    market.refuse(c.RevokeApiKey("admin", "ann", key.key_id), Reason.VALIDATION_UNKNOWN_KEY)
    revoked = market.execute(c.RevokeApiKey("admin", "ann", rotate.key_id)).result
    assert revoked.key_id is None and revoked.secret_sha256 == ""
    assert exchange.authenticate(rotate.key_id, secret) is None
    # An admin may rotate its own key (it gets the new one in the answer).
    own, own_secret = _rotate("admin", "admin")
    market.execute(own)
    assert exchange.authenticate(own.key_id, own_secret).participant_id == "admin"
    # A key id already in use is refused.
    market.refuse(c.RotateApiKey("admin", "ann", own.key_id, "0" * 64), Reason.VALIDATION_DUPLICATE)


def test_a_quote_from_a_participant_disabled_since_does_not_settle():
    market = _trading()
    market.execute(c.RequestQuote("bob", 0, "ZJPARK.NX12", 1, ["ann"], False,
                                  market.now_ns + 10**12, True))  # fmt: skip
    rfq_id = market.exchange.confidential.next_rfq_id - 1
    market.execute(c.SubmitQuote("ann", rfq_id, 0, 10_000))
    quote_id = market.exchange.confidential.next_quote_id - 1
    market.execute(c.DisableParticipant("admin", "ann", ""))
    assert "ann is disabled" in market.refuse(c.AcceptQuote("bob", rfq_id, quote_id, 0),
                                              Reason.AUTH_DISABLED)  # fmt: skip


def test_operators_commands_replay_from_their_journal_records():
    market = _trading()
    market.execute(c.DisableParticipant("admin", "ann", "review"))
    market.execute(c.EnableParticipant("admin", "ann", "cleared"))
    rotate, _ = _rotate("admin", "bob")
    market.execute(rotate)
    market.execute(c.RevokeApiKey(OPERATOR, "bob", rotate.key_id))
    market.execute(c.DisableParticipant(OPERATOR, "bob", ""))
    replica = Exchange()
    for seq, (ts_ns, record) in enumerate(market.journal, start=1):
        replayed = replica.execute(c.command_from_record(record), seq, ts_ns)
        assert replayed.command is not None and c.command_to_record(replayed.command) == record
    replica.check_invariants()
    assert_same_state(replica, market.exchange)
    assert replica.participants.by_id == market.exchange.participants.by_id


def test_snapshots_keep_disabled_participants_and_revoked_keys():
    market = _trading()
    market.execute(c.DisableParticipant("admin", "ann", ""))
    market.execute(c.RevokeApiKey("admin", "bob", "dxk_bob"))
    loaded = load_state(dump_state(market.exchange))
    assert loaded.participants.by_id == market.exchange.participants.by_id
    assert set(loaded.participants.by_key) == set(market.exchange.participants.by_key)
    assert loaded.participants.by_id["ann"].disabled
    assert "dxk_bob" not in loaded.participants.by_key


@pytest.fixture
def recorded(database_url: str) -> Iterator[tuple[Ledger, Exchange]]:
    """A database whose journal holds each of the operators' commands."""
    ledger = Ledger.open(database_url)
    sequencer = Sequencer(ledger, clock=ManualClock(), housekeeping=False).start()
    try:
        run = sequencer.execute
        build_ready_market(run)
        run(buy("ann", "bid", 9_000, 2))
        _, cancelled = run(c.DisableParticipant("admin", "ann", "")).result
        assert [o.client_order_id for o in cancelled] == ["bid"]
        run(c.EnableParticipant("admin", "ann", ""))
        run(_rotate("admin", "bob")[0])
        run(c.RevokeApiKey("admin", "rev", "dxk_rev"))
        run(c.DisableParticipant(OPERATOR, "reg", ""))
        exchange = sequencer.exchange
    finally:
        sequencer.stop()
    yield ledger, exchange
    dispose_engines()


def test_recovery_and_replay_rebuild_the_operators_commands(recorded: tuple[Ledger, Exchange]):
    ledger, exchange = recorded
    report = replay(DatabaseJournal(ledger))
    assert report.ok, report.mismatch
    assert_same_state(report.exchange, exchange)
    for rebuilt in (report.exchange, recover(ledger, use_snapshot=False)):
        assert rebuilt.participants.by_id == exchange.participants.by_id
        assert set(rebuilt.participants.by_key) == set(exchange.participants.by_key)
