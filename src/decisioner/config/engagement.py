"""Engagement spec (``[engagement]``): tiers from recency, frequency and value, and the
regional pulse spec (``[pulse]``): live opinion aggregates by region x topic.

Engagement is off unless ``[engagement]`` sets ``enabled = true`` (it adds 33 bytes to every
profile). Its inputs, per profile:

* **recency**: days since the person's last counted event, at the time asked about;
* **frequency**: a decayed count of counted events (each adds 1, halving every
  ``frequency_half_life_days``): about the number of events in the last
  ``frequency_half_life_days / ln 2`` days, without keeping them;
* **value**: a decayed sum of purchase values (returns subtract theirs), halving every
  ``value_half_life_days``.

``tiers`` are tested in order, the first that matches wins: a tier matches when recency is at
most ``max_recency_days``, frequency at least ``min_frequency`` and value at least
``min_value`` (a bound not given does not constrain). The last tier is what matches no other
and takes no bound.

>>> spec = EngagementSpec(enabled=True)
>>> [t.name for t in spec.tiers], spec.tiers[0].max_recency_days
(['engaged', 'indifferent', 'disengaged'], 7.0)
>>> EngagementSpec(tiers=(TierSpec(name="a", min_frequency=2.0), TierSpec(name="b", min_value=1.0)))
Traceback (most recent call last):
...
decisioner.errors.ConfigError: expected no bound on the last tier (it takes every profile no other tier matches), \
got 'b' with bounds for `engagement.tiers`
"""

from __future__ import annotations

import math
from typing import Annotated, Final

from msgspec import Meta, Struct

from ..schemas import EVENT_TYPES
from ._spec import SPEC, check
from .attributes import ATTRIBUTE_NAME

__all__ = ["TierSpec", "EngagementSpec", "PulseSpec", "DEFAULT_TIERS"]

Days = Annotated[float, Meta(gt=0.0, le=36500.0)]


class TierSpec(Struct, **SPEC):
    """One engagement tier: a name and the bounds a profile must meet (see the module docstring)."""

    name: str
    max_recency_days: Annotated[float, Meta(ge=0.0, le=36500.0)] | None = None
    min_frequency: Annotated[float, Meta(ge=0.0, le=1e9)] | None = None
    min_value: Annotated[float, Meta(ge=-1e12, le=1e12)] | None = None

    def __post_init__(self) -> None:
        check(
            ATTRIBUTE_NAME.fullmatch(self.name) is not None,
            f"expected a tier name of a letter then up to 63 letters, digits or underscores, got {self.name!r} "
            "for `engagement.tiers`",
        )
        for field in ("max_recency_days", "min_frequency", "min_value"):
            v = getattr(self, field)
            check(v is None or math.isfinite(v), f"expected a finite `{field}`, got {v!r} for `engagement.tiers`")

    @property
    def bounded(self) -> bool:
        return self.max_recency_days is not None or self.min_frequency is not None or self.min_value is not None


#: engaged: seen in the last week and about three events or more in the last month (decayed
#: count >= 3); indifferent: seen in the last three weeks; disengaged: the rest
DEFAULT_TIERS: Final = (
    TierSpec(name="engaged", max_recency_days=7.0, min_frequency=3.0),
    TierSpec(name="indifferent", max_recency_days=21.0),
    TierSpec(name="disengaged"),
)


class EngagementSpec(Struct, **SPEC):
    """Engagement tiers (see the module docstring)."""

    enabled: bool = False
    tiers: tuple[TierSpec, ...] = DEFAULT_TIERS
    frequency_half_life_days: Days = 21.0
    value_half_life_days: Days = 90.0
    #: event types that do not count as engagement (recency and frequency)
    exclude_types: tuple[str, ...] = ("consent",)

    def __post_init__(self) -> None:
        n = len(self.tiers)
        check(2 <= n <= 16, f"expected 2 to 16 tiers, got {n} for `engagement.tiers`")
        names = [t.name for t in self.tiers]
        check(len(set(names)) == n, f"expected unique tier names, got {names!r} for `engagement.tiers`")
        last = self.tiers[-1]
        check(
            not last.bounded,
            "expected no bound on the last tier (it takes every profile no other tier matches), "
            f"got {last.name!r} with bounds for `engagement.tiers`",
        )
        for t in self.exclude_types:
            check(t in EVENT_TYPES, f"expected an event type in {list(EVENT_TYPES)}, got {t!r} in `exclude_types`")

    @property
    def names(self) -> list[str]:
        """Tier names in code order (code ``i`` is ``names[i]``)."""
        return [t.name for t in self.tiers]


class PulseSpec(Struct, **SPEC):
    """Live opinion aggregates by region x topic (``opinion`` events; see :mod:`decisioner.pulse`).

    ``region_attribute`` names the declared ``category`` attribute that holds a person's region
    (a person without one counts in the region ``""``); ``max_topics`` bounds the topic
    vocabulary (opinions on further topics are dropped and counted); cells with fewer than
    ``min_count`` opinions are reported without a mean or interval; ``confidence`` is the level of
    the interval of each mean.
    """

    enabled: bool = False
    region_attribute: str = "region"
    max_topics: Annotated[int, Meta(ge=1, le=10_000)] = 256
    min_count: Annotated[int, Meta(ge=1, le=1_000_000)] = 5
    confidence: Annotated[float, Meta(gt=0.5, lt=1.0)] = 0.95
