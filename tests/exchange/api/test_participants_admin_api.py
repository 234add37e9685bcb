"""The operators' admin API (exchange/api/routes/participants.py): list participants,
disable and enable one, rotate and revoke its API key; each a journalled command, each bad
input a 4xx naming what is wrong."""

from __future__ import annotations

import pytest

from tests.exchange.api.helpers import ADMIN, BUYERS, MARKET_MAKER, PROVIDER, Api

ANN, BOB = BUYERS


def test_list_pages_by_id_and_filters_by_role_and_status(api: Api):
    api.market()
    listed = api.expect(200, "GET", "/v1/participants", ADMIN)
    assert [p["participant_id"] for p in listed] == sorted(
        [ADMIN, ANN, BOB, MARKET_MAKER, PROVIDER, "reg", "rev"]
    )
    ann = next(p for p in listed if p["participant_id"] == ANN)
    assert ann["status"] == "active" and ann["disabled_at"] is None
    assert ann["key_id"] == api.keys[ANN].split(".")[0]
    assert ann["created_at"].endswith("+00:00")
    assert "secret" not in str(listed) and api.keys[ANN].split(".")[1] not in str(listed)
    page = api.expect(200, "GET", "/v1/participants", ADMIN, params={"limit": 2})
    rest = api.expect(200, "GET", "/v1/participants", ADMIN,
                      params={"after": page[-1]["participant_id"]})  # fmt: skip
    assert [p["participant_id"] for p in page + rest] == [p["participant_id"] for p in listed]
    buyers = api.expect(200, "GET", "/v1/participants", ADMIN, params={"role": "buyer"})
    assert [p["participant_id"] for p in buyers] == [ANN, BOB]
    assert api.expect(200, "GET", "/v1/participants", ADMIN, params={"status": "disabled"}) == []


def test_disabling_shuts_the_participant_out_and_cancels_its_orders(api: Api):
    api.market()
    bid = api.placed(ANN, "bid", "buy", "90.00", 1)
    api.placed(BOB, "bob-bid", "buy", "90.00", 1)
    seq = api.journal_seq()
    disabled = api.expect(200, "POST", f"/v1/participants/{ANN}/disable", ADMIN,
                          json={"reason": "fees unpaid"})  # fmt: skip
    assert disabled["status"] == "disabled" and disabled["disabled_at"] is not None
    assert [(o["order_id"], o["status"]) for o in disabled["cancelled_orders"]] == [
        (bid["order_id"], "cancelled")
    ]
    assert api.journal_seq() == seq + 1
    refused = api.expect(403, "GET", "/v1/balances", ANN)
    assert refused["reason"] == "AUTH_DISABLED" and "ann is disabled" in refused["detail"]
    assert api.expect(403, "POST", "/v1/orders", ANN, json={})["reason"] == "AUTH_DISABLED"
    # Retried, it answers the same state and journals nothing.
    again = api.expect(200, "POST", f"/v1/participants/{ANN}/disable", ADMIN, json={})
    assert again["status"] == "disabled" and again["cancelled_orders"] == []
    assert api.journal_seq() == seq + 1
    assert len(api.expect(200, "GET", "/v1/orders", BOB, params={"status": "open"})) == 1

    enabled = api.expect(200, "POST", f"/v1/participants/{ANN}/enable", ADMIN, json={})
    assert enabled["status"] == "active" and enabled["disabled_at"] is None
    assert api.balances(ANN)["cash_reserved"] == "0.00"
    assert api.expect(200, "GET", "/v1/orders", ANN, params={"status": "open"}) == []


def test_rotation_shows_a_new_key_once_and_the_old_one_stops(api: Api):
    api.market()
    old = api.keys[ANN]
    issued = api.expect(201, "POST", f"/v1/participants/{ANN}/api-key", ADMIN)
    assert issued["participant_id"] == ANN and issued["api_key"].startswith(issued["key_id"] + ".")
    refused = api.request("GET", "/v1/balances", headers={"X-API-Key": old})
    assert refused.status_code == 401 and refused.json()["reason"] == "AUTH_INVALID_KEY"
    api.keys[ANN] = issued["api_key"]
    assert api.expect(200, "GET", "/v1/participants/me", ANN)["participant_id"] == ANN
    listed = api.expect(200, "GET", "/v1/participants", ADMIN, params={"role": "buyer"})
    assert listed[0]["key_id"] == issued["key_id"]

    revoked = api.expect(200, "DELETE", f"/v1/participants/{ANN}/api-key/{issued['key_id']}",
                         ADMIN)  # fmt: skip
    assert revoked["key_id"] is None
    assert api.request("GET", "/v1/balances", ANN).status_code == 401
    gone = api.expect(404, "DELETE", f"/v1/participants/{ANN}/api-key/{issued['key_id']}", ADMIN)
    assert gone["reason"] == "VALIDATION_UNKNOWN_KEY"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "reason"),
    [
        ("POST", "/v1/participants/nobody/disable", {}, 404, "VALIDATION_UNKNOWN_PARTICIPANT"),
        ("POST", "/v1/participants/nobody/enable", {}, 404, "VALIDATION_UNKNOWN_PARTICIPANT"),
        ("POST", "/v1/participants/nobody/api-key", None, 404, "VALIDATION_UNKNOWN_PARTICIPANT"),
        ("DELETE", "/v1/participants/ann/api-key/dxk_nope", None, 404, "VALIDATION_UNKNOWN_KEY"),
        ("POST", f"/v1/participants/{ADMIN}/disable", {}, 403, "AUTH_FORBIDDEN"),
        ("POST", "/v1/participants/ann/disable", {"reason": "x" * 201}, 422,
         "VALIDATION_INVALID"),
        ("POST", "/v1/participants/ann/disable", {"why": "x"}, 422, "VALIDATION_INVALID"),
        ("POST", "/v1/participants/ann/disable", None, 422, "VALIDATION_INVALID"),
        ("POST", "/v1/participants/" + "x" * 40 + "/disable", {}, 422, "VALIDATION_INVALID"),
        ("GET", "/v1/participants?limit=0", None, 422, "VALIDATION_INVALID"),
        ("GET", "/v1/participants?status=gone", None, 422, "VALIDATION_INVALID"),
        ("GET", "/v1/participants?colour=red", None, 422, "VALIDATION_INVALID"),
    ],
)
def test_bad_operator_requests_are_4xx_with_a_reason(
    api: Api, method: str, path: str, body: dict | None, status: int, reason: str
):
    api.market()
    seq = api.journal_seq()
    answer = api.expect(status, method, path, ADMIN, json=body)
    assert answer["reason"] == reason and answer["detail"]
    assert api.journal_seq() == seq


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/participants"),
        ("POST", "/v1/participants/ann/disable"),
        ("POST", "/v1/participants/ann/enable"),
        ("POST", "/v1/participants/ann/api-key"),
        ("DELETE", "/v1/participants/ann/api-key/dxk_0000000000000000"),
    ],
)
def test_operator_routes_are_the_admins_alone(api: Api, method: str, path: str):
    api.market()
    body = {} if path.endswith("able") else None
    assert api.expect(403, method, path, ANN, json=body)["reason"] == "AUTH_FORBIDDEN"
    assert api.expect(401, method, path, json=body)["reason"] == "AUTH_MISSING_KEY"
