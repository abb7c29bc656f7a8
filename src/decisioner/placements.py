"""Placements: candidates, the click-through term, one shared state and one allocator each.

A placement answers "which content, in which slots" once the person is known:

* **candidates** - a recommendation placement's static rules (:mod:`decisioner.rules`) and the
  stock filter make one eligibility mask; a campaign's experiences are eligible inside their
  date windows;
* **click-through term** - per item, the placement's click-through posterior
  ``(clicks + 1) / (trials + 20)`` weighted by ``feedback_weight`` and added to the rule boost
  (``extra``), updated at exposure and click;
* **shared state** - :class:`PlacementState` holds the mask, boosts, click-through arrays. The
  base placement, every experiment variant and the global holdout's placement reference ONE
  state object, so a stock change or a click is seen by all of them at once, and a snapshot
  stores it once;
* **allocation** - a recommendation placement fills its slots through a
  :class:`~decisioner.allocation.SlatePolicy`; a campaign chooses one experience through an arm
  :class:`~decisioner.allocation.Policy` (or a uniform slate for ``random``). Both answer
  :class:`Allocator` (``name``, ``to_state``, ``load_state``);
* **fallback** - when nothing is eligible, a placement serves its fallback with reason
  ``fallback``: the most popular in-stock items for a recommendation, the ``default``
  experience for a campaign; an empty decision only when ``fallback = false`` (or a campaign has
  no ``default``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final, Protocol

import numpy as np

from ._kernels import decide as D
from .allocation import Policy, SlatePolicy, make_policy
from .allocation.experiments import HOLDOUT, NOT_ENROLLED, SEGMENT
from .catalog import Catalog
from .config import (
    AFFINITY_FEATURE,
    EngineConfig,
    GaussianThompsonSpec,
    LinTSSpec,
    LinUCBSpec,
    PlacementSpec,
    PolicySpec,
    PopularSpec,
    RandomSpec,
)
from .consent.store import CHANNEL, PURPOSE, cell
from .errors import ConfigError, UnknownPlacementError
from .profiles import ProfileStore
from .rules import compile_rules
from .schemas import Event, Reason
from .scoring import AffinityScorer
from .snapshot import ComponentState

if TYPE_CHECKING:
    from .ranking.stage import Ranker

__all__ = ["Allocator", "Placement", "PlacementState", "Placements", "PRIOR_CLICKS", "PRIOR_TRIALS"]

#: the click-through posterior's prior: one click in twenty exposures
PRIOR_CLICKS: Final = 1.0
PRIOR_TRIALS: Final = 20.0


class Allocator(Protocol):
    """What every allocation policy of a placement answers: a name and its own state."""

    def to_state(self) -> ComponentState: ...

    def load_state(self, state: ComponentState) -> None: ...


class _Stateless:
    """State of a slate policy: it learns nothing (its scores come from the placement)."""

    @staticmethod
    def to_state() -> ComponentState:
        return {}, {}

    @staticmethod
    def load_state(state: ComponentState) -> None:
        return None


class PlacementState:
    """The arrays a placement's base, variants and holdout share (by reference, never copied).

    ``static_mask`` uint8[n] (rules), ``mask`` uint8[n] (rules and stock; updated in place),
    ``boost`` float64[n], ``extra`` float64[n] (boost + click-through term), ``trials`` and
    ``clicks`` float64[n].
    """

    def __init__(
        self, static_mask: np.ndarray, boost: np.ndarray, *, stock_filter: bool, feedback_weight: float
    ) -> None:
        n = static_mask.shape[0]
        self.static_mask = np.ascontiguousarray(static_mask, dtype=np.uint8)
        self.boost = np.ascontiguousarray(boost, dtype=np.float64)
        self.stock_filter = stock_filter
        self.feedback_weight = float(feedback_weight)
        self.mask = self.static_mask.copy()
        self.extra = self.boost + self.feedback_weight * (PRIOR_CLICKS / PRIOR_TRIALS)
        self.trials = np.zeros(n, dtype=np.float64)
        self.clicks = np.zeros(n, dtype=np.float64)

    def set_stock(self, in_stock: np.ndarray) -> None:
        """Apply the catalog's stock to the mask, in place (every sharer sees it)."""
        if self.stock_filter:
            np.bitwise_and(self.static_mask, in_stock, out=self.mask)

    def refresh(self, idx: np.ndarray) -> None:
        """Recompute ``extra`` of items ``idx`` from their click-through counts."""
        ctr = (self.clicks[idx] + PRIOR_CLICKS) / (self.trials[idx] + PRIOR_TRIALS)
        self.extra[idx] = self.boost[idx] + self.feedback_weight * ctr

    def expose(self, idx: np.ndarray) -> None:
        """Count exposures of items ``idx``."""
        self.trials[idx] += 1.0
        self.refresh(idx)

    def click(self, item: int) -> None:
        """Count a click on ``item`` (never more clicks than exposures)."""
        self.clicks[item] = min(self.clicks[item] + 1.0, self.trials[item])
        self.refresh(np.array([item]))

    def to_state(self) -> ComponentState:
        return {"trials": self.trials, "clicks": self.clicks, "extra": self.extra}, {}

    def load_state(self, state: ComponentState) -> None:
        arrays, _ = state
        self.trials[:] = arrays["trials"]
        self.clicks[:] = arrays["clicks"]
        self.extra[:] = arrays["extra"]


