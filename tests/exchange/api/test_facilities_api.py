"""Loan facilities over REST and the private stream (exchange/api/routes/facilities.py): the
lifecycle from offer to repayment, alerts reaching both parties, liquidation to default, every
bad request a 4xx naming its reason that changes nothing, and the collateral monitor that
posts the exchange's valuations of pledged licences."""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.testclient import WebSocketTestSession

from exchange import commands as c
from exchange.api.collateral_monitor import CollateralMonitor, valuation_command
from exchange.api.schemas import iso
from exchange.facility import DAY_NS
from exchange.service import OPERATOR
from tests.exchange.api.helpers import ADMIN, BUYERS, PROVIDER, SYMBOL, Api, receive_json
from tests.exchange.helpers import ManualClock

ANN, BOB = BUYERS
BANK = "bank"
SECOND_NS = 1_000_000_000
HOUR_NS = 3_600 * SECOND_NS
PRICE = "1000.00"
UNITS = 10
# Base 10% + half the valuation range's 40% width; traded today, five comparables, a year
# of licence left: a 30% haircut, so ten units at 1,000.00 count for 7,000.00.
VALUATION = {"value": "1000.00", "low": "800.00", "high": "1200.00", "comparables": 5,
             "method": "market"}  # fmt: skip
MONITOR_TIMEOUT_S = 90.0  # the first valuation starts the pricing worker process


def _iso(ts_ns: int) -> str:
    return dt.datetime.fromtimestamp(ts_ns / SECOND_NS, dt.UTC).isoformat()


