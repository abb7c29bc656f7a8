"""The fused decide kernel (``_kernels/decide.py``) against today's composition of kernels, same
run, one group.

Workload: a 10,000-item catalog with five facets (20 categories, 200 brands, 10 price bands, 50
tags, 8 colours: one value each), one profile whose 24 slots are all live, popularity counts on
every item, an epsilon-greedy 4-slot placement (pool 50, the engine's ``home``). Each round is
one decision for a view event (three facet values gain interest):

* ``fused``: ``decide_slate`` alone (plus the caller's scalar ``1 / max`` count);
* ``today_kernels``: the kernels it replaces on the scoring path, composed as the engine does:
  the normalised prior (``acc / max``, renewed on every event because popularity changed),
  ``score_items``, ``top_k`` and ``rank_slate`` (``SlatePolicy.select``);
* ``today_engine``: all of today's steps, also ``affinity_update``, ``affinity_read``, the
  share normalisation and the click-through refresh (what ``decide_slate`` does in full).

The state carries over between rounds (trials, affinities), as in a service. Before timing,
one decision on cloned state asserts that the fused kernel and today's full composition choose
the same slate with the same propensities, bit for bit.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import numpy as np
import pytest

from decisioner._kernels import affinity as A
from decisioner._kernels import decide as D
from decisioner._kernels.rng import seed_state
from decisioner.allocation.slate import SlatePolicy
from decisioner.config import EpsilonGreedySpec

N_ITEMS = 10_000
FACETS = (20, 200, 10, 50, 8)
K, SLOTS, POOL, EPSILON = 24, 4, 50, 0.1
AFF_W, PRIOR_W, FEEDBACK_W, PRIOR_CLICKS, PRIOR_TRIALS = 1.0, 0.3, 0.3, 1.0, 20.0
NOW = 1_700_000_000_000
GROUP = "decide-kernel"


@functools.lru_cache(maxsize=1)
def base_world() -> dict[str, Any]:
    """The shared, read-only-by-convention world (each benchmark deep-copies it)."""
    g = np.random.default_rng(0)
    offsets = np.cumsum((0, *FACETS[:-1]))
    values = np.stack([off + g.integers(0, c, N_ITEMS) for off, c in zip(offsets, FACETS)], axis=1)
    n_fv = int(sum(FACETS))
    fv_of = values.ravel().astype(np.int32)
    np.repeat(np.arange(N_ITEMS, dtype=np.int32), len(FACETS))
    order = np.argsort(fv_of, kind="stable")
    fv_indptr = np.zeros(n_fv + 1, np.int64)
    np.cumsum(np.bincount(fv_of, minlength=n_fv), out=fv_indptr[1:])
    fv_data = g.uniform(0.5, 1.0, fv_of.shape[0]).astype(np.float32)
    fid = np.full((2, K), -1, np.int32)
    score = np.zeros((2, K), np.float32)
    fid[0] = g.choice(n_fv, K, replace=False)
    score[0] = g.uniform(0.1, 5.0, K).astype(np.float32)
    t = np.array([NOW, 0], np.int64)
    acc = g.exponential(5.0, N_ITEMS)
    mask = (g.random(N_ITEMS) > 0.05).astype(np.uint8)
    boost = np.zeros(N_ITEMS)
    trials = np.zeros(N_ITEMS)
    clicks = np.zeros(N_ITEMS)
    extra = boost + FEEDBACK_W * (PRIOR_CLICKS / PRIOR_TRIALS)
    return {
        "prof": (fid, score, t, np.full((2, 8), -1, np.int32)),
        "cat": (fv_indptr, fv_of[order], fv_data[order]),
        "hl": np.full(n_fv, 30 * 86_400_000.0), "acc": acc,
        "plc": (mask, extra, boost, trials, clicks), "item_fvs": values.astype(np.int32),
    }


def world() -> dict[str, Any]:
    w = copy.deepcopy(base_world())
    params = np.zeros(D.N_PARAMS)
    params[[D.P_AFFINITY_W, D.P_PRIOR_W, D.P_FEEDBACK_W]] = AFF_W, PRIOR_W, FEEDBACK_W
    params[[D.P_PRIOR_CLICKS, D.P_PRIOR_TRIALS, D.P_EXCLUDE_PURCHASED]] = PRIOR_CLICKS, PRIOR_TRIALS, 1.0
    params[[D.P_MODE, D.P_PARAM, D.P_POOL, D.P_SLOTS]] = D.MODE_EPSILON, EPSILON, POOL, SLOTS
    w["max"] = float(w["acc"].max())  # Popularity keeps the largest count as it counts
    params[D.P_INV_MAX] = 1.0 / w["max"]
    w["params"] = params
    w["policy"] = SlatePolicy(EpsilonGreedySpec(epsilon=EPSILON, pool=POOL))
    w["state"] = seed_state(7)
    w["work"], w["out"], w["counts"] = D.new_work(N_ITEMS, K), D.new_out(SLOTS), np.zeros(D.N_COUNTS, np.int64)
    w["step"] = 0
    return w


def _event(w: dict[str, Any]) -> tuple[int, np.ndarray, np.ndarray]:
    """The next view: its time, its item's first three facet values and their weights."""
    w["step"] += 1
    fvs = w["item_fvs"][(w["step"] * 7919) % N_ITEMS, :3].copy()
    return NOW + 1000 * w["step"], fvs, np.ones(3)


