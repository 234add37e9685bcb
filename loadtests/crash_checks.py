"""What must hold after a crash test: pure checks over what the clients recorded and what the
restarted exchange holds, each returning :class:`~loadtests.checks.Check` values.

- :func:`check_acknowledgements`: every acknowledged submission, cancel and amend is in the
  final state. The order exists under its id, with its client order id, symbol and side;
  nothing filled is unfilled; an order the acknowledgement showed filled or cancelled stays
  so (a cancel's acknowledgement shows it cancelled); its price and quantity are the
  acknowledged ones, or those of a later amend of it. A later amend counts whether or not it
  was answered: one whose answer a kill lost may have been journalled, and that is a later
  state, not a loss.
- :func:`check_retries`: a submission sent again with the same ``client_order_id`` was
  answered with the original acknowledgement, byte for byte.
- :func:`check_conservation`: against what the crash test itself made (the deposits setup had
  acknowledged, each instrument's issuance cap), the cash held inside the exchange equals the
  deposits less the withdrawals, and the licence units outside each issuer's account equal
  what was issued.
- :func:`check_replay_output`: ``dataex replay`` reproduced the recorded settlement and ended
  in the state the server recovers (the same engine state hash).

A failed check's detail names what was lost, so the run can print it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from ledger import accounts
from loadtests.checks import Check
from loadtests.crash_flow import TERMINAL, RequestRecord
from loadtests.market_setup import parse_minor

__all__ = [
    "check_acknowledgements",
    "check_conservation",
    "check_replay_output",
    "check_retries",
    "parse_state_hash",
]

MAX_LISTED = 5  # losses named in a failed check's detail
KIND_NAMES = {"submit": "submission", "cancel": "cancel", "amend": "amend"}
_STATE_HASH = re.compile(r"^state hash:\s+([0-9a-f]{64})\s*$", re.MULTILINE)
_REPRODUCED = "the replay reproduces the recorded settlement"

FinalOrders = Mapping[tuple[str, int], Mapping[str, Any]]  # (participant, order id) -> order


def _listed(items: list[str]) -> str:
    shown = "; ".join(items[:MAX_LISTED])
    return shown + (f"; and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _terms(order: Mapping[str, Any]) -> tuple[int | None, int]:
    """An order's (or an amendment's) price in minor units and total quantity."""
    price = order.get("price")
    return (None if price is None else parse_minor(price)), int(order["quantity"])


def _loss(request: RequestRecord, final: FinalOrders) -> str | None:
    """Why the final state does not hold ``request``'s acknowledgement; ``None`` if it does."""
    answer = request.answer
    assert answer is not None
    named = (
        f"{KIND_NAMES[request.kind]} of order {request.order_id} by {request.participant_id} "
        f"(step {request.step}, client order id {answer.get('client_order_id')})"
    )
    order = final.get((request.participant_id, int(answer["order_id"])))
    if order is None:
        return f"{named}: acknowledged, and no such order in the final state"
    for name in ("client_order_id", "symbol", "side"):
        if order[name] != answer[name]:
            return f"{named}: {name} {order[name]!r}, acknowledged {answer[name]!r}"
    if order["filled_quantity"] < answer["filled_quantity"]:
        return (
            f"{named}: {order['filled_quantity']} filled, acknowledged "
            f"{answer['filled_quantity']} filled"
        )
    if answer["status"] in TERMINAL and (
        order["status"] != answer["status"] or order["filled_quantity"] != answer["filled_quantity"]
    ):
        return (
            f"{named}: {order['status']} with {order['filled_quantity']} filled, acknowledged "
            f"{answer['status']} with {answer['filled_quantity']} filled"
        )
    return None


def check_acknowledgements(requests: Iterable[RequestRecord], final: FinalOrders) -> list[Check]:
    """One check per kind of request (see the module docstring); ``final`` holds every
    order of every client as the restarted server lists it."""
    requests = list(requests)
    # Every amend sent, answered or not, by order: what a later state may show.
    amends: defaultdict[tuple[str, int], list[RequestRecord]] = defaultdict(list)
    for request in requests:
        if request.kind == "amend" and request.order_id is not None:
            amends[(request.participant_id, request.order_id)].append(request)
    checks = []
    for kind, what in (("submit", "order"), ("cancel", "cancel"), ("amend", "amend")):
        acknowledged = [r for r in requests if r.kind == kind and r.acknowledged]
        losses = []
        for request in acknowledged:
            loss = _loss(request, final)
            if loss is None:
                assert request.answer is not None
                key = (request.participant_id, int(request.answer["order_id"]))
                order = final[key]
                allowed = {_terms(request.answer)}
                allowed |= {
                    _terms(later.body)
                    for later in amends[key]
                    if later.step > request.step and later.body is not None
                }
                if _terms(order) not in allowed:
                    loss = (
                        f"{KIND_NAMES[kind]} of order {key[1]} by {key[0]} (step "
                        f"{request.step}): price and quantity {_terms(order)}, acknowledged "
                        f"{_terms(request.answer)} and no later amend to that"
                    )
            if loss is not None:
                losses.append(loss)
        checks.append(
            Check(
                f"every acknowledged {what} is in the final state",
                not losses,
                f"{len(acknowledged):,} acknowledged"
                + (f"; lost {len(losses):,}: {_listed(losses)}" if losses else ""),
            )
        )
    return checks