class Desk:
    """A served market where ann holds ten licences bought at 1,000.00, a lender with cash,
    and a clock the test moves, starting at 01:00 UTC of a day to come (so that no day ends
    unless the test says so). The collateral monitor is stopped unless ``monitor``: its
    valuations would move the marks the tests work out."""

    def __init__(self, api: Api, *, monitor: bool = False) -> None:
        self.api = api
        self.runtime = api.app.state.runtime
        if not monitor:
            self.runtime.monitor.stop()
        last_ns = self.runtime.read(lambda exchange: exchange.last_ts_ns)
        start_ns = (max(time.time_ns(), last_ns) // DAY_NS + 1) * DAY_NS + HOUR_NS
        self.clock = ManualClock(start_ns)
        self.runtime.sequencer.clock = self.clock
        api.market()
        api.create_participant(BANK, "lender")
        api.deposit(BANK, "1000000.00")
        api.placed(PROVIDER, "s1", "sell", PRICE, UNITS)
        api.placed(ANN, "b1", "buy", PRICE, UNITS)

    def advance(self, seconds: int) -> None:
        """Move the clock on and run the exchange's housekeeping."""
        self.clock.now_ns += seconds * SECOND_NS
        self.runtime.sequencer.execute(c.Housekeeping(OPERATOR))

    def trade(self, buyer: str, client_order_id: str, price: str) -> None:
        """The provider sells ``buyer`` a licence at ``price``; a second later the exchange
        re-marks the facilities the trade may have moved (exchange/collateral.py)."""
        self.api.placed(PROVIDER, f"s-{client_order_id}", "sell", price, 1)
        self.api.placed(buyer, client_order_id, "buy", price, 1)
        self.advance(2)

    def offer(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "borrower": ANN, "limit": "5000.00", "rate_bp": 500,
            "maturity": _iso(self.clock.now_ns + 180 * DAY_NS), "initial_ltv_bp": 5000,
            "margin_call_ltv_bp": 6500, "liquidation_ltv_bp": 8000, "cure_period_s": 3600,
            "auction_duration_s": 600,
        }  # fmt: skip
        body.update(overrides)
        return body

    def expiry(self, who: str = ANN) -> str:
        (holding,) = self.api.balances(who)["holdings"]
        return str(holding["expires_at"])

    def post_valuation(self, **overrides: Any) -> dict[str, Any]:
        path = f"/v1/instruments/{SYMBOL}/valuation"
        return self.api.expect(201, "POST", path, ADMIN, json={**VALUATION, **overrides})  # type: ignore[no-any-return]

    def active(self, **overrides: Any) -> int:
        """A facility to ann, accepted: its id."""
        body = self.offer(**overrides)
        created = self.api.expect(201, "POST", "/v1/facilities", BANK, json=body)
        facility_id = created["facility_id"]
        self.api.expect(200, "POST", f"/v1/facilities/{facility_id}/accept", ANN)
        return int(facility_id)

    def drawn(self, amount: str = "3500.00") -> tuple[int, int]:
        """An active facility, valued, ann's ten units pledged, ``amount`` drawn: its id and
        the pledge's."""
        facility_id = self.active()
        self.post_valuation()
        body = {"symbol": SYMBOL, "quantity": UNITS, "expires_at": self.expiry()}
        pledged = self.api.expect(201, "POST", f"/v1/facilities/{facility_id}/pledges", ANN,
                                  json=body)  # fmt: skip
        self.api.expect(200, "POST", f"/v1/facilities/{facility_id}/draw", ANN,
                        json={"amount": amount})  # fmt: skip
        return facility_id, int(pledged["pledge_id"])

    def refused(self, status: int, reason: str, method: str, path: str, who: str | None,
                *words: str, **kwargs: Any) -> str:  # fmt: skip
        """Assert the request is refused with ``status`` and ``reason``, its detail holding
        ``words``, and journals nothing; the detail."""
        seq = self.api.journal_seq()
        body = self.api.expect(status, method, path, who, **kwargs)
        assert body["reason"] == reason, body
        for word in words:
            assert word in body["detail"], (word, body)
        assert self.api.journal_seq() == seq
        return str(body["detail"])


@pytest.fixture
def desk(api: Api) -> Desk:
    return Desk(api)


def _until_alert(websocket: WebSocketTestSession) -> dict[str, Any]:
    """The next alert on a private stream (order events may come first)."""
    while True:
        message = receive_json(websocket)
        if message["type"] == "alert":
            return message  # type: ignore[no-any-return]


# -- the lifecycle -------------------------------------------------------------------------


def test_a_facility_is_offered_accepted_pledged_drawn_repaid_and_released(desk: Desk):
    api = desk.api
    body = desk.offer(client_facility_id="bank-001", haircut={"base_bp": 1000})
    created = api.expect(201, "POST", "/v1/facilities", BANK, json=body)
    facility_id = created["facility_id"]
    assert created["status"] == "proposed"
    assert created["lender"] == BANK and created["borrower"] == ANN
    assert created["limit"] == "5000.00" and created["debt"] == "0.00"
    assert created["haircut"]["base_bp"] == 1000 and created["haircut"]["range_share_pct"] == 50
    assert created["client_facility_id"] == "bank-001"
    # A retry answers the original and journals nothing; other content under the id is a 409.
    seq = api.journal_seq()
    again = api.expect(201, "POST", "/v1/facilities", BANK, json=body)
    assert again["facility_id"] == facility_id and api.journal_seq() == seq
    desk.refused(409, "VALIDATION_IDEMPOTENCY_CONFLICT", "POST", "/v1/facilities", BANK,
                 "bank-001", json={**body, "limit": "6000.00"})  # fmt: skip

    accepted = api.expect(200, "POST", f"/v1/facilities/{facility_id}/accept", ANN)
    assert accepted["status"] == "active"
    assert accepted["client_facility_id"] is None  # the lender's own id
    valuation = desk.post_valuation()
    assert valuation["value"] == "1000.00" and valuation["low"] == "800.00"

    pledge = {"symbol": SYMBOL, "quantity": UNITS, "expires_at": desk.expiry()}
    pledged = api.expect(201, "POST", f"/v1/facilities/{facility_id}/pledges", ANN, json=pledge)
    (shown,) = pledged["pledges"]
    assert shown["pledge_id"] == pledged["pledge_id"]
    assert (shown["units"], shown["haircut_bp"], shown["value"]) == (UNITS, 3000, "7000.00")
    assert shown["expires_at"] == pledge["expires_at"]
    assert pledged["collateral_value"] == "7000.00" and pledged["ltv_bp"] == 0
    assert api.balances(ANN)["holdings"] == []  # under the lien, out of reach of orders
    cash_before = api.balances(ANN)["cash_available"]

    drawn = api.expect(200, "POST", f"/v1/facilities/{facility_id}/draw", ANN,
                       json={"amount": "3500.00"})  # fmt: skip
    assert (drawn["drawn"], drawn["debt"], drawn["ltv_bp"]) == ("3500.00", "3500.00", 5000)
    assert float(api.balances(ANN)["cash_available"]) == float(cash_before) + 3500

    repaid = api.expect(200, "POST", f"/v1/facilities/{facility_id}/repay", ANN,
                        json={"amount": "500.00"})  # fmt: skip
    assert (repaid["debt"], repaid["repaid"]) == ("3000.00", "500.00")
    margin = api.expect(200, "POST", f"/v1/facilities/{facility_id}/margin", ANN,
                        json={"amount": "100.00"})  # fmt: skip
    assert (margin["margin"], margin["collateral_value"]) == ("100.00", "7100.00")
    back = api.expect(200, "POST", f"/v1/facilities/{facility_id}/margin/return", ANN,
                      json={"amount": "100.00"})  # fmt: skip
    assert back["margin"] == "0.00"
    # One unit may go back (3,000 / 6,300 is 47.6%); a second would take it over 50%.
    release = f"/v1/facilities/{facility_id}/pledges/{pledged['pledge_id']}/release"
    released = api.expect(200, "POST", release, ANN, json={"quantity": 1})
    assert released["pledges"][0]["units"] == UNITS - 1 and released["ltv_bp"] == 4762
    desk.refused(422, "RISK_LTV_LIMIT", "POST", release, ANN, "initial 50.00%",
                 json={"quantity": 2})  # fmt: skip

    # Both parties list it; a third participant sees nothing of it.
    for who, role in ((ANN, "borrower"), (BANK, "lender")):
        (listed,) = api.expect(200, "GET", "/v1/facilities", who)
        assert listed["facility_id"] == facility_id and listed["debt"] == "3000.00"
        assert api.expect(200, "GET", f"/v1/facilities?role={role}", who) == [listed]
        other = "lender" if role == "borrower" else "borrower"
        assert api.expect(200, "GET", f"/v1/facilities?role={other}", who) == []
    assert api.expect(200, "GET", "/v1/facilities?status=margin_call", ANN) == []
    assert api.expect(200, "GET", "/v1/facilities", BOB) == []
    detail = api.expect(200, "GET", f"/v1/facilities/{facility_id}", BANK)
    # Accepted, pledged, drawn, repaid, margin posted and returned, a unit released.
    assert [m["ltv_bp"] for m in detail["marks"]] == [0, 0, 5000, 4286, 4226, 4286, 4762]
    assert {m["cause"] for m in detail["marks"]} == {"facility"}
    assert detail["alerts"] == []

    # Repaid in full, everything may go back.
    api.expect(200, "POST", f"/v1/facilities/{facility_id}/repay", ANN,
               json={"amount": "3000.00"})  # fmt: skip
    done = api.expect(200, "POST", release, ANN, json={"quantity": UNITS - 1})
    assert done["debt"] == "0.00" and done["pledges"][0]["units"] == 0
    assert api.balances(ANN)["holdings"][0]["units"] == UNITS


def test_a_margin_call_and_its_cure_reach_lender_and_borrower(desk: Desk):
    api = desk.api
    facility_id, pledge_id = desk.drawn()
    with (
        api.client.websocket_connect("/v1/ws/private", headers=api.headers(ANN)) as ann,
        api.client.websocket_connect("/v1/ws/private", headers=api.headers(BANK)) as bank,
        api.client.websocket_connect("/v1/ws/private", headers=api.headers(BOB)) as bob,
    ):
        for websocket in (ann, bank, bob):
            assert receive_json(websocket)["type"] == "auth"
        # A trade at 600.00 marks the ten units at 4,200.00: 3,500 / 4,200 is 83.4% >= 65%.
        desk.trade(BOB, "b2", "600.00")
        called = [_until_alert(ann), _until_alert(bank)]
        assert called[0] == called[1]
        alert = called[0]
        assert (alert["facility_id"], alert["reason"], alert["ltv_bp"]) == (
            facility_id, "margin_call", 8334,
        )  # fmt: skip
        assert alert["deadline"] == iso(desk.clock.now_ns + HOUR_NS)
        # The borrower may not take collateral back while called for margin.
        desk.refused(409, "VALIDATION_FACILITY_STATE", "POST",
                     f"/v1/facilities/{facility_id}/pledges/{pledge_id}/release", ANN,
                     "margin_call", json={"quantity": 1})  # fmt: skip
        api.expect(200, "POST", f"/v1/facilities/{facility_id}/margin", ANN,
                   json={"amount": "1500.00"})  # fmt: skip
        cured = [_until_alert(ann), _until_alert(bank)]
        assert cured[0] == cured[1] and cured[0]["reason"] == "cured"
        assert cured[0]["alert_id"] > alert["alert_id"]
        # The third participant's stream has its own order's events, and no alert: it
        # reaches the acceptance of an order placed after the cure with none on the way.
        sentinel = api.placed(BOB, "b3", "buy", "1.00", 1)["order_id"]
        seen = []
        while not seen or (seen[-1]["type"], seen[-1].get("order_id")) != ("accepted", sentinel):
            seen.append(receive_json(bob))
        assert "alert" not in {message["type"] for message in seen}
    for who in (ANN, BANK):
        page = api.expect(200, "GET", "/v1/facilities/alerts", who)
        assert [a["reason"] for a in page["alerts"]] == ["margin_call", "cured"]
        assert page["next_after"] is None
    assert api.expect(200, "GET", "/v1/facilities/alerts", BOB)["alerts"] == []


def test_alerts_are_paged_with_a_cursor(desk: Desk):
    api = desk.api
    first, _ = desk.drawn()
    desk.trade(BOB, "b2", "600.00")  # a margin call
    api.expect(200, "POST", f"/v1/facilities/{first}/margin", ANN, json={"amount": "1500.00"})
    # A second facility whose pledge expires before it matures: an alert of its own.
    second = desk.active(maturity=_iso(desk.clock.now_ns + 400 * DAY_NS))
    desk.trade(ANN, "b3", "600.00")
    body = {"symbol": SYMBOL, "quantity": 1, "expires_at": desk.expiry()}
    api.expect(201, "POST", f"/v1/facilities/{second}/pledges", ANN, json=body)
    whole = api.expect(200, "GET", "/v1/facilities/alerts", ANN)["alerts"]
    assert [a["reason"] for a in whole] == ["margin_call", "cured",
                                            "licence_expires_before_maturity"]  # fmt: skip
    pages, after = [], 0
    while True:
        page = api.expect(200, "GET", f"/v1/facilities/alerts?limit=2&after={after}", BANK)
        pages.append(page["alerts"])
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert [len(p) for p in pages] == [2, 1]
    assert [alert for page in pages for alert in page] == whole
    only = api.expect(200, "GET", f"/v1/facilities/alerts?facility_id={second}", ANN)
    assert [a["facility_id"] for a in only["alerts"]] == [second]
    desk.refused(404, "VALIDATION_UNKNOWN_FACILITY", "GET",
                 f"/v1/facilities/alerts?facility_id={second}", BOB)  # fmt: skip


def test_an_uncured_call_is_auctioned_to_default_and_the_borrower_cannot_release(desk: Desk):
    api = desk.api
    facility_id, pledge_id = desk.drawn()
    # 500.00: ten units count for 3,500.00, an LTV of 100%, past the liquidation threshold.
    desk.trade(BOB, "b2", "500.00")
    desk.advance(3_601)  # past the cure deadline: the first auction opens
    path = f"/v1/facilities/{facility_id}"
    assert api.expect(200, "GET", path, ANN)["status"] == "liquidating"
    release = f"{path}/pledges/{pledge_id}/release"
    # Every unit is at auction: none can be released, by the lender either.
    desk.refused(422, "VALIDATION_INVALID", "POST", release, BANK, "0 units", json={"quantity": 1})
    # Nobody bids above the reserve (the valuation's low end): three auctions, a day apart.
    for _ in range(3):
        desk.advance(601)
        desk.advance(86_400)
    facility = api.expect(200, "GET", path, BANK)
    assert facility["status"] == "defaulted", facility
    assert facility["pledges"][0]["units"] == UNITS
    reasons = [a["reason"] for a in facility["alerts"]]
    assert reasons.count("liquidation_started") == 3 and "defaulted" in reasons
    desk.refused(409, "VALIDATION_FACILITY_STATE", "POST", release, ANN, "defaulted",
                 json={"quantity": 1})  # fmt: skip


# -- bad requests --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "status", "reason", "words"),
    [
        ({"margin_call_ltv_bp": 9000}, 422, "VALIDATION_INVALID", "thresholds must rise"),
        ({"borrower": "nobody"}, 404, "VALIDATION_UNKNOWN_PARTICIPANT", "nobody"),
        ({"borrower": BANK}, 422, "VALIDATION_INVALID", "itself"),
        ({"limit": "12.345"}, 422, "VALIDATION_INVALID", "decimal places"),
        ({"limit": "ten"}, 422, "VALIDATION_INVALID", "limit"),
        ({"maturity": "2020-01-01T00:00:00Z"}, 422, "VALIDATION_INVALID", "future"),
        ({"maturity": "2030-01-01T00:00:00"}, 422, "VALIDATION_INVALID", "zone"),
        ({"maturity": "9999-12-31T00:00:00Z"}, 422, "VALIDATION_INVALID", "maturity"),
        ({"initial_ltv_bp": 0}, 422, "VALIDATION_INVALID", "initial_ltv_bp"),
        ({"rate_bp": 1.5}, 422, "VALIDATION_INVALID", "rate_bp"),
        ({"haircut": {"colour": 1}}, 422, "VALIDATION_INVALID", "haircut.colour"),
        ({"haircut": {"base_bp": 10_001}}, 422, "VALIDATION_INVALID", "haircut.base_bp"),
        ({"cure_period_s": 1}, 422, "VALIDATION_INVALID", "cure_period_s"),
        ({"lender": BANK}, 422, "VALIDATION_INVALID", "lender"),
        ({"client_facility_id": " x"}, 422, "VALIDATION_INVALID", "client_facility_id"),
    ],
)
def test_a_bad_offer_is_a_4xx_naming_why(
    desk: Desk, overrides: dict[str, Any], status: int, reason: str, words: str
):
    desk.refused(status, reason, "POST", "/v1/facilities", BANK, words,
                 json=desk.offer(**overrides))  # fmt: skip


