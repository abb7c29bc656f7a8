"""Engine: a facade that composes the stages of one decision call.

``decide(event, placement=...)`` runs the pipeline of ARCHITECTURE.md: decode and validate the
event once, resolve the person (identity, people), update the profile, let the placement stage
pick candidates and allocate its slots (experiments first), log the decision and admit the
operation to the journal. ``observe(outcome)`` joins a click or conversion to its decision by
id and rewards the policy. Every input is validated before any state changes: a bad event
raises a ``decisioner`` error and leaves the engine, its log and its snapshots as they were.

The stages own their state (``to_state``/``load_state``); this class only wires them and
admits operations (:mod:`decisioner.journal`). Outcomes are joined by :mod:`decisioner.outcomes`,
privacy operations carried out by :mod:`decisioner.privacy`, snapshots and recovery by
:mod:`decisioner.durability`, reads by :mod:`decisioner.reads`.
"""

from __future__ import annotations

import time as _time
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np

from . import agents, arguments, batch, outbound, privacy, reads
from ._kernels.rng import seed_state
from .activity import ActivityStore
from .allocation.experiments import HOLDOUT, NOT_ENROLLED, SEGMENT, ExperimentRuntime
from .attributes import AttributeStore
from .batch import Ingested
from .catalog import Catalog
from .config import DAY_MS, EngineConfig, load_config
from .consent import PURPOSES
from .consent.store import PURPOSE, ConsentStore, cell
from .decisionlog import DecisionLog
from .durability import Durable
from .engagement import EngagementStore, TierColumn, tier_report
from .eventlog import LogRecovery
from .hashing import resolve_key
from .identity import IdentityGraph
from .journal import (
    AttributesOp,
    DecideOp,
    ExportOp,
    InventoryOp,
    Journal,
    ObserveOp,
    Operation,
    OutboundOp,
    RankerOp,
    Record,
    TrackOp,
)
from .outcomes import Outcomes, Pending, PendingOutcomes
from .people import People
from .placements import ItemInputs, Placement, Placements
from .privacy import PersonStores, PrivacyOp
from .profiles import ProfileStore, half_lives
from .pulse import Pulse, pulse_table
from .ranking.stage import ServedModel, load_served, rankers_of, served_of
from .schemas import Decision, Event, Outcome, Reason, SlotChoice, decode_event, decode_outcome
from .scoring import AffinityScorer
from .segments.audiences import audience, members
from .segments.compile import CategorySource, Sources
from .segments.targeting import SegmentRuntime
from .tracking import Checked, Tracker

__all__ = ["Engine"]

_PERSONALIZATION = PURPOSE["personalization"]
_ANALYTICS = PURPOSE["analytics"]
_NO_ITEMS = np.empty(0, dtype=np.int64)
_NO_SCORES = np.empty(0, dtype=np.float64)


