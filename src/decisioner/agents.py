"""What a CRM's agents (service consoles, AI agents) see and send back.

* :func:`agent_context`: one person's context for an agent on a channel (default ``phone``):
  top interests with their share and trend, the recent journey across channels, attributes,
  named segments, engagement tier, a consent summary and, from an agent placement, next-best
  actions with their decision id, propensities and reasons. Keyed by the person's pseudonymous
  id (the stable person number; identifiers never leave the engine). **Only what consent allows**:
  without personalization consent on the agent's channel the context holds the consent summary
  and non-personalised actions, nothing personal.
* :func:`feedback`: an agent's reaction to an action (``accepted``, ``rejected``,
  ``converted``) becomes an outcome joined by decision id (rewarding the policy) and a behaviour
  event of the person (updating the profile, in the journey), so the next decision reflects it.
* :func:`explain`: a past decision as the decision log holds it.

Interest **trend** compares the person's touches: ``rising`` when an item with that facet value
was touched in the last ``TREND_DAYS`` days, ``fading`` when the interest's newest touch held is
older than its half-life (or none is held), else ``steady``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal

import msgspec

from . import arguments
from .config import DAY_MS
from .consent import CHANNELS, PURPOSES
from .consent.store import CHANNEL, PURPOSE, cell
from .engagement import NO_TIER
from .errors import SchemaError, UnknownDecisionError
from .schemas import EVENT_TYPES, Reason

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["AgentContext", "Interest", "Touchpoint", "Action", "agent_context", "feedback", "explain", "REACTIONS"]

TREND_DAYS: Final = 7
#: an agent's reactions to an action: the outcome each joins as (None: no reward)
REACTIONS: Final[dict[str, str | None]] = {"accepted": "click", "converted": "conversion", "rejected": None}


Trend = Literal["rising", "steady", "fading"]


class Interest(msgspec.Struct, frozen=True):
    facet: str
    value: str
    share: float  # of the person's decayed interest, now
    trend: Trend


class Touchpoint(msgspec.Struct, frozen=True):
    time: int
    event: str
    channel: str
    item: str | None = None


class Action(msgspec.Struct, frozen=True):
    content: str
    score: float
    propensity: float


class NextBestActions(msgspec.Struct, frozen=True):
    decision_id: str
    placement: str
    actions: list[Action]
    reasons: list[Reason]
    personalized: bool


class AgentContext(msgspec.Struct, frozen=True, kw_only=True):
    """A person's context for an agent (JSON: ``msgspec.to_builtins``, or :meth:`to_dict`;
    compact text: :meth:`to_text`)."""

    person: int  # the stable pseudonymous person id (-1: nobody known)
    known: bool
    channel: str
    as_of: int
    personalized: bool  # personalization consent on the channel: the personal parts are filled
    consent: dict[str, list[str]]  # purpose -> channels allowed
    interests: list[Interest] = []
    journey: list[Touchpoint] = []
    attributes: dict[str, Any] = {}
    segments: list[str] = []
    tier: str | None = None
    next_best_actions: NextBestActions | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        return out

    def to_text(self) -> str:
        """A compact plain-text form for an AI agent's context window."""
        lines = [f"person {self.person} ({'known' if self.known else 'unknown'}) on {self.channel}"]
        if not self.personalized:
            lines.append("no personalization consent on this channel: no personal context")
        if self.tier is not None:
            lines.append(f"tier: {self.tier}")
        if self.interests:
            lines.append("interests: " + "; ".join(
                f"{i.facet}={i.value} {i.share:.0%} {i.trend}" for i in self.interests))
        if self.segments:
            lines.append("segments: " + ", ".join(self.segments))
        if self.attributes:
            lines.append("attributes: " + ", ".join(f"{k}={v}" for k, v in self.attributes.items()))
        for t in self.journey[:5]:
            lines.append(f"- {t.time} {t.event} on {t.channel}" + (f" {t.item}" if t.item else ""))
        allowed = [f"{p}: {','.join(c)}" for p, c in self.consent.items() if c]
        lines.append("consent: " + ("; ".join(allowed) if allowed else "none"))
        nba = self.next_best_actions
        if nba is not None:
            lines.append(f"next best actions (decision {nba.decision_id}):")
            for a in nba.actions:
                lines.append(f"- {a.content} (score {a.score:.3g}, propensity {a.propensity:.3g})")
            why = "; ".join(f"{r.kind}: {r.detail}" for r in nba.reasons if r.detail)
            if why:
                lines.append(f"  because {why}")
        return "\n".join(lines)