def test_only_a_lender_offers_a_facility(desk: Desk):
    desk.refused(403, "AUTH_FORBIDDEN", "POST", "/v1/facilities", BOB, "lender",
                 json=desk.offer(borrower=ANN))  # fmt: skip
    desk.refused(401, "AUTH_MISSING_KEY", "POST", "/v1/facilities", None, json=desk.offer())


def test_bad_facility_requests_are_4xx_that_change_nothing(desk: Desk):
    facility_id, pledge_id = desk.drawn()
    path = f"/v1/facilities/{facility_id}"
    # Drawing above the initial LTV, or the limit.
    desk.refused(422, "RISK_LTV_LIMIT", "POST", f"{path}/draw", ANN, "above the initial 50.00%",
                 json={"amount": "0.01"})  # fmt: skip
    # Pledging units you do not hold: more than the holding, a holding you lack, another's.
    desk.trade(ANN, "b2", PRICE)
    holding = desk.expiry()
    for body, words in (
        ({"symbol": SYMBOL, "quantity": 2, "expires_at": holding}, "1 free units"),
        ({"symbol": SYMBOL, "quantity": 1, "expires_at": "2031-01-01T00:00:00Z"},
         "no licences"),
    ):  # fmt: skip
        desk.refused(422, "RISK_INSUFFICIENT_LICENCES", "POST", f"{path}/pledges", ANN, words,
                     json=body)  # fmt: skip
    desk.refused(422, "VALIDATION_INVALID", "POST", f"{path}/pledges", ANN, "provider",
                 json={"symbol": SYMBOL, "quantity": 1, "expires_at": None})  # fmt: skip
    desk.refused(422, "VALIDATION_UNKNOWN_INSTRUMENT", "POST", f"{path}/pledges", ANN, "NOPE",
                 json={"symbol": "NOPE", "quantity": 1, "expires_at": holding})  # fmt: skip
    desk.refused(422, "VALIDATION_INVALID", "POST", f"{path}/pledges", ANN, "expires_at",
                 json={"symbol": SYMBOL, "quantity": 1})  # fmt: skip
    # Only the borrower draws, repays and pledges.
    desk.refused(403, "AUTH_FORBIDDEN", "POST", f"{path}/draw", BANK, "borrower",
                 json={"amount": "1.00"})  # fmt: skip
    # Repaying more than the debt; returning margin never posted.
    desk.refused(422, "RISK_FACILITY_LIMIT", "POST", f"{path}/repay", ANN, "3500.00",
                 json={"amount": "3500.01"})  # fmt: skip
    desk.refused(422, "VALIDATION_INVALID", "POST", f"{path}/margin/return", ANN, "margin",
                 json={"amount": "1.00"})  # fmt: skip
    # Unknown facilities and pledges, and another participant's facility, are 404s.
    for who, facility in ((ANN, 999), (BOB, facility_id), (PROVIDER, facility_id)):
        desk.refused(404, "VALIDATION_UNKNOWN_FACILITY", "GET", f"/v1/facilities/{facility}",
                     who, f"no facility {facility}")  # fmt: skip
        desk.refused(404, "VALIDATION_UNKNOWN_FACILITY", "POST", f"/v1/facilities/{facility}/draw",
                     who, json={"amount": "1.00"})  # fmt: skip
        desk.refused(404, "VALIDATION_UNKNOWN_FACILITY", "POST",
                     f"/v1/facilities/{facility}/accept", who)  # fmt: skip
    unknown = pledge_id + 7
    desk.refused(404, "VALIDATION_UNKNOWN_PLEDGE", "POST", f"{path}/pledges/{unknown}/release",
                 ANN, f"no pledge {unknown}", json={"quantity": 1})  # fmt: skip
    # The facility was accepted already; ids out of range; bodies of the wrong shape.
    desk.refused(409, "VALIDATION_FACILITY_STATE", "POST", f"{path}/accept", ANN, "active")
    for bad in ("0", "-1", "x", str(2**64)):
        desk.refused(422, "VALIDATION_INVALID", "GET", f"/v1/facilities/{bad}", ANN)
    for body in ({"amount": 5}, {"amount": "-1.00"}, {"amount": "1.00", "extra": 1}, {}):
        desk.refused(422, "VALIDATION_INVALID", "POST", f"{path}/draw", ANN, json=body)
    desk.refused(422, "VALIDATION_INVALID", "POST", f"{path}/pledges/{pledge_id}/release", ANN,
                 "quantity", json={"quantity": 0})  # fmt: skip
    desk.refused(422, "VALIDATION_INVALID", "GET", "/v1/facilities?status=asleep", ANN)
    desk.refused(422, "VALIDATION_INVALID", "GET", "/v1/facilities/alerts?limit=0", ANN)


