"""AffinityScorer and the popularity prior."""

from __future__ import annotations

import math

import numpy as np
import pytest

from decisioner.catalog import Catalog
from decisioner.config import CatalogSpec, ScoringSpec
from decisioner.scoring import DAY_MS, AffinityScorer, Popularity

T0 = 1_700_000_000_000
SPEC = CatalogSpec(facets=("category", "brand"), price_bands=())
ITEMS = [
    {"id": "s0", "category": "shoes", "brand": "acme"},
    {"id": "h0", "category": "hats", "brand": "zeta"},
    {"id": "s1", "category": "shoes", "brand": "zeta"},
    {"id": "b0", "category": "bags", "brand": "acme"},
    {"id": "h1", "category": "hats", "brand": "acme"},
    {"id": "b1", "category": "bags", "brand": "omni"},
]



@pytest.fixture()
def cat() -> Catalog:
    return Catalog(ITEMS, SPEC)


def profile(cat: Catalog, interests: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    fids = np.array([cat.fv_index[k] for k in interests], np.int32)
    return fids, np.array(list(interests.values()), np.float64)


def score(scorer: AffinityScorer, fids: np.ndarray, scores: np.ndarray, **kw: object) -> tuple[np.ndarray, int]:
    n = scorer.catalog.n_items
    args = {"eligible": np.ones(n, np.uint8), "extra": np.zeros(n)}
    args.update(kw)
    return scorer.score_one(fids, scores, **args)  # type: ignore[arg-type]


def test_items_matching_interests_rank_first(cat: Catalog) -> None:
    scorer = AffinityScorer(cat, ScoringSpec(popularity_weight=0.0))
    fids, sc = profile(cat, {"category=hats": 3.0, "brand=acme": 1.0})
    out, n = score(scorer, fids, sc)
    assert n == 6
    top = [cat.ids[i] for i in scorer.top(out, 3)]
    assert top == ["h1", "h0", "s0"]  # hats & acme, hats, then acme (s0 before b0: lower index)


def test_score_matches_hand_computation(cat: Catalog) -> None:
    scorer = AffinityScorer(cat, ScoringSpec(affinity_weight=2.0, popularity_weight=0.5))
    scorer.add_popularity(3, 4.0, T0)
    scorer.add_popularity(0, 1.0, T0)
    fids, sc = profile(cat, {"category=shoes": 3.0, "brand=zeta": 1.0})
    extra = np.array([0.0, 0.1, 0.0, 0.0, 0.0, -0.2])
    out, _n = score(scorer, fids, sc, extra=extra)
    share = {"category=shoes": 0.75, "brand=zeta": 0.25}  # interests normalised to sum 1
    prior = np.array([0.25, 0, 0, 1.0, 0, 0])
    for i, item in enumerate(ITEMS):
        aff = share.get(f"category={item['category']}", 0.0) + share.get(f"brand={item['brand']}", 0.0)
        assert out[i] == pytest.approx(2.0 * aff + 0.5 * prior[i] + extra[i], abs=1e-12)
    # per-call weight overrides (the popularity baseline scores by the prior alone)
    out2, _ = score(scorer, fids, sc, affinity_weight=0.0, prior_weight=1.0)
    assert out2.tolist() == pytest.approx(prior.tolist())


def test_ineligible_excluded_and_nan_are_never_candidates(cat: Catalog) -> None:
    scorer = AffinityScorer(cat)
    fids, sc = profile(cat, {"category=shoes": 1.0})
    eligible = np.array([1, 0, 1, 1, 1, 1], np.uint8)
    extra = np.array([0, 0, 0, 0, np.nan, 0.0])
    out, n = score(scorer, fids, sc, eligible=eligible, extra=extra, excluded=np.array([2, -1], np.int32))
    assert np.isneginf(out[[1, 2, 4]]).all() and np.isfinite(out[[0, 3, 5]]).all()
    assert n == 3
    assert scorer.top(out, 10).tolist() == [0, 3, 5]


def test_empty_profile_scores_by_prior_and_extra(cat: Catalog) -> None:
    scorer = AffinityScorer(cat, ScoringSpec(popularity_weight=1.0))
    scorer.add_popularity(4, 2.0, T0)
    out, n = score(scorer, np.empty(0, np.int32), np.empty(0))
    assert n == 6 and out.tolist() == [0, 0, 0, 0, 1.0, 0]


def test_top_orders_best_first_ties_to_lower_index() -> None:
    s = np.array([0.5, 2.0, -np.inf, 0.5, np.nan, 1.0])
    assert AffinityScorer.top(s, 4).tolist() == [1, 5, 0, 3]
    assert AffinityScorer.top(s, 10).tolist() == [1, 5, 0, 3]
    assert AffinityScorer.top(s, 0).tolist() == []


def test_prior_is_cached_until_popularity_changes(cat: Catalog) -> None:
    scorer = AffinityScorer(cat)
    assert scorer.prior().tolist() == [0.0] * 6
    scorer.add_popularity(1, 1.0, T0)
    p = scorer.prior()
    assert p.tolist() == [0, 1.0, 0, 0, 0, 0] and scorer.prior() is p
    scorer.add_popularity(2, 3.0, T0)
    assert scorer.prior().tolist() == pytest.approx([0, 1 / 3, 1.0, 0, 0, 0])


# ---------------------------------------------------------------- popularity

def test_popularity_normalisation_with_decay() -> None:
    h = 7 * DAY_MS
    pop = Popularity(3, half_life_ms=h)
    assert pop.normalised().tolist() == [0.0, 0.0, 0.0]
    pop.add(0, 4.0, T0)
    pop.add(1, 1.0, T0 + h)  # one half-life later: item 0 is worth 2 now
    pop.add(2, 1.0, T0 + 2 * h)  # item 0 worth 1, item 1 worth 0.5
    assert pop.normalised().tolist() == pytest.approx([1.0, 0.5, 1.0])
    pop.add(2, 1.0, T0 + 2 * h)
    assert pop.normalised().tolist() == pytest.approx([0.5, 0.25, 1.0])


def test_popularity_rebase_keeps_ratios() -> None:
    h = 1000.0
    pop = Popularity(3, half_life_ms=h)
    pop.add(0, 1.0, T0)
    pop.add(0, 1.0, T0 + 400_000)  # x = 400: no rebase yet
    pop.add(1, 3.0, T0 + 400_000)
    assert pop.t_ref_ == T0
    pop.add(2, 1.0, T0 + 600_000)  # x = 600 > 500: every count is rebased to this time
    assert pop.t_ref_ == T0 + 600_000
    assert np.isfinite(pop.acc_).all() and math.isfinite(pop.max_)
    expected = np.array([2.0**-600 + 2.0**-200, 3 * 2.0**-200, 1.0])  # hand-decayed to now
    got = pop.normalised()
    assert got.tolist() == pytest.approx(expected.tolist(), rel=1e-12, abs=0)
    assert got[1] / got[0] == pytest.approx(3.0, rel=1e-12)
    # counting continues in the new frame
    pop.add(1, 1.0, T0 + 600_000)
    got = pop.normalised()
    assert got[1] == 1.0 and got[2] == pytest.approx(1.0 / (1.0 + 3 * 2.0**-200), rel=1e-12)


def test_popularity_long_gaps_never_overflow() -> None:
    pop = Popularity(2, half_life_ms=1.0)
    for k in range(50):
        pop.add(k % 2, 1.0, T0 + k * 10_000)  # 10 000 half-lives between events
    assert np.isfinite(pop.acc_).all()
    assert pop.normalised().tolist() == [0.0, 1.0]  # only the latest count survives


def test_popularity_never_negative() -> None:
    pop = Popularity(2, half_life_ms=1e9)
    pop.add(0, 1.0, T0)
    pop.add(1, -5.0, T0)
    assert pop.acc_[1] == 0.0 and pop.normalised().tolist() == [1.0, 0.0]
