"""Keeping a book in sync (docs/exchange.md, "Keeping a book in sync"): the REST book's
``seq``, the market stream's snapshot and sequenced deltas, and the resync a client that
falls behind is sent (exchange/api/routes/market.py, ws.py, hub.py)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from starlette.testclient import WebSocketTestSession

import exchange.api.hub
from tests.exchange.api.helpers import BUYERS, PROVIDER, SYMBOL, Api, receive_json

ANN, BOB = BUYERS
BOOK = f"/v1/market/{SYMBOL}/book"
STREAM = f"/v1/ws/market/{SYMBOL}"
MAX_MESSAGES = 500  # read at most this many messages looking for one


class LocalBook:
    """A client's copy of the book, kept by the documented algorithm."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.snapshot_seq = self.seq = snapshot["seq"]
        self.levels = {("buy", level["price"]): level["quantity"] for level in snapshot["bids"]}
        self.levels |= {("sell", level["price"]): level["quantity"] for level in snapshot["asks"]}

    def apply(self, message: dict[str, Any]) -> None:
        """A delta: one whose command the snapshot already holds changes nothing (one
        command's several messages share its seq)."""
        if message["seq"] <= self.snapshot_seq:
            return
        assert message["seq"] >= self.seq, "seqs only grow"
        self.seq = message["seq"]
        if message["type"] != "book":
            return
        for side, price, quantity in message["levels"]:
            if quantity:
                self.levels[side, price] = quantity
            else:
                self.levels.pop((side, price), None)

    def sides(self) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        """(bids, asks) as (price, quantity), best first, as REST shows them."""

        def side(name: str, best_first: bool) -> list[tuple[str, int]]:
            prices = sorted((p for s, p in self.levels if s == name), key=float,
                            reverse=best_first)  # fmt: skip
            return [(price, self.levels[name, price]) for price in prices]

        return side("buy", True), side("sell", False)


def _rest_sides(book: dict[str, Any]) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    return ([(lv["price"], lv["quantity"]) for lv in book["bids"]],
            [(lv["price"], lv["quantity"]) for lv in book["asks"]])  # fmt: skip


def _churn(api: Api, rng: random.Random, count: int, tag: str) -> None:
    """``count`` random orders around 100.00 from both sides, some crossing, some cancelled."""
    for index in range(count):
        side, who = rng.choice((("buy", ANN), ("buy", BOB), ("sell", PROVIDER)))
        price = f"{rng.randint(95, 105)}.00"
        placed = api.placed(who, f"{tag}-{index}", side, price, rng.randint(1, 3))
        if placed["status"] in ("new", "partially_filled") and rng.random() < 0.3:
            api.expect(200, "DELETE", f"/v1/orders/{placed['order_id']}", who)


def _read_through(websocket: WebSocketTestSession, seq: int) -> list[dict[str, Any]]:
    """Messages up to the first of command ``seq``'s (a command that changes the book sends a
    book message)."""
    messages: list[dict[str, Any]] = []
    for _ in range(MAX_MESSAGES):
        messages.append(receive_json(websocket))
        if messages[-1]["seq"] >= seq and messages[-1]["type"] == "book":
            return messages
    raise AssertionError(f"no message of command {seq} in {len(messages)}")


def test_the_rest_book_carries_the_journal_seq_it_reflects(api: Api):
    api.market()
    before = api.expect(200, "GET", BOOK)
    assert before["seq"] == api.journal_seq()
    api.placed(ANN, "bid", "buy", "99.00", 2)
    after = api.expect(200, "GET", BOOK)
    assert after["seq"] == api.journal_seq() > before["seq"]
    assert _rest_sides(after) == ([("99.00", 2)], [])


def test_the_stream_starts_with_a_snapshot_then_deltas_with_growing_seqs(api: Api):
    api.market()
    api.placed(PROVIDER, "ask", "sell", "101.00", 3)
    with api.client.websocket_connect(STREAM) as websocket:
        snapshot = receive_json(websocket)
        assert snapshot["type"] == "snapshot"
        assert snapshot["seq"] == api.journal_seq()
        assert _rest_sides(snapshot) == ([], [("101.00", 3)])
        _churn(api, random.Random(1), 15, "grow")
        messages = _read_through(websocket, api.journal_seq())
    seqs = [snapshot["seq"], *(message["seq"] for message in messages)]
    assert seqs == sorted(seqs) and seqs[0] < seqs[1], seqs
    # Each command's messages end with its book message; the next command's seq is higher.
    books = [message["seq"] for message in messages if message["type"] == "book"]
    assert books == sorted(set(books)) and len(books) >= 15


def test_a_client_following_the_algorithm_holds_the_rest_book(api: Api):
    """Both ways: from the stream's own snapshot, and from a REST snapshot taken while the
    stream's messages are buffered (as the dashboard does), some of them older than it."""
    api.market()
    rng = random.Random(7)
    _churn(api, rng, 10, "before")
    with api.client.websocket_connect(STREAM) as websocket:
        local = LocalBook(receive_json(websocket))
        _churn(api, rng, 10, "during")
        rest_snapshot = api.expect(200, "GET", BOOK, params={"depth": 50})
        _churn(api, rng, 10, "after")
        final_seq = api.journal_seq()
        buffered = _read_through(websocket, final_seq)
    assert any(m["seq"] <= rest_snapshot["seq"] for m in buffered), "nothing to drop"
    from_rest = LocalBook(rest_snapshot)
    for message in buffered:
        local.apply(message)
        from_rest.apply(message)
    book = api.expect(200, "GET", BOOK, params={"depth": 50})
    assert book["seq"] == final_seq == local.seq == from_rest.seq
    assert local.sides() == from_rest.sides() == _rest_sides(book)
    assert book["bids"] or book["asks"], "an empty book proves little"


def test_a_client_that_falls_behind_is_told_to_resync_then_sent_a_fresh_snapshot(
    api: Api, monkeypatch: pytest.MonkeyPatch
):
    # A sweep of three levels sends four messages (three trades and the book) at once: more
    # than a queue of two holds, whatever the client's pace.
    monkeypatch.setattr(exchange.api.hub, "MAX_SUBSCRIBER_QUEUE", 2)
    api.market()
    for index, price in enumerate(("100.00", "101.00", "102.00")):
        api.placed(PROVIDER, f"ask-{index}", "sell", price, 1)
    with api.client.websocket_connect(STREAM) as websocket:
        receive_json(websocket)  # the snapshot
        api.placed(ANN, "sweep", "buy", "102.00", 3)
        swept_seq = api.journal_seq()
        resync = receive_json(websocket)
        fresh = receive_json(websocket)
        # The stream carries on after it.
        api.placed(BOB, "later", "buy", "99.00", 1)
        later = receive_json(websocket)
    assert resync["type"] == "resync" and "dropped" in resync["reason"]
    assert fresh["type"] == "snapshot" and fresh["seq"] == swept_seq
    assert _rest_sides(fresh) == ([], [])
    assert later["type"] == "book" and later["seq"] == api.journal_seq() > fresh["seq"]
    local = LocalBook(fresh)
    local.apply(later)
    assert local.sides() == _rest_sides(api.expect(200, "GET", BOOK))
