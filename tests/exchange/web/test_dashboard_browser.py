"""The dashboard in a real browser (Debian's headless Chromium) against a live demo market:
every page loads without a console error, the ladder follows the market stream, the order
ticket places and cancels, the valuation shows a value and a range, and the proof form
accepts a good proof and rejects a tampered one.

One server and one browser serve the whole module: starting either costs more than a test.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.exchange.web.browser import MISSING, DemoMarket, chromium, console_errors, demo_market

pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"not installed: {MISSING}")

FLOW = "ZJPARK.FLOW.NX12.COM"
PAGES = ["/", f"/markets/{FLOW}", "/markets/ZJPARK.PAY.NX12.INT", "/markets/ZJGRID.LOAD.EX24.COM",
         "/products/P000001", "/account", "/collateral", "/ledger", "/reports"]  # fmt: skip
# Far below where the demo's traders quote (around 120), so that nobody trades with it.
RESTING_PRICE = "61.00"
KEY_ITEM = "dataex.apiKey"
BURST_ORDERS = 200
MAX_FRAMES_PER_S = 10


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoMarket]:
    with demo_market(tmp_path_factory.mktemp("dashboard")) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


@pytest.fixture
def page(browser: Any, market: DemoMarket) -> Iterator[Any]:
    """The browser, its tab holding the guest's key; no console error may remain after."""
    browser.get(market.base_url + "/")
    browser.execute_script("sessionStorage.setItem(arguments[0], arguments[1])",
                           KEY_ITEM, market.guest_key)  # fmt: skip
    console_errors(browser)
    yield browser
    assert console_errors(browser) == []


def _wait(driver: Any, condition: Any, what: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 10).until(lambda d: condition(d), message=what)


def _click(driver: Any, css: str) -> None:
    """Click what ``css`` selects, finding it again if a re-render replaced it meanwhile."""
    from selenium.common.exceptions import StaleElementReferenceException

    def clicked(d: Any) -> bool:
        try:
            d.find_element("css selector", css).click()
        except StaleElementReferenceException:
            return False
        return True

    _wait(driver, clicked, f"click {css}")


def _texts(driver: Any, css: str) -> list[str]:
    """The text of every element ``css`` selects, read at one instant: the page re-renders
    rows as the stream goes, so an element found a moment ago may be gone already."""
    script = "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent.trim())"
    return driver.execute_script(script, css)


def _text(driver: Any, css: str) -> str:
    return " ".join(_texts(driver, css))


def _api(market: DemoMarket) -> httpx.Client:
    return httpx.Client(base_url=market.base_url, headers={"X-API-Key": market.guest_key},
                        timeout=10)  # fmt: skip


def test_every_page_loads_without_console_errors(page: Any, market: DemoMarket):
    for path in PAGES:
        page.get(market.base_url + path)
        _wait(page, lambda d: d.execute_script("return document.readyState") == "complete", path)
        assert page.find_element("css selector", "h1").text, path
        assert console_errors(page) == [], path
    # The key never reaches a URL: not the page's, nor any the page requested.
    urls = page.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )  # fmt: skip
    assert not [url for url in [page.current_url, *urls] if market.guest_key in url]


def test_every_control_has_a_name(page: Any, market: DemoMarket):
    """Each field has a label (or an ARIA name), each button words: nothing a screen reader
    would announce as a bare "edit text" or "button"."""
    script = """return [...document.querySelectorAll('input, select, textarea, button')]
        .filter(e => e.type !== 'hidden' && e.type !== 'radio')
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                     && !(e.tagName === 'BUTTON' && e.textContent.trim()))
        .map(e => e.outerHTML.slice(0, 80))"""
    for path in PAGES:
        page.get(market.base_url + path)
        assert page.execute_script(script) == [], path


def test_a_burst_of_orders_renders_at_most_ten_frames_a_second(page: Any, market: DemoMarket):
    """Two hundred orders in a few seconds: the ladder follows, redrawn at most about ten
    times a second (each redraw replaces the rows of both sides once)."""
    page.get(f"{market.base_url}/markets/{FLOW}?levels=50")
    _wait(page, lambda d: _text(d, "#stream-status") == "live", "the stream connects")
    page.execute_script("""window.redraws = 0;
        new MutationObserver(() => { window.redraws += 1; })
            .observe(document.getElementById('book-bids'), {childList: true});""")
    started = time.monotonic()
    with _api(market) as client:
        ids = []
        for n in range(BURST_ORDERS):
            price = f"{50 + n % 10}.00"  # below the traders: nothing trades
            body = {"client_order_id": f"burst-{uuid.uuid4().hex[:8]}", "symbol": FLOW,
                    "side": "buy", "price": price, "quantity": 1}  # fmt: skip
            ids.append(client.post("/v1/orders", json=body).json()["order_id"])
        _wait(page, lambda d: "59.00" in _texts(d, "#book-bids td:nth-child(2)"), "the burst")
        elapsed_s = time.monotonic() - started
        redraws = page.execute_script("return window.redraws")
        for order_id in ids:
            client.delete(f"/v1/orders/{order_id}")
    # One more frame than the rate allows: the first may come at once.
    assert 1 <= redraws <= MAX_FRAMES_PER_S * elapsed_s + 1, (redraws, elapsed_s)


