"""Durability of an engine: what its snapshot holds, saving it, and reopening it after a crash.

An engine's state is its stages' own states by name (:func:`engine_state`; each stage exports
and imports itself) plus the engine's counters. :func:`save` writes them as an atomic snapshot
(:mod:`decisioner.persistence`: with the configuration without the secret, the catalog and a
keyed fingerprint of the secret); if the engine's log lives in the same directory, its records
move to ``events.prev.log`` and the log starts empty, since the snapshot holds everything in
it. :func:`durable` takes a snapshot and starts a fresh log beside it; :func:`open_engine`
loads the newest snapshot and replays the log written since (:meth:`Engine.apply_record`
applies each operation as it was first admitted). When the newest snapshot is damaged it
opens the previous one and replays both logs, with a warning; it removes what crashed saves
left behind once it holds the directory's lock.

This module reads the engine's public stages and calls its public methods; the engine imports
it, never the other way round.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from .errors import DecisionerWarning, LogLockedError, NotReadyError, SnapshotDamagedError
from .eventlog import DirectoryLock, EventLog, FlushPolicy
from .journal import Journal, Record, recover_records
from .persistence import LOG_NAME, PREV_LOG_NAME, read_engine_snapshot, write_engine_snapshot
from .recovery import log_marker, require_log
from .snapshot import ComponentState, clean_leftovers

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["Durable", "engine_state", "load_engine_state", "save", "durable", "open_engine"]


def engine_state(engine: Engine) -> dict[str, ComponentState]:
    """Every stage's state by name, and the engine's counters (what a snapshot holds)."""
    meta = {"seq": engine.seq_, "events": engine.events_, "evicted": engine.evicted_, "ops": engine.ops_}
    return {
        "identity": (engine.identity.to_arrays(), {}),
        "profiles": engine.profiles.to_state(),
        "consent": engine.consent.to_state(),
        "audit": engine.stores.audit.to_state(),
        "people": engine.people.to_state(),
        "popularity": engine.scorer.to_state(),
        "experiments": engine.experiments_.to_state(),
        "decision_log": engine.decision_log.to_state(),
        "pending": engine.pending_.to_state(),
        "catalog": engine.catalog.to_state(),
        "engine": ({}, meta),
        "attributes": engine.attributes_.to_state(),
        "engagement": engine.engagement_.to_state(),
        "pulse": engine.pulse_.to_state(),
        "activity": engine.activity_.to_state(),
        "outbound": engine.sends_.to_state(),
        **engine.placements_.to_state(),
    }


def load_engine_state(engine: Engine, states: dict[str, ComponentState]) -> None:
    """Continue ``engine`` from :func:`engine_state` of an engine with the same configuration and
    catalog (the identity graph comes through the constructor)."""
    engine.tracker.sync_rows()
    engine.profiles.load_state(states["profiles"])
    engine.consent.load_state(states["consent"])
    engine.stores.audit.load_state(states["audit"])
    engine.people.load_state(states["people"])
    engine.scorer.load_state(states["popularity"])
    engine.experiments_.load_state(states["experiments"])
    engine.decision_log.load_state(states["decision_log"])
    engine.outcomes.load_state(states["pending"])  # after the decision log: old states take times from it
    engine.catalog.load_state(states["catalog"])
    engine.placements_.set_stock(engine.catalog.in_stock())
    engine.placements_.load_state(states)
    if "attributes" in states:  # written before attributes existed: none was declared then
        engine.attributes_.load_state(states["attributes"])
    if "engagement" in states:  # written before engagement tiers: none was kept then
        engine.engagement_.load_state(states["engagement"])
    if "pulse" in states:
        engine.pulse_.load_state(states["pulse"])
    if "activity" in states:  # written before activity was kept: every count starts empty
        engine.activity_.load_state(states["activity"])
    if "outbound" in states:  # written before outbound messages: nobody was sent one
        engine.sends_.load_state(states["outbound"])
    meta = states["engine"][1]
    engine.seq_ = int(meta["seq"])
    engine.tracker.events_, engine.tracker.evicted_ = int(meta["events"]), int(meta["evicted"])
    engine.journal.ops_ = int(meta["ops"])


def save(engine: Engine, directory: str | Path, *, fresh: bool = False) -> Path:
    """Write an atomic snapshot of ``engine`` under ``directory`` and move the engine's log to
    ``events.prev.log`` if it lives there. Returns the snapshot's path. ``fresh``: the
    directory's earlier snapshot is another state's, so it is no fallback of this one.

    Raises
    ------
    LogLockedError
        If another process writes in ``directory``.
    """
    with engine.journal.lock:
        path = write_engine_snapshot(
            directory,
            ops=engine.ops_,
            config=engine.config,
            catalog=engine.catalog,
            key=engine.identity.key,
            header={
                "seed": engine.seed, "instance": engine.instance, "feedback_weight": engine.feedback_weight,
                **log_marker(directory, engine.journal.log),
            },
            components=engine.to_state(),
            keep_previous=not fresh,
        )
        log = engine.journal.log
        if log is not None and log.path.resolve() == (Path(directory) / LOG_NAME).resolve():
            log.rotate(Path(directory) / PREV_LOG_NAME)  # the previous snapshot's way to this one
        return path


def durable(
    engine: Engine, directory: str | Path, *, flush: FlushPolicy = "event", fsync: bool = False,
    interval_ms: float = 100.0,
) -> EventLog:
    """A snapshot of ``engine`` in ``directory`` now, then every accepted change in a new
    ``directory/events.log``."""
    with engine.journal.lock:
        log_path = Path(directory) / LOG_NAME
        log_path.unlink(missing_ok=True)  # a log left there belongs to another state
        log = engine.attach_log(log_path, flush=flush, fsync=fsync, interval_ms=interval_ms)
        try:
            save(engine, directory, fresh=True)  # after the attach: the snapshot names the log that continues it
        except BaseException:
            engine.detach_log()
            raise
        return log


def open_engine(
    cls: type[Engine], directory: str | Path, *, hash_key: str | None = None, flush: FlushPolicy = "event",
    fsync: bool = False, interval_ms: float = 100.0, **kwargs: Any,
) -> Engine:
    """An engine ``cls`` from the newest snapshot in ``directory`` and the log written since, which
    it goes on writing (``flush="off"``: replay it, then log nothing more). ``kwargs`` override
    the saved constructor values (seed, instance, feedback weight).

    Raises
    ------
    NotReadyError
        No snapshot, a damaged file, a wrong secret, a log another process holds.
    ConfigError
        A snapshot or log format this version cannot read.
    """
    root = Path(directory)
    fallback = False
    try:
        r = read_engine_snapshot(root, hash_key=hash_key)
    except SnapshotDamagedError as exc:
        try:
            r = read_engine_snapshot(root, hash_key=hash_key, previous=True)
        except (SnapshotDamagedError, NotReadyError):
            raise exc from None
        warnings.warn(
            f"{exc}; opened the previous snapshot {r.path.name!r} and replayed the logs since",
            DecisionerWarning,
            stacklevel=3,
        )
        fallback = True
    require_log(root, r.header, snapshot=r.path)  # a log the snapshot expects is never replaced by an empty one
    h = r.header
    kw = {"seed": h["seed"], "instance": h["instance"], "feedback_weight": h["feedback_weight"], **kwargs}
    engine = cls(r.config, r.catalog, identity=r.identity, **kw)
    engine.load_state(r.components)
    if fallback:
        engine.replay_records(recover_records(root / PREV_LOG_NAME)[0])
    log_path = root / LOG_NAME
    if flush != "off":
        engine.attach_log(log_path, flush=flush, fsync=fsync, interval_ms=interval_ms)
        if not fallback:  # after a fallback everything stays for inspection
            clean_leftovers(root, older=False)  # this engine is the directory's writer now
        return engine
    engine.replay_records(engine.journal.recover(log_path))  # what the log holds; then log nothing more
    if fallback:
        return engine
    try:
        lock = DirectoryLock(root)
    except LogLockedError:  # another process writes there: its save may be in progress
        return engine
    try:
        clean_leftovers(root, older=False)
    finally:
        lock.release()
    return engine


class Durable(ABC):
    """The engine's durability methods (the :class:`~decisioner.engine.Engine` facade inherits
    them): its state, snapshots, the event log and recovery. They call this module's functions
    and the engine's public journal and :meth:`apply_record`."""

    journal: Journal

    @abstractmethod
    def apply_record(self, rec: Record) -> Any:
        """Apply one logged operation (the engine's pipeline; see :meth:`Engine.apply_record`)."""

    def to_state(self) -> dict[str, ComponentState]:
        """Every component's state, by name (what a snapshot holds)."""
        return engine_state(_engine(self))

    def load_state(self, states: dict[str, ComponentState]) -> None:
        """Continue from :meth:`to_state` of an engine with the same configuration and catalog
        (the identity graph comes through the constructor)."""
        load_engine_state(_engine(self), states)

    def attach_log(
        self, path: str | Path, *, flush: FlushPolicy = "event", fsync: bool = False, interval_ms: float = 100.0
    ) -> EventLog:
        """Append every accepted state change to the event log at ``path`` from now on, after
        replaying the records it holds at or past :attr:`ops_` (recovering a crashed process's
        state). One process writes a log: a second fails with :class:`~decisioner.errors.LogLockedError`."""
        with self.journal.lock:
            log = EventLog(path, flush=flush, fsync=fsync, interval_ms=interval_ms)
            self.journal.attach(log, self.apply_record)
            return log

    def detach_log(self) -> None:
        """Flush and close the event log (and release its directory)."""
        with self.journal.lock:
            self.journal.detach()

    def save(self, directory: str | Path) -> Path:
        """Write an atomic snapshot of the whole state under ``directory`` (see
        this module); if this engine's log lives there, it is emptied (the
        snapshot holds everything in it). Returns the snapshot's path."""
        return save(_engine(self), directory)

    def durable(
        self, directory: str | Path, *, flush: FlushPolicy = "event", fsync: bool = False, interval_ms: float = 100.0
    ) -> EventLog:
        """Make this engine durable in ``directory``: a snapshot now, then every accepted
        change in ``directory/events.log``. Reopen with :meth:`Engine.open`."""
        return durable(_engine(self), directory, flush=flush, fsync=fsync, interval_ms=interval_ms)

    @classmethod
    def open(
        cls, directory: str | Path, *, hash_key: str | None = None, flush: FlushPolicy = "event", fsync: bool = False,
        interval_ms: float = 100.0, **kwargs: Any,
    ) -> Engine:  # the class it is called on
        """Recover an engine made durable with :meth:`durable`: load the newest snapshot, replay
        the log written since, and go on logging there (``flush="off"``: replay it, then log
        nothing more). The secret comes from ``hash_key`` (hex) or the environment variable the
        saved configuration names, and is checked against the snapshot's fingerprint.

        Raises
        ------
        NotReadyError
            No snapshot, a damaged file, a wrong secret, a log another process holds.
        LogDamagedError
            Intact log records follow damage, or the log the snapshot expects is missing
            (nothing is changed on disk; see ``decisioner log check``).
        ConfigError
            A snapshot or log format this version cannot read.
        """
        return open_engine(
            cast("type[Engine]", cls), directory, hash_key=hash_key, flush=flush, fsync=fsync, interval_ms=interval_ms,
            **kwargs,
        )

    def replay_records(self, records: list[Record]) -> int:
        """Apply logged records whose admission number is at or past ``ops_``, in order.

        Raises
        ------
        NotReadyError
            If the records have a gap.
        """
        return self.journal.replay(records, self.apply_record)


def _engine(obj: Durable) -> Engine:
    return cast("Engine", obj)
