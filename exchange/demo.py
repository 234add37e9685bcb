"""The demo market: a small, live exchange for a first look.

:func:`seed_demo` builds it through the same commands as everyone else (so it is journalled,
risk-checked and settled like any market): a provincial parking operator listing its
traffic-flow and payment data, a grid operator with exclusive load data, a bank, buyers, a
market maker, a reviewer and a regulator; products reviewed (one refused: core data never
lists) and instruments in each trading mode; and a loan facility from the bank to the
parking operator against its unsold traffic-flow licences, valued, pledged and drawn, whose
LTV moves as the market trades (docs/collateral.md). It is idempotent: on a database that already
holds the demo it only adds a guest. Each start adds a funded guest participant, whose key
(shown once) lets a newcomer trade against the market.

:class:`BackgroundTraders` keeps the market moving: a market maker quoting both sides around
a slowly drifting fair value, buyers and resellers sending limit orders near it, the
provider offering new licences, and the call auction uncrossing every few seconds; the
parking operator attests its products' daily updates, as a pledged product must; and the
desk revalues the pledged instrument from its tape every half minute (the volume-weighted
price of its recent trades, their lowest and highest price as the range), so that the
facility's LTV follows the market.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass

from exchange import commands as cmd
from exchange.errors import ExchangeError
from exchange.facility import DAY_NS
from exchange.participants import new_api_key, secret_digest
from exchange.pricing import (
    DEFAULT_PARAMETERS,
    cost_approach,
    product_from_catalogue,
    terms_from_catalogue,
)
from exchange.pricing.market import DEFAULT_COST_LOG_SD
from exchange.sequencer import Sequencer, SequencerStopped
from exchange.service import OPERATOR

__all__ = [
    "CONTINUOUS_SYMBOL",
    "BackgroundTraders",
    "DemoGuest",
    "facility_party_keys",
    "seed_demo",
]

log = logging.getLogger(__name__)

CONTINUOUS_SYMBOL = "ZJPARK.FLOW.NX12.COM"
AUCTION_SYMBOL = "ZJPARK.PAY.NX12.INT"
SEALED_SYMBOL = "ZJGRID.LOAD.EX24.COM"
FAIR_VALUE_MINOR = {CONTINUOUS_SYMBOL: 120_00, AUCTION_SYMBOL: 480_00}
ALL_CHECKS = {"classification": True, "desensitisation": True,
              "lifecycle_and_retention": True, "risk_controls": True}  # fmt: skip

_PARTICIPANTS = [
    ("demo-admin", "Exchange operations desk", ["admin"]),
    ("zj-review", "Compliance review desk", ["reviewer"]),
    ("zj-regulator", "Provincial data regulator", ["regulator"]),
    ("hz-parking", "Hangzhou City Parking Operations Co.", ["provider"]),
    ("zj-grid", "Zhejiang Grid Data Services", ["provider"]),
    ("hz-bank", "Hangzhou Commercial Bank", ["buyer", "lender"]),
    ("nav-app", "Navigation app", ["buyer"]),
    ("ins-co", "Motor insurer", ["buyer"]),
    ("mm-alpha", "Alpha Liquidity (market maker)", ["market_maker"]),
]
_BUYERS = ("hz-bank", "nav-app", "ins-co", "mm-alpha")
# The bank's facility to the parking operator: unsold traffic-flow licences pledged, drawn to
# nine tenths of the initial LTV. Before the demo's first trade the cost approach is the
# only valuation the exchange can make, and its range is wide: the facility's haircut policy
# counts a fifth of the range's width (the default, half, would leave no value to lend
# against) and asks for no comparables.
PLEDGED_UNITS = 1_000
DRAWN_SHARE_OF_INITIAL = 0.9
FACILITY_HAIRCUT = {"range_share_pct": 20, "comparables_floor": 0}


def _product(provider: str, title: str, **fields: object) -> cmd.CreateProduct:
    values: dict[str, object] = {
        "actor": provider, "product_id": "", "title": title, "description": "",
        "category": "transport", "region": "Zhejiang", "record_count": 1_000_000,
        "coverage_start": "2023-01-01", "coverage_end": "2025-12-31",
        "update_frequency": "daily",
        "quality_bp": {"completeness": 9_500, "accuracy": 9_300, "timeliness": 9_000,
                       "consistency": 9_200},
        "personal_information": False, "classification": "general", "desensitised": False,
        "lawful_source_attestation": "Collected by the provider under its operating licence",
        "cost_basis_minor": 90_00,  # per licence, reference terms
    }  # fmt: skip
    values.update(fields)
    return cmd.CreateProduct(**values)  # type: ignore[arg-type]


def _listing(symbol: str, product_id: str, **fields: object) -> cmd.ListInstrument:
    values: dict[str, object] = {
        "actor": "demo-admin", "symbol": symbol, "product_id": product_id,
        "exclusivity": "non_exclusive", "duration_months": 12, "scope": "commercial",
        "territory": "domestic", "transferable": True, "tick_size_minor": 1_00,
        "lot_size_units": 1, "trading_mode": "continuous", "issuance_cap_units": 100_000,
        "fee_rate_bp": 10, "price_band_low_minor": None, "price_band_high_minor": None,
        "sealed_bid_pricing": "first_price",
    }  # fmt: skip
    values.update(fields)
    return cmd.ListInstrument(**values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class DemoGuest:
    participant_id: str
    api_key: str


def seed_demo(sequencer: Sequencer) -> DemoGuest:
    """Build the demo market unless it is there, then add and fund a guest; see module."""
    run = sequencer.execute
    if "demo-admin" not in sequencer.exchange.participants.by_id:
        for participant_id, name, roles in _PARTICIPANTS:
            key = new_api_key()  # never shown: the demo's own participants act in-process
            run(cmd.CreateParticipant(OPERATOR, participant_id, name, roles, key.key_id,
                                      secret_digest(key.secret)))  # fmt: skip
        flow = run(_product(
            "hz-parking", "Hangzhou on-street parking: traffic flow by bay and hour",
            description="Occupancy and turnover of 42,000 bays, hourly", record_count=12_000_000,
        )).result.product_id  # fmt: skip
        payments = run(_product(
            "hz-parking", "Hangzhou parking payments (desensitised)",
            description="Per-session payments, payer identities tokenised",
            category="finance", record_count=30_000_000, personal_information=True,
            desensitised=True, classification="important",
        )).result.product_id  # fmt: skip
        load = run(_product(
            "zj-grid", "Zhejiang feeder load curves, 15-minute", category="energy",
            record_count=80_000_000, update_frequency="real_time", cost_basis_minor=900_000_00,
        )).result.product_id  # fmt: skip
        plates = run(_product(
            "hz-parking", "Licence-plate camera feed (raw)", personal_information=True,
            classification="core",
        )).result.product_id  # fmt: skip
        for product_id in (flow, payments, load):
            run(
                cmd.ReviewProduct(
                    "zj-review",
                    product_id,
                    "approved",
                    ALL_CHECKS,
                    "Classification, desensitisation and retention reviewed.",
                )
            )
        run(
            cmd.RegulatorDecision(
                "zj-regulator",
                payments,
                "approved",
                "Important data: approved for domestic commercial use.",
            )
        )
        run(cmd.ReviewProduct("zj-review", plates, "rejected", {"classification": False},
                              "Core data: it is never listed."))  # fmt: skip
        run(_listing(CONTINUOUS_SYMBOL, flow))
        run(_listing(AUCTION_SYMBOL, payments, trading_mode="call_auction", scope="internal",
                     tick_size_minor=5_00))  # fmt: skip
        run(_listing(SEALED_SYMBOL, load, exclusivity="exclusive", duration_months=24,
                     trading_mode="sealed_bid", issuance_cap_units=1, transferable=False,
                     sealed_bid_pricing="second_price", tick_size_minor=1_000_00))  # fmt: skip
        run(cmd.SetPhase("demo-admin", CONTINUOUS_SYMBOL, "continuous"))
        run(cmd.SetPhase("demo-admin", AUCTION_SYMBOL, "auction"))
        run(cmd.SetPhase("demo-admin", SEALED_SYMBOL, "auction"))
        for buyer in _BUYERS:
            run(cmd.Deposit("demo-admin", buyer, 10_000_000_00, "opening balance"))
        _seed_facility(sequencer)
        # The exclusive licence: the grid operator's reserve, and a first sealed bid.
        run(
            cmd.SubmitOrder(
                "zj-grid",
                "reserve-1",
                0,
                SEALED_SYMBOL,
                "sell",
                "limit",
                3_000_000_00,
                1,
                "GTC",
                None,
                False,
                "cancel_newest",
            )
        )
        run(
            cmd.SubmitOrder(
                "hz-bank",
                "sealed-1",
                0,
                SEALED_SYMBOL,
                "buy",
                "limit",
                3_100_000_00,
                1,
                "GTC",
                None,
                False,
                "cancel_newest",
            )
        )
    participants = sequencer.exchange.participants.by_id
    guest_number = 1 + sum(1 for p in participants if p.startswith("guest"))
    guest_id = f"guest-{guest_number}"
    key = new_api_key()
    run(
        cmd.CreateParticipant(
            OPERATOR,
            guest_id,
            f"Demo guest {guest_number}",
            ["buyer", "market_maker"],
            key.key_id,
            secret_digest(key.secret),
        )
    )
    run(cmd.Deposit("demo-admin", guest_id, 1_000_000_00, "demo funds"))
    return DemoGuest(guest_id, str(key))


# The facility's two sides, whose keys each start issues afresh (facility_party_keys).
FACILITY_PARTIES = ("hz-bank", "hz-parking")


def facility_party_keys(sequencer: Sequencer) -> dict[str, str]:
    """A fresh key (shown once) for the demo facility's lender and borrower, so that a
    newcomer can see the facility from either side; their previous keys stop working. The
    demo's own agents act in-process and need none."""
    keys = {}
    for participant_id in FACILITY_PARTIES:
        key = new_api_key()
        sequencer.execute(cmd.RotateApiKey(OPERATOR, participant_id, key.key_id,
                                           secret_digest(key.secret)))  # fmt: skip
        keys[participant_id] = str(key)
    return keys