def test_valuations_and_update_attestations_are_for_admins_and_providers(desk: Desk):
    api = desk.api
    path = f"/v1/instruments/{SYMBOL}/valuation"
    desk.refused(403, "AUTH_FORBIDDEN", "POST", path, BANK, json=VALUATION)
    desk.refused(422, "VALIDATION_INVALID", "POST", path, ADMIN, "low <= value <= high",
                 json={**VALUATION, "low": "1100.00"})  # fmt: skip
    desk.refused(422, "VALIDATION_UNKNOWN_INSTRUMENT", "POST", "/v1/instruments/NOPE/valuation",
                 ADMIN, "NOPE", json=VALUATION)  # fmt: skip
    posted = desk.post_valuation(method="appraisal")
    assert posted["method"] == "appraisal" and posted["time"] is not None
    product_id = api.expect(200, "GET", f"/v1/instruments/{SYMBOL}")["product_id"]
    updates = f"/v1/products/{product_id}/updates"
    unchanged = {"quality": None}
    desk.refused(403, "AUTH_FORBIDDEN", "POST", updates, ANN, json=unchanged)
    desk.refused(404, "VALIDATION_UNKNOWN_PRODUCT", "POST", "/v1/products/P999999/updates",
                 PROVIDER, json=unchanged)  # fmt: skip
    desk.refused(422, "VALIDATION_INVALID", "POST", updates, PROVIDER, "quality", json={})
    desk.refused(422, "VALIDATION_INVALID", "POST", updates, PROVIDER, "quality",
                 json={"quality": {"completeness": 2}})  # fmt: skip
    quality = {"completeness": 0.5, "accuracy": 0.9, "timeliness": 0.8, "consistency": 0.9}
    attested = api.expect(201, "POST", updates, PROVIDER, json={"quality": quality})
    assert attested["quality"] == quality and attested["attested_at"] is not None
    assert api.expect(200, "GET", f"/v1/products/{product_id}")["quality"] == quality


