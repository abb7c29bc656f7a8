"""Record matching kernels against their twins in tests/reference.py: edge cases and seeded
random inputs."""

from __future__ import annotations

import numpy as np
import pytest

import reference as ref
from decisioner.matching.blocking import candidate_pairs
from decisioner.matching.clustering import cluster


@pytest.mark.parametrize("link_only", [False, True])
@pytest.mark.parametrize("trial", range(6))
def test_block_pairs_matches_reference(link_only: bool, trial: int) -> None:
    rng = np.random.default_rng(trial)
    n = int(rng.integers(0, 40))
    codes = rng.integers(-1, 6, size=(3, n)).astype(np.int64)
    src = rng.integers(0, 2, size=n).astype(np.int64)
    a, b, _ = candidate_pairs(codes, src, link_only=link_only, max_block=8)
    got = list(zip(a.tolist(), b.tolist(), strict=True))
    assert len(got) == len(set(got)), "a pair came twice"
    assert set(got) == ref.block_pairs_ref(codes.tolist(), src.tolist(), link_only=link_only, max_block=8)


def test_block_pairs_edge_cases() -> None:
    empty = np.zeros((1, 0), np.int64)
    a, _, _ = candidate_pairs(empty, np.zeros(0, np.int64), link_only=False, max_block=4)
    assert a.shape[0] == 0
    missing = np.full((2, 3), -1, np.int64)
    a, _, _ = candidate_pairs(missing, np.zeros(3, np.int64), link_only=False, max_block=4)
    assert a.shape[0] == 0


@pytest.mark.parametrize("trial", range(8))
def test_cluster_matches_reference(trial: int) -> None:
    rng = np.random.default_rng(100 + trial)
    n = int(rng.integers(2, 25))
    e = int(rng.integers(0, 3 * n))
    a = rng.integers(0, n, size=e)
    b = rng.integers(0, n, size=e)
    keep = a != b
    lo, hi = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    pairs = sorted(set(zip(lo.tolist(), hi.tolist(), strict=True)))
    pa = np.array([p[0] for p in pairs], np.int64)
    pb = np.array([p[1] for p in pairs], np.int64)
    prob = np.round(rng.random(len(pairs)), 3)  # distinct enough: ties keep input order in both
    unique = rng.integers(-1, 3, size=(n, 1)).astype(np.int64)
    unique[rng.random(n) < 0.6] = -1
    src = rng.integers(0, 3, size=n).astype(np.int64)
    dnl = [(0, 1)] if n > 1 else []
    for ops in (False, True):
        got, _ = cluster(n, pa, pb, prob, auto_link=0.5, unique=unique, sources=src, one_per_source=ops,
                         do_not_link=(np.array([0]), np.array([1])))
        want = ref.cluster_ref(n, [(int(x), int(y), float(p)) for x, y, p in zip(pa, pb, prob, strict=True)],
                           auto_link=0.5, unique=unique.tolist(), sources=src.tolist(), one_per_source=ops, dnl=dnl)
        assert got.tolist() == want
