"""Durability helpers over the file formats, for the engine: what a snapshot of an engine holds
besides its components' states (configuration without the secret, catalog, a keyed fingerprint
of the secret, seed and instance), and how it is read back and checked.

The file formats live elsewhere: :mod:`decisioner.snapshot` (atomic snapshots of component
states) and :mod:`decisioner.eventlog` (the framed write-ahead log, its flush policies and the
one-writer lock). :mod:`decisioner.durability` composes them for the engine (``Engine.save``,
``Engine.durable``, ``Engine.open``); this module knows no engine.

The secret is never written: a snapshot stores a keyed BLAKE2b fingerprint of it (the key of
the pseudo-identifier ``("decisioner-snapshot-key-check", "v1")``, see
:func:`~decisioner.hashing.identifier_key`) and refuses to open with another key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec

from .catalog import Catalog
from .config import EngineConfig
from .errors import NotReadyError
from .eventlog import LOG_VERSION, DirectoryLock
from .hashing import identifier_key, resolve_key
from .identity import IdentityGraph
from .snapshot import SNAPSHOT_FORMAT, ComponentState, read_snapshot, write_snapshot

__all__ = [
    "LOG_NAME", "PREV_LOG_NAME", "LOG_VERSION", "SNAPSHOT_FORMAT", "Restored", "write_engine_snapshot",
    "read_engine_snapshot",
]

LOG_NAME: Final = "events.log"
#: the log from the previous snapshot to the newest (the fallback's log)
PREV_LOG_NAME: Final = "events.prev.log"
_KEY_CHECK: Final = ("decisioner-snapshot-key-check", "v1")


def write_engine_snapshot(
    directory: str | Path,
    *,
    ops: int,
    config: EngineConfig,
    catalog: Catalog,
    key: bytes,
    header: dict[str, Any],
    components: dict[str, ComponentState],
    keep_previous: bool = True,
) -> Path:
    """Write a snapshot of an engine's state under ``directory`` (holding its lock while it
    writes); ``header`` holds the engine's constructor values (seed, instance, ...);
    ``keep_previous`` as for :func:`~decisioner.snapshot.write_snapshot`.

    Raises
    ------
    LogLockedError
        If another process writes in ``directory``.
    """
    lock = DirectoryLock(directory)
    try:
        cfg = msgspec.structs.replace(config, identity=msgspec.structs.replace(config.identity, hash_key=None))
        enc = msgspec.json.Encoder()
        return write_snapshot(
            directory,
            ops=ops,
            header={**header, "key_check": identifier_key(key, *_KEY_CHECK)[0]},
            config=msgspec.json.encode(cfg),
            catalog_lines=(enc.encode(rec) for rec in catalog.records),
            components=components,
            keep_previous=keep_previous,
        )
    finally:
        lock.release()


@dataclass(frozen=True)
class Restored:
    """What an engine is rebuilt from: configuration (with the secret), catalog, identity graph,
    constructor values from the header, and every component's state."""

    config: EngineConfig
    catalog: Catalog
    identity: IdentityGraph
    header: dict[str, Any]
    components: dict[str, ComponentState]
    path: Path


def read_engine_snapshot(directory: str | Path, *, hash_key: str | None = None, previous: bool = False) -> Restored:
    """Read the newest snapshot under ``directory`` (with ``previous``, the one before it) and
    check the secret against its fingerprint. The secret comes from ``hash_key`` (hex) or the
    environment variable the saved configuration names.

    Raises
    ------
    NotReadyError
        No snapshot, a wrong secret.
    SnapshotDamagedError
        A damaged file.
    ConfigError
        A snapshot format this version cannot read.
    """
    snap = read_snapshot(directory, previous=previous)
    cfg = msgspec.json.decode(snap.config, type=EngineConfig)
    if hash_key is not None:
        cfg = msgspec.structs.replace(cfg, identity=msgspec.structs.replace(cfg.identity, hash_key=hash_key))
    key = resolve_key(cfg.identity.hash_key, cfg.identity.hash_key_env)
    if identifier_key(key, *_KEY_CHECK)[0] != snap.header["key_check"]:
        raise NotReadyError(f"expected the hashing secret snapshot {str(snap.path)!r} was written with, got another")
    catalog = Catalog.from_jsonl(snap.catalog_path, cfg.catalog)
    identity = IdentityGraph.from_arrays(key, snap.components["identity"][0], spec=cfg.identity)
    return Restored(cfg, catalog, identity, snap.header, snap.components, snap.path)
