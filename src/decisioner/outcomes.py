"""Outcomes: the decisions that a later click or conversion may still be joined to, and the join.

Each decision the engine logs is remembered by id with what rewarding it needs: the placement,
the handle of its rows in the decision log, its slot count, the variant code, the reward it
has received so far, the context a contextual policy saw, its event time and which outcomes it
has received. :class:`PendingOutcomes` exports its state for snapshots.

**Attribution window.** An outcome is joined when it is dated at or after its decision and at
most ``outcomes.attribution_window_days`` after it; otherwise it is refused with a
:class:`~decisioner.errors.SchemaError` at ``$.time``. A decision is pending until the engine's
clock - the newest decision or accepted outcome time it has admitted, never the wall clock, so
replay expires exactly what the original run expired - passes its time plus the window; then
an outcome for it raises :class:`~decisioner.errors.UnknownDecisionError` saying so. Expired
decisions leave the table from its front (decision order) as the clock moves, amortised O(1)
per decision; the table also keeps at most ``limits.max_pending_decisions`` (oldest dropped
first).

**Idempotency.** Outcomes are idempotent per (decision id, slot, kind), the slot being the one
the outcome resolves to (``content``, or the first slot when it names none): the first click
and the first conversion of each slot count; a later one, whatever its value, is a duplicate.
A duplicate changes nothing but the ``duplicates_`` counter. It is still admitted to the
journal (so a log replay counts it again and a recovered engine equals the original), but
rewards nothing and moves no clock.

:class:`Outcomes` joins an outcome to its decision by id (validating everything first) and
rewards the slot it names, or the first: in the decision log, in the policy of the placement
that decided (its variant or the holdout under an experiment) or, for a slate placement, in its
click-through term.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import numpy as np

from .config import DAY_MS
from .errors import SchemaError, UnknownDecisionError
from .schemas import Outcome
from .snapshot import ComponentState

if TYPE_CHECKING:
    from .decisionlog import DecisionLog
    from .placements import Placement, Placements

__all__ = ["Joined", "Outcomes", "Pending", "PendingOutcomes", "NEVER", "outcome_code"]

#: the clock before any decision or outcome (int64 min): nothing has expired
NEVER: Final = -(2**63)

_KINDS: Final = {"click": 0, "conversion": 1}


def outcome_code(slot: int, kind: str) -> int:
    """The bit of ``Pending.received`` that an outcome of ``kind`` on ``slot`` sets."""
    return 2 * slot + _KINDS[kind]


class Pending(NamedTuple):
    """What joining an outcome to one decision needs."""

    placement: int
    handle: int
    n_slots: int
    variant: int
    reward: float
    context: list[float] | None
    time: int  # the decision's event time (epoch ms)
    received: int = 0  # bit ``outcome_code(slot, kind)`` set for each outcome joined so far
    #: the slots' contents when the decision has no decision-log rows (``handle`` -1: the person
    #: refused analytics), which is all joining a reward needs
    contents: tuple[int, ...] = ()


class PendingOutcomes:
    """Decision id -> :class:`Pending`, in decision order, within the attribution window and
    bounded to the newest ``capacity`` decisions.

    Decision ids are ``<instance>-<decision number>``; the ids of the last decisions dropped
    for each reason tell an outcome that comes too late from one for an unknown decision.

    Examples
    --------
    >>> p = PendingOutcomes(capacity=2, window_ms=100)
    >>> p.add("d-0", Pending(0, 0, 1, -1, 0.0, None, 1_000)); p.add("d-1", Pending(0, 1, 1, -1, 0.0, None, 1_050))
    >>> p.add("d-2", Pending(0, 2, 1, -1, 0.0, None, 1_101))  # the clock passes d-0's window
    >>> p.get("d-0") is None, p.get("d-1").handle, p.dropped("d-0"), p.expired_
    (True, 1, 'expired', 1)
    """

    def __init__(self, capacity: int = 1_000_000, *, window_ms: int = 7 * DAY_MS) -> None:
        self.capacity = capacity
        self.window_ms = window_ms
        self._items: OrderedDict[str, Pending] = OrderedDict()
        #: the newest decision or accepted outcome time admitted (:data:`NEVER` before any)
        self.now_ = NEVER
        #: outcomes ignored as duplicates of one already joined (same decision, slot and kind)
        self.duplicates_ = 0
        #: decisions dropped because the clock passed their attribution window
        self.expired_ = 0
        self._last_expired: str | None = None  # id of the newest decision dropped at the window
        self._last_bounded: str | None = None  # ... and for the capacity bound

    def __len__(self) -> int:
        return len(self._items)

    def add(self, decision_id: str, entry: Pending) -> None:
        """Remember a new decision (the newest: ids come in decision order)."""
        self._items[decision_id] = entry
        self._advance(entry.time)

    def add_many(self, entries: list[tuple[str, Pending]], time: int) -> None:
        """Remember new decisions of one event ``time`` at once (in order, the newest last):
        what :meth:`add` of each would leave."""
        self._items.update(entries)
        self._advance(time)

    def get(self, decision_id: str) -> Pending | None:
        """The pending decision ``decision_id`` (``None`` if unknown or dropped; it may still be
        past its window, see :meth:`expired`)."""
        return self._items.get(decision_id)

    def expired(self, entry: Pending) -> bool:
        """Whether the clock has passed ``entry``'s attribution window."""
        return entry.time < self.now_ - self.window_ms

    def record(self, decision_id: str, code: int, reward: float, time: int) -> None:
        """An outcome joined: set its ``code`` bit, add ``reward`` to what the policy has
        learnt from the decision, and move the clock to ``time``."""
        e = self._items[decision_id]
        self._items[decision_id] = e._replace(reward=e.reward + reward, received=e.received | (1 << code))
        self._advance(time)

    def _advance(self, time: int) -> None:
        if time > self.now_:
            self.now_ = time
        items = self._items
        horizon = self.now_ - self.window_ms
        while items:
            first = next(iter(items))
            if items[first].time >= horizon:
                break
            del items[first]
            self._last_expired = first
            self.expired_ += 1
        while len(items) > self.capacity:
            self._last_bounded = items.popitem(last=False)[0]

    def dropped(self, decision_id: str) -> str | None:
        """Why ``decision_id`` is no longer pending: ``"expired"`` (past its attribution
        window), ``"bound"`` (the capacity bound), ``"either"`` (older than the last decision
        dropped for each reason) or ``None`` (not a decision this table dropped)."""
        seq = _seq(decision_id)
        if seq is None:
            return None
        past = [_seq(k) for k in (self._last_expired, self._last_bounded)]
        ex, bd = (p is not None and p[0] == seq[0] and seq[1] <= p[1] for p in past)
        return "either" if ex and bd else "expired" if ex else "bound" if bd else None

    def to_state(self) -> ComponentState:
        items = self._items
        codes = [(i, c) for i, e in enumerate(items.values()) if e.received for c in _bits(e.received)]
        arrays = {
            "time": np.fromiter((e.time for e in items.values()), dtype=np.int64, count=len(items)),
            "received": np.array(codes, dtype=np.int64).reshape(-1, 2),  # (entry, code) pairs
        }
        meta = {
            # id and the first six fields of each entry, as snapshots held them before the
            # attribution window (a reader of that layout ignores the rest)
            "items": [[k, *v[:6]] for k, v in items.items()],
            # (entry, contents) of the decisions without decision-log rows
            "unlogged": [[i, list(e.contents)] for i, e in enumerate(items.values()) if e.handle < 0],
            "now": self.now_,
            "duplicates": self.duplicates_,
            "expired": self.expired_,
            "last_expired": self._last_expired,
            "last_bounded": self._last_bounded,
        }
        return arrays, meta

    def load_state(self, state: ComponentState) -> bool:
        """Continue from :meth:`to_state`. A state written before decisions carried their times
        (no ``time`` array) is read with every time 0 and returns ``False``: the caller fills
        them in (:meth:`Outcomes.load_state`)."""
        arrays, meta = state
        items: list[list[Any]] = meta["items"]
        timed = "time" in arrays
        t: list[int] = arrays["time"].tolist() if timed else [0] * len(items)
        received = [0] * len(items)
        for i, c in np.asarray(arrays.get("received", np.zeros((0, 2), np.int64))).tolist():
            received[i] |= 1 << c
        unlogged = {int(i): tuple(int(c) for c in cs) for i, cs in meta.get("unlogged", [])}
        self._items = OrderedDict(
            (k, Pending(placement, handle, n_slots, variant, reward, context, t[i], received[i], unlogged.get(i, ())))
            for i, (k, placement, handle, n_slots, variant, reward, context) in enumerate(items)
        )
        self.now_ = int(meta.get("now", NEVER))
        self.duplicates_ = int(meta.get("duplicates", 0))
        self.expired_ = int(meta.get("expired", 0))
        self._last_expired = meta.get("last_expired")
        self._last_bounded = meta.get("last_bounded")
        return timed

    def values(self) -> list[Pending]:
        """The pending decisions, oldest first."""
        return list(self._items.values())

    def retime(self, times: list[int]) -> None:
        """Set the decision times of every entry, in order, and the clock to the newest."""
        self._items = OrderedDict((k, e._replace(time=t)) for (k, e), t in zip(self._items.items(), times))
        self.now_ = max(times, default=NEVER)


