"""Slow, obviously-correct pure-Python twins of every kernel (stumpy's ``naive.py``).

Each twin states the kernel's contract in the plainest Python we could write: Python ints with
explicit 64-bit masking for splitmix64, dicts and lists of sets for the identity graph, a list
of K slots for an affinity row, dense loops over items for scoring, ``sorted`` for top-k. They
share no code with ``decisioner._kernels``; tests compare the two on edge cases and on seeded
random inputs.

Where the kernel's result depends on floating-point detail (float32 storage of affinities, the
order of additions, the RNG stream), the twin performs the same operations in the same order so
results match exactly; independent checks with tolerances live in the tests themselves.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

import numpy as np

# --------------------------------------------------------------------------- rng (splitmix64)

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


def seed_state(seed: int, stream: int = 0) -> int:
    """Twin of ``rng.seed_state``: the splitmix64 finaliser of a seed/stream mix (as an int)."""
    z = (seed * GOLDEN + stream * 0xD1B54A32D192ED03 + 0x632BE59BD9B4E019) & MASK64
    return mix64(z)


def mix64(z: int) -> int:
    """splitmix64 finaliser on a Python int, masked to 64 bits after every multiply."""
    z = ((z ^ (z >> 30)) * _M1) & MASK64
    z = ((z ^ (z >> 27)) * _M2) & MASK64
    return z ^ (z >> 31)


class SplitMix64:
    """Pure-Python splitmix64 stream; ``state`` is the same word the kernels keep in uint64[1]."""

    def __init__(self, state: int | np.ndarray) -> None:
        self.state = int(state[0]) if isinstance(state, np.ndarray) else int(state) & MASK64

    def next(self) -> int:
        self.state = (self.state + GOLDEN) & MASK64
        return mix64(self.state)

    def uniform(self) -> float:
        """The top 53 bits as a float in [0, 1)."""
        return (self.next() >> 11) * 2.0**-53

    def below(self, n: int) -> int:
        return int(self.uniform() * n)

    def normal(self) -> float:
        """Box-Muller, one value per call (the twin of the pair is discarded)."""
        u1 = 1.0 - self.uniform()
        u2 = self.uniform()
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)

    def gamma(self, shape: float) -> float:
        """Marsaglia-Tsang (2000); shape < 1 by drawing Gamma(shape + 1) * U**(1/shape)."""
        boost = 1.0
        if shape < 1.0:
            boost = (1.0 - self.uniform()) ** (1.0 / shape)
            shape += 1.0
        d = shape - 1.0 / 3.0
        c = 1.0 / math.sqrt(9.0 * d)
        while True:
            x = self.normal()
            v = 1.0 + c * x
            if v <= 0.0:
                continue
            v = v * v * v
            u = 1.0 - self.uniform()
            if math.log(u) < 0.5 * x * x + d - d * v + d * math.log(v):
                return d * v * boost

    def beta(self, a: float, b: float) -> float:
        """X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b); both zero (tiny shapes): a coin."""
        x = self.gamma(a)
        y = self.gamma(b)
        if x + y <= 0.0:
            return 1.0 if self.uniform() < a / (a + b) else 0.0
        return x / (x + y)


def rng_fill_uniform(state: int, n: int) -> tuple[list[float], int]:
    """``n`` uniforms from ``state``; returns them and the final state."""
    g = SplitMix64(state)
    return [g.uniform() for _ in range(n)], g.state


def rng_fill_beta(state: int, a: float, b: float, n: int) -> tuple[list[float], int]:
    """``n`` Beta(a, b) draws from ``state``; returns them and the final state."""
    g = SplitMix64(state)
    return [g.beta(a, b) for _ in range(n)], g.state


# --------------------------------------------------------------------------- identity graph

#: node states of the kernel's records (``_kernels/graph.py``)
LIVE, BLOCKED, TOMB, FREE = 0, 1, 2, 3
EPOCH_MS, MINUTE_MS = 946_684_800_000, 60_000
#: refusal reasons in the kernel's order
REASONS = ("blocked", "tombstoned", "collision", "unique", "limit", "size", "dnl")


def minutes(t_ms: int) -> int:
    return min(max((t_ms - EPOCH_MS) // MINUTE_MS, 0), 2**31 - 1)


class IdentityGraphRef:
    """The identity graph's contract with explicit sets (no union-find, no hashing detail).

    Identifiers are nodes numbered as they are stored (a removed node's number is reused last
    removed first); components are explicit sets of nodes, each owning one profile row.

    * **Linking one event** (keys, check tags, blocked flags, type codes): duplicates are
      ignored; a flagged key is refused (and stored as a blocked node when new); a stored key
      with another non-zero tag is a collision and refused; a blocked node is refused; an erased
      (tombstoned) node poisons the event unless ``readmit``: then nothing is linked and the
      event resolves to its highest-priority live identifier's row, else to the scratch row. An
      event with no usable key resolves to the scratch row.
    * The usable keys are taken in priority order (stable; all 0 with rules off): the first is
      the anchor and always joins; each other component joins unless, with rules on, the size
      cap or a limit of a type would be exceeded (``unique`` when that limit is 1), or a
      do-not-link pair joins it to the components accepted so far (always checked). A refused
      new key is not stored.
    * Survivor row: the largest accepted component with a row (ties: the lowest row); the other
      rows are absorbed in order of first appearance in the event; a component without a row
      takes one from the free stack (last released first), else the next never-used row.
    * Evidence: the anchor is linked to every other live identifier of the event that it is not
      already linked to (edge: anchor, other, event time, source), in priority order.
    * Recompute (unmerge): the members start as single nodes; their live edges with both ends
      among them are replayed in evidence order through the same rules (no refusal counted);
      pieces in order (largest, then lowest node) take ``keep_row`` then fresh rows.
    """

    def __init__(
        self, *, rules: bool = True, prio: Sequence[int] = (), slot: Sequence[int] = (),
        limits: Sequence[int] = (), cap: int = 0,
    ) -> None:
        self.rules = rules
        self.prio = list(prio) + [0] * (128 - len(prio))
        self.slot = list(slot) + [-1] * (128 - len(slot))
        self.limits = list(limits)
        self.cap = cap
        self.key: list[int] = []  # per node record
        self.tag: list[int] = []
        self.type: list[int] = []
        self.state: list[int] = []
        self.seen: list[int] = []
        self.node_of: dict[int, int] = {}
        self.free_nodes: list[int] = []
        self.comp_of: dict[int, int] = {}  # live node -> component label
        self.members: dict[int, set[int]] = {}
        self.comp_row: dict[int, int] = {}
        self.row_comp: dict[int, int] = {}
        self.free: list[int] = []
        self.n_rows = 0
        self.scratch = -1
        self.merges = 0
        self.refused = dict.fromkeys(REASONS, 0)
        self.events = self.suppressed = self.anonymous = self.readmitted = 0
        self.edges: list[list[int]] = []  # [a, b, t, src, alive]
        self.dnl: list[tuple[int, int]] = []
        self._labels = 0

    # ------------------------------------------------------------------ helpers
    @property
    def n_records(self) -> int:
        return len(self.key)

    @property
    def n_live(self) -> int:
        return len(self.comp_of)

    def _alloc(self, key: int, tag: int, typ: int, state: int) -> int:
        if self.free_nodes:
            n = self.free_nodes.pop()
            self.key[n], self.tag[n], self.type[n], self.state[n], self.seen[n] = key, tag, typ, state, 0
        else:
            n = len(self.key)
            self.key.append(key)
            self.tag.append(tag)
            self.type.append(typ)
            self.state.append(state)
            self.seen.append(0)
        self.node_of[key] = n
        return n

    def _new_row(self) -> int:
        if self.free:
            return self.free.pop()
        self.n_rows += 1
        return self.n_rows - 1

    def _scratch(self) -> int:
        if self.scratch < 0:
            self.scratch = self._new_row()
        return self.scratch

    def _single(self, n: int) -> int:
        label = self._labels
        self._labels += 1
        self.comp_of[n] = label
        self.members[label] = {n}
        return label

    def _counts(self, nodes: Iterable[int]) -> list[int]:
        c = [0] * len(self.limits)
        if self.rules:
            for n in nodes:
                s = self.slot[self.type[n]]
                if s >= 0:
                    c[s] += 1
        return c

    def _refuse(self, acc_nodes: set[int], acc_cnt: list[int], nodes: set[int], check_rules: bool) -> str | None:
        if check_rules and self.rules:
            if self.cap > 0 and len(acc_nodes) + len(nodes) > self.cap:
                return "size"
            c = self._counts(nodes)
            for s, lim in enumerate(self.limits):
                if acc_cnt[s] + c[s] > lim:
                    return "unique" if lim == 1 else "limit"
        for p, q in self.dnl:
            if (p in acc_nodes and q in nodes) or (q in acc_nodes and p in nodes):
                return "dnl"
        return None

    def has_edge(self, a: int, b: int) -> bool:
        return any(e[4] and {e[0], e[1]} == {a, b} for e in self.edges)

    # ------------------------------------------------------------------ linking
    def link(
        self, keys: Sequence[int], types: Sequence[int], tags: Sequence[int] | None = None,
        flags: Sequence[bool] | None = None, t_ms: int = 0, src: int = 0, readmit: bool = False,
    ) -> tuple[int, list[int], dict[str, bool]]:
        """Returns (row, absorbed rows, status: new / refused / suppressed / anonymous)."""
        m = len(keys)
        tags = list(tags) if tags is not None else [0] * m
        flags = list(flags) if flags is not None else [False] * m
        st = {"new": False, "refused": False, "suppressed": False, "anonymous": False}
        items: list[tuple[int, str, int]] = []  # (j, kind, node) kind: node / new / revive
        poisoned = False
        for j, key in enumerate(keys):
            key = int(key)
            if key in [int(k) for k in keys[:j]]:
                continue
            n = self.node_of.get(key)
            if flags[j]:
                self.refused["blocked"] += 1
                st["refused"] = True
                if n is None:
                    self._alloc(key, tags[j], types[j], BLOCKED)
                continue
            if n is not None:
                if tags[j] and self.tag[n] and self.tag[n] != tags[j]:
                    self.refused["collision"] += 1
                    st["refused"] = True
                    continue
                if self.state[n] == BLOCKED:
                    self.refused["blocked"] += 1
                    st["refused"] = True
                    continue
                if self.state[n] == TOMB:
                    if not readmit:
                        self.refused["tombstoned"] += 1
                        poisoned = True
                        continue
                    items.append((j, "revive", n))
                    continue
                if tags[j] and not self.tag[n]:
                    self.tag[n] = tags[j]
                items.append((j, "node", n))
            else:
                items.append((j, "new", -1))
        prio = (lambda j: self.prio[types[j]]) if self.rules else (lambda j: 0)
        order = sorted(items, key=lambda it: -prio(it[0]))  # stable
        if poisoned:
            self.suppressed += 1
            st["suppressed"] = True
            for _j, kind, n in order:
                if kind == "node":
                    return self.comp_row[self.comp_of[n]], [], st
            self.anonymous += 1
            st["anonymous"] = True
            return self._scratch(), [], st
        if not items:
            self.anonymous += 1
            st["anonymous"] = True
            return self._scratch(), [], st
        self.events += 1
        acc_labels: list[int] = []  # accepted existing components, in priority order
        acc_nodes: set[int] = set()
        acc_cnt = [0] * len(self.limits)
        accepted: dict[int, bool] = {}
        for z, (j, kind, n) in enumerate(order):
            if kind == "node":
                label = self.comp_of[n]
                if label in acc_labels:
                    accepted[j] = True
                    continue
                nodes = set(self.members[label])
            else:
                nodes = {-1 - j}  # a placeholder for a not yet stored node
            if z > 0:
                cnt_nodes = self._counts(x for x in nodes if x >= 0)
                if kind != "node" and self.rules and self.slot[types[j]] >= 0:
                    cnt_nodes[self.slot[types[j]]] += 1
                reason = None
                if self.rules:
                    if self.cap > 0 and len(acc_nodes) + len(nodes) > self.cap:
                        reason = "size"
                    else:
                        for s, lim in enumerate(self.limits):
                            if acc_cnt[s] + cnt_nodes[s] > lim:
                                reason = "unique" if lim == 1 else "limit"
                                break
                if reason is None and kind == "node":
                    for p, q in self.dnl:
                        if (p in acc_nodes and q in nodes) or (q in acc_nodes and p in nodes):
                            reason = "dnl"
                            break
                if reason is not None:
                    self.refused[reason] += 1
                    st["refused"] = True
                    accepted[j] = False
                    continue
            accepted[j] = True
            if kind == "node":
                acc_labels.append(self.comp_of[n])
            acc_nodes |= nodes
            c = self._counts(x for x in nodes if x >= 0)
            if kind != "node" and self.rules and self.slot[types[j]] >= 0:
                c[self.slot[types[j]]] += 1
            acc_cnt = [a + b for a, b in zip(acc_cnt, c)]
        node_at: dict[int, int] = {}
        fresh_labels: list[tuple[int, int]] = []  # (j, label) of inserted keys
        for j, kind, n in sorted(items):
            if kind == "node":
                node_at[j] = n
            elif accepted.get(j):
                if kind == "revive":
                    self.readmitted += 1
                    self.state[n] = LIVE
                    self.type[n] = types[j]
                    self.seen[n] = 0
                else:
                    n = self._alloc(int(keys[j]), tags[j], types[j], LIVE)
                node_at[j] = n
                fresh_labels.append((j, self._single(n)))
            elif kind == "revive":
                node_at[j] = n  # stays erased
        # distinct accepted components in event order
        comps: list[int] = []
        for j, _kind, _n in sorted(items):
            if accepted.get(j) and j in node_at and self.state[node_at[j]] == LIVE:
                label = self.comp_of[node_at[j]]
                if label not in comps:
                    comps.append(label)
        with_row = [c for c in comps if c in self.comp_row]
        survivor = min(with_row, key=lambda c: (-len(self.members[c]), self.comp_row[c]), default=None)
        absorbed = [self.comp_row[c] for c in with_row if c != survivor]
        if survivor is not None:
            row = self.comp_row[survivor]
        else:
            row = self._new_row()
            st["new"] = True
        merged = comps[0]
        for c in comps[1:]:
            for x in self.members.pop(c):
                self.comp_of[x] = merged
                self.members[merged].add(x)
            self.merges += 1
        for c in comps:
            r = self.comp_row.pop(c, None)
            if r is not None:
                self.row_comp.pop(r, None)
        self.comp_row[merged] = row
        self.row_comp[row] = merged
        anchor = node_at[order[0][0]]
        for j, _kind, _n in order:  # the order the links were decided
            x = node_at.get(j, -1)
            if x < 0 or self.state[x] != LIVE:
                continue
            self.seen[x] = max(self.seen[x], minutes(t_ms))
            if x != anchor and not self.has_edge(anchor, x):
                self.edges.append([anchor, x, t_ms, src, 1])
        return row, absorbed, st

    def link_many(
        self, keys: Sequence[int], types: Sequence[int], offsets: Sequence[int], **kw: object
    ) -> tuple[list[int], list[int], list[int]]:
        """Per-group rows at the end of the batch (-1: empty group or no usable identifier),
        absorbed rows and the group that absorbed each."""
        rows: list[int] = []
        absorbed: list[int] = []
        into: list[int] = []
        for g in range(len(offsets) - 1):
            lo, hi = offsets[g], offsets[g + 1]
            if hi <= lo:
                rows.append(-1)
                continue
            row, ab, st = self.link(keys[lo:hi], types[lo:hi], **kw)  # type: ignore[arg-type]
            rows.append(-1 if st["anonymous"] else row)
            absorbed += ab
            into += [g] * len(ab)
        fwd = {a: rows[g] for a, g in zip(absorbed, into)}
        final = []
        for r in rows:
            while r in fwd:
                r = fwd[r]
            final.append(r)
        return final, absorbed, into

    def release(self, rows: Iterable[int]) -> None:
        self.free.extend(int(r) for r in rows)

    # ------------------------------------------------------------------ reading
    def lookup(self, key: int, tag: int = 0) -> int:
        n = self.node_of.get(int(key))
        if n is None or self.state[n] != LIVE or (tag and self.tag[n] and self.tag[n] != tag):
            return -1
        return self.comp_row[self.comp_of[n]]

    def component_rows(self) -> list[int]:
        """Row of every live node, in node order."""
        return [self.comp_row[self.comp_of[n]] for n in range(self.n_records) if self.state[n] == LIVE]

    def components(self) -> set[frozenset[int]]:
        """The partition of live keys."""
        return {frozenset(self.key[n] for n in m) for m in self.members.values()}

    def live_edges(self) -> list[tuple[int, int, int, int]]:
        """Live evidence as (anchor key, other key, time, source), in evidence order."""
        return [(self.key[a], self.key[b], t, s) for a, b, t, s, alive in self.edges if alive]

    def row_members(self, row: int) -> set[int]:
        c = self.row_comp.get(row)
        return set() if c is None else set(self.members[c])

    # ------------------------------------------------------------------ unmerge and erasure
    def remove(self, nodes: Sequence[int], mode: int) -> None:
        """Twin of ``graph_remove``: drop live nodes' evidence and pairs; mode 0 frees the
        record, TOMB / BLOCKED keep it in that state. Components are the caller's to recompute
        (here: the removed node simply leaves its component set)."""
        for x in nodes:
            for e in self.edges:
                if e[4] and x in (e[0], e[1]):
                    e[4] = 0
            self.dnl = [(p, q) for p, q in self.dnl if x not in (p, q)]
            label = self.comp_of.pop(x)
            self.members[label].discard(x)
            if mode == 0:
                del self.node_of[self.key[x]]
                self.state[x] = FREE
                self.key[x] = 0
                self.tag[x] = 0
                self.free_nodes.append(x)
            else:
                self.state[x] = mode

    def recompute(self, members: Sequence[int], keep_row: int) -> list[int]:
        """Twin of ``graph_recompute``: returns the piece rows in piece order. The members'
        old components (and rows other than ``keep_row``) are dropped."""
        mem = set(members)
        for x in members:
            label = self.comp_of.get(x)
            if label is not None and label in self.members:
                r = self.comp_row.pop(label, None)
                if r is not None and self.row_comp.get(r) == label:
                    del self.row_comp[r]
                self.members[label] -= mem
                if not self.members[label]:
                    del self.members[label]
        part = {x: {x} for x in members}
        for a, b, _t, _s, alive in self.edges:
            if not alive or a not in mem or b not in mem or part[a] is part[b]:
                continue
            pa, pb = part[a], part[b]
            ok = True
            if self.rules:
                if self.cap > 0 and len(pa) + len(pb) > self.cap:
                    ok = False
                else:
                    ca, cb = self._counts(pa), self._counts(pb)
                    ok = all(ca[s2] + cb[s2] <= lim for s2, lim in enumerate(self.limits))
            if ok and any((p in pa and q in pb) or (q in pa and p in pb) for p, q in self.dnl):
                ok = False
            if ok:
                merged = pa | pb
                for x in merged:
                    part[x] = merged
        pieces = sorted({id(p): p for p in part.values()}.values(), key=lambda p: (-len(p), min(p)))
        out = []
        for k, p in enumerate(pieces):
            row = keep_row if k == 0 and keep_row >= 0 else self._new_row()
            label = self._labels
            self._labels += 1
            self.members[label] = set(p)
            for x in p:
                self.comp_of[x] = label
            self.comp_row[label] = row
            self.row_comp[row] = label
            out.append(row)
        return out

    # compositions the IdentityGraph builds from the kernels (same order of operations)
    def row_of(self, n: int) -> int:
        return self.comp_row[self.comp_of[n]]

    def unlink(self, x: int) -> tuple[int, list[int]]:
        """``IdentityGraph.unlink``: do-not-link pairs with the node's evidence neighbours in
        its profile; the node alone on a fresh row; the rest recomputed keeping the row."""
        row = self.row_of(x)
        mem = self.row_members(row)
        if len(mem) <= 1:
            return row, []
        for a, b, _t, _s, alive in self.edges:
            if alive and x in (a, b):
                other = b if a == x else a
                if other in mem:
                    self.dnl.append((x, other))
        alone = self.recompute([x], -1)
        kept = self.recompute(sorted(mem - {x}), row)
        return row, alone + kept[1:]

    def split(self, row: int, seeds: Sequence[int]) -> list[int]:
        """``IdentityGraph.split``: pairs of seeds marked do-not-link, then recomputed."""
        self.dnl += [(a, b) for i, a in enumerate(seeds) for b in seeds[i + 1 :] if a != b]
        return self.recompute(sorted(self.row_members(row)), row)[1:]

    def remove_and_recompute(self, nodes: Sequence[int], mode: int) -> tuple[list[int], list[int]]:
        """``IdentityGraph._remove`` (forget: TOMB, expire: 0, block: BLOCKED): new rows of the
        pieces and the rows erased (released in ascending order)."""
        groups: dict[int, set[int]] = {}
        for x in sorted(set(nodes)):
            row = self.row_of(x)
            if row not in groups:
                groups[row] = self.row_members(row)
        self.remove(sorted(set(nodes)), mode)
        gone = set(nodes)
        new_rows: list[int] = []
        erased: list[int] = []
        for row, mem in groups.items():
            rest = sorted(mem - gone)
            if not rest:
                erased.append(row)
                label = self.row_comp.pop(row)
                self.comp_row.pop(label, None)
                self.members.pop(label, None)
                continue
            new_rows += self.recompute(rest, row)[1:]
        erased = sorted(set(erased))
        self.free.extend(erased)
        return new_rows, erased

    def readmit(self, nodes: Sequence[int]) -> None:
        """``IdentityGraph.readmit``: tombstones deleted (the identifier becomes unknown)."""
        for x in nodes:
            del self.node_of[self.key[x]]
            self.state[x] = FREE
            self.key[x] = 0
            self.tag[x] = 0
            self.free_nodes.append(x)

    def block(self, keys: Sequence[int], types: Sequence[int], tags: Sequence[int] | None = None) -> list[int]:
        """Twin of ``graph_block``: per key the new blocked node, the existing non-live node, or
        ``-2 - node`` for a live one."""
        out = []
        for j, key in enumerate(keys):
            n = self.node_of.get(int(key))
            if n is not None:
                out.append(-2 - n if self.state[n] == LIVE else n)
                continue
            out.append(self._alloc(int(key), (tags or [0] * len(keys))[j], types[j], BLOCKED))
        return out

    def expired(self, ttl: Sequence[int], t_ms: int) -> list[int]:
        """Twin of ``graph_expired``: live nodes of a type with a TTL (minutes) unseen for longer."""
        now = minutes(t_ms)
        return [n for n in range(self.n_records) if self.state[n] == LIVE and ttl[self.type[n]] > 0
                and self.seen[n] < now - ttl[self.type[n]]]


def find_root(nodes: np.ndarray, x: int) -> int:
    """Twin of ``graph_find_root``: follow parent pointers (no compression)."""
    seen = 0
    while int(nodes["parent"][x]) >= 0:
        x = int(nodes["parent"][x])
        seen += 1
        assert seen <= nodes.shape[0], "cycle in the parent pointers"
    return x


def table_contents(tab: np.ndarray, nodes: np.ndarray) -> dict[int, int]:
    """Every ``key -> node`` stored in the key table, by scanning all slots (no probing); checks
    each slot's fingerprint against its node's key."""
    out: dict[int, int] = {}
    for e in tab.tolist():
        if e:
            n = (e & 0xFFFFFFFF) - 1
            key = int(nodes["key"][n])
            assert e >> 32 == key >> 32, f"slot fingerprint of node {n} does not match its key"
            assert key not in out, f"key {key} stored twice"
            out[key] = n
    return out


def graph_rehash(tab: np.ndarray, nodes: np.ndarray, cap: int) -> np.ndarray:
    """Twin of ``graph_rehash``: reinsert old slots in order with linear probing from
    ``key mod cap``."""
    new = [0] * cap
    for e in tab.tolist():
        if e:
            i = int(nodes["key"][(e & 0xFFFFFFFF) - 1]) % cap
            while new[i]:
                i = (i + 1) % cap
            new[i] = e
    return np.array(new, dtype=np.uint64)


def adjacency(edges: np.ndarray, ev_head: np.ndarray, x: int) -> list[int]:
    """Edge indices on node ``x``'s evidence list, head first (dead ones included): at each edge
    the ``next_a`` link when ``x`` is its ``a`` end, else ``next_b``."""
    out: list[int] = []
    e = int(ev_head[x])
    while e >= 0:
        assert len(out) <= edges.shape[0], f"cycle in the evidence list of node {x}"
        out.append(e)
        e = int(edges["next_a"][e]) if int(edges["a"][e]) == x else int(edges["next_b"][e])
    return out


def graph_compact_edges(
    edges: np.ndarray, ev_head: np.ndarray, n_edges: int, n_nodes: int,
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Twin of ``graph_compact_edges`` on copies: returns ``(edges, ev_head, n_live, freed)``.

    The live records keep their order (``new[old]``: rank among the live); each node's new list
    is its old list with the dead edges dropped and the survivors renumbered, written back
    link by link. A self-loop's ``next_b`` copies its ``next_a``; the freed tail is zeroed.
    ``n_edges``: the records in use (the kernel reads it from ``meta``)."""
    n = n_edges
    live = [e for e in range(n) if int(edges["src"][e]) >= 0]
    new = {old: i for i, old in enumerate(live)}
    out = np.zeros_like(edges)
    out[n:] = edges[n:]
    for old, i in new.items():
        for f in ("a", "b", "t", "src"):
            out[f][i] = edges[f][old]
    head = ev_head.copy()
    for x in range(n_nodes):
        seq = [new[e] for e in adjacency(edges, ev_head, x) if e in new]
        head[x] = seq[0] if seq else -1
        for i, nxt in zip(seq, [*seq[1:], -1]):
            out["next_a" if int(out["a"][i]) == x else "next_b"][i] = nxt
    for i in range(len(live)):
        if out["a"][i] == out["b"][i]:
            out["next_b"][i] = out["next_a"][i]
    return out, head, len(live), n - len(live)


