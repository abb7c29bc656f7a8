"""Admission: the writer lock, the operation counter and the typed write-ahead records.

Every state change of an engine is *admitted* here, under the writer lock, after it has been
validated and applied: :meth:`Journal.admit` encodes the operation first (so an operation that
cannot be logged changes no counter), then takes the next admission number and appends the
record to the event log when one is attached. Replay decodes the same records and hands the
operations back in admission order.

A record is one msgpack array ``[seq, op]`` where ``op`` is one of the operation Structs below,
tagged by ``op`` (no JSON inside): an event's identifiers are logged as their keyed hashes
(key and check-tag word, 32 hex digits), never as raw values, and replay links those keys
without hashing again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

import msgspec

from ._rwlock import RWLock
from .errors import NotReadyError, SchemaError
from .eventlog import EventLog, LogRecovery, recover_log
from .schemas import BehaviourEvent, Outcome

__all__ = [
    "Journal",
    "Operation",
    "Record",
    "TrackOp",
    "DecideOp",
    "ObserveOp",
    "ForgetOp",
    "UnlinkOp",
    "SplitOp",
    "ExpireOp",
    "ExportOp",
    "InventoryOp",
    "AttributesOp",
    "RankerOp",
    "OutboundOp",
    "decode_record",
    "read_records",
    "recover_records",
]


class TrackOp(msgspec.Struct, tag="track", tag_field="op", array_like=True, frozen=True):
    """A tracked behaviour event (identifiers as keyed hashes)."""

    event: BehaviourEvent


class DecideOp(msgspec.Struct, tag="decide", tag_field="op", array_like=True, frozen=True):
    """A decision for ``placement`` on a behaviour event (identifiers as keyed hashes)."""

    placement: str
    event: BehaviourEvent


class ObserveOp(msgspec.Struct, tag="observe", tag_field="op", array_like=True, frozen=True):
    """An outcome joined to a decision."""

    outcome: Outcome


class ForgetOp(msgspec.Struct, tag="forget", tag_field="op", array_like=True, frozen=True):
    """Erasure of identifiers by key (key and check-tag word per identifier); ``actor`` asked
    for it at ``at`` (wall clock, epoch ms: the audit log's entry)."""

    keys: list[int]
    tags: list[int]
    actor: str = ""
    at: int = 0


class UnlinkOp(msgspec.Struct, tag="unlink", tag_field="op", array_like=True, frozen=True):
    """One identifier detached from its profile, by key."""

    keys: list[int]
    tags: list[int]
    actor: str = ""
    at: int = 0


class SplitOp(msgspec.Struct, tag="split", tag_field="op", array_like=True, frozen=True):
    """A profile row recomputed from its evidence, ``apart`` kept in different profiles."""

    row: int
    apart: list[tuple[list[int], list[int]]]
    actor: str = ""
    at: int = 0


class ExpireOp(msgspec.Struct, tag="expire", tag_field="op", array_like=True, frozen=True):
    """Retention applied at event time ``now``: volatile identifiers past their time-to-live
    and profiles idle past ``profiles.idle_retention_days``."""

    now: int
    actor: str = ""
    at: int = 0


class ExportOp(msgspec.Struct, tag="export", tag_field="op", array_like=True, frozen=True):
    """An access export of the person the keys resolve to (logged for the audit log only)."""

    keys: list[int]
    tags: list[int]
    actor: str = ""
    at: int = 0


class InventoryOp(msgspec.Struct, tag="inventory", tag_field="op", array_like=True, frozen=True):
    """An item's stock set to ``inventory``."""

    item: str
    inventory: int


class AttributesOp(msgspec.Struct, tag="attributes", tag_field="op", array_like=True, frozen=True):
    """A batch load of attributes (``Engine.set_attributes``): the identify event it is applied
    as (identifiers as keyed hashes, ``channel`` the source, ``attrs`` the values). Logged apart
    from a tracked identify event because a load sets every declared attribute, also those
    that events do not set (``from_events = false``)."""

    event: BehaviourEvent


class RankerOp(msgspec.Struct, tag="ranker", tag_field="op", array_like=True, frozen=True):
    """A hot swap of ``placement``'s learned ranker: the model's text as served (recovery
    serves this model even if its directory changed since), where it came from and its
    feature-schema version."""

    placement: str
    text: str
    source: str
    version: int


class OutboundOp(msgspec.Struct, tag="outbound", tag_field="op", array_like=True, frozen=True):
    """An outbound batch on ``channel`` from campaign ``placement`` at event time ``now`` for the
    audience ``persons`` (stable person ids, ascending, before the consent, cap and quiet-hour
    filters: replay filters and draws again from the same state)."""

    placement: str
    channel: str
    now: int
    persons: list[int]


Operation = (
    TrackOp | DecideOp | ObserveOp | ForgetOp | UnlinkOp | SplitOp | ExpireOp | ExportOp | InventoryOp | AttributesOp
    | RankerOp | OutboundOp
)


class Record(msgspec.Struct, array_like=True, frozen=True):
    """One admitted operation and its admission number."""

    seq: int
    op: Operation


T = TypeVar("T")

_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(Record)


def decode_record(payload: bytes, *, where: str = "the event log") -> Record:
    """One record from its payload bytes.

    Raises
    ------
    NotReadyError
        If the payload is not a record of this format (a damaged or foreign log).
    """
    try:
        return _decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError, SchemaError) as exc:
        raise NotReadyError(f"expected a decisioner log record, got an undecodable one ({exc}) - at {where}") from None


