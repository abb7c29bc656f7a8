"""Segment and activity kernels against their twins in ``tests/reference.py``."""

from __future__ import annotations

import math

import numpy as np

import reference as ref
from decisioner._kernels import activity as A
from decisioner._kernels import segments as S

from ._helpers import size

DAY = 86_400_000


def _program(rng: np.random.Generator, n_cols: int, n_table: int) -> list[list[int]]:
    """A random well-formed postfix program."""
    prog: list[list[int]] = []
    depth = 0
    for _ in range(int(rng.integers(1, 12))):
        k = int(rng.integers(6)) if depth >= 2 else int(rng.integers(3))
        if k == S.OP_CMP:
            prog.append([k, int(rng.integers(n_cols)), int(rng.integers(6)), int(rng.integers(3))])
        elif k == S.OP_SET:
            off = int(rng.integers(n_table))
            prog.append([k, int(rng.integers(n_cols)), off, int(rng.integers(0, n_table - off + 1))])
        elif k == S.OP_TRUE:
            prog.append([k, int(rng.integers(n_cols)), 0, 0])
        elif k == S.OP_NOT:
            prog.append([k, 0, 0, 0])
        else:
            prog.append([k, 0, 0, 0])
            depth -= 1
            continue
        depth += 1 if k != S.OP_NOT else 0
    while depth > 1:
        prog.append([S.OP_AND, 0, 0, 0])
        depth -= 1
    return prog


def test_segment_eval_equals_its_twin(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(size(200, 30)):
        n_cols, n = 3, int(rng.integers(0, 20))
        vals = rng.choice([-1.0, 0.0, 1.0, 2.0, 2.5, math.nan, math.inf], size=(n_cols, n))
        consts = rng.choice([0.0, 1.0, 2.0, math.nan], size=3)
        table = rng.integers(0, 2, size=5).astype(np.uint8)
        prog = np.array(_program(rng, n_cols, 5), dtype=np.int64).reshape(-1, 4)
        out = np.empty(n, dtype=np.uint8)
        total = S.segment_eval(prog, consts, table, np.ascontiguousarray(vals), out)
        want = ref.segment_eval_ref(prog, consts, table, vals)
        assert out.tolist() == want and total == sum(want)


def test_affinity_share_equals_its_twin(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = size(300, 40), 4
    fid = rng.integers(-1, 6, size=(n, k)).astype(np.int32)
    score = (rng.random((n, k)) * rng.choice([1e-7, 1.0, 5.0], size=(n, k))).astype(np.float32)
    t = rng.integers(0, 10 * DAY, size=n).astype(np.int64)
    fv_facet = np.array([0, 0, 0, 1, 1, 1], np.int32)
    hl = np.array([DAY] * 3 + [3.0 * DAY] * 3, np.float64)
    out = np.empty(n)
    for facet, target in ((0, 1), (1, 4)):
        now = 5 * DAY
        S.affinity_share(fid, score, t, fv_facet, float(hl[target]), facet, target, now, out)
        want = [ref.affinity_share_ref(fid[r].tolist(), score[r].tolist(), int(t[r]), fv_facet.tolist(), hl.tolist(),
                                       facet, target, now) for r in range(n)]
        assert out.tolist() == want


def test_activity_kernels_equal_the_event_list_twin(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows, types, B, bms = 6, 2, 4, DAY
    last = np.zeros((rows, types), np.int64)
    ring = np.zeros((rows, types, B), np.uint16)
    head = np.full(rows, -1, np.int32)
    events: list[list[tuple[str, int]]] = [[] for _ in range(rows)]
    names = ["a", "b"]
    for _ in range(size(300, 60)):
        r, ti = int(rng.integers(rows)), int(rng.integers(types))
        if rng.random() < 0.05:
            s = int(rng.integers(rows))
            if s != r:
                A.activity_merge(last, ring, head, r, s)
                events[r] += events[s]
                events[s] = []
            continue
        time = int(rng.integers(DAY, 12 * DAY))
        A.activity_record(last, ring, head, r, ti, time, bms)
        events[r].append((names[ti], time))
    out = np.empty(rows)
    for nb in (1, 2, 4):
        for dnow in range(0, 14):
            A.activity_count(ring, head, 1, dnow, nb, out)
            want = [ref.activity_count_ref(e, "b", dnow * DAY, nb, 1, B) for e in events]
            assert out.tolist() == want
    assert [max([t for ty, t in e if ty == "a"], default=0) for e in events] == last[:, 0].tolist()
