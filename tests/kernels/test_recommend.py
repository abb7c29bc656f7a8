"""The fused read kernel and its parallel batch twin against the dense reference."""

from __future__ import annotations

import numpy as np
import pytest

from decisioner._kernels.affinity import affinity_update, recommend_items, recommend_items_par
from reference import recommend_items_ref


def world(seed: int, n_items: int = 300, n_fv: int = 40, rows: int = 6, K: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    per = rng.integers(1, 4, n_items)
    indices = np.concatenate([rng.choice(n_fv, m, replace=False) for m in per]).astype(np.int32)
    item_of = np.repeat(np.arange(n_items), per)
    order = np.argsort(indices, kind="stable")
    fv_indptr = np.zeros(n_fv + 1, np.int64)
    np.cumsum(np.bincount(indices, minlength=n_fv), out=fv_indptr[1:])
    fid = np.full((rows, K), -1, np.int32)
    score = np.zeros((rows, K), np.float32)
    t = np.zeros(rows, np.int64)
    hl = rng.uniform(1e3, 1e5, n_fv)
    for r in range(rows - 1):  # the last row stays empty
        for step in range(8):
            fvs = rng.integers(0, n_fv, 2).astype(np.int32)
            affinity_update(fid, score, t, r, fvs, rng.uniform(0.1, 3.0, 2), int(step * 700 + r), hl)
    prior = rng.random(n_items)
    prior[rng.integers(0, n_items, 3)] = np.nan  # NaN scores are never chosen
    eligible = (rng.random(n_items) > 0.1).astype(np.uint8)
    return {
        "fid": fid, "score": score, "t": t, "hl": hl, "fv_indptr": fv_indptr,
        "fv_items": item_of[order].astype(np.int32), "fv_data": rng.uniform(0.2, 1.0, order.shape[0]).astype(np.float32),
        "prior": prior, "extra": rng.normal(0, 0.05, n_items), "eligible": eligible,
    }


def call(w: dict[str, np.ndarray], row: int, now: int, excluded: np.ndarray, k: int) -> tuple[list[int], list[float]]:
    oi = np.empty(max(k, 1), np.int64)
    osc = np.empty(max(k, 1), np.float64)
    m = recommend_items(w["fid"], w["score"], w["t"], row, now, w["hl"], w["fv_indptr"], w["fv_items"], w["fv_data"],
                        1.3, w["prior"], 0.4, w["extra"], w["eligible"], excluded, k, oi, osc)
    return oi[:m].tolist(), osc[:m].tolist()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("row", [0, 3, 5, -1])  # 5: empty profile; -1: anonymous
@pytest.mark.parametrize("k", [0, 1, 4, 1000])
def test_matches_reference(seed: int, row: int, k: int) -> None:
    w = world(seed)
    excluded = np.array([-1, 7, 12, -1], np.int32)
    got = call(w, row, 9000, excluded, k)
    ref = recommend_items_ref(w["fid"], w["score"], w["t"], row, 9000, w["hl"], w["fv_indptr"], w["fv_items"],
                              w["fv_data"], 1.3, w["prior"], 0.4, w["extra"], w["eligible"], excluded, k)
    assert got[0] == ref[0]
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-12, atol=1e-12)
    assert 7 not in got[0] and 12 not in got[0]


def test_parallel_batch_equals_serial_calls() -> None:
    w = world(9)
    rows = np.array([0, 1, 2, 3, 4, 5, -1, 2], np.int64)
    nows = np.array([100, 9000, 50_000, 0, 7, 123_456, 9000, 9000], np.int64)
    excluded = np.full((8, 3), -1, np.int32)
    excluded[2] = [5, 6, -1]
    k = 5
    oi = np.empty((8, k), np.int64)
    osc = np.empty((8, k), np.float64)
    on = np.empty(8, np.int64)
    recommend_items_par(w["fid"], w["score"], w["t"], rows, nows, w["hl"], w["fv_indptr"], w["fv_items"], w["fv_data"],
                        1.3, w["prior"], 0.4, w["extra"], w["eligible"], excluded, k, oi, osc, on)
    for b in range(8):
        idx, sc = call(w, int(rows[b]), int(nows[b]), excluded[b], k)
        assert oi[b, : on[b]].tolist() == idx
        assert osc[b, : on[b]].tolist() == sc
