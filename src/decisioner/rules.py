"""Placement rules compiled to arrays: a static eligibility mask and a boost vector per placement.

Dynamic rules (stock, already purchased) are applied per request by the engine; everything that
depends only on the catalog and the placement spec is computed once here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .catalog import Catalog
from .config import PlacementSpec
from .errors import ConfigError

__all__ = ["PlacementRules", "compile_rules"]


@dataclass(frozen=True)
class PlacementRules:
    """``mask`` uint8[n_items] (1 = passes the static filters) and ``boost`` float64[n_items]."""

    mask: np.ndarray
    boost: np.ndarray
    reasons: tuple[str, ...]


def _facet_check(catalog: Catalog, facet: str, where: str) -> None:
    if facet not in catalog.facet_names:
        raise ConfigError(
            f"expected a catalog facet in {catalog.facet_names!r}, got {facet!r} - at `{where}`"
        )


def compile_rules(spec: PlacementSpec, catalog: Catalog) -> PlacementRules:
    """Compile a recommendation placement's filters and boosts over ``catalog``.

    Raises
    ------
    ConfigError
        If a rule names a facet the catalog does not have.
    """
    n = catalog.n_items
    mask = np.ones(n, dtype=bool)
    reasons: list[str] = []
    f = spec.filters
    at = f"placements.{spec.name}.filters"
    for facet, values in f.include.items():
        _facet_check(catalog, facet, f"{at}.include")
        mask &= catalog.facet_values_mask(facet, values)
        reasons.append(f"include {facet} in {values}")
    for facet, values in f.exclude.items():
        _facet_check(catalog, facet, f"{at}.exclude")
        mask &= ~catalog.facet_values_mask(facet, values)
        reasons.append(f"exclude {facet} in {values}")
    if f.price_min is not None:
        mask &= ~(catalog.price < f.price_min)  # items without a price stay eligible
        reasons.append(f"price >= {f.price_min:g}")
    if f.price_max is not None:
        mask &= ~(catalog.price > f.price_max)
        reasons.append(f"price <= {f.price_max:g}")
    boost = np.zeros(n, dtype=np.float64)
    for j, b in enumerate(spec.boosts):
        _facet_check(catalog, b.facet, f"placements.{spec.name}.boosts[{j}]")
        boost[catalog.facet_values_mask(b.facet, [b.value])] += b.weight
        reasons.append(f"boost {b.facet}={b.value} {b.weight:+g}")
    return PlacementRules(mask.astype(np.uint8), boost, tuple(reasons))
