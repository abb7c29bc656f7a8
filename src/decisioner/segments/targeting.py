"""Segments in decisions: placement targeting, rule-based experiences, experiment audiences.

For each placement that names a segment anywhere (:class:`Target`), a decision asks, once the
event is applied (so its counts and attributes are seen):

1. **placement segment** (``segment = "vip"`` on the placement): a person outside gets the
   placement's fallback with reason ``segment`` (recommendation: the most popular in-stock
   items; campaign: the live ``default`` experience; nothing with ``fallback = false``),
   propensity 1, and is not enrolled in the placement's experiment;
2. **rules** (campaign ``rules``): the first rule whose segment holds the person and whose
   experience is live is shown, before the policy and the experiment, propensity 1;
3. **experience eligibility** (``segment`` on a campaign experience): only members may be shown
   it; the rules and the policy choose among the experiences the person may see, and a
   decision showing a gated experience names its segment (``kind="segment"``);
4. **experiment audience** (``audience`` on the experiment): only members are enrolled; others
   get the placement as it is, unassigned (the global holdout still applies to everyone).

A decision served by 1 or 2 is logged as not enrolled, and an outcome joined to it rewards no
policy (:data:`~decisioner.allocation.experiments.SEGMENT`). Every segment that held the person
is named in the decision's reasons (``kind="segment"``); the global holdout is decided before
segments (its people keep the default content).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import numpy as np

from ..errors import ConfigError, SchemaError
from ..schemas import Reason
from .compile import CompiledSegment, Sources, compile_segment

if TYPE_CHECKING:
    from ..config import EngineConfig
    from ..placements import Placement, Placements
    from ..scoring import AffinityScorer

__all__ = ["Check", "Target", "SegmentRuntime"]

Chosen = list[tuple[int, float, float]]
_NONE: Final[Chosen] = []


@dataclass
class Check:
    """A decision's segment outcome: whether to enrol, what is served (None: the policy
    decides) with its candidates, and the reasons to add."""

    enrol: bool
    chosen: Chosen | None
    n_cand: int
    reasons: list[Reason]
    #: uint8 per experience: 1 where the person may see it (None: no experience is gated)
    allowed: np.ndarray | None = None


@dataclass
class Target:
    """The segments one placement decides with."""

    placement: Placement
    segment: tuple[str, CompiledSegment] | None
    rules: list[tuple[str, CompiledSegment, int]]
    audience: tuple[str, CompiledSegment] | None
    #: gated experiences: (experience, segment name, compiled segment)
    experiences: list[tuple[int, str, CompiledSegment]] = field(default_factory=list)

    def allowed(self, row: int, now: int) -> np.ndarray | None:
        """uint8 per experience: 1 unless its segment does not hold the person (None: no gate)."""
        if not self.experiences:
            return None
        out = np.ones(len(self.placement.contents), dtype=np.uint8)
        for e, _, seg in self.experiences:
            if not seg.test(row, now):
                out[e] = 0
        return out

    def gate_reason(self, experience: int) -> Reason | None:
        """``segment`` reason of a gated experience that was shown (None: not gated)."""
        for e, name, _ in self.experiences:
            if e == experience:
                return Reason(kind="segment", detail=f"{name}: eligible for {self.placement.contents[e]}")
        return None

    def check(self, row: int, now: int, scorer: AffinityScorer) -> Check:
        reasons: list[Reason] = []
        pl = self.placement
        if self.segment is not None:
            name, seg = self.segment
            if not seg.test(row, now):
                return Check(False, self._fallback(now, scorer), 0,
                             [Reason(kind="segment", detail=f"not in {name}: fallback")])
            reasons.append(Reason(kind="segment", detail=name))
        allowed = self.allowed(row, now)
        if self.rules:
            live = pl.eligible_experiences(now)
            if allowed is not None:
                live &= allowed
            for name, seg, exp in self.rules:
                if live[exp] and seg.test(row, now):
                    reasons.append(Reason(kind="segment", detail=f"{name}: {pl.contents[exp]}"))
                    return Check(False, [(exp, 0.0, 1.0)], int(live.sum()), reasons, allowed)
        enrol = True
        if self.audience is not None:
            name, seg = self.audience
            enrol = seg.test(row, now)
            if enrol:
                reasons.append(Reason(kind="segment", detail=name))
        return Check(enrol, None, 0, reasons, allowed)

    def _fallback(self, now: int, scorer: AffinityScorer) -> Chosen:
        pl = self.placement
        if not pl.spec.fallback:
            return _NONE
        if pl.kind == "recommendation":
            idx, sc = scorer.fallback(scorer.catalog.in_stock(), pl.spec.slots)
            return [(int(i), float(s), 1.0) for i, s in zip(idx.tolist(), np.asarray(sc).tolist())]
        if pl.default >= 0 and pl.eligible_experiences(now)[pl.default]:
            return [(pl.default, 0.0, 1.0)]
        return _NONE


class SegmentRuntime:
    """An engine's named segments compiled against its stores, and each placement's targets.

    Raises
    ------
    ConfigError
        If a named segment does not compile against the stores (an unknown attribute, a value
        not in the catalog, a cycle ...).
    """

    def __init__(self, sources: Sources, config: EngineConfig, placements: Placements) -> None:
        self.sources = sources
        self.named: dict[str, CompiledSegment] = {}
        for name, expr in config.segments.items():
            try:
                self.named[name] = compile_segment(expr, sources)
            except SchemaError as exc:
                raise ConfigError(f"{exc} `segments.{name}`") from None
        audience = {e.placement: e.audience for e in config.experiments if e.audience is not None}
        self.targets: dict[int, Target] = {}
        for spec in config.placements:
            pl = placements.get(spec.name)
            aud = audience.get(spec.name)
            gated = [(e_i, x.segment) for e_i, x in enumerate(spec.experiences) if x.segment is not None]
            if spec.segment is None and not spec.rules and aud is None and not gated:
                continue
            self.targets[pl.index] = Target(
                pl,
                (spec.segment, self.named[spec.segment]) if spec.segment is not None else None,
                [(r.segment, self.named[r.segment], pl.contents.index(r.experience)) for r in spec.rules],
                (aud, self.named[aud]) if aud is not None else None,
                [(e_i, name, self.named[name]) for e_i, name in gated],
            )

    def target(self, placement: int) -> Target | None:
        """The segments placement ``placement`` (index) decides with (None: no segment)."""
        return self.targets.get(placement)

    def compile(self, expr: str) -> CompiledSegment:
        """Compile an ad-hoc segment (a name of ``[segments]`` gives its compiled program)."""
        seg = self.named.get(expr) if isinstance(expr, str) else None
        return seg if seg is not None else compile_segment(expr, self.sources)
