"""The catalogue's products and the compliance gate's workflow on them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from exchange import commands as cmd
from exchange.errors import ExchangeError, Reason
from exchange.money import parse_minor
from exchange.participants import Participant, Role
from exchange.service import Exchange

from ..bodies import StrictJsonRoute
from ..deps import RuntimeDep, requires
from ..schemas import (
    ComplianceRecordPublic,
    ProductCreate,
    ProductIdPath,
    ProductPublic,
    ProductResubmit,
    RegulatorDecisionCreate,
    ReviewCreate,
    StatusChange,
    error_responses,
)
from ..views import compliance_view, product_view

router = APIRouter(
    prefix="/products", tags=["catalogue and compliance"], route_class=StrictJsonRoute
)
Provider = Annotated[Participant, Depends(requires(Role.PROVIDER))]
Reviewer = Annotated[Participant, Depends(requires(Role.REVIEWER))]
Regulator = Annotated[Participant, Depends(requires(Role.REGULATOR))]
Supervisor = Annotated[Participant, Depends(requires(Role.REGULATOR, Role.ADMIN))]
BASIS_POINTS = 10_000


def _bp(score: float) -> int:
    return round(score * BASIS_POINTS)


@router.post("", status_code=201, response_model=ProductPublic,
             responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503))
async def create_product(body: ProductCreate, me: Provider, runtime: RuntimeDep) -> ProductPublic:
    """Describe a data product. It can list instruments once the compliance gate approves it."""
    q = body.quality
    outcome = await runtime.execute(cmd.CreateProduct(
        actor=me.participant_id, product_id="", title=body.title, description=body.description,
        category=str(body.category), region=body.region, record_count=body.record_count,
        coverage_start=body.coverage_start, coverage_end=body.coverage_end,
        update_frequency=str(body.update_frequency),
        quality_bp={"completeness": _bp(q.completeness), "accuracy": _bp(q.accuracy),
                    "timeliness": _bp(q.timeliness), "consistency": _bp(q.consistency)},
        personal_information=body.personal_information,
        classification=str(body.classification), desensitised=body.desensitised,
        lawful_source_attestation=body.lawful_source_attestation,
        cost_basis_minor=parse_minor(body.cost_basis, "cost_basis"),
    ))  # fmt: skip
    return runtime.read(lambda _: product_view(outcome.result))


@router.get("", response_model=list[ProductPublic], responses=error_responses(422))
async def list_products(
    runtime: RuntimeDep,
    after: Annotated[str, Query(description="Products with a later id")] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ProductPublic]:
    """The catalogue, in product id order (public)."""

    def page(exchange: Exchange) -> list[ProductPublic]:
        ids = sorted(pid for pid in exchange.products if pid > after)[:limit]
        return [product_view(exchange.products[pid]) for pid in ids]

    return runtime.read(page)


def _read_product(
    runtime: RuntimeDep, product_id: str
) -> tuple[ProductPublic, list[ComplianceRecordPublic]]:
    def one(exchange: Exchange) -> tuple[ProductPublic, list[ComplianceRecordPublic]]:
        product = exchange.products.get(product_id)
        if product is None:
            raise ExchangeError(Reason.VALIDATION_UNKNOWN_PRODUCT, f"no product {product_id}")
        return product_view(product), [
            compliance_view(r) for r in exchange.compliance_history(product_id)
        ]

    return runtime.read(one)


@router.get("/{product_id}", response_model=ProductPublic, responses=error_responses(404, 422))
async def read_product(product_id: ProductIdPath, runtime: RuntimeDep) -> ProductPublic:
    return _read_product(runtime, product_id)[0]


@router.get("/{product_id}/compliance", response_model=list[ComplianceRecordPublic],
            responses=error_responses(404, 422))
async def compliance_history(
    product_id: ProductIdPath, runtime: RuntimeDep
) -> list[ComplianceRecordPublic]:
    """Every compliance decision on the product, oldest first, as journalled."""
    return _read_product(runtime, product_id)[1]


@router.post("/{product_id}/reviews", status_code=201, response_model=ProductPublic,
             responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503))
async def review_product(
    product_id: ProductIdPath, body: ReviewCreate, me: Reviewer, runtime: RuntimeDep
) -> ProductPublic:
    """Approve, reject or request changes, with the checks made and an opinion."""
    await runtime.execute(cmd.ReviewProduct(
        me.participant_id, product_id, str(body.decision),
        {str(name): passed for name, passed in body.checks.items()}, body.opinion,
    ))  # fmt: skip
    return _read_product(runtime, product_id)[0]


@router.post("/{product_id}/regulator-decision", status_code=201, response_model=ProductPublic,
             responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503))
async def regulator_decision(
    product_id: ProductIdPath, body: RegulatorDecisionCreate, me: Regulator, runtime: RuntimeDep
) -> ProductPublic:
    """The regulator's approval that ``important`` data needs before it lists."""
    await runtime.execute(cmd.RegulatorDecision(
        me.participant_id, product_id, str(body.decision), body.opinion
    ))  # fmt: skip
    return _read_product(runtime, product_id)[0]


@router.post("/{product_id}/resubmit", response_model=ProductPublic,
             responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503))
async def resubmit_product(
    product_id: ProductIdPath, body: ProductResubmit, me: Provider, runtime: RuntimeDep
) -> ProductPublic:
    """Answer a request for changes; the product goes back for review."""
    await runtime.execute(cmd.ResubmitProduct(
        me.participant_id, product_id, str(body.classification), body.personal_information,
        body.desensitised, body.lawful_source_attestation, body.note,
    ))  # fmt: skip
    return _read_product(runtime, product_id)[0]


@router.post("/{product_id}/suspend", response_model=ProductPublic,
             responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503))
async def suspend_product(
    product_id: ProductIdPath, body: StatusChange, me: Supervisor, runtime: RuntimeDep
) -> ProductPublic:
    """Suspend a product: its instruments halt and their resting orders are cancelled."""
    await runtime.execute(cmd.SuspendProduct(me.participant_id, product_id, body.reason))
    return _read_product(runtime, product_id)[0]


@router.post("/{product_id}/reinstate", response_model=ProductPublic,
             responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503))
async def reinstate_product(
    product_id: ProductIdPath, body: StatusChange, me: Supervisor, runtime: RuntimeDep
) -> ProductPublic:
    """Lift a suspension: the instruments return to pre-open."""
    await runtime.execute(cmd.ReinstateProduct(me.participant_id, product_id, body.reason))
    return _read_product(runtime, product_id)[0]
