"""Unmerge, erasure and forgetting in the identity graph: every removal recomputes only the
components it touches, from their own evidence.

**Unmerge** (:meth:`IdentityUnmerge.unlink`, :meth:`IdentityUnmerge.split`) recomputes only the
affected component from its own evidence. Profile state rule: the profile's state stays with
the largest remaining piece (ties: the piece holding the oldest identifier); every other piece,
and an unlinked identifier, gets a fresh empty profile that inherits the original's consent
(split listeners are told ``(row, new_rows)``). Links to identifiers outside the component
that were refused stay refused until an event brings them again.

**Erasure** (:meth:`IdentityUnmerge.forget`) removes identifiers and their evidence and keeps a
keyed tombstone: an event carrying an erased identifier links nothing and creates nothing
(it resolves to the profile of another, live identifier it carries, else to the scratch row)
unless it carries explicit consent (``consent={"personalization": True}``), which lifts the
tombstone and starts a new, empty profile.

**What tombstones cost and what bounds them.** A tombstone is an identifier's node record
(26 bytes) with its evidence head (4 bytes) and its slot in the key table (8 bytes at a load of
at most 3/4, so 10.7 bytes of table; 21.3 just after the table doubled): 40.7 bytes each
(:data:`~decisioner.identity.store.TOMBSTONE_BYTES`), up to 51 with spare capacity, so 41-51 MB
per million erased identifiers. The count is ``metrics()["tombstones"]``; ``decisioner bench``
reports it with its bytes (:meth:`~decisioner.identity.store.IdentityStore.tombstone_bytes`).
There is no cap, on purpose: dropping a tombstone would let the erased identifier link again,
so tombstones are never evicted (eviction and expiry keep them). They are bounded by the
erasures asked for, one per erased identifier (plus one per identifier named in an erasure that
was never seen), never by traffic; a consent event that lifts one frees its record.

**Blocking, eviction and expiry** remove identifiers the same way without a tombstone:
:meth:`IdentityUnmerge.block` (a placeholder found at run time never links again),
:meth:`IdentityUnmerge.evict` (whole profiles dropped to bound memory; they come back as new)
and :meth:`IdentityUnmerge.expire` (volatile identifiers past their time-to-live).

A profile left with no identifier is erased: its row is cleared and handed to the erase
listeners, which clear their own state and release it for reuse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from .._kernels import graph as K
from ..errors import SchemaError
from .rules import identifier_key
from .store import STATE_ARRAYS, IdentityStore, grow

__all__ = ["IdentityUnmerge", "UnmergeResult"]


class UnmergeResult(NamedTuple):
    """Outcome of an unlink, split, forget, block or expiry: the row that kept the profile
    state (-1 if none), the fresh rows of the other pieces, and rows erased entirely."""

    row: int
    new_rows: np.ndarray
    erased: np.ndarray


class IdentityUnmerge(IdentityStore):
    """The unmerge layer of :class:`~decisioner.identity.IdentityGraph` (see the module
    docstring): unlink, split, forget, readmit, block, evict, expire, and the recomputation
    of components from their evidence they share.

    Pieces that get fresh rows and profiles left with no identifier are reported through
    :meth:`_notify_split` and :meth:`_notify_erased`, which the graph overrides to call its
    listeners.
    """

    # ------------------------------------------------------------------ recompute
    def _recompute(self, members: np.ndarray, keep_row: int) -> np.ndarray:
        """Recompute the components of ``members`` (live nodes); returns the piece rows, the
        first being ``keep_row`` when it is >= 0."""
        members = np.ascontiguousarray(members, dtype=np.int64)
        self._reserve(0, rows=members.shape[0])
        out = np.empty(max(members.shape[0], 1), dtype=np.int32)
        n = K.graph_recompute(
            self.nodes_, self.rows_, self.cnt_, self.free_rows_, self.meta_, self.trules_, self.dnl_,
            self.edges_, self.ev_head_, members, keep_row, out,
        )
        self._room = 0
        return out[:n]

    def _add_dnl(self, pairs: list[tuple[int, int]]) -> None:
        if not pairs:
            return
        n = int(self.meta_[K.C_DNL])
        need = n + len(pairs)
        if need > self.dnl_.shape[0]:
            self.dnl_ = grow(self.dnl_, need, 0)
        self.dnl_[n:need] = np.array(pairs, dtype=np.int32)
        self.meta_[K.C_DNL] = need
        nodes = np.unique(np.array(pairs, dtype=np.int64).ravel())
        self.nodes_["state"][nodes] |= K.DNL_BIT

    def _erase_rows(self, rows: list[int]) -> np.ndarray:
        arr = np.array(sorted(set(rows)), dtype=np.int32)
        if arr.shape[0] == 0:
            return arr
        self.rows_["root"][arr] = -1
        self.rows_["size"][arr] = 0
        self.rows_["flags"][arr] = 0
        self.cnt_[arr] = 0
        self._notify_erased(arr)
        return arr

    def _notify_split(self, row: int, new_rows: np.ndarray) -> None:
        """Pieces of ``row`` got the fresh rows ``new_rows`` (the graph tells its split
        listeners)."""

    def _notify_erased(self, rows: np.ndarray) -> None:
        """Profiles ``rows`` lost every identifier and are cleared here; their owner releases
        them (the graph hands them to its erase listeners). Without one: released at once."""
        self.release_rows(rows)

    # ------------------------------------------------------------------ unmerge
    def unlink(self, ids: Mapping[str, str] | np.ndarray) -> UnmergeResult:
        """Detach one identifier from its profile and keep it apart.

        The identifier gets a fresh profile of its own; do-not-link pairs with every identifier
        it was linked to in the profile stop it from re-merging; the rest of the profile is
        recomputed from its evidence (it may fall apart when the identifier was the only bridge)
        and keeps the profile state (largest piece; see the module docstring).

        Parameters
        ----------
        ids
            The identifier (type -> value, the first known one is used) or its key array.

        Raises
        ------
        SchemaError
            If no identifier given is linked.
        """
        x = self._live_node(ids)
        row = self.row_of_node(x)
        members = self.members(row)
        if members.shape[0] <= 1:
            return UnmergeResult(row, np.zeros(0, np.int32), np.zeros(0, np.int32))
        inside = set(members.tolist())
        pairs = []
        for e in self._edges_touching(np.array([x])).tolist():
            a, b = int(self.edges_["a"][e]), int(self.edges_["b"][e])
            other = b if a == x else a
            if other in inside:
                pairs.append((x, other))
        self._add_dnl(pairs)
        rest = members[members != x]
        # the identifier first (its parent pointer must not lead into the rest while the rest
        # is recomputed), then the rest, which keeps the row
        alone = self._recompute(np.array([x], dtype=np.int64), -1)
        kept = self._recompute(rest, row)
        new_rows = np.concatenate([alone, kept[1:]]).astype(np.int32)
        self._notify_split(row, new_rows)
        return UnmergeResult(row, new_rows, np.zeros(0, np.int32))

    def split(self, row: int, *, apart: Sequence[Mapping[str, str] | np.ndarray] = ()) -> UnmergeResult:
        """Recompute profile ``row`` from its evidence under the current rules.

        With ``apart`` (two or more identifiers, type -> value or key arrays), every pair of
        them is first marked do-not-link, so they end in different profiles; the other
        identifiers follow the evidence. Without it, the current rules (limits, blocked values,
        size cap, do-not-link pairs) are re-applied, e.g. after a configuration change.

        Raises
        ------
        SchemaError
            If ``row`` holds no identifier, or an identifier in ``apart`` is not in it.
        """
        members = self.members(row)
        if members.shape[0] == 0:
            raise SchemaError(f"Expected a profile row with identifiers, got {row!r} - at `row`")
        seeds = [self._live_node(ids) for ids in apart]
        inside = set(members.tolist())
        for k, s in enumerate(seeds):
            if s not in inside:
                raise SchemaError(
                    f"Expected identifiers of profile {row}, got one of another profile - at `apart[{k}]`"
                )
        self._add_dnl([(a, b) for i, a in enumerate(seeds) for b in seeds[i + 1 :] if a != b])
        pieces = self._recompute(members, row)
        self._notify_split(row, pieces[1:])
        return UnmergeResult(row, pieces[1:].astype(np.int32), np.zeros(0, np.int32))

    # ------------------------------------------------------------------ removal
    def _delete_nodes(self, rm: np.ndarray, mode: int) -> None:
        """:func:`~._kernels.graph.graph_remove` of live nodes ``rm`` (int64), with room on the
        free-node stack for those it recycles (mode 0)."""
        need = int(self.meta_[K.C_FREE_NODES]) + rm.shape[0]
        if self.free_nodes_.shape[0] < need:
            self.free_nodes_ = grow(self.free_nodes_, need, 0)
        K.graph_remove(self.tab_, self.nodes_, self.free_nodes_, self.meta_, self.dnl_, self.edges_,
                       self.ev_head_, rm, mode)
        self._room = 0

    def _remove(self, nodes: list[int], mode: int) -> UnmergeResult:
        """Remove live ``nodes`` (mode 0 delete, TOMB, BLOCKED) and recompute what they leave."""
        by_row: dict[int, list[int]] = {}
        for x in sorted(set(nodes)):
            by_row.setdefault(self.row_of_node(x), []).append(x)
        groups = [(row, self.members(row)) for row in by_row]
        rm = np.array(sorted(set(nodes)), dtype=np.int64)
        self._delete_nodes(rm, mode)
        erased: list[int] = []
        new_rows: list[np.ndarray] = []
        kept_row = -1
        gone = set(rm.tolist())
        for row, members in groups:
            rest = np.array([m for m in members.tolist() if m not in gone], dtype=np.int64)
            if rest.shape[0] == 0:
                erased.append(row)
                continue
            pieces = self._recompute(rest, row)
            kept_row = row
            new_rows.append(pieces[1:])
            self._notify_split(row, pieces[1:])
        er = self._erase_rows(erased)
        nr = np.concatenate(new_rows).astype(np.int32) if new_rows else np.zeros(0, np.int32)
        return UnmergeResult(kept_row, nr, er)

    def forget(
        self, ids: Mapping[str, str] | np.ndarray | None = None, *, row: int | None = None,
    ) -> UnmergeResult:
        """Erase identifiers (``ids``: type -> value or a key array) or a whole person (``row``,
        every identifier of the profile) and keep keyed tombstones.

        Their evidence and do-not-link pairs are deleted; what remains of each profile is
        recomputed (and keeps the profile state); a profile left with no identifier is erased
        (erase listeners clear it). Later events carrying a tombstoned identifier link nothing
        unless they carry explicit consent (:meth:`link_one`). Unknown identifiers get a
        tombstone too, so a later batch load cannot introduce them.

        Raises
        ------
        SchemaError
            If neither or both of ``ids`` and ``row`` are given, or a value is malformed.
        """
        if (ids is None) == (row is None):
            got = "both" if ids is not None else "neither"
            raise SchemaError(f"Expected either `ids` or `row`, got {got} - at `forget`")
        if row is not None:
            nodes = self.members(row).tolist()
            if not nodes:
                return UnmergeResult(-1, np.zeros(0, np.int32), np.zeros(0, np.int32))
            return self._remove(nodes, K.TOMB)
        assert ids is not None
        if isinstance(ids, Mapping):
            keys, types = self.keys_of(ids)
            types = self.register_types(ids, types)  # tombstones of new types need codes
        else:
            keys = self._as_keys(ids)
            types = np.zeros(keys.shape[1], dtype=np.int8)
        keys = keys.copy()
        if keys.shape[0] > 1:
            keys[1] &= np.uint64(0xFFFFFFFF)
        found = self._node_of(keys)
        live = [int(n) for n in found.tolist() if n >= 0 and (int(self.nodes_["state"][n]) & K.STATE_MASK) == K.LIVE]
        res = self._remove(live, K.TOMB) if live else UnmergeResult(-1, np.zeros(0, np.int32), np.zeros(0, np.int32))
        absent = found < 0
        if absent.any():  # tombstones for identifiers never seen
            self._reserve(int(absent.sum()))
            out = np.empty(int(absent.sum()), dtype=np.int32)
            K.graph_block(self.tab_, self.nodes_, self.free_nodes_, self.meta_,
                          np.ascontiguousarray(keys[:, absent]), np.ascontiguousarray(types[absent]), out)
            self.nodes_["state"][out[out >= 0]] = K.TOMB
            self._room = 0
        return res

    def readmit(self, keys: np.ndarray) -> int:
        """Lift the tombstones of ``keys`` (uint64[2, m]) without linking anything; returns how
        many were lifted. (Events with explicit consent do this as they link.)"""
        found = self._node_of(keys)
        tomb = [int(n) for n in found.tolist() if n >= 0 and int(self.nodes_["state"][n]) & K.STATE_MASK == K.TOMB]
        if tomb:
            # a tombstone holds nothing: deleting it leaves the identifier simply unknown
            self.nodes_["state"][tomb] = K.LIVE
            self.meta_[K.C_LIVE] += len(tomb)
            self._delete_nodes(np.array(tomb, dtype=np.int64), 0)
        return len(tomb)

    def block(self, id_type: str, value: str) -> UnmergeResult:
        """Block a value at run time (a placeholder discovered in the data): it never links
        again, and if it is linked now it is removed from its profile, which is recomputed.

        Raises
        ------
        SchemaError
            If the value is malformed for its type.
        """
        code = self.type_code(id_type)
        canonical, _ = self.rules.canonical(id_type, value, self.rules.rule(code))
        k, tag = identifier_key(self.key, id_type, canonical)
        keys = np.array([[k], [tag]], dtype=np.uint64)
        node = int(self._node_of(keys)[0])
        if node >= 0 and (int(self.nodes_["state"][node]) & K.STATE_MASK) == K.LIVE:
            return self._remove([node], K.BLOCKED)
        if node >= 0:
            self.nodes_["state"][node] = K.BLOCKED
        else:
            self._reserve(1)
            K.graph_block(self.tab_, self.nodes_, self.free_nodes_, self.meta_, keys,
                          np.array([code], dtype=np.int8), np.empty(1, dtype=np.int32))
            self._room = 0
        return UnmergeResult(-1, np.zeros(0, np.int32), np.zeros(0, np.int32))

    def evict(self, rows: np.ndarray) -> int:
        """Drop whole profiles ``rows`` to bound memory: their identifiers (no tombstone: they
        come back as new), evidence and do-not-link pairs; erase listeners clear the rows,
        which are then reused. Tombstones and blocked values hold no row and are kept, so an
        erased identifier stays erased. Returns the identifiers dropped. O(identifiers) for the
        scan plus O(degree) per dropped identifier.

        Raises
        ------
        SchemaError
            If a row is not a live profile.
        """
        rows = np.unique(np.asarray(rows, dtype=np.int32))
        if rows.shape[0] == 0:
            return 0
        n_rows = int(self.meta_[K.C_ROWS])
        if rows[0] < 0 or rows[-1] >= n_rows or (self.rows_["root"][rows] < 0).any():
            raise SchemaError(f"Expected live profile rows, got {rows[:8].tolist()!r}... - at `rows`")
        sizes = self.rows_["size"][rows].astype(np.int64)
        total = int(sizes.sum())
        n = int(self.meta_[K.C_NODES])
        if 16 * rows.shape[0] < n:  # a few rows: walk their member lists
            rm = np.empty(total, dtype=np.int64)
            roots = self.rows_["root"][rows].tolist()
            pos = 0
            for r, size in zip(roots, sizes.tolist()):
                pos += K.graph_members(self.nodes_, r, rm[pos : pos + size])
            rm = rm[:pos]
        else:  # many: one scan of every node's row
            node_rows = np.empty(n, dtype=np.int32)
            K.graph_component_rows(self.nodes_, n, node_rows)
            sel = np.zeros(n_rows + 1, dtype=bool)  # -1 (not live) lands on the spare last cell
            sel[rows] = True
            rm = np.flatnonzero(sel[node_rows]).astype(np.int64)
        self._delete_nodes(rm, 0)
        self._erase_rows(rows.tolist())
        self.compact_evidence()
        return int(rm.shape[0])

    def compact_evidence(self, *, force: bool = False) -> int:
        """Reclaim the records of deleted evidence edges once they outnumber the live ones (or
        always with ``force``), keeping evidence order; returns the records freed."""
        meta = self.meta_
        dead = int(meta[K.C_EDGES]) - int(meta[K.C_LIVE_EDGES])
        if dead == 0 or (not force and dead < max(1024, int(meta[K.C_LIVE_EDGES]))):
            return 0
        freed: int = K.graph_compact_edges(self.edges_, self.ev_head_, meta, int(meta[K.C_NODES]))
        self._room = 0
        return freed

    def expire(self, now: int) -> UnmergeResult:
        """Drop volatile identifiers (types with ``ttl_days``) not seen for longer than their
        time-to-live before ``now`` (epoch ms), with their evidence; recompute what they leave.
        No tombstone: the identifier may come back as new."""
        n = int(self.meta_[K.C_NODES])
        out = np.empty(n, dtype=np.int64)
        k = K.graph_expired(self.nodes_, n, self.trules_, now, out)
        if k == 0:
            return UnmergeResult(-1, np.zeros(0, np.int32), np.zeros(0, np.int32))
        return self._remove(out[:k].tolist(), 0)

    # ------------------------------------------------------------------ verification
    def partition_from_evidence(self) -> set[frozenset[int]]:
        """The components recomputed from scratch from the evidence, the rules and the
        do-not-link pairs (on copies: nothing changes). Equal to :meth:`partition` when no
        identifier was removed since the links were made (removals recompute locally)."""
        # the clone shares the listeners: recomputing notifies none
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        for name in STATE_ARRAYS:
            setattr(clone, name, getattr(self, name).copy())
        live = np.flatnonzero(clone.live_mask()).astype(np.int64)
        clone.meta_[K.C_FREE] = 0
        clone.meta_[K.C_ROWS] = 0
        clone._recompute(live, -1)
        return clone.partition()