def _channel(channel: Any) -> int:
    if not isinstance(channel, str) or channel not in CHANNEL:
        raise SchemaError(f"Expected an agent channel in {list(CHANNELS)}, got {channel!r:.60} - at `channel`")
    return CHANNEL[channel]


def agent_context(
    engine: Engine, ids: dict[str, str], *, now: int, channel: str = "phone", placement: str | None = None,
    top: int = 10,
) -> AgentContext:
    """The context of the person ``ids`` resolves to, for an agent on ``channel`` at ``now``;
    with ``placement``, next-best actions decided there for this person (a decision like any
    other: logged, with a decision id for feedback; the request counts as a ``service_call`` on
    the channel).

    Raises
    ------
    SchemaError, UnknownPlacementError
        Malformed arguments or an unknown placement; nothing changes then.
    """
    now = arguments.epoch_ms(now, "now")
    ch = _channel(channel)
    if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= 100:
        raise SchemaError(f"Expected `top` to be an int in [0, 100], got {top!r:.60} - at `top`")
    if placement is not None:
        engine.placement(placement)  # validate before anything moves
    row = engine.profile_row(ids)  # validates ids; -1 when nobody is known
    nba = None
    if placement is not None:
        d = engine.decide({"type": "service_call", "time": now, "ids": dict(ids), "channel": channel},
                          placement=placement)
        nba = NextBestActions(
            d.decision_id, d.placement, [Action(s.content, s.score, s.propensity) for s in d.slots], d.reasons,
            d.personalized,
        )
        row = d.profile
    with engine.journal.lock.read():
        return _context(engine, row, now, ch, channel, top, nba)


def _context(
    engine: Engine, row: int, now: int, ch: int, channel: str, top: int, nba: NextBestActions | None
) -> AgentContext:
    person = engine.people.person_of(row) if row >= 0 else -1
    grid = engine.consent.grid_of(row)
    consent = {p: [c for j, c in enumerate(CHANNELS) if grid >> cell(i, j) & 1] for i, p in enumerate(PURPOSES)}
    personal = bool(grid >> cell(PURPOSE["personalization"], ch) & 1)
    prof = engine.profiles
    held = 0 <= row < prof.n_rows
    base = AgentContext(person=person, known=row >= 0, channel=channel, as_of=now, personalized=personal,
                        consent=consent, next_best_actions=nba)
    if not (personal and held):
        return base
    cat = engine.catalog
    fids, scores = prof.read_copy(row, now, engine.half_lives_)
    total = float(scores.sum()) or 1.0
    touched = _touched(engine, row)
    interests = []
    for f, s in list(zip(fids.tolist(), scores.tolist()))[:top]:
        facet, _, value = cat.fv_names[f].partition("=")
        last = touched.get(f)
        hl = float(engine.half_lives_[f])
        trend: Trend = ("rising" if last is not None and now - last <= TREND_DAYS * DAY_MS
                        else "fading" if last is None or now - last > hl else "steady")
        interests.append(Interest(facet, value, round(s / total, 6), trend))
    journey = [
        Touchpoint(t, EVENT_TYPES[k], CHANNELS[c], cat.ids[i] if i >= 0 else None)
        for t, k, c, i in prof.journey(row)
    ]
    attrs = {name: v for name, (v, _, _) in engine.attributes_.get(row).items()} if row < engine.attributes_.n_rows \
        else {}
    segments = [name for name, seg in engine.segments_.named.items() if _member(seg, row, now)]
    tier = None
    eng = engine.engagement_
    if eng.active and row < eng.n_rows:
        code = eng.tier_at(row, now)
        tier = None if code == NO_TIER else eng.names[code]
    return msgspec.structs.replace(base, interests=interests, journey=journey, attributes=attrs, segments=segments,
                                   tier=tier)


def _member(seg: Any, row: int, now: int) -> bool:
    try:
        return bool(seg.test(row, now))
    except IndexError:  # a store not grown to a row loaded in bulk: no data, no membership
        return False


