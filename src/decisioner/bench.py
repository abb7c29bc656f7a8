"""Synthetic engine at scale and its decision-latency benchmark (``decisioner bench``).

:func:`build_engine` populates an :class:`~decisioner.engine.Engine` with ``profiles`` people
(a cookie and an email each, linked in the identity graph under a fresh random secret) and
``items`` catalog items, from bulk arrays rather than per-event Python, so a million profiles
take seconds. :func:`run_bench` then replays view events of known people through
``Engine.decide`` and reports latency percentiles (:func:`~decisioner.replay.latency_summary`),
throughput and memory by component (:func:`memory_report`).

Identifiers are hashed with the real keyed format (:func:`~decisioner.hashing.hash_identifier`),
so ``engine.decide({"ids": {"cookie": state.cookie(i)}, ...})`` finds profile ``i``.
"""

from __future__ import annotations

import gc
import math
import os
import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from .catalog import Catalog
from .config import DAY_MS, load_config_dict
from .engine import Engine
from .errors import ConfigError
from .hashing import hash_identifier
from .identity.normalise import normalise
from .replay import latency_summary

__all__ = ["BenchState", "synthetic_catalog", "build_engine", "run_bench", "memory_report", "deep_size"]

#: epoch ms of the first benchmark request (2024-01-01T00:00:00Z); profiles were last active
#: during the 30 days before it
START_MS: Final = 1_704_067_200_000

_COLOURS: Final = (
    "black", "white", "grey", "navy", "blue", "red", "green", "beige", "brown", "pink",
    "yellow", "purple",
)
_N_CATEGORIES: Final = 30
_N_BRANDS: Final = 300
_N_TAGS: Final = 100


def _zipf_p(n: int, s: float) -> np.ndarray:
    """Zipf-like probabilities over ``n`` values (a few popular, a long tail)."""
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** s
    p: np.ndarray = w / w.sum()
    return p


def _coprime_strides(n: int) -> np.ndarray:
    """Strides ``b`` in [1, n) with gcd(b, n) = 1: ``(a + j * b) % n`` for ``j < n`` are
    distinct, which draws distinct values per row without a per-row Python loop."""
    if n <= 1:
        return np.ones(1, dtype=np.int64)
    b = np.arange(1, n, dtype=np.int64)
    out: np.ndarray = b[np.gcd(b, n) == 1]
    return out