def connected_components(events: Iterable[Sequence[int]]) -> set[frozenset[int]]:
    """Components of the graph whose edges join consecutive keys of each event (BFS),
    independent of any union-find."""
    adj: dict[int, set[int]] = {}
    for ev in events:
        ev = [int(k) for k in ev]
        for k in ev:
            adj.setdefault(k, set())
        for a, b in itertools.pairwise(ev):
            adj[a].add(b)
            adj[b].add(a)
    seen: set[int] = set()
    comps = set()
    for start in adj:
        if start in seen:
            continue
        comp = {start}
        todo = [start]
        while todo:
            for nb in adj[todo.pop()]:
                if nb not in comp:
                    comp.add(nb)
                    todo.append(nb)
        seen |= comp
        comps.add(frozenset(comp))
    return comps


# --------------------------------------------------------------------------- affinity

MIN_SCORE = 1e-6

Slot = tuple[int, float] | None


def _f32(x: float) -> float:
    """The value a float32 array stores for ``x``."""
    return float(np.float32(x))


class AffinityRow:
    """One profile row as a list of K slots ``(facet value, score)`` or ``None`` (empty).

    Rules: scores decay as ``s * 2**(-dt / h_f)``; a slot at or below ``MIN_SCORE`` is emptied;
    adding to a held value sums; a new value takes the first empty slot, else replaces the least
    valuable slot (first such slot on ties) if it is worth strictly more; weights at or below
    ``MIN_SCORE`` never create a slot. Scores are stored as float32.
    """

    def __init__(self, slots: list[Slot], t: int) -> None:
        self.slots = slots
        self.t = t

    @classmethod
    def load(cls, fid: np.ndarray, score: np.ndarray, t: np.ndarray, r: int) -> AffinityRow:
        slots: list[Slot] = [
            (int(f), float(s)) if f >= 0 else None for f, s in zip(fid[r].tolist(), score[r].tolist())
        ]
        return cls(slots, int(t[r]))

    def store(self, fid: np.ndarray, score: np.ndarray, t: np.ndarray, r: int) -> None:
        for k, slot in enumerate(self.slots):
            fid[r, k] = -1 if slot is None else slot[0]
            score[r, k] = 0.0 if slot is None else slot[1]
        t[r] = self.t

    def as_dict(self) -> dict[int, float]:
        return {s[0]: s[1] for s in self.slots if s is not None}

    def decay_to(self, now: int, hl: np.ndarray) -> None:
        if now <= self.t:
            return
        for k, slot in enumerate(self.slots):
            if slot is not None:
                f, s = slot
                s = s * math.pow(2.0, -(now - self.t) / float(hl[f]))
                self.slots[k] = None if s <= MIN_SCORE else (f, _f32(s))
        self.t = now

    def add(self, f: int, w: float) -> None:
        for k, slot in enumerate(self.slots):
            if slot is not None and slot[0] == f:
                s = slot[1] + w
                self.slots[k] = None if s <= MIN_SCORE else (f, _f32(s))
                return
        if w <= MIN_SCORE:
            return
        if None in self.slots:
            self.slots[self.slots.index(None)] = (f, _f32(w))
            return
        if not self.slots:
            return
        low = min(range(len(self.slots)), key=lambda k: (self.slots[k][1], k))  # type: ignore[index]
        if self.slots[low][1] < w:  # type: ignore[index]
            self.slots[low] = (f, _f32(w))


