"""``/docs`` works without the Internet: Swagger UI's script, style sheet and icon are served
from the package, and a real browser (headless Chromium, when installed) renders every
operation of the OpenAPI document from them."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser

import httpx
import pytest

from exchange.api import create_app
from exchange.settings import Settings
from tests.exchange.api.helpers import Api
from tests.exchange.api.live import served

CHROMIUM = shutil.which("chromium")
# Virtual time lets the page's scripts run to completion before the DOM is dumped.
VIRTUAL_TIME_BUDGET_MS = 5_000
BROWSER_TIMEOUT_S = 60


class _References(HTMLParser):
    """Every URL a page loads: the ``src`` and ``href`` of its elements, and the OpenAPI
    document its script fetches."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]

    def handle_data(self, data: str) -> None:
        self.urls += re.findall(r"url: '([^']+)'", data)


def _references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    return parser.urls


def test_docs_page_loads_only_assets_the_server_serves(api: Api):
    response = api.client.get("/docs")
    assert response.status_code == 200
    urls = _references(response.text)
    assert any(url.endswith("swagger-ui-bundle.js") for url in urls), urls
    assert any(url.endswith("swagger-ui.css") for url in urls), urls
    for url in urls:
        # A path on this server: no scheme, no host, not protocol-relative.
        assert url.startswith("/") and not url.startswith("//"), url
        assert api.client.get(url).status_code == 200, url


def test_redoc_is_not_served_from_a_cdn(api: Api):
    assert api.client.get("/redoc").status_code == 404


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_a_browser_renders_every_operation_offline():
    app = create_app(Settings("sqlite://"))
    with served(app, lifespan="off") as base_url:
        operation_ids = [
            operation["operationId"]
            for path in httpx.get(f"{base_url}/openapi.json").json()["paths"].values()
            for operation in path.values()
        ]
        dom = subprocess.run(
            [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox",
             f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}", "--dump-dom",
             f"{base_url}/docs"],
            capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S, check=True,
        ).stdout  # fmt: skip
    rendered = set(re.findall(r'id="operations-[^"]*?-([^"-]+)"', dom))
    assert operation_ids, "the document has no operations"
    missing = [operation_id for operation_id in operation_ids if operation_id not in rendered]
    assert not missing, f"Swagger UI did not render {missing}"
