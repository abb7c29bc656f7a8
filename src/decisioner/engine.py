"""Engine: composes identity, consent, profiles, catalog, rules, scoring, allocation and the
decision log into one in-process decision call.

``decide(event, placement=...)`` tracks the event, scores the placement's candidates, allocates
slots through the placement's policy and returns a :class:`~decisioner.schemas.Decision` with a
propensity per slot. ``observe(outcome)`` joins a click or conversion to its decision by id and
rewards the policy. Every input is validated before any state changes: a bad event raises a
``decisioner`` error and leaves the engine as it was.
"""

from __future__ import annotations


import msgspec
import time as _time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from ._kernels.rng import seed_state
from ._rwlock import RWLock
from .allocation import BernoulliThompson, SlatePolicy
from .catalog import Catalog
from .config import (
    DAY_MS,
    DEFAULT_EVENT_WEIGHTS,
    EngineConfig,
    PlacementSpec,
    PopularSpec,
    RandomSpec,
    ThompsonSpec,
    load_config,
)
from .decisionlog import DecisionLog
from .persistence import MAX_RECORD_BYTES, EventLog, FlushPolicy, LogRecord
from .errors import NotReadyError, SchemaError, UnknownDecisionError, UnknownPlacementError
from .hashing import resolve_key
from .identity import IdentityGraph
from .profiles import CONSENT_PERSONALIZATION, ProfileStore
from .rules import compile_rules
from .schemas import (
    EVENT_TYPES,
    Decision,
    Event,
    Outcome,
    Purchase,
    Reason,
    SlotChoice,
    decode_event,
    decode_outcome,
    encode,
)
from .scoring import AffinityScorer

__all__ = ["Engine"]

#: popularity weight of each event type (how much an interaction says "this item is wanted")
_POPULARITY_WEIGHTS: Final[dict[str, float]] = {
    "view": 1.0, "click": 1.0, "ad_click": 1.0, "email_click": 1.0, "add_to_cart": 3.0,
    "purchase": 5.0, "download": 1.0, "coupon_redeem": 1.0,
}
_FEEDBACK_PRIOR_CLICKS: Final = 1.0
_FEEDBACK_PRIOR_TRIALS: Final = 20.0


@dataclass
class _Placement:
    index: int
    spec: PlacementSpec
    kind: str
    policy_name: str
    contents: list[str]
    mask: np.ndarray  # uint8 static & stock (recommendation) / all ones (campaign)
    static_mask: np.ndarray
    boost: np.ndarray
    extra: np.ndarray  # boost + feedback term, maintained incrementally
    trials: np.ndarray
    clicks: np.ndarray
    rule_reasons: tuple[Reason, ...]
    slate: SlatePolicy | None
    bandit: BernoulliThompson | None
    exp_start: np.ndarray
    exp_end: np.ndarray
    affinity_weight: float | None
    prior_weight: float | None