def test_the_ladder_shows_an_order_submitted_through_the_api(page: Any, market: DemoMarket):
    page.get(f"{market.base_url}/markets/{FLOW}?levels=50")
    _wait(page, lambda d: _text(d, "#stream-status") == "live", "the stream connects")
    bids = "#book-bids td:nth-child(2)"
    assert RESTING_PRICE not in _texts(page, bids)
    with _api(market) as client:
        body = {"client_order_id": f"ladder-{uuid.uuid4().hex[:8]}", "symbol": FLOW,
                "side": "buy", "price": RESTING_PRICE, "quantity": 3}  # fmt: skip
        order = client.post("/v1/orders", json=body)
        assert order.status_code == 201, order.text
        try:
            _wait(page, lambda d: RESTING_PRICE in _texts(d, bids), "the bid reaches the ladder")
        finally:
            client.delete(f"/v1/orders/{order.json()['order_id']}")
    _wait(page, lambda d: RESTING_PRICE not in _texts(d, bids), "the cancelled bid leaves")


def test_the_order_ticket_places_and_cancels_an_order(page: Any, market: DemoMarket):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    page.get(market.base_url + "/account")
    _wait(page, lambda d: "guest" in _text(d, "#who"), "the private stream signs in")
    Select(page.find_element(By.ID, "t-symbol")).select_by_value(FLOW)
    page.find_element(By.ID, "t-price").send_keys("62.00")
    quantity = page.find_element(By.ID, "t-quantity")
    quantity.clear()
    quantity.send_keys("2")
    page.find_element(By.CSS_SELECTOR, "#ticket button[type=submit]").click()
    _wait(page, lambda d: "open" in _text(d, "#ticket-status"), "the order rests")
    order_id = _text(page, "#ticket-status").split(":")[0].removeprefix("Order ")
    row = f'#orders tr[data-order="{order_id}"]'
    _wait(page, lambda d: _texts(d, row), "the order is listed")
    assert "62.00" in _text(page, row)
    _click(page, f"{row} button")
    _wait(page, lambda d: "cancelled" in _text(d, "#ticket-status"), "the order is cancelled")
    _wait(page, lambda d: not _texts(d, row), "the order leaves the list")
    with _api(market) as client:
        assert client.get(f"/v1/orders/{order_id}").json()["status"] == "cancelled"


def test_the_valuation_shows_a_value_and_a_range(page: Any, market: DemoMarket):
    page.get(market.base_url + "/products/P000001")
    _wait(page, lambda d: _text(d, "#v-value"), "the valuation arrives")
    value = float(_text(page, "#v-value"))
    low, high = (float(x) for x in _text(page, "#v-range").split(" to "))
    assert 0 < low < value < high


def test_the_proof_form_accepts_a_good_proof_and_rejects_a_tampered_one(
    page: Any, market: DemoMarket
):
    from selenium.webdriver.common.by import By

    page.get(market.base_url + "/ledger")
    seq = _guest_entry(market)
    page.find_element(By.ID, "entry-seq").send_keys(str(seq))
    page.find_element(By.CSS_SELECTOR, "#fetch-proof button").click()
    box = page.find_element(By.ID, "proof-json")
    _wait(page, lambda d: box.get_attribute("value"), "the proof is fetched")
    check = page.find_element(By.CSS_SELECTOR, "#check-proof button")
    check.click()
    _wait(page, lambda d: _text(d, "#proof-result").startswith("Verified"), "a good proof")
    good = json.loads(box.get_attribute("value"))
    # The entry altered (its stated leaf hash then disagrees), and the entry altered with its
    # leaf hash dropped, and one hash of the audit path altered: none reaches the root.
    entry = good["entry"].replace(market.guest_id, market.guest_id.upper(), 1)
    assert entry != good["entry"]
    first = good["hashes"][0]
    path = [("0" if first[0] != "0" else "1") + first[1:], *good["hashes"][1:]]
    for tampered, reason in (
        ({**good, "entry": entry}, "leaf hash"),
        ({key: value for key, value in good.items() if key != "leaf_hash"} | {"entry": entry},
         "root hash"),
        ({**good, "hashes": path}, "root hash"),
    ):  # fmt: skip
        page.execute_script("arguments[0].value = arguments[1]", box, json.dumps(tampered))
        check.click()
        _wait(
            page,
            lambda d, reason=reason: (
                _text(d, "#proof-result").startswith("Does not verify")
                and reason in _text(d, "#proof-result")
            ),
            f"tampered: {reason}",
        )
    page.execute_script("arguments[0].value = arguments[1]", box, json.dumps(good))
    check.click()
    _wait(page, lambda d: _text(d, "#proof-result").startswith("Verified"), "good again")


