"""Placement specs: a recommendation placement (slots, filters, boosts) or a campaign
placement (experiences, default), each with its policy and fallback."""

from __future__ import annotations

import math
from typing import Annotated, Final, Literal

from msgspec import Meta, Struct

from ..consent import CHANNELS, PURPOSES
from ._spec import SPEC, check
from .policies import EpsilonGreedySpec, PolicySpec, RandomSpec, ThompsonSpec, check_policy

__all__ = ["AFFINITY_FEATURE", "Boost", "FilterSpec", "ExperienceSpec", "PlacementSpec", "RankerSpec", "SegmentRule"]

#: prefix of a contextual policy's feature that reads the person's affinity of an experience
AFFINITY_FEATURE: Final = "affinity:"


class Boost(Struct, **SPEC):
    """Add ``weight`` to the score of items whose ``facet`` has ``value``."""

    facet: str
    value: str
    weight: Annotated[float, Meta(ge=-1e6, le=1e6)]


class FilterSpec(Struct, **SPEC):
    """Eligibility rules of a recommendation placement."""

    in_stock: bool = True
    exclude_purchased: bool = True
    include: dict[str, list[str]] = {}
    exclude: dict[str, list[str]] = {}
    price_min: float | None = None
    price_max: float | None = None


class ExperienceSpec(Struct, **SPEC):
    """One experience (offer, message, banner, next-best action) of a campaign placement.

    ``facets`` (catalog facet -> value, e.g. ``{"category": "shoes"}``) describe what it is
    about: the person's share of interest in those facet values is the experience's
    *affinity*, which the placement's ``affinity_weight`` adds to the policy's score and which
    contextual policies read as feature ``affinity:<id>``. ``segment`` makes it eligible only
    for members of that named segment (``[segments]``).
    """

    id: Annotated[str, Meta(min_length=1, max_length=256)]
    start: int | None = None
    end: int | None = None
    facets: dict[str, str] = {}
    #: eligibility: only members of this named segment may be shown the experience
    segment: Annotated[str, Meta(min_length=1, max_length=64)] | None = None


class SegmentRule(Struct, **SPEC):
    """A rule-based experience of a campaign: members of the named ``segment`` see ``experience``
    (first matching rule wins, before the policy; propensity 1, reason ``segment``)."""

    segment: Annotated[str, Meta(min_length=1, max_length=64)]
    experience: Annotated[str, Meta(min_length=1, max_length=256)]


class RankerSpec(Struct, **SPEC):
    """A learned re-ranker on a recommendation placement: the affinity scorer retrieves the top
    ``retrieve`` candidates, the compiled model (``decisioner train``'s ``models/NAME``) orders
    them, then the placement's policy explores over the re-ranked list (propensities exact)."""

    #: a model directory (``model.txt`` + ``features.json``), relative to the working directory
    model: Annotated[str, Meta(min_length=1, max_length=4096)]
    retrieve: Annotated[int, Meta(ge=1, le=100_000)] = 100


class PlacementSpec(Struct, **SPEC):
    """A placement: ranks catalog items into ``slots`` (recommendation) or picks one of its
    ``experiences`` (campaign)."""

    name: Annotated[str, Meta(min_length=1, max_length=128)]
    kind: Literal["recommendation", "campaign"]
    slots: Annotated[int, Meta(ge=1, le=100)] = 1
    policy: PolicySpec | None = None
    filters: FilterSpec = FilterSpec()
    boosts: list[Boost] = []
    experiences: list[ExperienceSpec] = []
    default: str | None = None
    #: when nothing is eligible: serve the fallback (popular in-stock items / ``default``) or nothing
    fallback: bool = True
    #: the consent channel the placement shows content on (see :mod:`decisioner.consent`)
    channel: str = "web"
    #: purposes its content serves beyond personalization and analytics (which every placement
    #: checks): ``marketing`` for offers and campaigns, ``ad_profiling`` / ``sale_share`` for ads
    #: and partner content. Without consent to each on ``channel`` it shows nothing.
    purposes: list[str] = []
    #: a named segment (``[segments]``) the placement targets: anyone outside gets its fallback
    #: (popular in-stock items / ``default``) with reason ``segment``
    segment: str | None = None
    #: campaign only: rule-based experiences by segment, first match wins, before the policy
    rules: list[SegmentRule] = []
    #: recommendation only: a learned re-ranker over the affinity top-N (see :class:`RankerSpec`)
    ranker: RankerSpec | None = None
    #: campaign only: ``w`` in the per-arm score ``policy score + w * affinity`` (the person's
    #: share of interest in an experience's ``facets``); 0 leaves the policy as it is
    affinity_weight: Annotated[float, Meta(ge=0.0, le=1e6)] = 0.0

    def __post_init__(self) -> None:
        at = f" (placement {self.name!r})"
        if self.kind == "campaign":
            check(len(self.experiences) >= 1, f"expected at least one experience, got 0{at}")
            check(self.slots == 1, f"expected `slots` = 1 for a campaign, got {self.slots}{at}")
            check(self.ranker is None, f"expected no `ranker` on a campaign (recommendations only){at}")
            ids = [e.id for e in self.experiences]
            check(len(set(ids)) == len(ids), f"expected unique experience ids, got {ids!r}{at}")
            check(
                self.default is None or self.default in ids,
                f"expected `default` to be one of {ids!r}, got {self.default!r}{at}",
            )
            for r in self.rules:
                got = r.experience
                check(got in ids, f"expected a rule's `experience` to be one of {ids!r}, got {got!r}{at}")
            if self.default is not None:
                gated = self.experiences[ids.index(self.default)].segment
                check(gated is None, f"expected the `default` experience without a `segment`, got {gated!r}{at}")
            check(
                math.isfinite(self.affinity_weight),
                f"expected a finite `affinity_weight`, got {self.affinity_weight!r}{at}",
            )
            for f in getattr(self.policy, "features", ()):
                if f.startswith(AFFINITY_FEATURE):
                    got = f[len(AFFINITY_FEATURE):]
                    check(got in ids, f"expected `affinity:` and an experience id in {ids!r}, got {f!r}{at}")
        else:
            check(not self.rules, f"expected no `rules` on a recommendation placement (campaigns only){at}")
            check(not self.experiences, f"expected no experiences on a recommendation placement{at}")
            check(self.default is None, f"expected no `default` on a recommendation placement{at}")
            check(
                self.affinity_weight == 0.0,
                f"expected no `affinity_weight` on a recommendation placement (`scoring.affinity_weight` "
                f"weighs items), got {self.affinity_weight!r}{at}",
            )
            if self.ranker is not None:
                check(
                    not isinstance(self.policy_spec, RandomSpec),
                    f"expected a ranked policy (greedy, epsilon_greedy, softmax) with a `ranker`, got random{at}",
                )
                check(
                    self.ranker.retrieve >= self.slots,
                    f"expected `ranker.retrieve` >= slots ({self.slots}), got {self.ranker.retrieve}{at}",
                )
        check_policy(self.kind, self.policy, at)
        check(self.channel in CHANNELS, f"expected a consent channel in {list(CHANNELS)}, got {self.channel!r}{at}")
        others = [p for p in PURPOSES if p not in ("personalization", "analytics")]
        for p in self.purposes:
            check(p in others, f"expected `purposes` from {others}, got {p!r}{at}")

    @property
    def policy_spec(self) -> PolicySpec:
        if self.policy is not None:
            return self.policy
        return ThompsonSpec() if self.kind == "campaign" else EpsilonGreedySpec()
