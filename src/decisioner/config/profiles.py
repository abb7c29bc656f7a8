"""Profile spec: affinity slots, half-lives, event-type weights, consent default, and the
bound on live profiles."""

from __future__ import annotations

from typing import Annotated, Final

from msgspec import Meta, Struct

from ..schemas import EVENT_TYPES
from ._spec import SPEC, check

__all__ = ["ProfileSpec", "DEFAULT_EVENT_WEIGHTS"]


class ProfileSpec(Struct, **SPEC):
    """Decayed affinity: slots per profile, half-lives per facet, weights per event type."""

    slots: Annotated[int, Meta(ge=1, le=256)] = 24
    purchased_slots: Annotated[int, Meta(ge=0, le=256)] = 8
    #: recently touched items remembered per profile with their latest event time (recency
    #: features of the learned ranker); 0: none
    recent_slots: Annotated[int, Meta(ge=0, le=256)] = 8
    #: touchpoints remembered per profile (time, event type, consent channel, item), for an
    #: agent's view of the recent journey; 0 keeps none
    journey_slots: Annotated[int, Meta(ge=0, le=256)] = 8
    half_life_days: Annotated[float, Meta(gt=0.0, le=36500.0)] = 14.0
    facet_half_life_days: dict[str, Annotated[float, Meta(gt=0.0, le=36500.0)]] = {}
    event_weights: dict[str, Annotated[float, Meta(ge=0.0, le=1000.0)]] = {}
    default_consent: bool = True
    #: most live profiles held (0: no bound). When a new profile would pass it, the profiles
    #: idle longest (oldest last event) are evicted with their identifiers and evidence; an
    #: evicted person who comes back starts a new profile. Erasure tombstones are kept.
    max_profiles: Annotated[int, Meta(ge=0, le=1_000_000_000)] = 5_000_000
    #: share of ``max_profiles`` evicted at once when full: one selection pass pays for the
    #: batch; the pause grows with it (about 5 ms per 1,000 profiles at 1M, see the README)
    evict_fraction: Annotated[float, Meta(gt=0.0, le=0.5)] = 0.001
    #: retention: ``Engine.expire(now)`` erases profiles with no event for longer than this
    #: (their identifiers, evidence and every record; no tombstone, so they may come back as
    #: new people); 0: no idle limit
    idle_retention_days: Annotated[float, Meta(ge=0.0, le=36500.0)] = 0.0

    def __post_init__(self) -> None:
        for name in self.event_weights:
            check(
                name in EVENT_TYPES,
                f"expected an event type in {list(EVENT_TYPES)}, got {name!r} in "
                "`event_weights`",
            )

    def weight_of(self, event_type: str) -> float:
        return self.event_weights.get(event_type, DEFAULT_EVENT_WEIGHTS[event_type])


#: Default weight of each event type in affinity updates (0: no profiling signal).
DEFAULT_EVENT_WEIGHTS: Final[dict[str, float]] = {
    "view": 1.0,
    "click": 2.0,
    "ad_click": 1.5,
    "email_open": 0.0,
    "email_click": 1.5,
    "add_to_cart": 4.0,
    "purchase": 8.0,
    "return": -4.0,
    "service_call": 0.0,
    "coupon_redeem": 2.0,
    "download": 1.0,
    "identify": 0.0,
    "consent": 0.0,
    "opinion": 0.0,
}