class Engine:
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

    Examples
    --------
    >>> from decisioner.config import load_config_dict
    >>> cfg = load_config_dict({"identity": {"hash_key": "ab" * 16},
    ...     "placements": [{"name": "home", "kind": "recommendation", "slots": 2}]})
    >>> cat = Catalog([{"id": f"i{j}", "category": "c%d" % (j % 3)} for j in range(6)])
    >>> eng = Engine(cfg, cat, seed=1)
    >>> d = eng.decide({"type": "view", "time": 1_700_000_000_000, "ids": {"cookie": "k"},
    ...                 "item": "i0"}, placement="home")
    >>> len(d.slots), d.slots[0].propensity > 0
    (2, True)
    """

    def __init__(
        self,
        config: EngineConfig,
        catalog: Catalog,
        *,
        seed: int = 0,
        instance: str = "d",
        feedback_weight: float = 1.0,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.seed = seed
        self.instance = instance
        self.feedback_weight = feedback_weight
        key = resolve_key(config.identity.hash_key, config.identity.hash_key_env)
        self.identity = IdentityGraph(
            key, types=config.identity.types, default_region=config.identity.default_phone_region
        )
        ps = config.profiles
        self.profiles = ProfileStore(
            slots=ps.slots, purchased_slots=ps.purchased_slots, default_consent=ps.default_consent
        )
        self.scorer = AffinityScorer(catalog, config.scoring)
        facet_hl = {
            f: ps.facet_half_life_days.get(f, ps.half_life_days) * DAY_MS for f in catalog.facet_names
        }
        self.half_lives_ = np.array(
            [facet_hl[catalog.facet_names[f]] for f in catalog.fv_facet], dtype=np.float64
        ) if catalog.n_fv else np.ones(1, dtype=np.float64)
        self._event_weight = {t: ps.event_weights.get(t, DEFAULT_EVENT_WEIGHTS[t]) for t in EVENT_TYPES}
        self.decision_log = DecisionLog()
        self.seq_ = 0
        self.events_ = 0
        self.ops_ = 0  # admission counter of every accepted state change (the log's order)
        self._log: EventLog | None = None
        self._pending: OrderedDict[str, tuple[int, int, int]] = OrderedDict()
        self._lock = RWLock()  # `with self._lock:` is exclusive; recommend() reads shared
        self._placements: dict[str, _Placement] = {}
        self._in_stock = catalog.in_stock()
        for i, spec in enumerate(config.placements):
            self._placements[spec.name] = self._compile_placement(i, spec)
        self.identity.add_listener(self._on_merge)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_files(cls, config: str | Path, catalog: str | Path, **kwargs: Any) -> Engine:
        """Load a TOML/JSON config and a JSONL/CSV catalog."""
        cfg = load_config(config)
        return cls(cfg, Catalog.load(catalog, cfg.catalog), **kwargs)

    @classmethod
    def from_world(cls, world: str | Path, **kwargs: Any) -> Engine:
        """An engine over a synthetic world directory (``config.toml`` + ``catalog.jsonl``)."""
        w = Path(world)
        return cls.from_files(w / "config.toml", w / "catalog.jsonl", **kwargs)

    def _compile_placement(self, index: int, spec: PlacementSpec) -> _Placement:
        pol = spec.policy_spec
        n = self.catalog.n_items
        if spec.kind == "recommendation":
            rules = compile_rules(spec, self.catalog)
            reasons = tuple(Reason(kind="rule", detail=r) for r in rules.reasons)
            static, boost = rules.mask, rules.boost
            contents = self.catalog.ids
            slate: SlatePolicy | None = SlatePolicy(pol)
            bandit = None
            trials = np.zeros(n, dtype=np.float64)
            clicks = np.zeros(n, dtype=np.float64)
            extra = boost + self.feedback_weight * (_FEEDBACK_PRIOR_CLICKS / _FEEDBACK_PRIOR_TRIALS)
            mask = static & self._in_stock if spec.filters.in_stock else static.copy()
            exp_start = exp_end = np.zeros(0, dtype=np.int64)
        else:
            m = len(spec.experiences)
            contents = [e.id for e in spec.experiences]
            reasons = ()
            static = mask = np.ones(m, dtype=np.uint8)
            boost = extra = trials = clicks = np.zeros(m, dtype=np.float64)
            slate = SlatePolicy(pol) if isinstance(pol, RandomSpec) else None
            bandit = BernoulliThompson(m, pol) if isinstance(pol, ThompsonSpec) else None
            exp_start = np.array([e.start if e.start is not None else -(2**62) for e in spec.experiences], dtype=np.int64)
            exp_end = np.array([e.end if e.end is not None else 2**62 for e in spec.experiences], dtype=np.int64)
        aff_w = prior_w = None
        if isinstance(pol, PopularSpec):
            aff_w, prior_w = 0.0, 1.0
        return _Placement(
            index=index, spec=spec, kind=spec.kind,
            policy_name=str(type(pol).__struct_config__.tag), contents=contents, mask=mask,
            static_mask=static, boost=boost, extra=extra, trials=trials, clicks=clicks,
            rule_reasons=reasons, slate=slate, bandit=bandit, exp_start=exp_start, exp_end=exp_end,
            affinity_weight=aff_w, prior_weight=prior_w,
        )

    # ------------------------------------------------------------------ listeners
    def _on_merge(self, survivor: int, absorbed: np.ndarray) -> None:
        self.profiles.ensure(self.identity.n_rows)
        for r in absorbed:
            self.profiles.merge(survivor, int(r), self.half_lives_)
        self.identity.release_rows(absorbed)

    # ------------------------------------------------------------------ tracking
    def _validate(self, event: Event) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Everything that can fail, before anything changes: keys and item indices."""
        lim = self.config.limits
        if len(event.ids) > lim.max_identifiers:
            raise SchemaError(
                f"Expected at most {lim.max_identifiers} identifiers, got {len(event.ids)} - at `$.ids`"
            )
        if len(event.attrs) > lim.max_attributes:
            raise SchemaError(
                f"Expected at most {lim.max_attributes} attributes, got {len(event.attrs)} - at `$.attrs`"
            )
        keys, types = self.identity.keys_of(event.ids)
        items: list[int] = []
        if event.item is not None:
            items.append(self.catalog.item_index(event.item))
        if isinstance(event, Purchase):
            for j, it in enumerate(event.items):
                items.append(self.catalog.item_index(it, where=f"$.items[{j}]"))
        return keys, types, items

    def _apply(self, event: Event, keys: np.ndarray, types: np.ndarray, items: list[int]) -> int:
        res = self.identity.link_keys(keys, types)
        row = res.row
        self.profiles.ensure(self.identity.n_rows)
        if res.new:
            self.profiles.clear(row)
        prof = self.profiles
        if event.consent:
            prof.set_consent(row, event.consent)
        etype = type(event).__struct_config__.tag
        now = event.time
        w = self._event_weight[str(etype)]
        if items:
            if w != 0.0 and prof.allows(row, CONSENT_PERSONALIZATION):
                fv_list = []
                wt_list = []
                for i in items:
                    fvs, data = self.catalog.item_fvs(i)
                    fv_list.append(fvs)
                    wt_list.append(data.astype(np.float64) * w)
                fvs_all = fv_list[0] if len(fv_list) == 1 else np.concatenate(fv_list)
                wts_all = wt_list[0] if len(wt_list) == 1 else np.concatenate(wt_list)
                prof.update(row, fvs_all, wts_all, now, self.half_lives_)
            pw = _POPULARITY_WEIGHTS.get(str(etype), 0.0)
            if pw:
                for i in items:
                    self.scorer.add_popularity(i, pw, now)
            if etype == "purchase":
                for i in items:
                    prof.add_purchase(row, i)
        prof.touch(row, now)
        self.events_ += 1
        return row

    def track(self, event: Any) -> int:
        """Update identity, consent, interests and popularity from one behaviour event.

        Returns the profile row the event resolved to.

        Raises
        ------
        SchemaError, UnknownItemError
            On malformed events or unknown items; nothing is changed then.
        """
        ev = decode_event(event, max_bytes=self.config.limits.max_payload_bytes)
        keys, types, items = self._validate(ev)
        with self._lock:
            row = self._apply(ev, keys, types, items)
            self._admit("track", None, ev)
            return row

    def track_many(self, events: list[Any]) -> np.ndarray:
        """Track several events in order; returns their profile rows (int32)."""
        return np.array([self.track(e) for e in events], dtype=np.int32)

    # ------------------------------------------------------------------ deciding
    def placement(self, name: str) -> _Placement:
        p = self._placements.get(name)
        if p is None:
            raise UnknownPlacementError(
                f"Expected a configured placement in {sorted(self._placements)!r}, got {name!r} - at `placement`"
            )
        return p

    def decide(self, event: Any, *, placement: str) -> Decision:
        """Track ``event`` and choose content for ``placement``.

        Returns
        -------
        Decision
            decision id, chosen content per slot with score and propensity, reasons, latency.

        Raises
        ------
        UnknownPlacementError, SchemaError, UnknownItemError
            Before any state changes.
        """
        t0 = _time.perf_counter_ns()
        pl = self.placement(placement)
        ev = decode_event(event, max_bytes=self.config.limits.max_payload_bytes)
        keys, types, items = self._validate(ev)
        with self._lock:
            row = self._apply(ev, keys, types, items)
            seq = self.seq_
            self.seq_ += 1
            state = seed_state(self.seed, seq)
            personalized = self.profiles.allows(row, CONSENT_PERSONALIZATION)
            if pl.kind == "recommendation":
                slots, n_cand, reasons = self._decide_recommendation(pl, row, ev.time, personalized, state)
            else:
                slots, n_cand, reasons = self._decide_campaign(pl, ev.time, state)
            contents = np.array([c for c, _, _ in slots], dtype=np.int32)
            start = self.decision_log.append(
                seq=seq, time=ev.time, profile=row, placement=pl.index, contents=contents,
                scores=np.array([s for _, s, _ in slots], dtype=np.float64),
                propensities=np.array([p for _, _, p in slots], dtype=np.float64),
                candidates=n_cand,
            )
            decision_id = f"{self.instance}-{seq}"
            self._pending[decision_id] = (pl.index, start, len(slots))
            if len(self._pending) > self.config.limits.max_pending_decisions:
                self._pending.popitem(last=False)
            self._admit("decide", pl.spec.name, ev)
        choices = [
            SlotChoice(content=pl.contents[c], score=float(s), propensity=float(p)) for c, s, p in slots
        ]
        return Decision(
            decision_id=decision_id, placement=pl.spec.name, time=ev.time, profile=row,
            policy=pl.policy_name, policy_version=1, slots=choices, candidates=n_cand,
            personalized=personalized and pl.kind == "recommendation" and pl.affinity_weight != 0.0,
            reasons=reasons, latency_us=(_time.perf_counter_ns() - t0) / 1000.0,
        )

    def _decide_recommendation(
        self, pl: _Placement, row: int, now: int, personalized: bool, state: np.ndarray
    ) -> tuple[list[tuple[int, float, float]], int, list[Reason]]:
        if personalized:
            fids, scores = self.profiles.read(row, now, self.half_lives_)
        else:
            fids, scores = np.empty(0, np.int32), np.empty(0, np.float64)
        excluded = self.profiles.purchased(row) if pl.spec.filters.exclude_purchased else None
        item_scores, n_cand = self.scorer.score_one(
            fids, scores, eligible=pl.mask, extra=pl.extra, excluded=excluded,
            affinity_weight=pl.affinity_weight, prior_weight=pl.prior_weight,
        )
        assert pl.slate is not None
        idx, prop = pl.slate.select(item_scores, pl.spec.slots, state)
        # exposures feed the placement's click-through posterior
        pl.trials[idx] += 1.0
        self._refresh_extra(pl, idx)
        total = float(scores.sum())
        reasons = [
            Reason(kind="affinity", detail=self.catalog.fv_names[int(f)], weight=float(s) / total)
            for f, s in zip(fids[:3], scores[:3])
        ] if total > 0 else []
        if not personalized:
            reasons.append(Reason(kind="consent", detail="no personalization consent: default content"))
        reasons.extend(pl.rule_reasons)
        reasons.append(Reason(kind="policy", detail=pl.policy_name))
        return [(int(i), float(item_scores[i]), float(p)) for i, p in zip(idx, prop)], n_cand, reasons

    def _decide_campaign(
        self, pl: _Placement, now: int, state: np.ndarray
    ) -> tuple[list[tuple[int, float, float]], int, list[Reason]]:
        eligible = ((pl.exp_start <= now) & (now < pl.exp_end)).astype(np.uint8)
        n_cand = int(eligible.sum())
        if pl.bandit is not None:
            arm, prop = pl.bandit.select_one(eligible, state)
            chosen = [] if arm < 0 else [(arm, float(pl.bandit.means()[arm]), prop)]
        else:
            assert pl.slate is not None
            scores = np.where(eligible == 1, 0.0, -np.inf)
            idx, props = pl.slate.select(scores, 1, state)
            chosen = [(int(i), 0.0, float(p)) for i, p in zip(idx, props)]
        return chosen, n_cand, [Reason(kind="policy", detail=pl.policy_name)]

    def _refresh_extra(self, pl: _Placement, idx: np.ndarray) -> None:
        ctr = (pl.clicks[idx] + _FEEDBACK_PRIOR_CLICKS) / (pl.trials[idx] + _FEEDBACK_PRIOR_TRIALS)
        pl.extra[idx] = pl.boost[idx] + self.feedback_weight * ctr

    # ------------------------------------------------------------------ outcomes
    def observe(self, outcome: Any) -> None:
        """Join a click or conversion to its decision and reward the policy.

        A click rewards the clicked slot (``content``) or, if none is named, the first slot.

        Raises
        ------
        SchemaError
            On a malformed outcome, or a ``content`` that was not in the decision.
        UnknownDecisionError
            If the decision id is unknown or past the pending window.
        """
        out = decode_outcome(outcome)
        with self._lock:
            entry = self._pending.get(out.decision_id)
            if entry is None:
                raise UnknownDecisionError(
                    f"Expected a pending decision id, got {out.decision_id!r} - at `$.decision_id`"
                )
            p_index, start, n = entry
            pl = self.config.placements[p_index]
            plc = self._placements[pl.name]
            log_contents = self.decision_log.rows("content", start, n)
            slot = 0
            if out.content is not None:
                names = [plc.contents[int(c)] for c in log_contents]
                if out.content not in names:
                    raise SchemaError(
                        f"Expected `content` to be one of {names!r}, got {out.content!r} - at `$.content`"
                    )
                slot = names.index(out.content)
            if n == 0:
                self._admit("observe", None, out)
                return
            content = int(log_contents[slot])
            value = out.value if out.kind == "conversion" else 1.0
            self.decision_log.add_reward(start + slot, value)
            if out.kind == "click":
                if plc.bandit is not None:
                    plc.bandit.reward(content, 1.0)
                elif plc.kind == "recommendation":
                    plc.clicks[content] = min(plc.clicks[content] + 1.0, plc.trials[content])
                    self._refresh_extra(plc, np.array([content]))
            self._admit("observe", None, out)

    # ------------------------------------------------------------------ reads
    def recommend(self, ids: dict[str, str], *, placement: str, now: int) -> Decision:
        """What ``placement`` would show this person now, without tracking, exploring or
        logging anything (for agent consoles and previews): the best-scored items, or the
        experience with the best posterior mean. Reads share the lock, so their kernels run in
        parallel on several cores (they release the GIL).

        The result has an empty ``decision_id`` (it cannot be observed) and propensity 1.

        Raises
        ------
        UnknownPlacementError, SchemaError
        """
        t0 = _time.perf_counter_ns()
        pl = self.placement(placement)
        keys, _ = self.identity.keys_of(ids)
        with self._lock.read():
            rows = self.identity.resolve_keys(keys)
            hit = rows[rows >= 0]
            row = int(hit[0]) if hit.shape[0] else -1
            if pl.kind == "campaign":
                eligible = (pl.exp_start <= now) & (now < pl.exp_end)
                if pl.bandit is not None:
                    means = np.where(eligible, pl.bandit.means(), -np.inf)
                else:
                    means = np.where(eligible, 0.0, -np.inf)
                best = int(np.argmax(means)) if eligible.any() else -1
                slots = [] if best < 0 else [SlotChoice(content=pl.contents[best], score=float(means[best]), propensity=1.0)]
                n_cand = int(eligible.sum())
                personalized = False
            else:
                personalized = row >= 0 and self.profiles.allows(row, CONSENT_PERSONALIZATION)
                if personalized:
                    fids, scores = self.profiles.read_copy(row, now, self.half_lives_)
                else:
                    fids, scores = np.empty(0, np.int32), np.empty(0, np.float64)
                excluded = self.profiles.purchased_[row].copy() if row >= 0 and pl.spec.filters.exclude_purchased else None
                item_scores, n_cand = self.scorer.score_one(
                    fids, scores, eligible=pl.mask, extra=pl.extra, excluded=excluded,
                    affinity_weight=pl.affinity_weight, prior_weight=pl.prior_weight,
                )
                top = self.scorer.top(item_scores, pl.spec.slots)
                slots = [SlotChoice(content=pl.contents[int(i)], score=float(item_scores[i]), propensity=1.0) for i in top]
        return Decision(
            decision_id="", placement=pl.spec.name, time=now, profile=row, policy="greedy",
            policy_version=1, slots=slots, candidates=n_cand, personalized=personalized,
            latency_us=(_time.perf_counter_ns() - t0) / 1000.0,
        )

    # ------------------------------------------------------------------ introspection
    def profile_row(self, ids: dict[str, str]) -> int:
        """The profile row of the first known identifier in ``ids`` (-1 when none is known)."""
        return self.identity.resolve_one(ids)

    def interests(self, ids: dict[str, str], *, now: int, top: int = 10) -> list[tuple[str, float]]:
        """The person's strongest interests at ``now``: (facet value, share of interest)."""
        row = self.profile_row(ids)
        if row < 0:
            return []
        fids, scores = self.profiles.read(row, now, self.half_lives_)
        total = float(scores.sum()) or 1.0
        return [(self.catalog.fv_names[int(f)], float(s) / total) for f, s in zip(fids[:top], scores[:top])]

    @property
    def placements(self) -> list[str]:
        return list(self._placements)

    def set_inventory(self, item_id: str, inventory: int) -> None:
        """Update an item's stock; placements that filter on stock see it at once."""
        with self._lock:
            self.catalog.set_inventory(item_id, inventory)
            self._in_stock = self.catalog.in_stock()
            for pl in self._placements.values():
                if pl.kind == "recommendation" and pl.spec.filters.in_stock:
                    pl.mask = pl.static_mask & self._in_stock
            self._admit("inventory", item_id, int(inventory))

    # ------------------------------------------------------------------ durability
    def _admit(self, op: str, placement: str | None, body: Any) -> None:
        """Count an accepted state change and append it to the event log (under the lock)."""
        seq = self.ops_
        self.ops_ = seq + 1
        if self._log is not None:
            self._log.append(LogRecord(seq=seq, op=op, placement=placement, body=encode(body)))

    def attach_log(
        self, path: str | Path, *, flush: FlushPolicy = "event", fsync: bool = False, interval_ms: float = 100.0,
    ) -> EventLog:
        """Append every accepted state change to the event log at ``path`` from now on.

        The records already in the log are replayed first (those at or past this engine's
        admission count), so attaching to the log of a crashed process recovers its state.
        Returns the log. See :mod:`decisioner.persistence` for what each flush policy survives.
        """
        with self._lock:
            if self._log is not None:
                self._log.close()
            log = EventLog(path, flush=flush, fsync=fsync, interval_ms=interval_ms)
            self.replay_records(list(log))
            self._log = log
            return log

    def detach_log(self) -> None:
        """Flush and close the event log."""
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None

    def replay_records(self, records: list[LogRecord]) -> int:
        """Apply logged operations whose admission number is at or past ``ops_``, in order.

        Decisions are reproduced exactly (their draws are seeded by decision number). Returns
        how many records were applied.
        """
        applied = 0
        with self._lock:
            for rec in records:
                if rec.seq < self.ops_:
                    continue
                if rec.seq != self.ops_:
                    raise NotReadyError(
                        f"expected log record {self.ops_}, got {rec.seq}: the log has a gap"
                    )
                if rec.op == "track":
                    self.track(decode_event(rec.body, max_bytes=MAX_RECORD_BYTES))
                elif rec.op == "decide":
                    assert rec.placement is not None
                    self.decide(decode_event(rec.body, max_bytes=MAX_RECORD_BYTES), placement=rec.placement)
                elif rec.op == "observe":
                    self.observe(rec.body)
                elif rec.op == "inventory":
                    assert rec.placement is not None
                    self.set_inventory(rec.placement, int(msgspec.json.decode(rec.body)))
                else:
                    raise NotReadyError(f"expected a known log operation, got {rec.op!r} at record {rec.seq}")
                applied += 1
        return applied