def check_retries(
    retries: Iterable[tuple[RequestRecord, int | None, Mapping[str, Any] | None]], when: str
) -> Check:
    """Each (original acknowledged submission, the retry's status, the retry's answer): the
    retry must be answered, with the original's status and answer. ``when`` says when the
    retries were sent, for the check's name."""
    retries = list(retries)
    wrong = []
    for original, status, answer in retries:
        if status != original.status or answer != original.answer:
            assert original.body is not None and original.answer is not None
            named = f"{original.participant_id} {original.body['client_order_id']}"
            if status is None or answer is None:
                wrong.append(f"{named}: the retry was not answered")
                continue
            differing = [
                f"{name} {original.answer.get(name)!r} then {answer.get(name)!r}"
                for name in sorted(set(original.answer) | set(answer))
                if original.answer.get(name) != answer.get(name)
            ]
            if status != original.status:
                differing.insert(0, f"status {original.status} then {status}")
            wrong.append(f"{named}: {', '.join(differing)}")
    return Check(
        f"a retried submission returns the original answer ({when})",
        bool(retries) and not wrong,
        f"{len(retries):,} retried"
        + (f"; differing {len(wrong):,}: {_listed(wrong)}" if wrong else "")
        + ("" if retries else "; nothing was retried"),
    )


def check_conservation(
    balances: Mapping[tuple[str, str], int],
    *,
    deposits_minor: int,
    withdrawals_minor: int,
    issuance_units: Mapping[str, int],
) -> list[Check]:
    """Cash inside the exchange (every account but the outside world's) equals deposits less
    withdrawals; each instrument's licence units outside its ``issued`` account equal the
    units issued. ``balances`` is the ledger's (account, asset) -> units."""
    inside_minor = sum(
        units
        for (account, asset), units in balances.items()
        if asset == accounts.CASH and account != accounts.EXTERNAL_CASH
    )
    checks = [
        Check(
            "cash is conserved (cash inside = deposits - withdrawals)",
            inside_minor == deposits_minor - withdrawals_minor,
            f"inside {inside_minor:,}, deposits {deposits_minor:,}, withdrawals "
            f"{withdrawals_minor:,} (minor units)",
        )
    ]
    wrong = []
    for symbol, issued_units in sorted(issuance_units.items()):
        asset, source = accounts.licence_asset(symbol), accounts.issued(symbol)
        outstanding = sum(
            units
            for (account, held), units in balances.items()
            if held == asset and account != source
        )
        if outstanding != issued_units:
            wrong.append(f"{symbol}: {outstanding:,} units outstanding, {issued_units:,} issued")
    checks.append(
        Check(
            "licences are conserved (units held, unsold and expired = units issued)",
            bool(issuance_units) and not wrong,
            f"{len(issuance_units)} instruments" if not wrong else _listed(wrong),
        )
    )
    return checks


def parse_state_hash(output: str) -> str | None:
    """The ``state hash:`` that ``dataex replay`` printed, if it printed one."""
    found = _STATE_HASH.search(output)
    return None if found is None else found.group(1)


def check_replay_output(returncode: int, output: str, recovered_hash: str) -> Check:
    """``dataex replay``'s exit status and output against the state hash of the exchange
    that recovery (the server's start-up) rebuilds from the same database."""
    replayed_hash = parse_state_hash(output)
    ok = returncode == 0 and _REPRODUCED in output and replayed_hash == recovered_hash
    last = output.strip().splitlines()[-1] if output.strip() else "no output"
    return Check(
        "dataex replay reproduces the settlement and the recovered state",
        ok,
        f"state hash {replayed_hash[:16]}… = recovered"
        if ok and replayed_hash
        else f"exit {returncode}, state hash {replayed_hash} against recovered "
        f"{recovered_hash}; {last}",
    )
