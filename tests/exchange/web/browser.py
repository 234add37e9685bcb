"""A headless Chromium driven by Selenium, and a demo market served by ``dataex serve --demo``,
for the dashboard's end-to-end tests and its screenshots.

The browser and its driver are Debian's (``chromium``, ``chromium-driver``; ``.ci/run``
installs them): both paths are given to Selenium, so that it never looks for, let alone
downloads, a browser or a driver of its own. :data:`MISSING` says what is absent, if
anything, for a test to skip with.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.exchange.serverproc import ServerProcess

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
MISSING = ", ".join(
    name for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if path is None
)
DESKTOP = (1280, 900)
PHONE = (390, 844)
WAIT_S = 10.0
_GUEST_KEY = re.compile(r"Your key, as (\S+) \(shown once\): (\S+)")
_PARTY_KEY = re.compile(r"Key of (\S+): (\S+)")


@dataclass(frozen=True, slots=True)
class DemoMarket:
    base_url: str
    guest_id: str
    guest_key: str
    # The demo facility's lender's and borrower's keys, by participant id.
    party_keys: dict[str, str]


@contextmanager
def demo_market(directory: Path) -> Iterator[DemoMarket]:
    """``dataex serve --demo`` on a fresh SQLite database in ``directory``, its background
    traders running; yields its URL and the guest's key, which the server prints once."""
    server = ServerProcess.start(
        f"sqlite:///{directory / 'demo.db'}", directory / "serve.log", options=["--demo"]
    )
    try:
        found = _GUEST_KEY.search(server.log())
        assert found is not None, server.log()
        parties = dict(_PARTY_KEY.findall(server.log()))
        yield DemoMarket(server.base_url, found.group(1), found.group(2), parties)
    finally:
        server.stop()


@contextmanager
def chromium(size: tuple[int, int] = DESKTOP, *, phone: bool = False) -> Iterator[Any]:
    """A headless Chromium of ``size`` CSS pixels (a phone's viewport, touch and all, with
    ``phone``), logging the console; quit when the block ends."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM is not None and CHROMEDRIVER is not None, f"missing: {MISSING}"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--hide-scrollbars",
                     f"--window-size={size[0]},{size[1]}"):  # fmt: skip
        options.add_argument(argument)
    if phone:
        width, height = size
        metrics = {"width": width, "height": height, "pixelRatio": 1, "touch": True}
        options.add_experimental_option("mobileEmulation", {"deviceMetrics": metrics})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Selenium Manager would look for a driver online when none is given: one is.
    os.environ.setdefault("SE_OFFLINE", "true")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: Any) -> list[str]:
    """The console's errors since the last call (the log is drained as it is read)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
