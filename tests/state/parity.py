"""Helpers of the parity tests: a generated world's identifier stream, fed to the embedded graph
and the Redis graph side by side, and the check that both hold the same graph."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest

from decisioner.config import IdentitySpec
from decisioner.datasets.synthetic import WorldSpec, generate_world
from decisioner.errors import SchemaError
from decisioner.hashing import resolve_key
from decisioner.identity import IdentityGraph
from decisioner.state.identity import RedisIdentity, partition_digest

__all__ = ["world_stream", "link_both", "same_graph"]


def world_stream() -> tuple[IdentitySpec, bytes, list[dict[str, Any]]]:
    w = generate_world(WorldSpec(n_people=250, n_items=30, seed=11, shared_device_rate=0.05, placeholder_rate=0.03))
    spec = msgspec.convert(dict(w.config.get("identity", {})), IdentitySpec)
    return spec, resolve_key(spec.hash_key, spec.hash_key_env), w.events


def link_both(g: IdentityGraph, r: RedisIdentity, ev: dict[str, Any], **kw: Any) -> tuple[int, int]:
    """Link one event into both graphs; check they agree on the outcome; returns the rows."""
    try:
        a = g.link_one(ev["ids"], time=ev["time"], source=ev.get("channel"), **kw)
    except SchemaError as exc:
        with pytest.raises(SchemaError, match=re.escape(str(exc))):
            r.link_one(ev["ids"], time=ev["time"], source=ev.get("channel"), **kw)
        return -1, -1
    b = r.link_one(ev["ids"], time=ev["time"], source=ev.get("channel"), **kw)
    assert (a.status, len(a.absorbed)) == (b.status, len(b.absorbed)), ev
    assert a.anonymous == (b.person == -1)
    return a.row, b.person


def same_graph(g: IdentityGraph, r: RedisIdentity) -> None:
    part = r.partition()
    assert part == g.partition()
    assert partition_digest(part) == partition_digest(g.partition())
    assert r.metrics()["profiles"] == len(part)
    mg, mr = g.metrics(), r.metrics()
    for name in ("identifiers", "profiles", "tombstones", "evidence_edges", "do_not_link_pairs", "merges", "events",
                 "suppressed_events", "anonymous_events", "readmitted", "refused"):
        assert mr[name] == mg[name], name
