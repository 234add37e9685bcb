"""The compliance gate: the catalogue of data products and every decision on them.

Nothing lists without an approved review; ``core`` data never lists; ``important`` data also
needs a regulator's approval; personal information must be desensitised. The desk owns the
products and their compliance history. Its methods check a command and change the desk's
state only once every check has passed; halting or reopening the instruments of a suspended
or reinstated product is the exchange's (it owns the engine).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

from exchange import commands as cmd
from exchange.catalogue import (
    Category,
    Classification,
    DataProduct,
    ProductStatus,
    Quality,
    UpdateFrequency,
)
from exchange.errors import ExchangeError, Reason
from exchange.money import MAX_AMOUNT_MINOR
from exchange.validation import (
    MAX_NAME,
    MAX_RECORD_COUNT,
    MAX_TEXT,
    QUALITY_DIMENSIONS,
    enum_member,
    integer,
    invalid,
    text,
)
from ledger import ComplianceDecision, Entry, entries

__all__ = ["COMPLIANCE_CHECKS", "ComplianceDesk", "ComplianceRecord", "listing_problem"]

COMPLIANCE_CHECKS: Final = (
    "classification",
    "desensitisation",
    "lifecycle_and_retention",
    "risk_controls",
)


@dataclass(frozen=True, slots=True)
class ComplianceRecord:
    """One line of a product's compliance history."""

    seq: int
    ts_ns: int
    action: str  # review, regulator_decision, resubmitted, suspended, reinstated
    actor: str
    decision: str | None
    checks: dict[str, bool]
    opinion: str
    status_after: ProductStatus


def listing_problem(product: DataProduct) -> tuple[Reason, str] | None:
    """Why the compliance gate would refuse to approve ``product``, or None."""
    if product.classification is Classification.CORE:
        return Reason.COMPLIANCE_CORE_DATA, "core data is never listed"
    if product.personal_information and not product.desensitised:
        return (
            Reason.COMPLIANCE_NOT_DESENSITISED,
            "the product holds personal information that has not been desensitised",
        )
    if not product.lawful_source_attestation.strip():
        return Reason.COMPLIANCE_NO_LAWFUL_SOURCE, "no lawful-source attestation"
    return None