def _touched(engine: Engine, row: int) -> dict[int, int]:
    """Facet value -> the newest time the person touched an item with it (recent items and
    journey)."""
    out: dict[int, int] = {}
    cat = engine.catalog
    pairs = engine.profiles.recent(row) + [(i, t) for t, _, _, i in engine.profiles.journey(row) if i >= 0]
    for item, t in pairs:
        lo, hi = int(cat.indptr[item]), int(cat.indptr[item + 1])
        for f in cat.indices[lo:hi].tolist():
            if t > out.get(f, 0):
                out[f] = t
    return out


def feedback(
    engine: Engine, decision_id: str, *, ids: dict[str, str], content: str, reaction: str, time: int,
    value: float | None = None, channel: str = "phone",
) -> dict[str, Any]:
    """An agent's ``reaction`` to ``content`` of decision ``decision_id`` for the person
    ``ids``: ``accepted`` joins a click, ``converted`` a conversion (``value``), ``rejected``
    no reward (the exposure already counted); each is also a behaviour event of the person on
    ``channel`` (a click / purchase of a catalog item, else a ``service_call`` with the reaction
    as its reason), so interests, the journey and the policy move before the next decision.
    Everything is checked before anything moves.

    Raises
    ------
    SchemaError, UnknownDecisionError
        A malformed argument, a content the decision did not show, an unknown decision.
    """
    if not isinstance(reaction, str) or reaction not in REACTIONS:
        raise SchemaError(f"Expected `reaction` in {list(REACTIONS)}, got {reaction!r:.60} - at `reaction`")
    _channel(channel)
    time = arguments.epoch_ms(time, "time")
    if not isinstance(decision_id, str) or engine.pending_.get(decision_id) is None:
        raise UnknownDecisionError(
            f"Expected the id of a pending decision, got {decision_id!r:.80} - at `decision_id`"
        )
    kind = REACTIONS[reaction]
    item = content if isinstance(content, str) and content in engine.catalog.index else None
    if item is not None and reaction != "rejected":
        etype = "purchase" if reaction == "converted" else "click"
        event: dict[str, Any] = {"type": etype, "time": time, "ids": dict(ids), "channel": channel, "item": item}
        if reaction == "converted" and value is not None:
            event["value"] = value
    else:
        event = {"type": "service_call", "time": time, "ids": dict(ids), "channel": channel,
                 "reason": f"{reaction}:{content}"[:64]}
    outcome = None
    if kind is not None:
        outcome = {"decision_id": decision_id, "kind": kind, "time": time, "content": content}
        if value is not None:
            outcome["value"] = value
    return engine.apply_feedback(outcome, event)


def explain(engine: Engine, decision_id: str) -> dict[str, Any]:
    """A past decision as logged: placement, time, person, each slot's content, score and
    propensity, candidates, experiment variant, rewards so far (while it is pending: within
    its attribution window and the decision log's window).

    Raises
    ------
    UnknownDecisionError
        An unknown decision, past its window, or one whose log rows left memory.
    """
    with engine.journal.lock.read():
        entry = engine.pending_.get(decision_id) if isinstance(decision_id, str) else None
        if entry is None:
            raise UnknownDecisionError(
                f"Expected the id of a pending decision, got {decision_id!r:.80} - at `decision_id`"
            )
        pl = engine.placements_.by_index(entry.placement)
        out: dict[str, Any] = {"decision_id": decision_id, "placement": pl.spec.name, "time": entry.time,
                               "policy": pl.policy_name}
        if entry.handle < 0:  # no analytics consent: no log rows, only what joining a reward needs
            out["slots"] = [{"content": pl.contents[c]} for c in entry.contents]
            out["logged"] = False
            return out
        log = engine.decision_log
        cols = {n: log.rows(n, entry.handle, entry.n_slots) for n in
                ("content", "score", "propensity", "reward", "person", "candidates", "variant")}
        out.update({
            "person": int(cols["person"][0]) if entry.n_slots else -1,
            "candidates": int(cols["candidates"][0]) if entry.n_slots else 0,
            "variant": int(cols["variant"][0]) if entry.n_slots else -1,
            "slots": [
                {"content": pl.contents[int(c)], "score": float(s), "propensity": float(p), "reward": float(r)}
                for c, s, p, r in zip(cols["content"], cols["score"], cols["propensity"], cols["reward"])
            ],
            "logged": True,
        })
        return out
