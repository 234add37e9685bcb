"""The ``api`` fixture: the exchange's app served on each database of ``database_url``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.exchange.api.helpers import Api, serve


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    """The app, opened on a fresh database with an admin and nothing else; call
    ``api.market()`` for a ready market."""
    with serve(database_url) as served:
        yield served
