"""Hypothesis strategies for the ledger: operations a market produces, in random batches."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Database-backed properties: few, fairly long examples keep both databases under a minute.
# The ledger fixture is shared by the examples of one test; each example names its own
# participants and instrument, so examples do not see each other's balances.
LEDGER_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

PARTICIPANTS = ("ann", "bob", "cy")
EXPIRIES_NS = (1_000, 2_000)
ISSUANCE_CAP_UNITS = 40


@dataclass(frozen=True)
class Deposit:
    participant: str
    amount_minor: int


@dataclass(frozen=True)
class Withdraw:
    participant: str
    amount_minor: int


@dataclass(frozen=True)
class Issue:
    units: int


@dataclass(frozen=True)
class Trade:
    buyer: str
    seller: str | None  # None: the provider sells newly issued licences
    price_minor_per_unit: int
    quantity_units: int
    fee_minor: int
    expires_at_ns: int


@dataclass(frozen=True)
class Expire:
    holder: str
    expires_at_ns: int


Operation = Deposit | Withdraw | Issue | Trade | Expire

participants = st.sampled_from(PARTICIPANTS)
cash_minor = st.integers(1, 5_000)


@st.composite
def trades(draw: st.DrawFn) -> Trade:
    buyer = draw(participants)
    seller = draw(st.none() | participants.filter(lambda p: p != buyer))
    price = draw(st.integers(1, 300))
    quantity = draw(st.integers(1, 6))
    fee = draw(st.integers(0, price * quantity // 10))
    return Trade(buyer, seller, price, quantity, fee, draw(st.sampled_from(EXPIRIES_NS)))


operations: st.SearchStrategy[Operation] = st.one_of(
    st.builds(Deposit, participants, cash_minor),
    st.builds(Deposit, participants, cash_minor),
    st.builds(Issue, st.integers(1, 15)),
    st.builds(Withdraw, participants, cash_minor),
    trades(),
    st.builds(Withdraw, participants, cash_minor),
    st.builds(Issue, st.integers(1, 15)),
    trades(),
    st.builds(Expire, participants, st.sampled_from(EXPIRIES_NS)),
)

# Operations grouped into batches, each appended in one transaction.
batches = st.lists(st.lists(operations, min_size=1, max_size=2), min_size=6, max_size=20)