def affinity_update(
    fid: np.ndarray, score: np.ndarray, t: np.ndarray, r: int,
    fvs: Sequence[int], weights: Sequence[float], now: int, hl: np.ndarray,
) -> None:
    """Twin of ``affinity_update`` (mutates the arrays): a current event decays the row to
    ``now`` and adds; an older event adds its weights decayed to the row's time."""
    row = AffinityRow.load(fid, score, t, r)
    if now >= row.t:
        row.decay_to(now, hl)
        for f, w in zip(fvs, weights):
            row.add(int(f), float(w))
    else:
        back = row.t - now
        for f, w in zip(fvs, weights):
            row.add(int(f), float(w) * math.pow(2.0, -back / float(hl[f])))
    row.store(fid, score, t, r)


def affinity_read(
    fid: np.ndarray, score: np.ndarray, t: np.ndarray, r: int, now: int, hl: np.ndarray
) -> list[tuple[int, float]]:
    """Live ``(facet value, score)`` of row ``r`` decayed to ``max(now, t)``, best first, ties
    by facet value."""
    dt = max(now - int(t[r]), 0)
    live = []
    for f, s in zip(fid[r].tolist(), score[r].tolist()):
        if f >= 0:
            s = s * math.pow(2.0, -dt / float(hl[f]))
            if s > MIN_SCORE:
                live.append((f, s))
    return sorted(live, key=lambda fs: (-fs[1], fs[0]))


