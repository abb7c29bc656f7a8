"""The spec of a synthetic world (sizes, seed, rates) and the constants its parts share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from ...errors import ConfigError
from ...schemas import MAX_TIME_MS, MIN_TIME_MS

__all__ = ["PRICE_BANDS", "WorldSpec"]

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
Bool = npt.NDArray[np.bool_]

#: Price-band edges shared by the response model's price facet and the engine config.
PRICE_BANDS: Final[tuple[float, ...]] = (25.0, 50.0, 100.0, 250.0)

DAY_MS: Final = 86_400_000
HOUR_MS: Final = 3_600_000


@dataclass(frozen=True)
class WorldSpec:
    """Size, seed and rates of a synthetic world.

    Parameters
    ----------
    n_people
        Number of people.
    n_items
        Number of catalog items.
    seed
        Seed of every random draw: equal specs give byte-identical worlds.
    days
        Length of the simulated period.
    n_categories, n_brands, n_colours, n_tags
        Vocabulary sizes of the item facets.
    shared_device_rate
        Fraction of people who share a household tablet cookie with another person (both
        belong to a sharing pair, so about ``rate * n_people / 2`` tablets are shared).
    placeholder_rate
        Fraction of people whose email is a placeholder such as ``"test@test.com"`` or
        ``"null"`` (shared junk values that must not merge identities).
    start_ms
        Epoch milliseconds of the first day.
    visit_shape
        ``None`` (default): every person's sessions are ``1 + Poisson(3)``, at one rate for all,
        so how much a person visited in one part of the period says little about the rest.
        A number ``k``: each person's rate is ``3 Gamma(k, 1 / k)`` (mean 3, variance ``9 / k``),
        so sessions are negative binomial, Ehrenberg's NBD model of repeat visits: some people
        are regulars, most drop by. It gives a world whose pre-period predicts the period after
        it (what CUPED needs; :mod:`decisioner.evaluation.adjust`).

    Raises
    ------
    ConfigError
        If a parameter is out of range.
    """

    n_people: int = 20_000
    n_items: int = 5_000
    seed: int = 0
    days: int = 28
    n_categories: int = 24
    n_brands: int = 150
    n_colours: int = 12
    n_tags: int = 60
    shared_device_rate: float = 0.03
    placeholder_rate: float = 0.0
    start_ms: int = 1_700_000_000_000
    visit_shape: float | None = None

    def __post_init__(self) -> None:
        ints = (
            ("n_people", 1, 50_000_000), ("n_items", 1, 10_000_000), ("seed", 0, 2**63 - 1),
            ("days", 1, 3650), ("n_categories", 1, 10_000), ("n_brands", 1, 100_000),
            ("n_colours", 1, 10_000), ("n_tags", 1, 100_000),
            ("start_ms", MIN_TIME_MS, MAX_TIME_MS),
        )
        for name, lo, hi in ints:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise ConfigError(f"`{name}` must be an int in [{lo}, {hi}], got {v!r} - at `WorldSpec`")
        rates = (("shared_device_rate", 0.2), ("placeholder_rate", 0.5))
        for name, hi_r in rates:
            r = getattr(self, name)
            if not isinstance(r, (int, float)) or isinstance(r, bool) or not 0.0 <= r <= hi_r:
                raise ConfigError(f"`{name}` must be in [0, {hi_r}], got {r!r} - at `WorldSpec`")
        k = self.visit_shape
        if k is not None and (not isinstance(k, (int, float)) or isinstance(k, bool) or not 0.0 < k <= 100.0):
            raise ConfigError(f"`visit_shape` must be None or in (0, 100], got {k!r} - at `WorldSpec`")
        if self.n_brands < self.n_categories:  # every category needs a brand that sells in it
            raise ConfigError(
                f"expected `n_brands` >= `n_categories` ({self.n_categories}), got {self.n_brands} - at `WorldSpec`"
            )
        end = self.start_ms + (self.days + 1) * DAY_MS
        if end > MAX_TIME_MS:
            raise ConfigError(
                f"expected the world to end before {MAX_TIME_MS} ms, got {end} "
                "(`start_ms` + `days`) - at `WorldSpec`"
            )
