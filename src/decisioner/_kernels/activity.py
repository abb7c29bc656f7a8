"""Per-profile activity: the last time of each counted event type, and windowed counts.

State (owned by :class:`decisioner.activity.ActivityStore`), T counted types, B buckets:

* ``last`` int64[P, T]: event time of the newest event of each type (0 = never);
* ``ring`` uint16[P, T, B]: events per bucket; bucket number ``d = time // bucket_ms`` lives in
  slot ``d % B``; counts saturate at 65535;
* ``head`` int32[P]: the newest bucket number recorded for the row, any type (-1 = none).

A row holds the buckets ``head - B + 1 .. head``. An event older than that is not counted
(its time still updates ``last`` if newer); an event in a newer bucket first clears the slots
of the buckets it skips, for every type.
"""

from __future__ import annotations

import numpy as np

from ._jit import kernel

__all__ = ["activity_record", "activity_count", "activity_merge"]


@kernel
def activity_record(
    last: np.ndarray, ring: np.ndarray, head: np.ndarray, r: int, ti: int, time: int, bucket_ms: int
) -> None:
    """Record one event of type index ``ti`` at ``time`` (epoch ms) on row ``r``.

    Assumes: 0 <= r < P, 0 <= ti < T, time >= 0. O(T * B) when the head moves, else O(1).
    """
    B = ring.shape[2]
    d = time // bucket_ms
    h = head[r]
    if d > h:
        if h < 0 or d - h >= B:
            ring[r, :, :] = 0
        else:
            for x in range(h + 1, d + 1):
                ring[r, :, x % B] = 0
        head[r] = d
        h = d
    if d > h - B:
        c = ring[r, ti, d % B]
        if c < 65535:
            ring[r, ti, d % B] = c + 1
    if time > last[r, ti]:
        last[r, ti] = time


@kernel
def activity_count(
    ring: np.ndarray, head: np.ndarray, ti: int, dnow: int, nb: int, out: np.ndarray
) -> None:
    """Per row: events of type ``ti`` in the ``nb`` buckets up to and including bucket ``dnow``
    (those the row still holds); writes ``out`` (float64[P]).

    Assumes: 1 <= nb <= B. O(P * nb).
    """
    B = ring.shape[2]
    for r in range(ring.shape[0]):
        h = head[r]
        lo = dnow - nb + 1
        if h - B + 1 > lo:
            lo = h - B + 1
        hi = dnow if dnow < h else h
        s = 0
        for d in range(lo, hi + 1):
            s += ring[r, ti, d % B]
        out[r] = s


@kernel
def activity_merge(last: np.ndarray, ring: np.ndarray, head: np.ndarray, dst: int, src: int) -> None:
    """Fold row ``src`` into ``dst``: the newer head, counts of the buckets the new head keeps
    added (saturating), last times by maximum; ``src`` is cleared.

    Assumes: dst != src, both valid rows. O(T * B).
    """
    B = ring.shape[2]
    T = ring.shape[1]
    hd = head[dst]
    hs = head[src]
    h = hd if hd > hs else hs
    if h >= 0:
        for ti in range(T):
            for d in range(h - B + 1, h + 1):
                s = 0
                if hd >= 0 and hd - B < d <= hd:
                    s += ring[dst, ti, d % B]
                if hs >= 0 and hs - B < d <= hs:
                    s += ring[src, ti, d % B]
                tmp = s if s < 65535 else 65535
                ring[dst, ti, d % B] = tmp
    head[dst] = h
    for ti in range(T):
        if last[src, ti] > last[dst, ti]:
            last[dst, ti] = last[src, ti]
        last[src, ti] = 0
    ring[src, :, :] = 0
    head[src] = -1