def recover_records(path: str | Path) -> tuple[list[Record], LogRecovery]:
    """Every intact record of the log at ``path``, decoded, and what the recovery kept and
    dropped; a missing file has no records. Read-only: a torn tail is left out with a
    :class:`~decisioner.errors.DecisionerWarning` (the file is unchanged), exactly as an
    :class:`EventLog` opened on it would report it before cutting it.

    Raises
    ------
    LogDamagedError
        If intact records follow damage (nothing is read, nothing changes).
    ConfigError
        If the file is not an event log of this format version.
    NotReadyError
        If an intact record does not decode.
    """
    scan, report = recover_log(path, cut=False)
    return [decode_record(p, where=repr(str(path))) for p in scan.payloads], report


def read_records(path: str | Path) -> list[Record]:
    """Every intact record of the log at ``path``, decoded (see :func:`recover_records`).

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    LogDamagedError
        If intact records follow damage.
    ConfigError
        If the file is not an event log of this format version.
    NotReadyError
        If an intact record does not decode.
    """
    if not Path(path).exists():
        raise FileNotFoundError(f"no event log at {str(path)!r}")
    return recover_records(path)[0]


class Journal:
    """The engine's admission point: one writer lock, one counter, one optional log.

    ``with journal.lock:`` is the exclusive (writer) side; ``journal.lock.read()`` the shared
    side for read-only calls. ``ops_`` counts every admitted operation; it is the position in
    the log, so a snapshot taken at ``ops_ = n`` is continued by the records ``n, n + 1, ...``.
    """

    def __init__(self) -> None:
        self.lock = RWLock()
        self.ops_ = 0
        self.log: EventLog | None = None
        #: what the last recovery from a log kept and dropped (``None`` before any)
        self.recovery_: LogRecovery | None = None

    def encode(self, op: Operation) -> bytes:
        """The record payload ``op`` would be logged as at the next admission number.

        Raises
        ------
        SchemaError
            If the operation cannot be encoded (then nothing was admitted).
        """
        try:
            return _encoder.encode(Record(self.ops_, op))
        except (UnicodeEncodeError, OverflowError, TypeError) as exc:
            raise SchemaError(
                f"expected an operation that can be logged, got one that cannot ({exc}) - at `{type(op).__name__}`"
            ) from None

    def admit(self, op: Operation, payload: bytes | None = None) -> int:
        """Count an accepted operation and append it to the log (call under the writer lock).

        ``payload`` is :meth:`encode`'s result when the caller encoded before changing state
        (the way to make an unloggable operation change nothing). Returns its admission number.
        """
        seq = self.ops_
        if self.log is not None:
            self.log.append(self.encode(op) if payload is None else payload)
        self.ops_ = seq + 1
        return seq

    def run(self, op: Operation, change: Callable[[], T]) -> T:
        """Carry out ``change`` (what ``op`` does) and admit ``op``; returns what ``change``
        returned. Call under the writer lock, after validating: ``op`` is encoded first, so an
        operation that cannot be logged changes nothing."""
        payload = self.encode(op)
        out = change()
        self.admit(op, payload)
        return out

    def attach(self, log: EventLog, apply: Callable[[Record], object]) -> None:
        """Use ``log`` from now on, after handing its records at or past ``ops_`` to ``apply``
        (recovery: they are in the log already, so they are not appended again). If anything
        fails, ``log`` is closed and no log is attached. Call under the writer lock.

        Raises
        ------
        NotReadyError
            If a record is undecodable or the records have a gap.
        """
        try:
            if self.log is not None:
                self.log.close()
            records = [decode_record(p, where=repr(str(log.path))) for p in log.recovered_]
            self.log = log
            todo = self.pending(records)
            self.log = None  # replayed records are in the log already
            for rec in todo:
                apply(rec)
        except BaseException:
            self.log = None  # never a closed log: the next change would fail after it was made
            log.close()
            raise
        self.log = log
        self.recovery_ = log.recovery_

    def replay(self, records: list[Record], apply: Callable[[Record], object]) -> int:
        """Hand the records at or past ``ops_`` to ``apply`` in order, under the writer lock;
        returns how many.

        Raises
        ------
        NotReadyError
            If the records have a gap.
        """
        with self.lock:
            todo = self.pending(records)
            for rec in todo:
                apply(rec)
        return len(todo)

    def recover(self, path: str | Path) -> list[Record]:
        """Every intact record of the log at ``path`` for a recovery that attaches no log
        (:func:`recover_records`), keeping its report in ``recovery_``.

        Raises
        ------
        LogDamagedError
            If intact records follow damage (nothing is read, nothing changes).
        """
        records, self.recovery_ = recover_records(path)
        return records

    def pending(self, records: list[Record]) -> list[Record]:
        """The records at or past ``ops_``, checked to follow on without a gap."""
        out = []
        expect = self.ops_
        for rec in records:
            if rec.seq < self.ops_:
                continue
            if rec.seq != expect:
                raise NotReadyError(f"expected log record {expect}, got {rec.seq}: the log has a gap")
            out.append(rec)
            expect += 1
        return out

    def detach(self) -> None:
        """Flush and close the log."""
        if self.log is not None:
            self.log.close()
            self.log = None
