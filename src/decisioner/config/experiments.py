"""Experiment specs: variants, randomised experiments on one placement (salt, namespace,
segment, traffic, control), the global holdout, and the checks of a set of experiments against
the configured placements."""

from __future__ import annotations

import math
from typing import Annotated

from msgspec import Meta, Struct

from ._spec import SPEC, check
from .placements import PlacementSpec
from .policies import PolicySpec, check_policy

__all__ = ["VariantSpec", "ExperimentSpec", "HoldoutSpec", "check_experiments"]


class VariantSpec(Struct, **SPEC):
    """One arm of an experiment: a traffic ``weight`` and, optionally, its own policy for the
    placement (``None``: the placement's policy)."""

    name: Annotated[str, Meta(min_length=1, max_length=64)]
    weight: float = 1.0
    policy: PolicySpec | None = None

    def __post_init__(self) -> None:
        check(
            math.isfinite(self.weight) and self.weight > 0.0,
            f"`weight` must be > 0, got {self.weight!r} (variant {self.name!r})",
        )


class ExperimentSpec(Struct, **SPEC):
    """A randomised experiment on one placement.

    Units (profiles) are bucketed by a keyed xxh3 hash of ``(salt, unit)``
    (:mod:`decisioner.allocation.experiments`). Experiments sharing a ``namespace`` are mutually
    exclusive when their ``segment`` ranges (shares of the namespace's hash space) do not
    overlap. ``traffic`` is the share of the segment enrolled: raising it (a ramp) only adds
    units, and a unit keeps its first assignment for the experiment's lifetime, so changing
    ``traffic`` or the variants' weights never reshuffles people already assigned.
    """

    name: Annotated[str, Meta(min_length=1, max_length=64)]
    placement: Annotated[str, Meta(min_length=1, max_length=128)]
    variants: list[VariantSpec]
    salt: str | None = None
    namespace: str | None = None
    segment: tuple[float, float] = (0.0, 1.0)
    traffic: float = 1.0
    control: str | None = None
    #: a named segment (``[segments]``): only its members are enrolled (others get the placement
    #: as it is, unassigned); ``segment`` above is the share of the hash space, not this
    audience: str | None = None

    def __post_init__(self) -> None:
        at = f" (experiment {self.name!r})"
        names = [v.name for v in self.variants]
        check(len(names) >= 1, f"expected at least one variant, got 0{at}")
        check(len(names) <= 64, f"expected at most 64 variants, got {len(names)}{at}")
        check(len(set(names)) == len(names), f"expected unique variant names, got {names!r}{at}")
        check("holdout" not in names, f"expected no variant named 'holdout' (reserved){at}")
        lo, hi = self.segment
        check(
            0.0 <= lo < hi <= 1.0, f"expected `segment` with 0 <= start < end <= 1, got {list(self.segment)!r}{at}"
        )
        check(0.0 <= self.traffic <= 1.0, f"`traffic` must be in [0, 1], got {self.traffic!r}{at}")
        check(
            self.control is None or self.control in names,
            f"expected `control` to be one of {names!r}, got {self.control!r}{at}",
        )

    @property
    def salt_(self) -> str:
        return self.salt if self.salt is not None else self.name

    @property
    def namespace_(self) -> str:
        return self.namespace if self.namespace is not None else self.name

    @property
    def control_(self) -> str:
        return self.control if self.control is not None else self.variants[0].name


class HoldoutSpec(Struct, **SPEC):
    """A global holdout: a ``fraction`` of all units, bucketed by ``salt``, gets every
    placement's default content (campaign: its ``default`` or first experience; recommendation:
    the most popular items) and no experiment."""

    fraction: float = 0.05
    salt: str = "global-holdout"

    def __post_init__(self) -> None:
        check(0.0 <= self.fraction < 1.0, f"`fraction` must be in [0, 1), got {self.fraction!r} - at `holdout`")


def check_experiments(experiments: list[ExperimentSpec], placements: dict[str, PlacementSpec]) -> None:
    """Unique names, a configured placement each (at most one experiment per placement), a
    policy that fits the placement in every variant, and disjoint segments per namespace."""
    names = [e.name for e in experiments]
    check(len(set(names)) == len(names), f"expected unique experiment names, got {names!r} for `experiments`")
    used: dict[str, str] = {}
    spans: dict[str, list[tuple[float, float, str]]] = {}
    for e in experiments:
        at = f" (experiment {e.name!r})"
        check(
            e.placement in placements,
            f"expected a configured placement in {sorted(placements)!r}, got {e.placement!r}{at}",
        )
        check(
            e.placement not in used,
            f"expected at most one experiment per placement, got {used.get(e.placement)!r} and "
            f"{e.name!r} on {e.placement!r}",
        )
        used[e.placement] = e.name
        kind = placements[e.placement].kind
        for v in e.variants:
            check_policy(kind, v.policy, f" (experiment {e.name!r}, variant {v.name!r})")
        for lo, hi, other in spans.get(e.namespace_, []):
            check(
                e.segment[1] <= lo or hi <= e.segment[0],
                f"expected disjoint segments in namespace {e.namespace_!r}, got "
                f"{list(e.segment)!r} ({e.name!r}) overlapping {[lo, hi]!r} ({other!r})",
            )
        spans.setdefault(e.namespace_, []).append((e.segment[0], e.segment[1], e.name))
