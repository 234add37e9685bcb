"""True values: the latent worth of each licence, which agents sample and valuations chase.

The generating process (docs/simulation.md, "True values"), in natural logs, money in minor
units (fen) per licence. For product p and licence terms tau at tick t::

    log V(p, tau, t) = log(100 x base[category])                 category's level
                     + record_elasticity   x log(records / 10^6)  scale
                     + quality_elasticity  x log(mean quality)    quality (scores in [0, 1])
                     + freshness_premium[update frequency]
                     + coverage_elasticity x log(coverage months / 12)
                     + region_premium[region]                     (0 for regions not named)
                     + noise_sd x z_p                             product noise, z_p ~ N(0, 1)
                     + exclusivity_premium x [exclusive]          licence terms
                     + duration_elasticity x log(duration months / 12)
                     + scope_premium[scope]
                     + cross_border_premium x [cross border]
                     + w_p(t)                                     the fundamental path

    w_p(0) = 0;  w_p(t) = w_p(t-1) + sigma_p(t) x e,   e ~ N(0, 1)
    sigma_p(t) = sigma x exp(h_p(t) - s^2 / 2),  h_p(t) = phi x h_p(t-1) + eta x u, u ~ N(0, 1)

with sigma = volatility_per_day / sqrt(ticks per day), phi = volatility_persistence, eta =
volatility_of_volatility and s^2 = eta^2 / (1 - phi^2) the stationary variance of h (so the
mean variance per tick is about sigma^2): stochastic volatility, whose bursts cluster.

The cost basis (replacement cost of one licence under the reference terms) is, unless the
scenario fixes it, ``V(p, reference terms, 0) x exp(cost_bias + cost_sd x z'_p)``: loosely
tied to value, as the cost of building data is.

A shock (the scenario's ``[[shocks]]``) reprices a category at once: from the start of its
day, ``w_p`` of every product of the category is raised by ``log(factor)``.

The product draws ``z_p`` and ``z'_p`` come from the catalogue's stream (the scenario's
``catalogue_seed`` or the run's seed); the path from the run's ``fundamental`` stream.
"""

from __future__ import annotations

import math

from exchange.simulation.rng import derive_rng
from exchange.simulation.scenario import ProductSpec, Scenario, TermsSpec

__all__ = ["TrueValues", "log_reference_value", "log_terms_premium"]

_QUALITY_FLOOR = 0.01


def log_reference_value(product: ProductSpec, scenario: Scenario) -> float:
    """log V(p, reference terms, 0) in minor units: everything but terms and path."""
    truth = scenario.truth
    quality = max(_QUALITY_FLOOR, sum(product.quality_bp) / 4 / 10_000)
    return (
        math.log(100.0 * truth.category_base[product.category])
        + truth.record_elasticity * math.log(product.record_count / 1e6)
        + truth.quality_elasticity * math.log(quality)
        + truth.freshness_premium.get(product.update_frequency, 0.0)
        + truth.coverage_elasticity * math.log(product.coverage_months / 12)
        + truth.region_premium.get(product.region, 0.0)
        + truth.noise_sd * product.noise_z
    )


def log_terms_premium(terms: TermsSpec, scenario: Scenario) -> float:
    """The licence terms' log premium over the reference terms."""
    truth = scenario.truth
    return (
        truth.exclusivity_premium * (terms.exclusivity == "exclusive")
        + truth.duration_elasticity * math.log(terms.duration_months / 12)
        + truth.scope_premium.get(terms.scope, 0.0)
        + truth.cross_border_premium * (terms.territory == "cross_border")
    )


class TrueValues:
    """Every listed instrument's true value now, and the fundamental path that moves it.

    ``value_minor(symbol)`` is a float in minor units per licence; ``advance()`` moves every
    product's path one tick (a no-op, drawing nothing, when ``volatility_per_day`` is 0).
    """

    def __init__(self, scenario: Scenario, seed: int) -> None:
        truth = scenario.truth
        self.log_reference = {p.key: log_reference_value(p, scenario) for p in scenario.products}
        self.cost_basis_minor = {
            p.key: (
                p.cost_basis_minor
                if p.cost_basis_minor is not None
                else max(
                    1,
                    round(
                        math.exp(
                            self.log_reference[p.key] + truth.cost_bias + truth.cost_sd * p.cost_z
                        )
                    ),
                )
            )
            for p in scenario.products
        }
        terms_premium = {key: log_terms_premium(t, scenario) for key, t in scenario.terms.items()}
        self.symbols = {
            listing.symbol: (listing.product, terms_premium[listing.terms])
            for listing in scenario.listings
        }
        self.path = dict.fromkeys(self.log_reference, 0.0)
        self.category = {p.key: p.category for p in scenario.products}
        self._log_vol = dict.fromkeys(self.log_reference, 0.0)
        self._sigma = truth.volatility_per_day / math.sqrt(scenario.ticks_per_day)
        self._phi = truth.volatility_persistence
        self._eta = truth.volatility_of_volatility
        stationary = self._eta**2 / (1 - self._phi**2) if self._eta else 0.0
        self._drift = stationary / 2
        self._rng = derive_rng(seed, "fundamental")
        self._moving = sorted(
            {product for product, _ in self.symbols.values()}
        )  # only listed products move; sorted, so the draws' order is fixed

    def value_minor(self, symbol: str) -> float:
        product, premium = self.symbols[symbol]
        return math.exp(self.log_reference[product] + premium + self.path[product])

    def reprice(self, category: str, factor: float) -> None:
        """Every true value in ``category`` becomes ``factor`` times what it was."""
        step = math.log(factor)
        for product, its_category in self.category.items():
            if its_category == category:
                self.path[product] += step

    def advance(self) -> None:
        if self._sigma == 0.0:
            return
        gauss = self._rng.gauss
        phi, eta, sigma, drift = self._phi, self._eta, self._sigma, self._drift
        path, log_vol = self.path, self._log_vol
        for product in self._moving:
            h = phi * log_vol[product] + eta * gauss(0.0, 1.0) if eta else 0.0
            log_vol[product] = h
            path[product] += sigma * math.exp(h - drift) * gauss(0.0, 1.0)
