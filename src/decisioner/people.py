"""People: stable person ids that are never reused, over profile rows that are.

Rows are storage: the identity graph recycles them after merges, erasure and eviction. Every
record about a person (decision log, exposures, experiment units, anything later stages add)
therefore carries a *person id* from this index instead of a row:

* a new profile row gets the next id (``next_``; ids only grow, so no one inherits another's);
* a merge makes the absorbed person an *alias* of the survivor: :meth:`canonical` maps every id
  that was ever merged into a person to that person, so the absorbed person's records are the
  survivor's (``members`` lists every id that resolves to a person, for exports);
* erasure forgets the person and every alias of it (:meth:`erase` returns their ids, so the
  stores can drop their records); eviction releases the row, and the person's id is simply
  never used again;
* the anonymous scratch row (an event with no usable identifier) has no person (-1).

State: ``person_`` int64[rows] (-1: none), ``next_``, and the alias pairs (``alias_from_``,
``alias_to_``), exported with :meth:`to_state`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .rows import doubled, grown
from .snapshot import ComponentState

__all__ = ["People", "NO_PERSON"]

NO_PERSON = -1


class People:
    """Person ids of profile rows, with merge aliases.

    Examples
    --------
    >>> p = People()
    >>> a, b = p.new(0), p.new(1)
    >>> p.merge(0, np.array([1]))
    >>> p.canonical(b) == a, p.person_of(1), sorted(p.members(a))
    (True, -1, [0, 1])
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.person_ = np.full(max(1, capacity), NO_PERSON, dtype=np.int64)
        self.next_ = 0
        self._alias: dict[int, int] = {}

    def ensure(self, n_rows: int) -> None:
        """Grow (doubling) so rows ``0 .. n_rows - 1`` exist."""
        if n_rows > self.person_.shape[0]:
            self.person_ = grown(self.person_, doubled(self.person_.shape[0], n_rows), NO_PERSON)

    def new(self, row: int) -> int:
        """Give ``row`` a new person id and return it."""
        self.ensure(row + 1)
        pid = self.next_
        self.next_ = pid + 1
        self.person_[row] = pid
        return pid

    def person_of(self, row: int) -> int:
        """The person id of ``row`` (-1: none)."""
        if row < 0 or row >= self.person_.shape[0]:
            return NO_PERSON
        return int(self.person_[row])

    def canonical(self, pid: int) -> int:
        """The person ``pid`` was merged into (itself when never merged)."""
        alias = self._alias
        root = pid
        while root in alias:
            root = alias[root]
        while pid != root:  # path compression
            nxt = alias[pid]
            alias[pid] = root
            pid = nxt
        return root

    def canonical_many(self, pids: np.ndarray) -> np.ndarray:
        """:meth:`canonical` of each id (int64), -1 staying -1."""
        if not self._alias:
            return np.asarray(pids, dtype=np.int64)
        return np.array([self.canonical(int(p)) if p >= 0 else NO_PERSON for p in pids], dtype=np.int64)

    def members(self, pid: int) -> set[int]:
        """Every id whose records belong to person ``pid`` (itself and what merged into it)."""
        root = self.canonical(pid)
        return {root} | {a for a in list(self._alias) if self.canonical(a) == root}

    def merge(self, survivor_row: int, absorbed_rows: np.ndarray) -> None:
        """The people of ``absorbed_rows`` become aliases of the survivor's; their rows are
        released."""
        s = self.person_of(survivor_row)
        for r in absorbed_rows.tolist():
            a = self.person_of(int(r))
            if a >= 0 and s >= 0 and a != s:
                self._alias[a] = s
            elif s < 0 and a >= 0:  # the survivor had no person (scratch): it takes the other's
                self.person_[survivor_row] = a
                s = a
            self.person_[int(r)] = NO_PERSON

    def release(self, rows: np.ndarray | list[int]) -> None:
        """Rows given up (eviction): their people keep their ids, which nobody else gets."""
        for r in rows:
            if 0 <= int(r) < self.person_.shape[0]:
                self.person_[int(r)] = NO_PERSON

    def erase(self, rows: np.ndarray | list[int]) -> set[int]:
        """Forget the people of ``rows`` and every alias of them; returns their ids (the stores
        drop the records of exactly these)."""
        gone: set[int] = set()
        for r in rows:
            pid = self.person_of(int(r))
            if pid >= 0:
                gone |= self.members(pid)
        for a in [a for a in self._alias if a in gone]:
            del self._alias[a]
        self.release(rows)
        return gone

    def to_state(self) -> ComponentState:
        items = sorted(self._alias.items())
        arrays = {
            "person": self.person_,
            "alias_from": np.array([a for a, _ in items], dtype=np.int64),
            "alias_to": np.array([b for _, b in items], dtype=np.int64),
        }
        return arrays, {"next": self.next_}

    def load_state(self, state: ComponentState) -> None:
        arrays, meta = state
        self.person_ = np.array(arrays["person"], dtype=np.int64)
        self.next_ = int(meta["next"])
        self._alias = dict(zip(arrays["alias_from"].tolist(), arrays["alias_to"].tolist()))

    def __repr__(self) -> str:
        return f"People(next={self.next_}, aliases={len(self._alias)})"

    def metrics(self) -> dict[str, Any]:
        return {"people_issued": self.next_, "aliases": len(self._alias)}
