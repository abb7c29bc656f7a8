"""Segment predicates over profile columns, and the per-row columns that need a loop.

A compiled segment (:mod:`decisioner.segments.compile`) is a flat postfix program over numbered
*columns*: ``prog`` int64[m, 4], one instruction a row ``(op, col, a, b)``:

* ``OP_CMP``: push ``vals[col, i] <cmp a> consts[b]`` (``a``: :data:`CMP_EQ` ... :data:`CMP_GE`;
  a comparison with NaN, an unset value, is false, and ``!=`` is ``not ==``);
* ``OP_SET``: push whether the category code ``vals[col, i]`` is a member of the table slice
  ``table[a : a + b]`` (uint8, 1 = member; an unset code, -1, never is);
* ``OP_TRUE``: push ``vals[col, i] != 0`` (a boolean column: consent, a tier test);
* ``OP_AND`` / ``OP_OR``: pop two, push their conjunction / disjunction; ``OP_NOT``: negate the top.

The same kernel evaluates every profile (``vals`` float64[n_cols, n]) and one profile during a
decision (``vals`` [n_cols, 1]).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from ._jit import kernel

__all__ = [
    "segment_eval", "affinity_share", "OP_CMP", "OP_SET", "OP_TRUE", "OP_AND", "OP_OR", "OP_NOT",
    "CMP_EQ", "CMP_NE", "CMP_LT", "CMP_LE", "CMP_GT", "CMP_GE", "MIN_SCORE",
]

OP_CMP: Final = 0
OP_SET: Final = 1
OP_TRUE: Final = 2
OP_AND: Final = 3
OP_OR: Final = 4
OP_NOT: Final = 5
CMP_EQ: Final = 0
CMP_NE: Final = 1
CMP_LT: Final = 2
CMP_LE: Final = 3
CMP_GT: Final = 4
CMP_GE: Final = 5
MIN_SCORE: Final = 1e-6  # as decisioner._kernels.affinity: a slot decayed to this is gone


@kernel
def segment_eval(prog: np.ndarray, consts: np.ndarray, table: np.ndarray, vals: np.ndarray, out: np.ndarray) -> int:
    """Evaluate the postfix program ``prog`` (int64[m, 4]) with ``consts`` (float64) and
    ``table`` (uint8) on every column of ``vals`` (float64[n_cols, n]); writes ``out``
    (uint8[n], 1 = member) and returns the number of members.

    Assumes: a well-formed program (the compiler's), every ``col`` < n_cols, table slices in
    range. O(n * m).
    """
    n = vals.shape[1]
    m = prog.shape[0]
    stack = np.empty(m + 1, dtype=np.uint8)
    total = 0
    for i in range(n):
        sp = 0
        for k in range(m):
            op = prog[k, 0]
            if op == OP_CMP:
                v = vals[prog[k, 1], i]
                c = consts[prog[k, 3]]
                cmp = prog[k, 2]
                if cmp == CMP_EQ:
                    r = v == c
                elif cmp == CMP_NE:
                    r = v != c
                elif cmp == CMP_LT:
                    r = v < c
                elif cmp == CMP_LE:
                    r = v <= c
                elif cmp == CMP_GT:
                    r = v > c
                else:
                    r = v >= c
                stack[sp] = 1 if r else 0
                sp += 1
            elif op == OP_SET:
                v = vals[prog[k, 1], i]
                r = False
                if v >= 0.0 and v < prog[k, 3]:
                    r = table[prog[k, 2] + int(v)] != 0
                stack[sp] = 1 if r else 0
                sp += 1
            elif op == OP_TRUE:
                stack[sp] = 1 if vals[prog[k, 1], i] != 0.0 else 0
                sp += 1
            elif op == OP_AND:
                sp -= 1
                stack[sp - 1] = stack[sp - 1] & stack[sp]
            elif op == OP_OR:
                sp -= 1
                stack[sp - 1] = stack[sp - 1] | stack[sp]
            else:
                stack[sp - 1] = 1 - stack[sp - 1]
        out[i] = stack[0]
        total += stack[0]
    return total


@kernel
def affinity_share(
    fid: np.ndarray, score: np.ndarray, t: np.ndarray, fv_facet: np.ndarray, hl: float, facet: int, target: int,
    now: int, out: np.ndarray,
) -> None:
    """Per row: the share of facet value ``target`` in the row's interest in ``facet`` decayed to
    ``now`` (``fid`` int32[n, K], ``score`` float32[n, K], ``t`` int64[n]; ``fv_facet`` int32
    facet of each facet value, ``hl`` the facet's half-life in ms). Writes ``out`` (float64[n];
    0 when the row has no live interest in the facet).

    Slots decay as :func:`decisioner._kernels.affinity.affinity_read` does (``dt`` clamped at
    0, a slot at or under ``MIN_SCORE`` is gone).

    Assumes: every live fid < len(fv_facet). O(n * K).
    """
    n = fid.shape[0]
    for r in range(n):
        dt = now - t[r]
        if dt < 0:
            dt = 0
        factor = math.pow(2.0, -dt / hl)
        tot = 0.0
        hit = 0.0
        for k in range(fid.shape[1]):
            f = fid[r, k]
            if f >= 0 and fv_facet[f] == facet:
                s = float(score[r, k]) * factor
                if s > MIN_SCORE:
                    tot += s
                    if f == target:
                        hit += s
        out[r] = hit / tot if tot > 0.0 else 0.0
