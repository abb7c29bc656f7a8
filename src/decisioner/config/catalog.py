"""Catalog and scoring specs: which item fields are facets, the price-band edges, and the
weights of the score terms."""

from __future__ import annotations

import math
from typing import Annotated

from msgspec import Meta, Struct

from ._spec import SPEC, check

__all__ = ["CatalogSpec", "ScoringSpec"]


class CatalogSpec(Struct, **SPEC):
    """Which item fields are facets, and the price-band edges that make the ``price_band`` facet."""

    facets: tuple[str, ...] = ("category", "brand", "colour", "tags")
    price_bands: tuple[float, ...] = (25.0, 50.0, 100.0, 250.0)

    def __post_init__(self) -> None:
        check(len(self.facets) > 0, "expected at least one facet, got none for `facets`")
        bands = list(self.price_bands)
        check(
            all(math.isfinite(b) for b in bands) and bands == sorted(set(bands)),
            f"expected strictly increasing finite edges, got {bands!r} for `price_bands`",
        )


class ScoringSpec(Struct, **SPEC):
    """Weights of the score terms: affinity . facets + popularity prior (+ boosts)."""

    affinity_weight: Annotated[float, Meta(ge=0.0, le=1e6)] = 1.0
    popularity_weight: Annotated[float, Meta(ge=0.0, le=1e6)] = 0.2
    popularity_half_life_days: Annotated[float, Meta(gt=0.0, le=36500.0)] = 7.0