def affinity_merge(fid: np.ndarray, score: np.ndarray, t: np.ndarray, dst: int, src: int, hl: np.ndarray) -> None:
    """Twin of ``affinity_merge``: both rows decayed to the later time, shared facet values
    summed, then ``src``'s other values offered to ``dst`` in slot order; ``src`` cleared."""
    d = AffinityRow.load(fid, score, t, dst)
    s = AffinityRow.load(fid, score, t, src)
    now = max(d.t, s.t)
    d.decay_to(now, hl)
    s.decay_to(now, hl)
    d.t = now
    held = {slot[0] for slot in d.slots if slot is not None}
    for slot in s.slots:
        if slot is not None and slot[0] in held:
            d.add(*slot)
    for slot in s.slots:
        if slot is not None and slot[0] not in held:
            d.add(*slot)
    d.store(fid, score, t, dst)
    AffinityRow([None] * len(s.slots), 0).store(fid, score, t, src)


def merged_top_k(a: dict[int, float], b: dict[int, float], k: int) -> dict[int, float]:
    """The contract of a merge on plain dicts: scores summed, the ``k`` most valuable kept."""
    total = dict(a)
    for f, s in b.items():
        total[f] = total.get(f, 0.0) + s
    return dict(sorted(total.items(), key=lambda fs: -fs[1])[:k])


