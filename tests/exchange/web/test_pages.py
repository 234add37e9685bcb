"""The dashboard's pages as HTML: what each shows from the exchange, the 404s, the assets
they load (all served by the package, none from elsewhere) and the weight of a first load."""

from __future__ import annotations

from html.parser import HTMLParser

from tests.exchange.api.helpers import BUYERS, MARKET_MAKER, PROVIDER, SYMBOL, Api

# A first visit's HTML, style sheet, scripts and chart library together.
FIRST_LOAD_BUDGET_BYTES = 300_000


class _Assets(HTMLParser):
    """The URLs a page loads by itself: scripts, style sheets and icons (not its links)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.urls.append(found["src"] or "")
        if tag == "link" and found.get("rel") in ("stylesheet", "icon") and found.get("href"):
            self.urls.append(found["href"] or "")


def _assets(html: str) -> list[str]:
    parser = _Assets()
    parser.feed(html)
    return parser.urls


def _pages(api: Api) -> list[str]:
    product_id = api.market().product_id
    return [
        "/",
        f"/markets/{SYMBOL}",
        f"/products/{product_id}",
        "/account",
        "/collateral",
        "/ledger",
    ]


def test_every_page_loads_only_what_the_server_serves_within_the_budget(api: Api):
    for path in _pages(api):
        page = api.client.get(path)
        assert page.status_code == 200, path
        assert page.headers["content-type"].startswith("text/html")
        total = len(page.content)
        for url in _assets(page.text):
            if url.startswith("data:"):
                continue
            assert url.startswith("/") and not url.startswith("//"), (path, url)
            asset = api.client.get(url)
            assert asset.status_code == 200, (path, url)
            total += len(asset.content)
        assert total < FIRST_LOAD_BUDGET_BYTES, (path, total)


def test_the_markets_page_shows_each_instrument_with_its_prices_and_terms(api: Api):
    api.market()
    api.placed(PROVIDER, "ask", "sell", "101.00", 5)
    api.placed(PROVIDER, "ask-2", "sell", "103.00", 5)
    api.placed(BUYERS[0], "lift", "buy", "101.00", 2)
    api.placed(BUYERS[0], "lift-2", "buy", "103.00", 4)
    html = api.client.get("/").text
    assert f'href="/markets/{SYMBOL}"' in html
    for shown in ("continuous", "103.00", "+2.00", ">6<", "non-exclusive, 12 months"):
        assert shown in html, shown


def test_the_instrument_page_shows_the_book_and_the_tape(api: Api):
    api.market()
    api.placed(MARKET_MAKER, "bid", "buy", "97.00", 4)
    api.placed(PROVIDER, "ask", "sell", "99.00", 6)
    api.placed(BUYERS[0], "lift", "buy", "99.00", 1)
    html = api.client.get(f"/markets/{SYMBOL}").text
    bids, asks = html.split('id="book-bids"')[1], html.split('id="book-asks"')[1]
    assert "97.00" in bids.split("</tbody>")[0] and ">4<" in bids.split("</tbody>")[0]
    assert "99.00" in asks.split("</tbody>")[0] and ">5<" in asks.split("</tbody>")[0]
    tape = html.split('id="tape"')[1].split("</table>")[0]
    assert "99.00" in tape and "buy" in tape


def test_the_product_page_shows_its_compliance_decisions(api: Api):
    product_id = api.market().product_id
    html = api.client.get(f"/products/{product_id}").text
    assert "approved" in html and "by rev" in html
    assert f'href="/markets/{SYMBOL}"' in html


def test_the_ledger_page_shows_the_current_digest(api: Api):
    api.market()
    digest = api.expect(200, "GET", "/v1/ledger/digest")
    html = api.client.get("/ledger").text
    assert digest["root_hash"] in html and f"{digest['tree_size']} entries" in html


def test_every_page_links_to_the_collateral_page(api: Api):
    for path in _pages(api):
        assert 'href="/collateral"' in api.client.get(path).text, path


def test_the_collateral_page_asks_for_a_key_and_shows_nothing_without_one(api: Api):
    """A facility is its parties' alone: the page holds no facility until its script reads
    them with the key entered."""
    html = api.client.get("/collateral").text
    assert 'id="key-form"' in html and 'id="collateral" hidden' in html
    assert 'aria-current="page">Collateral<' in html


def test_unknown_things_are_a_404_page(api: Api):
    api.market()
    for path in ("/markets/NOPE.X", "/products/P999999"):
        page = api.client.get(path)
        assert page.status_code == 404, path
        assert page.headers["content-type"].startswith("text/html")
        assert "Not found" in page.text
    assert api.client.get(f"/markets/{SYMBOL}?levels=51").status_code == 422


def test_no_page_puts_a_key_in_a_url(api: Api):
    """Keys travel in the X-API-Key header or the private stream's first message: no script
    or form of the dashboard builds a URL with one."""
    for path in _pages(api):
        html = api.client.get(path).text
        assert "api_key=" not in html and 'method="get"' not in html.lower(), path
        for url in _assets(html):
            script = api.client.get(url).text
            assert "api_key=" not in script and "apiKey=" not in script, url


def test_the_sealed_bid_page_shows_the_round_and_its_award(api: Api):
    api.participants()
    product_id = api.approved_product()
    for buyer in BUYERS:
        api.deposit(buyer)
    sealed = "ZJPARK.EX24"
    api.list_instrument(product_id, sealed, "auction", trading_mode="sealed_bid",
                        exclusivity="exclusive", issuance_cap=1, transferable=False,
                        sealed_bid_pricing="second_price")  # fmt: skip
    api.placed(PROVIDER, "reserve", "sell", "500.00", 1, symbol=sealed)
    api.placed(BUYERS[0], "bid-a", "buy", "700.00", 1, symbol=sealed)
    api.placed(BUYERS[1], "bid-b", "buy", "650.00", 1, symbol=sealed)
    html = api.client.get(f"/markets/{sealed}").text
    assert "Bids are sealed" in html and "second price" in html
    assert "700.00" not in html and "Awarded" in html and "not yet" in html
    api.expect(200, "POST", f"/v1/instruments/{sealed}/uncross", "admin")
    html = api.client.get(f"/markets/{sealed}").text
    # The highest bid wins at the second price.
    assert "1 at 650.00" in html, html.split('id="auction-result"')[1][:80]
