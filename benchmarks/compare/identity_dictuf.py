"""Peer: a plain-Python union-find over a ``dict`` (path halving, union by size), the baseline an
engineer writes first. ``ingest`` links the same groups ``IdentityGraph.link_many`` gets and
returns the number of components."""

from __future__ import annotations

from collections.abc import Sequence

NAME = "python dict union-find"


def ingest(keys: Sequence[int], offsets: Sequence[int]) -> int:
    """Link group ``g`` = ``keys[offsets[g]:offsets[g+1]]`` (Python ints); return the number of
    components."""
    parent: dict[int, int] = {}
    size: dict[int, int] = {}

    def find(x: int) -> int:
        while True:
            p = parent[x]
            if p == x:
                return x
            gp = parent[p]
            if gp == p:
                return p
            parent[x] = gp
            x = gp

    comps = 0
    for g in range(len(offsets) - 1):
        lo, hi = offsets[g], offsets[g + 1]
        a = keys[lo]
        if a not in parent:
            parent[a] = a
            size[a] = 1
            comps += 1
        ra = find(a)
        for j in range(lo + 1, hi):
            b = keys[j]
            if b not in parent:
                parent[b] = b
                size[b] = 1
                comps += 1
            rb = find(b)
            if ra != rb:
                if size[ra] < size[rb]:
                    ra, rb = rb, ra
                parent[rb] = ra
                size[ra] += size[rb]
                comps -= 1
    return comps
