"""Outcomes: the decisions that a later click or conversion may still be joined to, and the join.

Each decision the engine logs is remembered by id with what rewarding it needs: the placement,
the handle of its rows in the decision log, its slot count, the variant code, the reward it
has received so far and the context a contextual policy saw. The table keeps the newest
``capacity`` decisions (oldest dropped first) and exports its state for snapshots.

:class:`Outcomes` joins an outcome to its decision by id (validating everything first) and
rewards the slot it names, or the first: in the decision log, in the policy of the placement
that decided (its variant or the holdout under an experiment) or, for a slate placement, in its
click-through term.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, NamedTuple

from .errors import SchemaError, UnknownDecisionError
from .schemas import Outcome
from .snapshot import ComponentState

if TYPE_CHECKING:
    from .decisionlog import DecisionLog
    from .placements import Placement, Placements

__all__ = ["Joined", "Outcomes", "Pending", "PendingOutcomes"]


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


class Joined(NamedTuple):
    """An outcome joined to its decision and validated: what rewarding it changes."""

    outcome: Outcome
    entry: Pending
    placement: Placement  # what decided: the base placement, one of its variants or the holdout
    slot: int
    content: int  # the content index logged for ``slot`` (-1 when the decision has no slots)


class Outcomes:
    """The outcome stage over the pending decisions, the placements and the decision log."""

    def __init__(self, pending: PendingOutcomes, placements: Placements, decision_log: DecisionLog) -> None:
        self.pending = pending
        self.placements = placements
        self.decision_log = decision_log

    def join(self, out: Outcome) -> Joined:
        """Match ``out`` to its pending decision and slot; changes nothing.

        Raises
        ------
        UnknownDecisionError
            If the decision id is unknown or past the pending window.
        SchemaError
            If ``content`` was not in the decision.
        """
        entry = self.pending.get(out.decision_id)
        if entry is None:
            raise UnknownDecisionError(f"Expected a pending decision id, got {out.decision_id!r} - at `$.decision_id`")
        plc, _ = self.placements.by_index(entry.placement).assigned(entry.variant)
        logged = self.decision_log.rows("content", entry.handle, entry.n_slots)
        slot = 0
        if out.content is not None:
            names = [plc.contents[int(c)] for c in logged]
            if out.content not in names:
                raise SchemaError(f"Expected `content` to be one of {names!r}, got {out.content!r} - at `$.content`")
            slot = names.index(out.content)
        return Joined(out, entry, plc, slot, int(logged[slot]) if entry.n_slots else -1)

    def reward(self, joined: Joined) -> None:
        """Reward the joined slot: a click counts 1, a conversion its value."""
        out, entry, plc, slot, content = joined
        if not entry.n_slots:
            return
        value = out.value if out.kind == "conversion" else 1.0
        self.decision_log.add_reward(entry.handle + slot, value)
        if plc.bandit is not None and plc.fixed < 0 and out.kind == plc.reward_kind:
            # delayed reward, joined by decision id: the exposure was counted at decide time
            plc.bandit.update_one(content, value, exposed=True, previous=entry.reward, context=entry.context)
            self.pending.rewarded(out.decision_id, value)
        if out.kind == "click" and plc.bandit is None and plc.state is not None:
            plc.state.click(content)
