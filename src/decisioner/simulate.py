"""Closed-loop simulation on a synthetic world: the engine decides, the synthetic person responds.

Every policy (the engine's own, a uniformly random one and a most-popular one) runs in its own
engine over the same people and the same event stream, with the same random numbers for the
responses (common random numbers: slot ``s`` of decision ``j`` is clicked when
``u[j, s] < p(click)``), so differences in click-through come from the policies alone.

Decisions are made at page views (the recommendation placement) and at email opens (the
campaign placement, if the world has one). A click is fed back as an outcome (rewarding the
policy) and as a ``click`` event on the item (updating interests and popularity), and a
purchase may follow it; that is the closed loop.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np

from .catalog import Catalog
from .config import EngineConfig, PlacementSpec, PolicySpec, PopularSpec, RandomSpec, RankerSpec, load_config
from .datasets.synthetic import World, load_world
from .engine import Engine
from .errors import ConfigError
from .ranking.stage import load_served
from .replay import latency_summary
from .schemas import Click, Outcome, Purchase, decode_event

__all__ = ["SimulationResult", "simulate", "POLICIES"]

#: baseline policies: name -> override for (recommendation, campaign) placements; None keeps the
#: configured policy
POLICIES: dict[str, tuple[PolicySpec | None, PolicySpec | None]] = {
    "engine": (None, None),
    "random": (RandomSpec(), RandomSpec()),
    "popular": (PopularSpec(), RandomSpec()),
}
#: the engine's own policies with a learned ranker (``simulate(model=...)``) re-ranking its retrieval
RANKER: Final = "ranker"


@dataclass
class PolicyResult:
    """Counts for one policy."""

    decisions: int = 0
    impressions: int = 0
    clicks: int = 0
    purchases: int = 0
    revenue: float = 0.0
    campaign_decisions: int = 0
    campaign_clicks: int = 0
    latencies_us: list[float] = field(default_factory=list)
    seconds: float = 0.0
    #: per recommendation decision, in order: the event it was made at and its clicks (every
    #: policy decides at the same events, so two policies pair decision by decision)
    decided_at: list[int] = field(default_factory=list)
    clicks_at: list[int] = field(default_factory=list)
    #: what :func:`decisioner.decisionfile.write_decisions` wrote (``simulate(decision_log=...)``)
    decision_log: dict[str, Any] | None = None

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0

    @property
    def campaign_ctr(self) -> float:
        return self.campaign_clicks / self.campaign_decisions if self.campaign_decisions else 0.0


@dataclass
class SimulationResult:
    """Per-policy results and the lift of the engine over the baselines."""

    policies: dict[str, PolicyResult]
    events: int
    people: int
    items: int
    seed: int
    #: the person of each event (pairs decisions by person for the interval)
    persons: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def to_dict(self) -> dict[str, Any]:
        ctr = {name: round(r.ctr, 6) for name, r in self.policies.items()}
        out: dict[str, Any] = {
            "events": self.events, "people": self.people, "items": self.items, "seed": self.seed,
            "ctr": ctr,
            "conversion": {
                n: round(r.purchases / r.impressions, 6) if r.impressions else 0.0 for n, r in self.policies.items()
            },
            "revenue_per_decision": {
                n: round(r.revenue / r.decisions, 4) if r.decisions else 0.0 for n, r in self.policies.items()
            },
            "campaign_ctr": {n: round(r.campaign_ctr, 6) for n, r in self.policies.items()},
            "decisions": {n: r.decisions for n, r in self.policies.items()},
            "impressions": {n: r.impressions for n, r in self.policies.items()},
            "clicks": {n: r.clicks for n, r in self.policies.items()},
        }
        ranked = self.policies.get(RANKER)
        if ranked is not None and "engine" in self.policies:
            out["ranker_vs_engine"] = paired_ctr_difference(ranked, self.policies["engine"], self.persons)
        eng = self.policies.get("engine")
        if eng is not None:
            for base in ("random", "popular"):
                b = self.policies.get(base)
                if b is not None:
                    out[f"lift_vs_{base}"] = round(eng.ctr / b.ctr, 4) if b.ctr > 0 else None
            out["latency_us"] = latency_summary(np.asarray(eng.latencies_us))
            if eng.decision_log is not None:
                out["decision_log"] = eng.decision_log
        return out


def paired_ctr_difference(a: PolicyResult, b: PolicyResult, persons: np.ndarray) -> dict[str, Any]:
    """Click-through of ``a`` minus ``b`` over the same decisions, with a 95% interval.

    Both ran over the same events with the same response draws, so decision ``j`` of each is
    at the same event: the difference is paired. Decisions of one person are correlated (the
    loop carries her state), so the standard error is cluster-robust by person: the ratio
    estimator ``sum(clicks_a - clicks_b) / impressions`` with per-person residual sums.
    """
    assert a.decided_at == b.decided_at, "two runs over the same events decide at the same events"
    diff = np.asarray(a.clicks_at, dtype=np.float64) - np.asarray(b.clicks_at, dtype=np.float64)
    n = diff.shape[0]
    imp = (a.impressions + b.impressions) / 2.0
    if n == 0 or imp == 0:
        return {"difference": 0.0, "low": 0.0, "high": 0.0, "decisions": n}
    per_decision = imp / n
    est = float(diff.sum() / imp)
    who = persons[np.asarray(a.decided_at, dtype=np.int64)]
    _, cluster = np.unique(who, return_inverse=True)
    resid = np.bincount(cluster, weights=diff - est * per_decision)
    se = float(np.sqrt(np.sum(resid * resid)) / imp)
    return {
        "difference": round(est, 6), "low": round(est - 1.96 * se, 6), "high": round(est + 1.96 * se, 6),
        "relative": round(a.ctr / b.ctr, 4) if b.ctr > 0 else None, "decisions": n,
        "people": int(cluster.max()) + 1,
    }


def _override(
    cfg: EngineConfig, rec: PolicySpec | None, camp: PolicySpec | None, model: str | None = None
) -> EngineConfig:
    placements: list[PlacementSpec] = []
    for p in cfg.placements:
        new = rec if p.kind == "recommendation" else camp
        if new is not None:  # a baseline ranks nothing
            p = msgspec.structs.replace(p, policy=new, ranker=None)
        if model is not None and p.kind == "recommendation":
            p = msgspec.structs.replace(p, ranker=RankerSpec(model=model))
        placements.append(p)
    return msgspec.structs.replace(cfg, placements=placements)


def _placement_names(cfg: EngineConfig) -> tuple[str | None, str | None]:
    rec = next((p.name for p in cfg.placements if p.kind == "recommendation"), None)
    camp = next((p.name for p in cfg.placements if p.kind == "campaign"), None)
    return rec, camp


@dataclass
class _Shared:
    """What every policy run reads: shared with forked workers copy-on-write."""

    world: World
    config: EngineConfig
    events: list[Any]
    persons: np.ndarray
    u_click: np.ndarray
    u_buy: np.ndarray
    rec_name: str | None
    camp_name: str | None
    seed: int
    model: str | None = None
    durable: str | None = None
    decision_log: str | None = None


_SHARED: _Shared | None = None


def _run_policy(name: str, progress: Callable[[str, int, int], None] | None = None) -> PolicyResult:
    sh = _SHARED
    assert sh is not None
    rec_over, camp_over = POLICIES.get(name, (None, None))
    cfg = _override(sh.config, rec_over, camp_over, sh.model if name == RANKER else None)
    engine = Engine(cfg, Catalog(sh.world.items, cfg.catalog), seed=sh.seed)
    # the engine policy's run, in a durable directory: every decision, outcome and event in its log
    log = engine.durable(sh.durable) if sh.durable is not None and name == "engine" else None
    try:
        res = _run(
            engine, sh.world, sh.events, sh.persons, sh.u_click, sh.u_buy, sh.rec_name, sh.camp_name, name, progress
        )
    finally:
        if log is not None:
            log.close()
    if sh.decision_log is not None and name == "engine":
        from .decisionfile import write_decisions

        res.decision_log = write_decisions(engine, sh.decision_log)
    return res


def simulate(
    world: str | Path | World,
    *,
    seed: int = 0,
    policies: tuple[str, ...] = ("engine", "random", "popular"),
    max_events: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    workers: int | None = None,
    model: str | Path | None = None,
    durable: str | Path | None = None,
    decision_log: str | Path | None = None,
) -> SimulationResult:
    """Run every policy closed-loop over the world's event stream.

    Parameters
    ----------
    world
        A world directory written by ``decisioner generate`` (or a loaded :class:`World`).
    seed
        Seed of the engines' draws and of the response draws.
    policies
        Names from :data:`POLICIES`.
    max_events
        Stop after this many events (all by default).
    progress
        Called as ``progress(label, done, total)`` as the run advances.
    workers
        Processes to run policies in (default: one per policy, at most one per core). Each
        policy's run is the same whichever process it runs in, so results do not depend on it.
    model
        A model directory (``decisioner train``'s ``models/NAME``): adds the policy ``ranker``,
        the engine's own with this model re-ranking the recommendation placement's top 100,
        and its click-through difference to ``engine`` with a 95% interval.
    durable
        A directory: the ``engine`` policy's engine is made durable there (a snapshot, then every
        decision, outcome and event of the run in ``events.log``), the engine log that
        ``decisioner train --log`` learns from (shown slates and their clicks). An existing
        durable directory is refused.
    decision_log
        Write the ``engine`` policy's decision log file here
        (:mod:`decisioner.decisionfile`: what ``report`` and ``evaluate`` read), rewards joined.
    """
    if model is not None:
        load_served(model)  # a bad model fails here, before any run
        if RANKER not in policies:
            policies = (*policies, RANKER)
    elif RANKER in policies:
        raise ConfigError("expected a model directory for the policy `ranker`, got none - at `model`")
    if durable is not None:
        if "engine" not in policies:
            raise ConfigError(
                f"Expected the policy `engine` with `durable`, got policies {list(policies)} - at `durable`"
            )
        d = Path(durable)
        if d.exists() and any(d.iterdir()):
            raise ConfigError(f"Expected a new or empty directory for the engine log, got {str(d)!r} - at `durable`")
    if decision_log is not None:
        if "engine" not in policies:
            raise ConfigError(
                f"expected the policy `engine` for a decision log, got {list(policies)!r} - at `policies`"
            )
        if not Path(decision_log).absolute().parent.is_dir():
            raise ConfigError(f"expected a decision log path in an existing directory, got {str(decision_log)!r} "
                              "- at `decision_log`")
    global _SHARED
    w = world if isinstance(world, World) else load_world(world)
    base_cfg = load_config(w.config_path) if w.config_path is not None else _config_of(w)
    rec_name, camp_name = _placement_names(base_cfg)
    events = w.events if max_events is None else w.events[:max_events]
    decoded = [decode_event(e) for e in events]
    persons = np.asarray(w.event_person[: len(decoded)], dtype=np.int64)
    rec_slots = next((p.slots for p in base_cfg.placements if p.name == rec_name), 1)
    rng = np.random.default_rng(seed)
    u_click = rng.random((len(decoded), rec_slots))
    u_buy = rng.random((len(decoded), rec_slots))
    _SHARED = _Shared(
        w, base_cfg, decoded, persons, u_click, u_buy, rec_name, camp_name, seed,
        None if model is None else str(model), None if durable is None else str(durable),
        None if decision_log is None else str(decision_log),
    )
    gc.collect()
    gc.freeze()  # the loaded world is long-lived: keep it out of every later collection
    try:
        if workers is None:
            workers = min(len(policies), os.cpu_count() or 1)
        results: dict[str, PolicyResult] = {}
        if workers > 1 and "fork" in mp.get_all_start_methods():
            done = 0
            if progress is not None:
                progress("policies", 0, len(policies))
            with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork")) as ex:
                futures = {name: ex.submit(_run_policy, name) for name in policies}
                for name in policies:
                    results[name] = futures[name].result()
                    done += 1
                    if progress is not None:
                        progress("policies", done, len(policies))
        else:
            for name in policies:
                results[name] = _run_policy(name, progress)
    finally:
        _SHARED = None
        gc.unfreeze()
    return SimulationResult(results, len(decoded), int(w.spec.n_people), len(w.items), seed, persons)


def _config_of(w: World) -> EngineConfig:
    from .config import load_config_dict

    return load_config_dict(w.config)


def _run(
    engine: Engine, w: World, events: list[Any], persons: np.ndarray, u_click: np.ndarray,
    u_buy: np.ndarray, rec_name: str | None, camp_name: str | None, label: str,
    progress: Callable[[str, int, int], None] | None,
) -> PolicyResult:
    res = PolicyResult()
    response = w.response
    index = engine.catalog.index
    camp_index = {}
    if camp_name is not None:
        camp_index = {c: j for j, c in enumerate(engine.placement(camp_name).contents)}
    total = len(events)
    t_start = time.perf_counter()
    perf = time.perf_counter_ns
    for j, ev in enumerate(events):
        etype = ev.__struct_config__.tag
        if etype == "view" and rec_name is not None:
            t0 = perf()
            d = engine.decide(ev, placement=rec_name)
            res.latencies_us.append((perf() - t0) / 1000.0)
            res.decisions += 1
            k = len(d.slots)
            res.impressions += k
            res.decided_at.append(j)
            if k == 0:
                res.clicks_at.append(0)
                continue
            person = int(persons[j])
            items = np.array([index[s.content] for s in d.slots], dtype=np.int64)
            p_click = response.click_prob(person, items, np.arange(k))
            clicked = np.flatnonzero(u_click[j, :k] < p_click)
            res.clicks_at.append(int(clicked.shape[0]))
            if clicked.shape[0]:
                p_buy = response.purchase_prob(person, items[clicked])
                for c, pb in zip(clicked, p_buy):
                    content = d.slots[int(c)].content
                    res.clicks += 1
                    engine.observe(Outcome(decision_id=d.decision_id, kind="click", time=ev.time + 1, content=content))
                    engine.track(Click(time=ev.time + 1, ids=ev.ids, channel=ev.channel, item=content))
                    if u_buy[j, int(c)] < pb:
                        price = float(engine.catalog.price[index[content]])
                        value = price if np.isfinite(price) else 0.0
                        res.purchases += 1
                        res.revenue += value
                        engine.observe(Outcome(
                            decision_id=d.decision_id, kind="conversion", time=ev.time + 2, content=content, value=value
                        ))
                        engine.track(
                            Purchase(time=ev.time + 2, ids=ev.ids, channel=ev.channel, item=content, value=value)
                        )
        elif etype == "email_open" and camp_name is not None:
            d = engine.decide(ev, placement=camp_name)
            res.campaign_decisions += 1
            if d.slots:
                exp = camp_index[d.slots[0].content]
                if u_click[j, 0] < response.experience_click_prob(int(persons[j]), exp):
                    res.campaign_clicks += 1
                    engine.observe(Outcome(
                        decision_id=d.decision_id, kind="click", time=ev.time + 1, content=d.slots[0].content
                    ))
        else:
            engine.track(ev)
        if progress is not None and (j % 5000 == 0 or j == total - 1):
            progress(label, j + 1, total)
    res.seconds = time.perf_counter() - t_start
    return res