class ComplianceDesk:
    def __init__(self) -> None:
        self.products: dict[str, DataProduct] = {}
        self.history: dict[str, list[ComplianceRecord]] = {}
        self.next_product = 1

    def product(self, product_id: str) -> DataProduct:
        product = self.products.get(product_id)
        if product is None:
            raise ExchangeError(Reason.VALIDATION_UNKNOWN_PRODUCT, f"no product {product_id}")
        return product

    def create(self, c: cmd.CreateProduct, provider: str, ts: int) -> DataProduct:
        """Add ``c``'s product under the next product id (a journalled id must be it)."""
        product_id = c.product_id or f"P{self.next_product:06d}"
        if product_id != f"P{self.next_product:06d}":
            raise AssertionError(f"journal assigns {product_id}, expected P{self.next_product}")
        if not isinstance(c.quality_bp, dict) or set(c.quality_bp) != set(QUALITY_DIMENSIONS):
            raise invalid(f"quality needs exactly the scores {', '.join(QUALITY_DIMENSIONS)}")
        quality = Quality(
            *(integer(c.quality_bp[name], f"quality {name}", 0, 10_000)
              for name in QUALITY_DIMENSIONS)
        )  # fmt: skip
        try:
            start, end = date.fromisoformat(c.coverage_start), date.fromisoformat(c.coverage_end)
        except (TypeError, ValueError):
            raise invalid("coverage_start and coverage_end must be ISO dates") from None
        if start > end:
            raise invalid("coverage_start is after coverage_end")
        product = DataProduct(
            product_id=product_id,
            provider=provider,
            title=text(c.title, "title", MAX_NAME),
            description=text(c.description, "description", MAX_TEXT, required=False),
            category=enum_member(Category, c.category, "category"),
            region=text(c.region, "region", MAX_NAME),
            record_count=integer(c.record_count, "record_count", 0, MAX_RECORD_COUNT),
            coverage_start=start.isoformat(),
            coverage_end=end.isoformat(),
            update_frequency=enum_member(UpdateFrequency, c.update_frequency, "update_frequency"),
            quality=quality,
            personal_information=bool(c.personal_information),
            classification=enum_member(Classification, c.classification, "classification"),
            desensitised=bool(c.desensitised),
            lawful_source_attestation=text(
                c.lawful_source_attestation, "lawful_source_attestation", MAX_TEXT,
                required=False,
            ),
            cost_basis_minor=integer(c.cost_basis_minor, "cost_basis", 0, MAX_AMOUNT_MINOR),
            created_ns=ts,
        )  # fmt: skip
        self.next_product += 1
        self.products[product_id] = product
        self.history[product_id] = []
        return product

    def resubmit(self, c: cmd.ResubmitProduct, seq: int, ts: int) -> DataProduct:
        product = self.product(c.product_id)
        if c.actor != product.provider:
            raise ExchangeError(Reason.AUTH_FORBIDDEN, "only the product's provider resubmits")
        self._expect_status(product, ProductStatus.CHANGES_REQUESTED)
        classification = enum_member(Classification, c.classification, "classification")
        attestation = text(c.lawful_source_attestation, "lawful_source_attestation", MAX_TEXT)
        note = text(c.note, "note", MAX_TEXT, required=False)
        product.classification = classification
        product.personal_information = bool(c.personal_information)
        product.desensitised = bool(c.desensitised)
        product.lawful_source_attestation = attestation
        product.status = ProductStatus.PENDING_REVIEW
        self._record(product, seq, ts, "resubmitted", c.actor, opinion=note)
        return product

    def review(self, c: cmd.ReviewProduct, seq: int, ts: int) -> tuple[DataProduct, Entry]:
        """A reviewer's decision (the caller has checked the reviewer's role)."""
        product = self.product(c.product_id)
        if c.actor == product.provider:
            raise ExchangeError(Reason.AUTH_FORBIDDEN, "a provider cannot review its own product")
        self._expect_status(product, ProductStatus.PENDING_REVIEW)
        decision = enum_member(ComplianceDecision, c.decision, "decision")
        if not isinstance(c.checks, dict) or not set(c.checks) <= set(COMPLIANCE_CHECKS):
            raise invalid(f"checks are a map of {', '.join(COMPLIANCE_CHECKS)} to true/false")
        if not all(type(value) is bool for value in c.checks.values()):
            raise invalid("each check is true (passed) or false (failed)")
        opinion = text(c.opinion, "opinion", MAX_TEXT)
        if decision is ComplianceDecision.APPROVED:
            problem = listing_problem(product)
            if problem is not None:
                raise ExchangeError(*problem)
            failed = [name for name in COMPLIANCE_CHECKS if c.checks.get(name) is not True]
            if failed:
                raise invalid(f"an approval needs every check passed; not passed: {failed}")
            needs_regulator = product.classification is Classification.IMPORTANT
            product.status = (
                ProductStatus.AWAITING_REGULATOR if needs_regulator else ProductStatus.APPROVED
            )
        elif decision is ComplianceDecision.REJECTED:
            product.status = ProductStatus.REJECTED
        else:
            product.status = ProductStatus.CHANGES_REQUESTED
        self._record(product, seq, ts, "review", c.actor, decision, dict(c.checks), opinion)
        entry = entries.compliance_decision(
            product_id=product.product_id, reviewer=c.actor, decision=decision,
            checks=dict(c.checks), opinion=opinion, key=f"compliance:{seq}", ts_ns=ts,
        )  # fmt: skip
        return product, entry

    def regulator_decision(
        self, c: cmd.RegulatorDecision, seq: int, ts: int
    ) -> tuple[DataProduct, Entry]:
        product = self.product(c.product_id)
        self._expect_status(product, ProductStatus.AWAITING_REGULATOR)
        decision = enum_member(ComplianceDecision, c.decision, "decision")
        if decision is ComplianceDecision.CHANGES_REQUESTED:
            raise invalid("a regulator approves or rejects")
        opinion = text(c.opinion, "opinion", MAX_TEXT)
        approved = decision is ComplianceDecision.APPROVED
        product.status = ProductStatus.APPROVED if approved else ProductStatus.REJECTED
        self._record(product, seq, ts, "regulator_decision", c.actor, decision, {}, opinion)
        entry = entries.compliance_decision(
            product_id=product.product_id, reviewer=c.actor, decision=decision, checks={},
            opinion=opinion, key=f"compliance:{seq}", ts_ns=ts,
        )  # fmt: skip
        return product, entry

    def suspend(self, c: cmd.SuspendProduct, seq: int, ts: int) -> DataProduct:
        """Suspend the product; the caller halts its instruments."""
        product = self.product(c.product_id)
        reason = text(c.reason, "reason", MAX_TEXT)
        if product.status is ProductStatus.SUSPENDED:
            raise ExchangeError(Reason.COMPLIANCE_REVIEW_STATE, "the product is already suspended")
        product.status_before_suspension = product.status
        product.status = ProductStatus.SUSPENDED
        self._record(product, seq, ts, "suspended", c.actor, opinion=reason)
        return product

    def reinstate(self, c: cmd.ReinstateProduct, seq: int, ts: int) -> DataProduct:
        """Give the product back the status it had; the caller reopens its instruments."""
        product = self.product(c.product_id)
        reason = text(c.reason, "reason", MAX_TEXT)
        self._expect_status(product, ProductStatus.SUSPENDED)
        assert product.status_before_suspension is not None
        product.status, product.status_before_suspension = product.status_before_suspension, None
        self._record(product, seq, ts, "reinstated", c.actor, opinion=reason)
        return product

    def _record(
        self, product: DataProduct, seq: int, ts: int, action: str, actor: str,
        decision: str | None = None, checks: dict[str, bool] | None = None, opinion: str = "",
    ) -> None:  # fmt: skip
        self.history[product.product_id].append(
            ComplianceRecord(seq, ts, action, actor, decision, checks or {}, opinion,
                             product.status)
        )  # fmt: skip

    @staticmethod
    def _expect_status(product: DataProduct, *statuses: ProductStatus) -> None:
        if product.status not in statuses:
            wanted = " or ".join(statuses)
            raise ExchangeError(
                Reason.COMPLIANCE_REVIEW_STATE,
                f"product {product.product_id} is {product.status}, not {wanted}",
            )