def _seed_facility(sequencer: Sequencer) -> None:
    """The bank lends to the parking operator against 1,000 of its unsold flow licences."""
    run, exchange = sequencer.execute, sequencer.exchange
    facility = run(cmd.CreateFacility(
        "hz-bank", 0, "hz-parking", limit_minor=50_000_00, rate_bp=450,
        maturity_ns=exchange.last_ts_ns + 365 * DAY_NS, initial_ltv_bp=5_000,
        margin_call_ltv_bp=6_500, liquidation_ltv_bp=8_000, cure_period_s=86_400,
        auction_duration_s=3_600, haircut=FACILITY_HAIRCUT, client_facility_id="demo-flow",
    )).result  # fmt: skip
    run(cmd.AcceptFacility("hz-parking", facility.facility_id))
    instrument = exchange.instruments[CONTINUOUS_SYMBOL]
    cost = cost_approach(
        product_from_catalogue(exchange.products[instrument.product_id]),
        terms_from_catalogue(instrument.terms),
        DEFAULT_PARAMETERS,
        DEFAULT_COST_LOG_SD,
    )  # yuan per licence
    run(cmd.PostValuation("demo-admin", CONTINUOUS_SYMBOL, round(cost.value * 100),
                          round(cost.low * 100), round(cost.high * 100), 0, "cost"))  # fmt: skip
    run(cmd.PledgeLicences("hz-parking", facility.facility_id, 0, CONTINUOUS_SYMBOL,
                           PLEDGED_UNITS, None))  # fmt: skip
    most = facility.value_minor * facility.initial_ltv_bp // 10_000
    run(cmd.DrawLoan("hz-parking", facility.facility_id,
                     int(most * DRAWN_SHARE_OF_INITIAL) // 100 * 100))  # fmt: skip


class BackgroundTraders:
    """A thread of simple agents trading the demo market until stopped."""

    AUCTION_EVERY_S = 10.0
    ATTEST_EVERY_S = 600.0  # well within a daily product's promise
    REVALUE_EVERY_S = 30.0
    REVALUE_TRADES = 50  # the recent trades a revaluation reads

    def __init__(self, sequencer: Sequencer, *, seed: int = 7, interval_s: float = 0.25):
        self.sequencer = sequencer
        self.rng = random.Random(seed)
        self.interval_s = interval_s
        self.fair_minor = dict(FAIR_VALUE_MINOR)
        self.refused = 0
        self.submitted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-traders", daemon=True)
        self._next_id = 0

    def start(self) -> BackgroundTraders:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _client_id(self) -> str:
        self._next_id += 1
        return f"demo-{self.rng.getrandbits(32):08x}-{self._next_id}"

    def _order(self, who: str, symbol: str, side: str, price_minor: int, quantity: int,
               tif: str = "GTC") -> None:  # fmt: skip
        self._send(
            cmd.SubmitOrder(
                who,
                self._client_id(),
                0,
                symbol,
                side,
                "limit",
                price_minor,
                quantity,
                tif,
                None,
                False,
                "cancel_newest",
            )
        )

    def _send(self, command: cmd.Command) -> None:
        try:
            self.sequencer.execute(command)
            self.submitted += 1
        except ExchangeError:
            self.refused += 1  # e.g. not enough cash or licences left: agents simply go on

    def _open_orders(self, who: str, symbol: str) -> list[int]:
        with self.sequencer.lock:
            orders = self.sequencer.exchange.orders_of(who, open_only=True, after_id=0,
                                                       limit=1_000)  # fmt: skip
        return [order.order_id for order in orders if order.symbol == symbol]

    def _run(self) -> None:
        waited = 0.0
        since_attested = self.ATTEST_EVERY_S  # attest at once: a restart may follow a gap
        since_valued = 0.0
        while not self._stop.wait(self.interval_s):
            try:
                self._step()
                waited += self.interval_s
                since_attested += self.interval_s
                since_valued += self.interval_s
                if waited >= self.AUCTION_EVERY_S:
                    waited = 0.0
                    self._send(cmd.Uncross("demo-admin", AUCTION_SYMBOL))
                if since_attested >= self.ATTEST_EVERY_S:
                    since_attested = 0.0
                    self._attest()
                if since_valued >= self.REVALUE_EVERY_S:
                    since_valued = 0.0
                    self._revalue()
            except SequencerStopped:
                return
            except Exception:  # the demo must never take the exchange down with it
                log.exception("demo trader step failed")

    def _attest(self) -> None:
        """The parking operator attests the update of its listed products."""
        with self.sequencer.lock:
            instruments = self.sequencer.exchange.instruments
            products = sorted({instruments[s].product_id for s in (CONTINUOUS_SYMBOL,
                                                                  AUCTION_SYMBOL)})  # fmt: skip
        for product_id in products:
            self._send(cmd.AttestUpdate("hz-parking", product_id))

    def _revalue(self) -> None:
        """Post a valuation of the pledged instrument from its recent trades."""
        with self.sequencer.lock:
            tape = self.sequencer.exchange.market_data.tape(CONTINUOUS_SYMBOL,
                                                           self.REVALUE_TRADES)  # fmt: skip
        if len(tape) < 3:
            return
        prices = [trade.price_minor for trade in tape]
        volume = sum(trade.quantity_units for trade in tape)
        vwap = sum(trade.price_minor * trade.quantity_units for trade in tape) // volume
        self._send(cmd.PostValuation("demo-admin", CONTINUOUS_SYMBOL, vwap, min(prices),
                                     max(prices), 0, "tape_vwap"))  # fmt: skip

    def _step(self) -> None:
        rng = self.rng
        symbol = CONTINUOUS_SYMBOL if rng.random() < 0.75 else AUCTION_SYMBOL
        tick = 1_00 if symbol == CONTINUOUS_SYMBOL else 5_00
        fair = self.fair_minor[symbol] = max(
            10 * tick, self.fair_minor[symbol] + tick * rng.choice((-1, 0, 0, 1))
        )
        action = rng.random()
        if action < 0.30:
            # The market maker requotes: cancel what it has, quote both sides.
            for order_id in self._open_orders("mm-alpha", symbol):
                self._send(cmd.CancelOrder("mm-alpha", order_id))
            spread = tick * rng.randint(1, 3)
            self._order("mm-alpha", symbol, "buy", fair - spread, rng.randint(1, 5))
            self._order("mm-alpha", symbol, "sell", fair + spread, rng.randint(1, 5))
        elif action < 0.55:
            # The provider offers new licences above the fair value.
            self._order("hz-parking", symbol, "sell", fair + tick * rng.randint(0, 4),
                        rng.randint(1, 10))  # fmt: skip
        elif action < 0.90:
            who = rng.choice(_BUYERS[:3])
            side = "buy" if rng.random() < 0.7 else "sell"
            offset = tick * rng.randint(-3, 3)
            self._order(who, symbol, side, fair + offset, rng.randint(1, 4))
        else:
            for who in _BUYERS[:3]:
                stale = self._open_orders(who, symbol)
                if len(stale) > 5:
                    self._send(cmd.CancelOrder(who, stale[0]))
