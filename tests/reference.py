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


class IdentityGraphRef:
    """Connected components of keys, each owning one profile row.

    Components are explicit sets of node ids (merged by union of sets), so there is no
    union-find detail to get wrong. The row rules mirror the kernel's contract:

    * an event's keys join one component; a key seen for the first time is a new node, numbered
      in order of first appearance;
    * the survivor row belongs to the largest touched component that has a row (ties: the lowest
      row); every other touched row is absorbed, in the order its component first appears in
      the event's keys;
    * a component without a row takes one from the free stack (last released first), else the
      next never-used row.
    """

    def __init__(self) -> None:
        self.node_of: dict[int, int] = {}
        self.node_key: list[int] = []
        self.node_type: list[int] = []
        self.comp_of: list[int] = []  # node -> component label
        self.members: dict[int, set[int]] = {}  # label -> nodes
        self.comp_row: dict[int, int] = {}  # label -> row (absent: no row yet)
        self.free: list[int] = []
        self.n_rows = 0
        self.merges = 0
        self._labels = 0

    @property
    def n_nodes(self) -> int:
        return len(self.node_key)

    def link(self, keys: Iterable[int], types: Iterable[int]) -> tuple[int, list[int]]:
        touched: list[int] = []
        for key, typ in zip(keys, types):
            key = int(key)
            node = self.node_of.get(key)
            if node is None:
                node = len(self.node_key)
                self.node_of[key] = node
                self.node_key.append(key)
                self.node_type.append(int(typ))
                label = self._labels
                self._labels += 1
                self.comp_of.append(label)
                self.members[label] = {node}
            label = self.comp_of[node]
            if label not in touched:
                touched.append(label)
        if not touched:
            return -1, []
        with_row = [c for c in touched if c in self.comp_row]
        survivor = min(with_row, key=lambda c: (-len(self.members[c]), self.comp_row[c]), default=None)
        absorbed = [self.comp_row[c] for c in with_row if c != survivor]
        if survivor is not None:
            row = self.comp_row[survivor]
        elif self.free:
            row = self.free.pop()
        else:
            row = self.n_rows
            self.n_rows += 1
        merged = touched[0]
        for c in touched[1:]:
            for node in self.members.pop(c):
                self.comp_of[node] = merged
                self.members[merged].add(node)
            self.merges += 1
        for c in touched:
            self.comp_row.pop(c, None)
        self.comp_row[merged] = row
        return row, absorbed

    def link_many(
        self, keys: Sequence[int], types: Sequence[int], offsets: Sequence[int]
    ) -> tuple[list[int], list[int], list[int]]:
        """Per-group rows, absorbed rows and the group that absorbed each."""
        rows: list[int] = []
        absorbed: list[int] = []
        into: list[int] = []
        for g in range(len(offsets) - 1):
            lo, hi = offsets[g], offsets[g + 1]
            row, ab = self.link(keys[lo:hi], types[lo:hi])
            rows.append(row)
            absorbed += ab
            into += [g] * len(ab)
        return rows, absorbed, into

    def release(self, rows: Iterable[int]) -> None:
        self.free.extend(int(r) for r in rows)

    def lookup(self, key: int) -> int:
        node = self.node_of.get(int(key))
        return -1 if node is None else self.comp_row[self.comp_of[node]]

    def component_rows(self) -> list[int]:
        return [self.comp_row[self.comp_of[n]] for n in range(self.n_nodes)]

    def components(self) -> list[frozenset[int]]:
        """The partition of keys into components."""
        return [frozenset(self.node_key[n] for n in m) for m in self.members.values()]


def find_root(parent: np.ndarray, x: int) -> int:
    """Twin of ``graph_find_root``: follow parent pointers (no compression)."""
    seen = 0
    while int(parent[x]) != x:
        x = int(parent[x])
        seen += 1
        assert seen <= parent.shape[0], "cycle in the parent array"
    return x


def graph_component_rows(parent: np.ndarray, row: np.ndarray, n_nodes: int) -> list[int]:
    return [int(row[find_root(parent, n)]) for n in range(n_nodes)]


def table_contents(tab_keys: np.ndarray, tab_nodes: np.ndarray) -> dict[int, int]:
    """Every ``key -> node`` stored in the table, by scanning all slots (no probing)."""
    out: dict[int, int] = {}
    for k, n in zip(tab_keys.tolist(), tab_nodes.tolist()):
        if n >= 0:
            assert k not in out, f"key {k} stored twice"
            out[k] = n
    return out


def graph_lookup_many(
    tab_keys: np.ndarray, tab_nodes: np.ndarray, parent: np.ndarray, row: np.ndarray, keys: Iterable[int]
) -> list[int]:
    """Twin of ``graph_lookup_many`` on the kernel's arrays (a full scan, no probing)."""
    table = table_contents(tab_keys, tab_nodes)
    out = []
    for key in keys:
        n = table.get(int(key), -1)
        out.append(-1 if n < 0 else int(row[find_root(parent, n)]))
    return out


def graph_rehash(old_keys: np.ndarray, old_nodes: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """Twin of ``graph_rehash``: reinsert old slots in order with linear probing from
    ``key mod cap``."""
    keys = [0] * cap
    nodes = [-1] * cap
    for k, n in zip(old_keys.tolist(), old_nodes.tolist()):
        if n >= 0:
            i = k % cap
            while nodes[i] >= 0:
                i = (i + 1) % cap
            keys[i] = k
            nodes[i] = n
    return np.array(keys, dtype=np.uint64), np.array(nodes, dtype=np.int32)


def connected_components(events: Iterable[Sequence[int]]) -> set[frozenset[int]]:
    """Components of the graph whose edges join consecutive keys of each event (BFS),
    independent of any union-find."""
    adj: dict[int, set[int]] = {}
    for ev in events:
        ev = [int(k) for k in ev]
        for k in ev:
            adj.setdefault(k, set())
        for a, b in zip(ev, ev[1:]):
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


def thompson_select(
    prior_a: float, prior_b: float, trials: Sequence[float], successes: Sequence[float],
    eligible: Sequence[int], rng: SplitMix64, draws: int,
) -> tuple[int, float]:
    """Twin of ``thompson_select``: the arm with the highest Beta posterior draw (ties: lower
    index), and ``(1 + rounds it wins again out of draws) / (draws + 1)``."""

    def one_round() -> int:
        best, best_v = -1, -1.0
        for a in range(len(trials)):
            if eligible[a]:
                v = rng.beta(prior_a + successes[a], prior_b + trials[a] - successes[a])
                if v > best_v:
                    best, best_v = a, v
        return best

    arm = one_round()
    if arm < 0:
        return -1, 0.0
    wins = 1 + sum(one_round() == arm for _ in range(draws))
    return arm, wins / (draws + 1.0)


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