class Engine(Durable):
    """The personalization engine: one per process holds all state.

    Parameters
    ----------
    config
        Engine configuration (identity secret, profile decay, scoring weights, placements).
    catalog
        The item catalog.
    seed
        Public seed of every random draw: equal seeds and equal inputs give equal decisions.
    instance
        Prefix of decision ids, unique per engine instance writing to one outcome stream.
    feedback_weight
        Weight of the placement-level click-through posterior of each item in its score.
    identity
        An identity graph to start from (a snapshot's); by default an empty one.

    Examples
    --------
    >>> from decisioner.config import load_config_dict
    >>> cfg = load_config_dict({"identity": {"hash_key": "ab" * 16},
    ...     "placements": [{"name": "home", "kind": "recommendation", "slots": 2}]})
    >>> cat = Catalog([{"id": f"i{j}", "category": "c%d" % (j % 3)} for j in range(6)])
    >>> eng = Engine(cfg, cat, seed=1)
    >>> d = eng.decide({"type": "view", "time": 1_700_000_000_000, "ids": {"cookie": "k"},
    ...                 "item": "i0"}, placement="home")
    >>> len(d.slots), d.slots[0].propensity > 0, d.person
    (2, True, 0)
    """

    def __init__(
        self, config: EngineConfig, catalog: Catalog, *, seed: int = 0, instance: str = "d",
        feedback_weight: float = 1.0, identity: IdentityGraph | None = None,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.seed = seed
        self.instance = instance
        self.feedback_weight = feedback_weight
        key = resolve_key(config.identity.hash_key, config.identity.hash_key_env)
        self.identity = identity if identity is not None else IdentityGraph(key, spec=config.identity)
        self.profiles = ProfileStore.from_spec(config.profiles)
        self.consent = ConsentStore(config.consent, default_consent=config.profiles.default_consent)
        self.people = People()
        self.attributes_ = AttributeStore(config.attributes)
        self.engagement_ = EngagementStore(config.engagement)
        self.pulse_ = Pulse(config.pulse)
        self.activity_ = ActivityStore(config.activity)
        self.sends_ = outbound.SendHistory(config.outbound)
        self.scorer = AffinityScorer(catalog, config.scoring)
        self.half_lives_ = half_lives(config.profiles, catalog)
        self.placements_ = Placements(config, catalog, seed=seed, feedback_weight=feedback_weight)
        self.experiments_ = ExperimentRuntime(
            key, config.experiments, config.holdout, self.placements_.names, max_exposures=config.decision_log.max_rows
        )
        self.decision_log = DecisionLog.from_spec(config.decision_log)
        self.pending_ = PendingOutcomes(config.limits.max_pending_decisions, window_ms=config.outcomes.window_ms)
        self.outcomes = Outcomes(self.pending_, self.placements_, self.decision_log)
        self.journal = Journal()
        self._inputs = ItemInputs(self.profiles, catalog, self.half_lives_)  # the decide kernel's scratch (writer)
        self.seq_ = 0  # decisions made
        self.stores = PersonStores(
            identity=self.identity, profiles=self.profiles, consent=self.consent, people=self.people,
            decision_log=self.decision_log, experiments=self.experiments_, catalog=catalog, half_lives=self.half_lives_,
            placements=self.placements_, instance=instance, attributes=self.attributes_, engagement=self.engagement_,
            idle_retention_ms=int(config.profiles.idle_retention_days * DAY_MS), activity=self.activity_,
            sends=self.sends_,
        )
        self.tracker = Tracker(config, self.stores, self.scorer, pulse=self.pulse_)
        tiers: dict[str, CategorySource] = {}
        if self.engagement_.active:  # `engagement`, and `tier` unless an attribute has that name
            tiers = {n: TierColumn(self.engagement_) for n in ("engagement", "tier") if n not in config.attributes}
        self.segments_ = SegmentRuntime(
            Sources(self.attributes_, self.activity_, self.consent, self.profiles, catalog, self.half_lives_,
                    dict(config.segments), tiers),
            config, self.placements_,
        )
        self.placements_.attach_rankers(rankers_of(config, self))

    @classmethod
    def from_files(cls, config: str | Path, catalog: str | Path, **kwargs: Any) -> Engine:
        """Load a TOML/JSON config and a JSONL/CSV catalog."""
        cfg = load_config(config)
        return cls(cfg, Catalog.load(catalog, cfg.catalog), **kwargs)

    @classmethod
    def from_world(cls, world: str | Path, **kwargs: Any) -> Engine:
        """An engine over a synthetic world directory (``config.toml`` + ``catalog.jsonl``)."""
        return cls.from_files(Path(world) / "config.toml", Path(world) / "catalog.jsonl", **kwargs)

    # ------------------------------------------------------------------ tracking
    def track(self, event: Any) -> int:
        """Update identity, consent, interests and popularity from one behaviour event.

        Returns the profile row the event resolved to.

        Raises
        ------
        SchemaError, UnknownItemError
            On malformed events or unknown items; nothing is changed then.
        """
        ev = decode_event(event, max_bytes=self.config.limits.max_payload_bytes)
        checked = self.tracker.validate(ev)
        with self.journal.lock:
            return self._track(ev, checked, TrackOp(self._hashed(ev, checked.keys)))

    def _track(self, ev: Event, checked: Checked, op: Operation) -> int:
        return self.journal.run(op, lambda: self.tracker.apply(ev, checked)[0])

    def _hashed(self, ev: Any, keys: np.ndarray) -> Any:
        """The event as logged: identifier values replaced by their keyed hashes."""
        if self.journal.log is None:
            return ev
        return msgspec.structs.replace(ev, ids=self.identity.hashed_ids(ev.ids, keys))

    def track_many(self, events: list[Any]) -> np.ndarray:
        """Track several events in order; returns their profile rows (int32)."""
        return np.array([self.track(e) for e in events], dtype=np.int32)

    def ingest_many(
        self, events: list[Any], *, decide_on: dict[str, str] | None = None,
        errors: Literal["raise", "skip"] = "raise",
    ) -> Ingested:
        """Track (or, for the event types of ``decide_on``, decide) many events in order under one
        hold of the writer lock, with the results one call each gives; ``errors="skip"`` lists bad
        events instead of refusing the batch. See :func:`decisioner.batch.ingest_many`."""
        return batch.ingest_many(self, events, decide_on=decide_on, errors=errors)

    # ------------------------------------------------------------------ deciding
    def placement(self, name: str) -> Placement:
        """The compiled placement ``name`` (:class:`~decisioner.errors.UnknownPlacementError` if none)."""
        return self.placements_.get(name)

    @property
    def placements(self) -> list[str]:
        return self.placements_.names

    def decide(self, event: Any, *, placement: str) -> Decision:
        """Track ``event`` and choose content for ``placement``.

        Returns
        -------
        Decision
            decision id, person id, chosen content per slot with score and propensity, reasons,
            latency.

        Raises
        ------
        UnknownPlacementError, SchemaError, UnknownItemError
            Before any state changes.
        """
        t0 = _time.perf_counter_ns()
        pl = self.placements_.get(placement)
        ev = decode_event(event, max_bytes=self.config.limits.max_payload_bytes)
        checked = self.tracker.validate(ev)
        with self.journal.lock:
            return self._decide(pl, ev, checked, t0, DecideOp(placement, self._hashed(ev, checked.keys)))

    def _decide(self, base: Placement, ev: Event, checked: Checked, t0: int, op: Operation) -> Decision:
        payload = self.journal.encode(op)
        rt = self.experiments_
        unit = f"{int(checked.keys.min()):016x}" if rt.active else ""
        target = self.segments_.target(base.index)
        # the fused kernel applies the interest update, unless segments read the profile first
        pending = base.kind == "recommendation" and target is None
        ch = base.channel
        row, fvs, wts = self.tracker.apply(ev, checked, channel=ch, defer_interest=pending)
        person = self.people.person_of(row)
        seq = self.seq_
        self.seq_ = seq + 1
        state = seed_state(self.seed, seq)
        allowed = int(self.consent.allow_[row])
        personalized = bool(allowed >> cell(_PERSONALIZATION, ch) & 1)
        analytics = allowed >> cell(_ANALYTICS, ch) & 1
        pl, code, pend = base, NOT_ENROLLED, NOT_ENROLLED
        seg = target.check(row, ev.time, self.scorer) if target is not None else None
        if rt.active:
            pl, code = self._allocation(base, row, unit, enrol=seg is None or seg.enrol)
        if seg is not None and seg.chosen is not None and code != HOLDOUT:
            pl, code, pend = base, NOT_ENROLLED, SEGMENT
        affinity = None  # the person's affinity of each experience (campaign, personalized)
        if personalized and pl.kind == "campaign" and pl.uses_affinity:
            affinity = pl.affinities(*self.profiles.read(row, ev.time, self.half_lives_))
        context = pl.context(ev.attrs if personalized else {}, None if affinity is None else affinity[0])
        refused = base.requires & ~allowed
        if refused:
            if fvs.shape[0]:  # the event's interest update, which the kernel would have applied
                self.profiles.update(row, fvs, wts, ev.time, self.half_lives_)
            idx, sc, pr, n_cand = _NO_ITEMS, _NO_SCORES, _NO_SCORES, 0
            names = "/".join(p for i, p in enumerate(PURPOSES) if refused >> cell(i, ch) & 1)
            reasons = [Reason(kind="consent", detail=f"no {names} consent on {base.spec.channel}: no content")]
        elif pl.kind == "recommendation" and pend != SEGMENT:
            (idx, sc, pr), n_cand, reasons = pl.choose_items(
                self._inputs, row, ev.time, personalized, state, fvs, wts, self.scorer, ev
            )
        else:
            if pend == SEGMENT and seg is not None and seg.chosen is not None:
                chosen, n_cand, reasons = seg.chosen, seg.n_cand, []
            else:
                chosen, n_cand, reasons = pl.choose_arm(
                    ev.time, state, context, personalized=personalized,
                    allowed=seg.allowed if seg is not None else None, affinity=affinity, names=self.catalog.fv_names,
                )
                gate = target.gate_reason(chosen[0][0]) if target is not None and chosen else None
                if gate is not None:
                    reasons.append(gate)
            idx = np.array([c for c, _, _ in chosen], dtype=np.int64)
            sc = np.array([x for _, x, _ in chosen], dtype=np.float64)
            pr = np.array([p for _, _, p in chosen], dtype=np.float64)
        if seg is not None and code != HOLDOUT:
            reasons.extend(seg.reasons)
        contents = pl.contents
        slots = [
            SlotChoice(content=contents[c], score=x, propensity=p)
            for c, x, p in zip(idx.tolist(), sc.tolist(), pr.tolist())
        ]
        variant: str | None = None
        if analytics:
            handle = self.decision_log.append(
                seq=seq, time=ev.time, person=person, placement=pl.index, contents=idx, scores=sc, propensities=pr,
                candidates=n_cand, experiment=base.experiment if code != HOLDOUT else -1, variant=code,
            )
            unlogged: tuple[int, ...] = ()
        else:  # no analytics consent: no log row, only what joining a reward needs
            handle, unlogged = -1, tuple(idx.tolist())
        if code != NOT_ENROLLED:
            if analytics:
                rt.exposures.append(seq, ev.time, base.experiment, code, person)
            variant = rt.variant_name(base.experiment, code)
            exp_name = self.config.experiments[base.experiment].name if base.experiment >= 0 else "global"
            reasons.append(Reason(kind="experiment", detail=f"{exp_name}:{variant}"))
        decision_id = f"{self.instance}-{seq}"
        self.pending_.add(
            decision_id,
            Pending(
                pl.index, handle, len(slots), code if pend != SEGMENT else pend, 0.0,
                None if context is None else context.tolist(), ev.time,
                contents=unlogged,
            ),
        )
        self.journal.admit(op, payload)
        return Decision(
            decision_id=decision_id, placement=pl.spec.name, time=ev.time, profile=row, person=person,
            policy=pl.policy_name, policy_version=1, slots=slots, candidates=n_cand,
            personalized=personalized and (
                pl.affinity_weight != 0.0 if pl.kind == "recommendation" else affinity is not None
            ),
            reasons=reasons, latency_us=(_time.perf_counter_ns() - t0) / 1000.0, variant=variant,
        )

    def _allocation(self, base: Placement, row: int, unit: str, *, enrol: bool = True) -> tuple[Placement, int]:
        """The placement (variant or holdout) that decides for ``row`` and its assignment code."""
        return base.assigned(self.experiments_.assign(base.index, row, unit, enrol=enrol))

    # ------------------------------------------------------------------ outcomes
    def observe(self, outcome: Any) -> None:
        """Join a click or conversion to its decision and reward the policy.

        A click rewards the clicked slot (``content``) or, if none is named, the first slot.
        Outcomes are idempotent per (decision, slot, kind): a repeat changes nothing but
        :attr:`duplicate_outcomes_` (see :mod:`decisioner.outcomes`). An outcome must be dated
        within ``outcomes.attribution_window_days`` after its decision.

        Raises
        ------
        SchemaError
            On a malformed outcome, a ``content`` that was not in the decision, or a ``time``
            before the decision or past its attribution window.
        UnknownDecisionError
            If the decision id is unknown, past its attribution window or dropped for
            ``limits.max_pending_decisions``.
        """
        out = decode_outcome(outcome)
        with self.journal.lock:
            self._observe(out, ObserveOp(out))

    def _observe(self, out: Outcome, op: Operation) -> None:
        joined = self.outcomes.join(out)  # validates: a bad outcome changes nothing
        self.journal.run(op, lambda: self.outcomes.reward(joined))

    # ------------------------------------------------------------------ reads
    def recommend(self, ids: dict[str, str], *, placement: str, now: int) -> Decision:
        """What ``placement`` would show this person now, without tracking, exploring or
        logging anything (agent consoles, previews); see :func:`decisioner.reads.recommend`."""
        return reads.recommend(self, ids, placement=placement, now=now)

    def recommend_many(self, ids: list[dict[str, str]], *, placement: str, now: int | list[int]) -> list[Decision]:
        """:meth:`recommend` for a batch, by one parallel kernel; see :func:`decisioner.reads.recommend_many`."""
        return reads.recommend_many(self, ids, placement=placement, now=now)

    def profile_row(self, ids: dict[str, str]) -> int:
        """The profile row of the first known identifier in ``ids`` (-1 when none is known)."""
        return self.identity.resolve_one(ids)

    def person_id(self, ids: dict[str, str]) -> int:
        """The stable person id ``ids`` resolves to (-1 when none is known)."""
        return self.people.person_of(self.profile_row(ids))

    def interests(self, ids: dict[str, str], *, now: int, top: int = 10) -> list[tuple[str, float]]:
        """The person's strongest interests at ``now``: (facet value, share of interest)."""
        return reads.interests(self, ids, now=now, top=top)

    def audience(self, expr: str, *, now: int, by: str | None = None, by2: str | None = None) -> dict[str, Any]:
        """Size, breakdown (``by``) and cross-tab (``by``, ``by2``) of segment ``expr`` (an
        expression or a name of ``[segments]``) over every profile at ``now``, under the read
        lock; see :func:`decisioner.segments.audiences.audience`."""
        now = arguments.epoch_ms(now, "now")
        with self.journal.lock.read():
            seg = self.segments_.compile(expr)
            return audience(self.segments_.sources, seg, self.people.person_, self.identity.n_rows, now=now, by=by,
                            by2=by2)

    def audience_members(self, expr: str, *, now: int) -> np.ndarray:
        """The person ids (int64, ascending) in segment ``expr`` at ``now`` (an export)."""
        now = arguments.epoch_ms(now, "now")
        with self.journal.lock.read():
            seg = self.segments_.compile(expr)
            return members(self.segments_.sources, seg, self.people.person_, self.identity.n_rows, now=now)

    def attributes(self, ids: dict[str, str]) -> dict[str, tuple[Any, str, int]]:
        """The person's attributes: name -> (value, source, event time); see :func:`decisioner.reads.attributes`."""
        return reads.attributes(self, ids)

    def tier_report(self, now: int) -> dict[str, Any]:
        """People per engagement tier at event time ``now``, with their share, mean spend and value
        index against the average; see :func:`decisioner.engagement.tier_report`."""
        with self.journal.lock.read():
            return tier_report(self.engagement_, self.identity, now)

    def pulse(self) -> list[dict[str, Any]]:
        """How each region feels about each topic: count, mean sentiment and its interval per
        region x topic; see :meth:`decisioner.pulse.Pulse.table`."""
        with self.journal.lock.read():
            return pulse_table(self.pulse_, self.attributes_, self.config.pulse)

    # ------------------------------------------------------------------ operations
    def set_attributes(self, ids: dict[str, str], values: dict[str, Any], *, source: str, time: int) -> int:
        """Load attribute ``values`` for the person ``ids`` from ``source`` (a CRM, a warehouse
        table) as of ``time`` (epoch ms), reconciled by each attribute's rule; applied and logged
        as an identify event of the person (a person not known yet is created). Returns the row.

        Raises
        ------
        SchemaError
            An undeclared attribute, a value of the wrong type or an identifier; nothing changes.
        """
        return int(self.set_attributes_many([ids], [values], source=source, time=time)[0])

    def set_attributes_many(
        self, ids: list[dict[str, str]], values: list[dict[str, Any]], *, source: str, time: int | list[int]
    ) -> np.ndarray:
        """:meth:`set_attributes` for a batch, each checked before any is applied; returns the rows (int32)."""
        evs = self.tracker.load_events(ids, values, source=source, time=time)
        checked = [(ev, self.tracker.validate(ev, load=True)) for ev in evs]
        with self.journal.lock:
            return np.array(
                [self._load(ev, c, AttributesOp(self._hashed(ev, c.keys))) for ev, c in checked], dtype=np.int32
            )

    def _load(self, ev: Event, checked: Checked, op: Operation) -> int:
        return self.journal.run(op, lambda: self.tracker.apply(ev, checked, load=True)[0])

    def set_inventory(self, item_id: str, inventory: int) -> None:
        """Update an item's stock; every placement (variants and holdout too) sees it at once."""
        op = InventoryOp(arguments.text(item_id, "item_id"), arguments.inventory(inventory))
        with self.journal.lock:
            self._inventory(op)

    def _inventory(self, op: InventoryOp) -> None:
        self.catalog.item_index(op.item, where="inventory")  # validate before anything moves
        self.journal.run(op, lambda: self.placements_.set_inventory(op.item, op.inventory))

    # Outbound messages (see :mod:`decisioner.outbound`)
    def outbound(self, audience: str | list[int] | np.ndarray, *, placement: str, channel: str,
                 now: int) -> outbound.OutboundBatch:
        """The next message per person of ``audience`` (a segment expression or person ids) on
        ``channel`` from campaign ``placement`` at ``now``, with consent, frequency caps and quiet
        hours; one logged operation. See :func:`decisioner.outbound.outbound`."""
        return outbound.outbound(self, audience, placement=placement, channel=channel, now=now)

    # Agents (see :mod:`decisioner.agents`): context, feedback, explanations
    def agent_context(self, ids: dict[str, str], *, now: int, channel: str = "phone", placement: str | None = None,
                      top: int = 10) -> agents.AgentContext:
        """The person's context for an agent on ``channel``; see :func:`decisioner.agents.agent_context`."""
        return agents.agent_context(self, ids, now=now, channel=channel, placement=placement, top=top)

    def feedback(self, decision_id: str, *, ids: dict[str, str], content: str, reaction: str, time: int,
                 value: float | None = None, channel: str = "phone") -> dict[str, Any]:
        """An agent's reaction to an action; see :func:`decisioner.agents.feedback`."""
        return agents.feedback(self, decision_id, ids=ids, content=content, reaction=reaction, time=time,
                               value=value, channel=channel)

    def explain(self, decision_id: str) -> dict[str, Any]:
        """A past decision as logged; see :func:`decisioner.agents.explain`."""
        return agents.explain(self, decision_id)

    def apply_feedback(self, outcome: Any | None, event: Any) -> dict[str, Any]:
        """Join ``outcome`` (if any) and track ``event`` under one hold of the writer lock; both
        are checked first, and a refused outcome leaves the event untracked."""
        ev = decode_event(event, max_bytes=self.config.limits.max_payload_bytes)
        checked = self.tracker.validate(ev)
        out = decode_outcome(outcome) if outcome is not None else None
        with self.journal.lock:
            if out is not None:
                self._observe(out, ObserveOp(out))
            row = self._track(ev, checked, TrackOp(self._hashed(ev, checked.keys)))
        return {"rewarded": out is not None, "event": str(type(ev).__struct_config__.tag),
                "person": self.people.person_of(row)}

    def set_ranker(self, placement: str, model: str | Path) -> dict[str, Any]:
        """Serve the model directory ``model`` on ``placement`` from the next decision on (a hot
        swap, logged with the model's text). A model that fails to load or was trained on other
        features raises :class:`~decisioner.errors.ModelError` and the current one keeps serving."""
        self.placements_.ranker(placement)  # validate before anything moves
        served = load_served(model)
        with self.journal.lock:
            return self._swap(RankerOp(placement, served.text, served.source, served.version), served)

    def _swap(self, op: RankerOp, served: ServedModel | None = None) -> dict[str, Any]:
        ranker = self.placements_.ranker(op.placement)
        new = served if served is not None else served_of(op)
        self.journal.run(op, lambda: ranker.swap(new))
        return new.describe()

    # Privacy operations (see :mod:`decisioner.privacy`): ``actor`` says who asked (never an
    # identifier) and goes to the audit log with the time of the request.
    def forget(
        self, ids: dict[str, str] | None = None, *, row: int | None = None, actor: str = "api"
    ) -> dict[str, Any]:
        """Erase identifiers or a whole person (``row``), keeping keyed tombstones."""
        return self._admin(privacy.forget_op(self.stores, ids, row=row, actor=actor))

    def unlink(self, ids: dict[str, str], *, actor: str = "api") -> dict[str, Any]:
        """Detach one identifier from its profile; see :meth:`IdentityGraph.unlink`."""
        return self._admin(privacy.unlink_op(self.stores, ids, actor=actor))

    def split(self, row: int, *, apart: list[dict[str, str]] | None = None, actor: str = "api") -> dict[str, Any]:
        """Recompute profile ``row`` from its evidence, keeping ``apart`` identifiers in
        different profiles; see :meth:`IdentityGraph.split`."""
        return self._admin(privacy.split_op(self.stores, row, apart or [], actor=actor))

    def expire(self, now: int, *, actor: str = "api") -> dict[str, Any]:
        """Retention at event time ``now`` (epoch ms): volatile identifiers past their
        time-to-live, profiles idle past ``profiles.idle_retention_days``."""
        return self._admin(privacy.expire_op(now, actor=actor))

    def _admin(self, op: PrivacyOp) -> dict[str, Any]:
        with self.journal.lock:
            return self.journal.run(op, lambda: privacy.apply(self.stores, op))

    def export(self, ids: dict[str, str], *, now: int | None = None, actor: str = "api") -> dict[str, Any]:
        """Everything held for the person ``ids`` resolves to; see :func:`decisioner.privacy.export`.
        The request is written to the audit log (and the event log)."""
        op = privacy.export_op(self.stores, ids, actor=actor)
        if now is not None:
            now = arguments.epoch_ms(now, "now")
        with self.journal.lock:
            self.tracker.sync_rows()  # a person loaded in bulk may have no row in the stores yet
            out = privacy.export(self.stores, ids, now=now)
            self.journal.run(op, lambda: privacy.audit_export(self.stores, op))
            return out

    def audit(self, *, person: int | None = None) -> list[dict[str, Any]]:
        """The audit log of privacy operations, oldest first (or those concerning ``person``)."""
        with self.journal.lock.read():
            return [msgspec.to_builtins(e) for e in self.stores.audit.entries(person=person)]

    # ------------------------------------------------------------------ state and durability
    @property
    def events_(self) -> int:
        """Events applied."""
        return self.tracker.events_

    @property
    def evicted_(self) -> int:
        """Profiles evicted for the profile bound (``profiles.max_profiles``)."""
        return self.tracker.evicted_

    @property
    def duplicate_outcomes_(self) -> int:
        """Outcomes ignored as repeats of one already joined (same decision, slot and kind)."""
        return self.pending_.duplicates_

    @property
    def recovery_(self) -> LogRecovery | None:
        """What the last recovery from an event log kept and dropped (``None`` before any)."""
        return self.journal.recovery_

    @property
    def ops_(self) -> int:
        """Admitted operations (the position in the event log)."""
        return self.journal.ops_

    def apply_record(self, rec: Record) -> Any:
        """Apply one logged operation as the engine first admitted it; returns what the
        operation returned then (the profile row of a track, the :class:`Decision` of a decide).
        Logged events carry keyed hashes, which are linked as they are."""
        op = rec.op
        with self.journal.lock:
            if isinstance(op, (TrackOp, DecideOp)):
                ev = op.event
                checked = self.tracker.validate(ev, hashed=True)
                if isinstance(op, TrackOp):
                    return self._track(ev, checked, op)
                return self._decide(self.placements_.get(op.placement), ev, checked, _time.perf_counter_ns(), op)
            if isinstance(op, ObserveOp):
                return self._observe(op.outcome, op)
            if isinstance(op, InventoryOp):
                return self._inventory(op)
            if isinstance(op, ExportOp):
                return self.journal.run(op, lambda: privacy.audit_export(self.stores, op))
            if isinstance(op, RankerOp):
                return self._swap(op)
            if isinstance(op, OutboundOp):
                return outbound.apply_op(self, op)
            if isinstance(op, AttributesOp):
                return self._load(op.event, self.tracker.validate(op.event, hashed=True, load=True), op)
            return self._admin(op)
