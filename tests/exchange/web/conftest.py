"""The ``api`` fixture of the API's tests: the app on each database, with an admin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.exchange.api.helpers import Api, serve


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    with serve(database_url) as served:
        yield served
