"""A scenario's catalogue drawn from a seed: each product's attributes from its draws.

Reading a file needs no seed (``scenario_reader``); drawing does. The draws come from the
``"catalogue"`` stream of the scenario's ``catalogue_seed``, or of the run's seed when the
file leaves it out, in a fixed order (every attribute of one product, then the next), so one
seed always gives one catalogue. A range is drawn uniformly (log-uniformly for
``record_count`` and ``cost_basis``), a choice uniformly; a fixed value takes no draw.

:func:`load_scenario` and :func:`parse_scenario` read and draw in one call.
"""

from __future__ import annotations

import dataclasses
import math
import random
from pathlib import Path

from exchange.money import MINOR_PER_UNIT
from exchange.simulation.grid import Point
from exchange.simulation.rng import derive_rng
from exchange.simulation.scenario import ProductDraw, ProductSpec, Scenario, ScenarioSpec
from exchange.simulation.scenario_reader import parse_scenario_spec, read_scenario

__all__ = ["draw_scenario", "load_scenario", "parse_scenario"]


def draw_scenario(spec: ScenarioSpec, seed: int) -> Scenario:
    """``spec`` with its products drawn from ``seed``, unless it fixes ``catalogue_seed``."""
    rng = derive_rng(seed if spec.catalogue_seed is None else spec.catalogue_seed, "catalogue")
    products = tuple(_draw_product(rng, draw) for draw in spec.product_draws)
    settled = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}
    return Scenario(**settled, products=products)


def load_scenario(path: str | Path, *, seed: int = 0, settings: Point = ()) -> Scenario:
    """Read the scenario at ``path``, with ``settings`` made to its fields (a grid point,
    ``exchange.simulation.grid``), and draw its catalogue from ``seed``.
    Raises :class:`~exchange.simulation.scenario_reader.ScenarioError`."""
    return draw_scenario(read_scenario(path, settings=settings), seed)


def parse_scenario(
    text: str, *, source: str = "scenario.toml", seed: int = 0, settings: Point = ()
) -> Scenario:
    """:func:`load_scenario` of a file's ``text``; ``source`` names it in messages."""
    return draw_scenario(parse_scenario_spec(text, source=source, settings=settings), seed)


def _draw_product(rng: random.Random, draw: ProductDraw) -> ProductSpec:
    # The order of the draws is part of the format: changing it changes every catalogue.
    category = _draw_text(rng, draw.category)
    region = _draw_text(rng, draw.region)
    frequency = _draw_text(rng, draw.update_frequency)
    records = round(_draw_number(rng, draw.record_count, log=True))
    coverage = max(1, round(_draw_number(rng, draw.coverage_months, log=False)))
    quality = tuple(round(10_000 * _draw_number(rng, q, log=False)) for q in draw.quality)
    cost = None
    if draw.cost_basis is not None:
        cost = round(_draw_number(rng, draw.cost_basis, log=True) * MINOR_PER_UNIT)
    noise_z, cost_z = rng.gauss(0.0, 1.0), rng.gauss(0.0, 1.0)
    return ProductSpec(
        key=draw.key,
        group=draw.group,
        provider=draw.provider,
        title=draw.title,
        category=category,
        region=region,
        record_count=records,
        coverage_months=coverage,
        update_frequency=frequency,
        quality_bp=quality,  # type: ignore[arg-type]
        classification=draw.classification,
        personal_information=draw.personal_information,
        desensitised=draw.desensitised,
        lawful_source=draw.lawful_source,
        cost_basis_minor=cost,
        noise_z=noise_z,
        cost_z=cost_z,
    )


def _draw_text(rng: random.Random, choices: tuple[str, ...]) -> str:
    return choices[0] if len(choices) == 1 else choices[rng.randrange(len(choices))]


def _draw_number(rng: random.Random, draw: tuple[float, float], *, log: bool) -> float:
    low, high = draw
    if low == high:
        return low
    if log:
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    return rng.uniform(low, high)