def score_items(
    fv_indptr: np.ndarray, fv_items: np.ndarray, fv_data: np.ndarray,
    prof_fid: np.ndarray, prof_score: np.ndarray, n_prof: int,
    affinity_weight: float, prior: np.ndarray, prior_weight: float,
    extra: np.ndarray, eligible: np.ndarray, excluded: np.ndarray,
) -> tuple[list[float], int]:
    """Dense twin of ``score_items``: item by item, every profile value, every posting.

    Returns the scores (``-inf`` where ineligible, excluded or NaN) and how many are not
    ``-inf``.
    """
    n = prior.shape[0]
    banned = {int(e) for e in excluded.tolist() if e >= 0}
    out = []
    for i in range(n):
        if not eligible[i] or i in banned:
            out.append(-math.inf)
            continue
        v = prior_weight * float(prior[i]) + float(extra[i])
        for k in range(n_prof):
            f = int(prof_fid[k])
            w = affinity_weight * float(prof_score[k])
            if w == 0.0:
                continue
            for p in range(int(fv_indptr[f]), int(fv_indptr[f + 1])):
                if fv_items[p] == i:
                    v += w * float(fv_data[p])
        out.append(-math.inf if math.isnan(v) else v)
    return out, sum(v != -math.inf for v in out)


# --------------------------------------------------------------------------- top-k


def top_k(scores: Sequence[float], k: int) -> list[int]:
    """Indices of the ``k`` best scores, best first, ties to the lower index; NaN and ``-inf``
    never selected."""
    ok = [i for i, s in enumerate(scores) if not math.isnan(s) and s != -math.inf]
    return sorted(ok, key=lambda i: (-scores[i], i))[: max(k, 0)]


# --------------------------------------------------------------------------- bandits

MODE_GREEDY = 0
MODE_EPSILON = 1
MODE_SOFTMAX = 2
MODE_UNIFORM = 3
MODE_UCB1 = 4
FAMILY_BETA = 0
FAMILY_NORMAL = 1


def rank_probabilities(
    family: int, p1: Sequence[float], p2: Sequence[float], eligible: Sequence[int], n_ranks: int
) -> np.ndarray:
    """Twin of ``rank_probabilities``: ``P(arm k has rank r)`` by adaptive quadrature (SciPy
    ``quad``) of ``f_k(x) * P(exactly r of the other eligible arms exceed x)``, the latter by
    brute force over every subset of the others (so: few arms only). Independent of the
    kernel's grid, pruning and Simpson rule; agreement is checked to a tolerance."""
    from scipy import integrate, stats

    n = len(p1)
    el = [j for j in range(n) if eligible[j]]
    dist = [
        stats.beta(p1[j], p2[j]) if family == FAMILY_BETA else stats.norm(p1[j], p2[j]) for j in range(n)
    ]
    out = np.zeros((n, n_ranks))
    for k in el:
        others = [j for j in el if j != k]

        # exact_r and the integrand read this iteration's `others`, `k` and `r`: quad calls
        # them before the loop moves on, so the late binding B023 warns about cannot bite.
        def exact_r(x: float, r: int) -> float:
            total = 0.0
            for above in itertools.combinations(others, r):  # noqa: B023
                term = 1.0
                for j in others:  # noqa: B023
                    term *= dist[j].sf(x) if j in above else dist[j].cdf(x)
                total += term
            return total

        lo, hi = dist[k].ppf(1e-13), dist[k].isf(1e-13)
        mid = dist[k].mean()
        for r in range(min(n_ranks, len(el))):
            val, _ = integrate.quad(lambda x: dist[k].pdf(x) * exact_r(x, r), lo, hi, points=[mid],  # noqa: B023
                                    limit=400, epsabs=1e-12, epsrel=1e-10)
            out[k, r] = val
    return out


def categorical_select(cum: Sequence[float], rng: SplitMix64) -> int:
    """Twin of ``categorical_select``: the first index whose cumulative weight exceeds a uniform
    draw scaled to the total."""
    u = rng.uniform() * cum[-1]
    for i, c in enumerate(cum):
        if u < c:
            return i
    return len(cum) - 1


def posterior_top_k(
    family: int, p1: Sequence[float], p2: Sequence[float], eligible: Sequence[int], rng: SplitMix64, k: int
) -> list[int]:
    """Twin of ``posterior_top_k``: one draw per eligible arm in index order, then the ``k``
    highest (ties: lower index first)."""
    draws = []
    for j in range(len(p1)):
        if eligible[j]:
            v = rng.beta(p1[j], p2[j]) if family == FAMILY_BETA else p1[j] + p2[j] * rng.normal()
            draws.append((v, j))
    draws.sort(key=lambda t: (-t[0], t[1]))
    return [j for _, j in draws[:k]]


def arm_select(
    mode: int, param: float, means: Sequence[float], counts: Sequence[float], eligible: Sequence[int],
    rng: SplitMix64,
) -> tuple[int, float]:
    """Twin of ``arm_select`` (same RNG calls in the same order)."""
    el = [j for j in range(len(means)) if eligible[j]]
    if not el:
        return -1, 0.0
    m = len(el)
    best = el[0]
    for j in el:
        if means[j] > means[best]:
            best = j
    if mode == MODE_GREEDY:
        return best, 1.0
    if mode == MODE_UNIFORM:
        j = el[rng.below(m)]
        return j, 1.0 / m
    if mode == MODE_EPSILON:
        if rng.uniform() < param:
            j = el[rng.below(m)]
            return j, param / m + (1.0 - param if j == best else 0.0)
        return best, 1.0 - param + param / m
    if mode == MODE_SOFTMAX:
        w = {j: math.exp((means[j] - means[best]) / param) for j in el}
        z = sum(w.values())
        u = rng.uniform() * z
        acc = 0.0
        for j in el:
            acc += w[j]
            if u < acc:
                return j, w[j] / z
        return el[-1], w[el[-1]] / z
    for j in el:  # UCB1: unplayed arms first
        if counts[j] <= 0:
            return j, 1.0
    total = sum(counts[j] for j in el)
    ucb = {j: means[j] + param * math.sqrt(2.0 * math.log(max(total, 1.0)) / counts[j]) for j in el}
    best_u = el[0]
    for j in el:
        if ucb[j] > ucb[best_u]:
            best_u = j
    return best_u, 1.0


