"""Screenshots of the dashboard for the documentation (``docs/img/dashboard-*.png``).

    python -m tests.exchange.web.screenshots docs/img [--warm-up-s 150] [--only PAGE]

Starts the demo market, lets its traders run for the warm-up (a few minutes give the
candles a few bars), acts as its guest (an order resting, a fill, a proof checked) and as
the borrower (a lower quality attested, which alerts the facility's parties), and saves
each page at 1280 CSS pixels wide, and the instrument at a phone's width, in 256 colours to
keep the files small; the collateral page as the demo facility's lender, the bank. Needs
Debian's chromium and chromium-driver.
"""

from __future__ import annotations

import argparse
import base64
import io
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from tests.exchange.web.browser import DESKTOP, PHONE, chromium, demo_market

FLOW = "ZJPARK.FLOW.NX12.COM"
SETTLE_S = 3.0
MAX_HEIGHT_PX = 2_000
SHOTS = [
    ("markets", "/"),
    ("instrument", f"/markets/{FLOW}"),
    ("auction", "/markets/ZJPARK.PAY.NX12.INT"),
    ("product", "/products/P000001"),
    ("account", "/account"),
    ("collateral", "/collateral"),
    ("ledger", "/ledger"),
]
KEY_ITEM = "dataex.apiKey"


def _save(driver: Any, path: Path, width: int, *, whole: bool = True) -> None:
    """The page from its top, all of it (up to MAX_HEIGHT_PX) with ``whole``, else what the
    viewport shows; quantised to 256 colours."""
    driver.execute_script("window.scrollTo(0, 0)")
    height = driver.execute_script(
        "return arguments[0] ? document.documentElement.scrollHeight : window.innerHeight", whole
    )
    clip = {"x": 0, "y": 0, "width": width, "height": min(height, MAX_HEIGHT_PX), "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    image = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    image.quantize(colors=256).save(path, optimize=True)
    print(f"{path} {image.width}x{image.height} {path.stat().st_size // 1024} KiB")


def _act_as_guest(base_url: str, key: str) -> None:
    """An order resting below the market and a fill at the ask, for the account page."""
    with httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=10) as client:
        book = client.get(f"/v1/market/{FLOW}/book").json()
        resting = {"client_order_id": "shot-rest", "symbol": FLOW, "side": "buy",
                   "price": "60.00", "quantity": 3}  # fmt: skip
        client.post("/v1/orders", json=resting)
        if book["asks"]:
            client.post("/v1/orders", json={
                "client_order_id": "shot-take", "symbol": FLOW, "side": "buy",
                "price": book["asks"][0]["price"], "quantity": 1, "time_in_force": "IOC",
            })  # fmt: skip


def _downgrade_quality(base_url: str, borrower_key: str) -> None:
    """The borrower, the flow product's provider, attests a lower quality: an alert on the
    facility for the collateral page to show."""
    with httpx.Client(base_url=base_url, headers={"X-API-Key": borrower_key}, timeout=10) as c:
        quality = c.post("/v1/products/P000001/updates", json={"quality": None}).json()["quality"]
        lower = {name: round(score - 0.05, 4) for name, score in quality.items()}
        c.post("/v1/products/P000001/updates", json={"quality": lower})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--warm-up-s", type=float, default=150.0)
    parser.add_argument("--only", action="append", choices=[name for name, _ in SHOTS],
                        help="Save only this page's screenshot (repeatable)")  # fmt: skip
    args = parser.parse_args()
    shots = [(name, path) for name, path in SHOTS if not args.only or name in args.only]
    args.directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch, demo_market(Path(scratch)) as market:
        time.sleep(args.warm_up_s)
        _act_as_guest(market.base_url, market.guest_key)
        _downgrade_quality(market.base_url, market.party_keys["hz-parking"])
        with chromium(DESKTOP) as driver:
            driver.get(market.base_url + "/")
            for name, path in shots:
                key = market.party_keys["hz-bank"] if name == "collateral" else market.guest_key
                driver.execute_script("sessionStorage.setItem(arguments[0], arguments[1])",
                                      KEY_ITEM, key)  # fmt: skip
                driver.get(market.base_url + path)
                if name == "ledger":
                    _check_a_proof(driver)
                time.sleep(SETTLE_S)
                _save(driver, args.directory / f"dashboard-{name}.png", DESKTOP[0])
        if args.only:
            return
        with chromium(PHONE, phone=True) as phone:
            phone.get(f"{market.base_url}/markets/{FLOW}")
            time.sleep(SETTLE_S)
            _save(phone, args.directory / "dashboard-instrument-phone.png", PHONE[0], whole=False)


def _check_a_proof(driver: Any) -> None:
    # The guest's first entry is its deposit: the demo's thirteenth on a fresh database.
    driver.find_element("id", "entry-seq").send_keys("13")
    driver.find_element("css selector", "#fetch-proof button").click()
    time.sleep(1.0)
    driver.find_element("css selector", "#check-proof button").click()


if __name__ == "__main__":
    main()
