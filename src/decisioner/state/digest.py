"""A digest of canonical, order-independent state: equal for equal events whatever the backend
(embedded or Redis) and however many workers applied them.

What is canonical (so neither row numbers, person ids nor arrival order show):

* **people**: each person is named by the smallest identifier key it holds (hex); with it go the
  sorted keys of every identifier (the identity partition), the interests decayed to ``at``
  (facet value names and scores to 6 significant digits, sorted by name), the attributes
  (value, source, time), the consent grid, the event count and the last-seen time;
* **counters**: per item the popularity decayed to ``at`` and the decayed interaction and
  engagement counts (6 significant digits, items by id), per placement the exposures and clicks
  summed over items and the decisions made (integers).

Policy arm choices are random draws whose order differs between worker counts, so per-arm counts
are left out; their totals are in (exposures and decisions per placement). The digest is the
SHA-256 of the canonical JSON (keys sorted).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

if TYPE_CHECKING:
    from ..engine import Engine

__all__ = ["canonical", "digest", "people_of_engine"]


def _sig(x: float) -> float:
    """``x`` to 6 significant digits (0.0 for anything smaller than 1e-12)."""
    if not math.isfinite(x) or abs(x) < 1e-12:
        return 0.0
    return float(f"{x:.6g}")


def _person(engine: Engine, row: int, keys: Iterable[int], at: int) -> tuple[str, dict[str, Any]]:
    names = engine.catalog.fv_names
    fids, scores = engine.profiles.read_copy(row, at, engine.half_lives_)
    interests = sorted((names[int(f)], _sig(float(s))) for f, s in zip(fids.tolist(), scores.tolist()))
    ks = sorted(f"{int(k):016x}" for k in keys)
    attrs = {n: [v, s, t] for n, (v, s, t) in sorted(engine.attributes_.get(row).items())}
    return ks[0], {
        "ids": ks, "interests": interests, "attributes": attrs, "consent": int(engine.consent.allow_[row]),
        "events": int(engine.profiles.events_[row]), "last_seen": int(engine.profiles.last_seen_[row]),
    }


def people_of_engine(engine: Engine) -> dict[int, list[int]]:
    """Row -> identifier keys of every live profile of an embedded engine."""
    g = engine.identity
    out: dict[int, list[int]] = {}
    root = g.rows_["root"][: g.n_rows]
    for row in np.flatnonzero(root >= 0).tolist():
        nodes = g.nodes_[g.members(row)]
        live = nodes["key"][(nodes["state"] & 0x0F) == 0]  # live identifiers (not blocked, not tombstones)
        if live.shape[0]:
            out[row] = [int(x) for x in live.tolist()]
    return out


def canonical(engine: Engine, people: Mapping[int, Iterable[int]], *, at: int,
              counters: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """The canonical state (see the module docstring) of ``engine``'s rows ``people`` (row ->
    identifier keys) and counters; ``counters`` are decision totals per placement index
    (``{"decisions": ...}``) when the engine did not count them itself."""
    persons = dict(_person(engine, row, keys, at) for row, keys in people.items() if list(keys))
    sc = engine.scorer
    pop, cnt = sc.popularity_, sc.counters_
    f_pop = math.pow(2.0, -(at - pop.t_ref_) / pop.half_life_ms) if pop.t_ref_ else 0.0
    f_cnt = math.pow(2.0, -(at - cnt.t_ref_) / cnt.half_life_ms) if cnt.t_ref_ else 0.0
    items = {}
    for i, item in enumerate(engine.catalog.ids):
        p, c0, c1 = float(pop.acc_[i]) * f_pop, float(cnt.counts_[i, 0]) * f_cnt, float(cnt.counts_[i, 1]) * f_cnt
        if p or c0 or c1:
            items[item] = [_sig(p), _sig(c0), _sig(c1)]
    placements = {}
    decisions = counters.get("decisions") if counters is not None else None
    for i, spec in enumerate(engine.config.placements):
        st = engine.placements_.states[i]
        entry: dict[str, Any] = {}
        if st is not None:
            entry["exposures"] = round(float(st.trials.sum()))
            entry["clicks"] = round(float(st.clicks.sum()))
        if decisions is not None:
            entry["decisions"] = round(float(decisions[i]))
        placements[spec.name] = entry
    return {"people": dict(sorted(persons.items())), "items": dict(sorted(items.items())), "placements": placements}


def digest(state: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of :func:`canonical`'s JSON with sorted keys."""
    return hashlib.sha256(msgspec.json.encode(state, order="sorted")).hexdigest()