def test_the_ledger_page_lists_ones_own_entries_and_proves_one(page: Any, market: DemoMarket):
    """The guest's entries, as ``GET /v1/ledger/entries`` gives them; a row's button fetches
    that entry's proof, which the page then verifies."""
    with _api(market) as client:
        own = [e["seq"] for e in client.get("/v1/ledger/entries?limit=50").json()["entries"]]
    assert own, "the guest has no entries"
    page.get(market.base_url + "/ledger")
    _click(page, "#own-entries summary")
    _click(page, "#list-entries button")
    _wait(page, lambda d: _texts(d, "#entries tbody tr[data-entry] td:nth-child(1)"), "the list")
    assert [int(seq) for seq in _texts(page, "#entries tbody td:nth-child(1)")] == own
    _click(page, f'#entries tr[data-entry="{own[0]}"] button')
    box = page.find_element("id", "proof-json")
    _wait(page, lambda d: box.get_attribute("value"), "the proof is fetched")
    assert json.loads(box.get_attribute("value"))["seq"] == own[0]
    _click(page, "#check-proof button")
    _wait(page, lambda d: _text(d, "#proof-result").startswith("Verified"), "the proof checks")


def test_the_collateral_page_shows_the_facility_to_its_lender_and_its_borrower(
    page: Any, market: DemoMarket
):
    """Each party sees the demo's facility with its LTV (as the API gives it), the chart of
    its LTV against the three thresholds, and the alerts; a quality downgrade the borrower
    attests reaches the page as an alert over the private stream."""
    assert set(market.party_keys) == {"hz-bank", "hz-parking"}, market.party_keys
    for party, key in market.party_keys.items():
        page.execute_script("sessionStorage.setItem(arguments[0], arguments[1])", KEY_ITEM, key)
        page.get(market.base_url + "/collateral")
        _wait(page, lambda d: _texts(d, "#facilities tbody tr[data-facility] td:nth-child(1)"),
              f"{party}'s facilities")  # fmt: skip
        with httpx.Client(base_url=market.base_url, headers={"X-API-Key": key}, timeout=10) as c:
            facility = c.get("/v1/facilities").json()[0]
        role = "lender" if party == "hz-bank" else "borrower"
        assert _text(page, "#facilities tbody tr td:nth-child(2)") == role
        ltv = _text(page, "#facilities tbody td.ltv")
        assert ltv.endswith("%") and 0 < float(ltv[:-1]) < facility["margin_call_ltv_bp"] / 100, ltv
        _wait(page, lambda d: _text(d, "#stream-status") == "live", "the alerts stream")
        _wait(page, lambda d: d.find_elements("css selector", "#ltv-chart canvas"), "the chart")
        assert "margin call 65.00%" in _text(page, "#ltv-note")
        assert "unsold issuance" in _text(page, "#pledges tbody")
        assert _texts(page, "#alerts tbody tr"), "the alerts table"
    # The borrower is the flow product's provider: a lower quality is a deterioration of
    # its collateral, alerted to both parties (the page holds the borrower's key now).
    borrower = {"X-API-Key": market.party_keys["hz-parking"]}
    with httpx.Client(base_url=market.base_url, headers=borrower, timeout=10) as client:
        now = client.post("/v1/products/P000001/updates", json={"quality": None})
        assert now.status_code == 201, now.text
        quality = now.json()["quality"]
        lower = {name: round(score - 0.1, 4) for name, score in quality.items()}
        downgraded = client.post("/v1/products/P000001/updates", json={"quality": lower})
        assert downgraded.status_code == 201, downgraded.text
        try:
            _wait(page, lambda d: "quality downgrade" in _text(d, "#alerts tbody"), "the alert")
        finally:
            client.post("/v1/products/P000001/updates", json={"quality": quality})


def _guest_entry(market: DemoMarket) -> int:
    """The number of the guest's first ledger entry (its deposit): the first the guest's key
    may prove."""
    with _api(market) as client:
        (first,) = client.get("/v1/ledger/entries?limit=1").json()["entries"]
    return int(first["seq"])


def test_screens_fit_a_phone(tmp_path: Path, market: DemoMarket):
    """At a phone's width no page scrolls sideways (wide tables scroll in their own box)."""
    from tests.exchange.web.browser import PHONE

    with chromium(PHONE, phone=True) as phone:
        for path in PAGES:
            phone.get(market.base_url + path)
            root = "document.documentElement"
            widths = phone.execute_script(f"return [{root}.clientWidth, {root}.scrollWidth]")
            assert widths[0] == PHONE[0] and widths[1] <= widths[0], (path, widths)