class ArmStatsTwin:
    """Twin of ``arm_stats_update``: discounted sums, and a window kept as a plain list of the
    last W additions (recomputed sums, so no subtraction drift)."""

    def __init__(self, n: int, discount: float, window: int) -> None:
        self.n, self.discount, self.window = n, discount, window
        self.events: list[tuple[int, float, float, float, int]] = []  # arm, dn, dr, dr2, time
        self.t = 0

    def add(self, arm: int, dn: float, dr: float, dr2: float) -> None:
        self.t += 1
        self.events.append((arm, dn, dr, dr2, self.t))
        if self.window:
            self.events = self.events[-self.window :]

    def sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c, s, q = np.zeros(self.n), np.zeros(self.n), np.zeros(self.n)
        for arm, dn, dr, dr2, t in self.events:
            f = self.discount ** (self.t - t)
            c[arm] += f * dn
            s[arm] += f * dr
            q[arm] += f * dr2
        return c, s, q


class LinearTwin:
    """Twin of the linear kernels: the ridge system kept as plain matrices, solved with
    ``numpy.linalg`` (no Cholesky updates)."""

    def __init__(self, n: int, d: int, l2: float) -> None:
        self.a = np.stack([l2 * np.eye(d) for _ in range(n)])
        self.b = np.zeros((n, d))

    def update(self, arm: int, x: np.ndarray, reward: float, count: float) -> None:
        self.a[arm] += count * np.outer(x, x)
        self.b[arm] += reward * x

    def theta(self, arm: int) -> np.ndarray:
        return np.linalg.solve(self.a[arm], self.b[arm])

    def sd(self, arm: int, x: np.ndarray) -> float:
        return float(np.sqrt(x @ np.linalg.solve(self.a[arm], x)))

    def linucb(self, x: np.ndarray, eligible: Sequence[int], alpha: float) -> int:
        best, best_s = -1, -np.inf
        for a in range(self.a.shape[0]):
            if eligible[a]:
                s = self.theta(a) @ x + alpha * self.sd(a, x)
                if best < 0 or s > best_s:
                    best, best_s = a, s
        return best


def rank_slate(
    pool: Sequence[int], pool_scores: Sequence[float], n_pool: int, n_slots: int, mode: int,
    param: float, rng: SplitMix64,
) -> tuple[list[int], list[float]]:
    """Twin of ``rank_slate``: fill slots one at a time from the remaining candidates (kept
    best first), with each slot's propensity conditional on the slots before it."""
    cands = [(int(i), float(s)) for i, s in zip(pool[:n_pool], pool_scores[:n_pool])]
    idx: list[int] = []
    prop: list[float] = []
    for _ in range(min(n_slots, n_pool)):
        m = len(cands)
        if mode == MODE_EPSILON:
            pick = rng.below(m) if rng.uniform() < param else 0
            p = param / m
            if pick == 0:
                p += 1.0 - param
        elif mode == MODE_SOFTMAX:
            top = cands[0][1]
            w = [math.exp((s - top) / param) for _, s in cands]
            total = 0.0
            for x in w:
                total += x
            u = rng.uniform() * total
            pick, acc = m - 1, 0.0
            for j, x in enumerate(w):
                acc += x
                if u < acc:
                    pick = j
                    break
            p = w[pick] / total
        elif mode == MODE_UNIFORM:
            pick = rng.below(m)
            p = 1.0 / m
        else:
            pick, p = 0, 1.0
        idx.append(cands.pop(pick)[0])
        prop.append(p)
    return idx, prop


def first_slot_probabilities(scores: Sequence[float], mode: int, param: float) -> np.ndarray:
    """Closed-form probability of each candidate (best first) taking the first slot, computed
    without the RNG (a stable softmax for mode 2)."""
    s = np.asarray(scores, dtype=np.float64)
    m = s.shape[0]
    if mode == MODE_GREEDY:
        p = np.zeros(m)
        p[0] = 1.0
    elif mode == MODE_EPSILON:
        p = np.full(m, param / m)
        p[0] += 1.0 - param
    elif mode == MODE_SOFTMAX:
        z = np.exp((s - s.max()) / param)
        p = z / z.sum()
    else:
        p = np.full(m, 1.0 / m)
    return p


# ----------------------------------------------------------------- fused read (recommend)


# ----------------------------------------------------------------- fused decide (decide.py)

#: ``params`` layout of ``decide.py``, restated (the twins share no code with the kernels)
P_AFFINITY_W, P_PRIOR_W, P_INV_MAX, P_FEEDBACK_W, P_PRIOR_CLICKS, P_PRIOR_TRIALS = 0, 1, 2, 3, 4, 5
P_MODE, P_PARAM, P_POOL, P_SLOTS, P_EXCLUDE_PURCHASED = 6, 7, 8, 9, 10


def _row_scores(
    prof: tuple[np.ndarray, ...], row: int, now: int, personalized: bool, hl: np.ndarray,
    cat: tuple[np.ndarray, ...], acc: np.ndarray, mask: np.ndarray, extra: np.ndarray, params: np.ndarray,
) -> tuple[list[float], int, list[tuple[int, float]]]:
    """Every item's score for ``row`` (the read-and-score phases of both fused paths), the
    count of scores that are not ``-inf``, and the live affinities used, best first."""
    fid, score, t, purchased = prof
    live = affinity_read(fid, score, t, row, now, hl) if personalized and row >= 0 else []
    total = sum(s for _, s in live)
    fids = np.array([f for f, _ in live], dtype=np.int64)
    shares = np.array([s / total for _, s in live], dtype=np.float64)
    prior = np.array([float(a) * float(params[P_INV_MAX]) for a in acc])
    excluded = purchased[row] if params[P_EXCLUDE_PURCHASED] and row >= 0 else np.empty(0, dtype=np.int64)
    scores, kept = score_items(
        *cat, fids, shares, len(live), float(params[P_AFFINITY_W]), prior, float(params[P_PRIOR_W]),
        extra, mask, excluded,
    )
    return scores, kept, live


def decide_slate_ref(
    prof: tuple[np.ndarray, ...], row: int, now: int, personalized: bool, upd_fvs: Sequence[int],
    upd_w: Sequence[float], hl: np.ndarray, cat: tuple[np.ndarray, ...], acc: np.ndarray,
    plc: tuple[np.ndarray, ...], params: np.ndarray, rng: SplitMix64,
) -> dict[str, object]:
    """Twin of ``decide_slate``, composed of the twins above: the update (mutates ``prof``),
    the dense scores, the pool (``top_k``, or every finite score for uniform), ``rank_slate``,
    then each shown item's trial and ``extra`` (mutates ``plc``). Returns the slate and
    counts as a dict."""
    fid, score, t, _ = prof
    mask, extra, boost, trials, clicks = plc
    if len(upd_fvs):
        affinity_update(fid, score, t, row, upd_fvs, upd_w, now, hl)
    scores, kept, live = _row_scores(prof, row, now, personalized, hl, cat, acc, mask, extra, params)
    mode, slots = int(params[P_MODE]), int(params[P_SLOTS])
    if mode == MODE_UNIFORM:
        pool = [i for i, s in enumerate(scores) if math.isfinite(s)]
    else:
        pool = top_k(scores, max(int(params[P_POOL]), slots))
    idx, prop = rank_slate(pool, [scores[i] for i in pool], len(pool), slots, mode, float(params[P_PARAM]), rng)
    for i in idx:
        trials[i] += 1.0
        ctr = (clicks[i] + params[P_PRIOR_CLICKS]) / (trials[i] + params[P_PRIOR_TRIALS])
        extra[i] = boost[i] + params[P_FEEDBACK_W] * ctr
    return {"idx": idx, "score": [scores[i] for i in idx], "prop": prop, "candidates": kept,
            "live": live, "pool": len(pool)}


def recommend_one_ref(
    prof: tuple[np.ndarray, ...], row: int, now: int, personalized: bool, hl: np.ndarray,
    cat: tuple[np.ndarray, ...], acc: np.ndarray, plc: tuple[np.ndarray, ...], params: np.ndarray, k: int,
) -> dict[str, object]:
    """Twin of ``recommend_one``: the same scores, the ``k`` best by ``top_k``; nothing written."""
    scores, kept, live = _row_scores(prof, row, now, personalized, hl, cat, acc, plc[0], plc[1], params)
    idx = top_k(scores, k)
    return {"idx": idx, "score": [scores[i] for i in idx], "candidates": kept, "live": live}


