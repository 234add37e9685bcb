"""The OpenAPI document holds for the server.

schemathesis sends generated requests to every REST operation of a served demo market
(exchange/demo.py), one operation at a time and in sequences along the links it infers, and
fails on a 5xx, a status the document does not declare for the route, a content type or a body
that does not match the declared one, or an invalid request that is accepted. It authenticates
as a funded participant holding every role, so that each route is exercised past its key and
role checks. The run is bounded (a few examples per operation, a deadline per example, a few
short sequences) so that the module takes well under a minute on two cores.

Below it: the documented examples work against the demo market, and the server bugs the run
found stay fixed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from exchange import commands as c
from exchange.api import create_app
from exchange.api.deps import API_KEY_HEADER
from exchange.api.runtime import Runtime
from exchange.demo import seed_demo
from exchange.participants import new_api_key, secret_digest
from exchange.service import OPERATOR
from exchange.settings import Settings
from ledger.database import dispose_engines, scratch_schema
from tests.conftest import POSTGRES_URL_ENV
from tests.exchange.api.helpers import ADMIN, Api
from tests.exchange.api.live import served

# Only the document is read from this app: create_app opens no database until it serves.
OPENAPI = create_app(Settings("sqlite://")).openapi()
schema = schemathesis.openapi.from_dict(OPENAPI)
# The key is sent with every request (below), not generated: a case that "removes" it would be
# sent with it all the same, and its other, ignorable mutations then taken as accepted.
schema.config.generation.update(with_security_parameters=False)

CONTRACT_CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.negative_data_rejection,
]
TESTER = "contract-tester"
ALL_ROLES = ["admin", "provider", "reviewer", "regulator", "buyer", "market_maker", "lender"]
TESTER_CASH_MINOR = 1_000_000_00
MAX_EXAMPLES_PER_OPERATION = 5
# The cap on each example: a request unanswered in this time fails the run. (Hypothesis's own
# deadline is off: the first valuation or index builds the pricing market, a one-off cost.)
REQUEST_TIMEOUT_S = 10.0
# The cap on each test of the run; the whole run takes about half a minute on two cores.
RUN_TIMEOUT_S = 120
STATEFUL_SCENARIOS = 10
STATEFUL_STEPS = 6
# A rate the run never reaches: it is about the contract, not the limiter (its 429 is declared).
RATE_LIMIT_PER_S = 10_000.0


@dataclass(frozen=True, slots=True)
class DemoServer:
    base_url: str
    api_key: str


@contextmanager
def demo_market(database_url: str) -> Iterator[DemoServer]:
    """The demo market on ``database_url``, served on 127.0.0.1, with a funded participant
    holding every role, whose key the yielded server carries."""
    key = new_api_key()

    def start(runtime: Runtime) -> None:
        seed_demo(runtime.sequencer)
        run = runtime.sequencer.execute
        run(c.CreateParticipant(OPERATOR, TESTER, "Contract tester", ALL_ROLES, key.key_id,
                                secret_digest(key.secret)))  # fmt: skip
        run(c.Deposit("demo-admin", TESTER, TESTER_CASH_MINOR, "contract test funds"))

    settings_ = Settings(database_url, rate_limit_per_s=RATE_LIMIT_PER_S,
                         rate_limit_burst=int(RATE_LIMIT_PER_S))  # fmt: skip
    try:
        with served(create_app(settings_, on_start=start)) as base_url:
            yield DemoServer(base_url, str(key))
    finally:
        # The pooled connections would keep a PostgreSQL schema busy when it is dropped.
        dispose_engines()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoServer]:
    """One demo market per backend for the whole schemathesis run (module scope: starting
    one per operation would cost more than the run)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('openapi') / 'demo.db'}"
        with demo_market(url) as server:
            yield server
        return
    server_url = os.environ.get(POSTGRES_URL_ENV)
    if not server_url:
        pytest.skip(f"{POSTGRES_URL_ENV} is not set")
    with scratch_schema(server_url, "openapi_test") as url, demo_market(url) as server:
        yield server


@pytest.mark.timeout(RUN_TIMEOUT_S)
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES_PER_OPERATION,
    deadline=None,
    # Each example is a real request to a served database: slower than Hypothesis expects,
    # and the server (a module fixture) rightly outlives the examples.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_every_operation_keeps_to_the_openapi_document(
    case: schemathesis.Case, demo_server: DemoServer
):
    case.call_and_validate(
        base_url=demo_server.base_url,
        headers={API_KEY_HEADER: demo_server.api_key},
        checks=CONTRACT_CHECKS,
        timeout=REQUEST_TIMEOUT_S,
    )


@pytest.mark.timeout(RUN_TIMEOUT_S)
def test_workflows_keep_to_the_openapi_document(demo_server: DemoServer):
    """Sequences of calls along the links schemathesis infers between operations (an order's
    id from its submission to its read, amend and cancel), checked the same way."""

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": demo_server.base_url, "timeout": REQUEST_TIMEOUT_S,
                    "headers": {API_KEY_HEADER: demo_server.api_key}}  # fmt: skip

        def validate_response(self, response: schemathesis.Response, case: schemathesis.Case,
                              additional_checks: Any = None, **kwargs: Any) -> None:  # fmt: skip
            case.validate_response(response, checks=CONTRACT_CHECKS, transport_kwargs=kwargs,
                                   recorder=self.recorder)  # fmt: skip

    Workflow.run(settings=settings(
        max_examples=STATEFUL_SCENARIOS, stateful_step_count=STATEFUL_STEPS, deadline=None,
        suppress_health_check=list(HealthCheck),
    ))  # fmt: skip