def test_a_quality_downgrade_remarks_and_alerts(desk: Desk):
    api = desk.api
    facility_id, _ = desk.drawn("1000.00")
    product_id = api.expect(200, "GET", f"/v1/instruments/{SYMBOL}")["product_id"]
    quality = {"completeness": 0.5, "accuracy": 0.9, "timeliness": 0.8, "consistency": 0.9}
    api.expect(201, "POST", f"/v1/products/{product_id}/updates", PROVIDER,
               json={"quality": quality})  # fmt: skip
    facility = api.expect(200, "GET", f"/v1/facilities/{facility_id}", ANN)
    assert [a["reason"] for a in facility["alerts"]] == ["quality_downgrade"]
    assert facility["marks"][-1]["cause"] == "product"
    # Mean quality fell 10 points: twice that on the haircut.
    assert facility["pledges"][0]["haircut_bp"] == 3000 + 2 * 1000


# -- the monitor ---------------------------------------------------------------------------


def test_the_monitor_values_an_instrument_when_it_is_first_pledged(api: Api):
    desk = Desk(api, monitor=True)
    facility_id = desk.active()
    body = {"symbol": SYMBOL, "quantity": UNITS, "expires_at": desk.expiry()}
    api.expect(201, "POST", f"/v1/facilities/{facility_id}/pledges", ANN, json=body)
    deadline = time.monotonic() + MONITOR_TIMEOUT_S
    valuation = None
    while valuation is None and time.monotonic() < deadline:
        time.sleep(0.2)
        valuation = desk.runtime.read(lambda exchange: exchange.collateral.valuations.get(SYMBOL))
    assert valuation is not None, "the monitor posted no valuation"
    assert valuation.low_minor <= valuation.value_minor <= valuation.high_minor
    # Journalled as the operator's command, and the pledge marked from it.
    posted = [(r.command["actor"], r.command["symbol"]) for r in desk.runtime.ledger.journal()
              if r.command["verb"] == "post_valuation"]  # fmt: skip
    assert posted == [(OPERATOR, SYMBOL)]
    facility = api.expect(200, "GET", f"/v1/facilities/{facility_id}", BANK)
    assert facility["marks"][-1]["cause"] == "valuation"
    assert valuation.method in ("market", "cost_fallback")
    # Valued for the day: a check finds nothing more to do.
    assert desk.runtime.monitor.check() == 0


