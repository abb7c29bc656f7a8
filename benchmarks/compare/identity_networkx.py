"""Peer: networkx connected components over the same links (each group's identifiers joined by a
path, lone identifiers as nodes). ``ingest`` builds the graph and counts its components."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

NAME = "networkx connected_components"


def ingest(keys: Sequence[int], offsets: Sequence[int]) -> int:
    """Link group ``g`` = ``keys[offsets[g]:offsets[g+1]]`` (Python ints); return the number of
    components."""
    import networkx as nx

    g = nx.Graph()
    g.add_nodes_from(keys)
    g.add_edges_from(
        (keys[j], keys[j + 1])
        for lo, hi in pairwise(offsets)
        for j in range(lo, hi - 1)
    )
    return sum(1 for _ in nx.connected_components(g))
