"""The ``live`` fixture: a served exchange with a ready market and real keys, for the
client's tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from exchange import commands as c
from exchange.api import create_app
from exchange.api.runtime import Runtime
from exchange.client import Client
from exchange.participants import new_api_key, secret_digest
from exchange.service import OPERATOR
from exchange.settings import Settings
from ledger.database import dispose_engines
from tests.exchange.api.live import served
from tests.exchange.helpers import build_ready_market


@dataclass(frozen=True, slots=True)
class Live:
    url: str
    keys: dict[str, str]

    def client(self, who: str | None = None) -> Client:
        return Client(self.url, None if who is None else self.keys[who])


@pytest.fixture
def live(database_url: str) -> Iterator[Live]:
    """A served exchange with a ready market (SYMBOL, tick 1.00, the provider holding the
    issuance, ann and bob funded with 100,000.00) and real keys for its participants."""
    keys: dict[str, str] = {}

    def bootstrap(runtime: Runtime) -> None:
        run = runtime.sequencer.execute
        build_ready_market(run)
        # The market's builders give placeholder digests; a rotation gives each a real key.
        for who in ("admin", "prov", "ann", "bob"):
            key = new_api_key()
            run(c.RotateApiKey(OPERATOR, who, key.key_id, secret_digest(key.secret)))
            keys[who] = str(key)

    app = create_app(Settings(database_url, rate_limit_per_s=10_000.0, rate_limit_burst=10_000),
                     on_start=bootstrap)  # fmt: skip
    try:
        with served(app) as url:
            yield Live(url, keys)
    finally:
        dispose_engines()
