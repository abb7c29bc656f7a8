"""Segments: a three-clause segment (attribute, recency, affinity) and a breakdown by region
over millions of profiles, and what a segment check adds to ``Engine.decide``.

The bulk benchmarks build the stores' arrays directly at ``DECISIONER_BENCH_SEGMENT_PROFILES``
profiles (default 5,000,000; 20,000 under ``--benchmark-disable``): a category ``region`` (40
values), a number ``ltv``, one counted event type with 4 day buckets, and 8 affinity slots over
the category facet. The decide benchmarks use :func:`decisioner.bench.build_engine` (at most
100,000 profiles) with the same ``home`` placement, with and without ``segment = "target"``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from decisioner.activity import ActivityStore
from decisioner.attributes import AttributeStore
from decisioner.bench import BenchState, build_engine
from decisioner.catalog import Catalog
from decisioner.config import ActivitySpec, AttributeSpec, ConsentSpec, ProfileSpec
from decisioner.consent.store import ConsentStore
from decisioner.profiles import ProfileStore, half_lives
from decisioner.segments.audiences import audience
from decisioner.segments.compile import Sources, compile_segment

DAY = 86_400_000
NOW = 1_700_000_000_000
ROUNDS = 3_000
THREE = 'region in ["r01", "r02", "r03", "r04"] and days_since("purchase") <= 2 and affinity("category", "c1") >= 0.3'


@functools.lru_cache(maxsize=1)
def _world(n: int) -> tuple[Sources, np.ndarray]:
    rng = np.random.default_rng(7)
    cat = Catalog([{"id": f"i{j}", "category": f"c{j % 10}"} for j in range(100)])
    hl = half_lives(ProfileSpec(), cat)
    attrs = AttributeStore({"region": AttributeSpec(type="category"), "ltv": AttributeSpec(type="number")},
                           capacity=n)
    for k in range(40):
        attrs.set(0, attrs.check({"region": f"r{k:02d}"}), source="crm", time=NOW)  # the vocabulary
    attrs.arrays_["region/value"][:] = rng.integers(-1, 40, size=n, dtype=np.int32)
    attrs.arrays_["ltv/value"][:] = rng.random(n) * 1000
    attrs.arrays_["ltv/source"][:] = 0
    act = ActivityStore(ActivitySpec(types=("purchase",), buckets=4), capacity=n)
    last = NOW - rng.integers(0, 10 * DAY, size=n)
    last[rng.random(n) < 0.3] = 0
    act.last_[:, 0] = last
    prof = ProfileStore(slots=8, capacity=n)
    prof.fid_[:] = rng.integers(-1, cat.n_fv, size=(n, 8), dtype=np.int32)
    prof.score_[:] = rng.random((n, 8), dtype=np.float32)
    prof.t_[:] = NOW - rng.integers(0, 5 * DAY, size=n)
    consent = ConsentStore(ConsentSpec(), capacity=n)
    person = np.arange(n, dtype=np.int64)
    return Sources(attrs, act, consent, prof, cat, hl), person


@pytest.fixture(scope="module")
def world(smoke: bool) -> tuple[Sources, np.ndarray]:
    n = 20_000 if smoke else int(os.environ.get("DECISIONER_BENCH_SEGMENT_PROFILES", "5000000"))
    return _world(n)


@pytest.mark.benchmark(group="segments-bulk")
def test_three_clause_segment_over_every_profile(benchmark: Any, world: tuple[Sources, np.ndarray]) -> None:
    """Size of an attribute + recency + affinity segment over every profile (one core)."""
    src, person = world
    seg = compile_segment(THREE, src)
    out = benchmark.pedantic(audience, args=(src, seg, person, person.shape[0]), kwargs={"now": NOW},
                             rounds=5, iterations=1, warmup_rounds=1)
    assert 0 < out["size"] < out["profiles"] == person.shape[0]


@pytest.mark.benchmark(group="segments-bulk")
def test_breakdown_by_region_over_every_profile(benchmark: Any, world: tuple[Sources, np.ndarray]) -> None:
    """Members of a one-clause segment (most profiles) counted by region."""
    src, person = world
    seg = compile_segment("ltv >= 100", src)
    out = benchmark.pedantic(audience, args=(src, seg, person, person.shape[0]), kwargs={"now": NOW, "by": "region"},
                             rounds=5, iterations=1, warmup_rounds=1)
    assert sum(out["breakdown"].values()) == out["size"] > 0.8 * out["profiles"]


@functools.lru_cache(maxsize=2)
def _engine(profiles: int, items: int, targeted: bool) -> BenchState:
    home: dict[str, Any] = {"name": "home", "kind": "recommendation", "slots": 4,
                            "policy": {"kind": "epsilon_greedy", "epsilon": 0.1, "pool": 50}}
    if targeted:
        home["segment"] = "target"
    options = {
        "attributes": {"ltv": {"type": "number"}},
        "activity": {"types": ["view", "purchase"]},
        # three clauses, every one read; everyone is a member (the decision is the same work)
        "segments": {"target": 'ltv >= 0 or days_since("view") <= 3650 or affinity("category", "cat-01") >= 0.0'},
        "placements": [home],
    }
    return build_engine(profiles, items, seed=3, options=options)


@pytest.mark.benchmark(group="segments-decide")
@pytest.mark.parametrize("targeted", [False, True], ids=["plain", "segment"])
def test_decide_with_a_segment_check(
    benchmark: Any, sizes: tuple[int, int], record_latency: Callable[[], None], targeted: bool
) -> None:
    """``home`` decisions, beside the same placement targeting a three-clause segment."""
    st = _engine(min(sizes[0], 100_000), sizes[1], targeted)
    it = iter([dict(r) for r in st.requests(ROUNDS + 1, seed=4)])

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (next(it),), {"placement": "home"}

    d = benchmark.pedantic(st.engine.decide, setup=setup, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    record_latency()
    assert len(d.slots) == 4
    assert any(r.kind == "segment" for r in d.reasons) == targeted
