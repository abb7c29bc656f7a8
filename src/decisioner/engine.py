"""Engine: composes identity, consent, profiles, catalog, rules, scoring, allocation and the
decision log into one in-process decision call.

``decide(event, placement=...)`` tracks the event, scores the placement's candidates, allocates
slots through the placement's policy and returns a :class:`~decisioner.schemas.Decision` with a
propensity per slot. ``observe(outcome)`` joins a click or conversion to its decision by id and
rewards the policy. Every input is validated before any state changes: a bad event raises a
``decisioner`` error and leaves the engine as it was.
"""

from __future__ import annotations


import dataclasses
import msgspec
import time as _time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from ._kernels.rng import seed_state
from ._kernels.affinity import recommend_items, recommend_items_par
from ._rwlock import RWLock
from .allocation import Policy, SlatePolicy, make_policy
from .allocation.experiments import HOLDOUT, NOT_ENROLLED, ExperimentRuntime
from .catalog import Catalog
from .config import (
    DAY_MS,
    DEFAULT_EVENT_WEIGHTS,
    EngineConfig,
    GaussianThompsonSpec,
    LinTSSpec,
    LinUCBSpec,
    PlacementSpec,
    PolicySpec,
    PopularSpec,
    RandomSpec,
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
    bandit: Policy | None
    exp_start: np.ndarray
    exp_end: np.ndarray
    affinity_weight: float | None
    prior_weight: float | None
    #: arm policies: the outcome kind that rewards them; contextual ones: their event features
    reward_kind: str = "click"
    features: tuple[str, ...] | None = None
    #: campaign holdout: the experience always shown (-1: none)
    fixed: int = -1
    #: experiment on this placement: its index, one placement per variant, the holdout's
    experiment: int = -1
    variants: list[_Placement] | None = None
    holdout: _Placement | None = None


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
        self.identity = IdentityGraph(key, spec=config.identity)
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
        self.evicted_ = 0  # profiles evicted for the profile bound (``profiles.max_profiles``)
        self._no_items = np.empty(0, dtype=np.int32)
        self.ops_ = 0  # admission counter of every accepted state change (the log's order)
        self._log: EventLog | None = None
        # decision id -> (placement, log row, slots, variant code, policy reward so far, context)
        self._pending: OrderedDict[str, tuple[Any, ...]] = OrderedDict()
        self._lock = RWLock()  # `with self._lock:` is exclusive; recommend() reads shared
        self._placements: dict[str, _Placement] = {}
        self._in_stock = catalog.in_stock()
        for i, spec in enumerate(config.placements):
            self._placements[spec.name] = self._compile_placement(i, spec)
        # learned state (sticky assignments), hence the `_`: snapshots persist its arrays
        self.experiments_ = ExperimentRuntime(key, config.experiments, config.holdout, [p.name for p in config.placements])
        self._compile_experiments()
        self.identity.add_listener(self._on_merge)
        self.identity.add_split_listener(self._on_split)
        self.identity.add_erase_listener(self._on_erase)
        self.identity.add_anonymous_listener(self._on_anonymous)

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

    def _compile_placement(self, index: int, spec: PlacementSpec, policy: PolicySpec | None = None) -> _Placement:
        pol = spec.policy_spec if policy is None else policy
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
            features = tuple(pol.features) if isinstance(pol, (LinUCBSpec, LinTSSpec)) else None
            bandit = None if slate is not None else make_policy(
                pol, m, n_features=1 + len(features or ()), seed=self.seed
            )
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
            reward_kind="conversion" if isinstance(pol, GaussianThompsonSpec) else "click",
            features=features if spec.kind == "campaign" else None,
        )

    def _compile_experiments(self) -> None:
        """One placement per experiment variant (its own policy and state, the placement's
        content, rules and feedback arrays), and the holdout's default-content placement."""
        for e_i, e in enumerate(self.config.experiments):
            pl = self._placements[e.placement]
            pl.experiment = e_i
            pl.variants = []
            for v in e.variants:
                vpl = self._compile_placement(pl.index, pl.spec, v.policy) if v.policy is not None else pl
                if vpl is not pl:
                    vpl = dataclasses.replace(
                        vpl, mask=pl.mask, static_mask=pl.static_mask, extra=pl.extra, trials=pl.trials,
                        clicks=pl.clicks, experiment=e_i,
                    )
                pl.variants.append(vpl)
        if self.config.holdout is not None:
            for pl in self._placements.values():
                if pl.kind == "recommendation":
                    hpl = self._compile_placement(pl.index, pl.spec, PopularSpec())
                    hpl = dataclasses.replace(hpl, mask=pl.mask, static_mask=pl.static_mask, extra=pl.extra,
                                              trials=pl.trials, clicks=pl.clicks)
                else:
                    ids = pl.contents
                    hpl = self._compile_placement(pl.index, pl.spec, RandomSpec())
                    hpl.fixed = ids.index(pl.spec.default) if pl.spec.default is not None else 0
                hpl.policy_name = "holdout"
                pl.holdout = hpl

    def _allocation(self, pl: _Placement, row: int, keys: np.ndarray, is_new: bool) -> tuple[_Placement, int]:
        """The placement (variant) that decides for ``row`` and its assignment code."""
        rt = self.experiments_
        if is_new:
            rt.clear([row])  # a recycled row must not inherit an erased person's assignment
        code = rt.assign(pl.index, row, f"{int(keys.min()):016x}")
        if code == HOLDOUT:
            assert pl.holdout is not None
            return pl.holdout, code
        if code == NOT_ENROLLED or pl.variants is None:
            return pl, NOT_ENROLLED
        return pl.variants[code], code

    # ------------------------------------------------------------------ listeners
    def _on_merge(self, survivor: int, absorbed: np.ndarray) -> None:
        self.experiments_.merge(survivor, absorbed)
        self.profiles.ensure(self.identity.n_rows)
        for r in absorbed:
            self.profiles.merge(survivor, int(r), self.half_lives_)
        self.identity.release_rows(absorbed)

    def _on_split(self, row: int, new_rows: np.ndarray) -> None:
        # unmerge: the state stays with `row`; split-off pieces start empty with its consent
        self.profiles.ensure(self.identity.n_rows)
        for r in new_rows:
            self.profiles.clear(int(r))
            self.profiles.consent_[int(r)] = self.profiles.consent_[row]

    def _on_erase(self, rows: np.ndarray) -> None:
        # erasure: profiles that lost every identifier are wiped before their rows are reused
        self.profiles.ensure(self.identity.n_rows)
        self.profiles.clear(rows)
        self.identity.release_rows(rows)

    def _on_anonymous(self, row: int) -> None:
        # no usable identifier (blocked or erased): a scratch row that holds nothing between
        # events and is never personalised unless the event itself grants consent
        self.profiles.ensure(self.identity.n_rows)
        self.profiles.clear(row)
        self.profiles.consent_[row] = 0

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
        return keys, types, self._items(event)

    def _items(self, event: Event) -> list[int]:
        items: list[int] = []
        if event.item is not None:
            items.append(self.catalog.item_index(event.item))
        if isinstance(event, Purchase):
            for j, it in enumerate(event.items):
                items.append(self.catalog.item_index(it, where=f"$.items[{j}]"))
        return items

    def _apply(self, event: Event, keys: np.ndarray, types: np.ndarray, items: list[int]) -> int:
        res = self.identity.link_keys(keys, types, time=event.time, source=event.channel, consent=event.consent)
        row = res.row
        self.profiles.ensure(self.identity.n_rows)
        if res.new:
            self.profiles.clear(row)
            cap = self.config.profiles.max_profiles
            if cap and self.identity.n_profiles > cap:
                self._evict(cap, keep=row)
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

    def _evict(self, cap: int, *, keep: int) -> None:
        """Bring the live profiles back under ``cap``: evict the longest idle (oldest last event;
        ties: lowest row), a batch of ``evict_fraction * cap`` at once, never ``keep`` (the row
        being served). Deterministic in the state, so log replay evicts the same profiles."""
        ident = self.identity
        batch = max(1, int(cap * self.config.profiles.evict_fraction))
        n_live = ident.n_profiles
        n = n_live - cap + batch - 1
        if n <= 0:
            return
        n_rows = ident.n_rows
        root = ident.rows_["root"][:n_rows]
        seen = self.profiles.last_seen_[:n_rows]
        # candidates: the rows idle at least as long as a strided sample's (2n/live) quantile;
        # if they are too few, every live row. Either way the n longest idle are exact.
        step = max(1, n_rows // 8192)
        sample = seen[::step][root[::step] >= 0]
        live = None
        if sample.shape[0] and 4 * n < n_live:
            thr = np.quantile(sample, min(1.0, 2.0 * n / n_live + 0.002), method="higher")
            live = np.flatnonzero((seen <= thr) & (root >= 0))
            live = live[live != keep]
            if live.shape[0] < n:
                live = None
        if live is None:
            live = np.flatnonzero(root >= 0)
            live = live[live != keep]
        n = min(n, live.shape[0])
        if n < live.shape[0]:
            cand = seen[live]
            kth = np.partition(cand, n - 1)[n - 1]
            below = live[cand < kth]
            victims = np.concatenate([below, live[cand == kth][: n - below.shape[0]]])
        else:
            victims = live
        if victims.shape[0] == 0:
            return
        ident.evict(victims)
        self.evicted_ += int(victims.shape[0])

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
        return self._track(ev, keys, types, items)

    def _track(self, ev: Event, keys: np.ndarray, types: np.ndarray, items: list[int]) -> int:
        with self._lock:
            row = self._apply(ev, keys, types, items)
            self._admit("track", None, ev, keys)
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
        return self._decide(pl, ev, keys, types, items, t0)

    def _decide(
        self, pl: _Placement, ev: Event, keys: np.ndarray, types: np.ndarray, items: list[int], t0: int,
    ) -> Decision:
        with self._lock:
            rt = self.experiments_
            is_new = rt.active and bool((self.identity.resolve_keys(keys) < 0).all())
            row = self._apply(ev, keys, types, items)
            seq = self.seq_
            self.seq_ += 1
            state = seed_state(self.seed, seq)
            personalized = self.profiles.allows(row, CONSENT_PERSONALIZATION)
            base = pl
            code = NOT_ENROLLED
            if rt.active:
                pl, code = self._allocation(base, row, keys, is_new)
            context = self._context(pl, ev) if pl.features is not None else None
            if pl.kind == "recommendation":
                slots, n_cand, reasons = self._decide_recommendation(pl, row, ev.time, personalized, state)
            else:
                slots, n_cand, reasons = self._decide_campaign(pl, ev.time, state, context)
            contents = np.array([c for c, _, _ in slots], dtype=np.int32)
            start = self.decision_log.append(
                seq=seq, time=ev.time, profile=row, placement=pl.index, contents=contents,
                scores=np.array([s for _, s, _ in slots], dtype=np.float64),
                propensities=np.array([p for _, _, p in slots], dtype=np.float64),
                candidates=n_cand, experiment=base.experiment if code != HOLDOUT else -1, variant=code,
            )
            variant: str | None = None
            if code != NOT_ENROLLED:
                rt.exposures.append(seq, ev.time, base.experiment, code, row)
                variant = rt.variant_name(base.experiment, code)
                exp_name = self.config.experiments[base.experiment].name if base.experiment >= 0 else "global"
                reasons.append(Reason(kind="experiment", detail=f"{exp_name}:{variant}"))
            decision_id = f"{self.instance}-{seq}"
            self._pending[decision_id] = (
                pl.index, start, len(slots), code, 0.0, None if context is None else context.tolist()
            )
            if len(self._pending) > self.config.limits.max_pending_decisions:
                self._pending.popitem(last=False)
            self._admit("decide", pl.spec.name, ev, keys)
        choices = [
            SlotChoice(content=pl.contents[c], score=float(s), propensity=float(p)) for c, s, p in slots
        ]
        return Decision(
            decision_id=decision_id, placement=pl.spec.name, time=ev.time, profile=row,
            policy=pl.policy_name, policy_version=1, slots=choices, candidates=n_cand,
            personalized=personalized and pl.kind == "recommendation" and pl.affinity_weight != 0.0,
            reasons=reasons, latency_us=(_time.perf_counter_ns() - t0) / 1000.0, variant=variant,
        )

    @staticmethod
    def _context(pl: _Placement, ev: Event) -> np.ndarray:
        """A contextual policy's features: 1, then each named numeric event attribute (0 when
        absent or not a number)."""
        assert pl.features is not None
        x = np.empty(1 + len(pl.features), dtype=np.float64)
        x[0] = 1.0
        for i, f in enumerate(pl.features):
            v = ev.attrs.get(f)
            x[i + 1] = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0
        return x

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
        self, pl: _Placement, now: int, state: np.ndarray, context: np.ndarray | None = None
    ) -> tuple[list[tuple[int, float, float]], int, list[Reason]]:
        eligible = ((pl.exp_start <= now) & (now < pl.exp_end)).astype(np.uint8)
        n_cand = int(eligible.sum())
        if pl.fixed >= 0:
            fixed = pl.fixed if eligible[pl.fixed] else int(np.argmax(eligible))
            chosen = [(fixed, 0.0, 1.0)] if n_cand else []
        elif pl.bandit is not None:
            c = pl.bandit.select_one(eligible, state=state, context=context)
            chosen = [] if c.arm < 0 else [(c.arm, c.score, c.propensity)]
            if c.arm >= 0:
                pl.bandit.expose(c.arm, context=context)
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
            p_index, start, n, code = entry[0], entry[1], entry[2], entry[3]
            pl = self.config.placements[p_index]
            plc = self._placements[pl.name]
            if code == HOLDOUT and plc.holdout is not None:
                plc = plc.holdout
            elif code >= 0 and plc.variants is not None:
                plc = plc.variants[code]
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
            if plc.bandit is not None and plc.fixed < 0 and out.kind == plc.reward_kind:
                # delayed reward, joined by decision id: the exposure was counted at decide time
                plc.bandit.update_one(content, value, exposed=True, previous=entry[4], context=entry[5])
                self._pending[out.decision_id] = (*entry[:4], entry[4] + value, *entry[5:])
            if out.kind == "click":
                if plc.bandit is not None:
                    pass
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
                excluded = (
                    self.profiles.purchased_[row] if row >= 0 and pl.spec.filters.exclude_purchased
                    else self._no_items
                )
                cat, spec = self.catalog, self.config.scoring
                k = pl.spec.slots
                out_idx = np.empty(k, dtype=np.int64)
                out_score = np.empty(k, dtype=np.float64)
                # one kernel call (one GIL release) for the whole read: see recommend_items
                m = recommend_items(
                    self.profiles.fid_, self.profiles.score_, self.profiles.t_, row if personalized else -1,
                    now, self.half_lives_, cat.fv_indptr, cat.fv_items, cat.fv_data,
                    float(spec.affinity_weight if pl.affinity_weight is None else pl.affinity_weight),
                    self.scorer.prior(),
                    float(spec.popularity_weight if pl.prior_weight is None else pl.prior_weight),
                    pl.extra, pl.mask, excluded, k, out_idx, out_score,
                )
                n_cand = -1  # not counted on the read path
                slots = [
                    SlotChoice(content=pl.contents[int(out_idx[j])], score=float(out_score[j]), propensity=1.0)
                    for j in range(m)
                ]
        return Decision(
            decision_id="", placement=pl.spec.name, time=now, profile=row, policy="greedy",
            policy_version=1, slots=slots, candidates=n_cand, personalized=personalized,
            latency_us=(_time.perf_counter_ns() - t0) / 1000.0,
        )

    def recommend_many(
        self, ids: list[dict[str, str]], *, placement: str, now: int | list[int],
    ) -> list[Decision]:
        """:meth:`recommend` for a batch (a call list, a segment export): one parallel kernel
        spreads the requests over the cores, with the same results as one call each.

        Raises
        ------
        UnknownPlacementError, SchemaError
        """
        t0 = _time.perf_counter_ns()
        pl = self.placement(placement)
        b = len(ids)
        nows = np.full(b, now, dtype=np.int64) if isinstance(now, int) else np.asarray(now, dtype=np.int64)
        if nows.shape != (b,):
            raise SchemaError(f"Expected `now` as one int or {b} ints, got shape {nows.shape} - at `now`")
        if pl.kind == "campaign":
            return [self.recommend(i, placement=placement, now=int(t)) for i, t in zip(ids, nows)]
        key_lists = [self.identity.keys_of(i)[0] for i in ids]  # uint64[2, m]: keys and check tags
        offsets = np.zeros(b + 1, dtype=np.int64)
        np.cumsum([k.shape[1] for k in key_lists], out=offsets[1:])
        all_keys = np.concatenate(key_lists, axis=1) if b else np.empty((2, 0), dtype=np.uint64)
        cat, spec = self.catalog, self.config.scoring
        k = pl.spec.slots
        out_idx = np.empty((b, k), dtype=np.int64)
        out_score = np.empty((b, k), dtype=np.float64)
        out_n = np.zeros(b, dtype=np.int64)
        with self._lock.read():
            found = self.identity.resolve_keys(all_keys)
            rows = np.full(b, -1, dtype=np.int64)
            for j in range(b):
                hit = found[offsets[j] : offsets[j + 1]]
                hit = hit[hit >= 0]
                if hit.shape[0]:
                    rows[j] = hit[0]
            known = rows >= 0
            allowed = np.zeros(b, dtype=bool)
            allowed[known] = (self.profiles.consent_[rows[known]] & CONSENT_PERSONALIZATION) != 0
            excluded = np.full((b, self.profiles.purchased_.shape[1]), -1, dtype=np.int32)
            if pl.spec.filters.exclude_purchased:
                excluded[known] = self.profiles.purchased_[rows[known]]
            recommend_items_par(
                self.profiles.fid_, self.profiles.score_, self.profiles.t_, np.where(allowed, rows, -1),
                nows, self.half_lives_, cat.fv_indptr, cat.fv_items, cat.fv_data,
                float(spec.affinity_weight if pl.affinity_weight is None else pl.affinity_weight),
                self.scorer.prior(),
                float(spec.popularity_weight if pl.prior_weight is None else pl.prior_weight),
                pl.extra, pl.mask, excluded, k, out_idx, out_score, out_n,
            )
        each = (_time.perf_counter_ns() - t0) / 1000.0 / max(b, 1)
        return [
            Decision(
                decision_id="", placement=pl.spec.name, time=int(nows[j]), profile=int(rows[j]), policy="greedy",
                policy_version=1, candidates=-1, personalized=bool(allowed[j]), latency_us=each,
                slots=[SlotChoice(content=pl.contents[int(out_idx[j, s])], score=float(out_score[j, s]), propensity=1.0)
                       for s in range(int(out_n[j]))],
            )
            for j in range(b)
        ]

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

    # ------------------------------------------------------------------ privacy and unmerge
    def forget(self, ids: dict[str, str] | None = None, *, row: int | None = None) -> dict[str, Any]:
        """Erase identifiers or a whole person (``row``), keeping keyed tombstones so they do not
        come back; see :func:`decisioner.privacy.forget`."""
        from . import privacy

        return privacy.forget(self, ids, row=row)

    def export(self, ids: dict[str, str], *, now: int | None = None) -> dict[str, Any]:
        """Everything held for the person ``ids`` resolves to; see :func:`decisioner.privacy.export`."""
        from . import privacy

        return privacy.export(self, ids, now=now)

    def unlink(self, ids: dict[str, str]) -> dict[str, Any]:
        """Detach one identifier from its profile; see :meth:`IdentityGraph.unlink`."""
        from . import privacy

        return privacy.unlink(self, ids)

    def split(self, row: int, *, apart: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """Recompute profile ``row`` from its evidence, keeping ``apart`` identifiers in
        different profiles; see :meth:`IdentityGraph.split`."""
        from . import privacy

        return privacy.split(self, row, apart=apart or [])

    # ------------------------------------------------------------------ durability
    def _admit(self, op: str, placement: str | None, body: Any, keys: np.ndarray | None = None) -> None:
        """Count an accepted state change and append it to the event log (under the lock).

        An event's identifiers are logged as their keyed hashes (``keys``, from
        :meth:`IdentityGraph.keys_of`), never as the raw values: replay links the same keys
        without hashing again (:meth:`apply_record`)."""
        seq = self.ops_
        self.ops_ = seq + 1
        if self._log is not None:
            if keys is not None:
                body = msgspec.structs.replace(body, ids=self.identity.hashed_ids(body.ids, keys))
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

    def save(self, directory: str | Path) -> Path:
        """Write an atomic snapshot of the whole state under ``directory`` (see
        :mod:`decisioner.persistence`); if this engine's log lives there, it is compacted (the
        snapshot holds everything in it). Returns the snapshot's path."""
        from .persistence import LOG_NAME, save_snapshot

        with self._lock:
            path = save_snapshot(self, directory)
            if self._log is not None and self._log.path == Path(directory) / LOG_NAME:
                self._log.flush_now()
                self._log.reset()
            return path

    def durable(
        self, directory: str | Path, *, flush: FlushPolicy = "event", fsync: bool = False, interval_ms: float = 100.0,
    ) -> EventLog:
        """Make this engine durable in ``directory``: a snapshot now, then every accepted
        change in ``directory/events.log``. Reopen with :meth:`Engine.open`."""
        from .persistence import LOG_NAME

        with self._lock:
            self.save(directory)
            log_path = Path(directory) / LOG_NAME
            log_path.unlink(missing_ok=True)
            return self.attach_log(log_path, flush=flush, fsync=fsync, interval_ms=interval_ms)

    @classmethod
    def open(
        cls, directory: str | Path, *, hash_key: str | None = None, flush: FlushPolicy = "event",
        fsync: bool = False, interval_ms: float = 100.0, **kwargs: Any,
    ) -> Engine:
        """Recover an engine made durable with :meth:`durable`: load the last snapshot, replay the
        log written since, and go on logging there (``flush="off"``: replay it, then log nothing
        more). The hashing secret is not stored: it comes
        from ``hash_key`` (hex) or the environment variable the configuration names."""
        from .persistence import LOG_NAME, load_snapshot, read_log

        engine = load_snapshot(directory, hash_key=hash_key, **kwargs)
        log_path = Path(directory) / LOG_NAME
        if flush == "off":  # recover what the log holds, then log nothing more
            if log_path.exists():
                engine.replay_records(read_log(log_path).records)
        else:
            engine.attach_log(log_path, flush=flush, fsync=fsync, interval_ms=interval_ms)
        return engine

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
                self.apply_record(rec)
                applied += 1
        return applied

    def apply_record(self, rec: LogRecord) -> Any:
        """Apply one logged operation as the engine first admitted it; returns what the
        operation returned then (the profile row of a ``track``, the :class:`Decision` of a
        ``decide``, ...). Logged events carry keyed hashes, which are linked as they are.

        Raises
        ------
        NotReadyError
            If the operation is unknown.
        """
        if rec.op in ("track", "decide"):
            ev = decode_event(rec.body, max_bytes=MAX_RECORD_BYTES)
            keys, types = self.identity.keys_of_hashed(ev.ids)
            items = self._items(ev)
            if rec.op == "track":
                return self._track(ev, keys, types, items)
            assert rec.placement is not None
            return self._decide(self.placement(rec.placement), ev, keys, types, items, _time.perf_counter_ns())
        if rec.op == "observe":
            return self.observe(rec.body)
        if rec.op in ("forget", "unlink", "split", "expire"):
            from .privacy import replay_admin

            return replay_admin(self, rec.op, rec.body)
        if rec.op == "inventory":
            assert rec.placement is not None
            return self.set_inventory(rec.placement, int(msgspec.json.decode(rec.body)))
        raise NotReadyError(f"expected a known log operation, got {rec.op!r} at record {rec.seq}")