def fused(w: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    now, fvs, wts = _event(w)
    w["params"][D.P_INV_MAX] = 1.0 / w["max"]  # the caller's scalar update after counting the event
    n = D.decide_slate(w["prof"], 0, now, 1, fvs, wts, w["hl"], w["cat"], w["acc"], w["plc"], w["params"], w["state"],
                       w["work"], w["out"], w["counts"])
    return w["out"][0][:n], w["out"][2][:n]


def today_kernels(w: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Scoring path only: normalised prior, ``score_items`` (live affinities read once, up
    front), ``SlatePolicy.select`` (``top_k`` + ``rank_slate``)."""
    _event(w)
    prior = w["acc"] / w["max"]  # Popularity.normalised(), renewed on every event
    fids, norm = w["live"]
    scores = np.empty(N_ITEMS, np.float64)
    mask, extra = w["plc"][0], w["plc"][1]
    A.score_items(*w["cat"], fids, norm, fids.shape[0], AFF_W, prior, PRIOR_W, extra, mask, w["prof"][3][0], scores)
    idx, prop = w["policy"].select(scores, SLOTS, w["state"])
    return idx, prop


def today_engine(w: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """All of today's steps for one decision, as ``Engine`` composes them."""
    now, fvs, wts = _event(w)
    fid, score, t, purchased = w["prof"]
    A.affinity_update(fid, score, t, 0, fvs, wts, now, w["hl"])
    of, osc = np.empty(K, np.int32), np.empty(K, np.float64)
    m = A.affinity_read(fid, score, t, 0, now, w["hl"], of, osc)
    fids, live = of[:m].copy(), osc[:m].copy()
    prior = w["acc"] * (1.0 / w["max"])  # the kernel's rounding (acc / max may differ in the last bit)
    total = float(live.sum())
    norm = live / total if total > 0.0 else live
    scores = np.empty(N_ITEMS, np.float64)
    mask, extra, boost, trials, clicks = w["plc"]
    A.score_items(*w["cat"], fids, norm, m, AFF_W, prior, PRIOR_W, extra, mask, purchased[0], scores)
    idx, prop = w["policy"].select(scores, SLOTS, w["state"])
    trials[idx] += 1.0
    extra[idx] = boost[idx] + FEEDBACK_W * ((clicks[idx] + PRIOR_CLICKS) / (trials[idx] + PRIOR_TRIALS))
    return idx, prop


def _check(idx: np.ndarray, prop: np.ndarray) -> None:
    assert idx.shape == (SLOTS,) and len(set(idx.tolist())) == SLOTS
    assert ((prop > 0.0) & (prop <= 1.0)).all()


def test_fused_equals_today_bit_for_bit() -> None:
    """The slates being timed are the same decision (a sequence of them, state carried over)."""
    a, b = world(), world()
    for _ in range(5):
        ia, pa = fused(a)
        ib, pb = today_engine(b)
        assert ia.tolist() == ib.tolist() and pa.tolist() == pb.tolist()
        for x, y in zip(a["prof"] + a["plc"], b["prof"] + b["plc"]):
            assert np.array_equal(x, y)
        assert a["state"][0] == b["state"][0]


@pytest.mark.benchmark(group=GROUP)
def test_fused_decide_slate(benchmark: Any) -> None:
    w = world()
    idx, prop = benchmark(fused, w)
    _check(idx, prop)
    assert w["counts"][D.C_LIVE] == K and w["counts"][D.C_POOL] == POOL


@pytest.mark.benchmark(group=GROUP)
def test_today_kernels(benchmark: Any) -> None:
    w = world()
    fid, score, t, _ = w["prof"]
    of, osc = np.empty(K, np.int32), np.empty(K, np.float64)
    m = A.affinity_read(fid, score, t, 0, NOW, w["hl"], of, osc)
    w["live"] = (of[:m].copy(), osc[:m] / osc[:m].sum())
    idx, prop = benchmark(today_kernels, w)
    _check(idx, prop)


@pytest.mark.benchmark(group=GROUP)
def test_today_engine(benchmark: Any) -> None:
    w = world()
    idx, prop = benchmark(today_engine, w)
    _check(idx, prop)
