"""Pending outcomes: the decisions that a later click or conversion may still be joined to.

Each decision the engine logs is remembered by id with what rewarding it needs: the placement,
the handle of its rows in the decision log, its slot count, the variant code, the reward it
has received so far and the context a contextual policy saw. The table keeps the newest
``capacity`` decisions (oldest dropped first) and exports its state for snapshots.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, NamedTuple

from .snapshot import ComponentState

__all__ = ["Pending", "PendingOutcomes"]


class Pending(NamedTuple):
    """What joining an outcome to one decision needs."""

    placement: int
    handle: int
    n_slots: int
    variant: int
    reward: float
    context: list[float] | None


class PendingOutcomes:
    """Decision id -> :class:`Pending`, bounded to the newest ``capacity`` decisions.

    Examples
    --------
    >>> p = PendingOutcomes(capacity=1)
    >>> p.add("d-0", Pending(0, 0, 1, -1, 0.0, None)); p.add("d-1", Pending(0, 1, 1, -1, 0.0, None))
    >>> p.get("d-0") is None, p.get("d-1").handle
    (True, 1)
    """

    def __init__(self, capacity: int = 1_000_000) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, Pending] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, decision_id: str, entry: Pending) -> None:
        self._items[decision_id] = entry
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def get(self, decision_id: str) -> Pending | None:
        return self._items.get(decision_id)

    def rewarded(self, decision_id: str, value: float) -> None:
        """Add ``value`` to the reward the decision has received."""
        e = self._items[decision_id]
        self._items[decision_id] = e._replace(reward=e.reward + value)

    def to_state(self) -> ComponentState:
        return {}, {"items": [[k, *v] for k, v in self._items.items()]}

    def load_state(self, state: ComponentState) -> None:
        _, meta = state
        items: list[list[Any]] = meta["items"]
        self._items = OrderedDict((k, Pending(*rest)) for k, *rest in items)
