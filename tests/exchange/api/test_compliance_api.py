"""The compliance gate over HTTP (exchange/api/routes/products.py, instruments.py): what may
be approved and listed, what a suspension does to a market, and the history it leaves."""

from __future__ import annotations

from typing import Any

import httpx

from tests.exchange.api.helpers import (
    ADMIN,
    BUYERS,
    MARKET_MAKER,
    PROVIDER,
    REGULATOR,
    REVIEWER,
    SYMBOL,
    Api,
    instrument_body,
    product_body,
    review_body,
)

ANN, BOB = BUYERS
NEW_SYMBOL = "NEW.NX12"


def _product(api: Api, **overrides: Any) -> str:
    product = api.expect(201, "POST", "/v1/products", PROVIDER, json=product_body(**overrides))
    return product["product_id"]


def _status(api: Api, product_id: str) -> str:
    return api.expect(200, "GET", f"/v1/products/{product_id}")["status"]


def _review(api: Api, product_id: str, decision: str = "approved") -> httpx.Response:
    return api.request("POST", f"/v1/products/{product_id}/reviews", REVIEWER,
                       json=review_body(decision))  # fmt: skip


def _refused(response: httpx.Response, status: int, reason: str, words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["reason"] == reason, body
    assert words in body["detail"], body


def _list(api: Api, product_id: str, symbol: str = NEW_SYMBOL) -> httpx.Response:
    return api.request("POST", "/v1/instruments", PROVIDER,
                       json=instrument_body(product_id, symbol))  # fmt: skip


def test_product_not_approved_cannot_list_an_instrument(api: Api):
    api.participants()
    pending, changes, rejected = (_product(api) for _ in range(3))
    assert _review(api, changes, "changes_requested").status_code == 201
    assert _review(api, rejected, "rejected").status_code == 201
    journal_seq = api.journal_seq()

    for product_id, status in ((pending, "pending_review"), (changes, "changes_requested"),
                               (rejected, "rejected")):  # fmt: skip
        _refused(_list(api, product_id), 409, "COMPLIANCE_NOT_APPROVED", status)
    assert api.journal_seq() == journal_seq
    assert api.expect(200, "GET", "/v1/instruments") == []
    assert api.expect(404, "GET", f"/v1/instruments/{NEW_SYMBOL}")["reason"] == "NOT_FOUND"


def test_core_data_is_never_approved(api: Api):
    api.participants()
    product_id = _product(api, classification="core")
    journal_seq = api.journal_seq()
    _refused(_review(api, product_id), 409, "COMPLIANCE_CORE_DATA", "core data")
    assert api.journal_seq() == journal_seq
    assert _status(api, product_id) == "pending_review"
    assert api.expect(200, "GET", f"/v1/products/{product_id}/compliance") == []
    # Refusing it is a decision the reviewer may take.
    assert _review(api, product_id, "rejected").json()["status"] == "rejected"


def test_personal_information_must_be_desensitised_before_approval(api: Api):
    api.participants()
    product_id = _product(api, personal_information=True, desensitised=False)
    _refused(_review(api, product_id), 409, "COMPLIANCE_NOT_DESENSITISED", "desensitised")
    assert _status(api, product_id) == "pending_review"

    assert _review(api, product_id, "changes_requested").json()["status"] == "changes_requested"
    resubmitted = api.expect(200, "POST", f"/v1/products/{product_id}/resubmit", PROVIDER, json={
        "classification": "general", "personal_information": True, "desensitised": True,
        "lawful_source_attestation": "Collected under concession contract HZ-2021-17",
        "note": "identifiers hashed with a per-release salt",
    })  # fmt: skip
    assert (resubmitted["status"], resubmitted["desensitised"]) == ("pending_review", True)
    assert _review(api, product_id).json()["status"] == "approved"


def test_product_without_a_lawful_source_is_not_approved(api: Api):
    api.participants()
    product_id = _product(api, lawful_source_attestation="")
    _refused(_review(api, product_id), 409, "COMPLIANCE_NO_LAWFUL_SOURCE", "lawful-source")


def test_approval_needs_every_check_passed(api: Api):
    api.participants()
    product_id = _product(api)
    body = review_body()
    body["checks"]["risk_controls"] = False
    response = api.request("POST", f"/v1/products/{product_id}/reviews", REVIEWER, json=body)
    _refused(response, 422, "VALIDATION_INVALID", "risk_controls")
    assert _status(api, product_id) == "pending_review"


def test_important_data_lists_only_with_the_regulators_approval(api: Api):
    api.participants()
    product_id = _product(api, classification="important")
    decision_path = f"/v1/products/{product_id}/regulator-decision"
    approve = {"decision": "approved", "opinion": "cross-border controls verified"}

    assert _review(api, product_id).json()["status"] == "awaiting_regulator"
    _refused(_list(api, product_id), 409, "COMPLIANCE_NOT_APPROVED", "awaiting_regulator")
    # Only the regulator decides, and only to approve or reject.
    assert api.expect(403, "POST", decision_path, REVIEWER, json=approve)["reason"] == (
        "AUTH_FORBIDDEN"
    )
    changes = {"decision": "changes_requested", "opinion": "more detail"}
    assert "decision" in api.expect(422, "POST", decision_path, REGULATOR, json=changes)["detail"]
    assert _status(api, product_id) == "awaiting_regulator"

    assert api.expect(201, "POST", decision_path, REGULATOR, json=approve)["status"] == "approved"
    assert _list(api, product_id).status_code == 201
    # A decision made is not made again.
    _refused(api.request("POST", decision_path, REGULATOR, json=approve), 409,
             "COMPLIANCE_REVIEW_STATE", "approved")  # fmt: skip


def test_general_data_needs_no_regulator_and_gets_no_regulator_decision(api: Api):
    api.participants()
    product_id = api.approved_product()
    response = api.request("POST", f"/v1/products/{product_id}/regulator-decision", REGULATOR,
                           json={"decision": "approved", "opinion": "n/a"})  # fmt: skip
    _refused(response, 409, "COMPLIANCE_REVIEW_STATE", "awaiting_regulator")


def test_suspension_halts_the_instrument_and_cancels_its_resting_orders(api: Api):
    market = api.market()
    ann_bid = api.placed(ANN, "ann-bid", "buy", "90.00", 5)
    bob_bid = api.placed(BOB, "bob-bid", "buy", "91.00", 2)
    ask = api.placed(PROVIDER, "ask", "sell", "100.00", 3)
    assert api.balances(ANN)["cash_reserved"] == "450.00"

    suspended = api.expect(200, "POST", f"/v1/products/{market.product_id}/suspend", REGULATOR,
                           json={"reason": "source contract under investigation"})  # fmt: skip
    assert suspended["status"] == "suspended"
    assert api.expect(200, "GET", f"/v1/instruments/{SYMBOL}")["phase"] == "halted"
    book = api.expect(200, "GET", f"/v1/market/{SYMBOL}/book")
    assert (book["phase"], book["bids"], book["asks"]) == ("halted", [], [])
    for who, order in ((ANN, ann_bid), (BOB, bob_bid), (PROVIDER, ask)):
        now = api.expect(200, "GET", f"/v1/orders/{order['order_id']}", who)
        assert (now["status"], now["remaining_quantity"]) == ("cancelled", 0), now
        assert now["cancel_reason"] == "halted", now
    for who in (ANN, BOB):
        balances = api.balances(who)
        assert (balances["cash_available"], balances["cash_reserved"]) == ("100000.00", "0.00")
    assert api.expect(200, "GET", "/v1/health")["open_orders"] == 0

    journal_seq = api.journal_seq()
    for who, side in ((ANN, "buy"), (MARKET_MAKER, "buy"), (PROVIDER, "sell")):
        _refused(api.order(who, f"{who}-after", side, "95.00", 1), 409, "COMPLIANCE_SUSPENDED",
                 "suspended")  # fmt: skip
    _refused(
        api.request("POST", f"/v1/instruments/{SYMBOL}/phase", ADMIN, json={"phase": "continuous"}),
        409,
        "COMPLIANCE_SUSPENDED",
        "suspended",
    )
    _refused(
        api.request(
            "POST", f"/v1/products/{market.product_id}/suspend", ADMIN, json={"reason": "again"}
        ),
        409,
        "COMPLIANCE_REVIEW_STATE",
        "suspended",
    )
    _refused(_list(api, market.product_id), 409, "COMPLIANCE_NOT_APPROVED", "suspended")
    assert api.journal_seq() == journal_seq

    reinstated = api.expect(200, "POST", f"/v1/products/{market.product_id}/reinstate", ADMIN,
                            json={"reason": "investigation closed"})  # fmt: skip
    assert reinstated["status"] == "approved"
    assert api.expect(200, "GET", f"/v1/instruments/{SYMBOL}")["phase"] == "pre_open"
    assert api.placed(ANN, "ann-again", "buy", "90.00", 1)["status"] == "open"


def test_reinstating_restores_the_status_before_the_suspension(api: Api):
    """A suspension is no way round the gate: a product that was never approved is not
    approved by lifting its suspension."""
    api.participants()
    core = _product(api, classification="core")
    assert _review(api, core, "rejected").status_code == 201
    pending = _product(api)
    for product_id, before in ((core, "rejected"), (pending, "pending_review")):
        path = f"/v1/products/{product_id}"
        api.expect(200, "POST", f"{path}/suspend", ADMIN, json={"reason": "checking"})
        reinstated = api.expect(200, "POST", f"{path}/reinstate", ADMIN, json={"reason": "done"})
        assert reinstated["status"] == before
        _refused(_list(api, product_id, f"X{product_id}.NX12"), 409, "COMPLIANCE_NOT_APPROVED",
                 before)  # fmt: skip


def test_compliance_history_lists_every_decision_in_order(api: Api):
    api.participants()
    product_id = _product(api, classification="important")
    path = f"/v1/products/{product_id}"
    _review(api, product_id, "changes_requested")
    api.expect(200, "POST", f"{path}/resubmit", PROVIDER, json={
        "classification": "important", "personal_information": False, "desensitised": False,
        "lawful_source_attestation": "Collected under concession contract HZ-2021-17",
        "note": "retention policy attached",
    })  # fmt: skip
    _review(api, product_id, "approved")
    api.expect(201, "POST", f"{path}/regulator-decision", REGULATOR,
               json={"decision": "approved", "opinion": "export controls checked"})  # fmt: skip
    api.expect(200, "POST", f"{path}/suspend", REGULATOR, json={"reason": "complaint"})
    api.expect(200, "POST", f"{path}/reinstate", ADMIN, json={"reason": "complaint withdrawn"})

    history = api.expect(200, "GET", f"{path}/compliance")
    assert [(r["action"], r["actor"], r["decision"], r["status_after"]) for r in history] == [
        ("review", REVIEWER, "changes_requested", "changes_requested"),
        ("resubmitted", PROVIDER, None, "pending_review"),
        ("review", REVIEWER, "approved", "awaiting_regulator"),
        ("regulator_decision", REGULATOR, "approved", "approved"),
        ("suspended", REGULATOR, None, "suspended"),
        ("reinstated", ADMIN, None, "approved"),
    ]
    assert [r["opinion"] for r in history] == [
        "changes_requested after review", "retention policy attached", "approved after review",
        "export controls checked", "complaint", "complaint withdrawn",
    ]  # fmt: skip
    assert history[0]["checks"] == review_body()["checks"]
    seqs = [r["seq"] for r in history]
    assert seqs == sorted(set(seqs))
    times = [r["time"] for r in history]
    assert times == sorted(times)
    assert api.expect(404, "GET", "/v1/products/P999999/compliance")["reason"] == (
        "VALIDATION_UNKNOWN_PRODUCT"
    )