class _Unpriceable:
    def market(self, read: Any, as_of: dt.date) -> Any:
        raise ValueError("no trades to prepare a market from")


def test_a_monitor_that_cannot_value_logs_it_and_retries_later(
    desk: Desk, caplog: pytest.LogCaptureFixture
):
    facility_id = desk.active()
    body = {"symbol": SYMBOL, "quantity": UNITS, "expires_at": desk.expiry()}
    desk.api.expect(201, "POST", f"/v1/facilities/{facility_id}/pledges", ANN, json=body)
    monitor = CollateralMonitor(desk.runtime.sequencer, _Unpriceable(), retry_interval_s=3_600)  # type: ignore[arg-type]
    seq = desk.api.journal_seq()
    with caplog.at_level(logging.WARNING):
        assert monitor.check() == 0
    assert "no trades to prepare a market from" in caplog.text
    assert desk.api.journal_seq() == seq
    now_ns, due = monitor.due()
    assert due == [] and now_ns >= desk.clock.now_ns  # waiting for its retry


@pytest.mark.parametrize(
    ("amounts", "expected"),
    [
        ((10.004, 8.0, 12.5), (1000, 800, 1250)),
        ((0.001, 0.0, 0.004), (1, 1, 1)),  # at least a fen
        ((10.0, 10.004, 10.004), (1000, 1000, 1000)),  # the range holds the rounded value
    ],
)
def test_a_report_becomes_a_valuation_in_minor_units(
    amounts: tuple[float, float, float], expected: tuple[int, int, int]
):
    value, low, high = amounts
    report = SimpleNamespace(value=value, low=low, high=high, n_comparables=3, method="market")
    command = valuation_command(SYMBOL, report)  # type: ignore[arg-type]
    assert (command.value_minor, command.low_minor, command.high_minor) == expected
    assert (command.actor, command.comparables) == (OPERATOR, 3)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0, 1e16])
def test_a_report_out_of_range_is_not_posted(bad: float):
    report = SimpleNamespace(value=bad, low=1.0, high=2.0, n_comparables=3, method="market")
    with pytest.raises(ValueError, match="out of range"):
        valuation_command(SYMBOL, report)  # type: ignore[arg-type]