def synthetic_catalog(n_items: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n_items`` retail items with realistic facets, reproducible from ``seed``.

    ``category`` (30 values, Zipf-skewed), ``brand`` (300, Zipf), ``colour`` (12), ``tags`` (1-3
    distinct of 100), a lognormal ``price`` (median about 30) and ``inventory`` (about 3% out
    of stock). Generated with vectorised NumPy; only the final records are Python dicts.

    Examples
    --------
    >>> items = synthetic_catalog(3, seed=1)
    >>> len(items), sorted(items[0])
    (3, ['brand', 'category', 'colour', 'id', 'inventory', 'price', 'tags'])
    >>> items == synthetic_catalog(3, seed=1)
    True
    """
    rng = np.random.default_rng(seed)
    n = n_items
    category = rng.choice(_N_CATEGORIES, size=n, p=_zipf_p(_N_CATEGORIES, 0.8))
    brand = rng.choice(_N_BRANDS, size=n, p=_zipf_p(_N_BRANDS, 1.0))
    colour = rng.choice(len(_COLOURS), size=n, p=_zipf_p(len(_COLOURS), 0.7))
    n_tags = rng.integers(1, 4, size=n)
    tag0 = rng.choice(_N_TAGS, size=n, p=_zipf_p(_N_TAGS, 0.9))
    strides = _coprime_strides(_N_TAGS)
    step = strides[rng.integers(0, strides.shape[0], size=n)]
    tags = (tag0[:, None] + np.arange(3)[None, :] * step[:, None]) % _N_TAGS
    price = np.maximum(np.round(rng.lognormal(mean=3.4, sigma=0.9, size=n), 2), 0.5)
    inventory = np.where(rng.random(n) < 0.03, 0, rng.geometric(1.0 / 40.0, size=n))
    return [
        {
            "id": f"sku-{i:07d}",
            "category": f"cat-{c:02d}",
            "brand": f"brand-{b:03d}",
            "colour": _COLOURS[co],
            "tags": [f"tag-{t:02d}" for t in tg[:k]],
            "price": p,
            "inventory": inv,
        }
        for i, c, b, co, tg, k, p, inv in zip(
            range(n), category.tolist(), brand.tolist(), colour.tolist(), tags.tolist(),
            n_tags.tolist(), price.tolist(), inventory.tolist(),
        )
    ]


@dataclass
class BenchState:
    """A populated engine and what is needed to form requests for its people.

    Person ``i`` (``0 <= i < people``) owns profile row ``rows[i]`` and the identifiers
    :meth:`cookie` and :meth:`email`. ``now`` is the event time (ms) of the next request; it only
    moves forward, so successive requests arrive in time order.
    """

    engine: Engine
    people: int
    items: int
    seed: int
    rows: np.ndarray
    build_s: float
    now: int = START_MS
    build_rss_mb: float = 0.0
    #: requests carry attributes and, every 50th, a consent change (:func:`with_consent_and_attributes`)
    profiled: bool = False

    def cookie(self, person: int) -> str:
        """The cookie id of person ``person``."""
        return f"ck-{self.seed:x}-{person:08x}"

    def email(self, person: int) -> str:
        """The email address of person ``person`` (already in normalised form)."""
        return f"p{person}@s{self.seed}.bench.example"

    def requests(self, n: int, *, seed: int = 0) -> list[dict[str, Any]]:
        """``n`` view events of random items by random known people (by cookie), times
        increasing from :attr:`now` in steps of 1-100 ms; advances :attr:`now` past the last one.
        The draw depends on ``seed``, the build seed and :attr:`now`."""
        rng = np.random.default_rng([self.seed, seed, self.now])
        people = rng.integers(0, self.people, size=n).tolist()
        items = rng.integers(0, self.items, size=n).tolist()
        times = (self.now + np.cumsum(rng.integers(1, 101, size=n))).tolist()
        if n:
            self.now = int(times[-1]) + 1
        ids = self.engine.catalog.ids
        reqs: list[dict[str, Any]] = [
            {"type": "view", "time": t, "ids": {"cookie": self.cookie(p)}, "item": ids[i]}
            for p, i, t in zip(people, items, times)
        ]
        if self.profiled:
            for j, (r, p) in enumerate(zip(reqs, people)):
                # a person's tier is mostly one value (most frequent), now and then another
                r["attrs"] = {"region": _REGIONS[p % len(_REGIONS)], "ltv": float(p % 500),
                              "tier": _TIERS[(p + (j % 7 == 0)) % 3]}
                if j % 50 == 0:
                    r["consent"] = {"marketing.email": j % 100 == 0}
        return reqs

    def newcomers(self, n: int, *, seed: int = 0) -> list[dict[str, Any]]:
        """``n`` view events by people never seen before (a fresh cookie each), times
        increasing from :attr:`now` like :meth:`requests`."""
        reqs = self.requests(n, seed=seed)
        for j, r in enumerate(reqs):
            r["ids"] = {"cookie": f"new-{self.seed:x}-{seed:x}-{r['time']:x}-{j:x}"}
        return reqs


_REGIONS: Final = ("north", "south", "east", "west", "centre")
_TIERS: Final = ("bronze", "silver", "gold")
#: the attributes a bench with consent and attributes on declares (one per rule family)
BENCH_ATTRIBUTES: Final[dict[str, Any]] = {
    "region": {"type": "category", "rule": "most_recent"},
    "ltv": {"type": "number", "rule": "sum"},
    "tier": {"type": "category", "rule": "most_frequent"},
}


def with_consent_and_attributes(state: BenchState, *, refused: float = 0.1) -> BenchState:
    """Turn on what consent and attributes cost: every ``1/refused``-th person refuses analytics
    on the web (their decisions keep no log row), and requests carry three declared attributes
    and, every 50th, a consent change. Build ``state`` with ``options={"attributes":
    BENCH_ATTRIBUTES}``."""
    from .consent.store import CHANNEL, PURPOSE, cell

    bit = np.uint64(1 << cell(PURPOSE["analytics"], CHANNEL["web"]))
    rows = state.rows[:: max(1, round(1 / refused))] if refused > 0 else state.rows[:0]
    state.engine.tracker.sync_rows()
    state.engine.consent.allow_[rows] &= ~bit
    state.profiled = True
    return state


def _rss_mb() -> float:
    """Resident set size of this process in MiB (current on Linux, peak elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _keys(key: bytes, id_type: str, values: list[str]) -> np.ndarray:
    """:func:`~decisioner.hashing.hash_identifier` of already-normalised ``values``, in bulk
    (keys without check tags: a pre-hashed load)."""
    return np.fromiter((hash_identifier(key, id_type, v) for v in values), dtype=np.uint64, count=len(values))


def placements(ranker: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The bench's placements: ``home`` (recommendation, 4 slots, epsilon-greedy 0.1 over a
    pool of 50; with ``ranker``, e.g. ``{"model": DIR, "retrieve": 1000}``, a learned ranker
    re-ranks its retrieval) and ``hero`` (campaign, Thompson sampling over 5 experiences)."""
    home: dict[str, Any] = {"name": "home", "kind": "recommendation", "slots": 4,
                            "policy": {"kind": "epsilon_greedy", "epsilon": 0.1, "pool": 50}}
    if ranker is not None:
        home["ranker"] = dict(ranker)
    return [home, {"name": "hero", "kind": "campaign", "policy": {"kind": "thompson"},
                   "experiences": [{"id": f"hero-{k}"} for k in range(5)]}]


def build_engine(
    profiles: int, items: int, *, seed: int = 0, slots: int = 24, max_profiles: int | None = None,
    options: Mapping[str, Any] | None = None,
) -> BenchState:
    """An engine with ``profiles`` known people and ``items`` catalog items, built in bulk.

    Placements: :func:`placements` (``options={"placements": placements(ranker)}`` adds a
    learned ranker). The hashing secret is drawn with
    :func:`secrets.token_hex` for every build. Every person has a cookie and an email linked
    into one profile, ``slots`` distinct interests with positive scores decayed to a time in the
    30 days before :data:`START_MS`, 0-3 recent purchases, and every item a popularity count.

    Parameters
    ----------
    profiles
        Number of people (profiles), >= 1.
    items
        Number of catalog items, >= 1.
    seed
        Seed of the synthetic data and of the engine's decisions.
    slots
        Affinity slots per profile.
    max_profiles
        The engine's profile capacity (``profiles.max_profiles``); default ``profiles``, so the
        built state is full and every new person evicts (in batches of 1%).
    options
        More configuration: sections merged into the bench's (a table key by key, anything else
        replaced), e.g. ``{"decision_log": {"max_rows": 100_000}, "limits": {...}}``.

    Returns
    -------
    BenchState
        The engine, the person -> row map and the build time.

    Raises
    ------
    ConfigError
        If ``profiles`` or ``items`` is below 1.

    Examples
    --------
    >>> st = build_engine(50, 20, seed=1)
    >>> st.engine.profile_row({"email": st.email(7)}) == int(st.rows[7])
    True
    """
    if profiles < 1 or items < 1:
        raise ConfigError(f"Expected `profiles` and `items` >= 1, got {profiles} and {items}")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    doc: dict[str, Any] = {
        "identity": {"hash_key": secrets.token_hex(16)},
        "profiles": {"slots": slots, "max_profiles": profiles if max_profiles is None else max_profiles},
        "placements": placements(),
    }
    for section, value in (options or {}).items():
        base = doc.get(section)
        doc[section] = {**base, **value} if isinstance(base, dict) and isinstance(value, Mapping) else value
    cfg = load_config_dict(doc)
    engine = Engine(cfg, Catalog(synthetic_catalog(items, seed)), seed=seed)
    state = BenchState(
        engine=engine, people=profiles, items=items, seed=seed, rows=np.empty(0, np.int32),
        build_s=0.0,
    )

    # identity: one group (cookie, email) per person, linked in one kernel call
    graph = engine.identity
    cookies = _keys(graph.key, "cookie", [state.cookie(i) for i in range(profiles)])
    emails = _keys(graph.key, "email", [state.email(i) for i in range(profiles)])
    # the bulk path must produce the keys the request path computes (normalising changes nothing)
    if int(cookies[0]) != hash_identifier(graph.key, "cookie", normalise("cookie", state.cookie(0))) or int(
        emails[0]
    ) != hash_identifier(graph.key, "email", normalise("email", state.email(0))):
        raise RuntimeError("bulk identifier keys differ from `hash_identifier`: update `bench._keys`")
    keys = np.empty(2 * profiles, dtype=np.uint64)
    keys[0::2] = cookies
    keys[1::2] = emails
    del cookies, emails
    types = np.empty(2 * profiles, dtype=np.int8)
    types[0::2] = graph.type_code("cookie")
    types[1::2] = graph.type_code("email")
    offsets = np.arange(0, 2 * profiles + 1, 2, dtype=np.int64)
    rows = graph.link_many(keys, types, offsets)
    del keys, types, offsets

    # profiles: distinct random interests with positive scores, times and activity
    store = engine.profiles
    engine.tracker.sync_rows()  # every row-keyed store (profiles, consent, people ...) holds the new rows
    n_fv = engine.catalog.n_fv
    k = min(slots, n_fv)
    if k > 0:
        strides = _coprime_strides(n_fv)
        first = rng.integers(0, n_fv, size=profiles, dtype=np.int64)
        step = strides[rng.integers(0, strides.shape[0], size=profiles)]
        fid = (first[:, None] + np.arange(k, dtype=np.int64)[None, :] * step[:, None]) % n_fv
        store.fid_[rows, :k] = fid.astype(np.int32)
        del fid, first, step
        store.score_[rows, :k] = rng.lognormal(0.0, 1.0, size=(profiles, k)).astype(np.float32) + np.float32(1e-3)
    t_last = START_MS - rng.integers(0, 30 * DAY_MS, size=profiles, dtype=np.int64)
    store.t_[rows] = t_last
    store.last_seen_[rows] = t_last
    store.events_[rows] = rng.integers(1, 200, size=profiles, dtype=np.int64)
    if store.purchased_slots:
        n_bought = np.minimum(rng.integers(0, 4, size=profiles), store.purchased_slots)
        bought = rng.integers(0, items, size=(profiles, min(3, store.purchased_slots)), dtype=np.int32)
        bought[np.arange(bought.shape[1])[None, :] >= n_bought[:, None]] = -1
        store.purchased_[rows, : bought.shape[1]] = bought
        store.purchased_pos_[rows] = n_bought.astype(np.int32) % store.purchased_slots

    # popularity: heavy-tailed decayed counts as of the first request
    pop = engine.scorer.popularity_
    pop.acc_[:] = rng.pareto(1.2, size=items) * 10.0
    pop.t_ref_ = START_MS
    pop.max_ = float(pop.acc_.max())
    engine.scorer.add_popularity(0, 0.0, START_MS)  # a no-op count that invalidates the cached prior

    state.rows = rows
    state.build_s = time.perf_counter() - t0
    state.build_rss_mb = _rss_mb()
    return state


def deep_size(obj: Any) -> int:
    """Bytes held by ``obj`` and everything it references: NumPy arrays by ``nbytes`` plus their
    header, Python objects by :func:`sys.getsizeof` (dicts, lists, tuples, sets and objects'
    attributes followed; each object counted once). An estimate of the Python overhead of
    containers, exact for arrays."""
    seen: set[int] = set()
    stack = [obj]
    total = 0
    while stack:
        o = stack.pop()
        if id(o) in seen or o is None or isinstance(o, type):
            continue
        seen.add(id(o))
        if isinstance(o, np.ndarray):
            total += o.nbytes + _ARRAY_HEADER
            continue
        total += sys.getsizeof(o)
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset)):
            stack.extend(o)
        elif hasattr(o, "__dict__"):
            stack.append(vars(o))
    return total


_ARRAY_HEADER: Final = sys.getsizeof(np.empty(0))


def memory_report(engine: Engine) -> dict[str, Any]:
    """Memory held by each component of ``engine``, in bytes: allocated arrays (spare capacity
    included) plus the Python objects of dict-based stores (:func:`deep_size`).

    Returns
    -------
    dict
        ``components`` (``identity`` (tombstones included), ``profiles``, ``people``,
        ``experiments`` (assignments and exposures), ``decision_log`` (the chunks in memory),
        ``pending_outcomes``, ``placements`` (click-through terms and policy statistics),
        ``popularity``, ``catalog``), ``total_bytes`` (their sum), ``tombstones`` and
        ``tombstone_bytes`` (count and bytes, part of ``identity``), ``decision_log`` (the
        window: :meth:`~decisioner.decisionlog.DecisionLog.metrics`) and ``pending_outcomes``
        (entries held).

    Examples
    --------
    >>> st = build_engine(20, 10, seed=1)
    >>> rep = memory_report(st.engine)
    >>> rep["total_bytes"] == sum(rep["components"].values()), rep["tombstones"]
    (True, 0)
    """
    store = engine.profiles
    people = engine.people
    exps = engine.experiments_
    log = engine.decision_log
    tombs, tomb_bytes = engine.identity.tombstone_bytes()
    components = {
        "identity": engine.identity.nbytes(),
        "profiles": int(sum(getattr(store, n).nbytes for n in store._ARRAYS)),
        "people": people.person_.nbytes + deep_size(people._alias),
        "experiments": exps.assign_.nbytes + exps.holdout_.nbytes + exps.exposures.nbytes(),
        "decision_log": log.nbytes(),
        "pending_outcomes": deep_size(engine.pending_),
        "placements": deep_size(engine.placements_.to_state()),
        "popularity": deep_size(engine.scorer.to_state()),
        "catalog": deep_size(engine.catalog),
        "activity": engine.activity_.nbytes(),
    }
    components = {k: int(v) for k, v in components.items()}
    return {
        "components": components,
        "total_bytes": sum(components.values()),
        "tombstones": tombs,
        "tombstone_bytes": round(tomb_bytes),
        "decision_log": log.metrics(),
        "pending_outcomes": len(engine.pending_),
    }


def _memory(state: BenchState) -> dict[str, Any]:
    eng = state.engine
    rep = memory_report(eng)
    profile_bytes = rep["components"]["profiles"]
    identity_bytes = rep["components"]["identity"]
    return {
        # allocated bytes (growth by doubling included) per live profile / identifier
        "bytes_per_profile": round(profile_bytes / max(eng.identity.n_profiles, 1), 1),
        "bytes_per_identifier": round(identity_bytes / max(eng.identity.n_nodes, 1), 1),
        "identity_bytes": int(identity_bytes),
        "live_profiles": eng.identity.n_profiles,
        "max_profiles": eng.config.profiles.max_profiles,
        "evicted": eng.evicted_,
        "profile_bytes": int(profile_bytes),
        "rss_mb": round(_rss_mb(), 1),
        "components": rep["components"],
        "total_bytes": rep["total_bytes"],
        "tombstones": rep["tombstones"],
        "tombstone_bytes": rep["tombstone_bytes"],
        "decision_log_rows": rep["decision_log"]["rows"],
        "decision_log_dropped_rows": rep["decision_log"]["dropped_rows"],
        "pending_outcomes": rep["pending_outcomes"],
    }


def _timed(decide: Any, reqs: list[dict[str, Any]], placement: str) -> tuple[np.ndarray, float]:
    """Latency (µs) of each ``decide`` after the first 1% (warm-up), and the measured wall time."""
    n = len(reqs)
    lat = np.empty(n, dtype=np.int64)
    warm = min(n // 100, n - 1)
    clock = time.perf_counter_ns
    gc.collect()
    t_measured = 0
    for j, req in enumerate(reqs):
        if j == warm:
            t_measured = clock()
        t0 = clock()
        decide(req, placement=placement)
        lat[j] = clock() - t0
    return lat[warm:] / 1000.0, (clock() - t_measured) / 1e9


def run_bench(
    state: BenchState, *, n_decisions: int = 20_000, seed: int = 0, placement: str = "home",
    churn: int = 0,
) -> dict[str, Any]:
    """Time ``n_decisions`` calls of ``engine.decide`` for random known people.

    Each request is a ``view`` of a random item by a random person's cookie, with increasing
    event times; requests are built before timing so only ``decide`` is measured
    (``time.perf_counter_ns`` around each call). The first 1% are discarded as warm-up.

    Parameters
    ----------
    state
        From :func:`build_engine`; its engine is changed by the decisions.
    n_decisions
        Number of decisions, >= 1.
    seed
        Seed of the choice of people and items.
    placement
        ``"home"`` (recommendation) or ``"hero"`` (campaign).
    churn
        Then time this many decisions for people never seen before: each adds a profile, so at
        capacity the longest idle profiles are evicted (the batch pauses show in the tail).

    Returns
    -------
    dict
        ``profiles``, ``items``, ``decisions`` (measured), ``events_per_s``, ``latency_us``
        (:func:`~decisioner.replay.latency_summary`), ``memory`` (``bytes_per_profile`` and
        ``bytes_per_identifier``: allocated bytes per live profile / identifier;
        ``identity_bytes``, ``profile_bytes``, ``live_profiles``, ``max_profiles``, ``evicted``,
        ``rss_mb``; from :func:`memory_report`: ``components`` (bytes by component),
        ``total_bytes``, ``tombstones``, ``tombstone_bytes``, ``decision_log_rows``,
        ``decision_log_dropped_rows``, ``pending_outcomes``), ``build_s`` and, with ``churn``,
        ``churn`` (``decisions``, ``latency_us``, ``evicted`` and ``memory`` after it).

    Raises
    ------
    ConfigError
        If ``n_decisions`` is below 1.
    UnknownPlacementError
        If ``placement`` is not configured.
    """
    if n_decisions < 1:
        raise ConfigError(f"Expected `n_decisions` >= 1, got {n_decisions}")
    engine = state.engine
    engine.placement(placement)  # an unknown placement fails here, before anything changes
    if churn < 0:
        raise ConfigError(f"Expected `churn` >= 0, got {churn}")
    measured, wall_s = _timed(engine.decide, state.requests(n_decisions, seed=seed), placement)
    report = {
        "profiles": state.people,
        "items": state.items,
        "decisions": int(measured.shape[0]),
        "events_per_s": round(measured.shape[0] / wall_s, 1) if wall_s > 0 else math.inf,
        "latency_us": latency_summary(measured),
        "memory": _memory(state),
        "build_s": round(state.build_s, 3),
    }
    if churn:
        before = engine.evicted_
        lat_new, _ = _timed(engine.decide, state.newcomers(churn, seed=seed), placement)
        report["churn"] = {
            "decisions": int(lat_new.shape[0]),
            "latency_us": latency_summary(lat_new),
            "evicted": engine.evicted_ - before,
            "memory": _memory(state),
        }
    return report
