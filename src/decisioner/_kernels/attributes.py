"""Profile attributes: offering values to a row by each attribute's reconciliation rule, and
merging two rows (the rules are specified in :mod:`decisioner.attributes`).

State (owned by :class:`decisioner.attributes.AttributeStore`), P rows, A attributes, K counted
slots in all (the ``slots`` of every ``most_frequent`` attribute, side by side), one row's
record contiguous so an event touches a few cache lines:

* ``value`` float64[P, A]: the held value of each attribute (a category code, a number, an
  epoch-ms timestamp; every one exact in float64: codes < 2**31, timestamps < 2**53);
* ``stamp`` int64[P, A + 3K]: ``[:, a]`` the event time of attribute ``a``'s value; slot ``j``
  is ``[:, A + 3j : A + 3j + 3]``: its value code (-1: free), count and newest sighting's time;
* ``source`` int16[P, A + K]: ``[:, a]`` the source code of attribute ``a``'s value (-1: not
  set); ``[:, A + j]`` the source of slot ``j``'s newest sighting (-1: free).

Declarations, ``spec`` int64[A, 3 + S]: ``(rule, first slot, slots)`` per attribute (rule codes
``RULE_*``), then for ``source_priority`` attributes the rank of each source code (0 = first in
``sources``; unlisted sources rank after every listed one); S is 0 without such an attribute.

An event's values, ``req`` float64[2n]: pairs ``(attribute index, value)``.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from ._jit import helper, kernel

__all__ = [
    "attributes_set", "attributes_merge", "RULE_MOST_RECENT", "RULE_FIRST_SEEN", "RULE_SOURCE_PRIORITY",
    "RULE_MIN", "RULE_MAX", "RULE_SUM", "RULE_MOST_FREQUENT", "SPEC_COLUMNS",
]

RULE_MOST_RECENT: Final = 0
RULE_FIRST_SEEN: Final = 1
RULE_SOURCE_PRIORITY: Final = 2
RULE_MIN: Final = 3
RULE_MAX: Final = 4
RULE_SUM: Final = 5
RULE_MOST_FREQUENT: Final = 6
#: columns of ``spec`` before the source ranks
SPEC_COLUMNS: Final = 3


@helper(hot=True)
def _offer(
    value: np.ndarray, stamp: np.ndarray, source: np.ndarray, spec: np.ndarray, r: int, a: int, v: float, src: int,
    t: int, later_wins: bool,
) -> None:
    """Offer value ``v`` from source ``src`` at time ``t`` to attribute ``a`` (any rule but
    ``most_frequent``) of row ``r``; ``later_wins``: an equal time replaces (an event; a
    merge keeps the survivor's)."""
    held = source[r, a]
    if held < 0:
        value[r, a] = v
        source[r, a] = src
        stamp[r, a] = t
        return
    ht = stamp[r, a]
    newer = t > ht or (later_wins and t == ht)
    rule = spec[a, 0]
    if rule == RULE_MOST_RECENT:
        take = newer
    elif rule == RULE_FIRST_SEEN:
        take = t < ht
    elif rule == RULE_SOURCE_PRIORITY:
        mine = spec[a, SPEC_COLUMNS + src]
        theirs = spec[a, SPEC_COLUMNS + held]
        take = mine < theirs or (mine == theirs and newer)
    elif rule == RULE_SUM:
        value[r, a] += v
        take = False
        if t >= ht:
            source[r, a] = src
            stamp[r, a] = t
    else:
        hv = value[r, a]
        better = v < hv if rule == RULE_MIN else v > hv
        take = better or (v == hv and t < ht)
    if take:
        value[r, a] = v
        source[r, a] = src
        stamp[r, a] = t


@helper(hot=True)
def _lead(value: np.ndarray, stamp: np.ndarray, source: np.ndarray, spec: np.ndarray, r: int, a: int) -> None:
    """Set attribute ``a`` (``most_frequent``) of row ``r`` from its slots: the highest count,
    then the newest sighting, then the lowest code; unchanged when every slot is free."""
    A = value.shape[1]
    lo = spec[a, 1]
    best = -1
    for j in range(lo, lo + spec[a, 2]):
        c = stamp[r, A + 3 * j]
        if c < 0:
            continue
        if best < 0:
            best = j
            continue
        n, bn = stamp[r, A + 3 * j + 1], stamp[r, A + 3 * best + 1]
        tj, tb = stamp[r, A + 3 * j + 2], stamp[r, A + 3 * best + 2]
        if n > bn or (n == bn and (tj > tb or (tj == tb and c < stamp[r, A + 3 * best]))):
            best = j
    if best >= 0:
        value[r, a] = stamp[r, A + 3 * best]
        stamp[r, a] = stamp[r, A + 3 * best + 2]
        source[r, a] = source[r, A + best]


@helper(hot=True)
def _count(
    value: np.ndarray, stamp: np.ndarray, source: np.ndarray, spec: np.ndarray, r: int, a: int, code: int, src: int,
    t: int,
) -> None:
    """Count one sighting of ``code`` from ``src`` at ``t`` in the slots of attribute ``a``
    (``most_frequent``) of row ``r`` (space-saving: a value not counted yet takes a free slot,
    else replaces the lowest count, the oldest among equals, and starts from its count)."""
    A = value.shape[1]
    lo = spec[a, 1]
    hi = lo + spec[a, 2]
    j = -1
    for i in range(lo, hi):
        if stamp[r, A + 3 * i] == code:
            j = i
            break
    if j >= 0:
        stamp[r, A + 3 * j + 1] += 1
        if t >= stamp[r, A + 3 * j + 2]:
            stamp[r, A + 3 * j + 2] = t
            source[r, A + j] = src
        lead = int(value[r, a])
        if lead == code:  # still the most frequent: its newest sighting may have moved
            stamp[r, a] = stamp[r, A + 3 * j + 2]
            source[r, a] = source[r, A + j]
            return
        jl = -1
        for i in range(lo, hi):
            if stamp[r, A + 3 * i] == lead:
                jl = i
                break
        if jl >= 0:  # the counted value overtakes the leader, or not (the order of _lead)
            n, ln = stamp[r, A + 3 * j + 1], stamp[r, A + 3 * jl + 1]
            tj, tl = stamp[r, A + 3 * j + 2], stamp[r, A + 3 * jl + 2]
            if n > ln or (n == ln and (tj > tl or (tj == tl and code < lead))):
                value[r, a] = code
                stamp[r, a] = tj
                source[r, a] = source[r, A + j]
            return
    else:
        base = 0
        for i in range(lo, hi):
            if stamp[r, A + 3 * i] == -1:
                j = i
                break
        if j < 0:
            j = lo
            for i in range(lo + 1, hi):
                n, bn = stamp[r, A + 3 * i + 1], stamp[r, A + 3 * j + 1]
                if n < bn or (n == bn and stamp[r, A + 3 * i + 2] < stamp[r, A + 3 * j + 2]):
                    j = i
            base = stamp[r, A + 3 * j + 1]
        stamp[r, A + 3 * j] = code
        stamp[r, A + 3 * j + 1] = base + 1
        stamp[r, A + 3 * j + 2] = t
        source[r, A + j] = src
    _lead(value, stamp, source, spec, r, a)


@kernel(nrt=False)
def attributes_set(
    value: np.ndarray, stamp: np.ndarray, source: np.ndarray, spec: np.ndarray, req: np.ndarray, n: int, r: int,
    src: int, t: int,
) -> None:
    """Offer an event's ``n`` values (``req`` float64[2n]: attribute index, value; category
    values as codes) from source code ``src`` at event time ``t`` to row ``r``, each by its
    attribute's rule.

    Assumes: 0 <= r < P, valid attribute indices, 0 <= src < S when a ``source_priority``
    attribute is offered, codes >= 0. O(n * slots).
    """
    for i in range(n):
        a = int(req[2 * i])
        v = req[2 * i + 1]
        if spec[a, 0] == RULE_MOST_FREQUENT:
            _count(value, stamp, source, spec, r, a, int(v), src, t)
        else:
            _offer(value, stamp, source, spec, r, a, v, src, t, True)


@kernel
def attributes_merge(
    value: np.ndarray, stamp: np.ndarray, source: np.ndarray, spec: np.ndarray, dst: int, src: int
) -> None:
    """Reconcile row ``src`` into row ``dst`` by each attribute's rule: a held value is offered
    with its own provenance (equal times keep ``dst``'s), ``most_frequent`` adds the counts of
    equal values and keeps the strongest slots (count, then newest sighting, then lowest code).
    ``src`` is left as it was (the caller clears it).

    Assumes: dst != src, both valid rows. O(A + K**2).
    """
    A = value.shape[1]
    m_max = 2 * (stamp.shape[1] - A) // 3 + 1
    codes = np.empty(m_max, np.int64)
    counts = np.empty(m_max, np.int64)
    times = np.empty(m_max, np.int64)
    srcs = np.empty(m_max, np.int64)
    for a in range(A):
        if spec[a, 0] != RULE_MOST_FREQUENT:
            s = source[src, a]
            if s >= 0:
                _offer(value, stamp, source, spec, dst, a, value[src, a], int(np.int64(s)), stamp[src, a], False)
            continue
        lo = spec[a, 1]
        k = spec[a, 2]
        m = 0
        for row in (dst, src):
            for j in range(lo, lo + k):
                c = stamp[row, A + 3 * j]
                if c < 0:
                    continue
                n = stamp[row, A + 3 * j + 1]
                tj = stamp[row, A + 3 * j + 2]
                q = -1
                for i in range(m):
                    if codes[i] == c:
                        q = i
                        break
                if q < 0:
                    codes[m] = c
                    counts[m] = n
                    times[m] = tj
                    srcs[m] = source[row, A + j]
                    m += 1
                else:
                    counts[q] += n
                    if tj > times[q]:
                        times[q] = tj
                        srcs[q] = source[row, A + j]
        for j in range(lo, lo + k):
            stamp[dst, A + 3 * j] = -1
            stamp[dst, A + 3 * j + 1] = 0
            stamp[dst, A + 3 * j + 2] = 0
            source[dst, A + j] = -1
        for j in range(lo, lo + min(k, m)):  # the strongest first: selection over at most 2k values
            b = -1
            for i in range(m):
                if codes[i] < 0:
                    continue
                if b < 0 or counts[i] > counts[b] or (counts[i] == counts[b] and (
                        times[i] > times[b] or (times[i] == times[b] and codes[i] < codes[b]))):
                    b = i
            stamp[dst, A + 3 * j] = codes[b]
            stamp[dst, A + 3 * j + 1] = counts[b]
            stamp[dst, A + 3 * j + 2] = times[b]
            source[dst, A + j] = srcs[b]
            codes[b] = -1
        _lead(value, stamp, source, spec, dst, a)
