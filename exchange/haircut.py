"""The haircut policy: how much less than its price a pledged licence counts as collateral.

A lender lends against what it could sell the collateral for, late and in a hurry. A data
licence's price is uncertain (the valuation's range), may be stale (days since the last
trade, few comparables), and runs out (the licence's remaining term); the data itself may
deteriorate (missed updates, lower quality, a compliance suspension). Each adds to the
haircut, in basis points; the total is capped at 100% (a licence that expires before the
debt is due, or has expired, counts at zero from its expiry).

``haircut(policy, inputs)`` is a pure function of integers. Its parameters are the
facility's (:class:`HaircutPolicy`, agreed when the facility is created); its inputs are the
exchange's facts about the instrument, the product and the pledge (:class:`HaircutInputs`).
docs/collateral.md gives the defaults and why.

>>> policy = HaircutPolicy()
>>> h = haircut(policy, HaircutInputs(width_bp=4000, days_since_trade=2, comparables=5,
...                                   days_to_expiry=400))
>>> h.total_bp, h.uncertainty_bp, h.illiquidity_bp
(3050, 3000, 50)
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Final, NamedTuple

__all__ = [
    "BP",
    "Haircut",
    "HaircutInputs",
    "HaircutPolicy",
    "expiry_bp",
    "haircut",
    "instrument_parts",
    "policy_from_mapping",
]

BP: Final = 10_000  # basis points in one


@dataclass(frozen=True, slots=True)
class HaircutPolicy:
    """A facility's haircut parameters (basis points unless the name says otherwise)."""

    base_bp: int = 1_000  # every licence: the cost and delay of selling data at all
    range_share_pct: int = 50  # this share of the valuation range's width, relative to value
    unvalued_width_bp: int = 10_000  # the width assumed when no valuation has been posted
    illiquidity_bp_per_day: int = 25  # for each day since the instrument last traded
    illiquidity_cap_bp: int = 2_500  # ... at most (and for an instrument never traded)
    comparables_floor: int = 5  # fewer comparables than this behind the valuation ...
    missing_comparable_bp: int = 300  # ... add this for each one missing
    expiry_horizon_days: int = 180  # a licence with less term left than this ...
    expiry_max_bp: int = 5_000  # ... loses up to this much, linearly to its expiry
    stale_update_bp: int = 2_000  # while the provider has missed an update it declared
    quality_drop_share_pct: int = 200  # this share of the drop in mean quality since pledge
    suspended_bp: int = 5_000  # while the product is suspended (it cannot be sold)

    def to_mapping(self) -> dict[str, int]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


# Each parameter's bounds: a policy outside them is refused when the facility is created.
LIMITS: Final = {
    "base_bp": (0, BP),
    "range_share_pct": (0, 1_000),
    "unvalued_width_bp": (0, 5 * BP),
    "illiquidity_bp_per_day": (0, BP),
    "illiquidity_cap_bp": (0, BP),
    "comparables_floor": (0, 50),
    "missing_comparable_bp": (0, BP),
    "expiry_horizon_days": (1, 3_650),
    "expiry_max_bp": (0, BP),
    "stale_update_bp": (0, BP),
    "quality_drop_share_pct": (0, 1_000),
    "suspended_bp": (0, BP),
}


def policy_from_mapping(values: dict[str, Any] | None) -> HaircutPolicy:
    """The policy with ``values`` over the defaults; ``ValueError`` naming a bad parameter."""
    values = values or {}
    if not isinstance(values, dict):
        raise ValueError("haircut must be an object of parameter names to integers")
    unknown = sorted(set(values) - set(LIMITS))
    if unknown:
        raise ValueError(f"unknown haircut parameter(s) {', '.join(map(str, unknown))}; "
                         f"known: {', '.join(LIMITS)}")  # fmt: skip
    for name, value in values.items():
        low, high = LIMITS[name]
        if type(value) is not int or not low <= value <= high:
            raise ValueError(f"haircut {name} must be an integer in {low}..{high}")
    return HaircutPolicy(**values)


class HaircutInputs(NamedTuple):
    """What the exchange knows about one pledge's instrument, product and licence."""

    width_bp: int | None  # the valuation's (high - low) / value; None: no valuation
    days_since_trade: int | None  # None: never traded
    comparables: int | None = None  # behind the valuation; None: no valuation
    days_to_expiry: int | None = None  # None: unissued licences, whose term starts at sale
    update_missed: bool = False
    quality_drop_bp: int = 0  # mean quality at pledge minus now (never negative)
    suspended: bool = False


class Haircut(NamedTuple):
    total_bp: int
    uncertainty_bp: int
    illiquidity_bp: int
    expiry_bp: int
    deterioration_bp: int


def haircut(policy: HaircutPolicy, inputs: HaircutInputs) -> Haircut:
    """The haircut of a pledge: the base plus each component, capped at 100%.

    Uncertainty: the base, a share of the valuation range's relative width, and a charge per
    comparable missing below the floor. Illiquidity: a charge per day since the last trade,
    capped. Expiry: none with more term left than the horizon, rising linearly to
    ``expiry_max_bp`` at expiry, and 100% from expiry on. Deterioration: missed updates,
    a drop in quality, a suspension.
    """
    uncertainty, illiquidity, standing = instrument_parts(policy, inputs)
    expiry = expiry_bp(policy, inputs.days_to_expiry)
    deterioration = standing + inputs.quality_drop_bp * policy.quality_drop_share_pct // 100
    total = min(BP, uncertainty + illiquidity + expiry + deterioration)
    return Haircut(total, uncertainty, illiquidity, expiry, deterioration)


def instrument_parts(policy: HaircutPolicy, inputs: HaircutInputs) -> tuple[int, int, int]:
    """The parts every pledge of one instrument shares: uncertainty, illiquidity, and the
    deterioration of its product (missed updates, suspension; not the quality drop, which
    counts from each pledge's own date)."""
    width = policy.unvalued_width_bp if inputs.width_bp is None else inputs.width_bp
    uncertainty = policy.base_bp + width * policy.range_share_pct // 100
    if inputs.comparables is not None and inputs.comparables < policy.comparables_floor:
        uncertainty += (
            policy.comparables_floor - inputs.comparables
        ) * policy.missing_comparable_bp
    days = inputs.days_since_trade
    illiquidity = (
        policy.illiquidity_cap_bp
        if days is None
        else min(policy.illiquidity_cap_bp, days * policy.illiquidity_bp_per_day)
    )
    deterioration = 0
    if inputs.update_missed:
        deterioration += policy.stale_update_bp
    if inputs.suspended:
        deterioration += policy.suspended_bp
    return uncertainty, illiquidity, deterioration


def expiry_bp(policy: HaircutPolicy, days_to_expiry: int | None) -> int:
    """The expiry part: nothing beyond the horizon (or for unissued licences), rising
    linearly to ``expiry_max_bp`` at expiry, 100% from expiry on."""
    if days_to_expiry is None or days_to_expiry >= policy.expiry_horizon_days:
        return 0
    if days_to_expiry <= 0:
        return BP
    horizon = policy.expiry_horizon_days
    return (horizon - days_to_expiry) * policy.expiry_max_bp // horizon
