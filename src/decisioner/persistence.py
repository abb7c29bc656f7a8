"""Durability of an engine: its components' states into snapshots, its journal into the log.

The file formats live elsewhere: :mod:`decisioner.snapshot` (atomic snapshots of component
states) and :mod:`decisioner.eventlog` (the framed write-ahead log, its flush policies and the
one-writer lock). This module maps an engine onto them:

* :func:`save` writes every component's ``to_state`` at the current admission count, with the
  configuration (without the secret) and the catalog, and a keyed fingerprint of the secret; if
  the engine's log lives in that directory it is emptied (the snapshot holds everything in it);
* :func:`open_engine` reads the newest snapshot, rebuilds the engine from its configuration and
  catalog, loads every component's state and replays the log written since;
* :func:`durable` = a snapshot now, then a log beside it.

The secret is never written: a snapshot stores ``hash_unit(key, "decisioner-snapshot-key-check",
"v1")`` and refuses to open with another key.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import msgspec

from .eventlog import LOG_VERSION, DirectoryLock, EventLog, FlushPolicy, read_log
from .snapshot import SNAPSHOT_FORMAT, ComponentState, read_snapshot, write_snapshot

if TYPE_CHECKING:
    from .engine import Engine

__all__ = [
    "LOG_NAME",
    "LOG_VERSION",
    "SNAPSHOT_FORMAT",
    "engine_state",
    "load_engine_state",
    "attach_log",
    "save",
    "durable",
    "open_engine",
]

LOG_NAME: Final = "events.log"
_KEY_CHECK: Final = ("decisioner-snapshot-key-check", "v1")


def engine_state(engine: Engine) -> dict[str, ComponentState]:
    """Every component's state, by name (what a snapshot holds)."""
    states: dict[str, ComponentState] = {
        "identity": (engine.identity.to_arrays(), {}),
        "profiles": engine.profiles.to_state(),
        "people": engine.people.to_state(),
        "popularity": engine.scorer.to_state(),
        "experiments": engine.experiments_.to_state(),
        "decision_log": engine.decision_log.to_state(),
        "pending": engine.pending_.to_state(),
        "catalog": ({"inventory": engine.catalog.inventory}, {"version": engine.catalog.version}),
        "engine": ({}, {"seq": engine.seq_, "events": engine.events_, "evicted": engine.evicted_, "ops": engine.ops_}),
    }
    states.update(engine.placements_.to_state())
    return states


def load_engine_state(engine: Engine, states: dict[str, ComponentState]) -> None:
    """Continue from :meth:`to_state` of an engine with the same configuration and catalog
    (the identity graph comes through the constructor)."""
    engine.tracker.sync_rows()
    engine.profiles.load_state(states["profiles"])
    engine.people.load_state(states["people"])
    engine.scorer.load_state(states["popularity"])
    engine.experiments_.load_state(states["experiments"])
    engine.decision_log.load_state(states["decision_log"])
    engine.pending_.load_state(states["pending"])
    engine.catalog.inventory[:] = states["catalog"][0]["inventory"]
    engine.placements_.set_stock(engine.catalog.in_stock())
    engine.placements_.load_state(states)
    meta = states["engine"][1]
    engine.seq_ = int(meta["seq"])
    engine.tracker.events_, engine.tracker.evicted_ = int(meta["events"]), int(meta["evicted"])
    engine.journal.ops_ = int(meta["ops"])


def attach_log(
    engine: Engine, path: str | Path, *, flush: FlushPolicy = "event", fsync: bool = False, interval_ms: float = 100.0
) -> EventLog:
    """Append every accepted state change to the event log at ``path`` from now on.

    The records already in the log at or past this engine's admission count are replayed
    first, so attaching to the log of a crashed process recovers its state. One process
    writes a log: a second one attaching fails with :class:`~decisioner.errors.LogLockedError`.
    """
    with engine.journal.lock:
        log = EventLog(path, flush=flush, fsync=fsync, interval_ms=interval_ms)
        try:
            pending = engine.journal.attach(log)
            engine.journal.log = None  # replayed records are in the log already
            for rec in pending:
                engine.apply_record(rec)
        except BaseException:
            log.close()
            raise
        engine.journal.log = log
        return log


