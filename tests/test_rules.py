"""Placement rules: static eligibility masks and boost vectors over the catalog."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from decisioner.catalog import Catalog
from decisioner.config import Boost, FilterSpec, PlacementSpec
from decisioner.errors import ConfigError
from decisioner.rules import PlacementRules, compile_rules

ITEMS: list[dict[str, Any]] = [
    {"id": "i0", "category": "shoes", "brand": "acme", "price": 30.0, "tags": ["run"]},
    {"id": "i1", "category": "shoes", "brand": "zeta", "price": 120.0},
    {"id": "i2", "category": "bags", "brand": "acme", "price": 60.0, "tags": ["run", "gift"]},
    {"id": "i3", "category": "gift-cards", "price": 50.0, "tags": ["gift"]},
    {"id": "i4", "category": "hats", "brand": "acme"},  # no price
    {"id": "i5", "category": "bags", "brand": "zeta", "price": 10.0},
]
CAT = Catalog(ITEMS)


def place(filters: FilterSpec = FilterSpec(), boosts: list[Boost] | None = None) -> PlacementSpec:
    return PlacementSpec(name="home", kind="recommendation", filters=filters, boosts=boosts or [])


def test_no_rules_everything_eligible() -> None:
    r = compile_rules(place(), CAT)
    assert isinstance(r, PlacementRules)
    assert r.mask.dtype == np.uint8 and r.mask.tolist() == [1] * 6
    assert r.boost.dtype == np.float64 and r.boost.tolist() == [0.0] * 6
    assert r.reasons == ()


def test_filters_and_boosts_match_hand_built_expectation() -> None:
    spec = place(
        FilterSpec(
            include={"category": ["shoes", "bags", "hats"]},
            exclude={"tags": ["gift"], "brand": ["nobody"]},
            price_min=20.0,
            price_max=100.0,
        ),
        [Boost(facet="brand", value="acme", weight=0.5), Boost(facet="tags", value="run", weight=-0.25),
         Boost(facet="brand", value="acme", weight=0.1)],
    )
    r = compile_rules(spec, CAT)
    # i0 in; i1 too expensive; i2 gift-tagged; i3 not an included category; i4 no price: stays;
    # i5 too cheap
    assert r.mask.tolist() == [1, 0, 0, 0, 1, 0]
    # boosts add up per item; acme twice (+0.6), run -0.25
    assert r.boost.tolist() == pytest.approx([0.6 - 0.25, 0.0, 0.6 - 0.25, 0.0, 0.6, 0.0])
    assert r.reasons == (
        "include category in ['shoes', 'bags', 'hats']",
        "exclude tags in ['gift']",
        "exclude brand in ['nobody']",
        "price >= 20",
        "price <= 100",
        "boost brand=acme +0.5",
        "boost tags=run -0.25",
        "boost brand=acme +0.1",
    )


def test_price_band_is_a_rule_facet() -> None:
    r = compile_rules(place(FilterSpec(include={"price_band": ["0-25", "25-50"]})), CAT)
    assert r.mask.tolist() == [1, 0, 0, 0, 0, 1]


def test_include_of_absent_value_selects_nothing() -> None:
    assert compile_rules(place(FilterSpec(include={"category": ["boats"]})), CAT).mask.sum() == 0


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        (place(FilterSpec(include={"size": ["xl"]})), "placements.home.filters.include"),
        (place(FilterSpec(exclude={"size": ["xl"]})), "placements.home.filters.exclude"),
        (place(boosts=[Boost(facet="brand", value="acme", weight=1.0), Boost(facet="size", value="xl", weight=1.0)]),
         "placements.home.boosts[1]"),
    ],
)
def test_unknown_facet_is_a_config_error(spec: PlacementSpec, where: str) -> None:
    msg = (
        "expected a catalog facet in ['category', 'brand', 'colour', 'tags', 'price_band'], "
        f"got 'size' - at `{where}`"
    )
    with pytest.raises(ConfigError, match="^" + re.escape(msg) + "$"):
        compile_rules(spec, CAT)