def _seq(decision_id: str | None) -> tuple[str, int] | None:
    """``("d", 12)`` for ``"d-12"``; ``None`` for an id of another form."""
    if decision_id is None:
        return None
    prefix, sep, tail = decision_id.rpartition("-")
    if not sep or not tail.isascii() or not tail.isdigit():
        return None
    return prefix, int(tail)


def _bits(mask: int) -> list[int]:
    return [b for b in range(mask.bit_length()) if mask >> b & 1]


class Joined(NamedTuple):
    """An outcome joined to its decision and validated: what rewarding it changes."""

    outcome: Outcome
    entry: Pending
    placement: Placement  # what decided: the base placement, one of its variants or the holdout
    slot: int
    content: int  # the content index logged for ``slot`` (-1 when the decision has no slots)
    code: int  # ``outcome_code(slot, kind)``
    duplicate: bool  # the decision has received this kind of outcome on this slot already


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
            If the decision id is unknown, or the decision is past its attribution window or
            was dropped for the bound on pending decisions.
        SchemaError
            If ``content`` was not in the decision, or ``time`` is before the decision or past
            its attribution window.
        """
        pending = self.pending
        entry = pending.get(out.decision_id)
        if entry is None or pending.expired(entry):
            raise UnknownDecisionError(self._not_pending(out.decision_id, "expired" if entry else None))
        plc, _ = self.placements.by_index(entry.placement).assigned(entry.variant)
        if entry.handle < 0:
            logged = np.array(entry.contents, dtype=np.int64)
        else:
            logged = self.decision_log.rows("content", entry.handle, entry.n_slots)
        slot = 0
        if out.content is not None:
            names = [plc.contents[int(c)] for c in logged]
            if out.content not in names:
                raise SchemaError(f"Expected `content` to be one of {names!r}, got {out.content!r} - at `$.content`")
            slot = names.index(out.content)
        if out.time < entry.time:
            raise SchemaError(
                f"Expected `time` at or after the decision's time {entry.time}, got {out.time} - at `$.time`"
            )
        if out.time > entry.time + pending.window_ms:
            raise SchemaError(
                f"Expected `time` at most {entry.time + pending.window_ms} (the decision's time {entry.time} "
                f"+ the attribution window of {_days(pending.window_ms)}), got {out.time} - at `$.time`"
            )
        code = outcome_code(slot, out.kind)
        content = int(logged[slot]) if entry.n_slots else -1
        return Joined(out, entry, plc, slot, content, code, bool(entry.received >> code & 1))

    def _not_pending(self, decision_id: str, why: str | None) -> str:
        why = why or self.pending.dropped(decision_id)
        window = f"past its attribution window of {_days(self.pending.window_ms)} (`outcomes.attribution_window_days`)"
        bound = f"dropped for the bound of {self.pending.capacity} (`limits.max_pending_decisions`)"
        detail = {"expired": window, "bound": bound, "either": f"{window} or {bound}", None: ""}[why]
        if detail:
            detail = f", a decision {detail}"
        return f"Expected a pending decision id, got {decision_id!r}{detail} - at `$.decision_id`"

    def reward(self, joined: Joined) -> None:
        """Reward the joined slot: a click counts 1, a conversion its value; a duplicate only
        counts as one."""
        out, entry, plc, slot, content, code, duplicate = joined
        if duplicate:
            self.pending.duplicates_ += 1
            return
        value = out.value if out.kind == "conversion" else 1.0
        learnt = 0.0
        if entry.n_slots:
            if entry.handle >= 0:
                self.decision_log.add_reward(entry.handle + slot, value)
            if plc.bandit is not None and plc.fixed < 0 and out.kind == plc.reward_kind:
                # delayed reward, joined by decision id: the exposure was counted at decide time
                plc.bandit.update_one(content, value, exposed=True, previous=entry.reward, context=entry.context)
                learnt = value
            if out.kind == "click" and plc.bandit is None and plc.state is not None:
                plc.state.click(content)
        self.pending.record(out.decision_id, code, learnt, out.time)

    def load_state(self, state: ComponentState) -> None:
        """Restore the pending decisions; a state written before they carried their times takes
        each from its first row in the decision log (load that first); a decision without rows
        takes the time of the one before it."""
        if self.pending.load_state(state):
            return
        times: list[int] = []
        for e in self.pending.values():
            if e.n_slots and e.handle >= 0:
                times.append(int(self.decision_log.rows("time", e.handle, 1)[0]))
            else:
                times.append(times[-1] if times else -1)
        first = next((t for t in times if t >= 0), 0)
        self.pending.retime([first if t < 0 else t for t in times])


def _days(ms: int) -> str:
    d = ms / DAY_MS
    return f"{d:g} day" if d == 1 else f"{d:g} days"