def save(engine: Engine, directory: str | Path) -> Path:
    """Write an atomic snapshot of ``engine`` under ``directory``; returns its path.

    Raises
    ------
    LogLockedError
        If another process writes in ``directory``.
    """
    from .hashing import hash_unit

    lock = DirectoryLock(directory)
    try:
        with engine.journal.lock:
            cfg = msgspec.structs.replace(
                engine.config, identity=msgspec.structs.replace(engine.config.identity, hash_key=None)
            )
            enc = msgspec.json.Encoder()
            path = write_snapshot(
                directory,
                ops=engine.ops_,
                header={
                    "seed": engine.seed,
                    "instance": engine.instance,
                    "feedback_weight": engine.feedback_weight,
                    "key_check": hash_unit(engine.identity.key, *_KEY_CHECK),
                },
                config=msgspec.json.encode(cfg),
                catalog_lines=(enc.encode(rec) for rec in engine.catalog.records),
                components=engine.to_state(),
            )
            log = engine.journal.log
            if log is not None and log.path.resolve() == (Path(directory) / LOG_NAME).resolve():
                log.flush_now()
                log.reset()
            return path
    finally:
        lock.release()


def durable(
    engine: Engine,
    directory: str | Path,
    *,
    flush: FlushPolicy = "event",
    fsync: bool = False,
    interval_ms: float = 100.0,
) -> EventLog:
    """A snapshot of ``engine`` in ``directory`` now, then every accepted change in
    ``directory/events.log``."""
    with engine.journal.lock:
        save(engine, directory)
        log_path = Path(directory) / LOG_NAME
        log_path.unlink(missing_ok=True)
        return attach_log(engine, log_path, flush=flush, fsync=fsync, interval_ms=interval_ms)


def open_engine(
    directory: str | Path,
    *,
    hash_key: str | None = None,
    flush: FlushPolicy = "event",
    fsync: bool = False,
    interval_ms: float = 100.0,
    **engine_kwargs: Any,
) -> Engine:
    """Recover an engine made durable with :func:`durable`: load the newest snapshot, replay the
    log written since, and go on logging there (``flush="off"``: replay it, then log nothing
    more). The secret comes from ``hash_key`` (hex) or the environment variable the saved
    configuration names, and is checked against the snapshot's fingerprint.

    Raises
    ------
    NotReadyError
        No snapshot, a damaged file, a wrong secret, a log another process holds.
    ConfigError
        A snapshot or log format this version cannot read.
    """
    from .catalog import Catalog
    from .config import EngineConfig
    from .engine import Engine
    from .errors import NotReadyError
    from .hashing import hash_unit, resolve_key
    from .identity import IdentityGraph
    from .journal import decode_record

    snap = read_snapshot(directory)
    cfg = msgspec.json.decode(snap.config, type=EngineConfig)
    if hash_key is not None:
        cfg = msgspec.structs.replace(cfg, identity=msgspec.structs.replace(cfg.identity, hash_key=hash_key))
    key = resolve_key(cfg.identity.hash_key, cfg.identity.hash_key_env)
    if hash_unit(key, *_KEY_CHECK) != snap.header["key_check"]:
        raise NotReadyError(f"expected the hashing secret snapshot {str(snap.path)!r} was written with, got another")
    catalog = Catalog.from_jsonl(snap.catalog_path, cfg.catalog)
    identity = IdentityGraph.from_arrays(key, snap.components["identity"][0], spec=cfg.identity)
    kwargs = {
        "seed": snap.header["seed"],
        "instance": snap.header["instance"],
        "feedback_weight": snap.header["feedback_weight"],
        **engine_kwargs,
    }
    engine = Engine(cfg, catalog, identity=identity, **kwargs)
    engine.load_state(snap.components)
    log_path = Path(directory) / LOG_NAME
    if flush == "off":  # recover what the log holds, then log nothing more
        if log_path.exists():
            engine.replay_records([decode_record(p, where=repr(str(log_path))) for p in read_log(log_path).payloads])
    else:
        engine.attach_log(log_path, flush=flush, fsync=fsync, interval_ms=interval_ms)
    return engine
