"""``_kernels/features.py``: the ``featurize`` kernel against a slow pure-Python twin that
shares no code with it (hand-made edge cases and seeded random stores)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from decisioner.catalog import Catalog
from decisioner.config import CatalogSpec, ProfileSpec
from decisioner.profiles import ProfileStore, half_lives
from decisioner.ranking.features import CHANNELS, DEVICES, FEATURE_NAMES, Featurizer, band_of_values
from decisioner.scoring import AffinityScorer

from ._helpers import size

DAY = 86_400_000.0
NOW = 1_700_000_000_000


def reference(fz: Featurizer, row: int, now: int, items: list[int], ctx: list[float]) -> np.ndarray:
    """The features from their definitions, one dict at a time."""
    cat, p, sc = fz.catalog, fz.profiles, fz.scorer
    hl = fz.half_lives
    bands = band_of_values(cat)
    known = 0 <= row < p.t_.shape[0]
    interest: dict[int, float] = {}
    if known:
        dt = max(now - int(p.t_[row]), 0)
        for f, s in zip(p.fid_[row].tolist(), p.score_[row].tolist()):
            if f >= 0:
                v = float(s) * 2.0 ** (-dt / float(hl[f]))
                if v > 1e-6:
                    interest[f] = interest.get(f, 0.0) + v
    total = sum(interest.values())
    share = {f: v / total for f, v in interest.items()} if total > 0 else dict(interest)
    band_pairs = [(bands[f], v) for f, v in interest.items() if bands[f] >= 0]
    usual = sum(b * v for b, v in band_pairs) / sum(v for _, v in band_pairs) if band_pairs else math.nan
    last_touch: dict[int, int] = {}  # facet value -> latest time a recent item with it was touched
    recent: dict[int, int] = {}
    if known:
        for it, t in zip(p.recent_item_[row].tolist(), p.recent_t_[row].tolist()):
            if 0 <= it < cat.n_items:
                recent[it] = max(recent.get(it, 0), t)
                for v in cat.indices[cat.indptr[it]:cat.indptr[it + 1]].tolist():
                    last_touch[v] = max(last_touch.get(v, 0), t)
    pop = sc.popularity_
    inv = 1.0 / pop.max_ if pop.max_ > 0 else 0.0
    cnt = sc.counters_
    scale = 2.0 ** (-(now - cnt.t_ref_) / cnt.half_life_ms) if cnt.t_ref_ else 0.0
    prior = cnt.totals_[1] / cnt.totals_[0] if cnt.totals_[0] > 0 else 0.0
    rows = []
    for i in items:
        if not 0 <= i < cat.n_items:
            rows.append({n: math.nan for n in FEATURE_NAMES})
            continue
        r: dict[str, float] = {}
        per_facet = [0.0 if f < fz.n_facets and known else math.nan for f in range(6)]
        rec_facet = [math.nan] * 6
        band = -1
        for v, d in zip(cat.indices[cat.indptr[i]:cat.indptr[i + 1]].tolist(),
                        cat.data[cat.indptr[i]:cat.indptr[i + 1]].tolist()):
            f = int(cat.fv_facet[v])
            if bands[v] >= 0:
                band = int(bands[v])
            if known:
                per_facet[f] += share.get(v, 0.0) * d
                if v in last_touch:
                    days = max(now - last_touch[v], 0) / DAY
                    rec_facet[f] = days if math.isnan(rec_facet[f]) else min(rec_facet[f], days)
        aff = sum(per_facet[: fz.n_facets]) if known else 0.0
        r["affinity"] = aff if known else math.nan
        r["popularity"] = float(pop.acc_[i]) * inv
        r["affinity_score"] = sc.spec.affinity_weight * aff + sc.spec.popularity_weight * r["popularity"]
        for f in range(6):
            r[f"affinity_facet_{f}"] = per_facet[f]
            r[f"facet_recency_days_{f}"] = rec_facet[f]
        seen, engaged = cnt.counts_[i, 0] * scale, cnt.counts_[i, 1] * scale
        r["log_interactions"] = math.log1p(seen)
        r["engagement_rate"] = (engaged + 5.0 * prior) / (seen + 5.0)
        r["item_recency_days"] = max(now - recent[i], 0) / DAY if i in recent else math.nan
        r["purchased"] = (1.0 if i in p.purchased_[row].tolist() else 0.0) if known else math.nan
        price = float(cat.price[i])
        r["log_price"] = math.log1p(price) if price >= 0 else math.nan
        r["price_band"] = float(band) if band >= 0 else math.nan
        r["price_band_delta"] = band - usual if band >= 0 and known else math.nan
        r["log_events"] = math.log1p(float(p.events_[row])) if known else math.nan
        seen_at = int(p.last_seen_[row]) if known else 0
        r["idle_days"] = max(now - seen_at, 0) / DAY if seen_at > 0 else math.nan
        r["interest_mass"] = total if known else math.nan
        for name, v in zip(("channel", "device", "hour", "weekday"), ctx):
            r[name] = v
        rows.append(r)
    return np.array([[r[n] for n in FEATURE_NAMES] for r in rows], dtype=np.float64)


def _world(seed: int, *, n_items: int = 40, n_rows: int = 6) -> Featurizer:
    rng = np.random.default_rng(seed)
    recs = []
    for j in range(n_items):
        rec: dict[str, object] = {"id": f"i{j}", "category": f"c{rng.integers(4)}", "brand": f"b{rng.integers(5)}"}
        if rng.random() < 0.7:
            rec["price"] = float(rng.choice([5.0, 30.0, 70.0, 300.0]))
        if rng.random() < 0.5:
            rec["tags"] = [f"t{x}" for x in rng.choice(6, size=2, replace=False).tolist()]
        recs.append(rec)
    cat = Catalog(recs, CatalogSpec(facets=("category", "brand", "tags"), price_bands=(25.0, 50.0, 100.0)))
    store = ProfileStore(slots=6, purchased_slots=3, recent_slots=4, capacity=n_rows)
    scorer = AffinityScorer(cat)
    fz = Featurizer(store, cat, scorer, half_lives=half_lives(ProfileSpec(facet_half_life_days={"brand": 3.0}), cat))
    for r in range(n_rows - 1):  # the last row stays empty
        t = NOW - int(rng.integers(0, 20)) * int(DAY)
        for _ in range(int(rng.integers(1, 9))):
            it = int(rng.integers(n_items))
            fvs, w = cat.items_fvs([it], float(rng.uniform(0.5, 3.0)))
            store.update(r, fvs, w, t, fz.half_lives)
            store.add_recent(r, it, t)
            if rng.random() < 0.3:
                store.add_purchase(r, it)
            store.touch(r, t)
            scorer.add_popularity(it, 1.0, t)
            scorer.count(it, bool(rng.random() < 0.3), t)
            t += int(rng.integers(1, 5)) * 3_600_000
    return fz


@pytest.mark.parametrize("seed", range(size(6, 2)))
def test_featurize_matches_its_twin(seed: int) -> None:
    fz = _world(seed)
    rng = np.random.default_rng(100 + seed)
    now = NOW + int(DAY)
    for row in [0, 1, 4, 5, -1, 99]:  # 5: empty row; -1 and 99: no profile (99: past the store)
        items = [*rng.integers(0, fz.catalog.n_items, size=12).tolist(), -3, fz.catalog.n_items]
        arr = np.asarray(items, dtype=np.int64)
        ctx = fz.context("app", "tablet", now)
        out = np.full((len(items) + 2, len(FEATURE_NAMES)), 7.0)
        fz.fill(row, now, arr, len(items), ctx, out)
        want = reference(fz, row, now, items, ctx.tolist())
        np.testing.assert_allclose(out[: len(items)], want, rtol=1e-12, atol=1e-12, equal_nan=True)
        assert (out[len(items):] == 7.0).all()  # past m: untouched
        assert not fz._work[0].any() and not fz._work[1].any()  # the scratch is left all zero


def test_featurize_edge_cases() -> None:
    fz = _world(7)
    out = np.full((3, len(FEATURE_NAMES)), 7.0)
    fz.fill(0, NOW, np.zeros(3, np.int64), 0, fz.context("web", None, NOW), out)
    assert (out == 7.0).all()  # m = 0 writes nothing
    one = fz.features(0, NOW, np.array([1]))
    assert one.shape == (1, len(FEATURE_NAMES))
    # a later time than every event: recency grows by exactly the elapsed days
    a = fz.features(0, NOW + int(DAY), np.arange(5))
    b = fz.features(0, NOW + 3 * int(DAY), np.arange(5))
    col = FEATURE_NAMES.index("item_recency_days")
    np.testing.assert_allclose((b - a)[:, col][~np.isnan(a[:, col])], 2.0)


def test_context_codes() -> None:
    fz = _world(1)
    thursday_0h = 0
    assert fz.context("web", "mobile", thursday_0h).tolist() == [0.0, 1.0, 0.0, 3.0]
    monday_13h = 4 * int(DAY) + 13 * 3_600_000
    assert fz.context("kiosk", "watch", monday_13h).tolist() == [float(len(CHANNELS)), float(len(DEVICES)), 13.0, 0.0]
    assert math.isnan(fz.context(2, None, 0)[1])