@dataclass(eq=False)
class Placement:
    """One way to decide for a placement: the base, an experiment variant or the holdout.

    Variants and the holdout differ from the base only in policy; they share its ``state``.
    """

    index: int
    spec: PlacementSpec
    kind: str
    policy_name: str
    contents: list[str]
    state: PlacementState | None
    rule_reasons: tuple[Reason, ...]
    slate: SlatePolicy | None
    bandit: Policy | None
    exp_start: np.ndarray
    exp_end: np.ndarray
    affinity_weight: float | None
    prior_weight: float | None
    reward_kind: str = "click"
    features: tuple[str, ...] | None = None
    #: campaign holdout: the experience always shown (-1: none)
    fixed: int = -1
    #: campaign fallback: the ``default`` experience (-1: none)
    default: int = -1
    #: experiment on this placement (-1: none), its variants and the holdout's placement
    experiment: int = -1
    variants: list[Placement] | None = None
    holdout: Placement | None = None
    #: what outcomes of a decision served by a segment join to: no policy learns from them
    by_segment: Placement | None = None
    #: recommendation: the fused kernel's inputs and outputs, allocated once (see _kernels.decide)
    params: np.ndarray = field(default_factory=lambda: np.zeros(D.N_PARAMS, dtype=np.float64))
    plc: tuple[np.ndarray, ...] = ()
    out: tuple[np.ndarray, ...] = ()
    counts: np.ndarray = field(default_factory=lambda: np.zeros(D.N_COUNTS, dtype=np.int64))
    #: recommendation: the learned re-ranker over the affinity top-N (the base's and its ranked
    #: variants' one shared :class:`~decisioner.ranking.stage.Ranker`), or None
    ranker: Ranker | None = None
    #: campaign: the experiences' facet values as flat pairs (experience int64, facet value
    #: int32), ordered by experience (see :meth:`affinities`)
    exp_of: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    exp_fv: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    #: campaign: per context feature after the intercept, the experience whose affinity it
    #: reads (``affinity:<id>``), -1 for an event attribute
    feature_exp: tuple[int, ...] = ()
    #: campaign: ``w`` of ``score + w * affinity`` (``spec.affinity_weight``)
    bonus_weight: float = 0.0

    @cached_property
    def channel(self) -> int:
        """The consent channel index of ``spec.channel``."""
        return CHANNEL[self.spec.channel]

    @cached_property
    def requires(self) -> int:
        """The consent cells its content needs besides personalization (``spec.purposes`` on
        its channel)."""
        return sum(1 << cell(PURPOSE[p], self.channel) for p in set(self.spec.purposes))

    @property
    def allocator(self) -> Allocator:
        return self.bandit if self.bandit is not None else _Stateless()

    @property
    def mask(self) -> np.ndarray:
        """Eligible items now (recommendation): rules and stock."""
        assert self.state is not None
        return self.state.mask

    def assigned(self, code: int) -> tuple[Placement, int]:
        """The placement that decides under experiment assignment ``code`` (the holdout's, a
        variant, or this one) and the code as logged (``NOT_ENROLLED`` when this one decides)."""
        if code == HOLDOUT:
            assert self.holdout is not None
            return self.holdout, code
        if code == SEGMENT:
            assert self.by_segment is not None
            return self.by_segment, code
        if code == NOT_ENROLLED or self.variants is None:
            return self, NOT_ENROLLED
        return self.variants[code], code

    def eligible_experiences(self, now: int) -> np.ndarray:
        """uint8 mask of the campaign experiences live at ``now``."""
        return ((self.exp_start <= now) & (now < self.exp_end)).astype(np.uint8)

    @property
    def uses_affinity(self) -> bool:
        """Whether a decision reads the person's affinities (a weight or an ``affinity:`` feature,
        over experiences that have facets)."""
        return self.exp_fv.shape[0] > 0 and (self.bonus_weight != 0.0 or any(e >= 0 for e in self.feature_exp))

    def affinities(self, fids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each experience's affinity for a person with live interests ``fids`` (int32) /
        ``scores`` (float64): the sum of the person's shares of interest (scores normalised to
        sum 1, as the item scorer's affinity term) in the experience's facet values.
        Returns (affinity float64[experiences], share per pair of :attr:`exp_fv` float64)."""
        m = len(self.contents)
        total = float(scores.sum()) if scores.shape[0] else 0.0
        if not total > 0.0 or self.exp_fv.shape[0] == 0:
            return np.zeros(m, dtype=np.float64), np.zeros(self.exp_fv.shape[0], dtype=np.float64)
        order = np.argsort(fids, kind="stable")
        sf = fids[order]
        at = np.minimum(np.searchsorted(sf, self.exp_fv), sf.shape[0] - 1)
        share = np.where(sf[at] == self.exp_fv, scores[order][at] / total, 0.0)
        return np.bincount(self.exp_of, weights=share, minlength=m).astype(np.float64), share

    def affinity_reason(self, arm: int, share: np.ndarray, names: list[str]) -> Reason | None:
        """The facet value of experience ``arm`` that carried most of its affinity (``affinity``
        reason, weight: the person's share of interest in it), or None when it has none."""
        at = np.flatnonzero(self.exp_of == arm)
        if at.shape[0] == 0:
            return None
        best = int(at[np.argmax(share[at])])
        if not share[best] > 0.0:
            return None
        return Reason(kind="affinity", detail=names[int(self.exp_fv[best])], weight=float(share[best]))

    def context(self, attrs: dict[str, Any], affinity: np.ndarray | None = None) -> np.ndarray | None:
        """A contextual policy's features: 1, then each named numeric event attribute (0 when
        absent or not a number), or for a feature ``affinity:<id>`` the person's affinity of
        that experience (0 without ``affinity``); ``None`` for a policy without context."""
        if self.features is None:
            return None
        x = np.empty(1 + len(self.features), dtype=np.float64)
        x[0] = 1.0
        for i, f in enumerate(self.features):
            e = self.feature_exp[i] if self.feature_exp else -1
            if e >= 0:
                x[i + 1] = float(affinity[e]) if affinity is not None else 0.0
                continue
            v = attrs.get(f)
            x[i + 1] = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0
        return x

    def choose_items(
        self,
        inp: ItemInputs,
        row: int,
        now: int,
        personalized: bool,
        state: np.ndarray,
        fvs: np.ndarray,
        wts: np.ndarray,
        scorer: AffinityScorer,
        event: Event | None = None,
    ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], int, list[Reason]]:
        """A recommendation decision in one kernel call (:func:`~decisioner._kernels.decide.decide_slate`):
        the event's interest update (``fvs``, ``wts``), scoring, pool, slate and click-through
        update. Returns (items, scores, propensities), the candidates and the reasons; the
        arrays are views of this placement's output buffers, valid until its next decision.

        With a :attr:`ranker` (and personalization consent) the kernel stops at the affinity
        top ``retrieve``, the ranker scores them (features of ``row`` at ``now``, the context of
        ``event``: its channel, device and hour) and
        :func:`~decisioner._kernels.decide.slate_ranked` explores over the model's order: the
        slots' scores are the model's raw scores."""
        pop, work = scorer.popularity_, inp.work
        params, ranker = self.params, self.ranker if personalized else None  # no profiling: no ranker
        params[D.P_INV_MAX] = pop.inv_max()
        params[D.P_RETRIEVE] = ranker.retrieve if ranker is not None else 0
        n = D.decide_slate(
            inp.prof(), row, now, int(personalized), fvs, wts, inp.half_lives, inp.cat, pop.acc_, self.plc, params,
            state, work, self.out, self.counts,
        )
        ranked: list[Reason] = []
        if ranker is not None:
            m = int(self.counts[D.C_POOL])
            if m:
                pool = work[1][:m]
                ch, dev = (event.channel, event.device) if event is not None else (self.spec.channel, None)
                y = ranker.score(row, now, pool, ranker.featurizer.context(ch, dev, now))
                n = D.slate_ranked(y, pool, self.plc, params, state, ranker.rwork, work[5], self.out, self.counts)
                s = ranker.served_
                ranked = [Reason(kind="ranker", detail=f"{s.source} {s.fingerprint[:12]} over the top {m}")]
        n_cand, n_live = int(self.counts[D.C_CANDIDATES]), int(self.counts[D.C_LIVE])
        reasons: list[Reason] = []
        if n_live:
            live = work[4][:n_live].tolist()
            total, names = sum(live), inp.catalog.fv_names
            reasons = [
                Reason(kind="affinity", detail=names[f], weight=w / total)
                for f, w in zip(work[3][:3].tolist(), live[:3])
            ]
        if not personalized:
            reasons.append(Reason(kind="consent", detail="no personalization consent: default content"))
        if n_cand == 0 and self.spec.fallback:
            idx, sc = scorer.fallback(inp.catalog.in_stock(), self.spec.slots)
            fallback = Reason(kind="fallback", detail="no eligible item: the most popular in stock")
            return (idx, sc, np.ones(idx.shape[0], dtype=np.float64)), 0, [*reasons, fallback]
        reasons.extend(self.rule_reasons)
        reasons.extend(ranked)
        reasons.append(Reason(kind="policy", detail=self.policy_name))
        out_idx, out_score, out_prop = self.out
        return (out_idx[:n], out_score[:n], out_prop[:n]), n_cand, reasons

    def choose_arm(
        self, now: int, state: np.ndarray, context: np.ndarray | None, *, personalized: bool = True,
        allowed: np.ndarray | None = None, affinity: tuple[np.ndarray, np.ndarray] | None = None,
        names: list[str] | None = None,
    ) -> tuple[list[tuple[int, float, float]], int, list[Reason]]:
        """A campaign decision: ``[(experience, score, propensity)]``, candidates, reasons.
        Without personalization consent the live ``default`` experience is shown if there is
        one (reason ``consent``); otherwise the policy chooses as for anyone (``context`` is
        then built from no attribute of the person).

        ``allowed`` (uint8 per experience) removes experiences the person may not see (their
        ``segment``); ``affinity`` (:meth:`affinities`' pair) adds ``bonus_weight * affinity``
        to the policy's per-arm score, and names the facet value (``names``: the catalog's
        facet value names) that carried the chosen experience's affinity."""
        eligible = self.eligible_experiences(now)
        if allowed is not None:
            eligible &= allowed
        n_cand = int(eligible.sum())
        if not personalized and self.default >= 0 and eligible[self.default]:
            return (
                [(self.default, 0.0, 1.0)],
                n_cand,
                [Reason(kind="consent", detail="no personalization consent: default content")],
            )
        reasons = [Reason(kind="policy", detail=self.policy_name)]
        if not personalized:
            reasons.append(Reason(kind="consent", detail="no personalization consent: not personalized"))
        if n_cand == 0:
            if self.default >= 0 and self.spec.fallback:
                return (
                    [(self.default, 0.0, 1.0)],
                    0,
                    [Reason(kind="fallback", detail="no live experience: the default")],
                )
            return [], 0, reasons
        if self.fixed >= 0:
            fixed = self.fixed if eligible[self.fixed] else int(np.argmax(eligible))
            return [(fixed, 0.0, 1.0)], n_cand, reasons
        if self.bandit is not None:
            bonus = None
            if affinity is not None and self.bonus_weight != 0.0:
                bonus = self.bonus_weight * affinity[0]
            c = self.bandit.select_one(eligible, state=state, context=context, bonus=bonus)
            if c.arm < 0:
                return [], n_cand, reasons
            self.bandit.expose(c.arm, context=context)
            if affinity is not None and names is not None:
                why = self.affinity_reason(c.arm, affinity[1], names)
                if why is not None:
                    reasons.insert(0, why)
            return [(c.arm, c.score, c.propensity)], n_cand, reasons
        assert self.slate is not None
        scores = np.where(eligible == 1, 0.0, -np.inf)
        idx, props = self.slate.select(scores, 1, state)
        return [(int(i), 0.0, float(p)) for i, p in zip(idx, props)], n_cand, reasons


class ItemInputs:
    """What a recommendation decision reads besides its placement: the profile store, the
    catalog's facet postings, the facet half-lives, and the decide kernel's scratch (one per
    engine, used under the writer lock)."""

    def __init__(self, profiles: ProfileStore, catalog: Catalog, half_lives: np.ndarray) -> None:
        self.profiles = profiles
        self.catalog = catalog
        self.half_lives = half_lives
        self.cat = (catalog.fv_indptr, catalog.fv_items, catalog.fv_data)
        self.work = D.new_work(catalog.n_items, profiles.slots)

    def prof(self) -> tuple[np.ndarray, ...]:
        p = self.profiles  # its arrays are replaced when they grow: bundle them per call
        return (p.fid_, p.score_, p.t_, p.purchased_)


class Placements:
    """Every placement of an engine, compiled from its configuration.

    Parameters
    ----------
    config
        Engine configuration (placements, experiments, holdout).
    catalog
        The catalog the recommendation placements rank.
    seed
        Seed of the arm policies' own streams.
    feedback_weight
        Weight of the click-through term in an item's score.
    """

    def __init__(self, config: EngineConfig, catalog: Catalog, *, seed: int = 0, feedback_weight: float = 1.0) -> None:
        self.config = config
        self.catalog = catalog
        self.seed = seed
        self.feedback_weight = feedback_weight
        self.states: list[PlacementState | None] = []
        self._by_name: dict[str, Placement] = {}
        self.rankers: dict[str, Ranker] = {}
        in_stock = catalog.in_stock()
        for i, spec in enumerate(config.placements):
            state = None
            if spec.kind == "recommendation":
                rules = compile_rules(spec, catalog)
                state = PlacementState(
                    rules.mask, rules.boost, stock_filter=spec.filters.in_stock, feedback_weight=feedback_weight
                )
                state.set_stock(in_stock)
            self.states.append(state)
            self._by_name[spec.name] = self._compile(i, spec, state)
        self._compile_experiments()

    # ------------------------------------------------------------------ lookup
    def get(self, name: str) -> Placement:
        """The placement called ``name``.

        Raises
        ------
        UnknownPlacementError
            If no placement has that name.
        """
        p = self._by_name.get(name) if isinstance(name, str) else None
        if p is None:
            raise UnknownPlacementError(
                f"Expected a configured placement in {sorted(self._by_name)!r}, got {name!r} - at `placement`"
            )
        return p

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def by_index(self, index: int) -> Placement:
        return self._by_name[self.config.placements[index].name]

    def every(self) -> list[tuple[str, Placement]]:
        """Every way of deciding, named: ``home``, ``home/variant:b``, ``home/holdout``."""
        out: list[tuple[str, Placement]] = []
        for name, pl in self._by_name.items():
            out.append((name, pl))
            for j, v in enumerate(pl.variants or []):
                if v is not pl:
                    out.append((f"{name}/variant:{j}", v))
            if pl.holdout is not None:
                out.append((f"{name}/holdout", pl.holdout))
        return out

    def set_stock(self, in_stock: np.ndarray) -> None:
        """Apply new stock to every recommendation placement that filters on it."""
        for st in self.states:
            if st is not None:
                st.set_stock(in_stock)

    def set_inventory(self, item_id: str, inventory: int) -> None:
        """Set an item's stock in the catalog; every placement (variants and holdout too) sees it
        at once."""
        self.catalog.set_inventory(item_id, inventory)
        self.set_stock(self.catalog.in_stock())

    def attach_rankers(self, rankers: dict[str, Ranker]) -> None:
        """Give each named recommendation placement its re-ranker: the base and the variants
        that rank (not a uniform one, not the holdout nor the segment fallback)."""
        self.rankers = rankers
        for name, r in rankers.items():
            pl = self._by_name[name]
            for v in [pl, *(pl.variants or [])]:
                if v.slate is not None and v.slate.mode != D.MODE_UNIFORM:
                    v.ranker = r

    def ranker(self, name: str) -> Ranker:
        """The re-ranker of placement ``name`` (``UnknownPlacementError`` if it has none)."""
        r = self.rankers.get(self.get(name).spec.name)
        if r is None:
            raise UnknownPlacementError(
                f"Expected a placement with a `ranker` in {sorted(self.rankers)!r}, got {name!r} - at `placement`"
            )
        return r

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, ComponentState]:
        """One component per shared state, per allocator (each exported once) and per re-ranker
        (its model's text: recovery serves the model that was served)."""
        out: dict[str, ComponentState] = {}
        for i, st in enumerate(self.states):
            if st is not None:
                out[f"placement-state:{self.config.placements[i].name}"] = st.to_state()
        for name, pl in self.every():
            out[f"allocator:{name}"] = pl.allocator.to_state()
        for name, r in self.rankers.items():
            out[f"ranker:{name}"] = r.to_state()
        return out

    def load_state(self, states: dict[str, ComponentState]) -> None:
        for i, st in enumerate(self.states):
            if st is not None:
                st.load_state(states[f"placement-state:{self.config.placements[i].name}"])
        for name, pl in self.every():
            pl.allocator.load_state(states[f"allocator:{name}"])
        for name, r in self.rankers.items():
            if f"ranker:{name}" in states:  # a snapshot from before the ranker: the configured model
                r.load_state(states[f"ranker:{name}"])

    # ------------------------------------------------------------------ compile
    def _compile(
        self, index: int, spec: PlacementSpec, state: PlacementState | None, policy: PolicySpec | None = None
    ) -> Placement:
        pol = spec.policy_spec if policy is None else policy
        features: tuple[str, ...] | None = None
        if spec.kind == "recommendation":
            assert state is not None
            rules = compile_rules(spec, self.catalog) if policy is None else None
            reasons = tuple(Reason(kind="rule", detail=r) for r in rules.reasons) if rules is not None else ()
            contents = self.catalog.ids
            slate: SlatePolicy | None = SlatePolicy(pol)
            bandit = None
            exp_start = exp_end = np.zeros(0, dtype=np.int64)
            default = -1
        else:
            m = len(spec.experiences)
            contents = [e.id for e in spec.experiences]
            reasons = ()
            slate = SlatePolicy(pol) if isinstance(pol, RandomSpec) else None
            features = tuple(pol.features) if isinstance(pol, (LinUCBSpec, LinTSSpec)) else None
            bandit = (
                None if slate is not None else make_policy(pol, m, n_features=1 + len(features or ()), seed=self.seed)
            )
            exp_start = np.array(
                [e.start if e.start is not None else -(2**62) for e in spec.experiences], dtype=np.int64
            )
            exp_end = np.array([e.end if e.end is not None else 2**62 for e in spec.experiences], dtype=np.int64)
            default = contents.index(spec.default) if spec.default is not None else -1
            exp_of, exp_fv = self._experience_facets(spec)
            feature_exp = tuple(self._feature_experience(f, contents, spec.name) for f in features or ())
        aff_w = prior_w = None
        if isinstance(pol, PopularSpec):
            aff_w, prior_w = 0.0, 1.0
        pl = Placement(
            index=index,
            spec=spec,
            kind=spec.kind,
            policy_name=str(type(pol).__struct_config__.tag),
            contents=contents,
            state=state,
            rule_reasons=reasons,
            slate=slate,
            bandit=bandit,
            exp_start=exp_start,
            exp_end=exp_end,
            affinity_weight=aff_w,
            prior_weight=prior_w,
            reward_kind="conversion" if isinstance(pol, GaussianThompsonSpec) else "click",
            features=features,
            default=default,
        )
        if spec.kind == "campaign":
            pl.exp_of, pl.exp_fv, pl.feature_exp = exp_of, exp_fv, feature_exp
            pl.bonus_weight = float(spec.affinity_weight)
        if state is not None and slate is not None:
            sc = self.config.scoring
            p = pl.params
            p[D.P_AFFINITY_W] = sc.affinity_weight if aff_w is None else aff_w
            p[D.P_PRIOR_W] = sc.popularity_weight if prior_w is None else prior_w
            p[D.P_FEEDBACK_W] = state.feedback_weight
            p[D.P_PRIOR_CLICKS], p[D.P_PRIOR_TRIALS] = PRIOR_CLICKS, PRIOR_TRIALS
            p[D.P_MODE], p[D.P_PARAM], p[D.P_POOL] = slate.mode, slate.param, slate.pool
            p[D.P_SLOTS] = spec.slots
            p[D.P_EXCLUDE_PURCHASED] = 1.0 if spec.filters.exclude_purchased else 0.0
            pl.plc = (state.mask, state.extra, state.boost, state.trials, state.clicks)
            pl.out = D.new_out(spec.slots)
        return pl

    @staticmethod
    def _feature_experience(feature: str, contents: list[str], placement: str) -> int:
        """The experience an ``affinity:<id>`` feature reads (-1: an event attribute)."""
        if not feature.startswith(AFFINITY_FEATURE):
            return -1
        got = feature[len(AFFINITY_FEATURE):]
        if got not in contents:
            raise ConfigError(
                f"expected `affinity:` and an experience id in {contents!r}, got {feature!r} - at "
                f"`placements.{placement}.policy.features`"
            )
        return contents.index(got)

    def _experience_facets(self, spec: PlacementSpec) -> tuple[np.ndarray, np.ndarray]:
        """Each experience's ``facets`` as catalog facet values: flat (experience, facet value)
        pairs ordered by experience.

        Raises
        ------
        ConfigError
            If a facet is not a catalog facet or a value occurs on no catalog item.
        """
        cat = self.catalog
        exp_of: list[int] = []
        exp_fv: list[int] = []
        for e_i, e in enumerate(spec.experiences):
            at = f"placements.{spec.name}.experiences[{e_i}].facets"
            for facet, value in e.facets.items():
                if facet not in cat.facet_names:
                    raise ConfigError(f"expected a catalog facet in {cat.facet_names!r}, got {facet!r} - at `{at}`")
                fv = cat.fv_index.get(f"{facet}={value}")
                if fv is None:
                    raise ConfigError(
                        f"expected a value of facet `{facet}` that a catalog item has, got {value!r} - at "
                        f"`{at}.{facet}`"
                    )
                exp_of.append(e_i)
                exp_fv.append(fv)
        return np.array(exp_of, dtype=np.int64), np.array(exp_fv, dtype=np.int32)

    def _compile_experiments(self) -> None:
        """One placement per experiment variant with a policy of its own (the base otherwise),
        and the holdout's default-content placement; all share the base's state."""
        for e_i, e in enumerate(self.config.experiments):
            pl = self._by_name[e.placement]
            pl.experiment = e_i
            pl.variants = []
            for v in e.variants:
                if v.policy is None:
                    pl.variants.append(pl)  # the variant keeps the placement's policy and state
                    continue
                vpl = self._compile(pl.index, pl.spec, pl.state, v.policy)
                vpl.rule_reasons, vpl.experiment = pl.rule_reasons, e_i
                pl.variants.append(vpl)
        for pl in self._by_name.values():
            if pl.spec.segment is not None or pl.spec.rules:
                pol = PopularSpec() if pl.state is not None else RandomSpec()
                spl = self._compile(pl.index, pl.spec, pl.state, pol)
                spl.fixed, spl.policy_name, spl.rule_reasons = max(pl.default, 0), "segment", pl.rule_reasons
                pl.by_segment = spl
        if self.config.holdout is not None:
            for pl in self._by_name.values():
                if pl.kind == "recommendation":
                    hpl = self._compile(pl.index, pl.spec, pl.state, PopularSpec())
                    hpl.rule_reasons = pl.rule_reasons
                else:
                    hpl = self._compile(pl.index, pl.spec, None, RandomSpec())
                    hpl.fixed = pl.default if pl.default >= 0 else 0
                hpl.policy_name = "holdout"
                pl.holdout = hpl
