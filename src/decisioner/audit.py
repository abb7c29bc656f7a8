"""The audit log of privacy operations: who asked, when, what, and what was removed.

Every erasure, unlink, split, retention run and access export the engine carries out appends
one :class:`AuditEntry`. The log is append-only (no call removes an entry, erasure included: an
entry names people only by their stable person ids and identifiers only by their keyed hashes,
so it holds nothing that identifies anyone once their records are gone) and it is part of the
engine's state: snapshots hold it and the event log replays it (an entry's time is the request's
wall-clock time, carried in the logged operation, so a replay writes the same entries).

``actor`` says who asked (a staff role, a ticket, a system: ``"dpo"``, ``"ticket-4711"``,
``"crm-sync"``); it is free text but never an identifier: a value with an email address or a
phone number in it is refused (:func:`actor`).
"""

from __future__ import annotations

import re
import time as _time
from typing import Any, Final

import msgspec
import numpy as np

from . import arguments
from .errors import SchemaError
from .schemas import Result
from .snapshot import ComponentState

__all__ = ["AuditEntry", "AuditLog", "actor", "now_ms"]

_EMAIL: Final = re.compile(r"[^\s@]+@[^\s@]+")
_PHONE: Final = re.compile(r"\+?\d[\d\s().-]{6,}\d")


def actor(v: Any) -> str:
    """Who asked for a privacy operation: 1 to 128 characters, no identifier in it.

    >>> actor("dpo"), actor("ticket-4711")
    ('dpo', 'ticket-4711')

    Raises
    ------
    SchemaError
        If it is not a text, or holds an email address or a phone number.
    """
    name: str = arguments.text(v, "actor", max_len=128)
    if _EMAIL.search(name) or _PHONE.search(name):
        raise SchemaError(
            f"Expected `actor` to name who asked without an email address or phone number (the audit log holds no "
            f"identifier), got one of {len(name)} characters"
        )
    return name


def now_ms() -> int:
    """The wall-clock time of a request, in epoch milliseconds (an audit entry's ``at``)."""
    return _time.time_ns() // 1_000_000


class AuditEntry(Result, frozen=True, kw_only=True):
    """One privacy operation.

    ``at`` is when it was asked (epoch ms, wall clock); ``op`` one of ``forget``, ``unlink``,
    ``split``, ``expire``, ``export``; ``persons`` the stable ids of the people it concerned;
    ``keys`` the identifiers it named, as keyed hashes (16 hex digits); ``removed`` counts by
    kind (``identifiers``, ``profiles``, ``people``, ``decisions``, ``exposures``,
    ``consent_history``, ``attributes`` ...).
    """

    seq: int
    at: int
    actor: str
    op: str
    persons: list[int] = []  # noqa: RUF012 (a msgspec Struct: defaults are copied)
    keys: list[str] = []  # noqa: RUF012
    removed: dict[str, int] = {}  # noqa: RUF012


class AuditLog:
    """The append-only list of :class:`AuditEntry` of one engine.

    Examples
    --------
    >>> log = AuditLog()
    >>> log.append(at=1_700_000_000_000, actor="dpo", op="forget", persons=[3], removed={"profiles": 1}).seq
    0
    >>> [e.op for e in log.entries()]
    ['forget']
    """

    def __init__(self) -> None:
        self._entries: list[AuditEntry] = []

    def __len__(self) -> int:
        return len(self._entries)

    def append(
        self, *, at: int, actor: str, op: str, persons: list[int] | None = None, keys: list[int] | None = None,
        removed: dict[str, int] | None = None,
    ) -> AuditEntry:
        """Add one entry (``keys`` as the 64-bit keyed hashes) and return it."""
        entry = AuditEntry(
            seq=len(self._entries), at=at, actor=actor, op=op, persons=sorted(set(persons or [])),
            keys=[f"{int(k):016x}" for k in keys or []], removed={k: v for k, v in (removed or {}).items() if v},
        )
        self._entries.append(entry)
        return entry

    def entries(self, *, person: int | None = None) -> list[AuditEntry]:
        """Every entry in order, or those that concern ``person``."""
        if person is None:
            return list(self._entries)
        return [e for e in self._entries if person in e.persons]

    def to_state(self) -> ComponentState:
        return {"at": np.array([e.at for e in self._entries], dtype=np.int64)}, {
            "entries": [msgspec.to_builtins(e) for e in self._entries]
        }

    def load_state(self, state: ComponentState) -> None:
        _, meta = state
        self._entries = [msgspec.convert(e, AuditEntry) for e in meta["entries"]]