# --------------------------------------------------------------------------- segments and activity

SEG_DAY_MS = 86_400_000


def activity_count_ref(events: Sequence[tuple[str, int]], etype: str, now: int, days: float, bucket_days: int,
                       buckets: int) -> int:
    """``count(etype, days=N)`` from a row's plain list of recorded ``(type, time)`` events: the
    row holds the ``buckets`` buckets up to the newest bucket of any event; an event counts when
    its bucket is held and one of the ``ceil(days / bucket_days)`` buckets ending at ``now``'s."""
    bms = bucket_days * SEG_DAY_MS
    if not events:
        return 0
    head = max(t // bms for _, t in events)
    nb = max(1, math.ceil(days / bucket_days))
    dnow = now // bms
    return sum(1 for ty, t in events if ty == etype and head - buckets < t // bms <= head
               and dnow - nb < t // bms <= dnow)


def days_since_ref(events: Sequence[tuple[str, int]], etype: str, now: int) -> float:
    times = [t for ty, t in events if ty == etype]
    return math.inf if not times else (now - max(times)) / SEG_DAY_MS


def affinity_share_ref(fids: Sequence[int], scores: Sequence[float], t_row: int, fv_facet: Sequence[int],
                       half_lives: Sequence[float], facet: int, target: int, now: int) -> float:
    """The share of ``target`` in one row's interest in ``facet``, each slot decayed to ``now``."""
    dt = max(0, now - t_row)
    live = []
    for f, s in zip(fids, scores):
        if f >= 0 and fv_facet[f] == facet:
            d = float(s) * math.pow(2.0, -dt / half_lives[f])
            if d > 1e-6:
                live.append((f, d))
    tot = 0.0
    hit = 0.0
    for f, d in live:
        tot += d
        if f == target:
            hit += d
    return hit / tot if tot > 0.0 else 0.0


def segment_eval_ref(prog: np.ndarray, consts: np.ndarray, table: np.ndarray, vals: np.ndarray) -> list[int]:
    """The postfix program run with a Python list as the stack, one row at a time."""
    out = []
    for i in range(vals.shape[1]):
        stack: list[bool] = []
        for op, col, a, b in prog.tolist():
            if op == 0:
                v, c = float(vals[col, i]), float(consts[b])
                stack.append({0: v == c, 1: v != c, 2: v < c, 3: v <= c, 4: v > c, 5: v >= c}[a])
            elif op == 1:
                v = float(vals[col, i])
                stack.append(0 <= v < b and bool(table[a + int(v)]))
            elif op == 2:
                stack.append(float(vals[col, i]) != 0.0)
            elif op in (3, 4):
                y, x = stack.pop(), stack.pop()
                stack.append((x and y) if op == 3 else (x or y))
            else:
                stack.append(not stack.pop())
        out.append(int(stack[0]))
    return out


class SegmentProfileRef:
    """One profile as plain Python for the segment reference: attributes (None: unset),
    consent bits, recorded events, and the affinity slots as stored."""

    def __init__(self, attrs: dict[str, object], allow: int, events: list[tuple[str, int]],
                 fids: list[int], scores: list[float], t_row: int) -> None:
        self.attrs, self.allow, self.events = attrs, allow, events
        self.fids, self.scores, self.t_row = fids, scores, t_row


def evaluate_segment_ref(node: object, p: SegmentProfileRef, *, now: int, ctx: dict[str, object]) -> bool:
    """Evaluate a parsed segment (the parser's tree) on one profile by the documented rules,
    by plain recursion over the tree: comparisons with unset values are false, ``!=`` is
    ``not ==``, strings compare as strings."""
    kind = type(node).__name__
    if kind == "And":
        return all(evaluate_segment_ref(n, p, now=now, ctx=ctx) for n in node.items)  # type: ignore[attr-defined]
    if kind == "Or":
        return any(evaluate_segment_ref(n, p, now=now, ctx=ctx) for n in node.items)  # type: ignore[attr-defined]
    if kind == "Not":
        return not evaluate_segment_ref(node.item, p, now=now, ctx=ctx)  # type: ignore[attr-defined]
    op = node.operand  # type: ignore[attr-defined]
    if type(op).__name__ == "Call" and op.name == "segment":
        from decisioner.segments.parser import parse

        return evaluate_segment_ref(parse(ctx["segments"][op.args[0]]), p, now=now, ctx=ctx)  # type: ignore[index]
    value = _operand_ref(op, p, now, ctx)
    if kind == "Truth":
        return bool(value)
    if kind == "StartsWith":
        return isinstance(value, str) and value.startswith(node.prefix)  # type: ignore[attr-defined]
    if kind == "InList":
        return value is not None and value in node.values  # type: ignore[attr-defined]
    c = node.value  # type: ignore[attr-defined]
    o = node.op  # type: ignore[attr-defined]
    if o == "!=":
        return not (value is not None and value == c)
    if value is None:
        return False
    return bool({"==": value == c, "<": value < c, "<=": value <= c, ">": value > c, ">=": value >= c}[o])


def _operand_ref(op: object, p: SegmentProfileRef, now: int, ctx: dict[str, object]) -> object:
    name = op.name  # type: ignore[attr-defined]
    if type(op).__name__ == "Name":
        v = p.attrs.get(name)
        return float(v) if isinstance(v, (int, float)) else v
    args = op.args  # type: ignore[attr-defined]
    if name == "consent":
        purposes, n_ch = ctx["purposes"], ctx["n_channels"]  # type: ignore[misc]
        pi = purposes.index(args[0])  # type: ignore[attr-defined]
        if len(args) == 2:
            ci = ctx["channels"].index(args[1])  # type: ignore[attr-defined]
            return bool(p.allow >> (pi * n_ch + ci) & 1)  # type: ignore[operator]
        return all(p.allow >> (pi * n_ch + c) & 1 for c in range(n_ch))  # type: ignore[arg-type, operator]
    if name == "days_since":
        return days_since_ref(p.events, args[0], now)
    if name == "count":
        days = dict(op.kwargs)["days"]  # type: ignore[attr-defined]
        return float(activity_count_ref(p.events, args[0], now, days, ctx["bucket_days"], ctx["buckets"]))  # type: ignore[arg-type]
    assert name == "affinity"
    fv_names: list[str] = ctx["fv_names"]  # type: ignore[assignment]
    facets: list[str] = ctx["facet_names"]  # type: ignore[assignment]
    return affinity_share_ref(p.fids, p.scores, p.t_row, ctx["fv_facet"], ctx["half_lives"],  # type: ignore[arg-type]
                              facets.index(args[0]), fv_names.index(f"{args[0]}={args[1]}"), now)


# --------------------------------------------------------------------------- LightGBM trees (ranking/model.py)

#: LightGBM's kZeroThreshold (1e-35f) as a double
LGB_ZERO = 1.0000000180025095e-35


def lgb_text_trees(text: str) -> tuple[list[dict[str, list[float]]], bool]:
    """The trees of a LightGBM text model as dicts of field -> list of numbers (LightGBM's own
    per-tree indexing), and whether the model averages its trees (``average_output``)."""
    trees: list[dict[str, list[float]]] = []
    cur: dict[str, list[float]] | None = None
    average = False
    for line in text.splitlines():
        line = line.strip()
        if line == "average_output":
            average = True
        if line == "end of trees":
            break
        if line.startswith("Tree="):
            cur = {}
            trees.append(cur)
        elif cur is not None and "=" in line:
            key, _, val = line.partition("=")
            cur[key] = [float(v) for v in val.split()]
    return trees, average


def _lgb_decision(tree: dict[str, list[float]], node: int, fval: float) -> int:
    """LightGBM's ``Tree::Decision`` for one node, written the way tree.h reads."""
    dt = int(tree["decision_type"][node])
    left, right = int(tree["left_child"][node]), int(tree["right_child"][node])
    if dt & 1:  # categorical
        if not math.isfinite(fval) or math.trunc(fval) < 0 or math.trunc(fval) >= 2**31:  # C int cast: INT_MIN
            return right
        cat = math.trunc(fval)
        j = int(tree["threshold"][node])
        lo, hi = int(tree["cat_boundaries"][j]), int(tree["cat_boundaries"][j + 1])
        words = [int(w) for w in tree["cat_threshold"][lo:hi]]
        if cat // 32 < len(words) and (words[cat // 32] >> (cat % 32)) & 1:
            return left
        return right
    missing = (dt >> 2) & 3  # 0 None, 1 Zero, 2 NaN
    if math.isnan(fval) and missing != 2:
        fval = 0.0
    if (missing == 1 and -LGB_ZERO <= fval <= LGB_ZERO) or (missing == 2 and math.isnan(fval)):
        return left if dt & 2 else right
    return left if fval <= tree["threshold"][node] else right


def lgb_predict_ref(trees: list[dict[str, list[float]]], average: bool, row: Sequence[float]) -> float:
    """The raw score of one row: LightGBM's dense-row reader (``|x| <= kZeroThreshold`` is 0),
    each tree walked from node 0 until a leaf (``~leaf``), leaves summed in tree order."""
    x = [0.0 if -LGB_ZERO <= v <= LGB_ZERO else float(v) for v in row]
    total = 0.0
    for tree in trees:
        if int(tree["num_leaves"][0]) == 1:
            total += tree["leaf_value"][0]
            continue
        node = 0
        while node >= 0:
            node = _lgb_decision(tree, node, x[int(tree["split_feature"][node])])
        total += tree["leaf_value"][~node]
    return total  # average_output too: LightGBM 4.7's raw score of a random forest is the sum


# --------------------------------------------------------------------------- attributes (attributes.py)

AttrHeld = tuple[float, int, int]  # value, source code, event time
AttrSlot = list[int]  # value code, count, newest sighting's time, its source code


def attribute_offer_ref(held: AttrHeld | None, rule: str, v: float, src: int, t: int, rank: dict[int, int],
                        worst: int, later_wins: bool) -> AttrHeld:
    """One attribute (any rule but ``most_frequent``) after ``v`` from ``src`` at ``t`` is
    offered, as the rules of :mod:`decisioner.attributes` read; ``rank``: source code -> its
    place in ``sources`` (``worst`` when unlisted)."""
    if held is None:
        return (v, src, t)
    hv, hs, ht = held
    newer = t > ht or (later_wins and t == ht)
    if rule == "sum":
        return (hv + v, src, t) if t >= ht else (hv + v, hs, ht)
    take = {
        "most_recent": newer,
        "first_seen": t < ht,
        "source_priority": rank.get(src, worst) < rank.get(hs, worst)
        or (rank.get(src, worst) == rank.get(hs, worst) and newer),
        "min": v < hv or (v == hv and t < ht),
        "max": v > hv or (v == hv and t < ht),
    }[rule]
    return (v, src, t) if take else held


def attribute_lead_ref(slots: list[AttrSlot | None]) -> AttrHeld | None:
    """The value of a ``most_frequent`` attribute: the counted value with the highest count,
    then the newest sighting, then the lowest code (None when nothing is counted)."""
    used = [s for s in slots if s is not None]
    if not used:
        return None
    best = sorted(used, key=lambda s: (-s[1], -s[2], s[0]))[0]
    return (float(best[0]), best[3], best[2])


def attribute_count_ref(slots: list[AttrSlot | None], code: int, src: int, t: int) -> list[AttrSlot | None]:
    """Space-saving: the slots after one sighting of ``code`` (a held value counts up and keeps
    its newest sighting; else the first free slot; else the lowest count, the oldest among equals,
    the first of those, is replaced and its count inherited)."""
    out = [None if s is None else list(s) for s in slots]
    for s in out:
        if s is not None and s[0] == code:
            s[1] += 1
            if t >= s[2]:
                s[2], s[3] = t, src
            return out
    if None in out:
        out[out.index(None)] = [code, 1, t, src]
        return out
    order = sorted(range(len(out)), key=lambda i: (out[i][1], out[i][2], i))  # type: ignore[index]
    victim = order[0]
    out[victim] = [code, out[victim][1] + 1, t, src]  # type: ignore[index]
    return out


def attribute_merge_counts_ref(dst: list[AttrSlot | None], src: list[AttrSlot | None]) -> list[AttrSlot | None]:
    """Two rows' slots merged: counts of equal values added (the newer sighting kept, the
    survivor's at equal times), the strongest ``len(dst)`` kept in order, the rest free."""
    merged: dict[int, AttrSlot] = {}
    for s in [*dst, *src]:
        if s is None:
            continue
        if s[0] not in merged:
            merged[s[0]] = list(s)
        else:
            m = merged[s[0]]
            m[1] += s[1]
            if s[2] > m[2]:
                m[2], m[3] = s[2], s[3]
    best = sorted(merged.values(), key=lambda s: (-s[1], -s[2], s[0]))[: len(dst)]
    return [*best, *[None] * (len(dst) - len(best))]


# --------------------------------------------------------------------------- record matching


def block_pairs_ref(codes: Sequence[Sequence[int]], sources: Sequence[int], *, link_only: bool,
                    max_block: int) -> set[tuple[int, int]]:
    """Candidate pairs of every blocking rule: records with equal codes (>= 0) under some rule,
    in blocks of at most ``max_block`` records, across sources with ``link_only``."""
    out: set[tuple[int, int]] = set()
    for rule in codes:
        blocks: dict[int, list[int]] = {}
        for r, c in enumerate(rule):
            if c >= 0:
                blocks.setdefault(c, []).append(r)
        for members in blocks.values():
            if len(members) > max_block:
                continue
            for a, b in itertools.combinations(members, 2):
                if not link_only or sources[a] != sources[b]:
                    out.add((min(a, b), max(a, b)))
    return out


def cluster_ref(n: int, pairs: Sequence[tuple[int, int, float]], *, auto_link: float,
                unique: Sequence[Sequence[int]], sources: Sequence[int], one_per_source: bool,
                dnl: Iterable[tuple[int, int]] = ()) -> list[int]:
    """Greedy clustering, strongest pair first (ties: input order): merge two clusters when no
    do-not-link pair crosses them, their unique values agree, sources do not repeat (with
    ``one_per_source``), and the strong pairs across them are a strict majority of the compared
    pairs across them. Returns each record's cluster as its lowest member."""
    clusters = [{r} for r in range(n)]
    of = list(range(n))
    banned = {frozenset(p) for p in dnl}
    order = sorted(range(len(pairs)), key=lambda e: -pairs[e][2])
    for e in order:
        a, b, p = pairs[e]
        if p < auto_link:
            break
        ca, cb = of[a], of[b]
        if ca == cb:
            continue
        A, B = clusters[ca], clusters[cb]
        if any(frozenset((x, y)) in banned for x in A for y in B):
            continue
        ok = True
        for u in range(len(unique[0]) if unique else 0):
            va = {unique[x][u] for x in A if unique[x][u] >= 0}
            vb = {unique[x][u] for x in B if unique[x][u] >= 0}
            if va and vb and va != vb:
                ok = False
        if one_per_source and {sources[x] for x in A} & {sources[x] for x in B}:
            ok = False
        cross = [q for (x, y, q) in pairs if (x in A and y in B) or (x in B and y in A)]
        strong = sum(q >= auto_link for q in cross)
        if not ok or 2 * strong <= len(cross):
            continue
        A |= B
        for x in B:
            of[x] = ca
        clusters[cb] = set()
    return [min(clusters[of[r]]) for r in range(n)]