# -- the documented examples ---------------------------------------------------------------


def _operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in OPENAPI["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def _path_with_examples(path: str, operation: dict[str, Any]) -> str | None:
    """``path`` with each path parameter replaced by its documented example; None if one has
    no example."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] != "path":
            continue
        examples = parameter["schema"].get("examples")
        if not examples:
            return None
        path = path.replace("{" + parameter["name"] + "}", str(examples[0]))
    return path


def _body_example(operation: dict[str, Any]) -> Any:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    ref = content["schema"]["$ref"].rsplit("/", 1)[-1]
    return OPENAPI["components"]["schemas"][ref]["examples"][0]


# What each example does on a fresh demo market: the operations not named need a product or
# an order in a state of their own (a product waiting for review, one's own open order).
EXAMPLE_STATUS = {
    ("POST", "/v1/participants"): 201,
    ("POST", "/v1/products"): 201,
    ("POST", "/v1/instruments"): 201,
    ("POST", "/v1/deposits"): 201,
    ("POST", "/v1/withdrawals"): 201,
    ("POST", "/v1/orders"): 201,
    ("POST", "/v1/valuations"): 200,
    ("POST", "/v1/facilities"): 201,
    ("POST", "/v1/instruments/{symbol}/valuation"): 201,
}


def test_the_documented_examples_work_on_the_demo_market(database_url: str):
    """Every read whose path parameters have examples answers 200 with them, and each
    request body's example is accepted, on a fresh demo market."""
    with demo_market(database_url) as server:
        client = httpx.Client(base_url=server.base_url,
                              headers={API_KEY_HEADER: server.api_key})  # fmt: skip
        reads = 0
        for method, path, operation in _operations():
            concrete = _path_with_examples(path, operation)
            if method == "GET" and concrete is not None:
                response = client.get(concrete)
                assert response.status_code == 200, (concrete, response.text)
                reads += 1
            if (method, path) in EXAMPLE_STATUS:
                assert concrete is not None, path
                response = client.request(method, concrete, json=_body_example(operation))
                assert response.status_code == EXAMPLE_STATUS[method, path], (
                    method, path, response.text,
                )  # fmt: skip
        # Every read has examples but those of an order, a request for quote and a loan
        # facility, whose ids are one's own.
        own = {"/v1/orders/{order_id}", "/v1/orders/by-client-id/{client_order_id}",
               "/v1/rfqs/{rfq_id}", "/v1/facilities/{facility_id}"}  # fmt: skip
        gets = [path for method, path, _ in _operations() if method == "GET"]
        assert reads == len([path for path in gets if path not in own]), gets


# -- what the run found --------------------------------------------------------------------


TERMS = {"exclusivity": "non_exclusive", "duration_months": 12, "scope": "commercial",
         "territory": "domestic"}  # fmt: skip


@pytest.mark.parametrize(
    "income", [{"annual_cash_flows": ["10.00"], "discount_rate": False},
               {"annual_cash_flows": ["10.00"], "discount_rate": 0.1, "attribution": True}],
)  # fmt: skip
def test_a_boolean_is_not_a_rate_in_a_valuation(api: Api, income: dict[str, Any]):
    body = {"product_id": "P000001", "terms": TERMS, "income": income}
    refused = api.expect(422, "POST", "/v1/valuations", ADMIN, json=body)
    assert refused["reason"] == "VALIDATION_INVALID"
    assert "income." in refused["detail"], refused


def test_a_boolean_is_not_a_coverage_in_a_valuation(api: Api):
    product = {"category": "transport", "region": "Zhejiang", "record_count": 1000,
               "coverage_months": True, "update_frequency": "daily", "cost_basis": "10.00",
               "quality": {"completeness": 1, "accuracy": 1, "timeliness": 1,
                           "consistency": 1}}  # fmt: skip
    refused = api.expect(422, "POST", "/v1/valuations", ADMIN,
                         json={"product": product, "terms": TERMS})  # fmt: skip
    assert "product.coverage_months" in refused["detail"], refused


@pytest.mark.parametrize("product_id", ["P999999", "9\u00a5", "a b"])
def test_comparables_of_a_product_id_no_product_has_are_a_404(api: Api, product_id: str):
    refused = api.expect(404, "GET", f"/v1/products/{product_id}/comparables")
    assert product_id in refused["detail"], refused


def test_no_route_declares_fastapis_own_validation_error_body():
    """The 422 body is ``{"detail": str, "reason": str}`` (exchange/api/errors.py), not
    FastAPI's list of errors: the document must not describe that one anywhere."""
    assert "HTTPValidationError" not in OPENAPI["components"]["schemas"]
    for method, path, operation in _operations():
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                schema_ref = response["content"]["application/json"]["schema"]["$ref"]
                assert schema_ref.endswith("/ErrorPublic"), (method, path, status)
