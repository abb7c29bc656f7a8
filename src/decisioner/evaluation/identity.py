"""Identity resolution quality against a synthetic world's true people.

The world's events are linked in order (bulk, with their times and channels) by an
:class:`~decisioner.identity.IdentityGraph` built from the world's identity configuration, with
the merge rules on or off. Scores are pairwise over the identifiers seen in events:

* **precision**: of the identifier pairs resolved to one profile, the share that belong to one
  true person (a placeholder value belongs to nobody, so any pair with one is wrong; a shared
  household tablet belongs to its owner);
* **recall**: of the *linkable* pairs, the share resolved to one profile. A pair is linkable
  when the two identifiers are connected by co-occurrences in events of their own person (a
  cookie whose sessions never log in cannot be linked by anyone: the evidence is not there);
* **recall_all_pairs**: the same over every pair of one person's observed identifiers (the
  ceiling set by the data, reported for transparency);
* **precision_excluding_shared_devices**: precision with pairs involving a shared household
  device left unscored (the device is two people's; the truth names only its owner);
* **over_merged_people**: people sharing a profile with another person's identifier or a
  placeholder; **under_merged_people**: people with a linkable pair split over two profiles.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from ..config import IdentitySpec
from ..errors import SchemaError
from ..hashing import resolve_key
from ..identity.graph import IdentityGraph

if TYPE_CHECKING:
    from ..datasets.synthetic import World

__all__ = ["evaluate_world", "evaluate_path", "pair_count"]


def pair_count(*labels: np.ndarray) -> int:
    """Number of unordered pairs of items that agree on every label array (same length)."""
    if labels[0].shape[0] < 2:
        return 0
    if len(labels) == 1:
        _, counts = np.unique(labels[0], return_counts=True)
    else:
        _, counts = np.unique(np.stack(labels, axis=1), axis=0, return_counts=True)
    c = counts.astype(np.int64)
    return int((c * (c - 1) // 2).sum())


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        p = self.parent
        while p[x] != x:
            p[x] = p[p[x]]
            x = p[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def evaluate_world(world: World, *, rules: bool = True) -> dict[str, Any]:
    """Score identity resolution on ``world`` (see the module docstring).

    Parameters
    ----------
    world
        A synthetic world (:func:`decisioner.datasets.synthetic.generate_world` or ``load_world``).
    rules
        Merge rules on (the world's identity configuration) or off (plain connected components).

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1``, ``recall_all_pairs``, ``over_merged_people``,
        ``under_merged_people``, counts, the graph's refusals by reason and timings.
    """
    t0 = time.perf_counter()
    ident = dict(world.config.get("identity", {}))
    ident["rules"] = rules
    spec = msgspec.convert(ident, IdentitySpec)
    key = resolve_key(spec.hash_key, spec.hash_key_env)
    n_ids = len(world.identifiers)
    g = IdentityGraph(key, spec=spec, capacity=max(16, n_ids))
    # spelling -> identifier index, and each spelling's key (computed once)
    spelled: dict[tuple[str, str], int] = {(t, v): i for t, v, i in world.spellings}
    cache: dict[tuple[str, str], tuple[int, int, int] | None] = {}
    missing: tuple[int, int, int] | None = (-1, -1, -1)
    keys0: list[int] = []
    keys1: list[int] = []
    types: list[int] = []
    offsets = [0]
    times: list[int] = []
    sources: list[int] = []
    ev_ids: list[list[int]] = []
    rejected = 0
    for ev in world.events:
        ids = ev["ids"]
        group: list[tuple[int, int, int]] = []
        bad = False
        for t, v in ids.items():
            hit = cache.get((t, v), missing)
            if hit is missing:
                try:
                    k, _ = g.keys_of({t: v})
                    hit = (int(k[0, 0]), int(k[1, 0]), g.type_code(t))
                except SchemaError:
                    hit = None
                cache[(t, v)] = hit
            if hit is None:
                bad = True
                break
            group.append(hit)
        if bad:  # a malformed identifier rejects the whole event, as the engine does
            rejected += 1
            continue
        for k0, k1, c in group:
            keys0.append(k0)
            keys1.append(k1)
            types.append(c)
        offsets.append(len(keys0))
        times.append(int(ev["time"]))
        sources.append(g.source_code(str(ev.get("channel", "web"))))
        ev_ids.append([spelled[(t, v)] for t, v in ids.items() if (t, v) in spelled])
    t_keys = time.perf_counter() - t0
    keys = np.array([keys0, keys1], dtype=np.uint64)
    t1 = time.perf_counter()
    g.link_many(keys, np.array(types, dtype=np.int8), np.array(offsets, dtype=np.int64),
                times=np.array(times, dtype=np.int64), sources=np.array(sources, dtype=np.int64))
    t_link = time.perf_counter() - t1

    # observed identifiers, their predicted profile, their true person, their linkable component
    owner = np.array([p for _, _, p in world.identifiers], dtype=np.int64)
    observed = sorted({i for ids in ev_ids for i in ids})
    obs = np.array(observed, dtype=np.int64)
    first_key: dict[int, tuple[int, int]] = {}
    splits = 0
    for (t, v), hit in cache.items():
        i = spelled.get((t, v))
        if i is None or hit is None:
            continue
        kt = (hit[0], hit[1] & 0xFFFFFFFF)
        prev = first_key.setdefault(i, kt)
        splits += prev != kt
    okeys = np.array([[first_key[i][0] for i in observed], [first_key[i][1] for i in observed]], dtype=np.uint64)
    rows = g.resolve_keys(okeys).astype(np.int64) if observed else np.zeros(0, np.int64)
    pred = np.where(rows >= 0, rows, -1 - np.arange(obs.shape[0]))
    n_people = world.spec.n_people
    truth = np.where(owner[obs] >= 0, owner[obs], n_people + obs)  # a placeholder is nobody's
    uf = _UnionFind(n_ids)
    for ids in ev_ids:
        for x, a in enumerate(ids):
            for b in ids[x + 1 :]:
                if owner[a] >= 0 and owner[a] == owner[b]:
                    uf.union(a, b)
    link = np.array([uf.find(int(i)) for i in obs], dtype=np.int64)

    pred_pairs = pair_count(pred)
    true_pairs = pair_count(truth)
    link_pairs = pair_count(link)
    tp = pair_count(pred, truth)
    tp_link = pair_count(pred, link)
    precision = tp / pred_pairs if pred_pairs else 1.0
    recall = tp_link / link_pairs if link_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    # over-merged: people in a profile holding identifiers of several truths
    over: set[int] = set()
    order = np.argsort(pred, kind="stable")
    ps, ts = pred[order], truth[order]
    bounds = np.flatnonzero(np.diff(ps)) + 1
    for grp_t in np.split(ts, bounds):
        u = np.unique(grp_t)
        if u.shape[0] > 1:
            over.update(int(x) for x in u if x < n_people)
    under: set[int] = set()
    order = np.argsort(link, kind="stable")
    ls, pp, tt = link[order], pred[order], truth[order]
    bounds = np.flatnonzero(np.diff(ls)) + 1
    for grp_p, grp_t in zip(np.split(pp, bounds), np.split(tt, bounds)):
        if np.unique(grp_p).shape[0] > 1 and grp_t[0] < n_people:
            under.add(int(grp_t[0]))
    # the same precision with pairs that involve a shared household device left unscored (such
    # a device belongs to two people; the truth names one owner)
    shared_ids = {spelled[k] for k in world.shared_identifiers if k in spelled}
    keep = np.array([int(i) not in shared_ids for i in obs], dtype=bool)
    pp_ex = pair_count(pred[keep])
    precision_ex = pair_count(pred[keep], truth[keep]) / pp_ex if pp_ex else 1.0
    people = int(np.unique(owner[obs][owner[obs] >= 0]).shape[0])
    m = g.metrics()
    return {
        "rules": "on" if rules else "off",
        "precision": round(precision, 6),
        "recall": round(recall, 6),
        "f1": round(f1, 6),
        "recall_all_pairs": round(tp / true_pairs if true_pairs else 1.0, 6),
        "precision_excluding_shared_devices": round(precision_ex, 6),
        "over_merged_people": len(over),
        "under_merged_people": len(under),
        "people": people,
        "identifiers": int(obs.shape[0]),
        "profiles": int(np.unique(pred).shape[0]),
        "pairs": {"predicted": pred_pairs, "true": true_pairs, "linkable": link_pairs, "correct": tp,
                  "linkable_found": tp_link},
        "events": len(world.events),
        "rejected_events": rejected,
        "normalisation_splits": int(splits),
        "refused": m["refused"],
        "anonymous_events": m["anonymous_events"],
        "world": {"people": n_people, "seed": world.spec.seed,
                  "shared_device_rate": world.spec.shared_device_rate,
                  "placeholder_rate": world.spec.placeholder_rate,
                  "shared_devices": len(world.shared_identifiers)},
        "seconds": {"keys": round(t_keys, 3), "link": round(t_link, 3),
                    "total": round(time.perf_counter() - t0, 3)},
    }


def evaluate_path(path: str | Path, *, rules: str = "both") -> dict[str, Any]:
    """:func:`evaluate_world` on a world directory; ``rules`` ``on``, ``off`` or ``both`` (the
    rules-on figures with the rules-off ones under ``rules_off``)."""
    from ..datasets.synthetic import load_world

    world = load_world(path)
    if rules == "off":
        return evaluate_world(world, rules=False)
    out = evaluate_world(world, rules=True)
    if rules == "both":
        off = evaluate_world(world, rules=False)
        out["rules_off"] = {k: off[k] for k in (
            "precision", "recall", "f1", "recall_all_pairs", "precision_excluding_shared_devices", "over_merged_people",
            "under_merged_people", "profiles", "rejected_events", "refused")}
    return out
